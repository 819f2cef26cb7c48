/*
 * test_engine_sqlite.c: unit tests of the storage engines (engines/sqlite*.c,
 * engines/memory.c, engines/kvstore.c), through the kvstore_ops tables only:
 * the writer's side and the engine table.
 *
 * The kvstore.h contract every persistent engine passes (put/get/del,
 * commit/rollback, update, flush(cas_below), reopen, scans, readers) runs
 * first, from engine_contract.c; then SQLite's own: meta, stats. Memory
 * engine: accepts writes, finds nothing. The other topics have their own binaries:
 * test_engine_sqlite_read.c (scans, readers beside the writer),
 * test_engine_sqlite_fault.c (foreign files, bad paths, a full disk) and
 * test_engine_sqlite_ckpt.c (the checkpointer); engine_sqlite_helpers.c
 * holds what they share.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engines/kvstore.h"
#include "tests/unit/engine_contract.h"
#include "tests/unit/engine_sqlite_helpers.h"
#include "util/status.h"

static void
test_meta(void **state)
{
    char path[300];
    struct kvstore *kv = open_kv(new_path(path, sizeof(path)), false);
    int64_t v = 0;

    (void)state;
    assert_int_equal(ops->get_meta(kv, "schema_version", &v), MCKV_OK);
    assert_int_equal(v, 1);
    assert_int_equal(ops->get_meta(kv, "cas", &v), MCKV_ENOTFOUND);
    assert_int_equal(ops->begin(kv), MCKV_OK);
    assert_int_equal(ops->set_meta(kv, "cas", 42), MCKV_OK);
    assert_int_equal(ops->commit(kv), MCKV_OK);
    assert_int_equal(ops->get_meta(kv, "cas", &v), MCKV_OK);
    assert_int_equal(v, 42);
    assert_int_equal(ops->begin(kv), MCKV_OK);
    assert_int_equal(ops->set_meta(kv, "cas", INT64_MAX), MCKV_OK);
    assert_int_equal(ops->commit(kv), MCKV_OK);
    assert_int_equal(ops->get_meta(kv, "cas", &v), MCKV_OK);
    assert_true(v == INT64_MAX);
    ops->close(kv);
}

struct stat_seen {
    unsigned n;
    bool engine, page_size, db_bytes, commits;
    char engine_name[16];
};

static void
stat_cb(void *ctx, const char *name, const char *value)
{
    struct stat_seen *s = ctx;

    s->n++;
    assert_non_null(value);
    if (strcmp(name, "engine") == 0) {
        s->engine = true;
        snprintf(s->engine_name, sizeof(s->engine_name), "%s", value);
    }
    if (strcmp(name, "page_size") == 0) {
        long ps = atol(value);

        s->page_size = ps >= 512 && ps <= 65536 && (ps & (ps - 1)) == 0;
    }
    s->db_bytes |= strcmp(name, "db_file_bytes") == 0 && atol(value) > 0;
    s->commits |= strcmp(name, "commits") == 0 && strcmp(value, "1") == 0;
}

static void
test_stats(void **state)
{
    char path[300];
    struct kvstore *kv = open_kv(new_path(path, sizeof(path)), false);
    struct stat_seen s = { 0 };

    (void)state;
    assert_int_equal(write_batch(kv, 1, 10), MCKV_OK);
    ops->stats(kv, stat_cb, &s);
    assert_true(s.engine && s.page_size && s.db_bytes && s.commits);
    assert_string_equal(s.engine_name, "sqlite");
    ops->close(kv);
}

static void
test_memory_engine(void **state)
{
    const struct kvstore_ops *m = kvstore_find("memory");
    struct kvstore_options o = { .path = NULL };
    struct kvstore_record r = make_rec("k", "v", 1, 1), got;
    struct kvstore *kv;
    struct count c = { 0 };
    struct got g = { 0 };
    struct stat_seen s = { 0 };
    uint64_t cursor = 0;
    int64_t v;

    (void)state;
    assert_ptr_equal(m, &kvstore_memory_ops);
    assert_ptr_equal(kvstore_find("sqlite"), &kvstore_sqlite_ops);
    assert_null(kvstore_find("nope"));
    assert_null(kvstore_find(NULL));
    assert_int_equal(m->api_version, KVSTORE_API_VERSION);
    assert_false(m->persistent);
    assert_true(kvstore_sqlite_ops.persistent);

    assert_int_equal(m->open(&kv, &o), MCKV_OK);
    assert_int_equal(m->begin(kv), MCKV_OK);
    assert_int_equal(m->put(kv, &r), MCKV_OK);
    assert_int_equal(m->del(kv, "k", 1), MCKV_OK);
    assert_int_equal(m->flush(kv, 10), MCKV_OK);
    assert_int_equal(m->set_meta(kv, "cas", 5), MCKV_OK);
    assert_int_equal(m->commit(kv), MCKV_OK);
    assert_int_equal(m->rollback(kv), MCKV_OK);
    assert_int_equal(m->get(kv, "k", 1, got_alloc, &g, &got), MCKV_ENOTFOUND);
    assert_int_equal(g.allocs, 0);
    assert_int_equal(m->scan(kv, &cursor, 10, count_row, &c), MCKV_ENOTFOUND);
    assert_int_equal(c.rows, 0);
    assert_int_equal(m->get_meta(kv, "cas", &v), MCKV_ENOTFOUND);
    m->stats(kv, stat_cb, &s);
    assert_string_equal(s.engine_name, "memory");
    assert_non_null(m->last_error(kv));
    m->close(kv);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_meta),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_memory_engine),
    };

    /* The contract every persistent engine passes, then SQLite's own. */
    int failed = engine_contract_run("engine contract: sqlite");

    return failed + cmocka_run_group_tests(tests, group_setup, group_teardown);
}
