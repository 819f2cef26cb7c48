#!/usr/bin/env python3
"""record_front.py: records memcached 1.6.18's exact replies for test_front.c.

Not a test: a tool to (re)write the expected bytes that
tests/unit/test_front.c holds as literals (the test needs no memcached).
Each case runs against a fresh memcached (so CAS values start at 1, as in
a fresh mckv cache): the request bytes are sent in one write, followed by
a sentinel (text: a miss that echoes its key and opaque; binary: a NOOP),
and everything before the sentinel's reply is the case's reply. Prints
one C definition per case, to paste into test_front.c:

    static const char NAME_req[] = ...;
    static const char NAME_rsp[] = ...;

Usage: tests/unit/record_front.py [--memcached /usr/bin/memcached] [NAME...]
"""
import argparse
import os
import signal
import socket
import struct
import subprocess
import sys
import time


def bin_req(opcode, key=b"", value=b"", extras=b"", cas=0, opaque=0):
    body = extras + key + value
    return struct.pack(">BBHBBHIIQ", 0x80, opcode, len(key), len(extras), 0, 0,
                       len(body), opaque, cas) + body


def store_extras(flags=0, exptime=0):
    return struct.pack(">II", flags, exptime)


def delta_extras(delta, initial, exptime):
    return struct.pack(">QQI", delta, initial, exptime)


OP = dict(GET=0x00, SET=0x01, ADD=0x02, REPLACE=0x03, DELETE=0x04, INCR=0x05,
          DECR=0x06, QUIT=0x07, FLUSH=0x08, GETQ=0x09, NOOP=0x0a, VERSION=0x0b,
          GETK=0x0c, GETKQ=0x0d, APPEND=0x0e, PREPEND=0x0f, STAT=0x10,
          SETQ=0x11, ADDQ=0x12, REPLACEQ=0x13, DELETEQ=0x14, INCRQ=0x15,
          DECRQ=0x16, FLUSHQ=0x18, APPENDQ=0x19, VERBOSITY=0x1b, TOUCH=0x1c,
          GAT=0x1d, GATQ=0x1e, GATK=0x23)

SENTINEL_OPAQUE = 0xdeadbeef


def B(name, **kw):
    return bin_req(OP[name], **kw)


# ---- the cases: (name, "text" | "bin", request bytes) ----
CASES = [
    # binary
    ("bin_get_miss", "bin",
     B("GET", key=b"a", opaque=1) + B("GETK", key=b"a", opaque=2)
     + B("GETQ", key=b"a", opaque=3) + B("GETKQ", key=b"a", opaque=4)
     + B("SET", key=b"a", value=b"v", extras=store_extras(9), opaque=5)
     + B("GETQ", key=b"a", opaque=6) + B("GETKQ", key=b"a", opaque=7)
     + B("GETK", key=b"a", opaque=8)),
    ("bin_store_status", "bin",
     B("SET", key=b"a", value=b"1", extras=store_extras(1))
     + B("ADD", key=b"a", value=b"2", extras=store_extras())
     + B("ADD", key=b"b", value=b"3", extras=store_extras())
     + B("REPLACE", key=b"c", value=b"4", extras=store_extras())
     + B("REPLACE", key=b"a", value=b"5", extras=store_extras(5))
     + B("APPEND", key=b"z", value=b"6")
     + B("APPEND", key=b"a", value=b"7")
     + B("PREPEND", key=b"a", value=b"8")
     + B("PREPEND", key=b"z", value=b"9")
     + B("GET", key=b"a")
     + B("SET", key=b"a", value=b"x", extras=store_extras(), cas=999)
     + B("SET", key=b"nokey", value=b"x", extras=store_extras(), cas=5)
     + B("SET", key=b"a", value=b"y", extras=store_extras(), cas=6)
     + B("DELETE", key=b"a") + B("DELETE", key=b"a")
     + B("DELETE", key=b"b", cas=999)),
    ("bin_incr", "bin",
     B("INCR", key=b"n", extras=delta_extras(1, 10, 0))
     + B("INCR", key=b"n", extras=delta_extras(5, 10, 0))
     + B("DECR", key=b"n", extras=delta_extras(100, 10, 0))
     + B("INCR", key=b"m", extras=delta_extras(1, 10, 0xffffffff))
     + B("DECR", key=b"m", extras=delta_extras(1, 10, 0xffffffff))
     + B("SET", key=b"s", value=b"abc", extras=store_extras())
     + B("INCR", key=b"s", extras=delta_extras(1, 0, 0))
     + B("INCR", key=b"n", extras=delta_extras(1, 0, 0), cas=999)
     + B("GET", key=b"n")),
    ("bin_unsigned_expiry", "bin",
     B("SET", key=b"k", value=b"far", extras=store_extras(0, 0x80000000))
     + B("GET", key=b"k")
     + B("TOUCH", key=b"k", extras=struct.pack(">I", 0xfffffff0))
     + B("GET", key=b"k")
     + B("GAT", key=b"k", extras=struct.pack(">I", 0x80000001))
     + B("GATK", key=b"k", extras=struct.pack(">I", 0))
     + B("GATQ", key=b"zz", extras=struct.pack(">I", 0))
     + B("TOUCH", key=b"zz", extras=struct.pack(">I", 0))),
    # memcached takes a CAS id for an immediate flush, mckv does not (CAS
    # values are opaque): no reply after one shows a new CAS
    ("bin_flush", "bin",
     B("SET", key=b"a", value=b"1", extras=store_extras())
     + B("FLUSH", extras=struct.pack(">I", 0xffffffff))
     + B("GET", key=b"a")
     + B("SET", key=b"b", value=b"2", extras=store_extras())
     + B("FLUSH")
     + B("GET", key=b"a") + B("GET", key=b"b")
     + B("SETQ", key=b"c", value=b"3", extras=store_extras())
     + B("FLUSHQ")
     + B("GET", key=b"c")),
    ("bin_stat_detail", "bin",
     B("STAT", key=b"detail on")
     + B("SET", key=b"p:a", value=b"1", extras=store_extras())
     + B("GET", key=b"p:a") + B("GET", key=b"p:b") + B("DELETE", key=b"p:a")
     + B("STAT", key=b"detail dump")
     + B("STAT", key=b"detail off")
     + B("STAT", key=b"detail what")
     + B("STAT", key=b"nosuch")),
    ("bin_quiet", "bin",
     B("SETQ", key=b"q", value=b"1", extras=store_extras())
     + B("ADDQ", key=b"q", value=b"2", extras=store_extras(), opaque=2)
     + B("REPLACEQ", key=b"r", value=b"3", extras=store_extras(), opaque=3)
     + B("APPENDQ", key=b"q", value=b"4")
     + B("INCRQ", key=b"q", extras=delta_extras(1, 0, 0))
     + B("INCRQ", key=b"x", extras=delta_extras(1, 0, 0xffffffff), opaque=6)
     + B("DECRQ", key=b"q", extras=delta_extras(1, 0, 0))
     + B("DELETEQ", key=b"q") + B("DELETEQ", key=b"q", opaque=9)
     + B("GETK", key=b"q")),
    # text
    ("text_storage", "text",
     b"set a 5 0 3\r\nabc\r\nadd a 0 0 1\r\nx\r\nadd b 0 0 1\r\nx\r\n"
     b"replace c 0 0 1\r\nx\r\nreplace a 7 0 2\r\nxy\r\nappend a 0 0 2\r\n12\r\n"
     b"prepend a 0 0 2\r\n00\r\nappend zz 0 0 1\r\nq\r\nget a b zz\r\ngets a\r\n"
     b"cas a 0 0 1 999\r\nz\r\ncas nokey 0 0 1 1\r\nz\r\ncas a 0 0 1 5\r\nz\r\n"
     b"gets a\r\ndelete a\r\ndelete a\r\ntouch b 100\r\ntouch nope 1\r\n"
     b"set a 0 0 2\r\nabc\r\nget a\r\n"),
    ("text_noreply", "text",
     b"set a 0 0 1 noreply\r\nx\r\nadd a 0 0 1 noreply\r\ny\r\n"
     b"replace zz 0 0 1 noreply\r\ny\r\nincr a 1 noreply\r\n"
     b"delete a noreply\r\ndelete a noreply\r\nget a\r\n"
     b"set n 0 0 1 noreply\r\n5\r\nincr n 3 noreply\r\ndecr n 1 noreply\r\n"
     b"touch n 10 noreply\r\nget n\r\n"),
    ("text_gets_gat", "text",
     b"set k 3 0 2\r\nhi\r\ngets k\r\ngat 100 k\r\ngats 0 k missing\r\n"
     b"gat 100 missing\r\ngets missing k k\r\n"),
    ("text_incr_decr", "text",
     b"set n 0 0 2\r\n10\r\nincr n 5\r\ndecr n 100\r\nincr nokey 1\r\n"
     b"set s 0 0 3\r\nabc\r\nincr s 1\r\nincr n abc\r\nincr n -1\r\n"
     b"set big 0 0 20\r\n18446744073709551615\r\nincr big 1\r\n"
     b"set w 0 0 2\r\n99\r\nincr w 1\r\nget w\r\ndecr n\r\n"),
    ("text_flush_all", "text",
     b"set a 0 0 1\r\n1\r\nflush_all 100\r\nget a\r\nflush_all 0\r\nget a\r\n"
     b"set b 0 0 1\r\n2\r\nflush_all -1\r\nget b\r\nset c 0 0 1\r\n3\r\n"
     b"flush_all noreply\r\nget c\r\nflush_all 10 noreply\r\nflush_all abc\r\n"
     b"flush_all\r\n"),
    ("text_stats_detail", "text",
     b"stats detail on\r\nset p:a 0 0 1\r\n1\r\nget p:a p:b\r\ndelete p:a\r\n"
     b"stats detail dump\r\nstats detail off\r\nstats detail\r\n"
     b"stats detail foo\r\nstats nosuch\r\n"),
    ("text_verbosity", "text",
     b"verbosity 1\r\nverbosity 0 noreply\r\nverbosity\r\nverbosity x\r\n"),
    ("text_memlimit", "text",
     b"cache_memlimit 100\r\ncache_memlimit 1\r\ncache_memlimit abc\r\n"
     b"cache_memlimit 64 noreply\r\ncache_memlimit\r\n"
     b"cache_memlimit 2000000000\r\n"),
    ("text_shutdown", "text",
     b"shutdown\r\nshutdown graceful\r\nbogus\r\n"),
    # meta
    ("meta_mg_flags", "text",
     b"set foo 5 0 3\r\nbar\r\nmg foo v c f t s k O123\r\nmg foo s v k\r\n"
     b"mg foo k O1 f\r\nmg miss v\r\nmg miss v q\r\nmg miss v k O9\r\n"
     b"mg foo q k\r\nmg foo\r\nmg foo h l\r\n"),
    ("meta_quiet", "text",
     b"ms k 1 q\r\na\r\nmg k q v\r\nmg nope q v\r\nmd k q\r\nmd k q\r\n"
     b"ma nope q\r\nms n 1\r\n5\r\nma n q\r\nma n q v\r\nmg n v\r\n"
     b"ms n 1 q ME\r\nx\r\nms n 1 q MA\r\n7\r\nmg n v\r\n"),
    ("meta_vivify", "text",
     b"mg k N30 t c v\r\nmg k N30 t c v\r\nms k 3 T60\r\nnew\r\nmg k v c\r\n"
     b"mg k v c\r\n"),
    ("meta_recache", "text",
     b"ms k 2 T30\r\nhi\r\nmg k R60 v t\r\nmg k R60 v t\r\nmg k R10 v\r\n"),
    ("meta_invalidate", "text",
     b"ms k 2\r\nhi\r\nmd k I T30\r\nmg k v c t\r\nmg k v c\r\n"
     b"ms k 2 I C1\r\nyo\r\nmg k v c\r\nmd nope I\r\n"),
    ("meta_ms_cas", "text",
     b"ms k 2\r\nhi\r\nms k 2 C999 c\r\nyo\r\nms k 2 C1 c\r\nyo\r\n"
     b"ms nope 2 C1 c\r\nyo\r\nms k 2 MR\r\nzz\r\nms none 2 MR\r\nzz\r\n"
     b"ms k 2 ME c\r\nzz\r\nmg k v c\r\n"),
    # k echoes the item's own key, base64 when it was stored with b
    ("meta_base64", "text",
     b"ms Zm9v 2 b\r\nhi\r\nmg Zm9v b v k\r\nmg foo v k\r\nmd Zm9v b q\r\n"
     b"mg foo v\r\nmg Zm9v= b v\r\nms foo 2\r\nhi\r\nmg Zm9v b v k\r\n"
     b"ms Zm9v 2 b k\r\nyo\r\nms foo 2 k\r\nyo\r\nmg foo k\r\n"
     b"mg Zm9v b k s\r\n"),
    ("meta_ma", "text",
     b"ma c N0 J10 v\r\nma c v\r\nma c D5 v\r\nma c MD D100 v\r\nma nope\r\n"
     b"ma c MI D3 v t c\r\nms s 1\r\nx\r\nma s\r\nma c N0 J13 v\r\n"
     b"ma c MX\r\n"),
    ("meta_mn_me", "text",
     b"mn\r\nme nope\r\nmg\r\nmx foo\r\nmn\r\n"),
]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(memcached):
    port = free_port()
    p = subprocess.Popen([memcached, "-U", "0", "-u", "root", "-l", "127.0.0.1",
                          "-p", str(port)])
    for _ in range(200):
        try:
            return p, socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            time.sleep(0.02)
    p.kill()
    sys.exit("memcached did not start")


def run_case(memcached, proto, req):
    p, s = start(memcached)
    try:
        if proto == "text":
            sentinel_req = b"mg __sentinel__ k O31337\r\n"
            sentinel_rsp = b"EN k__sentinel__ O31337\r\n"
        else:
            sentinel_req = bin_req(OP["NOOP"], opaque=SENTINEL_OPAQUE)
            sentinel_rsp = struct.pack(">BBHBBHIIQ", 0x81, OP["NOOP"], 0, 0, 0,
                                       0, 0, SENTINEL_OPAQUE, 0)
        s.sendall(req + sentinel_req)
        got = b""
        while not got.endswith(sentinel_rsp):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        if not got.endswith(sentinel_rsp):
            sys.exit("no sentinel in: %r" % got)
        return got[:-len(sentinel_rsp)]
    finally:
        s.close()
        os.kill(p.pid, signal.SIGTERM)
        p.wait()


def c_literal(data, proto):
    out, line = [], ""
    for i, b in enumerate(data):
        ch = chr(b)
        if ch == "\\" or ch == '"':
            line += "\\" + ch
        elif 32 <= b < 127 and not (proto == "bin"):
            line += ch
        elif ch == "\r":
            line += "\\r"
        elif ch == "\n":
            line += "\\n"
        else:
            line += "\\%03o" % b
        if (proto == "text" and ch == "\n") or \
           (proto == "bin" and (i + 1) % 12 == 0) or len(line) > 66:
            out.append(line)
            line = ""
    if line or not out:
        out.append(line)
    return "\n".join('    "%s"' % l for l in out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--memcached", default="/usr/bin/memcached")
    ap.add_argument("names", nargs="*")
    args = ap.parse_args()
    for name, proto, req in CASES:
        if args.names and name not in args.names:
            continue
        rsp = run_case(args.memcached, proto, req)
        print("static const char %s_req[] =\n%s;" % (name, c_literal(req, proto)))
        print("static const char %s_rsp[] =\n%s;" % (name, c_literal(rsp, proto)))
        print()


if __name__ == "__main__":
    main()
