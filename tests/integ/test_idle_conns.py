#!/usr/bin/env python3
"""test_idle_conns: many idle connections take little memory, and work.

2,000 clients connect, each sends `version` (so every connection has
read and answered a request) and then sits idle. mckvd's resident set
must grow by less than 6 KB per connection: a connection holds its read
buffer (16 KiB), reply buffer (4 KiB) and segment list only while
something is in them. Before that change a
connection kept 21 KB from accept to close, so 100k idle clients took
2 GB outside memory_limit. Then every connection gets a value it sets,
half a request is left buffered on some while the others run, and the
connections still answer once idle again: buffers are taken back when
needed.

MCKVD=/path/to/mckvd python3 tests/integ/test_idle_conns.py
Exit status: 0 pass, 1 fail, 77 skip.
"""

import os
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "persist"))
import mckvtest as mt  # noqa: E402

CONNS = 2000
MAX_KB_PER_CONN = 6


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


def sanitized(pid):
    """True when the server runs under ASan or TSan, whose allocators
    (redzones, quarantine, shadow) make its resident set no measure."""
    with open("/proc/%d/maps" % pid) as f:
        return any("libasan" in l or "libtsan" in l for l in f)


def read_until(s, end, deadline):
    buf = b""
    while not buf.endswith(end):
        if time.monotonic() > deadline:
            raise mt.ProtocolError("no reply (%r so far)" % buf[:80])
        chunk = s.recv(4096)
        if not chunk:
            raise mt.ProtocolError("connection closed (%r so far)" % buf[:80])
        buf += chunk
    return buf


def main(t):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = CONNS + 200
    if hard < need:
        raise mt.Skip("RLIMIT_NOFILE hard limit %d < %d" % (hard, need))
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))
    srv = t.server(["--engine=memory", "-c", str(CONNS + 100)]).start()
    # the workers' first buffers are taken
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as c:
        c.sendall(b"version\r\n")
        read_until(c, b"\r\n", time.monotonic() + 10)
    time.sleep(0.5)
    before = rss_kb(srv.pid)
    deadline = time.monotonic() + 60
    conns = []
    t.at_cleanup(lambda: [s.close() for s in conns])
    for _ in range(CONNS):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        conns.append(s)
        s.sendall(b"version\r\n")
        read_until(s, b"\r\n", deadline)
    time.sleep(3)               # the last replies written, buffers back
    after = rss_kb(srv.pid)
    per = (after - before) / CONNS
    t.info("VmRSS %d -> %d KB over %d idle connections: %.1f KB each"
           % (before, after, CONNS, per))
    if sanitized(srv.pid):
        t.info("sanitizer build: memory not checked")
    else:
        t.check(per < MAX_KB_PER_CONN,
                "%.1f KB per idle connection (want < %d)"
                % (per, MAX_KB_PER_CONN),
                "an idle connection costs %.1f KB" % per)

    # They all still work: a set and a get each, pipelined; some are left
    # with half a request buffered while the others run.
    for i, s in enumerate(conns):
        v = b"v%d" % i
        s.sendall(b"set k%d 0 0 %d\r\n%s\r\nget k%d\r\n" % (i, len(v), v, i))
    bad = 0
    for i, s in enumerate(conns):
        v = b"v%d" % i
        want = b"STORED\r\nVALUE k%d 0 %d\r\n%s\r\nEND\r\n" % (i, len(v), v)
        if read_until(s, b"END\r\n", deadline) != want:
            bad += 1
    t.check_eq(bad, 0, "connections whose set/get went wrong")
    for s in conns[::10]:
        s.sendall(b"get k")
    time.sleep(0.2)
    for s in conns[1::10]:
        s.sendall(b"get k1\r\n")
        read_until(s, b"END\r\n", deadline)
    for i, s in list(enumerate(conns))[::10]:
        s.sendall(b"%d\r\n" % i)
        v = b"v%d" % i
        want = b"VALUE k%d 0 %d\r\n%s\r\nEND\r\n" % (i, len(v), v)
        t.check_eq(read_until(s, b"END\r\n", deadline), want,
                   "a get sent in two halves on connection %d" % i)
        if t.failures:
            break
    t.stop_checked(srv)


if __name__ == "__main__":
    mt.Test("test_idle_conns", time_limit=120).run(main)
