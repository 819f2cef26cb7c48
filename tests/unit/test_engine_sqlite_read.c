/*
 * test_engine_sqlite_read.c: what the SQLite engine reads beyond the
 * kvstore.h contract (engine_contract.c, run by test_engine_sqlite, has
 * the scans in chunks and the readers beside the writer): scans in ranges
 * (scan_end/scan_range, which only SQLite has), for the parallel warmup.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "engines/kvstore.h"
#include "tests/unit/engine_contract.h"
#include "tests/unit/engine_sqlite_helpers.h"
#include "util/status.h"

/* Ranges for parallel warmups: scan_end bounds every row, and ranges
 * split at any points visit each row exactly once, holes included. */
static void
test_scan_ranges(void **state)
{
    char path[300];
    struct kvstore *kv = open_kv(new_path(path, sizeof(path)), false);
    unsigned char seen[1000] = { 0 };
    struct count c = { .seen = seen, .nseen = 1000 };
    uint64_t end = 99, cursor = 0;

    (void)state;
    assert_non_null(ops->scan_end);
    assert_non_null(ops->scan_range);
    assert_int_equal(ops->scan_end(kv, &end), MCKV_OK);
    assert_int_equal(end, 0);   /* empty */
    assert_int_equal(ops->scan_range(kv, &cursor, 10, 5, count_row, &c), MCKV_ENOTFOUND);
    engine_contract_load_numbered(kv, 1000, 333);
    assert_int_equal(ops->begin(kv), MCKV_OK);
    assert_int_equal(ops->del(kv, "k00999", 6), MCKV_OK);   /* the last id */
    assert_int_equal(ops->del(kv, "k00100", 6), MCKV_OK);
    assert_int_equal(ops->commit(kv), MCKV_OK);
    assert_int_equal(ops->scan_end(kv, &end), MCKV_OK);
    assert_true(end >= 999 && end <= 1000);

    /* three uneven ranges, the last one open-ended, in chunks of 7 */
    const uint64_t cut[] = { 0, 17, 600, UINT64_MAX };
    for (unsigned r = 0; r < 3; r++) {
        unsigned before = c.rows, calls = 0;
        int rc;
        cursor = cut[r];
        while ((rc = ops->scan_range(kv, &cursor, cut[r + 1], 7, count_row, &c)) == MCKV_OK)
            assert_true(++calls < 1000);
        assert_int_equal(rc, MCKV_ENOTFOUND);
        assert_true(c.rows > before);
        assert_true(cursor <= cut[r + 1]);
    }
    assert_int_equal(c.rows, 998);
    assert_false(c.dup);
    for (unsigned i = 0; i < 1000; i++)
        assert_int_equal(seen[i], i == 100 || i == 999 ? 0 : 1);
    ops->close(kv);
}

/* A reader thread scans while the writer commits batches of 100 rows: every
 * scan must see whole batches only, and never an error. */
struct reader_arg {
    const char *path;
    _Atomic bool done;
    unsigned scans;
    unsigned torn;
    int error;
};

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_ranges),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
