/*
 * rocksdb_stats.c: kvstore_ops.stats of the RocksDB engine: a few of
 * RocksDB's own properties (keys, files, compactions, write stalls), the
 * block cache, the flush mark, and for the writer its commit counters.
 * docs/stats.md lists them under `stats engine`.
 */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "engines/rocksdb_priv.h"
#include "util/status.h"

/* Thread owning the handle (the properties are RocksDB's, thread-safe). */
void
rocks_stats(struct kvstore *kv, kvstore_stat_fn fn, void *ctx)
{
    static const struct { const char *name; const char *prop; } props[] = {
        { "estimate_num_keys", "rocksdb.estimate-num-keys" },
        { "sst_file_bytes", "rocksdb.total-sst-files-size" },
        { "memtable_bytes", "rocksdb.cur-size-all-mem-tables" },
        { "running_compactions", "rocksdb.num-running-compactions" },
        { "running_flushes", "rocksdb.num-running-flushes" },
        { "pending_compaction_bytes", "rocksdb.estimate-pending-compaction-bytes" },
        { "delayed_write_rate", "rocksdb.actual-delayed-write-rate" },
        { "write_stopped", "rocksdb.is-write-stopped" },
    };
    struct rocks_db *rdb = kv->rdb;
    char name[32];
    uint64_t v;

    fn(ctx, "engine", "rocksdb");
    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
        if (rocksdb_property_int_cf(rdb->db, rdb->cf_data, props[i].prop, &v) == 0)
            kvstore_stat_u64(fn, ctx, props[i].name, v);
    /* Files per level (a string property, not an int one): where the data
     * sits; many level-0 files mean compaction is behind. */
    for (int level = 0; level <= 6; level++) {
        char prop[48], *text;

        snprintf(prop, sizeof(prop), "rocksdb.num-files-at-level%d", level);
        snprintf(name, sizeof(name), "l%d_files", level);
        if ((text = rocksdb_property_value_cf(rdb->db, rdb->cf_data, prop)) == NULL)
            continue;
        v = strtoull(text, NULL, 10);
        rocksdb_free(text);
        if (level == 0 || v > 0)
            kvstore_stat_u64(fn, ctx, name, v);
    }
    kvstore_stat_u64(fn, ctx, "block_cache_bytes", (uint64_t)rocksdb_cache_get_usage(rdb->block_cache));
    kvstore_stat_u64(fn, ctx, "flush_epoch",
                   atomic_load_explicit(&rdb->flush_epoch, memory_order_acquire));
    kvstore_stat_u64(fn, ctx, "filtered_rows",
                   atomic_load_explicit(&rdb->filtered_rows, memory_order_relaxed));
    if (!kv->read_only) {
        kvstore_stat_u64(fn, ctx, "commits", kv->commits);
        kvstore_stat_u64(fn, ctx, "rollbacks", kv->rollbacks);
        kvstore_stat_u64(fn, ctx, "write_us", kv->write_us);
        kvstore_stat_u64(fn, ctx, "write_max_us", kv->write_max_us);
    }
}
