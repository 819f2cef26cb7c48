#!/bin/sh
# tests/persist/test_restart.py again, with engine = rocksdb (mckvtest.ENGINE).
MCKV_ENGINE=rocksdb exec python3 "$TOP_SRCDIR/tests/persist/test_restart.py"
