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
  - -F: flush_all refused in text and binary, nothing flushed.

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


def main(t):
    test_shutdown(t)
    test_memlimit(t)
    test_debugtime(t)
    test_nocas_sqlite(t)
    test_no_flush(t)


if __name__ == "__main__":
    mt.Test("test_admin", time_limit=120).run(main)
