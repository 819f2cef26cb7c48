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
