/*
 * rocksdb_priv.h: what the files of the RocksDB engine share. The server
 * sees none of it (it opens the engine through kvstore_rocksdb_ops,
 * kvstore.h); tests/unit/test_engine_rocksdb.c includes it to look at the
 * record layout and the shared database.
 *
 * The engine, one job per file:
 *   rocksdb.c        open() and close(), the per-path registry of shared
 *                    databases, the tuning, errors, the ops table; the design
 *   rocksdb_data.c   the record layout, the flush mark and its compaction
 *                    filter, the writer's batch (begin .. rollback), get,
 *                    get_meta, scan
 *   rocksdb_stats.c  stats()
 * Every function here runs on the thread that owns the handle (kvstore.h)
 * unless its comment says otherwise.
 */
#ifndef MCKV_ENGINES_ROCKSDB_PRIV_H
#define MCKV_ENGINES_ROCKSDB_PRIV_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rocksdb/c.h>

#include "engines/kvstore.h"

/* The column family of the meta table; client keys live in "default", so
 * no client key, whatever its bytes, can collide with a meta name. */
#define ROCKS_META_CF "mckv_meta"
/* The version of the record layout and meta names, in meta. */
#define ROCKS_SCHEMA_VERSION 1
/* Engine-private meta names (mckv's own are "cas_high", "flush_at"). */
#define ROCKS_META_SCHEMA "schema_version"
#define ROCKS_META_EPOCH "engine.flush_epoch"
#define ROCKS_META_BELOW "engine.flush_below"

/* A record's value: this header, then the client's value bytes.
 *   [0]      format (ROCKS_REC_FORMAT)
 *   [1..4]   flags, little-endian
 *   [5..12]  exptime (absolute, signed)
 *   [13..20] cas
 *   [21..28] flush epoch when written (see rocksdb_data.c) */
#define ROCKS_REC_FORMAT 1
#define ROCKS_REC_HEADER 29

/* One open RocksDB per path and process (RocksDB locks its directory), shared
 * by the writer and every reader of that path, refcounted in rocksdb.c's
 * registry. The writer publishes the flush mark after each commit that
 * changed it; readers and the compaction filter (RocksDB's threads) read it. */
struct rocks_db {
    struct rocks_db *next;          /* registry list, under its mutex */
    char *path;                     /* as realpath() gives it */
    unsigned refs;                  /* handles, under the registry mutex */
    bool has_writer;
    bool opened_read_only;          /* no writer opened it: no compactions */
    rocksdb_t *db;
    rocksdb_column_family_handle_t *cf_data, *cf_meta;
    rocksdb_options_t *db_opts, *meta_opts;
    rocksdb_block_based_table_options_t *table_opts;
    rocksdb_cache_t *block_cache;
    rocksdb_filterpolicy_t *bloom;  /* owned by table_opts once set */
    rocksdb_compactionfilter_t *filter;
    /* Rows written at an epoch below flush_epoch with cas < flush_below are
     * flushed. Release after the commit that wrote them; acquire to read. */
    _Atomic uint64_t flush_epoch;
    _Atomic uint64_t flush_below;
    _Atomic uint64_t filtered_rows; /* dropped by the compaction filter */
};

struct kvstore {
    struct rocks_db *rdb;
    char *path;
    bool read_only;
    bool in_txn;
    rocksdb_writebatch_t *batch;
    rocksdb_writeoptions_t *wopts;
    rocksdb_readoptions_t *ropts;
    /* The open batch's view of the mark: flush() moves it, commit()
     * publishes it. */
    uint64_t batch_epoch;
    uint64_t batch_below;
    bool batch_flushed;
    /* Where the scan stopped (the cursor is a row count). */
    uint64_t scan_rows;
    uint8_t scan_nkey;
    char scan_key[256];
    uint64_t commits;
    uint64_t rollbacks;
    uint64_t write_us;              /* time in rocksdb_write() */
    uint64_t write_max_us;          /* the longest one: a RocksDB stall */
    char errmsg[768];
};

/* ---- rocksdb.c ---- */

/* Records "what: msg" in kv->errmsg, frees a RocksDB error string (may be
 * NULL) and returns status. */
int rocks_fail(struct kvstore *kv, int status, const char *what, char *rocks_err);

/* ---- rocksdb_data.c ---- */

/* The compaction filter of the data column family: drops flushed rows and
 * rows whose expiry has passed. Called on RocksDB's compaction threads;
 * reads only rdb's atomics. */
rocksdb_compactionfilter_t *rocks_filter_create(struct rocks_db *rdb);
/* Reads the flush mark from the meta column family into rdb (open). */
int rocks_load_mark(struct kvstore *kv);

int rocks_begin(struct kvstore *kv);
int rocks_put(struct kvstore *kv, const struct kvstore_record *rec);
int rocks_del(struct kvstore *kv, const char *key, uint8_t nkey);
int rocks_flush(struct kvstore *kv, uint64_t cas_below);
int rocks_set_meta(struct kvstore *kv, const char *name, int64_t value);
int rocks_commit(struct kvstore *kv);
int rocks_rollback(struct kvstore *kv);
int rocks_get_meta(struct kvstore *kv, const char *name, int64_t *value);
int rocks_get(struct kvstore *kv, const char *key, uint8_t nkey,
              kvstore_alloc_fn alloc, void *ctx, struct kvstore_record *rec);
int rocks_scan(struct kvstore *kv, uint64_t *cursor, unsigned max,
               kvstore_scan_fn fn, void *ctx);

/* ---- rocksdb_stats.c ---- */

void rocks_stats(struct kvstore *kv, kvstore_stat_fn fn, void *ctx);

#endif
