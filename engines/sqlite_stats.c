/*
 * sqlite_stats.c: kvstore_ops.stats of the SQLite engine: the layout,
 * page and cache counts from SQLite, the sizes of the files, and for the
 * writer its commits, WAL and checkpoint counters (the checkpointer's read
 * under its lock).
 */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>

#include "engines/sqlite_priv.h"
#include "util/status.h"

uint64_t
sqlite_file_size(const char *path, const char *suffix)
{
    char name[4096];
    struct stat sb;

    if (snprintf(name, sizeof(name), "%s%s", path, suffix) >= (int)sizeof(name))
        return 0;
    return stat(name, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

/* Thread owning the handle. */
void
sqlite_stats(struct kvstore *kv, kvstore_stat_fn fn, void *ctx)
{
    static const struct { const char *name; const char *sql; } pragmas[] = {
        { "page_size", "PRAGMA page_size" },
        { "page_count", "PRAGMA page_count" },
        { "freelist_count", "PRAGMA freelist_count" },
    };
    static const struct { const char *name; int op; } dbstat[] = {
        { "cache_used_bytes", SQLITE_DBSTATUS_CACHE_USED },
        { "cache_hits", SQLITE_DBSTATUS_CACHE_HIT },
        { "cache_misses", SQLITE_DBSTATUS_CACHE_MISS },
        { "cache_writes", SQLITE_DBSTATUS_CACHE_WRITE },
        { "cache_spills", SQLITE_DBSTATUS_CACHE_SPILL },
    };
    int64_t v;

    fn(ctx, "engine", "sqlite");
    fn(ctx, "sqlite_version", sqlite3_libversion());
    fn(ctx, "layout", kv->tuning->name);
    for (size_t i = 0; i < sizeof(pragmas) / sizeof(pragmas[0]); i++)
        if (sqlite_query(kv, pragmas[i].sql, &v, NULL, 0) == MCKV_OK)
            kvstore_stat_u64(fn, ctx, pragmas[i].name, (uint64_t)v);
    for (size_t i = 0; i < sizeof(dbstat) / sizeof(dbstat[0]); i++) {
        int cur = 0, high = 0;

        if (sqlite3_db_status(kv->db, dbstat[i].op, &cur, &high, 0) == SQLITE_OK)
            kvstore_stat_u64(fn, ctx, dbstat[i].name, (uint64_t)cur);
    }
    kvstore_stat_u64(fn, ctx, "db_file_bytes", sqlite_file_size(kv->path, ""));
    kvstore_stat_u64(fn, ctx, "wal_file_bytes", sqlite_file_size(kv->path, "-wal"));
    if (!kv->read_only) {
        kvstore_stat_u64(fn, ctx, "wal_pages", (uint64_t)kv->wal_frames);
        kvstore_stat_u64(fn, ctx, "commits", kv->commits);
        kvstore_stat_u64(fn, ctx, "rollbacks", kv->rollbacks);
        kvstore_stat_u64(fn, ctx, "checkpoints", kv->checkpoints);
        kvstore_stat_u64(fn, ctx, "checkpoint_errors", kv->checkpoint_errors);
        kvstore_stat_u64(fn, ctx, "checkpoint_us", kv->checkpoint_us);
        kvstore_stat_u64(fn, ctx, "checkpoint_max_us", kv->checkpoint_max_us);
        kvstore_stat_u64(fn, ctx, "checkpoints_capped", kv->checkpoints_capped);
        kvstore_stat_u64(fn, ctx, "checkpoint_waits", kv->checkpoint_waits);
        kvstore_stat_u64(fn, ctx, "wal_pages_max", (uint64_t)kv->wal_frames_max);
        kvstore_stat_u64(fn, ctx, "wal_restarts", kv->wal_gen);
    }
    if (kv->ckptr != NULL) {
        struct sqlite_ckptr *c = kv->ckptr;
        uint64_t bg[4];

        pthread_mutex_lock(&c->lock);
        bg[0] = c->rounds;
        bg[1] = c->errors;
        bg[2] = c->us;
        bg[3] = c->max_us;
        pthread_mutex_unlock(&c->lock);
        kvstore_stat_u64(fn, ctx, "bg_checkpoints", bg[0]);
        kvstore_stat_u64(fn, ctx, "bg_checkpoint_errors", bg[1]);
        kvstore_stat_u64(fn, ctx, "bg_checkpoint_us", bg[2]);
        kvstore_stat_u64(fn, ctx, "bg_checkpoint_max_us", bg[3]);
    }
}
