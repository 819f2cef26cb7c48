#!/bin/bash
# test_package.sh: builds the Debian package (scripts/package), installs it
# on this machine with dpkg, runs what it installed, and purges it.
#
#  - the files: /usr/bin/mckvd and mcstat, both man pages, the conffile
#    /etc/mckv/mckv.conf, the systemd unit (systemd-analyze verify when
#    there); the system user mckv; /var/lib/mckv owned by it, mode 0750;
#  - the unit's own ExecStart, run as its User= (no systemd here: PID 1 is
#    not systemd), with --port=<free port> added: set and get, mcstat;
#    stopped by pid (SIGTERM drains), the database is in /var/lib/mckv;
#  - the same command started as root: the conffile's user = mckv makes
#    it drop to mckv, and the value written before the restart is served;
#  - dpkg -i again (an upgrade's path): the data and its owner stay;
#  - dpkg -r keeps /etc/mckv/mckv.conf and /var/lib/mckv; dpkg --purge
#    removes every file dpkg -L listed, /etc/mckv and /var/lib/mckv;
#  - installed again after the purge: the user (kept) and a new
#    /var/lib/mckv owned by it; purged again;
#  - lintian (when installed) reports no error or warning.
# Needs root and dpkg; skips (77) otherwise, and when an mckv package or
# /etc/mckv, /var/lib/mckv are already there (nothing of an operator's is
# touched). The EXIT trap stops the servers by pid, purges the package and
# removes the mckv user when this test created it. Every wait is bounded.
# Slow (a whole package build) and it changes the system, so scripts/test
# runs it as a step of its own rather than make check.

set -u
top=$(cd "$(dirname "$0")/../.." && pwd)

skip() { echo "test_package.sh: $*: skip"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "not root"
command -v dpkg >/dev/null 2>&1 || skip "no dpkg"
command -v python3 >/dev/null 2>&1 || skip "no python3"
if dpkg-query -W -f='${Status}' mckv 2>/dev/null | grep -qv "not-installed"; then
    skip "an mckv package is installed ($(dpkg-query -W -f='${Status}' mckv))"
fi
for d in /etc/mckv /var/lib/mckv; do
    [ -e "$d" ] && skip "$d exists and is not this test's"
done
user_existed=no
getent passwd mckv >/dev/null && user_existed=yes

tmp=$(mktemp -d /tmp/test_package.XXXXXX)
pids=()
failures=0
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"

installed=no
# lib.sh's cleanup stops the servers and removes tmp; the package and the
# user go first, whatever failed.
cleanup_package() {
    local p
    for p in "${pids[@]}"; do stop_pid "$p" >/dev/null 2>&1; done
    if [ "$installed" = yes ]; then
        dpkg --purge mckv >/dev/null 2>&1 || echo "cleanup: dpkg --purge mckv failed" >&2
    fi
    if [ "$user_existed" = no ] && getent passwd mckv >/dev/null; then
        deluser --system --quiet mckv >/dev/null 2>&1 || userdel mckv 2>/dev/null
        getent group mckv >/dev/null && groupdel mckv 2>/dev/null
    fi
    cleanup
}
trap cleanup_package EXIT

# kv PORT set|get KEY [VALUE]: one text command, bounded by 5 s; prints
# the reply (get: the value, or nothing on a miss).
kv() {
    python3 - "$@" <<'EOF'
import socket, sys
port, op, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port), timeout=5)
if op == "set":
    v = sys.argv[4].encode()
    s.sendall(b"set %s 0 0 %d\r\n%s\r\n" % (key.encode(), len(v), v))
    end = b"\r\n"
else:
    s.sendall(b"get %s\r\n" % key.encode())
    end = b"END\r\n"
buf = b""
while not buf.endswith(end):
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
if op == "set":
    print(buf.decode().strip())
else:
    lines = buf.split(b"\r\n")
    print(lines[1].decode() if lines[0].startswith(b"VALUE") else "")
EOF
}

# ---- build and install
if ! timeout 1800 bash "$top/scripts/package" "$tmp/out" >"$tmp/package.log" 2>&1; then
    tail -n 40 "$tmp/package.log" >&2
    echo "FAIL: scripts/package" >&2
    exit 1
fi
deb=$(tail -n 1 "$tmp/package.log")
[ -f "$deb" ] || { echo "FAIL: scripts/package printed no .deb: $deb" >&2; exit 1; }
pass "scripts/package: $deb"
# lintian, when installed (scripts/deps does not install it): no error
# or warning; informational tags are allowed
if command -v lintian >/dev/null 2>&1; then
    timeout 300 lintian "${deb%.deb}.changes" >"$tmp/lintian" 2>&1
    if grep -qE '^[EW]: ' "$tmp/lintian"; then
        fail "lintian: $(grep -E '^[EW]: ' "$tmp/lintian" | head -n 5)"
    else
        pass "lintian: no error or warning"
    fi
fi

installed=yes
if timeout 300 dpkg -i "$deb" >"$tmp/dpkg.log" 2>&1; then
    pass "dpkg -i $(basename "$deb")"
else
    cat "$tmp/dpkg.log" >&2
    echo "FAIL: dpkg -i" >&2
    exit 1
fi

# ---- what it installed
for f in /usr/bin/mckvd /usr/bin/mcstat; do
    if [ -x "$f" ]; then pass "$f"; else fail "$f: not installed"; fi
done
for f in /usr/share/man/man8/mckvd.8.gz /usr/share/man/man1/mcstat.1.gz \
         /etc/mckv/mckv.conf /usr/share/doc/mckv/copyright; do
    if [ -f "$f" ]; then pass "$f"; else fail "$f: not installed"; fi
done
if dpkg-query -W -f='${Conffiles}\n' mckv | grep -q '^ /etc/mckv/mckv.conf '; then
    pass "/etc/mckv/mckv.conf is a conffile"
else
    fail "/etc/mckv/mckv.conf is not a conffile: $(dpkg-query -W -f='${Conffiles}' mckv)"
fi
unit=""
for f in /lib/systemd/system/mckvd.service /usr/lib/systemd/system/mckvd.service; do
    [ -f "$f" ] && { unit=$f; break; }
done
if [ -z "$unit" ]; then
    fail "mckvd.service: not installed"
    exit 1
fi
pass "unit $unit"
if command -v systemd-analyze >/dev/null 2>&1; then
    if timeout 60 systemd-analyze verify "$unit" >"$tmp/verify" 2>&1; then
        pass "systemd-analyze verify $unit"
    else
        fail "systemd-analyze verify: $(cat "$tmp/verify")"
    fi
fi

unit_user=$(sed -n 's/^User=//p' "$unit")
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
work_dir=$(sed -n 's/^WorkingDirectory=//p' "$unit")
if [ "$unit_user" = mckv ]; then pass "unit runs as User=mckv"; else fail "unit User=$unit_user"; fi
uid=$(getent passwd mckv | cut -d: -f3)
if [ -n "$uid" ] && [ "$uid" -lt 1000 ] && getent group mckv >/dev/null; then
    pass "system user mckv (uid $uid) and its group"
else
    fail "no system user mckv: $(getent passwd mckv)"
fi
owner=$(stat -c '%U:%G %a' /var/lib/mckv 2>/dev/null)
if [ "$owner" = "mckv:mckv 750" ]; then pass "/var/lib/mckv: $owner"; else fail "/var/lib/mckv: '$owner'"; fi

# ---- run it as systemd would, then as root by hand
# run_unit AS: the unit's ExecStart with -p on a free port, in its
# WorkingDirectory, as user AS (or as root); sets port and server_pid.
# The command has no quoting.
run_unit() {
    local as=$1
    # shellcheck disable=SC2206  # ExecStart is split on blanks, as systemd does
    local cmd=($exec_start)
    [ "$as" = root ] || cmd=(setpriv --reuid="$as" --regid="$as" --init-groups -- "${cmd[@]}")
    # lib.sh's start_server adds -p PORT (as --port would)
    start_server env --chdir="${work_dir:-/}" "${cmd[@]}" >>"$tmp/server.log" 2>&1
}
process_user() { ps -o user= -p "$1" | tr -d ' '; }
# same WHAT GOT WANT: passes when GOT is WANT.
same() {
    if [ "$2" = "$3" ]; then pass "$1: $2"; else fail "$1: '$2' (want '$3')"; fi
}

if ! run_unit mckv; then
    fail "the unit's ExecStart ($exec_start) did not start: $(tail -n 5 "$tmp/server.log")"
    exit 1
fi
pass "ExecStart as mckv listens on $port (pid $server_pid, user $(process_user "$server_pid"))"
same "set" "$(kv "$port" set pkgkey "kept-by-the-package")" STORED
same "get" "$(kv "$port" get pkgkey)" kept-by-the-package
if timeout 15 /usr/bin/mcstat -p "$port" settings >"$tmp/stats" 2>&1 \
   && grep -qx "STAT port $port" "$tmp/stats"; then
    pass "/usr/bin/mcstat settings: STAT port $port"
else
    fail "/usr/bin/mcstat: $(head -n 3 "$tmp/stats")"
fi
stop_pid "$server_pid"
same "SIGTERM: exit status" "$?" 0
same "/var/lib/mckv/mckv.db's owner" "$(stat -c '%U' /var/lib/mckv/mckv.db 2>/dev/null)" mckv

if run_unit root; then
    same "started as root (user = mckv), runs as" "$(process_user "$server_pid")" mckv
    same "after a restart, get" "$(kv "$port" get pkgkey)" kept-by-the-package
    stop_pid "$server_pid"
    same "second SIGTERM: exit status" "$?" 0
else
    fail "ExecStart as root did not start: $(tail -n 5 "$tmp/server.log")"
fi

# ---- reinstall (an upgrade runs the same maintainer scripts): data stays
if timeout 300 dpkg -i "$deb" >"$tmp/dpkg2.log" 2>&1; then
    pass "dpkg -i again"
else
    fail "dpkg -i again: $(tail -n 5 "$tmp/dpkg2.log")"
fi
owner="$(stat -c '%U:%G' /var/lib/mckv/mckv.db 2>/dev/null) $(stat -c '%U:%G %a' /var/lib/mckv 2>/dev/null)"
same "after reinstall, the database's and /var/lib/mckv's owner" "$owner" "mckv:mckv mckv:mckv 750"

# ---- remove keeps configuration and data, purge removes everything
dpkg -L mckv | while read -r f; do [ -d "$f" ] || echo "$f"; done >"$tmp/files"
n=$(wc -l <"$tmp/files")
if timeout 300 dpkg -r mckv >"$tmp/remove.log" 2>&1; then pass "dpkg -r"; else fail "dpkg -r: $(cat "$tmp/remove.log")"; fi
for f in /etc/mckv/mckv.conf /var/lib/mckv/mckv.db; do
    if [ -f "$f" ]; then pass "after dpkg -r: $f stays"; else fail "dpkg -r removed $f"; fi
done
if [ -e /usr/bin/mckvd ]; then fail "dpkg -r left /usr/bin/mckvd"; else pass "after dpkg -r: no /usr/bin/mckvd"; fi
if timeout 300 dpkg --purge mckv >"$tmp/purge.log" 2>&1; then
    installed=no
    pass "dpkg --purge"
else
    fail "dpkg --purge: $(cat "$tmp/purge.log")"
fi
left=0
while read -r f; do
    [ -e "$f" ] && { fail "after purge: $f is still there"; left=$((left + 1)); }
done <"$tmp/files"
[ "$left" = 0 ] && pass "after purge: none of the $n files dpkg -L listed is left"
for d in /etc/mckv /var/lib/mckv /etc/systemd/system/multi-user.target.wants/mckvd.service; do
    if [ -e "$d" ] || [ -L "$d" ]; then fail "after purge: $d is still there"; else pass "after purge: no $d"; fi
done
status=$(dpkg-query -W -f='${Status}' mckv 2>/dev/null)
case "$status" in
    ""|*not-installed) pass "dpkg: mckv not installed" ;;
    *) fail "dpkg status after purge: $status" ;;
esac

# ---- installed again after a purge: the user stays, its directory is new
installed=yes
if timeout 300 dpkg -i "$deb" >"$tmp/dpkg3.log" 2>&1; then
    pass "dpkg -i after purge"
else
    fail "dpkg -i after purge: $(tail -n 5 "$tmp/dpkg3.log")"
fi
same "after reinstall, /var/lib/mckv" "$(stat -c '%U:%G %a' /var/lib/mckv 2>/dev/null)" "mckv:mckv 750"
same "after reinstall, mckv's uid" "$(getent passwd mckv | cut -d: -f3)" "$uid"
if timeout 300 dpkg --purge mckv >"$tmp/purge2.log" 2>&1; then
    installed=no
    pass "dpkg --purge again"
else
    fail "dpkg --purge again: $(tail -n 5 "$tmp/purge2.log")"
fi

if [ "$failures" -ne 0 ]; then
    echo "test_package.sh: $failures failure(s)"
    exit 1
fi
echo "test_package.sh: all passed"
