#!/usr/bin/env python3
"""test_tls: TLS listeners as memcached -Z has them.

Certificates are made at test time with the openssl command in a temp dir
(a CA, a server certificate for 127.0.0.1, a second one for the refresh,
a client certificate signed by the CA and a self-signed one). Then:
- pymemcache with a verified ssl.SSLContext (the CA, the host name) sets
  and gets, many keys and a value larger than a TLS record; a raw TLS
  socket pipelines many gets in one write and gets every reply;
- a plaintext client on the TLS port gets no memcached reply and is
  closed, counted as ssl_handshake_errors; the server lives on;
- the notls: listener of the same -l list answers in plain text;
- `stats settings` shows memcached's ssl_* names and values, `stats` its
  ssl_handshake_errors and time_since_server_cert_refresh;
- refresh_certs: with new files at the configured paths a new connection
  gets the new certificate (its serial) while one opened before keeps
  working; a refresh from a broken file answers memcached's error line
  and changes nothing;
- ssl_verify_mode=2 with ssl_ca_cert: a client certificate signed by the
  CA is accepted, none or a self-signed one is refused;
- start-up with a missing certificate or a broken key exits non-zero
  naming the file and OpenSSL's reason.

Runs under /usr/bin/python3 (Debian's python3-pymemcache), re-executing
itself there when the python3 it was started with lacks pymemcache.
MCKVD=/path/to/mckvd python3 tests/integ/test_tls.py
Exit status: 0 pass, 1 fail, 77 skip.
"""

import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time

try:
    import pymemcache.client.base as pmc
except ImportError:
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    print("SKIP: pymemcache is not installed (Debian python3-pymemcache)")
    sys.exit(77)

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "persist"))
import mckvtest as mt  # noqa: E402

IO_TIMEOUT = 10


def openssl(t, d, *args):
    r = subprocess.run(["openssl"] + list(args), cwd=d, capture_output=True,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args),
                                               r.stderr.decode(errors="replace")))


def make_certs(t):
    """CA, two server certificates (serials 1001, 1002), a client signed
    by the CA and a self-signed client, in a temp dir."""
    if shutil.which("openssl") is None:
        raise mt.Skip("the openssl command is not installed")
    d = t.tmpdir("certs")
    ext = os.path.join(d, "san.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName = IP:127.0.0.1\n")
    openssl(t, d, "req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=mckv test CA")
    for name, serial in (("srv1", "1001"), ("srv2", "1002"),
                         ("client", "2001")):
        openssl(t, d, "req", "-newkey", "rsa:2048", "-nodes",
                "-keyout", name + ".key", "-out", name + ".csr",
                "-subj", "/CN=" + ("127.0.0.1" if name != "client"
                                   else "mckv test client"))
        openssl(t, d, "x509", "-req", "-in", name + ".csr", "-CA", "ca.crt",
                "-CAkey", "ca.key", "-set_serial", serial, "-days", "2",
                "-out", name + ".crt", "-extfile", ext)
    openssl(t, d, "req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-keyout", "rogue.key", "-out", "rogue.crt", "-days", "2",
            "-subj", "/CN=rogue client")
    # the server's configured paths; refresh_certs rereads them
    for ext in (".crt", ".key"):
        shutil.copy(os.path.join(d, "srv1" + ext), os.path.join(d, "server" + ext))
    shutil.copy(os.path.join(d, "srv1.key"), os.path.join(d, "server.key"))
    return d


def client_ctx(d, cert=None):
    ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.crt"))
    if cert is not None:
        ctx.load_cert_chain(os.path.join(d, cert + ".crt"),
                            os.path.join(d, cert + ".key"))
    return ctx


def tls_sock(d, port, cert=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    return client_ctx(d, cert).wrap_socket(s, server_hostname="127.0.0.1")


def serial_of(sock):
    return int(sock.getpeercert()["serialNumber"], 16)


def read_until(sock, end, limit=8 << 20):
    """Reads until the data ends with `end` (bounded in bytes and by the
    socket's timeout)."""
    buf = bytearray()
    while not buf.endswith(end):
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
        if len(buf) > limit:
            break
    return bytes(buf)


def read_bytes(sock, n):
    """Reads n bytes (fewer at the end of the stream; bounded by the
    socket's timeout)."""
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(65536, n - len(buf)))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def plain_cmd(port, cmd):
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as s:
        s.sendall(cmd)
        return read_until(s, b"END\r\n" if cmd.startswith(b"stats")
                          else b"\r\n")


def stats(port, group=b""):
    data = plain_cmd(port, b"stats" + (b" " + group if group else b"") + b"\r\n")
    out = {}
    for line in data.split(b"\r\n"):
        parts = line.split(b" ", 2)
        if len(parts) == 3 and parts[0] == b"STAT":
            out[parts[1].decode()] = parts[2].decode()
    return out


def start_tls_server(t, d, extra=()):
    """mckvd with -Z on a TLS port and a notls: one; returns (srv, plain)."""
    plain = mt.free_port()
    srv = t.server(["--engine=memory", "-Z", "-o",
                    "ssl_chain_cert=%s,ssl_key=%s"
                    % (os.path.join(d, "server.crt"),
                       os.path.join(d, "server.key"))] + list(extra))
    # the -l list replaces the harness's -l; its first entry takes -p
    srv.args += ["-l", "127.0.0.1,notls:127.0.0.1:%d" % plain]
    srv.start()
    return srv, plain


def test_basic(t, d):
    # one worker: a client stalled in its handshake shares it with the rest
    srv, plain = start_tls_server(t, d, ["-t", "1"])
    stalled = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    stalled.sendall(b"\x16\x03\x01\x00\x80")   # a ClientHello's start only
    t.at_cleanup(stalled.close)
    c = pmc.Client(("127.0.0.1", srv.port), tls_context=client_ctx(d),
                   timeout=IO_TIMEOUT, connect_timeout=IO_TIMEOUT)
    t.check(c.set("k1", b"v1") is True, "pymemcache set over TLS")
    t.check_eq(c.get("k1"), b"v1", "pymemcache get over TLS, beside a "
               "handshake that stalls on the same worker")
    for i in range(200):
        c.set("key%d" % i, b"value-%d" % i)
    got = c.get_many(["key%d" % i for i in range(200)])
    t.check(len(got) == 200 and all(got["key%d" % i] == b"value-%d" % i
                                    for i in range(200)),
            "a 200-key get_many over TLS returns every value (%d)" % len(got))
    big = os.urandom(600 * 1024)
    t.check(c.set("big", big) is True, "a 600 KB set over TLS")
    t.check(c.get("big") == big, "a 600 KB value comes back intact over TLS")
    c.close()

    # pipelined: 8000 gets (about 90 KB) in one write, more than the read
    # buffer takes at once: the rest waits decrypted inside OpenSSL, with
    # no socket event to come for it. Every reply, in order.
    s = tls_sock(d, srv.port)
    s.sendall(b"".join(b"get key%d\r\n" % (i % 200) for i in range(8000)))
    want = b"".join(b"VALUE key%d 0 %d\r\nvalue-%d\r\nEND\r\n"
                    % (i % 200, len(b"value-%d" % (i % 200)), i % 200)
                    for i in range(8000))
    t.check(read_bytes(s, len(want)) == want, "8000 pipelined gets over TLS: "
            "every reply in order")
    s.close()

    before = int(stats(plain).get("ssl_handshake_errors", "-1"))
    # a plaintext client on the TLS port: no memcached reply
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as p:
        p.sendall(b"version\r\nget k1\r\n")
        try:
            got = p.recv(4096)
        except (ConnectionResetError, socket.timeout):
            got = b""
        t.check(not got.startswith(b"VERSION") and b"v1" not in got,
                "a plaintext client on the TLS port gets no reply (%r)"
                % got[:40])
    after = -1
    for _ in range(100):   # the close is counted as the worker sees it
        after = int(stats(plain).get("ssl_handshake_errors", "-1"))
        if after > before:
            break
        time.sleep(0.02)
    t.check(after == before + 1, "it is counted in ssl_handshake_errors "
            "(%d -> %d)" % (before, after))
    t.check(srv.alive(), "the server lives on")
    t.check_eq(plain_cmd(plain, b"get k1\r\n")[:12], b"VALUE k1 0 2",
               "the notls: listener answers in plain text")

    st = stats(plain)
    t.check("time_since_server_cert_refresh" in st,
            "stats has time_since_server_cert_refresh")
    ss = stats(plain, b"settings")
    want_settings = {
        "ssl_enabled": "yes", "ssl_chain_cert": os.path.join(d, "server.crt"),
        "ssl_key": os.path.join(d, "server.key"), "ssl_verify_mode": "0",
        "ssl_keyformat": "1", "ssl_ciphers": "NULL", "ssl_ca_cert": "NULL",
        "ssl_wbuf_size": "16384", "ssl_session_cache": "no",
        "ssl_kernel_tls": "no", "ssl_min_version": "tlsv1.2",
    }
    for k, v in want_settings.items():
        t.check_eq(ss.get(k), v, "stats settings " + k)
    return srv, plain


def test_refresh(t, d, srv, plain):
    old = tls_sock(d, srv.port)
    t.check_eq(serial_of(old), 1001, "the first certificate's serial")
    shutil.copy(os.path.join(d, "srv2.crt"), os.path.join(d, "server.crt"))
    shutil.copy(os.path.join(d, "srv2.key"), os.path.join(d, "server.key"))
    t.check_eq(plain_cmd(plain, b"refresh_certs noreply\r\nversion\r\n")[:8],
               b"VERSION ", "refresh_certs noreply: no OK (memcached)")
    t.check_eq(plain_cmd(plain, b"refresh_certs\r\n"), b"OK\r\n",
               "refresh_certs")
    new = tls_sock(d, srv.port)
    t.check_eq(serial_of(new), 1002, "a new connection gets the new certificate")
    for name, s in (("the connection from before", old), ("the new one", new)):
        s.sendall(b"get k1\r\n")
        t.check_eq(read_until(s, b"END\r\n"), b"VALUE k1 0 2\r\nv1\r\nEND\r\n",
                   name + " works after refresh_certs")
    new.close()
    # refreshes while other connections handshake, on every worker (the
    # context swap against SSL_new: TSan runs this)
    errors = []

    def connect_loop():
        for _ in range(25):
            try:
                with tls_sock(d, srv.port) as s:
                    s.sendall(b"get k1\r\n")
                    if not read_until(s, b"END\r\n").startswith(b"VALUE k1"):
                        errors.append("bad reply")
            except OSError as e:
                errors.append(str(e))
    workers = [threading.Thread(target=connect_loop) for _ in range(3)]
    for w in workers:
        w.start()
    replies = [plain_cmd(plain, b"refresh_certs\r\n") for _ in range(15)]
    for w in workers:
        w.join(timeout=60)
    t.check(all(r == b"OK\r\n" for r in replies) and not errors
            and not any(w.is_alive() for w in workers),
            "refresh_certs during 75 handshakes: every one works (%s)"
            % (errors[:3] or "ok"))
    # a broken file: memcached's error line, and the context stays
    with open(os.path.join(d, "server.crt"), "w") as f:
        f.write("not a certificate\n")
    reply = plain_cmd(plain, b"refresh_certs\r\n")
    t.check(reply.startswith(b"Error loading the certificate chain: "
                             + os.path.join(d, "server.crt").encode()),
            "a failed refresh_certs says why (%r)" % reply[:90])
    # memcached prints OpenSSL's first reason only (the PEM one)
    t.check(reply.endswith(b"PEM routines::no start line\r\n"),
            "the reason is OpenSSL's first, as memcached's (%r)" % reply[-90:])
    again = tls_sock(d, srv.port)
    t.check_eq(serial_of(again), 1002, "after a failed refresh the "
               "certificate stays")
    again.close()
    old.sendall(b"get k1\r\n")
    t.check_eq(read_until(old, b"END\r\n")[:12], b"VALUE k1 0 2",
               "the old connection still works")
    old.close()
    t.stop_checked(srv)
    for ext in (".crt", ".key"):
        shutil.copy(os.path.join(d, "srv1" + ext), os.path.join(d, "server" + ext))


def refused(d, port, cert):
    """True when the server refuses this client: the handshake fails, or
    (TLS 1.3: the client finishes first) the first read does."""
    try:
        s = tls_sock(d, port, cert)
        s.sendall(b"version\r\n")
        got = s.recv(100)
        s.close()
        return not got.startswith(b"VERSION")
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError,
            socket.timeout):
        return True


def test_verify(t, d):
    srv, plain = start_tls_server(t, d, ["-o", "ssl_verify_mode=2,ssl_ca_cert=%s"
                                         % os.path.join(d, "ca.crt")])
    c = pmc.Client(("127.0.0.1", srv.port),
                   tls_context=client_ctx(d, "client"), timeout=IO_TIMEOUT)
    t.check(c.set("v", b"ok") is True and c.get("v") == b"ok",
            "ssl_verify_mode=2: a client certificate signed by the CA works")
    c.close()
    t.check(refused(d, srv.port, None),
            "ssl_verify_mode=2: a client without a certificate is refused")
    t.check(refused(d, srv.port, "rogue"),
            "ssl_verify_mode=2: a self-signed client certificate is refused")
    t.check_eq(stats(plain, b"settings").get("ssl_verify_mode"), "2",
               "stats settings ssl_verify_mode")
    t.check(srv.alive(), "the server lives on")
    t.stop_checked(srv)


def start_fails(t, args, want, what):
    r = subprocess.run([mt.mckvd_path(), "--engine=memory", "-p",
                        str(mt.free_port()), "-l", "127.0.0.1"] + args,
                       capture_output=True, timeout=30)
    out = (r.stdout + r.stderr).decode(errors="replace")
    t.check(r.returncode != 0 and all(w in out for w in want),
            "%s: start-up fails naming it (exit %d: %s)"
            % (what, r.returncode, out.strip()[:160]))


def test_startup_errors(t, d):
    missing = os.path.join(d, "missing.crt")
    start_fails(t, ["-Z", "-o", "ssl_chain_cert=" + missing],
                [missing, "certificate chain", "No such file"],
                "a missing certificate")
    bad_key = os.path.join(d, "bad.key")
    with open(bad_key, "w") as f:
        f.write("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    start_fails(t, ["-Z", "-o", "ssl_chain_cert=%s,ssl_key=%s"
                    % (os.path.join(d, "srv1.crt"), bad_key)],
                [bad_key, "Error loading the key"], "a broken key")
    start_fails(t, ["-Z", "-o", "ssl_chain_cert=%s,ssl_key=%s"
                    % (os.path.join(d, "srv1.crt"),
                       os.path.join(d, "srv2.key"))],
                ["Error loading the key", "key values mismatch"],
                "a key of another "
                "certificate")
    start_fails(t, ["-Z"], ["ssl_chain_cert"], "-Z without a certificate")


def main(t):
    d = make_certs(t)
    srv, plain = test_basic(t, d)
    test_refresh(t, d, srv, plain)
    test_verify(t, d)
    test_startup_errors(t, d)


if __name__ == "__main__":
    mt.Test("test_tls", time_limit=120).run(main)
