#!/usr/bin/env python3
"""test_crash: acknowledged writes survive kill -9.

1. durability=sync: 4 client threads (2 text, 2 binary), each in its own
   key space, overwrite their keys for ~3 s and record every acknowledged
   write. kill -9 while they are still writing. The crashed database (a
   copy, so the check does not alter it) passes `PRAGMA integrity_check`.
   Restart: every key holds its latest acknowledged value, or a value
   written after it whose reply was cut by the kill; a key never
   acknowledged holds nothing or such an in-flight value.
2. durability=async, flush_interval_ms=100: the same threads write for
   ~2 s, stop; 1 s later (ten flush windows) kill -9. Restart: every
   acknowledged write is back (latest value per key); integrity ok.

MCKVD=/path/to/mckvd python3 tests/persist/test_crash.py
Exit status: 0 pass, 1 fail, 77 skip.
"""

import os
import sys
import threading
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mckvtest as mt  # noqa: E402

NKEYS = 300          # keys per thread
NTHREADS = 4


class Writer(threading.Thread):
    """Overwrites keys w<space>:<tid>:<n> until told to stop, the deadline
    passes, or the connection breaks (the kill)."""

    def __init__(self, port, space, tid, binary, stop, deadline):
        super().__init__(daemon=True)
        self.port, self.space, self.tid = port, space, tid
        self.binary, self.stop, self.deadline = binary, stop, deadline
        self.acked = {}     # key -> latest acknowledged value
        self.unacked = {}   # key -> values sent after it, reply not seen
        self.acks = 0
        self.refused = []   # explicit failure replies
        self.exc = None
        self.last_ack_at = None

    def run(self):
        conn = None
        try:
            conn = (mt.BinClient(self.port, timeout=10) if self.binary
                    else mt.TextClient(self.port, timeout=10))
            seq = 0
            while not self.stop.is_set() and time.monotonic() < self.deadline:
                k = "w%s:%d:%d" % (self.space, self.tid, seq % NKEYS)
                v = ("%d:%d:" % (self.tid, seq)).encode() + \
                    b"abcdefghij" * (seq % 10)
                self.unacked.setdefault(k, []).append(v)
                if self.binary:
                    r = conn.set(k, v, flags=self.tid)
                    ok, why = r.status == mt.ST_OK, "status 0x%02x" % r.status
                else:
                    r = conn.set(k, v, flags=self.tid)
                    ok, why = r == "STORED", r
                if ok:
                    self.acked[k] = v
                    self.unacked[k] = []
                    self.acks += 1
                    self.last_ack_at = time.monotonic()
                else:
                    # refused: must not be stored
                    self.unacked[k].remove(v)
                    if len(self.refused) < 20:
                        self.refused.append((k, why))
                seq += 1
        except (OSError, mt.ProtocolError) as e:
            self.exc = e
        finally:
            if conn is not None:
                conn.close()


def run_writers(t, srv, space, seconds, stop):
    deadline = time.monotonic() + seconds + 5
    ws = [Writer(srv.port, space, i, i % 2 == 1, stop, deadline)
          for i in range(NTHREADS)]
    for w in ws:
        w.start()
    return ws


def join_all(t, ws):
    for w in ws:
        w.join(timeout=15)
        if w.is_alive():
            t.fail("writer thread %d did not finish within 15 s" % w.tid)


def verify(t, srv, ws, allow_inflight, when):
    """Reads every key of every writer; returns the number of bad keys."""
    bad = 0
    checked = 0
    with srv.text(timeout=20) as c:
        for w in ws:
            keys = sorted(set(w.acked) | set(w.unacked))
            got = c.get_many(keys, batch=100)
            for k in keys:
                want = w.acked.get(k)
                g = got.get(k.encode())
                val = g[1] if g else None
                checked += 1
                if val == want and (g is None or g[0] == w.tid):
                    continue
                if allow_inflight and val is not None and \
                        val in w.unacked.get(k, ()) and g[0] == w.tid:
                    continue  # written, reply cut by the kill
                bad += 1
                if bad <= 15:
                    t.fail("%s: %s = %s, want %s (latest acknowledged)%s"
                           % (when, k, mt.short(g), mt.short(want),
                              "; in flight: %s" % mt.short(w.unacked.get(k))
                              if w.unacked.get(k) else ""))
    if bad > 15:
        t.fail("%s: ... %d bad keys in all" % (when, bad))
    t.check(bad == 0, "%s: %d of %d keys lost or wrong" % (when, bad, checked),
            "%s: all %d keys hold their latest acknowledged value"
            % (when, checked))
    return bad


def integrity(t, db, tmp, what):
    copy = mt.copy_db(db, os.path.join(tmp, "copy-" + what.replace(" ", "-")))
    r = mt.db_integrity(copy)
    t.check(r == "ok", "%s: integrity check says %r" % (what, r),
            "%s: integrity check (%s) = ok" % (what, mt.ENGINE))


def phase_sync(t):
    tmp = t.tmpdir()
    db = os.path.join(tmp, "db", "crash-sync.db")
    srv = t.server(mt.persist_args(db, durability="sync"), "sync")
    srv.start()
    with srv.text() as c:
        mt.require_kvstore(t, c)
    stop = threading.Event()
    ws = run_writers(t, srv, "s", 3.0, stop)
    time.sleep(3.0)
    acks = sum(w.acks for w in ws)
    rc = srv.kill()
    t.info("sync: kill -9 after %d acknowledged writes (exit %s)" % (acks, rc))
    stop.set()
    join_all(t, ws)
    for w in ws:
        if w.refused:
            t.fail("sync writer %d: %d writes refused, e.g. %s"
                   % (w.tid, len(w.refused), w.refused[:3]))
        if w.exc is None:
            t.info("writer %d ended without seeing the kill" % w.tid)
    t.check(acks >= 100, "sync: only %d writes acknowledged in 3 s: the test "
            "proves little" % acks)
    t.check(os.path.exists(db), "sync: database %s missing" % db)
    if os.path.exists(db):
        integrity(t, db, tmp, "sync after kill -9")
    srv.start()
    verify(t, srv, ws, True, "sync, after kill -9 and restart")
    t.stop_checked(srv, "sync server (restarted)")
    if os.path.exists(db):
        r = mt.db_integrity(db)
        t.check(r == "ok", "sync, after clean stop: integrity check %r" % r)


def phase_async(t):
    tmp = t.tmpdir()
    db = os.path.join(tmp, "db", "crash-async.db")
    srv = t.server(mt.persist_args(db, durability="async",
                                   flush_interval_ms=100), "async")
    srv.start()
    stop = threading.Event()
    ws = run_writers(t, srv, "a", 2.0, stop)
    time.sleep(2.0)
    stop.set()
    join_all(t, ws)
    t_stop = time.monotonic()
    acks = sum(w.acks for w in ws)
    for w in ws:
        if w.exc is not None:
            t.fail("async writer %d: %s" % (w.tid, w.exc))
        if w.refused:
            t.fail("async writer %d: %d writes refused, e.g. %s"
                   % (w.tid, len(w.refused), w.refused[:3]))
    t.check(acks >= 100, "async: only %d writes acknowledged" % acks)
    time.sleep(max(0.0, t_stop + 1.0 - time.monotonic()))
    try:
        with srv.text(timeout=5) as c:
            s = mt.kvstats(c)
        t.info("async: before kill -9: dirty_items=%s queue_depth=%s "
               "items_persisted=%s commits=%s"
               % (s.get("dirty_items"), s.get("queue_depth"),
                  s.get("items_persisted"), s.get("commits")))
    except (OSError, mt.ProtocolError) as e:
        t.fail("async: stats kvstore before the kill: %s" % e)
    rc = srv.kill()
    t.info("async: kill -9 %.2f s after the last write (%d acknowledged, "
           "exit %s)" % (time.monotonic() - t_stop, acks, rc))
    t.check(os.path.exists(db), "async: database %s missing" % db)
    if os.path.exists(db):
        integrity(t, db, tmp, "async after kill -9")
    srv.start()
    verify(t, srv, ws, False, "async, kill -9 1 s after the last write")
    t.stop_checked(srv, "async server (restarted)")


def main(t):
    if mt.ENGINE == "sqlite" and mt.sqlite_integrity(":memory:") != "ok":
        t.fail("the sqlite3 command-line tool is not usable: %s"
               % mt.sqlite_integrity(":memory:"))
    phase_sync(t)
    phase_async(t)


if __name__ == "__main__":
    mt.Test("test_crash", time_limit=85).run(main)
