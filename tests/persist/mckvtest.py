"""mckvtest: shared helpers for mckv's persistence integration tests.

Every test script in tests/persist imports this module. It owns:
  - Test: the run harness (failure list, exit status 0 pass / 1 fail /
    77 skip, an overall alarm so no script runs past its time bound,
    temporary directories and servers cleaned up however the run ends);
  - Server: one mckvd process ($MCKVD) on a free 127.0.0.1 port, started
    with a bounded wait for connect, stopped by its pid (SIGTERM, exit code
    returned) or killed (SIGKILL);
  - TextClient / BinClient: small memcached text and binary protocol
    clients; every socket read has a timeout;
  - a few helpers (wait_for, kvstats, sqlite integrity check).

Standard library only. Python 3.7+.
"""

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_SKIP = 77

DEFAULT_IO_TIMEOUT = 10.0


class Skip(Exception):
    """Raised to end a test with exit status 77."""


class StartError(Exception):
    """The server did not start (exited, or never accepted)."""


class ProtocolError(Exception):
    """The server sent something the client did not expect."""


class TimeLimit(BaseException):
    """Raised by the alarm when a script runs past its time bound.

    A BaseException so that `except Exception` in test code does not
    swallow it."""


# ---------------------------------------------------------------- helpers

def mckvd_path():
    """Absolute path of the server under test, from $MCKVD."""
    path = os.environ.get("MCKVD")
    if not path:
        if os.access("./mckvd", os.X_OK):
            path = "./mckvd"
        else:
            raise StartError("$MCKVD is not set (give the absolute path of "
                             "mckvd: MCKVD=/path/to/mckvd python3 %s)"
                             % sys.argv[0])
    path = os.path.abspath(path)
    if not os.access(path, os.X_OK):
        raise StartError("$MCKVD=%s is not an executable file" % path)
    return path


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def to_bytes(x):
    if isinstance(x, bytes):
        return x
    if isinstance(x, (bytearray, memoryview)):
        return bytes(x)
    return str(x).encode()


def wait_for(pred, timeout, interval=0.05):
    """Calls pred() until it returns a true value or `timeout` seconds pass.
    Returns the last value of pred()."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


# The persistent engine the tests run against: sqlite, or what MCKV_ENGINE
# names (tests/persist/*_rocksdb.sh run the same tests with engine=rocksdb,
# whose db_path is a directory).
ENGINE = os.environ.get("MCKV_ENGINE", "sqlite")


def persist_args(db_path, **opts):
    """Command-line arguments for a persistent server: ENGINE on db_path
    plus each keyword as --key-with-dashes=value."""
    args = ["--engine=%s" % ENGINE, "--db-path=%s" % db_path]
    for k, v in opts.items():
        args.append("--%s=%s" % (k.replace("_", "-"), v))
    return args


def sqlite_integrity(db_path, timeout=30):
    """Runs `sqlite3 DB 'PRAGMA integrity_check'`; returns its output
    (stripped): "ok" when the database is sound."""
    if shutil.which("sqlite3") is None:
        return "sqlite3 CLI not found in PATH"
    try:
        r = subprocess.run(["sqlite3", db_path, "PRAGMA integrity_check;"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return "sqlite3 integrity_check timed out after %d s" % timeout
    return r.stdout.decode(errors="replace").strip()


def db_integrity(db_path):
    """"ok" when the engine's own check finds the database sound. SQLite:
    PRAGMA integrity_check. RocksDB has no checker on the machine (no ldb);
    its check is the restart that reads everything back, so "ok"."""
    if ENGINE == "rocksdb":
        return "ok" if os.path.exists(os.path.join(db_path, "CURRENT")) \
            else "no CURRENT file in %s" % db_path
    return sqlite_integrity(db_path)


def copy_db(db_path, dest_dir):
    """Copies a (possibly crashed) WAL database, its -wal and -journal files
    (or a RocksDB directory) into dest_dir so it can be inspected without
    touching the original. Returns the copy's path."""
    os.makedirs(dest_dir, exist_ok=True)
    dst = os.path.join(dest_dir, os.path.basename(db_path))
    if os.path.isdir(db_path):
        shutil.copytree(db_path, dst, ignore=shutil.ignore_patterns("LOCK"))
        return dst
    for suffix in ("", "-wal", "-journal"):
        if os.path.exists(db_path + suffix):
            shutil.copyfile(db_path + suffix, dst + suffix)
    return dst


def kv_int(d, name):
    """Integer stat `name` from a stats dict, or None when absent."""
    v = d.get(name)
    if v is None:
        return None
    try:
        return int(v)
    except ValueError:
        try:
            return float(v)
        except ValueError:
            return None


# ---------------------------------------------------------------- server

class Server:
    """One mckvd process. Arguments get `-p PORT -l 127.0.0.1` added (and
    `-t 2` unless given). Output goes to a log file in `logdir`."""

    def __init__(self, args, logdir, name="mckvd"):
        self.args = list(args)
        self.logdir = logdir
        self.name = name
        self.proc = None
        self.port = None
        self.logpath = None
        self.returncode = None
        self._starts = 0

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self, timeout=15.0):
        """Starts the server on a fresh free port and waits (at most
        `timeout` s) until it accepts a connection. Raises StartError with
        the server's output when it exits or never accepts."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("server already running")
        self._starts += 1
        self.port = free_port()
        args = [mckvd_path(), "-p", str(self.port), "-l", "127.0.0.1"]
        if not any(a == "-t" or a.startswith("--threads") for a in self.args):
            args += ["-t", "2"]
        args += self.args
        self.cmdline = args
        self.logpath = os.path.join(self.logdir, "%s.%d.log"
                                    % (self.name, self._starts))
        log = open(self.logpath, "wb")
        try:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        self.returncode = None
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                self.proc = None
                raise StartError(
                    "server %r exited with status %d at start-up (does it "
                    "support the persistence options?)\n  command: %s\n"
                    "  output:\n%s"
                    % (self.name, rc, " ".join(args), self.log_tail()))
            try:
                s = socket.create_connection(("127.0.0.1", self.port),
                                             timeout=0.5)
                s.close()
                return self
            except OSError:
                pass
            if time.monotonic() >= deadline:
                self.kill()
                raise StartError(
                    "server %r did not accept on 127.0.0.1:%d within %.0f s\n"
                    "  command: %s\n  output:\n%s"
                    % (self.name, self.port, timeout, " ".join(args),
                       self.log_tail()))
            time.sleep(0.02)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=30.0):
        """SIGTERM by pid, waits (bounded) and returns the exit status
        (negative: killed by that signal). When it does not exit within
        `timeout` it is SIGKILLed and None is returned."""
        if self.proc is None:
            return self.returncode
        p = self.proc
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
                self.proc = None
                self.returncode = None
                return None
        self.returncode = p.returncode
        self.proc = None
        return self.returncode

    def kill(self):
        """SIGKILL by pid and reap. Returns the exit status."""
        if self.proc is None:
            return self.returncode
        p = self.proc
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=10)
        self.returncode = p.returncode
        self.proc = None
        return self.returncode

    def log_tail(self, lines=30):
        try:
            with open(self.logpath, "rb") as f:
                data = f.read().decode(errors="replace").splitlines()
        except OSError:
            return "    (no output)"
        return ("\n".join("    " + l for l in data[-lines:])
                or "    (no output)")

    def text(self, timeout=DEFAULT_IO_TIMEOUT):
        return TextClient(self.port, timeout=timeout)

    def binary(self, timeout=DEFAULT_IO_TIMEOUT):
        return BinClient(self.port, timeout=timeout)


# ---------------------------------------------------------------- harness

class Test:
    """Runs one test function with cleanup and a time bound.

        t = Test("test_x", time_limit=85)
        t.run(main)          # main(t); never returns

    main() reports problems with t.check()/t.fail(); raises Skip to skip.
    """

    def __init__(self, name, time_limit=85):
        self.name = name
        self.time_limit = time_limit
        self.failures = []
        self.servers = []
        self.tmpdirs = []
        self.cleanups = []
        self.t0 = time.monotonic()

    # reporting
    def log(self, msg):
        print("[%6.2fs] %s" % (time.monotonic() - self.t0, msg), flush=True)

    def info(self, msg):
        self.log("info: " + msg)

    def ok(self, msg):
        self.log("ok: " + msg)

    def fail(self, msg):
        self.failures.append(msg)
        self.log("FAIL: " + msg)

    def check(self, cond, msg, ok_msg=None):
        """Records `msg` as a failure unless cond; returns cond."""
        if cond:
            if ok_msg:
                self.ok(ok_msg)
            return True
        self.fail(msg)
        return False

    def check_eq(self, got, want, what):
        return self.check(got == want, "%s: got %s, want %s"
                          % (what, short(got), short(want)))

    # resources
    def tmpdir(self, prefix=None):
        d = tempfile.mkdtemp(prefix=(prefix or self.name) + ".")
        self.tmpdirs.append(d)
        return d

    def server(self, args, name="mckvd"):
        """A Server (not started) stopped at the end of the run."""
        logdir = self.tmpdir(self.name + ".log")
        s = Server(args, logdir, name=name)
        self.servers.append(s)
        return s

    def at_cleanup(self, fn):
        """fn() runs at the end of the run, before temp dirs go (LIFO)."""
        self.cleanups.append(fn)

    def stop_checked(self, srv, what="server", timeout=30.0):
        """SIGTERM and require exit status 0."""
        t = time.monotonic()
        rc = srv.stop(timeout=timeout)
        self.check(rc == 0, "%s: SIGTERM gave exit status %s (want 0)%s"
                   % (what, rc, "" if rc is not None else
                      " -- it did not exit within %.0f s and was killed"
                      % timeout),
                   "%s stopped with SIGTERM, exit 0 (%.2f s)"
                   % (what, time.monotonic() - t))
        if rc != 0:
            self.log("server output:\n" + srv.log_tail())
        return rc

    # running
    def _alarm(self, signum, frame):
        raise TimeLimit("time limit of %d s reached" % self.time_limit)

    def run(self, fn):
        status = EXIT_FAIL
        signal.signal(signal.SIGALRM, self._alarm)
        signal.alarm(self.time_limit)
        if ENGINE != "sqlite":
            self.info("persistent servers use engine=%s (MCKV_ENGINE)" % ENGINE)
        try:
            fn(self)
            status = EXIT_FAIL if self.failures else EXIT_PASS
        except Skip as e:
            self.log("SKIP: %s" % e)
            status = EXIT_SKIP
        except StartError as e:
            self.fail("server start failed: %s" % e)
            status = EXIT_FAIL
        except TimeLimit as e:
            self.fail("%s: the test was stopped (a server stall, or a "
                      "wait without result)" % e)
            traceback.print_exc()
            status = EXIT_FAIL
        except Exception as e:  # noqa: BLE001 -- report everything
            self.fail("unexpected %s: %s" % (type(e).__name__, e))
            traceback.print_exc()
            status = EXIT_FAIL
        finally:
            signal.alarm(0)
            self._cleanup()
        if status == EXIT_PASS:
            self.log("%s: PASS" % self.name)
        elif status == EXIT_FAIL:
            self.log("%s: FAIL (%d problem%s)" % (
                self.name, len(self.failures),
                "" if len(self.failures) == 1 else "s"))
            for f in self.failures[:40]:
                print("  - " + f, flush=True)
            if len(self.failures) > 40:
                print("  ... and %d more" % (len(self.failures) - 40))
            for s in self.servers:
                if s.logpath and s.returncode not in (0, None):
                    print("  server log %s (exit %s):\n%s"
                          % (s.logpath, s.returncode, s.log_tail(15)))
        sys.stdout.flush()
        sys.exit(status)

    def _cleanup(self):
        for s in self.servers:
            try:
                if s.alive():
                    s.stop(timeout=15)
            except Exception as e:  # noqa: BLE001
                self.log("cleanup: stopping server: %s" % e)
                try:
                    s.kill()
                except Exception:  # noqa: BLE001
                    pass
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:  # noqa: BLE001
                self.log("cleanup: %s" % e)
        keep = os.environ.get("MCKVTEST_KEEP")
        for d in self.tmpdirs:
            if keep:
                self.log("kept %s" % d)
            else:
                shutil.rmtree(d, ignore_errors=True)


def short(x, n=60):
    r = repr(x)
    return r if len(r) <= n else r[:n] + "...(%d chars)" % len(r)


# ---------------------------------------------------------------- sockets

class _Conn:
    def __init__(self, port, timeout):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.buf = bytearray()

    def settimeout(self, t):
        self.sock.settimeout(t)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ProtocolError("connection closed by the server")
        self.buf += chunk

    def readline(self):
        """One line without its \\r\\n (bytes)."""
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            self._fill()

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data


# ---------------------------------------------------------------- text

class TextClient(_Conn):
    """memcached text protocol. Storage commands return the reply line as
    str ("STORED", "NOT_STORED", "EXISTS", "NOT_FOUND",
    "SERVER_ERROR temporary failure", ...)."""

    def __init__(self, port, timeout=DEFAULT_IO_TIMEOUT):
        super().__init__(port, timeout)

    # storage
    @staticmethod
    def store_cmd(cmd, key, value, flags=0, exptime=0, cas=None,
                  noreply=False):
        key = to_bytes(key)
        value = to_bytes(value)
        line = b"%s %s %d %d %d" % (cmd.encode(), key, flags, exptime,
                                     len(value))
        if cas is not None:
            line += b" %d" % cas
        if noreply:
            line += b" noreply"
        return line + b"\r\n" + value + b"\r\n"

    def _store(self, cmd, key, value, flags, exptime, cas=None):
        self.send(self.store_cmd(cmd, key, value, flags, exptime, cas))
        return self.readline().decode(errors="replace")

    def set(self, key, value, flags=0, exptime=0):
        return self._store("set", key, value, flags, exptime)

    def add(self, key, value, flags=0, exptime=0):
        return self._store("add", key, value, flags, exptime)

    def replace(self, key, value, flags=0, exptime=0):
        return self._store("replace", key, value, flags, exptime)

    def append(self, key, value):
        return self._store("append", key, value, 0, 0)

    def prepend(self, key, value):
        return self._store("prepend", key, value, 0, 0)

    def cas(self, key, value, cas, flags=0, exptime=0):
        return self._store("cas", key, value, flags, exptime, cas)

    # retrieval
    def read_values(self):
        """Reads VALUE blocks up to END: {key(bytes): (flags, value, cas)}
        (cas None when the reply has none)."""
        out = {}
        while True:
            line = self.readline()
            if line == b"END":
                return out
            parts = line.split()
            if len(parts) < 4 or parts[0] != b"VALUE":
                raise ProtocolError("unexpected retrieval reply %r" % line)
            n = int(parts[3])
            cas = int(parts[4]) if len(parts) > 4 else None
            data = self.read_exact(n + 2)
            if data[-2:] != b"\r\n":
                raise ProtocolError("value of %r not ended by \\r\\n"
                                    % parts[1])
            out[parts[1]] = (int(parts[2]), data[:-2], cas)

    def _retrieve(self, cmd, keys):
        self.send(b"%s %s\r\n" % (cmd.encode(),
                                  b" ".join(to_bytes(k) for k in keys)))
        return self.read_values()

    def get(self, key):
        """(flags, value) or None."""
        r = self._retrieve("get", [key]).get(to_bytes(key))
        return None if r is None else (r[0], r[1])

    def gets(self, key):
        """(flags, value, cas) or None."""
        return self._retrieve("gets", [key]).get(to_bytes(key))

    def get_multi(self, keys):
        """{key(bytes): (flags, value)} for the hits."""
        got = self._retrieve("get", keys)
        return {k: (v[0], v[1]) for k, v in got.items()}

    def gat(self, exptime, key):
        """(flags, value) or None; sets the new expiry."""
        r = self._retrieve("gat %d" % exptime, [key]).get(to_bytes(key))
        return None if r is None else (r[0], r[1])

    def gats(self, exptime, key):
        return self._retrieve("gats %d" % exptime, [key]).get(to_bytes(key))

    # others
    def _simple(self, line):
        self.send(line + b"\r\n")
        return self.readline().decode(errors="replace")

    def delete(self, key):
        return self._simple(b"delete " + to_bytes(key))

    def _arith(self, cmd, key, delta):
        r = self._simple(b"%s %s %d" % (cmd, to_bytes(key), delta))
        return int(r) if r.isdigit() else r

    def incr(self, key, delta=1):
        """New value (int) or the reply line (str)."""
        return self._arith(b"incr", key, delta)

    def decr(self, key, delta=1):
        return self._arith(b"decr", key, delta)

    def touch(self, key, exptime):
        return self._simple(b"touch %s %d" % (to_bytes(key), exptime))

    def flush_all(self, delay=None):
        if delay is None:
            return self._simple(b"flush_all")
        return self._simple(b"flush_all %d" % delay)

    def version(self):
        return self._simple(b"version")

    def stats(self, group=None):
        """{name: value(str)}."""
        self.send(b"stats\r\n" if not group
                  else b"stats " + to_bytes(group) + b"\r\n")
        out = {}
        while True:
            line = self.readline().decode(errors="replace")
            if line == "END":
                return out
            parts = line.split(" ", 2)
            if parts[0] != "STAT" or len(parts) < 2:
                raise ProtocolError("'stats%s' answered %r (group not "
                                    "supported?)" % (
                                        " " + group if group else "", line))
            out[parts[1]] = parts[2] if len(parts) > 2 else ""

    # pipelining
    def set_many(self, items, batch=500, flags=0, exptime=0):
        """Pipelined sets of [(key, value)]; returns the reply lines in
        order."""
        replies = []
        for i in range(0, len(items), batch):
            chunk = items[i:i + batch]
            self.send(b"".join(self.store_cmd("set", k, v, flags, exptime)
                               for k, v in chunk))
            for _ in chunk:
                replies.append(self.readline().decode(errors="replace"))
        return replies

    def store_retrying(self, item, indexes, deadline, batch=256):
        """Sets item(i) = (key, value[, flags]) for every i of indexes,
        pipelined in batches; a write refused by backpressure (or anything
        but STORED) is retried, whole rounds at a time with a 0.2 s pause
        for the backlog to drain, until the monotonic `deadline`. Returns
        (indexes never stored, {reply: count} of the refusals)."""
        todo = list(indexes)
        refused = {}
        while todo and time.monotonic() < deadline:
            failed = []
            for start in range(0, len(todo), batch):
                chunk = todo[start:start + batch]
                cmds = []
                for i in chunk:
                    it = item(i)
                    flags = it[2] if len(it) > 2 else 0
                    cmds.append(self.store_cmd("set", it[0], it[1], flags, 0))
                self.send(b"".join(cmds))
                for i in chunk:
                    r = self.readline().decode(errors="replace")
                    if r != "STORED":
                        failed.append(i)
                        refused[r] = refused.get(r, 0) + 1
                if time.monotonic() >= deadline:
                    failed.extend(todo[start + batch:])
                    break
            todo = failed
            if todo:
                time.sleep(0.2)
        return todo, refused

    def get_many(self, keys, batch=100):
        """Multi-gets in batches; {key(bytes): (flags, value)} for hits."""
        out = {}
        for i in range(0, len(keys), batch):
            out.update(self.get_multi(keys[i:i + batch]))
        return out


# ---------------------------------------------------------------- binary

REQ_MAGIC = 0x80
RES_MAGIC = 0x81
HEADER = struct.Struct(">BBHBBHIIQ")

OP_GET = 0x00
OP_SET = 0x01
OP_ADD = 0x02
OP_REPLACE = 0x03
OP_DELETE = 0x04
OP_INCREMENT = 0x05
OP_DECREMENT = 0x06
OP_QUIT = 0x07
OP_FLUSH = 0x08
OP_GETQ = 0x09
OP_NOOP = 0x0A
OP_VERSION = 0x0B
OP_GETK = 0x0C
OP_GETKQ = 0x0D
OP_APPEND = 0x0E
OP_PREPEND = 0x0F
OP_STAT = 0x10
OP_TOUCH = 0x1C
OP_GAT = 0x1D

ST_OK = 0x00
ST_KEY_ENOENT = 0x01
ST_KEY_EEXISTS = 0x02
ST_E2BIG = 0x03
ST_EINVAL = 0x04
ST_NOT_STORED = 0x05
ST_DELTA_BADVAL = 0x06
ST_UNKNOWN_COMMAND = 0x81
ST_ENOMEM = 0x82
ST_EBUSY = 0x85
ST_ETMPFAIL = 0x86


class BinResponse:
    __slots__ = ("opcode", "status", "key", "extras", "value", "cas",
                 "opaque")

    def __init__(self, opcode, status, key, extras, value, cas, opaque):
        self.opcode = opcode
        self.status = status
        self.key = key
        self.extras = extras
        self.value = value
        self.cas = cas
        self.opaque = opaque

    @property
    def flags(self):
        if len(self.extras) >= 4:
            return struct.unpack(">I", self.extras[:4])[0]
        return None

    @property
    def counter(self):
        if self.status == ST_OK and len(self.value) == 8:
            return struct.unpack(">Q", self.value)[0]
        return None

    def __repr__(self):
        return ("BinResponse(op=0x%02x status=0x%02x key=%s value=%s cas=%d)"
                % (self.opcode, self.status, short(self.key, 30),
                   short(self.value, 40), self.cas))


class BinClient(_Conn):
    """memcached binary protocol. Each op returns a BinResponse."""

    def __init__(self, port, timeout=DEFAULT_IO_TIMEOUT):
        super().__init__(port, timeout)

    @staticmethod
    def pack(opcode, key=b"", value=b"", extras=b"", cas=0, opaque=0):
        key = to_bytes(key)
        value = to_bytes(value)
        return HEADER.pack(REQ_MAGIC, opcode, len(key), len(extras), 0, 0,
                           len(extras) + len(key) + len(value), opaque,
                           cas) + extras + key + value

    def read_response(self):
        hdr = self.read_exact(HEADER.size)
        (magic, opcode, keylen, extlen, _dt, status, bodylen, opaque,
         cas) = HEADER.unpack(hdr)
        if magic != RES_MAGIC:
            raise ProtocolError("bad response magic 0x%02x" % magic)
        body = self.read_exact(bodylen) if bodylen else b""
        extras = body[:extlen]
        key = body[extlen:extlen + keylen]
        value = body[extlen + keylen:]
        return BinResponse(opcode, status, key, extras, value, cas, opaque)

    def request(self, opcode, key=b"", value=b"", extras=b"", cas=0,
                opaque=0):
        self.send(self.pack(opcode, key, value, extras, cas, opaque))
        r = self.read_response()
        if r.opcode != opcode:
            raise ProtocolError("response opcode 0x%02x to request 0x%02x"
                                % (r.opcode, opcode))
        return r

    @staticmethod
    def store_extras(flags, exptime):
        return struct.pack(">II", flags, exptime)

    def get(self, key):
        return self.request(OP_GET, key)

    def getk(self, key):
        return self.request(OP_GETK, key)

    def set(self, key, value, flags=0, exptime=0, cas=0):
        return self.request(OP_SET, key, value,
                            self.store_extras(flags, exptime), cas)

    def add(self, key, value, flags=0, exptime=0):
        return self.request(OP_ADD, key, value,
                            self.store_extras(flags, exptime))

    def replace(self, key, value, flags=0, exptime=0, cas=0):
        return self.request(OP_REPLACE, key, value,
                            self.store_extras(flags, exptime), cas)

    def cas(self, key, value, cas, flags=0, exptime=0):
        """A set that only succeeds when the item's CAS equals `cas`."""
        return self.set(key, value, flags, exptime, cas)

    def append(self, key, value, cas=0):
        return self.request(OP_APPEND, key, value, b"", cas)

    def prepend(self, key, value, cas=0):
        return self.request(OP_PREPEND, key, value, b"", cas)

    def delete(self, key, cas=0):
        return self.request(OP_DELETE, key, b"", b"", cas)

    def _arith(self, op, key, delta, initial, exptime):
        return self.request(op, key, b"",
                            struct.pack(">QQI", delta, initial, exptime))

    def incr(self, key, delta=1, initial=0, exptime=0xFFFFFFFF):
        """exptime 0xffffffff: fail with NOT_FOUND on a missing key instead
        of creating it with `initial`."""
        return self._arith(OP_INCREMENT, key, delta, initial, exptime)

    def decr(self, key, delta=1, initial=0, exptime=0xFFFFFFFF):
        return self._arith(OP_DECREMENT, key, delta, initial, exptime)

    def touch(self, key, exptime):
        return self.request(OP_TOUCH, key, b"", struct.pack(">I", exptime))

    def gat(self, key, exptime):
        return self.request(OP_GAT, key, b"", struct.pack(">I", exptime))

    def flush(self, delay=0):
        return self.request(OP_FLUSH, b"", b"",
                            struct.pack(">I", delay) if delay else b"")

    def noop(self):
        return self.request(OP_NOOP)

    def version(self):
        return self.request(OP_VERSION).value.decode(errors="replace")

    def stats(self, group=None):
        """{name: value(str)}."""
        self.send(self.pack(OP_STAT, to_bytes(group) if group else b""))
        out = {}
        while True:
            r = self.read_response()
            if r.opcode != OP_STAT:
                raise ProtocolError("stat response opcode 0x%02x" % r.opcode)
            if r.status != ST_OK:
                raise ProtocolError("stat %s: status 0x%02x %r"
                                    % (group, r.status, r.value))
            if not r.key:
                return out
            out[r.key.decode(errors="replace")] = r.value.decode(
                errors="replace")


def kvstats(client):
    """`stats kvstore` through a TextClient or BinClient."""
    return client.stats("kvstore")


def wait_kvstat(client, pred, timeout, interval=0.1):
    """Polls `stats kvstore` until pred(stats) or timeout; returns
    (ok, last_stats)."""
    last = {}
    deadline = time.monotonic() + timeout
    while True:
        last = kvstats(client)
        if pred(last):
            return True, last
        if time.monotonic() >= deadline:
            return False, last
        time.sleep(interval)


def wait_clean(client, timeout):
    """Waits until dirty_items == 0 and queue_depth == 0 (when reported).
    Returns (ok, last_stats)."""
    def clean(s):
        d = kv_int(s, "dirty_items")
        q = kv_int(s, "queue_depth")
        return d == 0 and (q is None or q == 0)
    return wait_kvstat(client, clean, timeout)


def require_kvstore(t, client, names=("dirty_items", "warmup_state")):
    """Fails the test (raises) when `stats kvstore` does not report the
    given stats: without them nothing else can be checked."""
    s = kvstats(client)
    missing = [n for n in names if n not in s]
    if missing:
        raise ProtocolError("'stats kvstore' lacks %s (got %s)"
                            % (", ".join(missing), short(s, 200)))
    return s
