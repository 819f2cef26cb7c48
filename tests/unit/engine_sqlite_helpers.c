/*
 * engine_sqlite_helpers.c: the storage engine tests' shared fixtures
 * (engine_sqlite_helpers.h).
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/engine_sqlite_helpers.h"
#include "util/status.h"

/* A binary testing another engine (test_engine_rocksdb.c) sets it first. */
const struct kvstore_ops *ops = &kvstore_sqlite_ops;
char test_dir[256];
static unsigned test_seq;

/* A fresh database path per call, inside the group's temporary directory. */
const char *
new_path(char *buf, size_t n)
{
    snprintf(buf, n, "%s/t%u.db", test_dir, test_seq++);
    return buf;
}

struct kvstore *
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

struct kvstore_record
make_rec(const char *key, const char *value, uint32_t flags, uint64_t cas)
{
    struct kvstore_record r = {
        .key = key, .nkey = (uint8_t)strlen(key), .flags = flags,
        .exptime = 1700000000 + cas, .cas = cas, .value = value,
        .vlen = (uint32_t)strlen(value),
    };
    return r;
}

void
put(struct kvstore *kv, const char *key, const char *value, uint32_t flags, uint64_t cas)
{
    struct kvstore_record r = make_rec(key, value, flags, cas);

    assert_int_equal(ops->put(kv, &r), MCKV_OK);
}

char *
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
int
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

bool
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
unsigned
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

/* Writes batches of `n` 1 KiB rows "f<batch>-<i>"; returns the first error. */
int
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

bool
has_key(struct kvstore *kv, const char *key)
{
    struct got g = { 0 };
    struct kvstore_record r;
    int rc = ops->get(kv, key, (uint8_t)strlen(key), got_alloc, &g, &r);

    free(g.buf);
    return rc == MCKV_OK;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int
group_setup(void **state)
{
    (void)state;
    snprintf(test_dir, sizeof(test_dir), "/tmp/test_engine_sqlite.XXXXXX");
    return mkdtemp(test_dir) != NULL ? 0 : -1;
}

int
group_teardown(void **state)
{
    (void)state;
    return nftw(test_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
