#!/usr/bin/env python3
"""test_disk_fault: a full disk does not lose or block accepted writes.

Needs root (mounts a tmpfs); skipped (77) when not root or when the mount
fails. The database lives on a 2 MiB tmpfs. Write 4 KiB values until the
tmpfs is full (the server keeps answering from memory; dirty limits raised
to 16/32 MiB so backpressure does not stop the writes first):
  - `engine_errors` > 0 and dirty_items > 0;
  - the server is alive and every acknowledged key reads back right;
then grow the tmpfs to 64 MiB (remount): dirty_items drains to 0 by itself
(the server retries; bounded wait); SIGTERM (exit 0); restart: every
acknowledged write is back; PRAGMA integrity_check = ok. The tmpfs is
unmounted at the end however the test ends.

MCKVD=/path/to/mckvd python3 tests/persist/test_disk_fault.py
Exit status: 0 pass, 1 fail, 77 skip.
"""

import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mckvtest as mt  # noqa: E402

VSIZE = 4096
MAX_KEYS = 3000          # 12 MiB: six times the tmpfs


def key(i):
    return "df:%05d" % i


def val(i):
    return ((b"%05d-" % i) * (VSIZE // 6 + 1))[:VSIZE]


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    return r.returncode, r.stdout.decode(errors="replace").strip()


def mount_tmpfs(t, where, size):
    rc, out = run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs",
                   where])
    if rc != 0:
        raise mt.Skip("cannot mount a tmpfs (%s)" % out)

    def umount():
        rc, out = run(["umount", where])
        if rc != 0:
            t.log("umount %s: %s; trying a lazy unmount" % (where, out))
            run(["umount", "-l", where])
    t.at_cleanup(umount)


def main(t):
    if os.geteuid() != 0:
        raise mt.Skip("needs root to mount a tmpfs")
    tmp = t.tmpdir()
    mnt = os.path.join(tmp, "mnt")
    os.mkdir(mnt)
    mount_tmpfs(t, mnt, "2m")
    db = os.path.join(mnt, "db", "fault.db")
    srv = t.server(mt.persist_args(db, dirty_soft_limit_mb=16,
                                   dirty_hard_limit_mb=32), "fault")
    srv.start()
    acked = set()
    refused = {}
    with srv.text(timeout=20) as c:
        mt.require_kvstore(t, c, ("dirty_items", "engine_errors"))
        t0 = time.monotonic()
        errors_at = None
        s = {}
        i = 0
        while i < MAX_KEYS and time.monotonic() - t0 < 20:
            idx = list(range(i, min(MAX_KEYS, i + 50)))
            replies = c.set_many([(key(j), val(j)) for j in idx], batch=50)
            for j, r in zip(idx, replies):
                if r == "STORED":
                    acked.add(j)
                else:
                    refused[r] = refused.get(r, 0) + 1
            i = idx[-1] + 1
            s = mt.kvstats(c)
            if errors_at is None and (mt.kv_int(s, "engine_errors") or 0) > 0:
                errors_at = i
                t.info("first engine error after %d keys (%.1f MiB)"
                       % (i, i * VSIZE / 2.0 ** 20))
            if errors_at is not None and i >= errors_at + 300:
                break
        t.info("wrote %d keys in %.1f s: %d stored, refused %s"
               % (i, time.monotonic() - t0, len(acked), refused))
        t.check(not refused, "writes refused while the disk was full: %s"
                % refused)
        if errors_at is None:
            ok, s = mt.wait_kvstat(
                c, lambda s: (mt.kv_int(s, "engine_errors") or 0) > 0, 10)
        t.check((mt.kv_int(s, "engine_errors") or 0) > 0,
                "engine_errors = %s after writing %.1f MiB to a 2 MiB disk"
                % (s.get("engine_errors"), i * VSIZE / 2.0 ** 20),
                "engine_errors = %s with the disk full"
                % s.get("engine_errors"))
        t.check((mt.kv_int(s, "dirty_items") or 0) > 0,
                "dirty_items = %s with the disk full" % s.get("dirty_items"),
                "dirty_items = %s with the disk full (queue_depth %s)"
                % (s.get("dirty_items"), s.get("queue_depth")))
        t.check(srv.alive(), "the server died with the disk full")

        # reads still work, from memory
        keys = sorted(acked)
        got = c.get_many([key(j) for j in keys], batch=100)
        bad = sum(1 for j in keys if got.get(key(j).encode()) != (0, val(j)))
        t.check(bad == 0, "disk full: %d of %d acknowledged keys read wrong"
                % (bad, len(keys)),
                "disk full: all %d acknowledged keys read right" % len(keys))

        rc, out = run(["mount", "-o", "remount,size=64m", mnt])
        if not t.check(rc == 0, "remount size=64m failed: %s" % out):
            return
        t.info("tmpfs grown to 64 MiB")
        ok, s = mt.wait_clean(c, 40)
        t.check(ok, "dirty_items=%s queue_depth=%s 40 s after the disk got "
                "space (engine_errors=%s)" % (s.get("dirty_items"),
                                              s.get("queue_depth"),
                                              s.get("engine_errors")),
                "backlog drained by itself after the disk got space "
                "(items_persisted=%s)" % s.get("items_persisted"))
    t.stop_checked(srv, "server", timeout=30)

    srv.start()
    with srv.text(timeout=20) as c:
        keys = sorted(acked)
        got = c.get_many([key(j) for j in keys], batch=100)
        bad = [j for j in keys if got.get(key(j).encode()) != (0, val(j))]
        for j in bad[:5]:
            t.fail("after restart: %s = %s" % (
                key(j), mt.short(got.get(key(j).encode()))))
        t.check(not bad, "after restart: %d of %d acknowledged keys lost or "
                "wrong" % (len(bad), len(keys)),
                "after restart: all %d acknowledged keys back" % len(keys))
    t.stop_checked(srv, "restarted server")
    r = mt.sqlite_integrity(db)
    t.check(r == "ok", "PRAGMA integrity_check: %r" % r,
            "PRAGMA integrity_check = ok")


if __name__ == "__main__":
    mt.Test("test_disk_fault", time_limit=85).run(main)
