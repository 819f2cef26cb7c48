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

tmp=$(mktemp -d /tmp/memccapable.XXXXXX)
pids=()
failures=0
log="$tmp/memccapable.log"

# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"

extra=()
if [ "$(basename "$MCKVD")" = memcached ] && [ "$(id -u)" = 0 ]; then
    extra=(-u root)   # memcached refuses to run as root without it
fi
# shellcheck disable=SC2206  # word splitting wanted
extra+=(${MCKVD_EXTRA_ARGS:-})
if [ "$(basename "$MCKVD")" != memcached ]; then
    extra+=("--db-path=$tmp/db/mckv.db")   # mckvd persists by default
fi

if ! start_server "$MCKVD" -l 127.0.0.1 -U 0 -t 4 -m 64 "${extra[@]}"; then
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

stop_pid "$server_pid"
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
