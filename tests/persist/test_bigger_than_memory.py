#!/usr/bin/env python3
"""test_bigger_than_memory: more data than -m, every value comes back.

Server with -m 16; write 64k keys x 1 KiB (64 MiB) of pseudo-random values
that are derived from the key, so any value can be verified. Writes refused
with SERVER_ERROR (backpressure: the dirty backlog cannot exceed memory) are
retried after a pause, bounded; every key must be stored in the end. Wait
until dirty_items is 0 (bounded), then read every key (pipelined multi-gets)
and check every value: the values ejected from memory are fetched back
from disk in the background, so bg_fetches must be > 0.

MCKVD=/path/to/mckvd python3 tests/persist/test_bigger_than_memory.py
Exit status: 0 pass, 1 fail, 77 skip.
"""

import os
import random
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mckvtest as mt  # noqa: E402

NKEYS = 64 * 1024
VSIZE = 1024
MEM_MB = 16


def key(i):
    return "big:%06d" % i


def val(i):
    body = random.Random(i).getrandbits(8 * (VSIZE - 8)).to_bytes(
        VSIZE - 8, "little")
    return b"%08d" % i + body


def write_all(t, c, deadline):
    """Pipelined sets; refused ones retried until the deadline. Returns the
    set of indexes never stored."""
    todo, refused = c.store_retrying(lambda i: (key(i), val(i)),
                                     range(NKEYS), deadline)
    if refused:
        t.info("write replies other than STORED (retried): %s" % refused)
        unexpected = {r: n for r, n in refused.items()
                      if r != "SERVER_ERROR temporary failure"}
        t.check(not unexpected, "unexpected write replies: %s" % unexpected)
    return set(todo)


def main(t):
    tmp = t.tmpdir()
    db = os.path.join(tmp, "big", "big.db")
    srv = t.server(mt.persist_args(db) + ["-m", str(MEM_MB)], "big")
    srv.start()
    with srv.text(timeout=30) as c:
        mt.require_kvstore(t, c, ("dirty_items", "bg_fetches"))
        t0 = time.monotonic()
        missing = write_all(t, c, t0 + 25)
        t.check(not missing, "%d keys could not be stored within 25 s"
                % len(missing),
                "%d x %d B written in %.1f s"
                % (NKEYS, VSIZE, time.monotonic() - t0))
        ok, s = mt.wait_clean(c, 15)
        t.check(ok, "dirty_items=%s queue_depth=%s 15 s after the writes"
                % (s.get("dirty_items"), s.get("queue_depth")),
                "all persisted (items_persisted=%s, commits=%s)"
                % (s.get("items_persisted"), s.get("commits")))
        gs = c.stats()
        t.info("stats: bytes=%s limit_maxbytes=%s curr_items=%s "
               "evictions=%s" % (gs.get("bytes"), gs.get("limit_maxbytes"),
                                 gs.get("curr_items"), gs.get("evictions")))
        fetches0 = mt.kv_int(s, "bg_fetches") or 0

        t0 = time.monotonic()
        bad = miss = 0
        order = list(range(NKEYS))
        random.Random(7).shuffle(order)
        for start in range(0, NKEYS, 100):
            if time.monotonic() - t0 > 30:
                t.fail("reading back stopped after 30 s at %d of %d keys"
                       % (start, NKEYS))
                break
            idx = order[start:start + 100]
            got = c.get_multi([key(i) for i in idx])
            for i in idx:
                g = got.get(key(i).encode())
                if g is None:
                    if i in missing:
                        continue
                    miss += 1
                    if miss <= 5:
                        t.fail("%s: miss" % key(i))
                elif g != (0, val(i)):
                    bad += 1
                    if bad <= 5:
                        t.fail("%s: wrong value %s" % (key(i), mt.short(g)))
        t.check(bad == 0 and miss == 0, "read back: %d misses, %d wrong "
                "values" % (miss, bad),
                "all %d values right (read in %.1f s)"
                % (NKEYS, time.monotonic() - t0))
        s = mt.kvstats(c)
        fetches = mt.kv_int(s, "bg_fetches") or 0
        t.check(fetches > 0, "bg_fetches = %s after reading %d MiB with "
                "-m %d: values were not ejected/fetched"
                % (s.get("bg_fetches"), NKEYS * VSIZE >> 20, MEM_MB),
                "bg_fetches = %d (%d during the read-back)"
                % (fetches, fetches - fetches0))
    t.stop_checked(srv, "server", timeout=30)


if __name__ == "__main__":
    mt.Test("test_bigger_than_memory", time_limit=85).run(main)
