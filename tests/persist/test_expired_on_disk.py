#!/usr/bin/env python3
"""test_expired_on_disk: a key whose time ran out on disk is a plain miss.

memcached answers every command on an expired key as on a missing one.
Issue 9 found mckv answering `SERVER_ERROR temporary failure` to all of
them, forever, once the key had been pushed out of memory before it
expired. Two ways a row can be expired on disk only:
  1. running: keys with a 3 s TTL, then 120k x 1 KiB under -m 8 push
     them (and their stubs) out of memory; after the TTL every command
     must answer as memcached does (get/gets END, mg EN, touch/incr/decr/
     delete NOT_FOUND, append/prepend NOT_STORED, add STORED, ma/md NF);
  2. restart: the server stops with TTL keys on disk, their time runs
     out, it starts again with a small -m; the same commands, same
     answers, and no `temporary failure` anywhere.
Then the expired rows must be removed from the database in the background
(by the flusher, from the hints of the fetches and the warmup that met
them): counted by sqlite3 on the database file, bounded wait.

MCKVD=/path/to/mckvd python3 tests/persist/test_expired_on_disk.py
Exit status: 0 pass, 1 fail, 77 skip.
"""

import os
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mckvtest as mt  # noqa: E402

TTL = 3
FILL = 120000
MEM_MB = 8

# (request, memcached 1.6.18's reply line for an expired/missing key);
# each command on its own key, so no command's effect hides another's
COMMANDS = [
    ("get", b"get x:get\r\n", b"END"),
    ("gets", b"gets x:gets\r\n", b"END"),
    ("gat", b"gat 100 x:gat\r\n", b"END"),
    ("mg", b"mg x:mg v\r\n", b"EN"),
    ("touch", b"touch x:touch 100\r\n", b"NOT_FOUND"),
    ("incr", b"incr x:incr 1\r\n", b"NOT_FOUND"),
    ("decr", b"decr x:decr 1\r\n", b"NOT_FOUND"),
    ("delete", b"delete x:delete\r\n", b"NOT_FOUND"),
    ("append", b"append x:append 0 0 1\r\nz\r\n", b"NOT_STORED"),
    ("prepend", b"prepend x:prepend 0 0 1\r\nz\r\n", b"NOT_STORED"),
    ("replace", b"replace x:replace 0 0 1\r\nz\r\n", b"NOT_STORED"),
    ("add", b"add x:add 0 0 1\r\nz\r\n", b"STORED"),
    ("ma", b"ma x:ma\r\n", b"NF"),
    ("md", b"md x:md\r\n", b"NF"),
]


def ttl_keys():
    return [req.split(b" ")[2 if name == "gat" else 1].split(b"\r\n")[0]
            for name, req, _ in COMMANDS]


def store_ttl_keys(t, c):
    for k in ttl_keys():
        r = c.set(k, b"12", exptime=TTL)
        t.check(r == "STORED", "set %r: %r" % (k, r))


def fill(t, c, prefix):
    v = b"f" * 1024
    todo, _ = c.store_retrying(lambda i: ("%s%06d" % (prefix, i), v),
                               range(FILL), time.monotonic() + 60, batch=500)
    t.check(not todo, "%d filler keys not stored in 60 s" % len(todo))


def expired_rows(db):
    out = subprocess.run(
        ["sqlite3", db, "SELECT count(*) FROM kv WHERE exptime != 0 AND "
         "exptime <= CAST(strftime('%s','now') AS INTEGER);"],
        capture_output=True, text=True, timeout=30)
    try:
        return int(out.stdout.strip())
    except ValueError:
        return -1


def check_commands(t, srv, what):
    with srv.text(timeout=15) as c:
        kv = mt.kvstats(c)
        t.info("%s: cache_complete=%s ejected_items=%s curr_items=%s"
               % (what, kv.get("cache_complete"), kv.get("ejected_items"),
                  c.stats().get("curr_items")))
        # the fill's writes may have been refused by backpressure (and
        # retried): only the commands below must not fail
        tmpfail0 = mt.kv_int(kv, "temporary_failures") or 0
        for name, req, want in COMMANDS:
            c.send(req)
            got = c.readline()
            t.check_eq(got, want, "%s: %s of an expired key" % (what, name))
        # the add stored a new value: it reads back
        got = c.get("x:add")
        t.check(got is not None and got[1] == b"z",
                "%s: the key added over an expired one reads %r"
                % (what, mt.short(got)))
        kv = mt.kvstats(c)
        t.check_eq((mt.kv_int(kv, "temporary_failures") or 0) - tmpfail0, 0,
                   "%s: temporary failures of the commands" % what)


def wait_purged(t, srv, db, what):
    deadline = time.monotonic() + 20
    n = expired_rows(db)
    while n != 0 and time.monotonic() < deadline:
        time.sleep(0.2)
        n = expired_rows(db)
    with srv.text(timeout=5) as c:
        purged = mt.kvstats(c).get("expired_rows_purged")
    t.check(n == 0, "%s: %d expired rows still in the database after 20 s "
            "(expired_rows_purged %s)" % (what, n, purged),
            "%s: expired rows removed (expired_rows_purged %s)"
            % (what, purged))


def main(t):
    if shutil.which("sqlite3") is None:
        raise mt.Skip("sqlite3 CLI not found")
    tmp = t.tmpdir()
    db = os.path.join(tmp, "exp", "exp.db")
    srv = t.server(mt.persist_args(db) + ["-m", str(MEM_MB)], "exp")
    srv.start()

    # 1. expired while on disk only, server running
    with srv.text(timeout=30) as c:
        mt.require_kvstore(t, c, ("dirty_items", "expired_rows_purged"))
        t0 = time.monotonic()
        store_ttl_keys(t, c)
        fill(t, c, "fill:")
        ok, _ = mt.wait_clean(c, 60)
        t.check(ok, "writes not on disk after 60 s")
    time.sleep(max(0.0, TTL + 1.5 - (time.monotonic() - t0)))
    check_commands(t, srv, "running")
    wait_purged(t, srv, db, "running")

    # 2. expired while the server was down
    with srv.text(timeout=30) as c:
        store_ttl_keys(t, c)
        ok, _ = mt.wait_clean(c, 60)
        t.check(ok, "TTL writes not on disk after 60 s")
    t.stop_checked(srv)
    time.sleep(TTL + 1.5)
    t.check(expired_rows(db) >= len(COMMANDS),
            "the stopped server's database holds %d expired rows, want %d"
            % (expired_rows(db), len(COMMANDS)))
    srv.start()
    check_commands(t, srv, "after restart")
    wait_purged(t, srv, db, "after restart")
    t.stop_checked(srv)


if __name__ == "__main__":
    mt.Test("test_expired_on_disk", time_limit=150).run(main)
