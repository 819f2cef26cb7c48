#!/usr/bin/env python3
"""test_restart: every mutating command survives a graceful restart.

Over the text AND the binary protocol (one key space each): set, add,
replace, cas, append, prepend, incr, decr (also binary incr creating a key
from its initial value), touch and gat (a key that would have expired is
kept, a key that would have lived expires), delete (a deleted key stays
deleted, a re-set one comes back), items with exptime 1-2 s (gone after the
restart once their time passed), a relative and an absolute long expiry,
flags, empty and binary-safe values, 64-bit counters.

Then SIGTERM (exit 0), wait until the short expiries passed, restart on the
same database and check the whole state through both protocols, plus CAS:
`gets` returns the same CAS as before the restart, a `cas` with the old
value succeeds, a new set gets a CAS higher than any before (and again after
a second restart).

flush_all, on their own servers since it wipes everything:
  - immediate binary FLUSH and text `flush_all 2` (waited out), keys set
    after each flush survive; SIGTERM; restart: flushed keys stay gone;
  - binary FLUSH with a 2 s delay, SIGTERM at once (flush still pending),
    restart: once the delay has passed the keys are gone, and a key set
    after that survives another restart.

MCKVD=/path/to/mckvd python3 tests/persist/test_restart.py
Exit status: 0 pass, 1 fail, 77 skip.
"""

import os
import random
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mckvtest as mt  # noqa: E402

ABSENT = None


def text_ops(t, c, exp):
    """Runs every mutating text command; fills exp {key: (flags, value) or
    ABSENT}. Returns the monotonic time of the last short-expiry write."""
    def st(got, want, what):
        t.check(got == want, "text %s: reply %r, want %r" % (what, got, want))

    rnd = random.Random(1)
    binval = b"\x00\r\nbin\xff\r\n" + bytes(rnd.getrandbits(8)
                                            for _ in range(1000))
    st(c.set("t:set", "v1", 1), "STORED", "set t:set")
    st(c.set("t:set", "v2-final", 2), "STORED", "set t:set again")
    exp["t:set"] = (2, b"v2-final")
    st(c.set("t:bin", binval, 0xFFFFFFFF), "STORED", "set t:bin")
    exp["t:bin"] = (0xFFFFFFFF, binval)
    st(c.set("t:empty", b""), "STORED", "set t:empty")
    exp["t:empty"] = (0, b"")

    st(c.add("t:add", "added", 3), "STORED", "add t:add")
    st(c.add("t:add", "again", 9), "NOT_STORED", "add existing t:add")
    exp["t:add"] = (3, b"added")

    st(c.set("t:repl", "old"), "STORED", "set t:repl")
    st(c.replace("t:repl", "new", 4), "STORED", "replace t:repl")
    exp["t:repl"] = (4, b"new")
    st(c.replace("t:repl_missing", "x"), "NOT_STORED", "replace missing")
    exp["t:repl_missing"] = ABSENT

    st(c.set("t:cas", "c1"), "STORED", "set t:cas")
    g = c.gets("t:cas")
    if t.check(g is not None and g[2] is not None,
               "text gets t:cas: %r" % (g,)):
        st(c.cas("t:cas", "c2", g[2], 5), "STORED", "cas t:cas (right cas)")
        st(c.cas("t:cas", "c3", g[2]), "EXISTS", "cas t:cas (stale cas)")
    exp["t:cas"] = (5, b"c2")

    st(c.set("t:app", "mid", 7), "STORED", "set t:app")
    st(c.append("t:app", "-end"), "STORED", "append t:app")
    st(c.prepend("t:app", "start-"), "STORED", "prepend t:app")
    exp["t:app"] = (7, b"start-mid-end")

    st(c.set("t:incr", "10"), "STORED", "set t:incr")
    st(c.incr("t:incr", 5), 15, "incr t:incr")
    exp["t:incr"] = (0, b"15")
    # same digit count before and after: memcached pads a shrinking decr
    # result with spaces, so "10" decr 3 may read "7 "
    st(c.set("t:decr", "19"), "STORED", "set t:decr")
    st(c.decr("t:decr", 3), 16, "decr t:decr")
    exp["t:decr"] = (0, b"16")
    st(c.set("t:big", "18446744073709551610"), "STORED", "set t:big")
    st(c.incr("t:big", 3), 18446744073709551613, "incr t:big")
    exp["t:big"] = (0, b"18446744073709551613")

    st(c.set("t:del", "x"), "STORED", "set t:del")
    st(c.delete("t:del"), "DELETED", "delete t:del")
    exp["t:del"] = ABSENT
    st(c.set("t:del_re", "a"), "STORED", "set t:del_re")
    st(c.delete("t:del_re"), "DELETED", "delete t:del_re")
    st(c.set("t:del_re", "b"), "STORED", "set t:del_re again")
    exp["t:del_re"] = (0, b"b")

    st(c.set("t:long", "long", 0, 3600), "STORED", "set t:long")
    exp["t:long"] = (0, b"long")
    st(c.set("t:abs", "abs", 0, int(time.time()) + 3600), "STORED",
       "set t:abs (absolute exptime)")
    exp["t:abs"] = (0, b"abs")

    # short expiries and expiry changes
    st(c.set("t:exp1", "e1", 0, 1), "STORED", "set t:exp1")
    exp["t:exp1"] = ABSENT
    st(c.set("t:exp2", "e2", 0, 2), "STORED", "set t:exp2")
    exp["t:exp2"] = ABSENT
    st(c.set("t:touch_keep", "tk", 0, 2), "STORED", "set t:touch_keep")
    st(c.touch("t:touch_keep", 3600), "TOUCHED", "touch t:touch_keep 3600")
    exp["t:touch_keep"] = (0, b"tk")
    st(c.set("t:touch_exp", "te", 0, 0), "STORED", "set t:touch_exp")
    st(c.touch("t:touch_exp", 2), "TOUCHED", "touch t:touch_exp 2")
    exp["t:touch_exp"] = ABSENT
    st(c.set("t:gat_keep", "gk", 11, 2), "STORED", "set t:gat_keep")
    st(c.gat(3600, "t:gat_keep"), (11, b"gk"), "gat 3600 t:gat_keep")
    exp["t:gat_keep"] = (11, b"gk")
    st(c.set("t:gat_exp", "ge", 12, 0), "STORED", "set t:gat_exp")
    st(c.gat(2, "t:gat_exp"), (12, b"ge"), "gat 2 t:gat_exp")
    exp["t:gat_exp"] = ABSENT
    return time.monotonic()


def bin_ops(t, b, exp):
    """Same over the binary protocol (keys b:...)."""
    def st(r, want, what):
        t.check(r.status == want, "binary %s: status 0x%02x (%r), want 0x%02x"
                % (what, r.status, r.value[:80], want))
        return r

    OK = mt.ST_OK
    rnd = random.Random(2)
    binval = b"\r\n\x00" + bytes(rnd.getrandbits(8) for _ in range(3000))
    st(b.set("b:set", "v1", 1), OK, "set b:set")
    st(b.set("b:set", "v2-final", 2), OK, "set b:set again")
    exp["b:set"] = (2, b"v2-final")
    st(b.set("b:bin", binval, 0x80000001), OK, "set b:bin")
    exp["b:bin"] = (0x80000001, binval)

    st(b.add("b:add", "added", 3), OK, "add b:add")
    st(b.add("b:add", "again"), mt.ST_KEY_EEXISTS, "add existing b:add")
    exp["b:add"] = (3, b"added")

    st(b.set("b:repl", "old"), OK, "set b:repl")
    st(b.replace("b:repl", "new", 4), OK, "replace b:repl")
    exp["b:repl"] = (4, b"new")
    st(b.replace("b:repl_missing", "x"), mt.ST_KEY_ENOENT, "replace missing")
    exp["b:repl_missing"] = ABSENT

    r = st(b.set("b:cas", "c1"), OK, "set b:cas")
    st(b.cas("b:cas", "c2", r.cas, 5), OK, "cas b:cas (right cas)")
    st(b.cas("b:cas", "c3", r.cas), mt.ST_KEY_EEXISTS, "cas b:cas (stale)")
    exp["b:cas"] = (5, b"c2")

    st(b.set("b:app", "mid", 7), OK, "set b:app")
    st(b.append("b:app", "-end"), OK, "append b:app")
    st(b.prepend("b:app", "start-"), OK, "prepend b:app")
    exp["b:app"] = (7, b"start-mid-end")

    st(b.set("b:incr", "10"), OK, "set b:incr")
    r = st(b.incr("b:incr", 5), OK, "incr b:incr")
    t.check_eq(r.counter, 15, "binary incr b:incr")
    exp["b:incr"] = (0, b"15")
    st(b.set("b:decr", "19"), OK, "set b:decr")
    r = st(b.decr("b:decr", 3), OK, "decr b:decr")
    t.check_eq(r.counter, 16, "binary decr b:decr")
    exp["b:decr"] = (0, b"16")
    r = st(b.incr("b:incr_new", 1, initial=100, exptime=0), OK,
           "incr b:incr_new (create from initial)")
    t.check_eq(r.counter, 100, "binary incr creating b:incr_new")
    r = st(b.incr("b:incr_new", 1, initial=100, exptime=0), OK,
           "incr b:incr_new")
    t.check_eq(r.counter, 101, "binary incr b:incr_new")
    exp["b:incr_new"] = (0, b"101")

    st(b.set("b:del", "x"), OK, "set b:del")
    st(b.delete("b:del"), OK, "delete b:del")
    exp["b:del"] = ABSENT
    st(b.set("b:del_re", "a"), OK, "set b:del_re")
    st(b.delete("b:del_re"), OK, "delete b:del_re")
    st(b.set("b:del_re", "b"), OK, "set b:del_re again")
    exp["b:del_re"] = (0, b"b")

    st(b.set("b:long", "long", 0, 3600), OK, "set b:long")
    exp["b:long"] = (0, b"long")

    st(b.set("b:exp1", "e1", 0, 1), OK, "set b:exp1")
    exp["b:exp1"] = ABSENT
    st(b.set("b:exp2", "e2", 0, 2), OK, "set b:exp2")
    exp["b:exp2"] = ABSENT
    st(b.set("b:touch_keep", "tk", 0, 2), OK, "set b:touch_keep")
    st(b.touch("b:touch_keep", 3600), OK, "touch b:touch_keep 3600")
    exp["b:touch_keep"] = (0, b"tk")
    st(b.set("b:touch_exp", "te", 0, 0), OK, "set b:touch_exp")
    st(b.touch("b:touch_exp", 2), OK, "touch b:touch_exp 2")
    exp["b:touch_exp"] = ABSENT
    st(b.set("b:gat_keep", "gk", 11, 2), OK, "set b:gat_keep")
    r = st(b.gat("b:gat_keep", 3600), OK, "gat b:gat_keep 3600")
    t.check_eq((r.flags, r.value), (11, b"gk"), "binary gat b:gat_keep")
    exp["b:gat_keep"] = (11, b"gk")
    st(b.set("b:gat_exp", "ge", 12, 0), OK, "set b:gat_exp")
    r = st(b.gat("b:gat_exp", 2), OK, "gat b:gat_exp 2")
    exp["b:gat_exp"] = ABSENT
    return time.monotonic()


def check_state(t, c, b, exp, when, skip=()):
    """Every key of exp read over text and binary. Returns the number of
    mismatches."""
    bad = 0
    for k, want in sorted(exp.items()):
        if k in skip:
            continue
        got = c.get(k)
        if got != want:
            bad += 1
            t.fail("%s: text get %s = %s, want %s"
                   % (when, k, mt.short(got), mt.short(want)))
        r = b.get(k)
        if want is ABSENT:
            ok = r.status == mt.ST_KEY_ENOENT
            got = "status 0x%02x" % r.status
        else:
            ok = r.status == mt.ST_OK and (r.flags, r.value) == want
            got = ("status 0x%02x %s" % (r.status, mt.short((r.flags,
                                                             r.value))))
        if not ok:
            bad += 1
            t.fail("%s: binary get %s = %s, want %s"
                   % (when, k, got, mt.short(want)))
    return bad


def main_state(t):
    tmp = t.tmpdir()
    db = os.path.join(tmp, "sub", "restart.db")
    srv = t.server(mt.persist_args(db), "restart")
    srv.start()
    exp = {}
    with srv.text() as c, srv.binary() as b:
        mt.require_kvstore(t, c)
        t_short = max(text_ops(t, c, exp), bin_ops(t, b, exp))
        # everything but the short expiries, before the restart
        short = {k for k in exp if "exp" in k and exp[k] is ABSENT}
        pre = {k: v for k, v in exp.items() if k not in short}
        bad = check_state(t, c, b, pre, "before restart")
        t.check(bad == 0, "state wrong before any restart (not a persistence"
                " problem; the checks below may be meaningless)",
                "state right before the restart (%d keys)" % len(pre))
        cas_before = {}
        for k, v in exp.items():
            if v is ABSENT:
                continue
            g = c.gets(k)
            if g is None or g[2] is None:
                t.fail("gets %s before restart: %r" % (k, g))
                continue
            cas_before[k] = g[2]
            r = b.get(k)
            t.check(r.cas == g[2], "binary get %s CAS %d != text gets CAS %d"
                    % (k, r.cas, g[2]))
        max_cas = max(cas_before.values()) if cas_before else 0
        t.info("%d keys, CAS up to %d" % (len(exp), max_cas))
    t.stop_checked(srv, "first server")
    t.check(os.path.exists(db), "database %s not created" % db)

    # wait for the short expiries (exptime <= 2 s, 1 s clock granularity)
    rest = t_short + 3.5 - time.monotonic()
    if rest > 0:
        time.sleep(rest)

    srv.start()
    with srv.text() as c, srv.binary() as b:
        bad = check_state(t, c, b, exp, "after restart")
        t.check(bad == 0, "state after restart: %d mismatches" % bad,
                "all %d keys right after restart (text and binary)"
                % len(exp))
        same = 0
        for k, cas in sorted(cas_before.items()):
            g = c.gets(k)
            if g is None:
                continue  # already reported
            if g[2] != cas:
                t.fail("after restart: gets %s CAS %s, before restart %d"
                       % (k, g[2], cas))
            else:
                same += 1
        t.check(same == len(cas_before), "CAS changed across restart",
                "gets returns the pre-restart CAS for all %d keys" % same)
        r = c.set("t:newcas", "n")
        g = c.gets("t:newcas")
        t.check(r == "STORED" and g is not None and g[2] is not None
                and g[2] > max_cas,
                "new set after restart: CAS %s not above the pre-restart "
                "maximum %d" % (g and g[2], max_cas),
                "new set after restart gets CAS %s > %d"
                % (g and g[2], max_cas))
        rb = b.set("b:newcas", "n")
        t.check(rb.status == mt.ST_OK and rb.cas > max_cas,
                "binary set after restart: CAS %d not above %d"
                % (rb.cas, max_cas))
        new_max = max(max_cas, g[2] if g and g[2] else 0, rb.cas)
        # old CAS values still valid for cas
        if "t:cas" in cas_before:
            t.check_eq(c.cas("t:cas", "c4", cas_before["t:cas"], 5), "STORED",
                       "text cas with the pre-restart CAS")
        if "b:cas" in cas_before:
            r = b.cas("b:cas", "c4", cas_before["b:cas"], 5)
            t.check(r.status == mt.ST_OK, "binary cas with the pre-restart "
                    "CAS: status 0x%02x" % r.status)
        # restored counters are still counters
        t.check_eq(c.incr("t:incr", 1), 16, "incr after restart")
        t.check_eq(b.incr("b:decr", 1).counter, 17,
                   "binary incr after restart")
        exp.update({"t:cas": (5, b"c4"), "b:cas": (5, b"c4"),
                    "t:incr": (0, b"16"), "b:decr": (0, b"17"),
                    "t:newcas": (0, b"n"), "b:newcas": (0, b"n")})
    t.stop_checked(srv, "second server")

    srv.start()
    with srv.text() as c, srv.binary() as b:
        bad = check_state(t, c, b, exp, "after 2nd restart")
        t.check(bad == 0, "state after 2nd restart: %d mismatches" % bad,
                "all keys right after a second restart")
        c.set("t:newcas2", "n")
        g = c.gets("t:newcas2")
        t.check(g is not None and g[2] is not None and g[2] > new_max,
                "set after 2nd restart: CAS %s not above %d"
                % (g and g[2], new_max),
                "CAS still growing after a second restart")
    t.stop_checked(srv, "third server")


def main_flush(t):
    """Immediate and delayed flush, waited out before the restart."""
    tmp = t.tmpdir()
    db = os.path.join(tmp, "flush.db")
    srv = t.server(mt.persist_args(db), "flush")
    srv.start()
    a_keys = ["fa:%d" % i for i in range(20)]
    b_keys = ["fb:%d" % i for i in range(20)]
    with srv.text() as c, srv.binary() as b:
        for k in a_keys:
            c.set(k, "A" + k)
        r = b.flush()
        t.check(r.status == mt.ST_OK, "binary flush: status 0x%02x" % r.status)
        t.check_eq(c.get_multi(a_keys), {}, "gets after binary flush")
        for k in b_keys:
            b.set(k, "B" + k)
        t.check_eq(c.flush_all(2), "OK", "flush_all 2")
        t_flush = time.monotonic()
        time.sleep(3.2)
        t.check_eq(c.get_multi(b_keys), {}, "gets %.1f s after flush_all 2"
                   % (time.monotonic() - t_flush))
        c.set("fc:after", "survives", 9)
        b.set("fc:after_bin", "survives too", 10)
    t.stop_checked(srv, "flush server")
    srv.start()
    with srv.text() as c:
        got = c.get_multi(a_keys + b_keys)
        t.check(got == {}, "after restart, %d flushed keys came back: %s"
                % (len(got), sorted(got)[:5]),
                "flushed keys (immediate and delayed flush) stay gone")
        t.check_eq(c.get("fc:after"), (9, b"survives"),
                   "key set after the flush, after restart")
        t.check_eq(c.get("fc:after_bin"), (10, b"survives too"),
                   "binary key set after the flush, after restart")
    t.stop_checked(srv, "flush server (restarted)")


def main_pending_flush(t):
    """Binary FLUSH with a 2 s delay, restart before it takes effect."""
    tmp = t.tmpdir()
    db = os.path.join(tmp, "pending.db")
    srv = t.server(mt.persist_args(db), "pending-flush")
    srv.start()
    keys = ["fp:%d" % i for i in range(20)]
    with srv.text() as c, srv.binary() as b:
        for k in keys:
            c.set(k, "P" + k)
        r = b.flush(delay=2)
        t_flush = time.monotonic()
        t.check(r.status == mt.ST_OK, "binary flush delay 2: status 0x%02x"
                % r.status)
    t.stop_checked(srv, "pending-flush server")
    srv.start()
    rest = t_flush + 3.5 - time.monotonic()
    if rest > 0:
        time.sleep(rest)
    with srv.text() as c:
        got = c.get_multi(keys)
        t.check(got == {}, "a delayed flush_all pending at SIGTERM was lost: "
                "%d keys still there %.1f s after 'flush delay 2'"
                % (len(got), time.monotonic() - t_flush),
                "delayed flush pending across a restart took effect")
        c.set("fp:after", "after")
    t.stop_checked(srv, "pending-flush server (restarted)")
    srv.start()
    with srv.text() as c:
        t.check_eq(c.get("fp:after"), (0, b"after"),
                   "key set after the delayed flush took effect, after "
                   "another restart")
        t.check_eq(c.get_multi(keys), {}, "flushed keys after 2nd restart")
    t.stop_checked(srv, "pending-flush server (2nd restart)")


def main(t):
    main_state(t)
    main_flush(t)
    main_pending_flush(t)


if __name__ == "__main__":
    mt.Test("test_restart", time_limit=85).run(main)
