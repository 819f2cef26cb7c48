# lib.sh: helpers shared by the shell integration tests. The sourcing
# script sets `tmp` (a scratch directory), `pids` (servers to stop) and
# `failures` (0) first; the EXIT trap stops those servers and removes tmp.

# Stops the servers still running (a script's stop_pid removes the ones it
# stopped, so no pid that may have been reused is signalled).
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in "${pids[@]}"; do
        for _ in $(seq 1 500); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.01
        done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

pass() {
    echo "ok: $*"
}

# expect_one_error WHAT STATUS [PATTERN]: a tool's last run (its exit in
# $status, its output in $tmp/out and $tmp/err) failed with STATUS, wrote
# exactly one line to stderr (matching PATTERN when given) and nothing to
# stdout.
expect_one_error() {
    local what=$1 want=$2 lines
    lines=$(grep -c . "$tmp/err")
    if [ "$status" != "$want" ]; then
        fail "$what: exit $status (want $want): $(head -c 300 "$tmp/err")"
    elif [ "$lines" != 1 ]; then
        fail "$what: $lines lines on stderr (want 1): $(cat "$tmp/err")"
    elif [ $# -ge 3 ] && ! grep -q -- "$3" "$tmp/err"; then
        fail "$what: stderr does not match /$3/: $(cat "$tmp/err")"
    elif [ -s "$tmp/out" ]; then
        fail "$what: wrote to stdout: $(head -n 2 "$tmp/out")"
    else
        pass "$what: exit $want: $(cat "$tmp/err")"
    fi
}

free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Waits (at most 5 s) until port accepts or pid exits. 0 when it accepts.
wait_port() {
    local port=$1 pid=$2
    for _ in $(seq 1 500); do
        port_open "$port" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.01
    done
    return 1
}

# Removes pid from the list the EXIT trap stops.
forget_pid() {
    local pid=$1 p kept=()
    for p in "${pids[@]}"; do
        [ "$p" = "$pid" ] || kept+=("$p")
    done
    pids=("${kept[@]}")
}

# Stops pid with SIGTERM (SIGKILL after 5 s: status 137), forgets it and
# returns its exit status.
stop_pid() {
    local pid=$1
    forget_pid "$pid"
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 500); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.01
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        return 137
    fi
    wait "$pid"
}

# Runs "$@ -p PORT" in the background on a free port, up to 3 ports (one
# may be taken meanwhile); sets port and server_pid (also in pids).
# Returns 1 when the server never accepted. Redirect the call to redirect
# the server's output.
start_server() {
    local _attempt
    for _attempt in 1 2 3; do
        port=$(free_port) || return 1
        "$@" -p "$port" &
        server_pid=$!
        pids+=("$server_pid")
        wait_port "$port" "$server_pid" && return 0
        stop_pid "$server_pid"
    done
    return 1
}
