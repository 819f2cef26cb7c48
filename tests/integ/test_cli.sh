#!/bin/bash
# test_cli.sh: start-up checks of mckvd's command line and configuration
# file (mckv only: skipped with 77 when $MCKVD is memcached).
#
#  - --help lists the keys (listen, port, threads, memory_limit,
#    item_size_max) and exits 0; --version prints a version and exits 0;
#  - a config file (-f FILE) with an unknown key or a bad value stops the
#    start with exactly one line "FILE:LINE: key: reason" (an "mckvd: "
#    prefix allowed) and a non-zero exit;
#  - a valid config file is used, and the command line overrides it;
#  - a port already in use, -U 1 and an out-of-range -p fail non-zero
#    instead of running.
# Every server started here binds 127.0.0.1 and is stopped by its pid; every
# wait is bounded. Exit status follows automake: 0 pass, 77 skip, else fail.

set -u

MCKVD=${MCKVD:-./mckvd}

if [ "$(basename "$MCKVD")" = memcached ]; then
    echo "test_cli.sh: mckv-only checks, \$MCKVD is memcached: skip"
    exit 77
fi
if [ ! -x "$MCKVD" ]; then
    echo "test_cli.sh: server '$MCKVD' is not executable" >&2
    exit 1
fi

tmp=$(mktemp -d /tmp/test_cli.XXXXXX)
pids=()
failures=0

# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"

# Runs the server with a 5 s bound; it must fail (exit != 0, not killed by
# the bound). Leaves stdout/stderr in $tmp/out and $tmp/err.
expect_start_failure() {
    local what=$1 status
    shift
    timeout 5 "$MCKVD" "$@" >"$tmp/out" 2>"$tmp/err"
    status=$?
    if [ "$status" = 0 ]; then
        fail "$what: exit 0 (want non-zero)"
        return 1
    elif [ "$status" = 124 ]; then
        fail "$what: still running after 5 s (want a start-up failure)"
        return 1
    fi
    if [ ! -s "$tmp/err" ] && [ ! -s "$tmp/out" ]; then
        fail "$what: exit $status without a message"
        return 1
    fi
    pass "$what: exit $status: $(cat "$tmp/err" "$tmp/out" | grep . | head -n 1)"
    return 0
}

# Requires that $tmp/err holds exactly one line matching the regex $2.
expect_one_line() {
    local what=$1 regex=$2 lines
    lines=$(grep -c . "$tmp/err")
    if [ "$lines" != 1 ]; then
        fail "$what: $lines lines on stderr (want exactly 1):"
        cat "$tmp/err" >&2
        return 1
    fi
    if ! grep -Eq "$regex" "$tmp/err"; then
        fail "$what: '$(cat "$tmp/err")' does not match /$regex/"
        return 1
    fi
    pass "$what: '$(cat "$tmp/err")'"
}

# --- --help ---------------------------------------------------------------
if timeout 5 "$MCKVD" --help >"$tmp/help" 2>&1; then
    missing=""
    for key in listen port threads memory_limit item_size_max; do
        grep -qw -- "$key" "$tmp/help" || missing="$missing $key"
    done
    if [ -n "$missing" ]; then
        fail "--help does not list:$missing"
    else
        pass "--help lists listen port threads memory_limit item_size_max"
    fi
else
    fail "--help exited $?"
fi

# --- --version ------------------------------------------------------------
if timeout 5 "$MCKVD" --version >"$tmp/version" 2>&1; then
    if grep -Eq '[0-9]+\.[0-9]+' "$tmp/version"; then
        pass "--version: $(head -n 1 "$tmp/version")"
    else
        fail "--version printed no version: '$(cat "$tmp/version")'"
    fi
else
    fail "--version exited $?"
fi

# --- config file: unknown key ---------------------------------------------
cfg="$tmp/unknown.conf"
printf '[server]\nport = 11311\nbogus_key = 1\n' >"$cfg"
if expect_start_failure "unknown key in config" -f "$cfg" -U 0; then
    expect_one_line "unknown key in config" \
        "^(mckvd: )?$cfg:3: bogus_key: .+"
fi

# --- config file: bad value -------------------------------------------------
cfg="$tmp/badvalue.conf"
printf '# a comment\n[server]\nthreads = 0\n' >"$cfg"
if expect_start_failure "threads = 0 in config" -f "$cfg" -U 0; then
    expect_one_line "threads = 0 in config" "^(mckvd: )?$cfg:3: threads: .+"
fi
cfg="$tmp/badnumber.conf"
printf '[cache]\nmemory_limit = lots\n' >"$cfg"
if expect_start_failure "memory_limit = lots in config" -f "$cfg" -U 0; then
    expect_one_line "memory_limit = lots in config" \
        "^(mckvd: )?$cfg:2: memory_limit: .+"
fi

# --- config file: missing file ----------------------------------------------
expect_start_failure "missing config file" -f "$tmp/does-not-exist.conf" -U 0

# --- a valid config file, and the command line wins over it ---------------
port_file=$(free_port)
port_cli=$(free_port)
cfg="$tmp/good.conf"
printf '[server]\nlisten = 127.0.0.1\nport = %s\nthreads = 2\nudp_port = 0\n' \
    "$port_file" >"$cfg"
"$MCKVD" -f "$cfg" --db-path="$tmp/db1/mckv.db" &
pid=$!
pids+=("$pid")
if wait_port "$port_file" "$pid"; then
    pass "server listens on the port of its config file"
else
    fail "server with $cfg does not listen on $port_file"
fi
stop_pid "$pid"
status=$?
[ "$status" = 0 ] || fail "SIGTERM: exit status $status (want 0)"

"$MCKVD" -f "$cfg" -p "$port_cli" --db-path="$tmp/db2/mckv.db" &
pid=$!
pids+=("$pid")
if wait_port "$port_cli" "$pid"; then
    if port_open "$port_file"; then
        fail "-p $port_cli given, but the config's port $port_file is open too"
    else
        pass "-p on the command line overrides the config file"
    fi
else
    fail "-p $port_cli does not override the config file's port"
fi
stop_pid "$pid"

# --- port already in use --------------------------------------------------
port=$(free_port)
"$MCKVD" -p "$port" -l 127.0.0.1 -U 0 --db-path="$tmp/db3/mckv.db" &
pid=$!
pids+=("$pid")
if wait_port "$port" "$pid"; then
    expect_start_failure "port $port already in use" \
        -p "$port" -l 127.0.0.1 -U 0
else
    fail "first server on port $port did not start"
fi
stop_pid "$pid"

# --- large_pages: one re-exec with the glibc tunable, same pid -------------
# (the environment the kernel shows for the pid is the one of its last exec)
for lp in yes no; do
    port=$(free_port)
    GLIBC_TUNABLES= "$MCKVD" -p "$port" -l 127.0.0.1 -U 0 --engine=memory \
        --large-pages="$lp" &
    pid=$!
    pids+=("$pid")
    if wait_port "$port" "$pid"; then
        env_now=$(tr '\0' '\n' <"/proc/$pid/environ" | grep '^GLIBC_TUNABLES=')
        comm=$(cat "/proc/$pid/comm")
        if [ "$lp" = yes ] && [ "$env_now" = "GLIBC_TUNABLES=glibc.malloc.hugetlb=1" ] &&
           [ "$comm" = mckvd ]; then
            pass "large_pages=yes: same pid $pid runs with $env_now"
        elif [ "$lp" = no ] && [ "$env_now" = "GLIBC_TUNABLES=" ]; then
            pass "large_pages=no: no re-exec"
        else
            fail "large_pages=$lp: pid $pid (${comm:-?}) has environment '$env_now'"
        fi
    else
        fail "server with --large-pages=$lp did not start"
    fi
    stop_pid "$pid"
done

# --- bad command-line values ---------------------------------------------
port=$(free_port)
expect_start_failure "-U 1 (UDP is not supported)" -p "$port" -l 127.0.0.1 -U 1
expect_start_failure "-p 70000" -p 70000 -l 127.0.0.1 -U 0
expect_start_failure "-t 0" -p "$port" -l 127.0.0.1 -U 0 -t 0
expect_start_failure "unknown option" -p "$port" -l 127.0.0.1 -U 0 \
    --no-such-option

if [ "$failures" != 0 ]; then
    echo "test_cli.sh: $failures check(s) failed" >&2
    exit 1
fi
echo "test_cli.sh: all checks passed"
exit 0
