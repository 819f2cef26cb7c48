#!/bin/bash
# test_tools_secure.sh: the client tools' SASL and TLS (tools/mcstat $MCSTAT,
# tools/mcload $MCLOAD) against a server that has both: $SECURE_SERVER,
# Debian's memcached by default (built with SASL and TLS), started with
# memcached's flags (-S -B binary; -Z -o ssl_chain_cert=,ssl_key=, and
# ssl_verify_mode=2,ssl_ca_cert= for client certificates) plus
# $SECURE_SERVER_ARGS, so the same checks can run against mckvd.
#
# A CA, a server certificate for 127.0.0.1/localhost, one for another name,
# a client certificate and a second CA that signed nothing are made with
# openssl in a temporary dir; SASL users with saslpasswd2 (sasldb).
#  - SASL: the right password prints the server's stats (exit 0; also with
#    $MCSTAT_PASSWORD); a wrong password and an unknown user exit 3 with
#    "authentication failed"; no credentials exit 3 with "requires
#    authentication"; mcload --sasl-user runs a bounded load (RESULT,
#    errors=0), and exits 1 on a wrong password.
#  - TLS: --tls --cafile prints the stats by address and by name; the wrong
#    CA and a certificate for another name exit 6 naming the verification
#    failure; --tls against a plaintext server exits 6; a server asking
#    for a client certificate refuses mcstat without --cert and accepts it
#    with --cert/--key; mcload --tls runs a bounded load and prints RESULT
#    (errors=0), and exits 1 with the wrong CA; watch mode runs over TLS.
#  - both (memcached -S -Z): SASL inside TLS works for both tools, and a
#    wrong password exits 3.
# Servers are stopped by their pid; every run is bounded by timeout.
# Exit status follows automake: 0 pass, 77 skip, else fail.

set -u

MCSTAT=${MCSTAT:-./tools/mcstat}
MCLOAD=${MCLOAD:-./tools/mcload}
SERVER=${SECURE_SERVER:-$(command -v memcached || true)}
read -r -a server_args <<<"${SECURE_SERVER_ARGS:-}"

for cmd in python3 openssl saslpasswd2; do
    if ! command -v "$cmd" >/dev/null 2>&1; then
        echo "test_tools_secure.sh: $cmd not installed: skip"
        exit 77
    fi
done
if [ -z "$SERVER" ] || [ ! -x "$SERVER" ]; then
    echo "test_tools_secure.sh: no server (memcached not installed): skip"
    exit 77
fi
for bin in "$MCSTAT" "$MCLOAD"; do
    if [ ! -x "$bin" ]; then
        echo "test_tools_secure.sh: '$bin' is not executable" >&2
        exit 1
    fi
done
# memcached refuses to run as root without -u.
if [ "$(id -u)" = 0 ] && [ "$(basename "$SERVER")" = memcached ]; then
    server_args+=(-u root)
fi

tmp=$(mktemp -d /tmp/test_tools_secure.XXXXXX)
pids=()
failures=0

# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"

# ---- material ------------------------------------------------------------------
# make_cert NAME SAN CA: a key and a certificate for SAN signed by CA.
make_cert() {
    local name=$1 san=$2 ca=$3
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$name" \
        -keyout "$tmp/$name.key" -out "$tmp/$name.csr" 2>/dev/null &&
        printf 'subjectAltName=%s\n' "$san" >"$tmp/$name.ext" &&
        openssl x509 -req -in "$tmp/$name.csr" -CA "$tmp/$ca.crt" \
            -CAkey "$tmp/$ca.key" -CAcreateserial -days 2 \
            -extfile "$tmp/$name.ext" -out "$tmp/$name.crt" 2>/dev/null
}
make_ca() {
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$1" \
        -keyout "$tmp/$1.key" -out "$tmp/$1.crt" 2>/dev/null
}
if ! { make_ca ca && make_ca other-ca &&
       make_cert server "IP:127.0.0.1,DNS:localhost" ca &&
       make_cert elsewhere "DNS:elsewhere.invalid" ca &&
       make_cert client "DNS:client" ca; }; then
    echo "test_tools_secure.sh: openssl could not make the certificates" >&2
    exit 1
fi
mkdir "$tmp/sasl"
printf 'mech_list: plain\nsasldb_path: %s\n' "$tmp/sasl/db" \
    >"$tmp/sasl/memcached.conf"
for user in alice bob; do
    if ! printf 'secret-%s' "$user" |
            saslpasswd2 -a memcached -c -p -f "$tmp/sasl/db" "$user"; then
        echo "test_tools_secure.sh: saslpasswd2 failed" >&2
        exit 1
    fi
done

# ---- helpers -------------------------------------------------------------------
# Runs a tool (bounded by 30 s), stdout in $tmp/out, stderr in $tmp/err;
# sets $status.
run() {
    timeout 30 "$@" >"$tmp/out" 2>"$tmp/err"
    status=$?
}

# expect_stats WHAT PID: mcstat's last run printed general stats of PID.
expect_stats() {
    if [ "$status" = 0 ] && grep -qx "STAT pid $2" "$tmp/out"; then
        pass "$1: exit 0, STAT pid $2"
    else
        fail "$1: exit $status: $(head -c 300 "$tmp/err")"
    fi
}

# expect_result WHAT OPS: mcload's last run ended with a RESULT line of OPS
# operations and no error.
expect_result() {
    if [ "$status" = 0 ] &&
        grep -Eq "^RESULT ops=$2 .* errors=0 " "$tmp/out"; then
        pass "$1: $(grep '^RESULT' "$tmp/out" | cut -d' ' -f1-4)"
    else
        fail "$1: exit $status: $(tail -n 1 "$tmp/out") $(head -c 300 "$tmp/err")"
    fi
}

# start NAME ARGS...: starts the server with ARGS on a free port; sets
# ${NAME}_port and ${NAME}_pid.
start() {
    local name=$1
    shift
    if ! start_server "$SERVER" -l 127.0.0.1 -U 0 "${server_args[@]}" "$@" \
            >"$tmp/$name.log" 2>&1; then
        echo "test_tools_secure.sh: $SERVER $* did not start:" >&2
        cat "$tmp/$name.log" >&2
        exit 1
    fi
    printf -v "${name}_port" '%s' "$port"
    printf -v "${name}_pid" '%s' "$server_pid"
}

load=(--threads 1 --conns 2 --pipeline 8 --value-size 1024 --keys 500
      --requests 4000 --timeout 10)

# ---- SASL ----------------------------------------------------------------------
SASL_CONF_PATH="$tmp/sasl" start sasl -S -B binary
run "$MCSTAT" -p "$sasl_port" -u alice -P secret-alice
expect_stats "SASL alice, right password" "$sasl_pid"
MCSTAT_PASSWORD=secret-bob run "$MCSTAT" -p "$sasl_port" -u bob
expect_stats "SASL bob, \$MCSTAT_PASSWORD" "$sasl_pid"
run "$MCSTAT" -p "$sasl_port" -u alice -P secret-bob
expect_one_error "SASL wrong password" 3 "authentication failed for user 'alice'"
run "$MCSTAT" -p "$sasl_port" -u carol -P secret-carol
expect_one_error "SASL unknown user" 3 "authentication failed"
run "$MCSTAT" -p "$sasl_port"
expect_one_error "SASL server, no credentials" 3 "requires authentication"
run "$MCLOAD" --port "$sasl_port" --sasl-user alice --sasl-password secret-alice \
    "${load[@]}"
expect_result "mcload --sasl-user" 4000
run "$MCLOAD" --port "$sasl_port" --sasl-user alice --sasl-password wrong \
    "${load[@]}"
if [ "$status" = 1 ] && grep -q "authentication failed" "$tmp/err"; then
    pass "mcload wrong SASL password: exit 1: $(head -n 1 "$tmp/err")"
else
    fail "mcload wrong SASL password: exit $status: $(head -c 300 "$tmp/err")"
fi
# (a plaintext server for the TLS checks below)

# ---- TLS -----------------------------------------------------------------------
start tls -Z -o "ssl_chain_cert=$tmp/server.crt,ssl_key=$tmp/server.key"
run "$MCSTAT" -p "$tls_port" --tls --cafile "$tmp/ca.crt"
expect_stats "TLS by address" "$tls_pid"
run "$MCSTAT" -h "localhost:$tls_port" --tls --cafile "$tmp/ca.crt" -j
if [ "$status" = 0 ] && python3 -c '
import json, sys
assert json.load(sys.stdin)["general"]["pid"] == int(sys.argv[1])
' "$tls_pid" <"$tmp/out"; then
    pass "TLS by name (localhost), -j"
else
    fail "TLS by name: exit $status: $(head -c 300 "$tmp/err")"
fi
run "$MCSTAT" -p "$tls_port" --tls --cafile "$tmp/other-ca.crt"
expect_one_error "TLS, wrong CA" 6 "certificate verification failed: unable to get local issuer"
run "$MCSTAT" -p "$tls_port" --tls --cafile "$tmp/no-such-ca.crt"
expect_one_error "TLS, missing CA file" 6 "no-such-ca.crt: No such file"
run "$MCSTAT" -p "$sasl_port" --tls --cafile "$tmp/ca.crt"
expect_one_error "TLS against a plaintext server" 6 "TLS: handshake failed"
run "$MCLOAD" --port "$tls_port" --tls --cafile "$tmp/ca.crt" --prefill "${load[@]}"
expect_result "mcload --tls (binary)" 4000
run "$MCLOAD" --port "$tls_port" --tls --cafile "$tmp/ca.crt" --protocol text \
    "${load[@]}"
expect_result "mcload --tls (text)" 4000
run "$MCLOAD" --port "$tls_port" --tls --cafile "$tmp/other-ca.crt" "${load[@]}"
if [ "$status" = 1 ] && grep -q "certificate verification failed" "$tmp/err"; then
    pass "mcload --tls, wrong CA: exit 1"
else
    fail "mcload --tls, wrong CA: exit $status: $(head -c 300 "$tmp/err")"
fi
run "$MCSTAT" -p "$tls_port" --tls --cafile "$tmp/ca.crt" -w 0.2 -n 2
if [ "$status" = 0 ] && [ "$(grep -c 'get/s=' "$tmp/out")" = 2 ]; then
    pass "TLS watch mode: 2 lines"
else
    fail "TLS watch mode: exit $status: $(head -c 300 "$tmp/err")"
fi
stop_pid "$tls_pid"

# SASL inside TLS, as one would deploy it.
SASL_CONF_PATH="$tmp/sasl" start both -S -B binary -Z \
    -o "ssl_chain_cert=$tmp/server.crt,ssl_key=$tmp/server.key"
run "$MCSTAT" -p "$both_port" --tls --cafile "$tmp/ca.crt" -u bob \
    -P secret-bob
expect_stats "SASL over TLS" "$both_pid"
run "$MCSTAT" -p "$both_port" --tls --cafile "$tmp/ca.crt" -u bob -P nope
expect_one_error "SASL over TLS, wrong password" 3 "authentication failed"
run "$MCLOAD" --port "$both_port" --tls --cafile "$tmp/ca.crt" \
    --sasl-user bob --sasl-password secret-bob "${load[@]}"
expect_result "mcload SASL over TLS" 4000
stop_pid "$both_pid"

start name -Z -o "ssl_chain_cert=$tmp/elsewhere.crt,ssl_key=$tmp/elsewhere.key"
run "$MCSTAT" -p "$name_port" --tls --cafile "$tmp/ca.crt"
expect_one_error "TLS, certificate for another name" 6 "certificate verification failed: IP address mismatch"
run "$MCSTAT" -h "localhost:$name_port" --tls --cafile "$tmp/ca.crt"
expect_one_error "TLS, certificate for another host name" 6 "certificate verification failed: hostname mismatch"
stop_pid "$name_pid"

start mtls -Z -o "ssl_chain_cert=$tmp/server.crt,ssl_key=$tmp/server.key,ssl_verify_mode=2,ssl_ca_cert=$tmp/ca.crt"
run "$MCSTAT" -p "$mtls_port" --tls --cafile "$tmp/ca.crt"
expect_one_error "client certificate required, none given" 6 "certificate required"
run "$MCSTAT" -p "$mtls_port" --tls --cafile "$tmp/ca.crt" \
    --cert "$tmp/client.crt" --key "$tmp/client.key"
expect_stats "client certificate --cert/--key" "$mtls_pid"
stop_pid "$mtls_pid"
stop_pid "$sasl_pid"

if [ "$failures" != 0 ]; then
    echo "test_tools_secure.sh: $failures check(s) failed" >&2
    exit 1
fi
echo "test_tools_secure.sh: all checks passed"
exit 0
