#!/bin/bash
# test_tools_secure_mckvd.sh: test_tools_secure.sh's checks against mckvd
# instead of memcached: mcstat and mcload authenticate with SASL (-S) and
# speak TLS (-Z, client certificates, SASL inside TLS) to mckvd started
# with memcached's own flags. Skipped (77) in a build without TLS or SASL.
set -u
MCKVD=${MCKVD:-./mckvd}
if ! "$MCKVD" -h 2>/dev/null | grep -q enable-ssl ||
   ! "$MCKVD" -h 2>/dev/null | grep -qi sasl; then
    echo "test_tools_secure_mckvd.sh: mckvd built without TLS or SASL: skip"
    exit 77
fi
SECURE_SERVER=$MCKVD SECURE_SERVER_ARGS="--engine=memory --large-pages=no" \
    exec bash "$(dirname "$0")/test_tools_secure.sh"
