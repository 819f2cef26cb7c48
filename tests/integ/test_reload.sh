#!/usr/bin/env bash
# test_reload.sh: SIGHUP reloads the configuration file. Live keys
# (verbosity, memory_limit, ...) change; other changed keys are reported as
# needing a restart; a bad file is rejected and the running config kept.
# Automake protocol: 0 pass, 77 skip, else fail.
set -u
MCKVD=${MCKVD:-./mckvd}
if [ "$(basename "$MCKVD")" = memcached ]; then exit 77; fi
tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- log:"; cat "$tmp/log"; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
write_conf() {  # $1 memory_limit, $2 verbosity, $3 port
  printf '[server]\nlisten = 127.0.0.1\nport = %s\n[cache]\nmemory_limit = %s\n[persistence]\ndb_path = %s/db/mckv.db\n[logging]\nverbosity = %s\n' \
    "$3" "$1" "$tmp" "$2" >"$tmp/mckv.conf"
}
stat() {  # $1 group, $2 name
  python3 - "$port" "$1" "$2" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(("stats %s\r\n" % sys.argv[2]).encode())
buf = b""
while not buf.endswith(b"END\r\n"):
    d = s.recv(65536)
    if not d: break
    buf += d
for line in buf.decode().split("\r\n"):
    p = line.split(" ")
    if len(p) >= 3 and p[1] == sys.argv[3]:
        print(" ".join(p[2:]))
PY
}
wait_log() {  # $1 pattern: waits up to 5 s for it in the log
  for _ in $(seq 50); do grep -q -- "$1" "$tmp/log" && return 0; sleep 0.1; done
  return 1
}

write_conf 64 0 "$port"
"$MCKVD" --config "$tmp/mckv.conf" 2>"$tmp/log" &
pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
[ "$(stat settings memory_limit)" = 64 ] || fail "memory_limit before reload"

# live keys change; the port is reported as needing a restart
write_conf 128 1 $((port + 1))
kill -HUP "$pid"
wait_log "reloaded" || fail "no reload line in the log"
[ "$(stat settings memory_limit)" = 128 ] || fail "memory_limit not reloaded"
[ "$(stat settings verbosity)" = 1 ] || fail "verbosity not reloaded"
[ "$(stat "" limit_maxbytes)" = $((128 * 1024 * 1024)) ] || fail "limit_maxbytes"
[ "$(stat settings port)" = "$port" ] || fail "port changed live"
grep -q "port changed.*needs a restart" "$tmp/log" || fail "port change not reported"

# a bad file is rejected whole: nothing changes
printf '[cache]\nmemory_limit = 32\nbogus_key = 1\n' >"$tmp/mckv.conf"
kill -HUP "$pid"
wait_log "configuration rejected" || fail "bad file not reported"
grep -q "mckv.conf:3: bogus_key" "$tmp/log" || fail "no FILE:LINE in the rejection"
[ "$(stat settings memory_limit)" = 128 ] || fail "bad file changed memory_limit"

kill "$pid"; wait "$pid"; rc=$?; pid=""
[ "$rc" = 0 ] || fail "exit status $rc after SIGTERM"
echo "test_reload.sh: all checks passed"
