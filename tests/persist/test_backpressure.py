#!/usr/bin/env python3
"""test_backpressure: a slow disk slows writers down, never loses data.

Server with --engine-delay-us=2000 (every engine put takes 2 ms: about
4 MiB/s of 8 KiB values), --dirty-soft-limit-mb=1, --dirty-hard-limit-mb=4.
Two connections (text and binary) write 8 KiB values as fast as they can,
each keeping 16 requests in flight, over 256 keys each: some writes are
delayed (`throttled_writes` > 0, waited for at most 15 s).

A throttle that works keeps two connections near the soft limit (each
parked connection adds one write per delay), so the hard limit is then
reached with a burst: 800 more connections (half text, half binary) each
send one 8 KiB set at once, while the two writers go on (up to 3 bursts,
until both protocols saw a refusal):
  - past the hard limit writes are refused: text
    `SERVER_ERROR temporary failure`, binary status 0x86 (counted; each
    protocol must see at least one; the stat temporary_failures at least
    the count seen);
  - no other reply than those and STORED / status 0;
  - a third connection's gets keep being answered with the right value all
    along: no single get takes 2 s or more (the only timing assertion: "did
    not stall"; latencies are printed).
Then the writers stop; dirty_items reaches 0 (bounded); SIGTERM (exit 0);
restart without the delay: every key holds the value of its latest write
acknowledged as stored (burst keys refused with a temporary failure are
absent).

MCKVD=/path/to/mckvd python3 tests/persist/test_backpressure.py
Exit status: 0 pass, 1 fail, 77 skip.
"""

import collections
import os
import sys
import threading
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mckvtest as mt  # noqa: E402

VSIZE = 8192
NKEYS = 256
WINDOW = 16
MAX_WRITE_S = 15       # longest wait for throttled_writes > 0
MIN_WRITE_S = 3        # writers run at least this long before the burst
BURST = 800            # connections of the burst
TMPFAIL_TEXT = "SERVER_ERROR temporary failure"


def value(wid, seq):
    head = ("%d:%d:" % (wid, seq)).encode()
    fill = (b"%07d" % seq) * (VSIZE // 7 + 1)
    return head + fill[:VSIZE - len(head)]


class PipeWriter:
    """One connection with up to WINDOW writes in flight: a sender thread
    and a receiver thread matching replies to requests in order."""

    def __init__(self, port, wid, binary, stop, deadline):
        self.wid, self.binary = wid, binary
        self.stop, self.deadline = stop, deadline
        self.conn = (mt.BinClient(port, timeout=30) if binary
                     else mt.TextClient(port, timeout=30))
        self.window = threading.Semaphore(WINDOW)
        self.inflight = collections.deque()
        self.sender_done = threading.Event()
        self.acked = {}              # key -> latest stored value
        self.written = set()         # keys with at least one request
        self.acks = 0
        self.tmpfails = 0
        self.other = collections.Counter()
        self.exc = []
        self.max_reply_s = 0.0
        self.threads = [threading.Thread(target=self._send, daemon=True),
                        threading.Thread(target=self._recv, daemon=True)]

    def start(self):
        for th in self.threads:
            th.start()

    def _send(self):
        seq = 0
        try:
            while not self.stop.is_set() and \
                    time.monotonic() < self.deadline:
                if not self.window.acquire(timeout=0.5):
                    continue
                k = "bp%d:%d" % (self.wid, seq % NKEYS)
                v = value(self.wid, seq)
                if self.binary:
                    req = mt.BinClient.pack(mt.OP_SET, k, v,
                                            mt.BinClient.store_extras(0, 0),
                                            opaque=seq)
                else:
                    req = mt.TextClient.store_cmd("set", k, v)
                self.written.add(k)
                self.inflight.append((k, v, time.monotonic()))
                self.conn.send(req)
                seq += 1
        except (OSError, mt.ProtocolError) as e:
            self.exc.append("send: %s" % e)
        finally:
            self.sender_done.set()

    def _recv(self):
        try:
            while True:
                if not self.inflight:
                    if self.sender_done.is_set() and not self.inflight:
                        return
                    time.sleep(0.002)
                    continue
                k, v, t_sent = self.inflight[0]
                if self.binary:
                    r = self.conn.read_response()
                    ok = r.status == mt.ST_OK
                    tmp = r.status == mt.ST_ETMPFAIL
                    what = "status 0x%02x" % r.status
                else:
                    what = self.conn.readline().decode(errors="replace")
                    ok = what == "STORED"
                    tmp = what == TMPFAIL_TEXT
                self.inflight.popleft()
                self.max_reply_s = max(self.max_reply_s,
                                       time.monotonic() - t_sent)
                if ok:
                    self.acked[k] = v
                    self.acks += 1
                elif tmp:
                    self.tmpfails += 1
                else:
                    self.other[what] += 1
                self.window.release()
        except (OSError, mt.ProtocolError) as e:
            self.exc.append("receive: %s (%d replies outstanding)"
                            % (e, len(self.inflight)))
            self.sender_done.wait(5)

    def join(self, timeout):
        end = time.monotonic() + timeout
        for th in self.threads:
            th.join(timeout=max(0.1, end - time.monotonic()))
        return not any(th.is_alive() for th in self.threads)


class Reader(threading.Thread):
    """Gets one key in a loop, measuring each round trip."""

    def __init__(self, port, stop):
        super().__init__(daemon=True)
        self.port, self.stop = port, stop
        self.lat = []
        self.wrong = 0
        self.exc = None

    def run(self):
        try:
            with mt.TextClient(self.port, timeout=10) as c:
                n = 0
                while not self.stop.is_set() and n < 100000:
                    t0 = time.monotonic()
                    g = c.get("bp:probe")
                    self.lat.append(time.monotonic() - t0)
                    if g != (5, b"probe-value"):
                        self.wrong += 1
                    n += 1
                    time.sleep(0.005)
        except (OSError, mt.ProtocolError) as e:
            self.exc = e


def raise_fd_limit(want):
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < want:
            new = want if hard == resource.RLIM_INFINITY else min(want, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    except (ImportError, ValueError, OSError):
        pass


def burst(t, port, rnd, result, counts):
    """BURST connections each send one 8 KiB set at once; then every reply
    is read. Adds {key: stored value or None} to result and the replies to
    counts[protocol]."""
    conns = []
    t0 = time.monotonic()
    try:
        for i in range(BURST):
            binary = i % 2 == 1
            k = "bb%d:%d" % (rnd, i)
            v = value(9, i)
            c = (mt.BinClient(port, timeout=30) if binary
                 else mt.TextClient(port, timeout=30))
            conns.append((c, k, v, binary))
            if binary:
                c.send(mt.BinClient.pack(mt.OP_SET, k, v,
                                         mt.BinClient.store_extras(0, 0)))
            else:
                c.send(mt.TextClient.store_cmd("set", k, v))
    except OSError as e:
        t.info("burst: connection %d: %s; going on with %d"
               % (len(conns), e, len(conns)))
    sent = time.monotonic() - t0
    slowest = 0.0
    for c, k, v, binary in conns:
        proto = "binary" if binary else "text"
        try:
            if binary:
                r = c.read_response()
                what = ("STORED" if r.status == mt.ST_OK else
                        "TMPFAIL" if r.status == mt.ST_ETMPFAIL else
                        "status 0x%02x" % r.status)
            else:
                r = c.readline().decode(errors="replace")
                what = ("STORED" if r == "STORED" else
                        "TMPFAIL" if r == TMPFAIL_TEXT else r)
        except (OSError, mt.ProtocolError) as e:
            what = "error: %s" % e
        slowest = max(slowest, time.monotonic() - t0)
        counts[proto][what] += 1
        if what == "STORED":
            result[k] = v
        elif what == "TMPFAIL":
            result[k] = None
        c.close()
    t.info("burst %d: %d connections sent in %.2f s, all replies after "
           "%.2f s: text %s, binary %s" % (rnd, len(conns), sent, slowest,
                                           dict(counts["text"]),
                                           dict(counts["binary"])))


def main(t):
    raise_fd_limit(BURST + 200)
    tmp = t.tmpdir()
    db = os.path.join(tmp, "bp", "bp.db")
    slow = mt.persist_args(db, engine_delay_us=2000, dirty_soft_limit_mb=1,
                           dirty_hard_limit_mb=4) + ["-c", str(BURST + 200)]
    srv = t.server(slow, "backpressure")
    srv.start()
    mon = srv.text(timeout=10)
    t.at_cleanup(mon.close)
    mt.require_kvstore(t, mon, ("dirty_items", "dirty_bytes",
                                "throttled_writes", "temporary_failures"))
    t.check_eq(mon.set("bp:probe", "probe-value", 5), "STORED", "probe set")

    stop = threading.Event()
    t0 = time.monotonic()
    deadline = t0 + MAX_WRITE_S + 30     # writers' own bound
    writers = [PipeWriter(srv.port, 0, False, stop, deadline),
               PipeWriter(srv.port, 1, True, stop, deadline)]
    reader = Reader(srv.port, stop)
    for w in writers:
        w.start()
    reader.start()
    max_dirty = 0
    s = {}
    bursted = {}
    counts = {"text": collections.Counter(), "binary": collections.Counter()}
    try:
        while time.monotonic() < t0 + MAX_WRITE_S:
            time.sleep(0.2)
            s = mt.kvstats(mon)
            max_dirty = max(max_dirty, mt.kv_int(s, "dirty_bytes") or 0)
            if (mt.kv_int(s, "throttled_writes") or 0) > 0 and \
                    time.monotonic() - t0 >= MIN_WRITE_S:
                break
            if any(w.exc for w in writers):
                break
        s = mt.kvstats(mon)
        t.info("before the burst: %.1f s of writes, dirty_bytes=%s, "
               "throttled_writes=%s, writers stored %s"
               % (time.monotonic() - t0, s.get("dirty_bytes"),
                  s.get("throttled_writes"), [w.acks for w in writers]))
        t.check((mt.kv_int(s, "throttled_writes") or 0) > 0,
                "throttled_writes = %s after %.1f s of writes from 2 "
                "connections (max dirty_bytes seen %d): no write was delayed"
                % (s.get("throttled_writes"), time.monotonic() - t0,
                       max_dirty),
                "throttled_writes = %s from 2 connections"
                % s.get("throttled_writes"))
        for rnd in range(3):      # until both protocols saw a refusal
            if any(w.exc for w in writers) or \
                    all(counts[p]["TMPFAIL"] for p in counts):
                break
            burst(t, srv.port, rnd, bursted, counts)
    finally:
        stop.set()
    t_write = time.monotonic() - t0
    for w in writers:
        if not w.join(25):
            t.fail("writer %d did not finish within 25 s of the stop "
                   "(%d replies outstanding)" % (w.wid, len(w.inflight)))
    reader.join(15)
    s = mt.kvstats(mon)
    max_dirty = max(max_dirty, mt.kv_int(s, "dirty_bytes") or 0)

    for w in writers:
        proto = "binary" if w.binary else "text"
        t.info("%s writer: %d stored, %d temporary failures, other %s, "
               "slowest reply %.2f s"
               % (proto, w.acks, w.tmpfails, dict(w.other), w.max_reply_s))
        t.check(not w.exc, "%s writer: %s" % (proto, w.exc))
        t.check(not w.other, "%s writer: unexpected replies %s"
                % (proto, dict(w.other)))
        t.check(w.acks > 0, "%s writer: no write stored" % proto)
    for proto in ("text", "binary"):
        c = counts[proto]
        other = {k: n for k, n in c.items() if k not in ("STORED", "TMPFAIL")}
        t.check(not other, "burst, %s: unexpected replies %s" % (proto, other))
        fails = c["TMPFAIL"] + sum(w.tmpfails for w in writers
                                   if w.binary == (proto == "binary"))
        t.check(fails > 0, "%s: no temporary failure (%s) seen; max "
                "dirty_bytes seen %d (hard limit 4 MiB)"
                % (proto, TMPFAIL_TEXT if proto == "text" else "status 0x86",
                   max_dirty),
                "%s: %d temporary failures (%s)"
                % (proto, fails, TMPFAIL_TEXT if proto == "text"
                   else "status 0x86"))
    throttled = mt.kv_int(s, "throttled_writes") or 0
    tmpstat = mt.kv_int(s, "temporary_failures") or 0
    seen = (sum(w.tmpfails for w in writers) +
            sum(c["TMPFAIL"] for c in counts.values()))
    t.check(tmpstat >= seen, "stat temporary_failures = %d, but the clients "
            "saw %d" % (tmpstat, seen),
            "stat temporary_failures = %d (clients saw %d)" % (tmpstat, seen))
    t.info("throttled_writes = %d, max dirty_bytes sampled %d (soft 1 MiB, "
           "hard 4 MiB); writes ran %.1f s" % (throttled, max_dirty, t_write))

    lat = sorted(reader.lat)
    t.check(reader.exc is None, "reader: %s (a get stalled?)" % reader.exc)
    t.check(len(lat) > 0, "reader: no get answered")
    t.check(reader.wrong == 0, "reader: %d wrong values" % reader.wrong)
    if lat:
        t.info("reader: %d gets, median %.1f ms, p99 %.1f ms, max %.1f ms"
               % (len(lat), 1e3 * lat[len(lat) // 2],
                  1e3 * lat[min(len(lat) - 1, len(lat) * 99 // 100)],
                  1e3 * lat[-1]))
        t.check(lat[-1] < 2.0, "reader: a get took %.2f s (stalled)"
                % lat[-1], "reads did not stall")

    ok, s = mt.wait_clean(mon, 30)
    t.check(ok, "dirty_items=%s queue_depth=%s 30 s after the writers "
            "stopped" % (s.get("dirty_items"), s.get("queue_depth")),
            "backlog drained (items_persisted=%s)" % s.get("items_persisted"))
    mon.close()
    t.stop_checked(srv, "slow server", timeout=60)

    srv.args = mt.persist_args(db)
    srv.start()
    bad = 0
    n = 0
    expect = dict(bursted)
    for w in writers:
        for k in w.written:
            expect[k] = w.acked.get(k)
    with srv.text(timeout=20) as c:
        keys = sorted(expect)
        got = c.get_many(keys, batch=50)
        for k in keys:
            g = got.get(k.encode())
            want = expect[k]
            n += 1
            if (g[1] if g else None) != want:
                bad += 1
                if bad <= 10:
                    t.fail("after restart: %s = %s, want %s"
                           % (k, mt.short(g), mt.short(want)))
    t.check(bad == 0, "after restart: %d of %d keys wrong" % (bad, n),
            "after restart: all %d keys hold their latest stored value "
            "(refused ones absent)" % n)
    t.stop_checked(srv, "restarted server")


if __name__ == "__main__":
    mt.Test("test_backpressure", time_limit=85).run(main)
