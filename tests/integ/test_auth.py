#!/usr/bin/env python3
"""test_auth: authentication, end to end, with memcached 1.6.18's bytes.

  - SASL (-S) on the binary protocol, with a sasldb made here by
    `saslpasswd2 -a memcached` and a memcached.conf in SASL_CONF_PATH:
    LIST_MECHS lists PLAIN; a GET before AUTH gets AUTH_ERROR ("Auth
    failure.") and the connection is closed, and the key was not touched;
    a wrong password gets AUTH_ERROR; the right one "Authenticated", and
    a SET and GET pipelined behind the AUTH in the same packet run;
    auth_cmds / auth_errors count it, `stats settings` says
    auth_enabled_sasl yes; without memcached.conf ANONYMOUS is neither
    offered nor accepted (memcached accepts it); an AUTH announcing
    1 MiB is refused from its header; SIGTERM stops mckvd while its
    auth thread waits on a saslauthd that never answers;
  - ASCII authentication (-Y FILE): a command before authentication gets
    CLIENT_ERROR unauthenticated, a wrong password CLIENT_ERROR
    authentication failure, the right one STORED and then set/get work
    (pipelined behind it too); a line of more than 2048 bytes closes the
    connection; after SIGHUP a user added to the file
    works and a removed one no longer does; a file with a bad line is
    refused at start with FILE:LINE, and on SIGHUP the users in force
    stay;
  - -S and -Y together with -B auto: binary connections use SASL, text
    ones the file.

MCKVD=/path/to/mckvd python3 tests/integ/test_auth.py
Exit status: 0 pass, 1 fail, 77 skip (no saslpasswd2).
"""

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "persist"))
import mckvtest as mt  # noqa: E402

OP_GET, OP_SET, OP_VERSION, OP_STAT = 0x00, 0x01, 0x0B, 0x10
OP_LIST_MECHS, OP_AUTH, OP_STEP = 0x20, 0x21, 0x22
AUTH_ERROR = 0x20


def plain(user, password):
    return b"\0" + user + b"\0" + password


def make_sasl(t, users):
    """A SASL_CONF_PATH directory: memcached.conf and a sasldb."""
    d = t.tmpdir("sasl")
    db = os.path.join(d, "sasldb")
    for user, password in users:
        subprocess.run(["saslpasswd2", "-a", "memcached", "-c", "-p", "-f",
                        db, user], input=password, check=True, timeout=30)
    with open(os.path.join(d, "memcached.conf"), "w") as f:
        f.write("mech_list: plain\nsasldb_path: %s\n" % db)
    return d


def bin_stats(b, group=b""):
    b.send(b.pack(OP_STAT, group))
    out = {}
    for _ in range(1000):
        r = b.read_response()
        if not r.key:
            return out
        out[r.key.decode()] = r.value.decode()
    raise mt.ProtocolError("stats without an end")


def closed(c):
    """True when the server closed c (EOF within the client's timeout)."""
    c.settimeout(5)
    try:
        return c.sock.recv(1) == b""
    except OSError:
        return False


def test_sasl(t, conf):
    srv = t.server(["-S", "--engine=memory"]).start()
    with srv.binary() as b:
        r = b.request(OP_LIST_MECHS)
        t.check_eq((r.status, r.value), (0, b"PLAIN"), "LIST_MECHS")
        r = b.request(OP_VERSION)
        t.check_eq(r.status, 0, "VERSION before AUTH (memcached allows it)")
    with srv.binary() as b:
        r = b.request(OP_GET, b"k")
        t.check_eq((r.status, r.value), (AUTH_ERROR, b"Auth failure."),
                   "GET before AUTH")
        t.check(closed(b), "the connection is closed after it")
    with srv.binary() as b:
        r = b.request(OP_AUTH, b"PLAIN", plain(b"alice", b"wrong"))
        t.check_eq((r.status, r.value), (AUTH_ERROR, b"Auth failure."),
                   "AUTH with a wrong password")
        r = b.request(OP_GET, b"k")
        t.check_eq(r.status, AUTH_ERROR, "GET after a failed AUTH")
    with srv.binary() as b:
        # AUTH, SET and GET in one packet: the two behind AUTH run once
        # it succeeded
        b.send(b.pack(OP_AUTH, b"PLAIN", plain(b"alice", b"secret1")) +
               b.pack(OP_SET, b"k", b"v1", b.store_extras(5, 0)) +
               b.pack(OP_GET, b"k"))
        r = b.read_response()
        t.check_eq((r.opcode, r.status, r.value), (OP_AUTH, 0, b"Authenticated"),
                   "AUTH with the right password")
        r = b.read_response()
        t.check_eq((r.opcode, r.status), (OP_SET, 0), "SET behind AUTH")
        r = b.read_response()
        t.check_eq((r.opcode, r.status, r.value), (OP_GET, 0, b"v1"),
                   "GET behind AUTH")
        st = bin_stats(b)
        t.check_eq((st.get("auth_cmds"), st.get("auth_errors")), ("2", "1"),
                   "auth_cmds, auth_errors")
        # the GETs refused before authentication looked nothing up
        t.check_eq((st.get("cmd_get"), st.get("get_misses")), ("1", "0"),
                   "only the authenticated GET reached the cache")
        st = bin_stats(b, b"settings")
        t.check_eq(st.get("auth_enabled_sasl"), "yes", "auth_enabled_sasl")
        t.check_eq(st.get("binding_protocol"), "binary",
                   "-S alone means binary (memcached)")
        r = b.request(OP_STEP, b"PLAIN", b"x")
        t.check_eq(r.status, AUTH_ERROR, "STEP after the exchange ended")
    with srv.binary() as b:
        # AUTH and GET one byte at a time: every split point
        data = (b.pack(OP_AUTH, b"PLAIN", plain(b"alice", b"secret1")) +
                b.pack(OP_GET, b"k"))
        for i in range(len(data)):
            b.send(data[i:i + 1])
        r = b.read_response()
        t.check_eq((r.opcode, r.status), (OP_AUTH, 0), "AUTH sent in pieces")
        r = b.read_response()
        t.check_eq((r.opcode, r.status, r.value), (OP_GET, 0, b"v1"),
                   "GET sent in pieces")
    t.stop_checked(srv)


def test_sasl_many(t):
    """Many exchanges at once over both workers, and connections closed
    while their AUTH is on the auth thread (the answer finds no
    connection: its session is disposed of). Run under ASan and TSan."""
    srv = t.server(["-S", "--engine=memory"]).start()
    auth = mt.BinClient.pack(OP_AUTH, b"PLAIN", plain(b"alice", b"secret1"))
    for _ in range(3):
        conns = [srv.binary() for _ in range(16)]
        for i, b in enumerate(conns):
            b.send(auth + b.pack(OP_SET, b"m%d" % i, b"x", b.store_extras(0, 0)))
        dropped = [srv.binary() for _ in range(16)]
        for b in dropped:
            b.send(auth)
            b.close()
        ok = 0
        for b in conns:
            r1, r2 = b.read_response(), b.read_response()
            ok += (r1.status, r2.status) == (0, 0)
            b.close()
        t.check_eq(ok, 16, "16 connections authenticated at once")
    with srv.binary() as b:
        r = b.request(OP_AUTH, b"PLAIN", plain(b"alice", b"secret1"))
        t.check_eq(r.status, 0, "the server still authenticates")
    t.stop_checked(srv)


def test_sasl_big_token(t):
    """An unauthenticated SASL_AUTH announcing a huge body is refused from
    its header: AUTH_ERROR at once, the body skipped as it arrives, so no
    client without credentials makes a buffer grow to item_size_max (and
    a copy of it on the auth thread). The connection stays usable."""
    srv = t.server(["-S", "--engine=memory"]).start()
    with srv.binary() as b:
        body = 1 << 20
        hdr = struct.pack(">BBHBBHIIQ", 0x80, OP_AUTH, 5, 0, 0, 0, body, 0, 0)
        b.send(hdr + b"PLAIN")
        b.settimeout(5)
        try:
            r = b.read_response()
        except OSError:
            r = None
        t.check(r is not None and (r.status, r.value) ==
                (AUTH_ERROR, b"Auth failure."),
                "AUTH of 1 MiB answered from its header (%r)" % (r,))
        if r is None:
            t.stop_checked(srv)
            return
        b.send(b"\0" * (body - 5))
        r = b.request(OP_AUTH, b"PLAIN", plain(b"alice", b"secret1"))
        t.check_eq((r.status, r.value), (0, b"Authenticated"),
                   "the body was skipped: the next AUTH works")
    t.stop_checked(srv)


def sasl_server_with_conf(t, conf_dir):
    """A started `mckvd -S` whose cyrus reads conf_dir instead of the
    test's usual SASL_CONF_PATH (restored at once: the server has read it)."""
    saved = os.environ["SASL_CONF_PATH"]
    os.environ["SASL_CONF_PATH"] = conf_dir
    try:
        return t.server(["-S", "--engine=memory"]).start()
    finally:
        os.environ["SASL_CONF_PATH"] = saved


def test_sasl_stalled(t):
    """A SASL call that never returns (saslauthd accepts and never
    answers, as one stuck on its LDAP or PAM backend) must not keep mckvd
    from stopping: SIGTERM still ends it with status 0."""
    d = t.tmpdir("sasl-stall")
    mux = os.path.join(d, "mux")
    with open(os.path.join(d, "memcached.conf"), "w") as f:
        f.write("mech_list: plain\npwcheck_method: saslauthd\n"
                "saslauthd_path: %s\n" % mux)
    ls = socket.socket(socket.AF_UNIX)
    ls.bind(mux)
    ls.listen(8)
    ls.settimeout(10)
    srv = sasl_server_with_conf(t, d)
    held = []
    with srv.binary() as b:
        b.send(b.pack(OP_AUTH, b"PLAIN", plain(b"alice", b"secret1")))
        try:
            held.append(ls.accept()[0])   # the auth thread now waits on it
        except OSError:
            pass
        t.check_eq(len(held), 1, "the AUTH reached the stalled saslauthd")
        t.stop_checked(srv, timeout=20)
    for c in held:
        c.close()
    ls.close()


def test_no_anonymous(t):
    """No memcached.conf: cyrus offers its every mechanism, ANONYMOUS too
    (memcached then lets anyone in); mckv never offers or accepts it."""
    empty = t.tmpdir("sasl-empty")
    srv = sasl_server_with_conf(t, empty)
    with srv.binary() as b:
        r = b.request(OP_LIST_MECHS)
        t.check(b"ANONYMOUS" not in r.value.split(b" "),
                "ANONYMOUS is not offered (%r)" % r.value)
        r = b.request(OP_AUTH, b"ANONYMOUS", b"anyone")
        t.check_eq(r.status, AUTH_ERROR, "AUTH ANONYMOUS is refused")
        r = b.request(OP_GET, b"k")
        t.check_eq(r.status, AUTH_ERROR, "and authenticates nothing")
    t.stop_checked(srv)


def text_line(c, data):
    c.send(data)
    return c.readline()


def write_users(path, lines):
    with open(path + ".tmp", "w") as f:
        f.write("".join(l + "\n" for l in lines))
    os.replace(path + ".tmp", path)


def test_ascii(t):
    d = t.tmpdir("authfile")
    path = os.path.join(d, "users")
    write_users(path, ["alice:secret1", "bob:pw2"])
    srv = t.server(["-Y", path, "--engine=memory"]).start()
    with srv.text() as c:
        t.check_eq(text_line(c, b"get k\r\n"), b"CLIENT_ERROR unauthenticated",
                   "get before authentication")
        t.check_eq(text_line(c, b"set k 0 0 2\r\nv0\r\n"),
                   b"CLIENT_ERROR bad authentication token format",
                   "a set that is no user/password")
        t.check_eq(text_line(c, b"set a 0 0 11\r\nalice wrong\r\n"),
                   b"CLIENT_ERROR authentication failure", "wrong password")
        # memcached reads <n> with strtoul: a leading + is a number
        t.check_eq(text_line(c, b"set a 0 0 +11\r\nalice wrong\r\n"),
                   b"CLIENT_ERROR authentication failure",
                   "a size written +11 is read as memcached reads it")
        c.send(b"set a 0 0 13\r\nalice secret1\r\nset k 0 0 2\r\nv1\r\nget k\r\n")
        t.check_eq(c.readline(), b"STORED", "right password")
        t.check_eq(c.readline(), b"STORED", "set behind it")
        t.check_eq(c.readline(), b"VALUE k 0 2", "get behind it")
        t.check_eq(c.readline(), b"v1", "its value")
        t.check_eq(c.readline(), b"END", "its end")
        st = c.stats()
        t.check_eq((st.get("auth_cmds"), st.get("auth_errors")), ("3", "2"),
                   "auth_cmds, auth_errors")
        t.check_eq((st.get("cmd_get"), st.get("cmd_set")), ("1", "1"),
                   "nothing before authentication reached the cache")
        st = c.stats("settings")
        t.check_eq(st.get("auth_enabled_ascii"), path, "auth_enabled_ascii")
        t.check_eq(st.get("binding_protocol"), "ascii",
                   "-Y alone means ascii (memcached)")
    with srv.text() as c:
        # the token and a command behind it one byte at a time
        data = b"set a 0 0 13\r\nalice secret1\r\nget k\r\n"
        for i in range(len(data)):
            c.send(data[i:i + 1])
        t.check_eq(c.readline(), b"STORED", "token sent in pieces")
        t.check_eq(c.readline(), b"VALUE k 0 2", "get sent in pieces")
    with srv.text() as c:
        # a line past 2048 bytes closes the connection, newline or not
        # in the same read (found by fuzz_request: it stayed open when
        # the newline came with the line, and closed when it came later)
        c.send(b"x" * 3000 + b"\r\nget k\r\n")
        t.check(closed(c), "a 3000-byte line before authentication closes")
    # reload: carol added, bob removed
    write_users(path, ["alice:secret1", "carol:pw3"])
    os.kill(srv.pid, signal.SIGHUP)

    def auth(user, password):
        with srv.text() as c:
            tok = user + b" " + password
            return text_line(c, b"set a 0 0 %d\r\n%s\r\n" % (len(tok), tok))
    ok = mt.wait_for(lambda: auth(b"carol", b"pw3") == b"STORED", 10)
    t.check(ok, "a user added to the file works after SIGHUP")
    t.check_eq(auth(b"bob", b"pw2"), b"CLIENT_ERROR authentication failure",
               "a user removed from the file no longer works")
    # a bad file on SIGHUP: the users in force stay
    write_users(path, ["alice:secret1", "no colon here"])
    os.kill(srv.pid, signal.SIGHUP)
    ok = mt.wait_for(lambda: path + ":2: malformed" in open(srv.logpath).read(),
                     10)
    t.check(ok, "the rejected reload is logged with file:line")
    t.check_eq(auth(b"carol", b"pw3"), b"STORED",
               "after a rejected reload the users in force stay")
    t.stop_checked(srv)
    # a bad file at start: refused with file:line
    srv = t.server(["-Y", path, "--engine=memory"])
    try:
        srv.start()
        t.fail("a bad auth file was accepted at start")
    except mt.StartError as e:
        t.check("users:2:" in str(e), "start refused with FILE:LINE",
                "start refused with FILE:LINE")


def test_both(t):
    d = t.tmpdir("authfile")
    path = os.path.join(d, "users")
    write_users(path, ["tim:textpw"])
    srv = t.server(["-S", "-Y", path, "--engine=memory"]).start()
    with srv.text() as c:
        t.check_eq(text_line(c, b"set a 0 0 10\r\ntim textpw\r\n"), b"STORED",
                   "-S -Y: text authenticates with the file")
    with srv.binary() as b:
        r = b.request(OP_GET, b"k")
        t.check_eq(r.status, AUTH_ERROR, "-S -Y: binary needs SASL")
    with srv.binary() as b:
        r = b.request(OP_AUTH, b"PLAIN", plain(b"alice", b"secret1"))
        t.check_eq(r.status, 0, "-S -Y: binary authenticates with SASL")
    t.stop_checked(srv)


def main(t):
    if shutil.which("saslpasswd2") is None:
        raise mt.Skip("saslpasswd2 (sasl2-bin) is not installed")
    conf = make_sasl(t, [("alice", b"secret1")])
    os.environ["SASL_CONF_PATH"] = conf   # the servers started below
    test_sasl(t, conf)
    test_no_anonymous(t)
    test_sasl_many(t)
    test_sasl_big_token(t)
    test_sasl_stalled(t)
    test_ascii(t)
    test_both(t)


if __name__ == "__main__":
    mt.Test("test_auth", time_limit=120).run(main)
