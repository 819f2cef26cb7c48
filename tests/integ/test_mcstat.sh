#!/bin/bash
# test_mcstat.sh: checks tools/mcstat ($MCSTAT) against a real mckvd
# ($MCKVD) and against a scripted fake server (python3).
#
# Against mckvd (127.0.0.1, a free port, a database in a temporary dir):
#  - every group prints "STAT name value" lines: general has pid = the
#    server's pid, settings has port = the port, kvstore has dirty_items,
#    timings has cmd_get_count; several groups are separated by one blank line;
#  - -j prints one JSON object whose numbers are JSON numbers;
#  - -w 1 -n 3 into a pipe prints 3 lines and exits 0; -w stops with exit 0
#    on SIGTERM;
#  - exit codes: 2 for a closed port, 4 for an unknown group, 3 for -u/-P
#    (mckv has no SASL), 1 for usage errors, each with one line on stderr.
# Against the fake server: JSON escaping and the number rule, byte-exact
# text output, AUTH_ERROR -> 3, a garbage reply -> 5, no reply -> 5 (after the
# 5 s socket timeout).
# Servers are stopped by their pid; every wait is bounded. Exit status
# follows automake: 0 pass, 77 skip, else fail.

set -u

MCKVD=${MCKVD:-./mckvd}
MCSTAT=${MCSTAT:-./tools/mcstat}

if [ "$(basename "$MCKVD")" = memcached ]; then
    echo "test_mcstat.sh: mckv-only checks, \$MCKVD is memcached: skip"
    exit 77
fi
if ! command -v python3 >/dev/null 2>&1; then
    echo "test_mcstat.sh: python3 not installed: skip"
    exit 77
fi
for bin in "$MCKVD" "$MCSTAT"; do
    if [ ! -x "$bin" ]; then
        echo "test_mcstat.sh: '$bin' is not executable" >&2
        exit 1
    fi
done

tmp=$(mktemp -d /tmp/test_mcstat.XXXXXX)
pids=()
failures=0

# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"

# Runs mcstat (bounded by 15 s) with stdout in $tmp/out and stderr in
# $tmp/err; sets $status.
run() {
    timeout 15 "$MCSTAT" "$@" >"$tmp/out" 2>"$tmp/err"
    status=$?
}

# Requires exit status $2 and exactly one line on stderr for `mcstat $3...`.
expect_exit() {
    local what=$1 want=$2
    shift 2
    run "$@"
    expect_one_error "$what" "$want"
}

# Requires $tmp/out to be non-empty "STAT name value" lines (or blank lines
# between groups) holding the line $2.
expect_stat_line() {
    local what=$1 line=$2 bad
    if [ "$status" != 0 ]; then
        fail "$what: exit $status: $(cat "$tmp/err")"
        return
    fi
    bad=$(grep -Ev '^(STAT [^ ]+ .*)?$' "$tmp/out" | head -n 1)
    if ! grep -q '^STAT ' "$tmp/out"; then
        fail "$what: no STAT line"
    elif [ -n "$bad" ]; then
        fail "$what: not a STAT line: '$bad'"
    elif ! grep -Eqx -- "$line" "$tmp/out"; then
        fail "$what: no line /$line/ in: $(head -n 3 "$tmp/out" | tr '\n' ' ')"
    else
        pass "$what: $(grep -c '^STAT ' "$tmp/out") STAT lines, /$line/"
    fi
}

# ---- start mckvd -------------------------------------------------------------
if ! start_server "$MCKVD" -l 127.0.0.1 -U 0 -t 2 \
        --db-path="$tmp/db/mckv.db" >"$tmp/server.log" 2>&1; then
    echo "test_mcstat.sh: $MCKVD did not start:" >&2
    cat "$tmp/server.log" >&2
    exit 1
fi

# An item, so that items/slabs have something to report.
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'set mcstat_key 0 0 5\r\nhello\r\nquit\r\n' >&3
timeout 5 cat <&3 >/dev/null
exec 3<&-

# ---- groups --------------------------------------------------------------------
run -p "$port"
expect_stat_line "general" "STAT pid $server_pid"
run -p "$port" general
expect_stat_line "general (named)" "STAT pid $server_pid"
run -p "$port" settings
expect_stat_line "settings" "STAT port $port"
run -p "$port" kvstore
expect_stat_line "kvstore" "STAT dirty_items [0-9]+"
run -p "$port" timings
expect_stat_line "timings" "STAT cmd_get_count [0-9]+"
run -p "$port" engine
expect_stat_line "engine" "STAT wal_pages [0-9]+"
run -p "$port" items
expect_stat_line "items" "STAT items:[0-9]+:number 1"
run -p "$port" slabs
expect_stat_line "slabs" "STAT active_slabs 1"
run -p "$port" conns
expect_stat_line "conns" "STAT [0-9]+:state .+"
run -h "127.0.0.1:$port" settings kvstore
expect_stat_line "settings kvstore" "STAT dirty_items [0-9]+"
blanks=$(grep -c '^$' "$tmp/out")
if [ "$blanks" = 1 ] && grep -q "^STAT port $port\$" "$tmp/out"; then
    pass "two groups: both printed, one blank line between them"
else
    fail "two groups: $blanks blank lines (want 1) or no port line"
fi
run -p "$port" reset
if [ "$status" = 0 ] && [ ! -s "$tmp/out" ]; then
    pass "reset: exit 0, no output"
else
    fail "reset: exit $status, output '$(head -n 2 "$tmp/out")'"
fi

# ---- JSON ----------------------------------------------------------------------
run -p "$port" -j general settings kvstore timings
if [ "$status" != 0 ]; then
    fail "-j: exit $status: $(cat "$tmp/err")"
elif python3 -c '
import json, sys
pid, port = int(sys.argv[1]), int(sys.argv[2])
d = json.load(sys.stdin)
assert sorted(d) == ["general", "kvstore", "settings", "timings"], sorted(d)
g = d["general"]
assert type(g["pid"]) is int and g["pid"] == pid, g["pid"]
assert type(g["rusage_user"]) is float, g["rusage_user"]
assert type(g["version"]) is str, g["version"]
assert type(d["settings"]["port"]) is int and d["settings"]["port"] == port
assert type(d["settings"]["listen"]) is str
assert type(d["kvstore"]["dirty_items"]) is int
assert type(d["timings"]["cmd_get_count"]) is int
' "$server_pid" "$port" <"$tmp/out" 2>"$tmp/py"; then
    pass "-j: valid JSON, numbers are numbers, strings are strings"
else
    fail "-j: $(tail -n 1 "$tmp/py")"
fi

# ---- watch mode ----------------------------------------------------------------
run -p "$port" -w 1 -n 3
lines=$(grep -c . "$tmp/out")
if [ "$status" != 0 ]; then
    fail "-w 1 -n 3: exit $status: $(cat "$tmp/err")"
elif [ "$lines" != 3 ]; then
    fail "-w 1 -n 3: $lines lines (want 3)"
elif [ "$(grep -Ec '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8} get/s=[0-9.]+ .* dirty_items=[0-9]+$' "$tmp/out")" != 3 ]; then
    fail "-w 1 -n 3: unexpected line format: $(head -n 1 "$tmp/out")"
else
    pass "-w 1 -n 3: 3 lines: $(head -n 1 "$tmp/out" | cut -c 1-60)..."
fi

run -p "$port" -j -w 0.2 -n 2
if [ "$status" = 0 ] && python3 -c '
import json, sys
lines = sys.stdin.read().splitlines()
assert len(lines) == 2, len(lines)
for line in lines:
    d = json.loads(line)
    assert type(d["cmd_get_per_s"]) is float, d["cmd_get_per_s"]
    assert type(d["dirty_items"]) is int, d["dirty_items"]
    assert d["curr_connections"] >= 1
' <"$tmp/out" 2>"$tmp/py"; then
    pass "-j -w 0.2 -n 2: two JSON lines with numbers"
else
    fail "-j -w 0.2 -n 2: exit $status: $(tail -n 1 "$tmp/py") $(cat "$tmp/err")"
fi

"$MCSTAT" -p "$port" -w 1 >"$tmp/watch" 2>"$tmp/err" &
watch_pid=$!
pids+=("$watch_pid")
sleep 1.5
kill -TERM "$watch_pid"
for _ in $(seq 1 500); do
    kill -0 "$watch_pid" 2>/dev/null || break
    sleep 0.01
done
if kill -0 "$watch_pid" 2>/dev/null; then
    fail "-w 1: still running 5 s after SIGTERM"
    stop_pid "$watch_pid"
else
    wait "$watch_pid"
    status=$?
    forget_pid "$watch_pid"
    if [ "$status" = 0 ] && [ "$(grep -c . "$tmp/watch")" -ge 1 ]; then
        pass "-w 1: SIGTERM ends it with exit 0"
    else
        fail "-w 1: SIGTERM: exit $status, $(grep -c . "$tmp/watch") lines"
    fi
fi

# ---- errors and exit codes ----------------------------------------------------
closed=$(free_port)
expect_exit "closed port" 2 -p "$closed"
expect_exit "unresolvable host" 2 -h no-such-host.invalid
expect_exit "unknown group" 4 -p "$port" no_such_group
expect_exit "unknown group after a good one" 4 -p "$port" settings bogus
expect_exit "-u x -P y (no SASL in mckv)" 3 -p "$port" -u x -P y
expect_exit "bad option" 1 -p "$port" --no-such-option
expect_exit "bad short option" 1 -p "$port" -Z
expect_exit "missing argument" 1 -p
expect_exit "bad port" 1 -p 70000
expect_exit "-w 0" 1 -p "$port" -w 0
expect_exit "-n without -w" 1 -p "$port" -n 3
expect_exit "-u without -P" 1 -p "$port" -u x
expect_exit "group with -w" 1 -p "$port" -w 1 kvstore

run --help
if [ "$status" = 0 ] && grep -q -- '-w' "$tmp/out"; then
    pass "--help: exit 0"
else
    fail "--help: exit $status"
fi
run -V
if [ "$status" = 0 ] && grep -Eq '[0-9]+\.[0-9]+' "$tmp/out"; then
    pass "-V: $(cat "$tmp/out")"
else
    fail "-V: exit $status, '$(cat "$tmp/out")'"
fi

stop_pid "$server_pid"

# ---- a fake server ---------------------------------------------------------------
# It answers one request per connection according to its mode, then closes.
cat >"$tmp/fake.py" <<'EOF'
import socket, struct, sys, time
mode, port_file = sys.argv[1], sys.argv[2]
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
srv.settimeout(15)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.getsockname()[1]))
import os
os.rename(port_file + ".tmp", port_file)
conn, _ = srv.accept()
conn.settimeout(10)
hdr = b""
while len(hdr) < 24:
    chunk = conn.recv(24 - len(hdr))
    if not chunk:
        sys.exit(0)
    hdr += chunk
opcode, bodylen, opaque = hdr[1], struct.unpack(">I", hdr[8:12])[0], hdr[12:16]
while bodylen > 0:
    bodylen -= len(conn.recv(bodylen))

def pkt(status, key=b"", value=b""):
    return (struct.pack(">BBHBBHI", 0x81, opcode, len(key), 0, 0, status,
                        len(key) + len(value)) + opaque + bytes(8) + key + value)

if mode == "stats":
    pairs = [(b"num", b"42"), (b"neg", b"-1.5"), (b"lead", b"007"),
             (b"exp", b"1e5"), (b"quote", b'a"b\\c'), (b"ctl", b"x\ty\x01"),
             (b"bad", b"\xff\xfe"), (b"utf", "\u00e9".encode()),
             (b"empty", b""), (b"zero", b"0"), (b"dot", b"1.")]
    conn.sendall(b"".join(pkt(0, k, v) for k, v in pairs) + pkt(0))
elif mode == "autherr":
    conn.sendall(pkt(0x20, value=b"Auth failure"))
elif mode == "garbage":
    conn.sendall(b"SERVER_ERROR what is this\r\n" + bytes(40))
elif mode == "silent":
    time.sleep(8)
time.sleep(0.2)
conn.close()
EOF

# Starts the fake server in mode $1; sets $fake_port and $fake_pid.
start_fake() {
    rm -f "$tmp/fake.port"
    python3 "$tmp/fake.py" "$1" "$tmp/fake.port" &
    fake_pid=$!
    pids+=("$fake_pid")
    fake_port=""
    for _ in $(seq 1 500); do
        if [ -s "$tmp/fake.port" ]; then
            fake_port=$(cat "$tmp/fake.port")
            return 0
        fi
        sleep 0.01
    done
    fail "fake server ($1) did not start"
    return 1
}

if start_fake stats; then
    run -p "$fake_port" -j
    if [ "$status" = 0 ] && python3 -c '
import json, sys
d = json.load(sys.stdin)["general"]
want = {"num": 42, "neg": -1.5, "lead": "007", "exp": "1e5",
        "quote": "a\"b\\c", "ctl": "x\ty\u0001", "bad": "\ufffd\ufffd",
        "utf": "\u00e9", "empty": "", "zero": 0, "dot": "1."}
assert d == want, d
assert type(d["num"]) is int and type(d["neg"]) is float
' <"$tmp/out" 2>"$tmp/py"; then
        pass "fake server -j: escaping, UTF-8 and the number rule"
    else
        fail "fake server -j: exit $status: $(tail -n 1 "$tmp/py") $(cat "$tmp/err")"
    fi
    stop_pid "$fake_pid"
fi
if start_fake stats; then
    run -p "$fake_port"
    if [ "$status" = 0 ] && grep -qx 'STAT num 42' "$tmp/out" &&
        grep -qx 'STAT quote a"b\\c' "$tmp/out" &&
        grep -qx 'STAT empty ' "$tmp/out" &&
        [ "$(grep -c . "$tmp/out")" = 11 ]; then
        pass "fake server: 11 STAT lines, values as sent"
    else
        fail "fake server text: exit $status: $(head -n 3 "$tmp/out")"
    fi
    stop_pid "$fake_pid"
fi
if start_fake autherr; then
    expect_exit "AUTH_ERROR reply to SASL" 3 -p "$fake_port" -u u -P wrong
    stop_pid "$fake_pid"
fi
if start_fake garbage; then
    expect_exit "garbage reply" 5 -p "$fake_port"
    stop_pid "$fake_pid"
fi
if start_fake silent; then
    expect_exit "no reply (5 s timeout)" 5 -p "$fake_port"
    stop_pid "$fake_pid"
fi

if [ "$failures" != 0 ]; then
    echo "test_mcstat.sh: $failures check(s) failed" >&2
    exit 1
fi
echo "test_mcstat.sh: all checks passed"
exit 0
