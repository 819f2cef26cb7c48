#!/bin/bash
# test_cli.sh: start-up checks of mckvd's command line and configuration
# file (mckv only: skipped with 77 when $MCKVD is memcached).
#
#  - --help lists the keys (listen, port, threads, memory_limit,
#    item_size_max) and exits 0; --version prints a version and exits 0;
#  - a config file (--config FILE) with an unknown key or a bad value stops the
#    start with exactly one line "FILE:LINE: key: reason" (an "mckvd: "
#    prefix allowed) and a non-zero exit;
#  - a valid config file is used, and the command line overrides it;
#  - a port already in use, -U 1 and an out-of-range -p fail non-zero
#    instead of running;
#  - memcached's flags: -R N (pipelined requests answered in order, with
#    conn_yields), -B ascii / -B binary (the other protocol is answered as
#    memcached 1.6.18 answers it), -o idle_timeout (an idle connection is
#    closed and counted in idle_kicks, a busy one is not), -s PATH -a MODE
#    (a UNIX socket of that mode, no TCP port, removed at exit), -f 1.25 and
#    -o names with no meaning (one notice line each), -F -A -M -C (in stats
#    settings), an unknown -o name and -S (start-up fails), -P (pid file,
#    removed at exit), -d (exit 0 once listening, own session; exit 1 with
#    the reason on a busy port), -u (as root: runs as that user), -r, -k;
#  - SIGUSR1 stops gracefully: exit 0, a queued write is on disk;
#  - a database directory mckvd creates is 0700 (its parents 0755).
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
if expect_start_failure "unknown key in config" --config "$cfg" -U 0; then
    expect_one_line "unknown key in config" \
        "^(mckvd: )?$cfg:3: bogus_key: .+"
fi

# --- config file: bad value -------------------------------------------------
cfg="$tmp/badvalue.conf"
printf '# a comment\n[server]\nthreads = 0\n' >"$cfg"
if expect_start_failure "threads = 0 in config" --config="$cfg" -U 0; then
    expect_one_line "threads = 0 in config" "^(mckvd: )?$cfg:3: threads: .+"
fi
cfg="$tmp/badnumber.conf"
printf '[cache]\nmemory_limit = lots\n' >"$cfg"
if expect_start_failure "memory_limit = lots in config" --config "$cfg" -U 0; then
    expect_one_line "memory_limit = lots in config" \
        "^(mckvd: )?$cfg:2: memory_limit: .+"
fi

# --- config file: missing file ----------------------------------------------
expect_start_failure "missing config file" --config "$tmp/does-not-exist.conf" -U 0
# mckv's old -f FILE: a value that is not a number is still a file
expect_start_failure "missing config file (-f)" -f "$tmp/does-not-exist.conf" -U 0

# --- a valid config file, and the command line wins over it ---------------
port_file=$(free_port)
port_cli=$(free_port)
cfg="$tmp/good.conf"
printf '[server]\nlisten = 127.0.0.1\nport = %s\nthreads = 2\nudp_port = 0\n' \
    "$port_file" >"$cfg"
"$MCKVD" --config "$cfg" --db-path="$tmp/db1/mckv.db" &
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

# the old -f FILE spelling still loads it
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

# A small client: python3 "$tmp/mc.py" ADDR COMMAND... where ADDR is a TCP
# port on 127.0.0.1 or a UNIX socket path. Every wait is bounded.
cat >"$tmp/mc.py" <<'PY'
import socket, sys, time

def connect(addr):
    if addr.startswith("/"):
        s = socket.socket(socket.AF_UNIX)
        s.connect(addr)
    else:
        s = socket.create_connection(("127.0.0.1", int(addr)))
    s.settimeout(5)
    return s

def read_until(s, end):
    buf = b""
    while not buf.endswith(end):
        d = s.recv(65536)
        if not d:
            break
        buf += d
    return buf

def stat(addr, group, name):
    s = connect(addr)
    s.sendall(("stats %s\r\n" % group).encode() if group else b"stats\r\n")
    for line in read_until(s, b"END\r\n").decode().split("\r\n"):
        p = line.split(" ", 2)
        if len(p) == 3 and p[1] == name:
            return p[2]
    return None

def exchange(addr, data):
    """Sends data, reads for up to a second: (reply, closed)."""
    s = connect(addr)
    s.sendall(data)
    s.settimeout(1)
    buf, closed = b"", False
    try:
        while True:
            d = s.recv(65536)
            if not d:
                closed = True
                break
            buf += d
    except socket.timeout:
        pass
    return buf, closed

cmd, addr = sys.argv[1], sys.argv[2]
if cmd == "stat":          # stat ADDR GROUP NAME: prints the value
    v = stat(addr, sys.argv[3], sys.argv[4])
    print("" if v is None else v)
elif cmd == "exchange":    # exchange ADDR HEX: prints reply and state
    b, closed = exchange(addr, bytes.fromhex(sys.argv[3]))
    print(b.hex(), "closed" if closed else "open")
elif cmd == "pipeline":    # pipeline ADDR N: N gets in one write
    n = int(sys.argv[3])
    s = connect(addr)
    s.sendall(b"set k 0 0 1\r\nv\r\n" + b"get k\r\n" * n + b"mn\r\n")
    want = b"STORED\r\n" + b"VALUE k 0 1\r\nv\r\nEND\r\n" * n + b"MN\r\n"
    print("ok" if read_until(s, b"MN\r\n") == want else "bad replies")
elif cmd == "idle":        # idle ADDR: one idle, one busy connection
    idle, busy = connect(addr), connect(addr)
    idle.settimeout(0.2)
    t0, kicked = time.time(), False
    while time.time() - t0 < 8 and not kicked:
        busy.sendall(b"mn\r\n")
        if read_until(busy, b"MN\r\n") != b"MN\r\n":
            print("busy connection closed")
            sys.exit(0)
        try:
            kicked = idle.recv(100) == b""
        except socket.timeout:
            pass
    print("kicked" if kicked else "not kicked", "busy ok")
PY
mc() { timeout 20 python3 "$tmp/mc.py" "$@"; }

# Starts "$MCKVD $@" (memory engine, 127.0.0.1, a free port); fails the
# check `what` when it does not come up. Sets port and server_pid.
start_memory_server() {
    local what=$1
    shift
    if start_server "$MCKVD" -l 127.0.0.1 -U 0 --engine=memory \
        --large-pages=no "$@" 2>"$tmp/server.err"; then
        return 0
    fi
    fail "$what: the server did not start: $(head -n 2 "$tmp/server.err")"
    return 1
}

# --- memcached -R: requests per wake-up ------------------------------------
if start_memory_server "-R 5" -R 5; then
    got=$(mc pipeline "$port" 200)
    yields=$(mc stat "$port" "" conn_yields)
    if [ "$got" = ok ] && [ "${yields:-0}" -gt 0 ]; then
        pass "-R 5: 200 pipelined gets answered in order, conn_yields $yields"
    else
        fail "-R 5: replies '$got', conn_yields '$yields' (want ok, > 0)"
    fi
    [ "$(mc stat "$port" settings reqs_per_event)" = 5 ] ||
        fail "-R 5: stats settings reqs_per_event is not 5"
    stop_pid "$server_pid"
fi

# --- memcached -B: the other protocol gets what memcached gives it --------
# a binary NOOP, opaque 0x1234, and its reply
#         magic op  key  ext dt vbucket bodylen  opaque   cas
bin_noop=80""0a""0000""00""00""0000""00000000""00001234""0000000000000000
bin_noop_reply=81""0a""0000""00""00""0000""00000000""00001234""0000000000000000
if start_memory_server "-B ascii" -B ascii; then
    # binary bytes are read as text: its 0x0a ends an unknown command
    got=$(mc exchange "$port" "$bin_noop")
    [ "$got" = "4552524f520d0a open" ] ||
        fail "-B ascii: a binary noop got '$got' (want ERROR\\r\\n, open)"
    [ "$(mc stat "$port" settings binding_protocol)" = ascii ] ||
        fail "-B ascii: binding_protocol is not ascii"
    pass "-B ascii: text served, binary refused as memcached does"
    stop_pid "$server_pid"
fi
if start_memory_server "-B binary" -B binary; then
    got=$(mc exchange "$port" "$bin_noop")
    [ "$got" = "$bin_noop_reply open" ] || fail "-B binary: noop got '$got'"
    # 24 bytes of text are a header with a bad magic: closed, no reply
    got=$(mc exchange "$port" "$(printf 'get foo\r\nget foo\r\nget foo\r\n' |
                                 od -An -tx1 | tr -d ' \n')")
    [ "$got" = " closed" ] ||
        fail "-B binary: text got '$got' (want no reply, closed)"
    pass "-B binary: binary served, text closed as memcached does"
    stop_pid "$server_pid"
fi

# --- memcached -o idle_timeout ----------------------------------------------
if start_memory_server "-o idle_timeout=1" -o idle_timeout=1; then
    got=$(mc idle "$port")
    kicks=$(mc stat "$port" "" idle_kicks)
    if [ "$got" = "kicked busy ok" ] && [ "$kicks" = 1 ]; then
        pass "-o idle_timeout=1: the idle connection closed, the busy one not"
    else
        fail "-o idle_timeout=1: '$got', idle_kicks '$kicks' (want 1)"
    fi
    [ "$(mc stat "$port" settings idle_timeout)" = 1 ] ||
        fail "-o idle_timeout=1: stats settings idle_timeout is not 1"
    stop_pid "$server_pid"
fi

# --- memcached -s / -a: a UNIX socket instead of TCP -----------------------
sock="$tmp/mckv.sock"
port=$(free_port)
"$MCKVD" -s "$sock" -a 0660 -p "$port" -l 127.0.0.1 -U 0 --engine=memory \
    --large-pages=no 2>"$tmp/server.err" &
pid=$!
pids+=("$pid")
for _ in $(seq 1 500); do
    [ -S "$sock" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.01
done
if [ -S "$sock" ]; then
    mode=$(stat -c %a "$sock")
    reply=$(mc exchange "$sock" "$(printf 'version\r\n' | od -An -tx1 | tr -d ' \n')")
    [ "$mode" = 660 ] || fail "-a 0660: the socket's mode is $mode"
    case $reply in
    56455253494f4e20*) ;;   # "VERSION "
    *) fail "-s: version over the socket got '$reply'" ;;
    esac
    [ "$(mc stat "$sock" settings domain_socket)" = "$sock" ] ||
        fail "-s: stats settings domain_socket is not $sock"
    [ "$(mc stat "$sock" settings umask)" = 660 ] ||
        fail "-a 0660: stats settings umask is not 660"
    if port_open "$port"; then
        fail "-s given, but TCP port $port is open too (memcached: no TCP)"
    fi
    pass "-s $sock -a 0660: served on the socket (mode 660), no TCP port"
else
    fail "-s: no socket at $sock: $(head -n 2 "$tmp/server.err")"
fi
stop_pid "$pid"
status=$?
[ "$status" = 0 ] || fail "-s: exit status $status after SIGTERM (want 0)"
[ -e "$sock" ] && fail "-s: $sock is still there after a clean exit"

# --- memcached's other flags: accepted with one notice each, or refused ----
if start_memory_server "-f 1.25 -o slab_reassign" -f 1.25 -n 48 \
    -o slab_reassign,relaxed_privileges,slab_reassign -u root -F -A -M -C; then
    notes=$(grep -c '^mckvd: .*: ignored: ' "$tmp/server.err")
    if [ "$notes" = 3 ] && grep -q '^mckvd: -f 1.25: ignored: ' "$tmp/server.err" &&
       grep -q '^mckvd: -o slab_reassign: ignored: ' "$tmp/server.err"; then
        pass "-f 1.25 -n 48 -o slab_reassign,relaxed_privileges: 3 notices"
    else
        fail "notices: $notes lines (want 3): $(cat "$tmp/server.err")"
    fi
    for kv in flush_enabled=no shutdown_command=yes evictions=off \
              cas_enabled=no growth_factor=1.25; do
        got=$(mc stat "$port" settings "${kv%%=*}")
        [ "$got" = "${kv#*=}" ] ||
            fail "-F -A -M -C: stats settings ${kv%%=*} is '$got', want ${kv#*=}"
    done
    stop_pid "$server_pid"
fi
# large_pages = yes (the default) executes mckvd once more: still one notice
if start_server "$MCKVD" -l 127.0.0.1 -U 0 --engine=memory -n 48 \
    2>"$tmp/server.err"; then
    notes=$(grep -c '^mckvd: .*: ignored: ' "$tmp/server.err")
    if [ "$notes" = 1 ]; then
        pass "-n 48 with large_pages = yes: one notice"
    else
        fail "-n 48 with large_pages = yes: $notes notices (want 1)"
    fi
    stop_pid "$server_pid"
else
    fail "-n 48 (large_pages = yes): the server did not start: $(head -n 2 "$tmp/server.err")"
fi
if expect_start_failure "-o bogus" -p "$(free_port)" -l 127.0.0.1 -U 0 \
    -o idle_timeout=5,bogus=1; then
    expect_one_line "-o bogus" '^mckvd: option -o: Illegal suboption "bogus=1"$'
fi
# -S with the ascii protocol alone: refused, as memcached refuses it
if expect_start_failure "-S -B ascii" -p "$(free_port)" -l 127.0.0.1 -U 0 -S -B ascii; then
    expect_one_line "-S -B ascii" '^mckvd: sasl: the ascii protocol cannot be allowed while using SASL .+'
fi
if expect_start_failure "-Y missing file" -p "$(free_port)" -l 127.0.0.1 -U 0 \
    -Y "$tmp/no-such-auth-file"; then
    expect_one_line "-Y missing file" '^mckvd: auth_file: .*no-such-auth-file: cannot open: No such file or directory$'
fi

# --- memcached -P: the pid file, removed at a clean exit -------------------
pidfile="$tmp/mckvd.pid"
if start_memory_server "-P" -P "$pidfile"; then
    # written once the server is up, just after the port accepts: wait
    for _ in $(seq 1 200); do
        [ "$(cat "$pidfile" 2>/dev/null)" = "$server_pid" ] && break
        sleep 0.01
    done
    [ "$(cat "$pidfile" 2>/dev/null)" = "$server_pid" ] ||
        fail "-P: $pidfile holds '$(cat "$pidfile" 2>/dev/null)', want $server_pid"
    stop_pid "$server_pid"
    if [ -e "$pidfile" ]; then
        fail "-P: $pidfile is still there after a clean exit"
    else
        pass "-P: the pid file holds the pid and is removed at exit"
    fi
fi

# --- SIGUSR1: memcached's graceful stop; queued writes reach the disk -----
port=$(free_port)
# (each engine write takes 0.3 s: the set is still queued at the signal)
"$MCKVD" -p "$port" -l 127.0.0.1 -U 0 --db-path="$tmp/usr1/mckv.db" \
    --engine-delay-us=300000 2>"$tmp/server.err" &
pid=$!
pids+=("$pid")
if wait_port "$port" "$pid"; then
    mc exchange "$port" "$(printf 'set usr1 0 0 4\r\nkept\r\n' | od -An -tx1 |
                           tr -d ' \n')" >/dev/null
    forget_pid "$pid"
    kill -USR1 "$pid"
    wait "$pid"
    status=$?
    [ "$status" = 0 ] || fail "SIGUSR1: exit status $status (want 0)"
    port=$(free_port)
    "$MCKVD" -p "$port" -l 127.0.0.1 -U 0 --db-path="$tmp/usr1/mckv.db" \
        2>>"$tmp/server.err" &
    pid=$!
    pids+=("$pid")
    if wait_port "$port" "$pid"; then
        got=$(mc exchange "$port" "$(printf 'get usr1\r\n' | od -An -tx1 |
                                     tr -d ' \n')")
        if [ "${got%% *}" = "$(printf 'VALUE usr1 0 4\r\nkept\r\nEND\r\n' |
                              od -An -tx1 | tr -d ' \n')" ]; then
            pass "SIGUSR1: exit 0, the write queued before it is on disk"
        else
            fail "SIGUSR1: after a restart get usr1 gave '$got'"
        fi
    else
        fail "SIGUSR1: the restarted server did not start"
    fi
    stop_pid "$pid"
else
    fail "SIGUSR1: the server did not start: $(head -n 2 "$tmp/server.err")"
fi

# --- memcached -d: in the background once it listens ----------------------
port=$(free_port)
pidfile="$tmp/daemon.pid"
if timeout 10 "$MCKVD" -d -P "$pidfile" -p "$port" -l 127.0.0.1 -U 0 \
    --engine=memory --large-pages=no 2>"$tmp/server.err"; then
    dpid=$(cat "$pidfile" 2>/dev/null)
    if [ -n "$dpid" ] && kill -0 "$dpid" 2>/dev/null; then
        pids+=("$dpid")
        sid=$(ps -o sid= -p "$dpid" | tr -d ' ')
        if ! port_open "$port"; then
            fail "-d: the command returned before port $port was open"
        elif [ "$sid" != "$dpid" ]; then
            fail "-d: pid $dpid is in session $sid, not its own"
        else
            pass "-d: exit 0 once listening; pid $dpid leads its own session"
        fi
        # not our child: stop it by its pid and poll
        forget_pid "$dpid"
        kill -TERM "$dpid"
        for _ in $(seq 1 500); do
            kill -0 "$dpid" 2>/dev/null || break
            sleep 0.01
        done
        if kill -0 "$dpid" 2>/dev/null; then
            kill -KILL "$dpid"
            fail "-d: pid $dpid still runs 5 s after SIGTERM"
        fi
        [ -e "$pidfile" ] && fail "-d: $pidfile is still there after exit"
    else
        fail "-d: no running pid in $pidfile"
    fi
else
    fail "-d: exit $? ($(head -n 2 "$tmp/server.err"))"
fi
# the port is taken: the start command itself fails, with the reason
busy=$(free_port)
"$MCKVD" -p "$busy" -l 127.0.0.1 -U 0 --engine=memory --large-pages=no \
    2>/dev/null &
pid=$!
pids+=("$pid")
if wait_port "$busy" "$pid"; then
    if expect_start_failure "-d on a port in use" -d -p "$busy" -l 127.0.0.1 \
        -U 0 --engine=memory --large-pages=no; then
        expect_one_line "-d on a port in use" "Address already in use"
    fi
fi
stop_pid "$pid"

# --- memcached -u: started as root, becomes that user once bound -----------
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
    if start_memory_server "-u nobody" -u nobody; then
        # the port accepts once bound, just before root is dropped: wait
        # (bounded) for the switch rather than racing it
        for _ in $(seq 1 200); do
            uid=$(awk '/^Uid:/ { print $2 }' "/proc/$server_pid/status")
            [ "$uid" = "$(id -u nobody)" ] && break
            sleep 0.01
        done
        if [ "$uid" = "$(id -u nobody)" ]; then
            pass "-u nobody: runs as uid $uid"
        else
            fail "-u nobody: runs as uid $uid, want $(id -u nobody)"
        fi
        stop_pid "$server_pid"
    fi
    # a UNIX socket is made as the user (memcached's order): it owns it
    sockdir=$(mktemp -d /tmp/test_cli_sock.XXXXXX)
    chmod 1777 "$sockdir"
    "$MCKVD" -u nobody -s "$sockdir/s" --engine=memory --large-pages=no \
        2>"$tmp/server.err" &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 1 500); do
        [ -S "$sockdir/s" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.01
    done
    owner=$(stat -c %u "$sockdir/s" 2>/dev/null)
    if [ "$owner" = "$(id -u nobody)" ]; then
        pass "-u nobody -s: the socket belongs to nobody"
    else
        fail "-u nobody -s: socket owner '$owner': $(head -n 2 "$tmp/server.err")"
    fi
    stop_pid "$pid"
    rm -rf "$sockdir"
    if expect_start_failure "-u no-such-user" -p "$(free_port)" -l 127.0.0.1 \
        -U 0 --engine=memory -u no-such-user-mckv; then
        expect_one_line "-u no-such-user" "can't find the user no-such-user-mckv"
    fi
else
    echo "skip: -u needs root and a user nobody"
fi

# --- a new database directory is private: 0700, its parents 0755 ----------
if start_server "$MCKVD" -l 127.0.0.1 -U 0 --engine=sqlite --large-pages=no \
        --db-path="$tmp/priv/data/mckv.db" 2>"$tmp/server.err"; then
    mode=$(stat -c %a "$tmp/priv/data")
    parent=$(stat -c %a "$tmp/priv")
    want_parent=$(printf %o $((0755 & ~0$(umask))))
    if [ "$mode" = 700 ] && [ "$parent" = "$want_parent" ]; then
        pass "new db directory: mode $mode, parent $parent"
    else
        fail "new db directory: mode $mode, parent $parent (want 700 and $want_parent)"
    fi
    stop_pid "$server_pid"
else
    fail "db directory: the server did not start: $(head -n 2 "$tmp/server.err")"
fi

# --- memcached -r and -k: core file limit, locked memory --------------------
if start_memory_server "-r -k" -r -k; then
    core=$(awk '/^Max core file size/ { print $5, $6 }' "/proc/$server_pid/limits")
    locked=$(awk '/^VmLck:/ { print $2 }' "/proc/$server_pid/status")
    hard=$(awk '/^Max core file size/ { print $6 }' "/proc/$server_pid/limits")
    [ "${core% *}" = "$hard" ] ||
        fail "-r: core file size limit '$core' (want the hard limit)"
    # mlockall may be refused (no CAP_IPC_LOCK): memcached warns and goes on
    # (under AddressSanitizer mlockall succeeds but locks nothing visible:
    # its shadow memory is reserved, not mapped)
    if [ "${locked:-0}" -gt 0 ] || grep -q "mlockall() failed" "$tmp/server.err" ||
       ldd "$MCKVD" 2>/dev/null | grep -q libasan; then
        pass "-r -k: core limit $hard, ${locked:-0} kB locked"
    else
        fail "-k: nothing locked and no warning"
    fi
    stop_pid "$server_pid"
fi

if [ "$failures" != 0 ]; then
    echo "test_cli.sh: $failures check(s) failed" >&2
    exit 1
fi
echo "test_cli.sh: all checks passed"
exit 0
