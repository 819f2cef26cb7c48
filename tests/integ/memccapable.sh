#!/bin/bash
# memccapable.sh: runs libmemcached's protocol checker, memccapable, against
# the server under test ($MCKVD, default ./mckvd), all its ascii and binary
# checks, and requires every one of them to pass.
#
# memccapable exits 0 even when checks fail or it cannot connect, so this
# script reads its report instead: no "[FAIL]" and no "[skip]" line, and
# exactly $MEMCCAPABLE_EXPECTED "[pass]" lines (54 with libmemcached 1.1.4:
# 27 ascii + 27 binary, which is what memcached 1.6.18 passes).
#
# The server is started on 127.0.0.1 and a free port, and stopped by its pid
# (SIGTERM; it must exit 0). Exit status follows automake: 0 pass, 77 skip,
# anything else fail.

set -u

MCKVD=${MCKVD:-./mckvd}
EXPECTED=${MEMCCAPABLE_EXPECTED:-54}
EXPECTED_ASCII=${MEMCCAPABLE_EXPECTED_ASCII:-27}
EXPECTED_BINARY=${MEMCCAPABLE_EXPECTED_BINARY:-27}

if ! command -v memccapable >/dev/null 2>&1; then
    echo "memccapable.sh: memccapable not installed (libmemcached-tools): skip"
    exit 77
fi
if [ ! -x "$MCKVD" ]; then
    echo "memccapable.sh: server '$MCKVD' is not executable" >&2
    exit 1
fi

# A free port: bind port 0 and read it back (python3), else probe with ss.
free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()' && return 0
    fi
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 40000))
        if ! ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

server_pid=""
log=$(mktemp /tmp/memccapable.XXXXXX)

stop_server() {
    # Stops the server by its pid; prints its exit status.
    local status
    [ -n "$server_pid" ] || return 0
    kill -TERM "$server_pid" 2>/dev/null
    for _ in $(seq 1 500); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.01
    done
    if kill -0 "$server_pid" 2>/dev/null; then
        echo "memccapable.sh: server pid $server_pid ignored SIGTERM: SIGKILL" >&2
        kill -KILL "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
        server_pid=""
        return 1
    fi
    wait "$server_pid"
    status=$?
    server_pid=""
    return "$status"
}

# shellcheck disable=SC2317  # called from the EXIT trap
dbdir=""
cleanup() {
    stop_server >/dev/null 2>&1
    rm -f "$log"
    [ -n "$dbdir" ] && rm -rf "$dbdir"
}
trap cleanup EXIT

extra=()
if [ "$(basename "$MCKVD")" = memcached ] && [ "$(id -u)" = 0 ]; then
    extra=(-u root)   # memcached refuses to run as root without it
fi
# shellcheck disable=SC2206  # word splitting wanted
extra+=(${MCKVD_EXTRA_ARGS:-})
if [ "$(basename "$MCKVD")" != memcached ]; then
    dbdir=$(mktemp -d)   # mckvd persists by default: a database of its own
    extra+=("--db-path=$dbdir/mckv.db")
fi

started=0
for _attempt in 1 2 3; do
    port=$(free_port) || { echo "memccapable.sh: no free port" >&2; exit 1; }
    "$MCKVD" -p "$port" -l 127.0.0.1 -U 0 -t 4 -m 64 "${extra[@]}" &
    server_pid=$!
    for _ in $(seq 1 500); do
        if port_open "$port"; then
            started=1
            break
        fi
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.01
    done
    [ "$started" = 1 ] && break
    if kill -0 "$server_pid" 2>/dev/null; then
        echo "memccapable.sh: server did not accept on port $port in 5 s" >&2
        exit 1
    fi
    wait "$server_pid" 2>/dev/null
    server_pid=""
done
if [ "$started" != 1 ]; then
    echo "memccapable.sh: $MCKVD did not start" >&2
    exit 1
fi

timeout 300 memccapable -h 127.0.0.1 -p "$port" -t 10 >"$log" 2>&1
mc_status=$?

passes=$(grep -c '\[pass\]' "$log")
fails=$(grep -c '\[FAIL\]' "$log")
skips=$(grep -c '\[skip\]' "$log")
ascii=$(grep -c '^ascii .*\[pass\]' "$log")
binary=$(grep -c '^binary .*\[pass\]' "$log")

cat "$log"
echo "memccapable.sh: $MCKVD: $passes passed ($ascii ascii, $binary binary)," \
     "$fails failed, $skips skipped; memccapable exit $mc_status"

stop_server
stop_status=$?

result=0
if [ "$mc_status" != 0 ]; then
    echo "FAIL: memccapable exited $mc_status" >&2
    result=1
fi
if [ "$fails" != 0 ] || [ "$skips" != 0 ]; then
    echo "FAIL: $fails checks failed, $skips skipped" >&2
    result=1
fi
if [ "$passes" != "$EXPECTED" ] || [ "$ascii" != "$EXPECTED_ASCII" ] ||
   [ "$binary" != "$EXPECTED_BINARY" ]; then
    echo "FAIL: expected $EXPECTED passes ($EXPECTED_ASCII ascii," \
         "$EXPECTED_BINARY binary)" >&2
    result=1
fi
if ! grep -q '^All tests passed' "$log"; then
    echo "FAIL: no 'All tests passed' line" >&2
    result=1
fi
if [ "$stop_status" != 0 ]; then
    echo "FAIL: server exit status $stop_status after SIGTERM (want 0)" >&2
    result=1
fi
exit "$result"
