#!/usr/bin/env python3
"""test_admin: memcached's administration commands and switches, end to end.

  - shutdown: refused without -A ("ERROR: shutdown not enabled"), a bad mode
    refused with -A, and with -A `shutdown` and `shutdown graceful` stop the
    server with exit 0 after a write reached the disk (engine=sqlite: the
    key is there after a restart);
  - cache_memlimit: memcached's bounds and replies, and limit_maxbytes
    following the new limit;
  - debugtime: ERROR unless debug_commands = yes; with it the clock moves
    and an item with a TTL expires;
  - -C on the SQLite engine: CAS shown as 0, `cas` matches nothing, a flush
    kills what is stored in its second, and after a restart the flushed
    keys stay gone;
  - -F: flush_all refused in text and binary, nothing flushed;
  - `stats items` evicted_time and outofmemory, which memcached-tool's
    display shows (Evict_Time, OOM): evicted_time is the age (since its
    last access) of the item evicted last in the class, here 30 s after
    debugtime 30; with -M each set refused for memory counts once in its
    class, as memcached counts it.

MCKVD=/path/to/mckvd python3 tests/integ/test_admin.py
Exit status: 0 pass, 1 fail, 77 skip.
"""

import os
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "persist"))
import mckvtest as mt  # noqa: E402


def line(c, req):
    c.send(req)
    return c.readline()


def test_shutdown(t):
    srv = t.server(["--engine=memory"]).start()
    with srv.text() as c:
        t.check_eq(line(c, b"shutdown\r\n"), b"ERROR: shutdown not enabled",
                   "shutdown without -A")
    t.stop_checked(srv, "server without -A")

    for mode in (b"", b" graceful"):
        d = t.tmpdir("admin-db")
        args = ["-A", "--engine=sqlite", "--db-path=" + os.path.join(d, "db")]
        srv = t.server(args).start()
        with srv.text() as c:
            t.check_eq(line(c, b"shutdown foo\r\n"),
                       b"CLIENT_ERROR invalid shutdown mode", "shutdown foo")
            t.check_eq(c.set("kept", "v"), "STORED", "set before shutdown")
            c.send(b"shutdown" + mode + b"\r\n")
            try:
                got = c.readline()
            except mt.ProtocolError:
                got = b""   # closed without a reply, as memcached
            t.check_eq(got, b"", "shutdown%s closes the connection"
                       % mode.decode())
        rc = srv.proc.wait(timeout=30)
        srv.proc = None
        t.check_eq(rc, 0, "exit status after shutdown%s" % mode.decode())
        srv.start()
        with srv.text() as c:
            got = c.get("kept")
            t.check(got is not None and got[1] == b"v",
                    "shutdown%s: the write reached the disk (%r)"
                    % (mode.decode(), got))
        t.stop_checked(srv)


def test_memlimit(t):
    srv = t.server(["--engine=memory", "-m", "64"]).start()
    with srv.text() as c:
        t.check_eq(line(c, b"cache_memlimit 7\r\n"),
                   b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m",
                   "cache_memlimit 7")
        t.check_eq(line(c, b"cache_memlimit 2000000000\r\n"),
                   b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes",
                   "cache_memlimit in bytes")
        t.check_eq(line(c, b"cache_memlimit x\r\n"), b"ERROR", "cache_memlimit x")
        t.check_eq(line(c, b"cache_memlimit 100\r\n"), b"OK", "cache_memlimit 100")
        c.send(b"cache_memlimit 32 noreply\r\n")
        st = c.stats()
        t.check_eq(st.get("limit_maxbytes"), str(32 << 20),
                   "limit_maxbytes after cache_memlimit 32")
    t.stop_checked(srv)


def test_debugtime(t):
    srv = t.server(["--engine=memory"]).start()
    with srv.text() as c:
        t.check_eq(line(c, b"debugtime 5\r\n"), b"ERROR",
                   "debugtime without debug_commands")
    t.stop_checked(srv)
    srv = t.server(["--engine=memory", "--debug-commands=yes"]).start()
    with srv.text() as c:
        t.check_eq(c.set("ttl", "v", 0, 100), "STORED", "set with TTL 100")
        t.check_eq(line(c, b"debugtime 50\r\n"), b"OK", "debugtime 50")
        t.check(c.get("ttl") is not None, "alive 50 s later")
        t.check_eq(line(c, b"debugtime 51\r\n"), b"OK", "debugtime 51")
        t.check(c.get("ttl") is None, "expired 101 s later")
    t.stop_checked(srv)


def test_nocas_sqlite(t):
    d = t.tmpdir("nocas-db")
    srv = t.server(["-C", "--engine=sqlite",
                    "--db-path=" + os.path.join(d, "db")]).start()
    with srv.text() as c:
        t.check_eq(c.set("a", "1"), "STORED", "set a under -C")
        got = c.gets("a")
        t.check(got is not None and got[2] == 0, "gets shows CAS 0 (%r)" % (got,))
        t.check_eq(c.cas("a", "2", 0), "EXISTS", "cas matches nothing")
        # the flush's second: what is stored right after it dies too
        c.send(b"flush_all\r\nset b 0 0 1\r\nx\r\nget b\r\n")
        t.check_eq(c.readline(), b"OK", "flush_all")
        t.check_eq(c.readline(), b"STORED", "set b after the flush")
        t.check_eq(c.readline(), b"END", "b died with the flush's second")
        # the next second of the server's clock (it ticks once a second,
        # up to a second behind the wall clock): wait for it, bounded
        t0 = int(c.stats()["time"])
        deadline = time.monotonic() + 5
        while int(c.stats()["time"]) <= t0 and time.monotonic() < deadline:
            time.sleep(0.05)
        t.check_eq(c.set("later", "v"), "STORED", "set a second later")
    t.stop_checked(srv)
    srv.start()
    with srv.text() as c:
        t.check(c.get("a") is None, "flushed key stays gone after a restart")
        t.check(c.get("b") is None, "b stays gone after a restart")
        got = c.get("later")
        t.check(got is not None and got[1] == b"v",
                "a key stored after the flush second survives (%r)" % (got,))
    t.stop_checked(srv)


def test_no_flush(t):
    srv = t.server(["-F", "--engine=memory"]).start()
    with srv.text() as c:
        t.check_eq(c.set("k", "v"), "STORED", "set under -F")
        t.check_eq(line(c, b"flush_all\r\n"),
                   b"CLIENT_ERROR flush_all not allowed", "text flush_all")
    with srv.binary() as b:
        r = b.flush()
        t.check_eq(r.status, 0x20, "binary FLUSH status (memcached: auth error)")
        t.check_eq(r.value, b"Auth failure.", "binary FLUSH body")
    with srv.text() as c:
        got = c.get("k")
        t.check(got is not None, "nothing was flushed")
    t.stop_checked(srv)


def value_class(items, prefix="items:"):
    """The one class of `stats items` holding items: its number."""
    classes = {k.split(":")[1] for k in items if k.endswith(":number")}
    return classes.pop() if len(classes) == 1 else None


def fill(c, prefix, value, until, limit=20000):
    """Sets prefix0, prefix1, ... (pipelined by 100) until until(stats)
    holds; returns how many were set (at most `limit`)."""
    n = 0
    while n < limit:
        for i in range(n, n + 100):
            c.send(b"set %s%d 0 0 %d noreply\r\n%s\r\n"
                   % (prefix, i, len(value), value))
        n += 100
        if until(c.stats()):
            return n
    return n


def test_items_stats(t):
    value = b"v" * 1000
    srv = t.server(["--engine=memory", "-m", "2",
                    "--debug-commands=yes"]).start()
    with srv.text() as c:
        t0 = time.monotonic()
        fill(c, b"old", value, lambda st: int(st["evictions"]) > 0)
        cls = value_class(c.stats("items"))
        t.check(cls is not None, "one class holds the items")
        items = c.stats("items")
        # ages in whole seconds of the server's clock: the real seconds
        # the test took may add one more
        slack = int(time.monotonic() - t0) + 1
        got = int(items.get("items:%s:evicted_time" % cls, -1))
        t.check(0 <= got <= slack, "evicted_time %d of items evicted as they "
                "were set (at most %d)" % (got, slack))
        t.check_eq(line(c, b"debugtime 30\r\n"), b"OK", "debugtime 30")
        evicted = int(items["items:%s:evicted" % cls])
        for i in range(10):
            t.check_eq(c.set("new%d" % i, value), "STORED", "set new%d" % i)
        items = c.stats("items")
        t.check(int(items["items:%s:evicted" % cls]) > evicted,
                "the new items evicted old ones")
        slack = int(time.monotonic() - t0) + 1
        got = int(items.get("items:%s:evicted_time" % cls, -1))
        t.check(30 <= got <= 30 + slack, "evicted_time %d: the last evicted "
                "item was accessed 30 s (+ %d real) before" % (got, slack))
        t.check_eq(items.get("items:%s:outofmemory" % cls), "0",
                   "outofmemory without -M")
    t.stop_checked(srv)
    srv = t.server(["--engine=memory", "-m", "2", "-M"]).start()
    with srv.text() as c:
        probes = [0]

        def refused(_st):
            # a new key each time: a refused set of an existing key also
            # drops the old value (as memcached), which would make room
            probes[0] += 1
            c.send(b"set probe%d 0 0 %d\r\n%s\r\n"
                   % (probes[0], len(value), value))
            return c.readline().startswith(b"SERVER_ERROR")
        fill(c, b"k", value, refused)
        cls = value_class(c.stats("items"))
        base = int(c.stats("items")["items:%s:outofmemory" % cls])
        t.check(base >= 1, "-M: the refused set counted (%d)" % base)
        for i in range(3):
            reply = c.set("more%d" % i, value)
            t.check(reply.startswith("SERVER_ERROR out of memory"),
                    "-M: a set into a full cache refused: %r" % reply)
        t.check_eq(c.stats("items")["items:%s:outofmemory" % cls],
                   str(base + 3), "-M: outofmemory counts each refused set")
        t.check_eq(c.stats()["evictions"], "0", "-M: nothing evicted")
    t.stop_checked(srv)


def main(t):
    test_shutdown(t)
    test_items_stats(t)
    test_memlimit(t)
    test_debugtime(t)
    test_nocas_sqlite(t)
    test_no_flush(t)


if __name__ == "__main__":
    mt.Test("test_admin", time_limit=120).run(main)
