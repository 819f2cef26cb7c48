/*
 * kvstore.h: the pluggable storage engine interface.
 *
 * An engine is a versioned table of function pointers (struct kvstore_ops).
 * Only the flusher thread writes through it (one read-write handle) and only
 * fetcher threads read through it (one read-only handle each); an engine
 * knows nothing of connections, protocols or the cache. Every function
 * returns MCKV_OK (0) or a negative mckv_status (util/status.h);
 * kvstore_ops.strerror-style detail goes to the engine's last_error().
 * MCKV_ECORRUPT from any call means the stored data is damaged (not a
 * passing error): the server stops writing through the engine
 * (server/engine_health.h).
 *
 * A handle belongs to one thread at a time (stats() included). Writes
 * outside begin()..commit(), a second begin() or a commit() with nothing
 * open return MCKV_EINVAL; rollback() with nothing open returns MCKV_OK (the
 * engine may already have rolled back after a disk error); deleting a
 * missing key is MCKV_OK. A failed open() leaves *kv NULL and
 * last_error(NULL) holds its reason for the calling thread. Read-only
 * handles open after the writer has created the database. Whether a read
 * on the writer handle sees its own open transaction is the engine's
 * (SQLite: yes; RocksDB: no, the batch is applied at commit): the server
 * never reads through the writer while a transaction is open.
 *
 * Records hold absolute unix expiry times (0 = never) so a database stays
 * meaningful across restarts, and the CAS of the write, so CAS keeps growing
 * after a restart (the engine's meta table keeps the high mark).
 */
#ifndef MCKV_ENGINES_KVSTORE_H
#define MCKV_ENGINES_KVSTORE_H

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define KVSTORE_API_VERSION 2

struct kvstore;   /* an engine's private handle */

struct kvstore_record {
    const char *key;
    uint8_t nkey;
    uint32_t flags;
    int64_t exptime;        /* absolute unix time, 0 = never */
    uint64_t cas;
    const char *value;
    uint32_t vlen;
};

struct kvstore_options {
    const char *path;       /* database file (sqlite) or directory (rocksdb);
                               its parent directory exists */
    bool read_only;         /* fetcher handles */
    bool synchronous_full;  /* sqlite_synchronous = full (else normal) */
    uint64_t cache_kb;      /* page cache size hint, KiB (0 = engine default) */
};

/* Called by get() once the size of the value is known: returns where to
 * write vlen bytes (NULL: out of memory, get returns MCKV_ENOMEM). `rec`
 * holds everything but the value. */
typedef char *(*kvstore_alloc_fn)(void *ctx, const struct kvstore_record *rec);

/* Called by scan() for each row; rec->value points into engine memory valid
 * only during the call. Return false to stop early. */
typedef bool (*kvstore_scan_fn)(void *ctx, const struct kvstore_record *rec);

/* Called by stats() for each engine statistic. */
typedef void (*kvstore_stat_fn)(void *ctx, const char *name, const char *value);

/* For engines' stats(): reports an unsigned counter through fn. */
static inline void
kvstore_stat_u64(kvstore_stat_fn fn, void *ctx, const char *name, uint64_t v)
{
    char buf[24];

    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    fn(ctx, name, buf);
}

struct kvstore_ops {
    unsigned api_version;   /* KVSTORE_API_VERSION */
    const char *name;       /* "sqlite", "memory", "rocksdb" */
    bool persistent;        /* false: nothing survives a restart */

    int (*open)(struct kvstore **kv, const struct kvstore_options *opts);
    void (*close)(struct kvstore *kv);

    /* Writes: flusher thread only, between begin() and commit(). */
    int (*begin)(struct kvstore *kv);
    int (*put)(struct kvstore *kv, const struct kvstore_record *rec);
    int (*del)(struct kvstore *kv, const char *key, uint8_t nkey);
    /* Deletes every row whose cas < cas_below (flush_all). */
    int (*flush)(struct kvstore *kv, uint64_t cas_below);
    /* Small named integers in the meta table (schema version, CAS mark). */
    int (*set_meta)(struct kvstore *kv, const char *name, int64_t value);
    int (*commit)(struct kvstore *kv);
    /* Abandons the open transaction (after a failed put or commit). */
    int (*rollback)(struct kvstore *kv);

    /* Reads: any handle. */
    int (*get_meta)(struct kvstore *kv, const char *name, int64_t *value);
    /* MCKV_ENOTFOUND when absent; else fills *rec (value written through
     * alloc, rec->value points at it). */
    int (*get)(struct kvstore *kv, const char *key, uint8_t nkey,
               kvstore_alloc_fn alloc, void *ctx, struct kvstore_record *rec);
    /* Visits rows in storage order starting after *cursor (0 = start), at
     * most `max` rows per call; *cursor is updated so the next call goes
     * on (a row whose callback returned false is not consumed: the next
     * call starts with it). Returns MCKV_OK, or MCKV_ENOTFOUND when no rows
     * are left. */
    int (*scan)(struct kvstore *kv, uint64_t *cursor, unsigned max,
                kvstore_scan_fn fn, void *ctx);
    /* Optional (NULL when the engine's cursor order cannot be split): for
     * scans in parallel. scan_end() sets *end to the cursor of the last
     * row now stored (0 when empty), an upper bound of the row count too;
     * scan_range() is scan() visiting only rows whose cursor is at most
     * `end` (MCKV_ENOTFOUND once none are left). Rows written later may
     * come after *end. */
    int (*scan_end)(struct kvstore *kv, uint64_t *end);
    int (*scan_range)(struct kvstore *kv, uint64_t *cursor, uint64_t end,
                      unsigned max, kvstore_scan_fn fn, void *ctx);
    void (*stats)(struct kvstore *kv, kvstore_stat_fn fn, void *ctx);
    /* Human-readable detail of the last error on this handle. */
    const char *(*last_error)(struct kvstore *kv);

    /* How an operator repairs a file this engine reported MCKV_ECORRUPT
     * for, with the server stopped; "{db}" stands for the database path.
     * Optional (NULL: none known). */
    const char *repair_hint;
};

extern const struct kvstore_ops kvstore_sqlite_ops;
extern const struct kvstore_ops kvstore_memory_ops;
/* Only when configure found librocksdb-dev (HAVE_ROCKSDB in config.h). */
extern const struct kvstore_ops kvstore_rocksdb_ops;

/* Finds an engine by name; NULL when unknown. */
const struct kvstore_ops *kvstore_find(const char *name);

#endif
