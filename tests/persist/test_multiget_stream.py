#!/usr/bin/env python3
"""test_multiget_stream: a multiget larger than memory returns every value.

Server with engine=sqlite and -m 16; store NKEYS values of VSIZE bytes
(several times the memory), wait until every one is persisted, then:
- on NCONNS connections at once, one `get` of every key: each connection
  gets every value, right and in key order, then END;
- the same with `gets` (a CAS on every value), and a second `get` round;
- a slow reader: one connection sends the `get` and reads nothing for a
  while; the server must not queue the whole answer for it;
- a binary multiget (GETKQ for every key, then NOOP) and a meta pipeline
  (`mg KEY v k` for every key, then `mn`) return every value too;
- a `gats` of keys on disk returns them and sets their new expiry.
Throughout, the server's VmRSS (/proc/PID/status) is sampled, and its
maximum must stay under a generous bound (see RSS_BOUND_MB): without
streaming, NCONNS connections holding every value would need NCONNS x the
data. Nothing here is a timing assertion; the bounds are on bytes.

MCKVD=/path/to/mckvd python3 tests/persist/test_multiget_stream.py
Exit status: 0 pass, 1 fail, 77 skip.
"""

import os
import random
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mckvtest as mt  # noqa: E402

NKEYS = 200
VSIZE = 500 * 1024
MEM_MB = 16
NCONNS = 4
# The server may hold: its memory limit, a fixed allowance for everything
# that is not item memory (SQLite's page caches of the writer and of each
# reader, thread stacks, malloc's arenas: 64 MB), and per connection what a
# streaming multiget may keep (its output up to the 4 MB high-water mark
# plus one value past it, its prefetch window of 4 MB plus one value, its
# read buffer): 16 MB each. The data is NKEYS x VSIZE = 100 MB, and every
# connection asks for all of it.
RSS_BOUND_MB = MEM_MB + 64 + NCONNS * 16


def key(i):
    return "mgs:%04d" % i


def val(i):
    body = random.Random(i).getrandbits(8 * 1024).to_bytes(1024, "little")
    return (b"%08d" % i + body * (VSIZE // 1024 + 1))[:VSIZE]


def sanitized(path):
    """True when the binary was built with ASan or TSan: their shadow
    memory and the quarantine of freed blocks make VmRSS say nothing
    about what the server holds."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return b"__asan_init" in data or b"__tsan_init" in data


def vmrss_mb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


class RssWatch:
    """Samples the server's VmRSS in a thread; .peak is the maximum."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, vmrss_mb(self.pid))
            self.stop.wait(0.02)

    def done(self):
        self.stop.set()
        self.thread.join(5)
        self.peak = max(self.peak, vmrss_mb(self.pid))
        return self.peak


def write_all(t, c, deadline):
    return c.store_retrying(lambda i: (key(i), val(i), i), range(NKEYS),
                            deadline, batch=8)[0]


def read_text(c, with_cas):
    """The values of one retrieval reply, in order: [(key, flags, value,
    cas)], up to END."""
    out = []
    while True:
        line = c.readline()
        if line == b"END":
            return out
        parts = line.split()
        if len(parts) < 4 or parts[0] != b"VALUE":
            raise mt.ProtocolError("unexpected line %s" % mt.short(line))
        n = int(parts[3])
        data = c.read_exact(n + 2)
        if data[-2:] != b"\r\n":
            raise mt.ProtocolError("value of %r not ended by \\r\\n"
                                   % parts[1])
        cas = int(parts[4]) if with_cas and len(parts) > 4 else None
        out.append((parts[1].decode(), int(parts[2]), data[:-2], cas))


def check_values(t, what, got, with_cas):
    """True when `got` is every key, in order, with its value."""
    keys = [g[0] for g in got]
    want = [key(i) for i in range(NKEYS)]
    if keys != want:
        missing = sorted(set(want) - set(keys))
        t.fail("%s: %d of %d values, %d missing (first %s), in order: %s"
               % (what, len(keys), NKEYS, len(missing), missing[:3],
                  keys == [k for k in want if k in set(keys)]))
        return False
    for i, (k, flags, value, cas) in enumerate(got):
        if flags != i or value != val(i):
            t.fail("%s: %s: wrong value (flags %d, %s)"
                   % (what, k, flags, mt.short(value[:16])))
            return False
        if with_cas and not cas:
            t.fail("%s: %s: no CAS in the gets reply" % (what, k))
            return False
    return True


def text_multiget(srv, cmd, slow_s=0.0):
    """One `cmd k0 .. kN` on a new connection; [(key, flags, value, cas)]
    or the exception it raised."""
    try:
        with srv.text(timeout=60) as c:
            c.send(("%s %s\r\n" % (cmd, " ".join(key(i) for i in
                                                 range(NKEYS)))).encode())
            if slow_s > 0:
                time.sleep(slow_s)   # a slow reader: the server must wait
            return read_text(c, cmd == "gets")
    except (OSError, mt.ProtocolError) as e:
        return e


def parallel_text(t, srv, cmd, what, slow_first=0.0):
    results = [None] * NCONNS

    def run(n):
        results[n] = text_multiget(srv, cmd, slow_first if n == 0 else 0.0)

    threads = [threading.Thread(target=run, args=(n,))
               for n in range(NCONNS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    good = 0
    for n, r in enumerate(results):
        if isinstance(r, Exception) or r is None:
            t.fail("%s, connection %d: %r" % (what, n, r))
        elif check_values(t, "%s, connection %d" % (what, n), r,
                          cmd == "gets"):
            good += 1
    t.check(good == NCONNS, "%s: %d of %d connections got every value"
            % (what, good, NCONNS),
            "%s: %d connections x %d values of %d KB, in order"
            % (what, NCONNS, NKEYS, VSIZE // 1024))


def binary_multiget(t, srv):
    with srv.binary(timeout=60) as c:
        req = b"".join(c.pack(mt.OP_GETKQ, key(i), opaque=i)
                       for i in range(NKEYS))
        c.send(req + c.pack(mt.OP_NOOP, opaque=0xffff))
        got = []
        while True:
            r = c.read_response()
            if r.opcode == mt.OP_NOOP:
                break
            if r.status != mt.ST_OK:
                t.fail("binary GETKQ %s: status 0x%02x %s"
                       % (r.key, r.status, mt.short(r.value)))
                return
            got.append((r.key.decode(), r.flags, r.value, None))
    t.check(check_values(t, "binary GETKQ x %d + NOOP" % NKEYS, got, False),
            "binary multiget incomplete",
            "binary GETKQ x %d + NOOP: every value, in order" % NKEYS)


def meta_multiget(t, srv):
    with srv.text(timeout=60) as c:
        c.send(b"".join(b"mg %s v k f\r\n" % key(i).encode()
                        for i in range(NKEYS)) + b"mn\r\n")
        got = []
        while True:
            line = c.readline()
            if line == b"MN":
                break
            parts = line.split()
            if parts[0] != b"VA":
                t.fail("mg: unexpected line %s" % mt.short(line))
                return
            n = int(parts[1])
            data = c.read_exact(n + 2)
            flags = {p[:1]: p[1:] for p in parts[2:]}
            got.append((flags[b"k"].decode(), int(flags[b"f"]), data[:-2],
                        None))
    t.check(check_values(t, "mg x %d + mn" % NKEYS, got, False),
            "meta multiget incomplete",
            "mg x %d + mn: every value, in order" % NKEYS)


def touch_multiget(t, srv, n=20):
    """gats of the first n keys (on disk by now: the oldest were ejected
    first): every value comes back and the new expiry reaches every one,
    those fetched from disk too. (Not all keys: each touch is a write, and
    touching 100 MB through -m 16 meets backpressure, as it should.)"""
    with srv.text(timeout=60) as c:
        c.send(("gats 1000 %s\r\n" % " ".join(key(i) for i in
                                              range(n))).encode())
        got = read_text(c, True)
        good = [g for i, g in enumerate(got)
                if g[0] == key(i) and g[2] == val(i) and g[3]]
        t.check(len(good) == n, "gats x %d: %d values right of %d returned"
                % (n, len(good), len(got)), "gats x %d: every value" % n)
        bad = []
        for i in range(n):
            c.send(b"mg %s t\r\n" % key(i).encode())
            line = c.readline()
            if not (line.startswith(b"HD t") and 900 < int(line[4:]) <= 1000):
                bad.append((key(i), line))
        t.check(not bad, "gats: expiry not set on %d keys, e.g. %r"
                % (len(bad), bad[:3]), "gats: the new expiry on every key")


def main(t):
    if not os.path.exists("/proc/self/status"):
        raise mt.Skip("no /proc: VmRSS cannot be read")
    tmp = t.tmpdir()
    db = os.path.join(tmp, "mgs", "mgs.db")
    srv = t.server(mt.persist_args(db) + ["-m", str(MEM_MB)], "mgs")
    srv.start()
    with srv.text(timeout=30) as c:
        mt.require_kvstore(t, c, ("dirty_items", "bg_fetches"))
        t0 = time.monotonic()
        left = write_all(t, c, t0 + 20)
        t.check(not left, "%d keys could not be stored within 20 s"
                % len(left), "%d x %d KB written in %.1f s"
                % (NKEYS, VSIZE // 1024, time.monotonic() - t0))
        ok, s = mt.wait_clean(c, 20)
        t.check(ok, "dirty_items=%s 20 s after the writes"
                % s.get("dirty_items"), "all persisted")
        gs = c.stats()
        t.info("bytes=%s limit_maxbytes=%s curr_items=%s rss=%.0f MB"
               % (gs.get("bytes"), gs.get("limit_maxbytes"),
                  gs.get("curr_items"), vmrss_mb(srv.pid)))

    watch = RssWatch(srv.pid)
    parallel_text(t, srv, "get", "get (first round)", slow_first=1.0)
    parallel_text(t, srv, "gets", "gets")
    parallel_text(t, srv, "get", "get (second round)")
    binary_multiget(t, srv)
    meta_multiget(t, srv)
    touch_multiget(t, srv)
    peak = watch.done()
    if sanitized(mt.mckvd_path()):
        t.info("sanitizer build: VmRSS peaked at %.0f MB, bound not checked"
               % peak)
    else:
        t.check(peak < RSS_BOUND_MB, "server VmRSS peaked at %.0f MB, over "
                "the bound of %d MB" % (peak, RSS_BOUND_MB),
                "server VmRSS peaked at %.0f MB (bound %d MB)"
                % (peak, RSS_BOUND_MB))
    with srv.text(timeout=30) as c:
        s = mt.kvstats(c)
        streamed = mt.kv_int(s, "bg_fetch_streamed") or 0
        t.check(streamed > 0, "bg_fetch_streamed = %s: no value was served "
                "outside the cache" % s.get("bg_fetch_streamed"),
                "bg_fetches=%s, bg_fetch_streamed=%d"
                % (s.get("bg_fetches"), streamed))
    t.stop_checked(srv, "server", timeout=30)


if __name__ == "__main__":
    mt.Test("test_multiget_stream", time_limit=85).run(main)
