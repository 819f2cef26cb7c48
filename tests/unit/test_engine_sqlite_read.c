/*
 * test_engine_sqlite_read.c: reads of the SQLite engine, through
 * kvstore_sqlite_ops: scan in chunks (every row once, early stop) and in
 * ranges, and a read-only handle that sees committed rows but not the
 * writer's open transaction (also from another thread while batches commit:
 * it only ever sees whole batches).
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
#include "tests/unit/engine_sqlite_helpers.h"
#include "util/status.h"

/* 1000 rows "k00000".."k00999" with value length 100 + n % 50, flags n. */
static void
load_numbered(struct kvstore *kv, unsigned n, unsigned per_batch)
{
    char key[16], value[160];

    memset(value, 'v', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    for (unsigned i = 0; i < n; i++) {
        struct kvstore_record r;

        if (i % per_batch == 0)
            assert_int_equal(ops->begin(kv), MCKV_OK);
        snprintf(key, sizeof(key), "k%05u", i % 100000);
        r = make_rec(key, value, i, i + 1);
        r.vlen = 100 + i % 50;
        assert_int_equal(ops->put(kv, &r), MCKV_OK);
        if (i % per_batch == per_batch - 1 || i == n - 1)
            assert_int_equal(ops->commit(kv), MCKV_OK);
    }
}

static void
test_scan_chunks(void **state)
{
    char path[300];
    struct kvstore *kv = open_kv(new_path(path, sizeof(path)), false);
    unsigned char seen[1000] = { 0 };
    struct count c = { .seen = seen, .nseen = 1000 };
    uint64_t cursor = 0;

    (void)state;
    assert_int_equal(ops->scan(kv, &cursor, 10, count_row, &c), MCKV_ENOTFOUND);  /* empty */
    assert_int_equal(ops->scan(kv, &cursor, 0, count_row, &c), MCKV_EINVAL);
    load_numbered(kv, 1000, 333);
    /* Deleting some rows leaves holes the cursor must step over. */
    assert_int_equal(ops->begin(kv), MCKV_OK);
    assert_int_equal(ops->del(kv, "k00500", 6), MCKV_OK);
    assert_int_equal(ops->del(kv, "k00501", 6), MCKV_OK);
    assert_int_equal(ops->commit(kv), MCKV_OK);

    /* Chunks of 7 that do not divide 998, and a consumer that refuses one row
     * in the middle of a chunk: that row comes first in the next call. */
    c.stop_at = 45;
    assert_int_equal(scan_all(kv, 7, &c), 998);
    assert_false(c.dup);
    for (unsigned i = 0; i < 1000; i++)
        assert_int_equal(seen[i], i == 500 || i == 501 ? 0 : 1);

    /* One call per row, and a chunk larger than the table. */
    memset(seen, 0, sizeof(seen));
    c.rows = 0;
    assert_int_equal(scan_all(kv, 1, &c), 998);
    c.rows = 0;
    cursor = 0;
    assert_int_equal(ops->scan(kv, &cursor, 5000, count_row, &c), MCKV_OK);
    assert_int_equal(c.rows, 998);
    assert_int_equal(ops->scan(kv, &cursor, 5000, count_row, &c), MCKV_ENOTFOUND);
    ops->close(kv);
}

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
    load_numbered(kv, 1000, 333);
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

static void
test_reader_isolation(void **state)
{
    char path[300];
    struct kvstore *w = open_kv(new_path(path, sizeof(path)), false);
    struct kvstore *r;
    struct count c = { 0 };
    int64_t v;

    (void)state;
    assert_int_equal(ops->begin(w), MCKV_OK);
    put(w, "a", "committed", 1, 1);
    assert_int_equal(ops->set_meta(w, "cas", 1), MCKV_OK);
    assert_int_equal(ops->commit(w), MCKV_OK);
    r = open_kv(path, true);

    assert_int_equal(ops->begin(w), MCKV_OK);
    put(w, "a", "uncommitted", 2, 2);
    put(w, "b", "uncommitted", 2, 3);
    assert_int_equal(ops->set_meta(w, "cas", 3), MCKV_OK);
    /* The writer sees its own transaction, the reader only committed data. */
    assert_int_equal(get_check(w, "b", "uncommitted", 2), MCKV_OK);
    assert_int_equal(get_check(r, "a", "committed", 1), MCKV_OK);
    assert_int_equal(get_check(r, "b", "", 0), MCKV_ENOTFOUND);
    assert_int_equal(scan_all(r, 10, &c), 1);
    assert_int_equal(ops->get_meta(r, "cas", &v), MCKV_OK);
    assert_int_equal(v, 1);
    /* Reader handles refuse writes. */
    assert_int_equal(ops->begin(r), MCKV_EINVAL);
    assert_int_equal(ops->commit(w), MCKV_OK);

    assert_int_equal(get_check(r, "a", "uncommitted", 2), MCKV_OK);
    assert_int_equal(get_check(r, "b", "uncommitted", 2), MCKV_OK);
    assert_int_equal(ops->get_meta(r, "cas", &v), MCKV_OK);
    assert_int_equal(v, 3);
    ops->close(r);
    ops->close(w);
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

static bool
count_only(void *ctx, const struct kvstore_record *rec)
{
    (void)rec;
    (*(unsigned *)ctx)++;
    return true;
}

static void *
reader_main(void *p)
{
    struct reader_arg *a = p;
    struct kvstore_options o = { .path = a->path, .read_only = true };
    struct kvstore *kv;
    bool last = false;

    if ((a->error = ops->open(&kv, &o)) < 0)
        return NULL;
    while (!last) {
        unsigned rows = 0;
        uint64_t cursor = 0;
        int rc;

        last = a->done;  /* one more scan after the writer finished */
        rc = ops->scan(kv, &cursor, 100000, count_only, &rows);
        if (rc != MCKV_OK && rc != MCKV_ENOTFOUND) {
            a->error = rc;
            break;
        }
        if (rows % 100 != 0)
            a->torn++;
        a->scans++;
        if (last && rows != 5000)
            a->torn++;
    }
    ops->close(kv);
    return NULL;
}

static void
test_reader_thread(void **state)
{
    char path[300];
    struct kvstore *w = open_kv(new_path(path, sizeof(path)), false);
    struct reader_arg a = { .path = path };
    pthread_t t;

    (void)state;
    assert_int_equal(pthread_create(&t, NULL, reader_main, &a), 0);
    load_numbered(w, 5000, 100);
    a.done = true;
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(a.error, MCKV_OK);
    assert_int_equal(a.torn, 0);
    assert_true(a.scans >= 1);
    ops->close(w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_chunks),
        cmocka_unit_test(test_scan_ranges),
        cmocka_unit_test(test_reader_isolation),
        cmocka_unit_test(test_reader_thread),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
