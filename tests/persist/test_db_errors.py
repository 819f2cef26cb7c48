#!/usr/bin/env python3
"""test_db_errors: unusable and damaged databases say what is wrong.

1. Start-up. For each unusable db_path (a garbled header that keeps
   SQLite's magic, random bytes, a page 1 overwritten after the header, a
   file truncated to half, the root page of the table or of its key index
   overwritten, a directory, a read-only file, a read-only directory) mckvd exits non-zero within 15 s with one line that names the
   path, SQLite's own reason (the result code's name) and what to do.
   File modes do not bind root, so the read-only cases run the server with
   `-u nobody` when the test runs as root (as a deployment would).
2. Damage found while running. A database of 20,000 x 1 KiB is written,
   the server stopped, and ten leaf pages of the kv table in the middle of
   the file overwritten (not the header). Started again with -m 8 and one
   fetcher (the warmup stops at the memory limit, before the damage), a
   get of a key on a damaged page makes the fetcher meet SQLITE_CORRUPT:
     - `stats kvstore` says engine_state damaged, engine_corrupt 1;
     - the log (log_file) says "is damaged" once, however many requests;
     - a set (and a delete) is refused with SERVER_ERROR temporary failure
       and counted in writes_refused_damaged;
     - intact keys, in memory or read from the file, still read back right;
     - one client repeating the failing get for 3 s (at most 20,000
       requests) adds a bounded number of lines to log_file, and `stats`
       counts the rest in log_suppressed;
     - SIGTERM stops it (exit 0, within the harness's 30 s).
3. The repair of docs/operations.md (sqlite3 .dump | sed | sqlite3, when
   the sqlite3 CLI is installed): the server starts on the repaired file,
   engine_state ok, intact keys read back and a set is stored.

MCKVD=/path/to/mckvd python3 tests/persist/test_db_errors.py
Exit status: 0 pass, 1 fail, 77 skip.
"""

import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mckvtest as mt  # noqa: E402

NKEYS = 20000
VSIZE = 1000
NOBODY = 65534


def key(i):
    return "dbe:%05d" % i


def val(i):
    return (b"%05d." % i) * (VSIZE // 6) + b"x" * (VSIZE % 6)


def start_fails(t, db, what, expect, as_nobody=False):
    """Runs mckvd on db; checks it exits non-zero in time with a line
    naming db and every string of `expect`."""
    args = [mt.mckvd_path(), "-p", str(mt.free_port()), "-l", "127.0.0.1",
            "-t", "1", "--engine=sqlite", "--db-path=%s" % db]
    if as_nobody and os.geteuid() == 0:
        args += ["-u", "nobody"]
    try:
        r = subprocess.run(args, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=15)
    except subprocess.TimeoutExpired:
        t.fail("%s: mckvd did not exit within 15 s" % what)
        return
    out = r.stdout.decode(errors="replace").strip()
    if not t.check(r.returncode != 0, "%s: mckvd exited 0: %s" % (what, out)):
        return
    line = [l for l in out.splitlines() if db in l]
    missing = [e for e in expect if not line or e not in line[-1]]
    t.check(not missing, "%s: the start-up error lacks %s:\n    %s"
            % (what, missing, out),
            "%s: %s" % (what, line[-1] if line else out))


def write_db(t, db, n):
    srv = t.server(mt.persist_args(db), "writer")
    srv.start()
    with srv.text(timeout=30) as c:
        mt.require_kvstore(t, c, ("dirty_items", "engine_errors"))
        c.set_many([(key(i), val(i)) for i in range(n)])
        t.check(mt.wait_clean(c, 30)[0], "writer: dirty_items did not reach 0")
    t.check_eq(t.stop_checked(srv, "writer"), 0, "writer exit status")


def startup_cases(t, tmp):
    good = os.path.join(tmp, "good", "good.db")
    write_db(t, good, 2000)
    data = open(good, "rb").read()
    rnd = random.Random(9)

    def case(name, content):
        p = os.path.join(tmp, name)
        with open(p, "wb") as f:
            f.write(content)
        return p

    d = bytearray(data)
    d[16:100] = bytes(rnd.randrange(256) for _ in range(84))
    start_fails(t, case("header.db", bytes(d)), "garbled header",
                ["not an SQLite database", "SQLITE_NOTADB", "move it away"])
    start_fails(t, case("random.db", bytes(rnd.randrange(256)
                                            for _ in range(65536))),
                "random bytes", ["not an SQLite database", "SQLITE_NOTADB"])
    d = bytearray(data)
    d[100:4096] = b"\xff" * 3996
    start_fails(t, case("page1.db", bytes(d)), "page 1 overwritten",
                ["damaged", "SQLITE_CORRUPT", "docs/operations.md"])
    start_fails(t, case("truncated.db", data[:len(data) // 2]), "truncated",
                ["damaged", "SQLITE_CORRUPT"])
    ro = sqlite3.connect("file:%s?immutable=1" % good, uri=True)
    page_size = ro.execute("PRAGMA page_size").fetchone()[0]
    for tree in ("kv", "kv_key"):
        root = ro.execute("SELECT rootpage FROM sqlite_schema WHERE name = ?",
                          (tree,)).fetchone()[0]
        d = bytearray(data)
        d[(root - 1) * page_size:root * page_size] = b"\xff" * page_size
        start_fails(t, case("root-%s.db" % tree, bytes(d)),
                    "root page of %s overwritten" % tree,
                    ["damaged", "SQLITE_CORRUPT"])
    ro.close()
    dirp = os.path.join(tmp, "adir.db")
    os.mkdir(dirp)
    start_fails(t, dirp, "a directory", ["is a directory", "Is a directory",
                                         "must name a file"])

    # read-only: nobody must be able to reach the directories
    os.chmod(tmp, 0o755)
    rof = os.path.join(tmp, "rofile")
    os.mkdir(rof)
    os.chown(rof, NOBODY, -1)
    p = os.path.join(rof, "ro.db")
    shutil.copyfile(good, p)
    os.chmod(p, 0o444)
    start_fails(t, p, "read-only file", ["read-only", "permissions"],
                as_nobody=True)
    rod = os.path.join(tmp, "rodir")
    os.mkdir(rod)
    p = os.path.join(rod, "rw.db")
    shutil.copyfile(good, p)
    os.chown(p, NOBODY, -1)
    os.chmod(rod, 0o555)
    start_fails(t, p, "read-only directory",
                ["read-only", "SQLITE_READONLY_DIRECTORY", rod], as_nobody=True)
    p = os.path.join(rod, "new.db")
    start_fails(t, p, "new file in a read-only directory",
                ["cannot open or create", rod], as_nobody=True)
    os.chmod(rod, 0o755)


def damage_middle(t, db):
    """Overwrites ten leaf pages of kv from the middle of the table;
    returns (intact, damaged) key indexes as SQLite itself reads them."""
    ro = sqlite3.connect("file:%s?immutable=1" % db, uri=True)
    page_size = ro.execute("PRAGMA page_size").fetchone()[0]
    try:
        leaves = [r[0] for r in ro.execute(
            "SELECT pageno FROM dbstat WHERE name = 'kv' AND pagetype = 'leaf'"
            " ORDER BY pageno")]
    except sqlite3.OperationalError as e:
        raise mt.Skip("python's sqlite3 has no dbstat table (%s)" % e)
    ro.close()
    t.check(len(leaves) > 100, "only %d leaf pages" % len(leaves))
    mid = int(len(leaves) * 0.6)
    with open(db, "r+b") as f:
        for pg in leaves[mid:mid + 10]:
            f.seek((pg - 1) * page_size)
            f.write(b"\xff" * page_size)
    ro = sqlite3.connect("file:%s?immutable=1" % db, uri=True)
    intact, damaged = [], []
    for i in range(NKEYS):
        try:
            row = ro.execute("SELECT value FROM kv WHERE key = ?",
                             (key(i).encode(),)).fetchone()
            if row is not None and bytes(row[0]) == val(i):
                intact.append(i)
        except sqlite3.DatabaseError:
            damaged.append(i)
    ro.close()
    return intact, damaged


def log_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace").splitlines()
    except OSError:
        return []


def check_damaged_run(t, tmp, db, intact, damaged):
    logf = os.path.join(tmp, "damaged.log")
    srv = t.server(mt.persist_args(db, memory_limit=8, fetchers=1,
                                   log_file=logf), "damaged")
    srv.start()
    with srv.text(timeout=20) as c:
        # the warmup loads values until the memory limit, then reads on
        # for the keys (the filter of keys on disk): it meets the damage
        t.check(mt.wait_kvstat(c, lambda s: s.get("warmup_state") == "done",
                               30)[0], "warmup did not finish")
        s = mt.kvstats(c)
        t.check_eq(s.get("engine_state"), "damaged",
                   "engine_state once the warmup read the damaged pages")
        t.check_eq(s.get("disk_filter_ready"), "0",
                   "the filter after a warmup that could not read every row")
        bad = damaged[len(damaged) // 2]
        c.send(("get %s\r\n" % key(bad)).encode())
        t.check_eq(c.readline(), b"SERVER_ERROR temporary failure",
                   "get of a key on a damaged page")
        s = mt.kvstats(c)
        t.check_eq(s.get("engine_state"), "damaged", "engine_state")
        t.check_eq(s.get("engine_corrupt"), "1", "engine_corrupt")
        # writes are refused: nothing acknowledged that cannot be persisted
        c.send(b"set dbe:new 0 0 3\r\nabc\r\n")
        t.check_eq(c.readline(), b"SERVER_ERROR temporary failure",
                   "set on a damaged database")
        c.send(("delete %s\r\n" % key(intact[0])).encode())
        t.check_eq(c.readline(), b"SERVER_ERROR temporary failure",
                   "delete on a damaged database")
        t.check((mt.kv_int(mt.kvstats(c), "writes_refused_damaged") or 0) >= 2,
                "writes_refused_damaged not counted")
        # reads of intact keys: from memory (early rows) and from the file
        rnd = random.Random(3)
        sample = intact[:20] + rnd.sample(intact, 200)
        wrong = [i for i in sample if c.get(key(i)) != (0, val(i))]
        t.check(not wrong, "%d of %d intact keys did not read back: %s"
                % (len(wrong), len(sample), wrong[:5]),
                "%d intact keys read back" % len(sample))
        # one client repeating a failing request: the log stays bounded
        before = len(log_lines(logf))
        t0, n = time.monotonic(), 0
        while n < 20000 and time.monotonic() - t0 < 3:
            c.send(("get %s\r\n" % key(damaged[n % len(damaged)])).encode())
            line = c.readline()
            while line.startswith(b"VALUE"):
                c.read_exact(VSIZE + 2)
                line = c.readline()
            n += 1
        added = len(log_lines(logf)) - before
        t.check(n >= 100, "only %d requests in 3 s" % n)
        t.check(added <= 20, "%d requests wrote %d log lines" % (n, added),
                "%d failing requests wrote %d log lines" % (n, added))
        st = c.stats()
        t.check((mt.kv_int(st, "log_suppressed") or 0) > 0,
                "log_suppressed: %r" % st.get("log_suppressed"))
    lines = log_lines(logf)
    said = [l for l in lines if "persistence: the database" in l and
            "is damaged" in l]
    t.check_eq(len(said), 1, "log lines saying the database is damaged")
    if said:
        t.check(db in said[0] and "Stop mckvd" in said[0],
                "the damaged line lacks the path or the repair: %s" % said[0],
                "log: %s" % mt.short(said[0], 160))
    t.check_eq(t.stop_checked(srv, "damaged server"), 0, "exit status")


def check_repair(t, tmp, db, intact):
    if shutil.which("sqlite3") is None:
        t.info("sqlite3 CLI not installed: the repair is not tried")
        return
    # the recipe of docs/operations.md, "A damaged database"
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.rename(db + suffix, db + ".damaged" + suffix)
    dump = subprocess.run(["sqlite3", db + ".damaged", ".dump"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          timeout=60).stdout
    fixed = dump.replace(b"\nROLLBACK; -- due to errors\n", b"\nCOMMIT;\n")
    r = subprocess.run(["sqlite3", db], input=fixed, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    t.check_eq(r.returncode, 0, "sqlite3 loading the dump")
    srv = t.server(mt.persist_args(db, memory_limit=8, fetchers=1),
                   "repaired")
    srv.start()
    with srv.text(timeout=20) as c:
        t.check_eq(mt.kvstats(c).get("engine_state"), "ok",
                   "engine_state after the repair")
        rnd = random.Random(4)
        sample = rnd.sample(intact, 100)
        wrong = [i for i in sample if c.get(key(i)) != (0, val(i))]
        t.check(not wrong, "after the repair %d keys did not read back"
                % len(wrong), "repaired: intact keys read back")
        t.check_eq(c.set("dbe:new", b"abc"), "STORED", "set after repair")
    t.check_eq(t.stop_checked(srv, "repaired server"), 0, "exit status")


def main(t):
    tmp = t.tmpdir()
    startup_cases(t, tmp)
    db = os.path.join(tmp, "big", "big.db")
    write_db(t, db, NKEYS)
    intact, damaged = damage_middle(t, db)
    t.info("%d intact keys, %d on damaged pages" % (len(intact), len(damaged)))
    if not t.check(len(damaged) > 0 and len(intact) > NKEYS // 2,
                   "the damage did not go as planned"):
        return
    check_damaged_run(t, tmp, db, intact, damaged)
    check_repair(t, tmp, db, intact)


if __name__ == "__main__":
    mt.Test("test_db_errors", time_limit=150).run(main)
