/*
 * engine_contract.c: what every persistent engine promises in kvstore.h,
 * through the ops table only (engine_contract.h): writes only inside
 * begin()..commit(), rollback drops the batch, updates replace, deleting a
 * missing key is fine, meta, flush(cas_below) with writes after it in the
 * same batch, reopen keeps everything, scans in chunks with a refused row,
 * readers see committed batches only (also from another thread), binary
 * keys, and a failed open leaves *kv NULL with a reason.
 */
#include <config.h>

#include "tests/unit/engine_contract.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engines/kvstore.h"
#include "tests/unit/engine_sqlite_helpers.h"
#include "util/status.h"

static void
contract_put_get(void **state)
{
    char path[300];
    struct kvstore *kv = open_kv(new_path(path, sizeof(path)), false);
    struct kvstore_record empty = make_rec("empty", "", 7, 3), r;
    struct got g = { .fail = true };

    (void)state;
    assert_int_equal(ops->put(kv, &empty), MCKV_EINVAL);  /* outside a batch */
    assert_int_equal(ops->begin(kv), MCKV_OK);
    assert_int_equal(ops->begin(kv), MCKV_EINVAL);
    put(kv, "alpha", "one", 1, 1);
    put(kv, "beta", "two two", 0xffffffffu, 2);
    assert_int_equal(ops->put(kv, &empty), MCKV_OK);
    assert_int_equal(ops->commit(kv), MCKV_OK);
    assert_int_equal(ops->commit(kv), MCKV_EINVAL);
    assert_int_equal(get_check(kv, "alpha", "one", 1), MCKV_OK);
    assert_int_equal(get_check(kv, "beta", "two two", 0xffffffffu), MCKV_OK);
    assert_int_equal(get_check(kv, "empty", "", 7), MCKV_OK);
    assert_int_equal(get_check(kv, "gamma", "", 0), MCKV_ENOTFOUND);
    assert_int_equal(get_check(kv, "alph", "", 0), MCKV_ENOTFOUND);
    assert_int_equal(ops->get(kv, "alpha", 5, got_alloc, &g, &r), MCKV_ENOMEM);
    assert_int_equal(g.allocs, 1);
    assert_int_equal(get_check(kv, "alpha", "one", 1), MCKV_OK);
    ops->close(kv);
}

/* Keys are bytes: NULs, 0xff, the longest key, and names of meta rows. */
static void
contract_binary_keys(void **state)
{
    char path[300], big[250];
    struct kvstore *kv = open_kv(new_path(path, sizeof(path)), false);
    const char k1[] = { 'a', 0, 'b' }, k2[] = { (char)0xff, (char)0xfe };
    struct kvstore_record r = make_rec("", "v", 0, 1);
    struct got g = { 0 };
    struct count c = { 0 };
    int64_t v = 0;

    (void)state;
    memset(big, 'z', sizeof(big));
    assert_int_equal(ops->begin(kv), MCKV_OK);
    r.key = k1, r.nkey = sizeof(k1);
    assert_int_equal(ops->put(kv, &r), MCKV_OK);
    r.key = k2, r.nkey = sizeof(k2), r.cas = 2, r.exptime = 1700000002;
    assert_int_equal(ops->put(kv, &r), MCKV_OK);
    r.key = big, r.nkey = sizeof(big), r.cas = 3, r.exptime = 1700000003;
    assert_int_equal(ops->put(kv, &r), MCKV_OK);
    put(kv, "schema_version", "client", 0, 4);
    put(kv, "cas_high", "client", 0, 5);
    assert_int_equal(ops->set_meta(kv, "cas_high", 77), MCKV_OK);
    assert_int_equal(ops->commit(kv), MCKV_OK);
    assert_int_equal(ops->get(kv, k1, sizeof(k1), got_alloc, &g, &r), MCKV_OK);
    assert_int_equal(ops->get(kv, k1, 1, got_alloc, &g, &r), MCKV_ENOTFOUND);
    assert_int_equal(ops->get(kv, k2, sizeof(k2), got_alloc, &g, &r), MCKV_OK);
    assert_int_equal(ops->get(kv, big, sizeof(big), got_alloc, &g, &r), MCKV_OK);
    assert_int_equal(r.nkey, 250);
    free(g.buf);
    assert_int_equal(get_check(kv, "schema_version", "client", 0), MCKV_OK);
    assert_int_equal(ops->get_meta(kv, "schema_version", &v), MCKV_OK);
    assert_int_equal(v, 1);
    assert_int_equal(ops->get_meta(kv, "cas_high", &v), MCKV_OK);
    assert_int_equal(v, 77);
    assert_int_equal(scan_all(kv, 2, &c), 5);
    ops->close(kv);
}

static void
contract_rollback(void **state)
{
    char path[300];
    struct kvstore *kv = open_kv(new_path(path, sizeof(path)), false);
    int64_t v;

    (void)state;
    assert_int_equal(ops->rollback(kv), MCKV_OK);
    assert_int_equal(ops->begin(kv), MCKV_OK);
    put(kv, "kept", "1", 0, 1);
    assert_int_equal(ops->commit(kv), MCKV_OK);
    assert_int_equal(ops->begin(kv), MCKV_OK);
    put(kv, "dropped", "2", 0, 2);
    put(kv, "kept", "changed", 0, 3);
    assert_int_equal(ops->del(kv, "kept", 4), MCKV_OK);
    assert_int_equal(ops->flush(kv, UINT64_MAX), MCKV_OK);
    assert_int_equal(ops->set_meta(kv, "cas", 99), MCKV_OK);
    assert_int_equal(ops->rollback(kv), MCKV_OK);
    assert_int_equal(get_check(kv, "dropped", "", 0), MCKV_ENOTFOUND);
    assert_int_equal(get_check(kv, "kept", "1", 0), MCKV_OK);
    assert_int_equal(ops->get_meta(kv, "cas", &v), MCKV_ENOTFOUND);
    assert_int_equal(ops->begin(kv), MCKV_OK);
    put(kv, "dropped", "2", 0, 2);
    assert_int_equal(ops->commit(kv), MCKV_OK);
    assert_int_equal(get_check(kv, "dropped", "2", 0), MCKV_OK);
    assert_int_equal(get_check(kv, "kept", "1", 0), MCKV_OK);  /* no flush happened */
    ops->close(kv);
}

static void
contract_update_del(void **state)
{
    char path[300];
    struct kvstore *kv = open_kv(new_path(path, sizeof(path)), false);
    struct count c = { 0 };

    (void)state;
    assert_int_equal(ops->begin(kv), MCKV_OK);
    put(kv, "k", "short", 1, 1);
    put(kv, "other", "x", 0, 2);
    assert_int_equal(ops->commit(kv), MCKV_OK);
    assert_int_equal(ops->begin(kv), MCKV_OK);
    put(kv, "k", "a much longer value than before", 2, 3);
    assert_int_equal(ops->commit(kv), MCKV_OK);
    assert_int_equal(get_check(kv, "k", "a much longer value than before", 2), MCKV_OK);
    assert_int_equal(scan_all(kv, 10, &c), 2);
    assert_int_equal(ops->begin(kv), MCKV_OK);
    assert_int_equal(ops->del(kv, "k", 1), MCKV_OK);
    assert_int_equal(ops->del(kv, "never-there", 11), MCKV_OK);
    assert_int_equal(ops->commit(kv), MCKV_OK);
    assert_int_equal(get_check(kv, "k", "", 0), MCKV_ENOTFOUND);
    assert_int_equal(get_check(kv, "other", "x", 0), MCKV_OK);
    ops->close(kv);
}

/* flush(cas_below) takes rows stored before it with a lower cas; rows put
 * after it in the same batch, and rows with a higher cas, stay. Twice, and
 * across a reopen. */
static void
contract_flush(void **state)
{
    char path[300], key[16];
    struct kvstore *kv = open_kv(new_path(path, sizeof(path)), false);
    struct count c = { 0 };

    (void)state;
    assert_int_equal(ops->begin(kv), MCKV_OK);
    for (unsigned i = 1; i <= 10; i++) {
        snprintf(key, sizeof(key), "key%u", i);
        put(kv, key, "v", i, i);
    }
    assert_int_equal(ops->commit(kv), MCKV_OK);
    assert_int_equal(ops->begin(kv), MCKV_OK);
    assert_int_equal(ops->flush(kv, 6), MCKV_OK);
    put(kv, "after", "v", 0, 11);
    assert_int_equal(ops->commit(kv), MCKV_OK);
    for (unsigned i = 1; i <= 10; i++) {
        snprintf(key, sizeof(key), "key%u", i);
        assert_int_equal(get_check(kv, key, "v", i), i < 6 ? MCKV_ENOTFOUND : MCKV_OK);
    }
    assert_int_equal(scan_all(kv, 3, &c), 6);
    /* A flushed key written again is back. */
    assert_int_equal(ops->begin(kv), MCKV_OK);
    put(kv, "key2", "v", 2, 12);
    assert_int_equal(ops->commit(kv), MCKV_OK);
    ops->close(kv);

    kv = open_kv(path, false);
    assert_int_equal(get_check(kv, "key1", "v", 1), MCKV_ENOTFOUND);
    assert_int_equal(get_check(kv, "key2", "v", 2), MCKV_OK);
    assert_int_equal(get_check(kv, "key7", "v", 7), MCKV_OK);
    assert_int_equal(get_check(kv, "after", "v", 0), MCKV_OK);
    assert_int_equal(ops->begin(kv), MCKV_OK);
    put(kv, "before-all", "v", 0, 13);
    assert_int_equal(ops->flush(kv, UINT64_MAX), MCKV_OK);
    put(kv, "survivor", "v", 0, 14);
    assert_int_equal(ops->commit(kv), MCKV_OK);
    c.rows = 0;
    assert_int_equal(scan_all(kv, 3, &c), 1);
    assert_int_equal(get_check(kv, "survivor", "v", 0), MCKV_OK);
    assert_int_equal(get_check(kv, "before-all", "v", 0), MCKV_ENOTFOUND);
    ops->close(kv);
}

static void
contract_reopen(void **state)
{
    char path[300];
    struct kvstore *kv = open_kv(new_path(path, sizeof(path)), false);
    int64_t v;

    (void)state;
    assert_int_equal(ops->begin(kv), MCKV_OK);
    put(kv, "persist", "me", 5, 77);
    assert_int_equal(ops->set_meta(kv, "cas", 77), MCKV_OK);
    assert_int_equal(ops->commit(kv), MCKV_OK);
    ops->close(kv);
    kv = open_kv(path, false);
    assert_int_equal(get_check(kv, "persist", "me", 5), MCKV_OK);
    assert_int_equal(ops->get_meta(kv, "cas", &v), MCKV_OK);
    assert_int_equal(v, 77);
    ops->close(kv);
    kv = open_kv(path, true);   /* a reader alone */
    assert_int_equal(get_check(kv, "persist", "me", 5), MCKV_OK);
    assert_int_equal(ops->begin(kv), MCKV_EINVAL);
    ops->close(kv);
}

void
engine_contract_load_numbered(struct kvstore *kv, unsigned n, unsigned per_batch)
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
contract_scan_chunks(void **state)
{
    char path[300];
    struct kvstore *kv = open_kv(new_path(path, sizeof(path)), false);
    unsigned char seen[1000] = { 0 };
    struct count c = { .seen = seen, .nseen = 1000 };
    uint64_t cursor = 0;

    (void)state;
    assert_int_equal(ops->scan(kv, &cursor, 10, count_row, &c), MCKV_ENOTFOUND);
    assert_int_equal(ops->scan(kv, &cursor, 0, count_row, &c), MCKV_EINVAL);
    engine_contract_load_numbered(kv, 1000, 333);
    assert_int_equal(ops->begin(kv), MCKV_OK);
    assert_int_equal(ops->del(kv, "k00500", 6), MCKV_OK);
    assert_int_equal(ops->del(kv, "k00501", 6), MCKV_OK);
    assert_int_equal(ops->commit(kv), MCKV_OK);
    c.stop_at = 45;     /* refused: comes first in the next call */
    assert_int_equal(scan_all(kv, 7, &c), 998);
    assert_false(c.dup);
    for (unsigned i = 0; i < 1000; i++)
        assert_int_equal(seen[i], i == 500 || i == 501 ? 0 : 1);
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

static void
contract_reader_isolation(void **state)
{
    char path[300];
    struct kvstore *w = open_kv(new_path(path, sizeof(path)), false);
    struct kvstore *r, *r2;
    struct count c = { 0 };
    int64_t v;

    (void)state;
    assert_int_equal(ops->begin(w), MCKV_OK);
    put(w, "a", "committed", 1, 1);
    assert_int_equal(ops->set_meta(w, "cas", 1), MCKV_OK);
    assert_int_equal(ops->commit(w), MCKV_OK);
    r = open_kv(path, true);
    r2 = open_kv(path, true);
    assert_int_equal(ops->begin(w), MCKV_OK);
    put(w, "a", "uncommitted", 2, 2);
    put(w, "b", "uncommitted", 2, 3);
    assert_int_equal(ops->set_meta(w, "cas", 3), MCKV_OK);
    assert_int_equal(get_check(r, "a", "committed", 1), MCKV_OK);
    assert_int_equal(get_check(r, "b", "", 0), MCKV_ENOTFOUND);
    assert_int_equal(scan_all(r, 10, &c), 1);
    assert_int_equal(ops->get_meta(r, "cas", &v), MCKV_OK);
    assert_int_equal(v, 1);
    assert_int_equal(ops->begin(r), MCKV_EINVAL);
    assert_int_equal(ops->commit(w), MCKV_OK);
    assert_int_equal(get_check(r, "a", "uncommitted", 2), MCKV_OK);
    assert_int_equal(get_check(r2, "b", "uncommitted", 2), MCKV_OK);
    assert_int_equal(ops->get_meta(r, "cas", &v), MCKV_OK);
    assert_int_equal(v, 3);
    ops->close(r);
    /* The writer closing first leaves the other reader working. */
    ops->close(w);
    assert_int_equal(get_check(r2, "a", "uncommitted", 2), MCKV_OK);
    ops->close(r2);
}

/* Reader threads scan and get while the writer commits batches of 100 rows:
 * each scan sees whole batches only, never an error. */
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

        last = a->done;
        rc = ops->scan(kv, &cursor, 100000, count_only, &rows);
        if (rc != MCKV_OK && rc != MCKV_ENOTFOUND) {
            a->error = rc;
            break;
        }
        if (rows % 100 != 0)
            a->torn++;
        a->scans++;
        if (last && rows != 3000)
            a->torn++;
        (void)has_key(kv, "k00000");   /* no cmocka asserts off the main thread */
    }
    ops->close(kv);
    return NULL;
}

static bool
value_any(void *ctx, const struct kvstore_record *rec)
{
    (void)ctx;
    (void)rec;
    return true;
}

static void
contract_reader_threads(void **state)
{
    char path[300];
    struct kvstore *w = open_kv(new_path(path, sizeof(path)), false);
    struct reader_arg a[2] = { { .path = path }, { .path = path } };
    pthread_t t[2];
    uint64_t cursor = 0;

    (void)state;
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader_main, &a[i]), 0);
    engine_contract_load_numbered(w, 3000, 100);
    for (int i = 0; i < 2; i++)
        a[i].done = true;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(a[i].error, MCKV_OK);
        assert_int_equal(a[i].torn, 0);
        assert_true(a[i].scans >= 1);
    }
    assert_int_equal(ops->scan(w, &cursor, 10, value_any, NULL), MCKV_OK);
    ops->close(w);
}

/* An unusable path fails with *kv NULL and a reason for this thread. */
static void
contract_bad_path(void **state)
{
    char path[400];
    struct kvstore_options o = { .path = path };
    struct kvstore *kv = (struct kvstore *)&o;

    (void)state;
    snprintf(path, sizeof(path), "%s/no/such/dir/x.db", test_dir);
    assert_true(ops->open(&kv, &o) < 0);
    assert_null(kv);
    assert_true(strlen(ops->last_error(NULL)) > 0);
    o.path = "";
    kv = (struct kvstore *)&o;
    assert_true(ops->open(&kv, &o) < 0);
    assert_null(kv);
}

const struct CMUnitTest engine_contract_tests[] = {
    cmocka_unit_test(contract_put_get),
    cmocka_unit_test(contract_binary_keys),
    cmocka_unit_test(contract_rollback),
    cmocka_unit_test(contract_update_del),
    cmocka_unit_test(contract_flush),
    cmocka_unit_test(contract_reopen),
    cmocka_unit_test(contract_scan_chunks),
    cmocka_unit_test(contract_reader_isolation),
    cmocka_unit_test(contract_reader_threads),
    cmocka_unit_test(contract_bad_path),
};
const size_t engine_contract_ntests =
    sizeof(engine_contract_tests) / sizeof(engine_contract_tests[0]);

int
engine_contract_run(const char *name)
{
    return _cmocka_run_group_tests(name, engine_contract_tests, engine_contract_ntests,
                                   group_setup, group_teardown);
}
