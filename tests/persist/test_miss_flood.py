#!/usr/bin/env python3
"""test_miss_flood: gets for keys never stored cost no disk read, no memory.

engine=sqlite with -m 8; store 120k keys x 1 KiB (15 times the memory, so
the cache drops key stubs and becomes incomplete: from then on a key that
is not in memory may be on disk). Then flood the server for a few seconds
with pipelined gets of random keys that were never stored (tools/mcload,
3 connections x pipeline 16, bounded by time) while a fresh client gets a
stored key every half second. Checks, against memcached's behaviour (a
miss allocates nothing):
  - `bytes` stays under limit_maxbytes and RSS grows by less than 16 MB
    (before the filter of keys on disk: 46 MB of bytes under -m 8 and
    44 MB of RSS in 8 s, every miss a disk read and a tombstone);
  - disk reads during the flood are under 1 % of the misses (the filter's
    false positives are about 0.1 %), and disk_filter_misses counts them;
  - every fresh client is answered within 1 s, during and after the flood;
  - stored keys still read back correctly.
The same again after a restart, where the warmup fills memory and then
reads the remaining keys into the filter only.

MCKVD=/path/to/mckvd [MCLOAD=/path/to/mcload] python3 tests/persist/test_miss_flood.py
Exit status: 0 pass, 1 fail, 77 skip.
"""

import os
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mckvtest as mt  # noqa: E402

NKEYS = 120000
VSIZE = 1024
MEM_MB = 8
FLOOD_S = 4


def key(i):
    return "flood:%07d" % i


def val(i):
    return (b"%07d" % i) * (VSIZE // 7) + b"v" * (VSIZE % 7)


def mcload_path():
    path = os.environ.get("MCLOAD")
    if not path:
        path = os.path.join(os.path.dirname(mt.mckvd_path()), "tools", "mcload")
    if not os.access(path, os.X_OK):
        raise mt.Skip("no mcload at %s (set MCLOAD)" % path)
    return path


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fill(t, c):
    todo, _ = c.store_retrying(lambda i: (key(i), val(i)), range(NKEYS),
                               time.monotonic() + 60, batch=500)
    t.check(not todo, "%d keys could not be stored in 60 s" % len(todo))


def probe(srv, t, what, worst):
    """A fresh client gets a stored key; returns the worse of worst and
    the time it took (s)."""
    t0 = time.monotonic()
    i = NKEYS // 3
    try:
        with srv.text(timeout=5) as c:
            got = c.get(key(i))
        t.check(got is not None and got[1] == val(i),
                "%s: stored key %s read back wrong: %r"
                % (what, key(i), mt.short(got)))
    except (OSError, mt.ProtocolError) as e:
        t.fail("%s: fresh client not served: %s" % (what, e))
        return max(worst, 5.0)
    return max(worst, time.monotonic() - t0)


def flood(t, srv, what):
    with srv.text(timeout=30) as c:
        kv = mt.kvstats(c)
        t.check(kv.get("cache_complete") == "0",
                "%s: the cache is still complete, the test tests nothing"
                % what)
        t.check(kv.get("disk_filter_ready") == "1",
                "%s: the filter of keys on disk is not ready: %s"
                % (what, kv.get("disk_filter_ready")))
        fetches0 = mt.kv_int(kv, "bg_fetches") or 0
        fmiss0 = mt.kv_int(kv, "disk_filter_misses") or 0
    rss0 = rss_kb(srv.pid)
    result = {}

    def run():
        out = subprocess.run(
            [mcload_path(), "--port", str(srv.port), "--protocol", "text",
             "--keys", "4000000000", "--get-ratio", "1", "--threads", "1",
             "--conns", "3", "--pipeline", "16", "--duration", str(FLOOD_S),
             "--timeout", "10"],
            capture_output=True, text=True, timeout=FLOOD_S + 60)
        for line in out.stdout.splitlines():
            if line.startswith("RESULT"):
                result.update(kv.split("=", 1) for kv in line.split()[1:])
        result["rc"] = out.returncode
    th = threading.Thread(target=run)
    th.start()
    worst = 0.0
    peak_bytes = 0
    peak_rss = rss0
    limit = 0
    while th.is_alive():
        time.sleep(0.5)
        worst = probe(srv, t, what + " (during the flood)", worst)
        with srv.text(timeout=5) as c:
            s = c.stats()
        peak_bytes = max(peak_bytes, int(s["bytes"]))
        limit = int(s["limit_maxbytes"])
        peak_rss = max(peak_rss, rss_kb(srv.pid))
    th.join()
    for _ in range(3):
        worst = probe(srv, t, what + " (after the flood)", worst)
    with srv.text(timeout=5) as c:
        kv = mt.kvstats(c)
    misses = int(result.get("misses", 0))
    fetches = (mt.kv_int(kv, "bg_fetches") or 0) - fetches0
    fmiss = (mt.kv_int(kv, "disk_filter_misses") or 0) - fmiss0
    t.info("%s: %s misses/s, %d misses, %d disk reads, %d answered by the "
           "filter; peak bytes %.1f MB of %.1f; RSS %+.1f MB; slowest fresh "
           "client %.0f ms" % (what, result.get("ops_per_sec"), misses,
                               fetches, fmiss, peak_bytes / 1048576.0,
                               limit / 1048576.0, (peak_rss - rss0) / 1024.0,
                               worst * 1000))
    t.check(result.get("rc") == 0 and misses > 10000,
            "%s: the flood did not run: %s" % (what, result))
    t.check(peak_bytes <= limit,
            "%s: bytes %d passed limit_maxbytes %d" % (what, peak_bytes, limit))
    t.check(peak_rss - rss0 < 16 * 1024,
            "%s: RSS grew by %.1f MB during the flood"
            % (what, (peak_rss - rss0) / 1024.0))
    t.check(fetches < misses // 100,
            "%s: %d disk reads for %d misses of keys never stored"
            % (what, fetches, misses))
    t.check(fmiss > misses // 2,
            "%s: disk_filter_misses grew by %d for %d misses"
            % (what, fmiss, misses))
    t.check(worst < 1.0, "%s: a fresh client waited %.2f s" % (what, worst))


def main(t):
    tmp = t.tmpdir()
    db = os.path.join(tmp, "flood", "flood.db")
    srv = t.server(mt.persist_args(db) + ["-m", str(MEM_MB)], "flood")
    srv.start()
    with srv.text(timeout=30) as c:
        mt.require_kvstore(t, c, ("dirty_items", "disk_filter_ready",
                                  "disk_filter_misses"))
        fill(t, c)
        ok, _ = mt.wait_clean(c, 60)
        t.check(ok, "writes not on disk after 60 s")
    flood(t, srv, "running")
    t.stop_checked(srv)

    srv.start()   # warmup: memory fills, the rest of the keys go to the filter
    with srv.text(timeout=30) as c:
        ok, kv = mt.wait_kvstat(c, lambda s: s.get("warmup_state") == "done",
                                60)
        t.check(ok, "warmup not done after 60 s: %s" % kv.get("warmup_state"))
        t.check(mt.kv_int(kv, "disk_filter_keys") >= NKEYS,
                "after restart the filter holds %s keys, want >= %d"
                % (kv.get("disk_filter_keys"), NKEYS))
    flood(t, srv, "after restart")
    t.stop_checked(srv)


if __name__ == "__main__":
    mt.Test("test_miss_flood", time_limit=150).run(main)
