/*
 * memory.c: the "memory" engine (kvstore_memory_ops): no persistence.
 *
 * With it mckv is a pure cache, as memcached is: writes are accepted and
 * dropped (so the flusher's batches complete at once), reads find nothing,
 * and persistent = false tells the cache to evict instead of ejecting values
 * it could fetch back. The handle only counts what it dropped, for stats.
 */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "engines/kvstore.h"
#include "util/status.h"

struct kvstore {
    bool read_only;
    uint64_t puts;
    uint64_t dels;
    uint64_t commits;
};

static int
memory_open(struct kvstore **kv, const struct kvstore_options *opts)
{
    *kv = calloc(1, sizeof(**kv));
    if (*kv == NULL)
        return MCKV_ENOMEM;
    (*kv)->read_only = opts != NULL && opts->read_only;
    return MCKV_OK;
}

static void
memory_close(struct kvstore *kv)
{
    free(kv);
}

static int
memory_begin(struct kvstore *kv)
{
    (void)kv;
    return MCKV_OK;
}

static int
memory_put(struct kvstore *kv, const struct kvstore_record *rec)
{
    (void)rec;
    kv->puts++;
    return MCKV_OK;
}

static int
memory_del(struct kvstore *kv, const char *key, uint8_t nkey)
{
    (void)key;
    (void)nkey;
    kv->dels++;
    return MCKV_OK;
}

static int
memory_flush(struct kvstore *kv, uint64_t cas_below)
{
    (void)kv;
    (void)cas_below;
    return MCKV_OK;
}

static int
memory_set_meta(struct kvstore *kv, const char *name, int64_t value)
{
    (void)kv;
    (void)name;
    (void)value;
    return MCKV_OK;
}

static int
memory_commit(struct kvstore *kv)
{
    kv->commits++;
    return MCKV_OK;
}

static int
memory_rollback(struct kvstore *kv)
{
    (void)kv;
    return MCKV_OK;
}

static int
memory_get_meta(struct kvstore *kv, const char *name, int64_t *value)
{
    (void)kv;
    (void)name;
    (void)value;
    return MCKV_ENOTFOUND;
}

static int
memory_get(struct kvstore *kv, const char *key, uint8_t nkey,
           kvstore_alloc_fn alloc, void *ctx, struct kvstore_record *rec)
{
    (void)kv;
    (void)key;
    (void)nkey;
    (void)alloc;
    (void)ctx;
    (void)rec;
    return MCKV_ENOTFOUND;
}

static int
memory_scan(struct kvstore *kv, uint64_t *cursor, unsigned max,
            kvstore_scan_fn fn, void *ctx)
{
    (void)kv;
    (void)cursor;
    (void)max;
    (void)fn;
    (void)ctx;
    return MCKV_ENOTFOUND;
}

static void
memory_stat_u64(kvstore_stat_fn fn, void *ctx, const char *name, uint64_t v)
{
    char buf[24];

    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    fn(ctx, name, buf);
}

static void
memory_stats(struct kvstore *kv, kvstore_stat_fn fn, void *ctx)
{
    fn(ctx, "engine", "memory");
    memory_stat_u64(fn, ctx, "puts_dropped", kv->puts);
    memory_stat_u64(fn, ctx, "dels_dropped", kv->dels);
    memory_stat_u64(fn, ctx, "commits", kv->commits);
}

/* Nothing fails here but open() (out of memory), also for a NULL handle. */
static const char *
memory_last_error(struct kvstore *kv)
{
    return kv != NULL ? "" : "memory engine: out of memory";
}

const struct kvstore_ops kvstore_memory_ops = {
    .api_version = KVSTORE_API_VERSION,
    .name = "memory",
    .persistent = false,
    .open = memory_open,
    .close = memory_close,
    .begin = memory_begin,
    .put = memory_put,
    .del = memory_del,
    .flush = memory_flush,
    .set_meta = memory_set_meta,
    .commit = memory_commit,
    .rollback = memory_rollback,
    .get_meta = memory_get_meta,
    .get = memory_get,
    .scan = memory_scan,
    .stats = memory_stats,
    .last_error = memory_last_error,
};
