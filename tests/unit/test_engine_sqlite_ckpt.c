/*
 * test_engine_sqlite_ckpt.c: the SQLite engine's checkpoints. With a WAL
 * threshold small enough for a test (opened through sqlite_open_tuned() of
 * engines/sqlite_priv.h), many batches keep the WAL file under its bound
 * while the checkpointer thread and the writer take turns, every row stays
 * readable, close() joins the thread and leaves nothing behind, and the
 * rows survive a reopen.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engines/kvstore.h"
#include "engines/sqlite_priv.h"
#include "tests/unit/engine_sqlite_helpers.h"
#include "util/status.h"

/* Checkpointer test: named engine statistics of a writer handle. */
struct ckpt_stats {
    uint64_t checkpoints, bg_checkpoints, bg_errors, errors, wal_restarts, wal_pages_max;
};

static void
ckpt_stat_cb(void *ctx, const char *name, const char *value)
{
    struct ckpt_stats *s = ctx;
    uint64_t v = strtoull(value, NULL, 10);

    if (strcmp(name, "checkpoints") == 0)
        s->checkpoints = v;
    else if (strcmp(name, "bg_checkpoints") == 0)
        s->bg_checkpoints = v;
    else if (strcmp(name, "bg_checkpoint_errors") == 0)
        s->bg_errors = v;
    else if (strcmp(name, "checkpoint_errors") == 0)
        s->errors = v;
    else if (strcmp(name, "wal_restarts") == 0)
        s->wal_restarts = v;
    else if (strcmp(name, "wal_pages_max") == 0)
        s->wal_pages_max = v;
}

static uint64_t
file_bytes(const char *path, const char *suffix)
{
    char name[320];
    struct stat sb;

    snprintf(name, sizeof(name), "%s%s", path, suffix);
    return stat(name, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

#define CKPT_BATCHES 400
#define CKPT_ROWS 20        /* of 1 KiB: ~4 table pages, a few index pages */

/* Many batches with a 256 KiB threshold (32 pages of 8 KiB, cap 4x): the WAL
 * restarts again and again and its file stays bounded; no row is lost on the
 * way, at close() or across a reopen. */
static void
test_checkpointer(void **state)
{
    struct sqlite_tuning t = sqlite_tuned;
    struct kvstore_options o = { 0 };
    struct kvstore *kv = NULL, *rd;
    struct ckpt_stats st = { 0 };
    char path[300], key[32];
    uint64_t page = 8192, bound, wal_max = 0;
    int rc;

    (void)state;
    t.ckpt_bytes = 256 << 10;
    t.ckpt_finish_div = 4;
    t.ckpt_cap_mul = 4;
    o.path = new_path(path, sizeof(path));
    rc = sqlite_open_tuned(&kv, &o, &t);
    if (rc != MCKV_OK)
        fprintf(stderr, "open %s: %s\n", path, sqlite_last_error(NULL));
    assert_int_equal(rc, MCKV_OK);
    assert_non_null(kv->ckptr);
    /* The cap, plus the batch that crosses it (each of its pages once, as
     * a frame of page + 24 bytes), plus the WAL header. */
    bound = (uint64_t)kv->ckpt_cap_pages * (page + 24) + 64 * (page + 24) + 32;
    for (unsigned b = 0; b < CKPT_BATCHES; b++) {
        uint64_t wal;

        assert_int_equal(write_batch(kv, b, CKPT_ROWS), MCKV_OK);
        wal = file_bytes(path, "-wal");
        wal_max = wal > wal_max ? wal : wal_max;
        if (wal > bound)
            fprintf(stderr, "batch %u: WAL %" PRIu64 " bytes, bound %" PRIu64 "\n",
                    b, wal, bound);
        assert_true(wal <= bound);
    }
    sqlite_stats(kv, ckpt_stat_cb, &st);
    /* 400 batches of ~7 pages are ~20 times the cap: the cycle ran. */
    assert_true(st.bg_checkpoints > 0);
    assert_true(st.checkpoints > 0);
    assert_true(st.wal_restarts > 0);
    assert_int_equal(st.errors, 0);
    assert_int_equal(st.bg_errors, 0);
    assert_true(st.wal_pages_max * page <= bound);
    assert_true(wal_max > 0);

    /* A read-only handle sees every row while the writer is open... */
    o.read_only = true;
    assert_int_equal(sqlite_open_tuned(&rd, &o, &t), MCKV_OK);
    assert_null(rd->ckptr);   /* only the writer has a checkpointer */
    for (unsigned b = 0; b < CKPT_BATCHES; b++)
        for (unsigned i = 0; i < CKPT_ROWS; i += 7) {
            snprintf(key, sizeof(key), "f%u-%u", b, i);
            assert_true(has_key(rd, key));
        }
    sqlite_close(rd);
    /* ...and close() joins the thread; the last connection removes the WAL. */
    sqlite_close(kv);
    assert_int_equal(file_bytes(path, "-wal"), 0);

    o.read_only = false;
    kv = open_kv(path, false);
    for (unsigned b = 0; b < CKPT_BATCHES; b++) {
        snprintf(key, sizeof(key), "f%u-%u", b, CKPT_ROWS - 1);
        assert_true(has_key(kv, key));
    }
    ops->close(kv);
}

/* close() right after commits that woke the checkpointer: it waits for the
 * round, joins, and nothing committed is lost. */
static void
test_checkpointer_close(void **state)
{
    struct sqlite_tuning t = sqlite_tuned;
    struct kvstore_options o = { 0 };
    struct kvstore *kv = NULL;
    char path[300], key[32];

    (void)state;
    t.ckpt_bytes = 64 << 10;
    o.path = new_path(path, sizeof(path));
    for (unsigned round = 0; round < 5; round++) {
        assert_int_equal(sqlite_open_tuned(&kv, &o, &t), MCKV_OK);
        for (unsigned b = 0; b < 10; b++)
            assert_int_equal(write_batch(kv, round * 10 + b, CKPT_ROWS), MCKV_OK);
        sqlite_close(kv);
    }
    kv = open_kv(path, true);
    for (unsigned b = 0; b < 50; b++) {
        snprintf(key, sizeof(key), "f%u-%u", b, CKPT_ROWS - 1);
        assert_true(has_key(kv, key));
    }
    ops->close(kv);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checkpointer),
        cmocka_unit_test(test_checkpointer_close),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
