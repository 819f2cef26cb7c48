#!/usr/bin/env python3
"""Writes the hand-made seeds of fuzz_request into tests/fuzz/corpus/request/.

Each seed is the target's 4-byte header (see tests/fuzz/fuzz_request.c)
and a client's byte stream. Seeds the fuzzer found (regressions) are kept
as they are and not written here. Usage: make_request_seeds.py [DIR]
"""
import os
import struct
import sys


def hdr(proto=0, mem=3, isz=2, rpe=20, evict_off=False, cas_off=False,
        flush_off=False, chunk=7, seed=1, disk=0, auth=False):
    b0 = (proto & 3) | ((mem & 7) << 2) | ((isz & 7) << 5)
    b1 = (((rpe - 1) & 31) | (0x20 if evict_off else 0) |
          (0x40 if cas_off else 0) | (0x80 if flush_off else 0))
    return bytes([b0, b1, (chunk & 63) | (disk << 6),
                  (seed & 127) | (0x80 if auth else 0)])


def binreq(op, key=b'', extras=b'', value=b'', opaque=0, cas=0, magic=0x80):
    body = extras + key + value
    return struct.pack('>BBHBBHIIQ', magic, op, len(key), len(extras), 0, 0,
                       len(body), opaque, cas) + body


SEEDS = {}


def w(name, data, **kw):
    SEEDS[name] = hdr(**kw) + data


def sets(n, size):
    return b''.join(b'set k%d 0 0 %d\r\n' % (i, size) + b'v' * size + b'\r\n'
                    for i in range(n))


# text
w('text_set_get', b'set a 1 0 3\r\nabc\r\nget a\r\ngets a b\r\n')
w('text_storage', b'add a 0 0 1\r\nx\r\nreplace a 0 0 2\r\nyy\r\nappend a 0 0 1\r\nz\r\nprepend a 0 0 1\r\nw\r\nget a\r\ncas a 0 0 1 999\r\nq\r\ngets a\r\ncas a 0 0 1 5\r\nq\r\n')
w('text_noreply', b'set a 0 0 1 noreply\r\n1\r\nincr a 5 noreply\r\ndecr a 2 noreply\r\nget a\r\ndelete a noreply\r\nget a\r\n')
w('text_incr', b'set n 0 0 2\r\n10\r\nincr n 1\r\ndecr n 100\r\nincr n 18446744073709551615\r\nincr x 1\r\nset s 0 0 1\r\nq\r\nincr s 1\r\n')
w('text_gat_touch', b'set a 0 100 1\r\n1\r\ngat 0 a\r\ngats 10 a b\r\ntouch a 5\r\ntouch b 5\r\nget a\r\n')
w('text_flush', b'set a 0 0 1\r\n1\r\nflush_all\r\nget a\r\nset b 0 0 1\r\n2\r\nflush_all 10\r\nflush_all noreply\r\nflush_all -1\r\nget b\r\n')
w('text_stats', b'stats\r\nstats settings\r\nstats items\r\nstats slabs\r\nstats sizes\r\nstats conns\r\nstats detail on\r\nset a:b 0 0 1\r\n1\r\nget a:b\r\nstats detail dump\r\nstats detail off\r\nstats reset\r\nstats bogus\r\n')
w('text_admin', b'version\r\nverbosity 1\r\nverbosity 0 noreply\r\ncache_memlimit 8\r\ncache_memlimit 1\r\nslabs automove 1\r\nlru_crawler crawl all\r\nlru_crawler metadump all\r\nshutdown\r\ndebugtime 100\r\nmn\r\n')
w('text_dumps', b'set a 0 0 1\r\n1\r\nset b 0 5 2\r\n22\r\nlru_crawler metadump all\r\nlru_crawler metadump hash\r\nstats cachedump 1 0\r\nstats cachedump 0 1\r\n')
w('text_oversize', b'set big 0 0 5000\r\n' + b'x' * 5000 + b'\r\nget big\r\nset a 0 0 2\r\nabc\r\nget a\r\n', isz=0)
w('text_errors', b'bogus\r\nget\r\nset a b c d\r\n\r\nget ' + b'k' * 300 + b'\r\nincr a x\r\nset a 0 0 -1\r\nquit\r\nget a\r\n')
w('text_multiget', b'set a 0 0 1\r\n1\r\nset b 0 0 1\r\n2\r\nget a b c a b c a b c\r\ngets a b\r\n', rpe=1, chunk=3)
w('text_evict', sets(12, 500) + b'get k0 k11\r\nstats\r\n', mem=0)
w('text_evict_off', sets(8, 500) + b'get k0 k7\r\n', mem=0, evict_off=True)
w('text_cas_off', b'set a 0 0 1\r\n1\r\ngets a\r\ncas a 0 0 1 0\r\n2\r\nflush_all\r\nset a 0 0 1\r\n3\r\nget a\r\n', cas_off=True)
w('text_flush_off', b'flush_all\r\nflush_all 0\r\n', flush_off=True)
# meta
w('meta_basic', b'ms a 3 T0 F5\r\nabc\r\nmg a v f t c s k O123 q\r\nmg missing v\r\nmg missing v q\r\nmn\r\nmd a q\r\nmd a\r\nmn\r\n')
w('meta_b64', b'ms Zm9v 2 b\r\nhi\r\nmg Zm9v b v k\r\nmd Zm9v b\r\nmg Zm9v b v\r\nma Zm9v b N0 J5\r\n')
w('meta_arith', b'ma n\r\nma n N0 J10 v\r\nma n MI D5 v\r\nma n MD D100 v c t\r\nma n q\r\nmn\r\n')
w('meta_lease', b'mg k N30 v c\r\nmg k v c\r\nms k 1 I C1\r\nx\r\nmd k I T30\r\nmg k v c\r\nmg k R30 v\r\nme k\r\nmn\r\n')
w('meta_modes', b'ms a 1 ME\r\n1\r\nms a 1 ME\r\n2\r\nms a 1 MA\r\n3\r\nms a 1 MP\r\n0\r\nms a 1 MR\r\n9\r\nms b 1 MA N0\r\n5\r\nmg a v\r\nms a 1 E77\r\nz\r\nmg a c\r\nms a S3 T0\r\nabc\r\n')
w('meta_errors', b'mg\r\nms a\r\nms a x\r\nms a 2\r\nabc\r\nmg a zz\r\nma a D-1\r\nmd\r\nme\r\nmn extra\r\n')
w('mixed_pipeline', b'set a 0 0 1\r\n1\r\nmg a v\r\nget a\r\nma a\r\nincr a 1\r\nmg a v\r\ndelete a\r\nmn\r\n', chunk=1)
# binary
GET, SET, ADD, REPLACE, DELETE, INCR, DECR, QUIT, FLUSH, GETQ, NOOP = range(11)
VERSION, GETK, GETKQ, APPEND, PREPEND, STAT = 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10
SETQ, ADDQ, DELETEQ, INCRQ, FLUSHQ, APPENDQ = 0x11, 0x12, 0x14, 0x15, 0x18, 0x19
TOUCH, GAT, GATQ, GATK = 0x1c, 0x1d, 0x1e, 0x23
ext_set = struct.pack('>II', 5, 0)
w('bin_set_get', binreq(SET, b'a', ext_set, b'hello') + binreq(GET, b'a') + binreq(GETK, b'a') + binreq(GETQ, b'zz') + binreq(GETKQ, b'a') + binreq(NOOP))
w('bin_storage', binreq(ADD, b'a', ext_set, b'1') + binreq(ADD, b'a', ext_set, b'1') + binreq(REPLACE, b'b', ext_set, b'2') + binreq(APPEND, b'a', b'', b'x') + binreq(PREPEND, b'a', b'', b'y') + binreq(SET, b'a', ext_set, b'z', cas=12345) + binreq(GET, b'a'))
w('bin_delta', binreq(INCR, b'n', struct.pack('>QQI', 1, 10, 0)) + binreq(INCR, b'n', struct.pack('>QQI', 5, 0, 0)) + binreq(DECR, b'n', struct.pack('>QQI', 100, 0, 0)) + binreq(INCR, b'm', struct.pack('>QQI', 1, 0, 0xffffffff)) + binreq(INCRQ, b'n', struct.pack('>QQI', 1, 0, 0)) + binreq(GET, b'n'))
w('bin_quiet', binreq(SETQ, b'a', ext_set, b'1') + binreq(ADDQ, b'a', ext_set, b'1') + binreq(DELETEQ, b'a') + binreq(DELETEQ, b'a') + binreq(APPENDQ, b'x', b'', b'1') + binreq(NOOP))
w('bin_touch', binreq(SET, b'a', ext_set, b'1') + binreq(TOUCH, b'a', struct.pack('>I', 10)) + binreq(GAT, b'a', struct.pack('>I', 10)) + binreq(GATK, b'a', struct.pack('>I', 0)) + binreq(GATQ, b'b', struct.pack('>I', 0)) + binreq(NOOP))
w('bin_admin', binreq(VERSION) + binreq(STAT) + binreq(STAT, b'settings') + binreq(FLUSH, b'', struct.pack('>I', 5)) + binreq(FLUSHQ) + binreq(FLUSH) + binreq(0x1b, b'', struct.pack('>I', 1)) + binreq(0x55) + binreq(NOOP))
w('bin_quit', binreq(SET, b'a', ext_set, b'1') + binreq(QUIT) + binreq(GET, b'a'))
w('bin_bad', binreq(GET, b'a', magic=0x81) + binreq(GET))
w('bin_oversize', binreq(SET, b'big', ext_set, b'x' * 3000) + binreq(GET, b'big') + binreq(NOOP), isz=1)
w('bin_partial', binreq(SET, b'a', ext_set, b'hello') + binreq(GET, b'a')[:30], chunk=5)
w('bin_forced_text', b'get a\r\n', proto=1)
w('text_forced_bin', binreq(NOOP) + b'get a\r\n', proto=2)
w('bin_sasl', binreq(0x20) + binreq(0x21, b'PLAIN', b'', b'\0u\0p') + binreq(NOOP))
w('bin_evict', b''.join(binreq(SET, b'k%d' % i, ext_set, b'v' * 400) for i in range(12)) + binreq(GET, b'k0') + binreq(NOOP), mem=0)
# with the fake disk (byte 2's top bits): ejection to stubs, fetches
w('disk_warm_eject', sets(12, 500) + b'get k0\r\nget k0 k1 k2 k3 k11\r\nmg k1 v\r\nincr k2 1\r\nappend k3 0 0 1\r\nx\r\ndelete k4\r\ntouch k5 10\r\ngat 0 k6\r\nmd k7 I\r\nma k8\r\nlru_crawler metadump all\r\n', mem=1, rpe=1, disk=1)
w('disk_cold_miss', b'get a\r\nget a b c\r\nset a 0 0 1\r\n1\r\nget a b\r\nmg c v\r\nmg d v N30\r\ndelete e\r\nincr f 1\r\nms g 1 MA\r\nx\r\nmn\r\n', disk=2)
w('disk_cold_multiget', sets(12, 500) + b'get ' + b' '.join(b'k%d' % i for i in range(12)) + b' missing\r\ngets k0 k5 k11\r\n', mem=1, rpe=1, disk=2)
w('disk_failing', sets(12, 500) + b'get k0 k1 k2 k3 k4 k5 k6 k7\r\nget k0\r\nmg k1 v\r\nget nokey\r\n', mem=1, rpe=1, disk=3)
w('disk_bin', b''.join(binreq(SET, b'k%d' % i, struct.pack('>II', 0, 0), b'v' * 400) for i in range(12)) + binreq(GET, b'k0') + binreq(GETK, b'k1') + binreq(GETQ, b'k2') + binreq(GAT, b'k3', struct.pack('>I', 5)) + binreq(NOOP), mem=1, rpe=1, disk=1)
w('disk_flush', b'set a 0 0 1\r\n1\r\nflush_all\r\nget a\r\nset b 0 0 1\r\n2\r\nflush_all 5\r\ndebugtime 10\r\nget b\r\n', disk=2)
# -Y: text connections authenticate as fz/pw first
w('auth_ascii_ok', b'get a\r\nset u 0 0 5\r\nfz pw\r\nset a 0 0 1\r\n1\r\nget a\r\nmg a v\r\n', auth=True)
w('auth_ascii_bad', b'set u 0 0 5\r\nfz px\r\nset u 0 0 2\r\nfz\r\nset u 0 0 5 noreply\r\nfz pw\r\nget a\r\nmn\r\n', auth=True)
w('auth_ascii_bin', binreq(NOOP) + binreq(GET, b'a'), auth=True)

if __name__ == '__main__':
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, 'corpus', 'request')
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)
    print('%d seeds written to %s' % (len(SEEDS), out))
