/*
 * test_engine_sqlite.c: unit tests of the storage engines (engines/sqlite.c,
 * engines/memory.c, engines/kvstore.c), through the kvstore_ops tables only.
 *
 * SQLite: put/get/del/commit/rollback, update of an existing key, meta,
 * flush(cas_below), scan in chunks (every row once, early stop), a read-only
 * handle sees committed rows but not the writer's open transaction (also from
 * another thread while batches commit: it only ever sees whole batches),
 * reopen keeps data, foreign or newer files are refused, and the error paths:
 * a missing directory, a write-protected file, and a disk that fills up in
 * the middle of a transaction (RLIMIT_FSIZE in a child process) after which
 * rollback() and a retry work. Memory engine: accepts writes, finds nothing.
 *
 * Checkpoints: with a WAL threshold small enough for a test (opened through
 * sqlite_open_tuned() of engines/sqlite_priv.h), many
 * batches keep the WAL file under its bound while the checkpointer thread
 * and the writer take turns, every row stays readable, close() joins the
 * thread and leaves nothing behind, and the rows survive a reopen.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "engines/kvstore.h"
#include "engines/sqlite_priv.h"
#include "util/status.h"

/* The engine under test. */
static const struct kvstore_ops *ops = &kvstore_sqlite_ops;
static char test_dir[256];
static unsigned test_seq;

/* A fresh database path per call, inside the group's temporary directory. */
static const char *
new_path(char *buf, size_t n)
{
    snprintf(buf, n, "%s/t%u.db", test_dir, test_seq++);
    return buf;
}

static struct kvstore *
open_kv(const char *path, bool read_only)
{
    struct kvstore_options o = { .path = path, .read_only = read_only };
    struct kvstore *kv = NULL;
    int rc = ops->open(&kv, &o);

    if (rc != MCKV_OK)
        fprintf(stderr, "open %s: %s\n", path, ops->last_error(NULL));
    assert_int_equal(rc, MCKV_OK);
    assert_non_null(kv);
    return kv;
}

static struct kvstore_record
make_rec(const char *key, const char *value, uint32_t flags, uint64_t cas)
{
    struct kvstore_record r = {
        .key = key, .nkey = (uint8_t)strlen(key), .flags = flags,
        .exptime = 1700000000 + cas, .cas = cas, .value = value,
        .vlen = (uint32_t)strlen(value),
    };
    return r;
}

static void
put(struct kvstore *kv, const char *key, const char *value, uint32_t flags, uint64_t cas)
{
    struct kvstore_record r = make_rec(key, value, flags, cas);

    assert_int_equal(ops->put(kv, &r), MCKV_OK);
}

/* get() target: a malloc'd buffer per call, freed by the test. */
struct got {
    char *buf;
    unsigned allocs;
    bool fail;
};

static char *
got_alloc(void *ctx, const struct kvstore_record *rec)
{
    struct got *g = ctx;

    g->allocs++;
    if (g->fail)
        return NULL;
    free(g->buf);
    g->buf = malloc(rec->vlen + 1);
    return g->buf;
}

/* Returns get()'s status; on success checks the value text and flags. */
static int
get_check(struct kvstore *kv, const char *key, const char *value, uint32_t flags)
{
    struct got g = { 0 };
    struct kvstore_record r;
    int rc = ops->get(kv, key, (uint8_t)strlen(key), got_alloc, &g, &r);

    if (rc == MCKV_OK) {
        assert_int_equal(g.allocs, 1);
        assert_ptr_equal(r.value, g.buf);
        assert_int_equal(r.nkey, strlen(key));
        assert_memory_equal(r.key, key, r.nkey);
        assert_int_equal(r.vlen, strlen(value));
        assert_memory_equal(r.value, value, r.vlen);
        assert_int_equal(r.flags, flags);
        assert_int_equal(r.exptime, 1700000000 + (int64_t)r.cas);
    }
    free(g.buf);
    return rc;
}

struct count {
    unsigned rows;
    unsigned stop_at;       /* return false on this row (1-based); 0 = never */
    unsigned char *seen;    /* per key number "k%05u" */
    unsigned nseen;
    bool dup;
};

static bool
count_row(void *ctx, const struct kvstore_record *rec)
{
    struct count *c = ctx;
    unsigned n;

    if (c->stop_at != 0 && c->rows + 1 == c->stop_at) {
        c->stop_at = 0;
        return false;
    }
    c->rows++;
    if (c->seen != NULL && rec->nkey == 6 && sscanf(rec->key, "k%5u", &n) == 1 && n < c->nseen) {
        if (c->seen[n]++)
            c->dup = true;
        assert_int_equal(rec->vlen, 100 + n % 50);
        assert_int_equal(rec->flags, n);
    }
    return true;
}

/* Scans everything in chunks of `max`; returns the number of rows. */
static unsigned
scan_all(struct kvstore *kv, unsigned max, struct count *c)
{
    uint64_t cursor = 0;
    unsigned calls = 0;
    int rc;

    while ((rc = ops->scan(kv, &cursor, max, count_row, c)) == MCKV_OK)
        assert_true(++calls < 100000);
    assert_int_equal(rc, MCKV_ENOTFOUND);
    return c->rows;
}

static void
test_put_get_commit(void **state)
{
    char path[300];
    struct kvstore *kv = open_kv(new_path(path, sizeof(path)), false);
    struct kvstore_record empty = make_rec("empty", "", 7, 3);
    struct got g = { .fail = true };
    struct kvstore_record r;

    (void)state;
    assert_int_equal(ops->begin(kv), MCKV_OK);
    assert_int_equal(ops->begin(kv), MCKV_EINVAL);   /* already open */
    put(kv, "alpha", "one", 1, 1);
    put(kv, "beta", "two two", 0xffffffffu, 2);
    assert_int_equal(ops->put(kv, &empty), MCKV_OK);
    assert_int_equal(ops->commit(kv), MCKV_OK);
    assert_int_equal(ops->commit(kv), MCKV_EINVAL);  /* nothing open */

    assert_int_equal(get_check(kv, "alpha", "one", 1), MCKV_OK);
    assert_int_equal(get_check(kv, "beta", "two two", 0xffffffffu), MCKV_OK);
    assert_int_equal(get_check(kv, "empty", "", 7), MCKV_OK);
    assert_int_equal(get_check(kv, "gamma", "", 0), MCKV_ENOTFOUND);
    assert_int_equal(get_check(kv, "alph", "", 0), MCKV_ENOTFOUND);
    /* The alloc callback failing is ENOMEM, and the handle still works. */
    assert_int_equal(ops->get(kv, "alpha", 5, got_alloc, &g, &r), MCKV_ENOMEM);
    assert_int_equal(g.allocs, 1);
    assert_int_equal(get_check(kv, "alpha", "one", 1), MCKV_OK);
    ops->close(kv);
}

static void
test_rollback(void **state)
{
    char path[300];
    struct kvstore *kv = open_kv(new_path(path, sizeof(path)), false);

    (void)state;
    assert_int_equal(ops->rollback(kv), MCKV_OK);    /* nothing open: fine */
    assert_int_equal(ops->begin(kv), MCKV_OK);
    put(kv, "kept", "1", 0, 1);
    assert_int_equal(ops->commit(kv), MCKV_OK);
    assert_int_equal(ops->begin(kv), MCKV_OK);
    put(kv, "dropped", "2", 0, 2);
    put(kv, "kept", "changed", 0, 3);
    assert_int_equal(ops->del(kv, "kept", 4), MCKV_OK);
    assert_int_equal(ops->set_meta(kv, "cas", 99), MCKV_OK);
    assert_int_equal(ops->rollback(kv), MCKV_OK);
    assert_int_equal(get_check(kv, "dropped", "", 0), MCKV_ENOTFOUND);
    assert_int_equal(get_check(kv, "kept", "1", 0), MCKV_OK);
    int64_t v;
    assert_int_equal(ops->get_meta(kv, "cas", &v), MCKV_ENOTFOUND);
    /* A new transaction works after the rollback. */
    assert_int_equal(ops->begin(kv), MCKV_OK);
    put(kv, "dropped", "2", 0, 2);
    assert_int_equal(ops->commit(kv), MCKV_OK);
    assert_int_equal(get_check(kv, "dropped", "2", 0), MCKV_OK);
    ops->close(kv);
}

static void
test_update_and_del(void **state)
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
    assert_int_equal(scan_all(kv, 10, &c), 2);   /* updated in place, not added */

    assert_int_equal(ops->begin(kv), MCKV_OK);
    assert_int_equal(ops->del(kv, "k", 1), MCKV_OK);
    assert_int_equal(ops->del(kv, "never-there", 11), MCKV_OK);
    assert_int_equal(ops->commit(kv), MCKV_OK);
    assert_int_equal(get_check(kv, "k", "", 0), MCKV_ENOTFOUND);
    assert_int_equal(get_check(kv, "other", "x", 0), MCKV_OK);
    ops->close(kv);
}

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

static void
test_flush_cas_below(void **state)
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
    assert_int_equal(ops->commit(kv), MCKV_OK);
    for (unsigned i = 1; i <= 10; i++) {
        snprintf(key, sizeof(key), "key%u", i);
        assert_int_equal(get_check(kv, key, "v", i), i < 6 ? MCKV_ENOTFOUND : MCKV_OK);
    }
    assert_int_equal(scan_all(kv, 3, &c), 5);
    assert_int_equal(ops->begin(kv), MCKV_OK);
    assert_int_equal(ops->flush(kv, UINT64_MAX), MCKV_OK);   /* everything */
    assert_int_equal(ops->commit(kv), MCKV_OK);
    c.rows = 0;
    assert_int_equal(scan_all(kv, 3, &c), 0);
    ops->close(kv);
}

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

static void
test_reopen(void **state)
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
    kv = open_kv(path, true);
    assert_int_equal(get_check(kv, "persist", "me", 5), MCKV_OK);
    ops->close(kv);
}

static void
raw_sql(const char *path, const char *sql)
{
    sqlite3 *db;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void
test_foreign_files(void **state)
{
    char path[300];
    struct kvstore_options o = { .path = path };
    struct kvstore *kv = (struct kvstore *)&o;
    FILE *f;

    (void)state;
    raw_sql(new_path(path, sizeof(path)), "CREATE TABLE other(x)");
    assert_int_equal(ops->open(&kv, &o), MCKV_EINVAL);
    assert_null(kv);
    assert_non_null(strstr(ops->last_error(NULL), "not an mckv database"));

    kv = open_kv(new_path(path, sizeof(path)), false);
    ops->close(kv);
    raw_sql(path, "UPDATE meta SET value = 99 WHERE name = 'schema_version'");
    assert_int_equal(ops->open(&kv, &o), MCKV_EINVAL);
    assert_non_null(strstr(ops->last_error(NULL), "schema_version is 99"));
    o.read_only = true;
    assert_int_equal(ops->open(&kv, &o), MCKV_EINVAL);
    o.read_only = false;

    f = fopen(new_path(path, sizeof(path)), "w");
    assert_non_null(f);
    for (int i = 0; i < 200; i++)
        fputs("this is not a database file. ", f);
    fclose(f);
    assert_int_equal(ops->open(&kv, &o), MCKV_EIO);
    assert_null(kv);
}

static void
test_bad_paths(void **state)
{
    char path[300];
    struct kvstore_options o = { .path = path };
    struct kvstore *kv;

    (void)state;
    snprintf(path, sizeof(path), "%s/no/such/dir/x.db", test_dir);
    assert_int_equal(ops->open(&kv, &o), MCKV_EIO);
    assert_null(kv);
    assert_non_null(strstr(ops->last_error(NULL), "x.db"));
    /* A reader never creates the file. */
    o.read_only = true;
    assert_int_equal(ops->open(&kv, &o), MCKV_EIO);
    new_path(path, sizeof(path));
    assert_int_equal(ops->open(&kv, &o), MCKV_EIO);
    assert_int_equal(access(path, F_OK), -1);
    o.path = NULL;
    assert_int_equal(ops->open(&kv, &o), MCKV_EINVAL);
}

/* Child-process checks: a failed check exits with its line number. */
#define CHILD_CHECK(cond) do { \
        if (!(cond)) { fprintf(stderr, "child check failed line %d: %s (%s)\n", \
                               __LINE__, #cond, ops->last_error(kv)); _exit(1); } \
    } while (0)

static int
wait_child(pid_t pid)
{
    int status;

    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* root ignores file modes, so the open runs as nobody in a child. */
static void
test_read_only_file(void **state)
{
    char path[300];
    struct kvstore *kv = open_kv(new_path(path, sizeof(path)), false);
    pid_t pid;

    (void)state;
    ops->close(kv);
    assert_int_equal(chmod(path, 0444), 0);
    assert_int_equal(chmod(test_dir, 0755), 0);
    pid = fork();
    if (pid == 0) {
        struct kvstore_options o = { .path = path };

        kv = NULL;
        if (geteuid() == 0 && setuid(65534) != 0)
            _exit(2);
        CHILD_CHECK(ops->open(&kv, &o) == MCKV_EIO);
        CHILD_CHECK(kv == NULL);
        CHILD_CHECK(strstr(ops->last_error(NULL), "read-only") != NULL);
        _exit(0);
    }
    assert_int_equal(wait_child(pid), 0);
    assert_int_equal(chmod(test_dir, 0700), 0);
}

/* Writes batches of `n` 1 KiB rows "f<batch>-<i>"; returns the first error. */
static int
write_batch(struct kvstore *kv, unsigned batch, unsigned n)
{
    char key[32], value[1024];
    int rc;

    memset(value, 'a' + batch % 26, sizeof(value));
    if ((rc = ops->begin(kv)) < 0)
        return rc;
    for (unsigned i = 0; i < n; i++) {
        struct kvstore_record r = {
            .key = key, .flags = batch, .cas = batch * 10000 + i,
            .value = value, .vlen = sizeof(value),
        };

        r.nkey = (uint8_t)snprintf(key, sizeof(key), "f%u-%u", batch, i);
        if ((rc = ops->put(kv, &r)) < 0)
            return rc;
    }
    return ops->commit(kv);
}

static bool
has_key(struct kvstore *kv, const char *key)
{
    struct got g = { 0 };
    struct kvstore_record r;
    int rc = ops->get(kv, key, (uint8_t)strlen(key), got_alloc, &g, &r);

    free(g.buf);
    return rc == MCKV_OK;
}

/* The file size limit makes the next WAL write fail (EFBIG, an I/O error to
 * SQLite) in the middle of a transaction: at commit with a big page cache,
 * at a put (cache spill) with a small one. */
static void
disk_full_child(const char *path, uint64_t cache_kb)
{
    struct kvstore_options o = { .path = path, .cache_kb = cache_kb };
    struct kvstore *kv = NULL;
    struct stat sb;
    struct rlimit lim;
    int rc;

    signal(SIGXFSZ, SIG_IGN);
    CHILD_CHECK(ops->open(&kv, &o) == MCKV_OK);
    CHILD_CHECK(write_batch(kv, 1, 100) == MCKV_OK);
    CHILD_CHECK(stat(path, &sb) == 0);
    char wal[320];
    struct stat wb;
    snprintf(wal, sizeof(wal), "%s-wal", path);
    CHILD_CHECK(stat(wal, &wb) == 0);
    CHILD_CHECK(getrlimit(RLIMIT_FSIZE, &lim) == 0);
    lim.rlim_cur = (rlim_t)(wb.st_size > sb.st_size ? wb.st_size : sb.st_size) + 65536;
    CHILD_CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);

    rc = write_batch(kv, 2, 2000);
    CHILD_CHECK(rc == MCKV_EIO);
    CHILD_CHECK(strlen(ops->last_error(kv)) > 0);
    CHILD_CHECK(ops->rollback(kv) == MCKV_OK);
    /* Still "full": the retry fails the same way and rolls back again. */
    CHILD_CHECK(write_batch(kv, 2, 2000) == MCKV_EIO);
    CHILD_CHECK(ops->rollback(kv) == MCKV_OK);
    CHILD_CHECK(has_key(kv, "f1-99"));
    CHILD_CHECK(!has_key(kv, "f2-0"));

    lim.rlim_cur = lim.rlim_max;
    CHILD_CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    CHILD_CHECK(write_batch(kv, 2, 2000) == MCKV_OK);
    CHILD_CHECK(has_key(kv, "f2-1999"));
    ops->close(kv);

    kv = NULL;
    CHILD_CHECK(ops->open(&kv, &o) == MCKV_OK);
    CHILD_CHECK(has_key(kv, "f1-0") && has_key(kv, "f2-0") && has_key(kv, "f2-1999"));
    ops->close(kv);
    _exit(0);
}

static void
test_disk_full(void **state)
{
    char path[300];
    pid_t pid;

    (void)state;
    new_path(path, sizeof(path));
    if ((pid = fork()) == 0)
        disk_full_child(path, 0);           /* fails at commit */
    assert_int_equal(wait_child(pid), 0);
    new_path(path, sizeof(path));
    if ((pid = fork()) == 0)
        disk_full_child(path, 64);          /* fails at a put: cache spill */
    assert_int_equal(wait_child(pid), 0);
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

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int
group_setup(void **state)
{
    (void)state;
    snprintf(test_dir, sizeof(test_dir), "/tmp/test_engine_sqlite.XXXXXX");
    return mkdtemp(test_dir) != NULL ? 0 : -1;
}

static int
group_teardown(void **state)
{
    (void)state;
    return nftw(test_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_commit),
        cmocka_unit_test(test_rollback),
        cmocka_unit_test(test_update_and_del),
        cmocka_unit_test(test_meta),
        cmocka_unit_test(test_flush_cas_below),
        cmocka_unit_test(test_scan_chunks),
        cmocka_unit_test(test_scan_ranges),
        cmocka_unit_test(test_reader_isolation),
        cmocka_unit_test(test_reader_thread),
        cmocka_unit_test(test_reopen),
        cmocka_unit_test(test_foreign_files),
        cmocka_unit_test(test_bad_paths),
        cmocka_unit_test(test_read_only_file),
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_checkpointer),
        cmocka_unit_test(test_checkpointer_close),
        cmocka_unit_test(test_memory_engine),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
