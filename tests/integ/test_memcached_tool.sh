#!/bin/bash
# test_memcached_tool.sh: memcached's own admin script (memcached-tool,
# Debian's memcached package) against a real mckvd ($MCKVD), as it runs
# against memcached: display, stats, settings, sizes, dump (and keys).
#
# Twice: engine = memory (-m 64: small values and 64 KiB ones), and
# engine = sqlite with -m 8 and 12 MB of 8 KiB values, so that many are
# ejected (on disk only, a stub in memory); the writes wait for the disk
# now and then so that no stub is dropped (cache_complete stays 1: a key
# on disk only, not in memory, is not listed). Stored through a python3
# client: keys with flags, absolute expiry times (some none) and a key
# that metadump must URI-encode, in two size classes at least.
#  - dump: the "add KEY FLAGS EXP LEN" records it prints are exactly the
#    keys stored, each with its flags, expiry and value (the ejected ones
#    read back from disk);
#  - keys: one metadump line per key;
#  - display: a row per class in use, whose Count column adds up to
#    curr_items, each class one `stats items` reports;
#  - stats: pid is the server's, curr_items the keys stored;
#  - settings: tcpport is the port, maxbytes the -m, dump_enabled yes;
#  - sizes: "sizes_status disabled", as memcached without -o track_sizes;
#  - the memory run's items stored again into /usr/bin/memcached: dump
#    gives the same records, byte for byte; settings every name it has.
# Against memcached ($MCKVD=/usr/bin/memcached) the memory run checks the
# same expectations. Servers are stopped by pid; every wait is bounded.
# Exit status follows automake: 0 pass, 77 skip, else fail.

set -u

MCKVD=${MCKVD:-./mckvd}
TOOL=${MEMCACHED_TOOL:-/usr/share/memcached/scripts/memcached-tool}

if [ ! -r "$TOOL" ]; then
    TOOL=$(command -v memcached-tool 2>/dev/null || true)
fi
if [ -z "$TOOL" ] || [ ! -r "$TOOL" ]; then
    echo "test_memcached_tool.sh: memcached-tool not installed: skip"
    exit 77
fi
for cmd in perl python3; do
    if ! command -v "$cmd" >/dev/null 2>&1; then
        echo "test_memcached_tool.sh: $cmd not installed: skip"
        exit 77
    fi
done
if [ ! -x "$MCKVD" ]; then
    echo "test_memcached_tool.sh: '$MCKVD' is not executable" >&2
    exit 1
fi
memcached=no
[ "$(basename "$MCKVD")" = memcached ] && memcached=yes

tmp=$(mktemp -d /tmp/test_memcached_tool.XXXXXX)
pids=()
failures=0

# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"

# Runs memcached-tool (bounded by 60 s) against the server; stdout in
# $tmp/out, stderr in $tmp/err; sets $status.
tool() {
    timeout 60 perl "$TOOL" "127.0.0.1:$port" "$@" >"$tmp/out" 2>"$tmp/err"
    status=$?
}

# Stores the keys (python3 client, bounded waits; writes refused by
# backpressure are retried) and writes what it stored to $tmp/stored:
# one "KEY FLAGS EXP LEN SHA1" line per key. $1 small values, $2 big ones
# of $4 bytes (64 KiB); $3 (persistent engine): wait for the writes to be
# on disk before every $3rd key.
# $5 (optional): the time to count the expiry times from, in place of the
# server's (to store the very same items into a second server).
store() {
    python3 - "$port" "$1" "$2" "${3:-0}" "${4:-65536}" ${5:+"$5"} >"$tmp/stored" <<'EOF'
import hashlib, socket, sys, time

port, nsmall, nbig = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
settle_every = int(sys.argv[4])
big_size = int(sys.argv[5])
s = socket.create_connection(("127.0.0.1", port), timeout=30)
f = s.makefile("rb")

def stats(group=""):
    s.sendall(("stats %s\r\n" % group).encode())
    d = {}
    for line in iter(f.readline, b""):
        if line == b"END\r\n":
            return d
        _, k, v = line.decode().split(" ", 2)
        d[k] = v.strip()
    raise SystemExit("stats: connection closed")

now = int(sys.argv[6]) if len(sys.argv) > 6 else int(stats()["time"])
items = []
for i in range(nsmall + nbig):
    key = "tool:%d" % i if i else "tool%odd/key:0"
    exp = 0 if i % 3 == 0 else now + 3600 + i
    size = 100 + i if i < nsmall else big_size + i
    value = (("%s=" % key) * (size // len(key) + 2))[:size].encode()
    items.append((key, i, exp, value))
deadline = time.monotonic() + 60
for n, (key, flags, exp, value) in enumerate(items):
    # persistent engine: let the flusher catch up now and then, so that
    # memory always holds clean values to eject and no stub is dropped
    while settle_every and n % settle_every == 0 and \
            stats("kvstore").get("dirty_items") != "0":
        if time.monotonic() > deadline:
            raise SystemExit("dirty_items never reached 0")
        time.sleep(0.02)
    while True:
        s.sendall(b"set %s %d %d %d\r\n%s\r\n"
                  % (key.encode(), flags, exp, len(value), value))
        reply = f.readline()
        if reply == b"STORED\r\n":
            break
        if reply != b"SERVER_ERROR temporary failure\r\n" or \
                time.monotonic() > deadline:
            raise SystemExit("set %s: %r" % (key, reply))
        time.sleep(0.05)
for key, flags, exp, value in items:
    print(key, flags, exp, len(value), hashlib.sha1(value).hexdigest())
EOF
}

# Waits (at most 30 s) until nothing is left to persist; prints
# ejected_items.
settle() {
    python3 - "$port" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = s.makefile("rb")
deadline = time.monotonic() + 30
while True:
    s.sendall(b"stats kvstore\r\n")
    d = {}
    for line in iter(f.readline, b""):
        if line == b"END\r\n":
            break
        _, k, v = line.decode().split(" ", 2)
        d[k] = v.strip()
    if d.get("dirty_items") == "0" or time.monotonic() > deadline:
        print(d.get("ejected_items", "?"))
        break
    time.sleep(0.1)
EOF
}

# One `stats [group]` value.
stat() {
    python3 - "$port" "$1" "$2" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(("stats %s\r\n" % sys.argv[2]).encode())
f = s.makefile("rb")
for line in iter(f.readline, b""):
    if line == b"END\r\n":
        break
    parts = line.decode().split()
    if len(parts) >= 3 and parts[1] == sys.argv[3]:
        print(parts[2])
EOF
}

# Checks memcached-tool dump's records against $tmp/stored.
check_dump() {
    local what=$1
    tool dump
    if [ "$status" != 0 ]; then
        fail "$what dump: exit $status: $(head -n 3 "$tmp/err")"
        return
    fi
    if python3 - "$tmp/stored" "$tmp/out" 2>"$tmp/py" <<'EOF'
import hashlib, sys
want = {}
for line in open(sys.argv[1]):
    key, flags, exp, n, sha = line.split()
    want[key] = (int(flags), int(exp), int(n), sha)
data = open(sys.argv[2], "rb").read()
got = {}
pos = 0
while pos < len(data):
    eol = data.index(b"\r\n", pos)
    word, key, flags, exp, n = data[pos:eol].decode().split(" ")
    assert word == "add", data[pos:eol]
    n = int(n)
    value = data[eol + 2:eol + 2 + n]
    assert data[eol + 2 + n:eol + 4 + n] == b"\r\n", key
    assert key not in got, "%s twice" % key
    got[key] = (int(flags), int(exp), n, hashlib.sha1(value).hexdigest())
    pos = eol + 4 + n
missing = sorted(set(want) - set(got))
extra = sorted(set(got) - set(want))
assert not missing, "missing: %s" % missing[:5]
assert not extra, "not stored: %s" % extra[:5]
bad = [k for k in want if want[k] != got[k]]
assert not bad, "differs: %s: want %s got %s" % (bad[0], want[bad[0]], got[bad[0]])
EOF
    then
        pass "$what dump: $(wc -l <"$tmp/stored") keys, flags, expiry and value each"
    else
        fail "$what dump: $(tail -n 1 "$tmp/py")"
    fi
}

check_keys() {
    local what=$1 n lines
    tool keys
    n=$(wc -l <"$tmp/stored")
    lines=$(grep -c '^key=[^ ]* exp=-\{0,1\}[0-9]* la=[0-9]* cas=[0-9]* fetch=[a-z]* cls=[0-9]* size=[0-9]*$' "$tmp/out")
    if [ "$status" = 0 ] && [ "$lines" = "$n" ] &&
       grep -q '^key=tool%25odd%2Fkey%3A0 exp=-1 ' "$tmp/out"; then
        pass "$what keys: $lines metadump lines, the odd key URI-encoded"
    else
        fail "$what keys: exit $status, $lines lines (want $n): $(head -n 2 "$tmp/out")"
    fi
}

check_display() {
    local what=$1 items
    tool display
    items=$(stat "" curr_items)
    if [ "$status" != 0 ]; then
        fail "$what display: exit $status: $(head -n 3 "$tmp/err")"
        return
    fi
    if python3 - "$port" "$items" "$tmp/out" 2>"$tmp/py" <<'EOF'
import socket, sys
port, items = int(sys.argv[1]), int(sys.argv[2])
lines = open(sys.argv[3]).read().splitlines()
assert lines[0] == ("  #  Item_Size  Max_age   Pages   Count   Full?  "
                    "Evicted Evict_Time OOM"), lines[0]
rows = [l.split() for l in lines[1:]]
assert len(rows) >= 2, "%d class rows (want 2 or more)" % len(rows)
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(b"stats items\r\n")
f = s.makefile("rb")
number = {}
for line in iter(f.readline, b""):
    if line == b"END\r\n":
        break
    name, v = line.decode().split()[1:3]
    _, cls, field = name.split(":")
    if field == "number":
        number[int(cls)] = int(v)
for r in rows:
    cls, count, pages = int(r[0]), int(r[4]), int(r[3])
    assert number.get(cls) == count, "class %d: %d, stats items %s" % (cls, count, number.get(cls))
    assert pages >= 1, r
assert sum(int(r[4]) for r in rows) == items, "counts %d, curr_items %d" % (sum(int(r[4]) for r in rows), items)
EOF
    then
        pass "$what display: $(($(wc -l <"$tmp/out") - 1)) classes, counts add up to $items items"
    else
        fail "$what display: $(tail -n 1 "$tmp/py"): $(head -n 3 "$tmp/out" | tr '\n' '|')"
    fi
}

# A "name value" row of memcached-tool stats / settings (it keeps the
# "\r" of the server's line).
row() {
    tr -d '\r' <"$tmp/out" | awk -v name="$1" 'NR > 1 && $1 == name { print $2 }'
}

check_stats() {
    local what=$1 n
    n=$(wc -l <"$tmp/stored")
    tool stats
    if [ "$status" = 0 ] &&
       head -n 1 "$tmp/out" | grep -q "^#127.0.0.1:$port *Field *Value$" &&
       [ "$(row pid)" = "$server_pid" ] && [ "$(row curr_items)" = "$n" ] &&
       [ "$(row cmd_set)" -ge "$n" ]; then
        pass "$what stats: $(($(wc -l <"$tmp/out") - 1)) fields, pid, curr_items $n"
    else
        fail "$what stats: exit $status, pid '$(row pid)' ($server_pid), curr_items '$(row curr_items)' ($n)"
    fi
}

check_settings() {
    local what=$1 mb=$2
    tool settings
    if [ "$status" = 0 ] && [ "$(row tcpport)" = "$port" ] &&
       [ "$(row maxbytes)" = "$((mb * 1048576))" ] &&
       [ "$(row dump_enabled)" = yes ]; then
        pass "$what settings: $(($(wc -l <"$tmp/out") - 1)) fields, tcpport, maxbytes, dump_enabled"
    else
        fail "$what settings: exit $status, tcpport '$(row tcpport)', maxbytes '$(row maxbytes)', dump_enabled '$(row dump_enabled)'"
    fi
}

# sizes: memcached's histogram is off unless -o track_sizes (mckvd takes
# and ignores it): the one row memcached prints then, and an exit, not a
# wait for an END that never comes.
check_sizes() {
    local what=$1
    tool sizes
    if [ "$status" = 0 ] &&
       head -n 1 "$tmp/out" | grep -q "^#127.0.0.1:$port *Size *Count$" &&
       [ "$(row sizes_status)" = disabled ] && [ "$(wc -l <"$tmp/out")" = 2 ]; then
        pass "$what sizes: sizes_status disabled"
    else
        fail "$what sizes: exit $status: $(head -n 3 "$tmp/out" | tr '\n' '|')"
    fi
}

# The same items in memcached ($MEMCACHED_REF, /usr/bin/memcached; skipped
# when it is not installed or is the server under test): memcached-tool
# dump prints the same bytes (its records sorted: it prints them in Perl's
# hash order), and settings every name memcached's does (less the ext_*
# and slab_automove_freeratio of an extstore build: mckv has none).
# $tmp/out.dump and $tmp/out.settings hold mckvd's outputs.
compare_memcached() {
    local ref=${MEMCACHED_REF:-/usr/bin/memcached} now missing mckvd_port=$port
    local margs=(-l 127.0.0.1 -U 0 -m 64)
    if [ "$memcached" = yes ] || [ ! -x "$ref" ]; then
        return
    fi
    [ "$(id -u)" = 0 ] && margs+=(-u root)
    # the stored expiry of tool:1 is now + 3601
    now=$(awk '$1 == "tool:1" { print $3 - 3601 }' "$tmp/stored")
    cp "$tmp/stored" "$tmp/stored.mckvd"
    if ! start_server "$ref" "${margs[@]}" >"$tmp/ref.log" 2>&1; then
        fail "memcached: $ref did not start: $(head -n 2 "$tmp/ref.log")"
        port=$mckvd_port
        return
    fi
    if store 200 20 0 65536 "$now" && cmp -s "$tmp/stored" "$tmp/stored.mckvd"; then
        tool dump
        if python3 - "$tmp/out.dump" "$tmp/out" 2>"$tmp/py" <<'EOF'
import sys
def records(path):
    data, out, pos = open(path, "rb").read(), [], 0
    while pos < len(data):
        eol = data.index(b"\r\n", pos)
        n = int(data[pos:eol].split(b" ")[4])
        out.append(data[pos:eol + 4 + n])
        pos = eol + 4 + n
    return sorted(out)
mckvd, memcached = records(sys.argv[1]), records(sys.argv[2])
assert len(mckvd) == len(memcached), "%d records, memcached %d" % (len(mckvd), len(memcached))
for a, b in zip(mckvd, memcached):
    assert a == b, "%r, memcached %r" % (a[:80], b[:80])
EOF
        then
            pass "memory dump: the same $(grep -c '^add ' "$tmp/out") records as memcached's, byte for byte"
        else
            fail "memory dump differs from memcached's: $(tail -n 1 "$tmp/py")"
        fi
        tool settings
        missing=$(comm -23 <(tr -d '\r' <"$tmp/out" | awk 'NR > 1 { print $1 }' |
                             grep -v '^ext_' | grep -vx slab_automove_freeratio | sort) \
                           <(tr -d '\r' <"$tmp/out.settings" | awk 'NR > 1 { print $1 }' | sort))
        if [ -z "$missing" ]; then
            pass "memory settings: every name of memcached's"
        else
            fail "memory settings: memcached's $(echo "$missing" | tr '\n' ' ')missing"
        fi
    else
        fail "memcached: storing the same items failed"
    fi
    stop_pid "$server_pid"
    port=$mckvd_port
}

# ---- engine = memory ---------------------------------------------------------
args=(-l 127.0.0.1 -U 0 -m 64)
if [ "$memcached" = yes ]; then
    [ "$(id -u)" = 0 ] && args+=(-u root)
else
    args+=(--engine=memory -t 2)
fi
if ! start_server "$MCKVD" "${args[@]}" >"$tmp/memory.log" 2>&1; then
    echo "test_memcached_tool.sh: $MCKVD did not start:" >&2
    cat "$tmp/memory.log" >&2
    exit 1
fi
if store 200 20 && [ "$(wc -l <"$tmp/stored")" = 220 ]; then
    check_dump memory
    check_keys memory
    check_display memory
    check_stats memory
    check_settings memory 64
    check_sizes memory
    tool dump && cp "$tmp/out" "$tmp/out.dump"
    tool settings && cp "$tmp/out" "$tmp/out.settings"
    mckvd_pid=$server_pid
    compare_memcached
    server_pid=$mckvd_pid
else
    fail "memory: storing the keys failed"
fi
stop_pid "$server_pid" || fail "memory: server exit status $?"

# ---- engine = sqlite, most values ejected ------------------------------------
if [ "$memcached" = no ]; then
    if ! start_server "$MCKVD" -l 127.0.0.1 -U 0 -m 8 -t 2 --engine=sqlite \
            --db-path="$tmp/db/mckv.db" >"$tmp/sqlite.log" 2>&1; then
        echo "test_memcached_tool.sh: $MCKVD did not start:" >&2
        cat "$tmp/sqlite.log" >&2
        exit 1
    fi
    if store 100 1500 64 8192 && [ "$(wc -l <"$tmp/stored")" = 1600 ]; then
        ejected=$(settle)
        complete=$(stat kvstore cache_complete)
        if [ "$ejected" -gt 0 ] 2>/dev/null && [ "$complete" = 1 ]; then
            pass "sqlite: $ejected of 1600 values on disk only, every key in memory"
        else
            fail "sqlite: ejected_items '$ejected' (want > 0), cache_complete '$complete' (want 1)"
        fi
        check_dump sqlite
        check_keys sqlite
        check_display sqlite
        check_stats sqlite
        check_settings sqlite 8
        check_sizes sqlite
    else
        fail "sqlite: storing the keys failed"
    fi
    stop_pid "$server_pid" || fail "sqlite: server exit status $?"
fi

if [ "$failures" -ne 0 ]; then
    echo "test_memcached_tool.sh: $failures failure(s)" >&2
    exit 1
fi
echo "test_memcached_tool.sh: all passed"
exit 0
