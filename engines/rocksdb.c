/*
 * rocksdb.c: the RocksDB storage engine (kvstore_rocksdb_ops), for data far
 * larger than memory.
 *
 * Why: SQLite's B-tree of random keys rewrites random pages once the data
 * outgrows its cache, and its ingest rate falls 3x between 1M and 8M rows
 * (docs/benchmarks.md). An LSM writes sorted runs sequentially and merges
 * them in the background, so its ingest stays nearly flat.
 *
 * Layout: db_path is a directory. Client keys are the keys of the "default"
 * column family, each value a 29-byte header (flags, exptime, cas, flush
 * epoch; rocksdb_priv.h) and then the value. Meta (get_meta/set_meta) lives
 * in the column family "mckv_meta", which no client key can reach. The
 * writer's batch is one WriteBatch written with one rocksdb_write() at
 * commit (atomic, in the WAL; fsync'd per commit only with
 * sqlite_synchronous = full, otherwise a process crash loses nothing and a
 * power loss the last commits, as SQLite's synchronous = normal).
 *
 * flush(cas_below) is O(1): it moves a flush mark (rocksdb_data.c) that
 * makes older rows absent to get and scan, and a compaction filter drops
 * them as RocksDB rewrites their files anyway.
 *
 * Sharing: RocksDB allows one open DB per directory and process, so the
 * writer and the readers (fetchers, warmup) share one rocksdb_t through a
 * refcounted registry; each handle has its own read and write options,
 * batch and scan position. A reader opened with no writer (a tool) opens
 * the database read-only.
 *
 * Tuning (rocks_options): see the comment at each setting. Only the flusher
 * writes, so a RocksDB write stall blocks the flusher alone; mckv's throttle
 * (server/throttle.c) sees the backlog grow and stays in charge of clients.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engines/rocksdb_priv.h"
#include "util/status.h"

/* Why the last open() on this thread failed: rocks_last_error(NULL). */
static _Thread_local char rocks_open_errmsg[1024];

static pthread_mutex_t rocks_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rocks_db *rocks_registry;

int
rocks_fail(struct kvstore *kv, int status, const char *what, char *rocks_err)
{
    if (rocks_err != NULL)
        snprintf(kv->errmsg, sizeof(kv->errmsg), "%s: %s", what, rocks_err);
    else
        snprintf(kv->errmsg, sizeof(kv->errmsg), "%s", what);
    rocksdb_free(rocks_err);
    return status;
}

/* The default block cache when kvstore_options.cache_kb is 0: enough for
 * the index and bloom blocks of ~10M keys and the hot data blocks. */
#define ROCKS_DEFAULT_CACHE_KB (64 * 1024)

/* Options for a new or existing database; the data column family gets the
 * compaction filter and the table options. */
static int
rocks_options(struct rocks_db *rdb, const struct kvstore_options *opts)
{
    uint64_t cache_kb = opts->cache_kb != 0 ? opts->cache_kb : ROCKS_DEFAULT_CACHE_KB;
    rocksdb_options_t *o;

    if ((o = rdb->db_opts = rocksdb_options_create()) == NULL ||
        (rdb->meta_opts = rocksdb_options_create()) == NULL ||
        (rdb->table_opts = rocksdb_block_based_options_create()) == NULL ||
        (rdb->block_cache = rocksdb_cache_create_lru((size_t)cache_kb * 1024)) == NULL)
        return MCKV_ENOMEM;
    rocksdb_options_set_create_if_missing(o, !opts->read_only);
    rocksdb_options_set_create_missing_column_families(o, !opts->read_only);
    /* Two cores: one flush and one compaction at a time. More jobs would
     * take CPU from the workers without draining faster. */
    rocksdb_options_set_max_background_jobs(o, 2);
    /* 64 MiB memtables, up to 4: a full memtable is flushed while the next
     * one fills, so a memtable flush never blocks the writer. */
    rocksdb_options_set_write_buffer_size(o, 64u << 20);
    rocksdb_options_set_max_write_buffer_number(o, 4);
    /* Level 0 may hold more files before RocksDB slows (default 20) or stops
     * (36) writes: with random keys every L0 file overlaps L1, and the
     * defaults spent half the 8M load slowed (issue 9's measurement). A
     * slowdown only holds the flusher; the throttle sees the backlog. The
     * bloom filters keep the extra L0 files cheap for gets. */
    rocksdb_options_set_level0_file_num_compaction_trigger(o, 4);
    rocksdb_options_set_level0_slowdown_writes_trigger(o, 40);
    rocksdb_options_set_level0_stop_writes_trigger(o, 64);
    /* Levels sized from the bottom up: less space and write amplification
     * while the data grows. */
    rocksdb_options_set_level_compaction_dynamic_level_bytes(o, 1);
    rocksdb_options_set_max_bytes_for_level_base(o, 256u << 20);
    rocksdb_options_set_target_file_size_base(o, 64u << 20);
    /* Write back SST and WAL data every MiB, so the kernel never holds
     * gigabytes of dirty pages that one fsync then flushes at once. */
    rocksdb_options_set_bytes_per_sync(o, 1u << 20);
    rocksdb_options_set_wal_bytes_per_sync(o, 1u << 20);
    /* No compression: values are often compressed or random already, and on
     * two cores compression takes CPU from the front end (Debian's build has
     * snappy, lz4 and zstd; not measured better here). */
    rocksdb_options_set_compression(o, rocksdb_no_compression);
    /* RocksDB's own LOG: warnings only, a few small files. */
    rocksdb_options_set_info_log_level(o, 2 /* WARN */);
    rocksdb_options_set_keep_log_file_num(o, 4);
    rocksdb_options_set_max_log_file_size(o, 8u << 20);
    /* A bloom filter per SST (10 bits per key, ~1% false positives): a get
     * of a key that is not on disk, the common miss, reads no data block. */
    rdb->bloom = rocksdb_filterpolicy_create_bloom_full(10);
    rocksdb_block_based_options_set_filter_policy(rdb->table_opts, rdb->bloom);
    rocksdb_block_based_options_set_block_cache(rdb->table_opts, rdb->block_cache);
    rocksdb_block_based_options_set_block_size(rdb->table_opts, 16u << 10);
    rocksdb_options_set_block_based_table_factory(o, rdb->table_opts);
    if (!opts->read_only) {
        if ((rdb->filter = rocks_filter_create(rdb)) == NULL)
            return MCKV_ENOMEM;
        rocksdb_options_set_compaction_filter(o, rdb->filter);
    }
    return MCKV_OK;
}

static void
rocks_db_free(struct rocks_db *rdb)
{
    if (rdb == NULL)
        return;
    if (rdb->cf_data != NULL)
        rocksdb_column_family_handle_destroy(rdb->cf_data);
    if (rdb->cf_meta != NULL)
        rocksdb_column_family_handle_destroy(rdb->cf_meta);
    if (rdb->db != NULL)
        rocksdb_close(rdb->db);
    if (rdb->db_opts != NULL)
        rocksdb_options_destroy(rdb->db_opts);
    if (rdb->meta_opts != NULL)
        rocksdb_options_destroy(rdb->meta_opts);
    if (rdb->filter != NULL)
        rocksdb_compactionfilter_destroy(rdb->filter);
    if (rdb->table_opts != NULL)
        rocksdb_block_based_options_destroy(rdb->table_opts);  /* and the bloom */
    else if (rdb->bloom != NULL)
        rocksdb_filterpolicy_destroy(rdb->bloom);
    if (rdb->block_cache != NULL)
        rocksdb_cache_destroy(rdb->block_cache);
    free(rdb->path);
    free(rdb);
}

static bool
dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    bool empty = true;

    if (d == NULL)
        return false;
    while (empty && (e = readdir(d)) != NULL)
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return empty;
}

/* What is at path before RocksDB sees it: MCKV_OK for a directory that is a
 * RocksDB database (*exists) or nothing yet (a writer creates it); else a
 * clear reason, so an SQLite file or a stray directory is never taken for
 * an empty database. */
static int
rocks_check_path(struct kvstore *kv, const char *path, bool *exists)
{
    char current[PATH_MAX + 16], magic[16];
    struct stat sb;
    int fd;

    *exists = false;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT && !kv->read_only)
            return MCKV_OK;
        snprintf(kv->errmsg, sizeof(kv->errmsg), "open: %s", strerror(errno));
        return MCKV_EIO;
    }
    if (!S_ISDIR(sb.st_mode)) {
        bool sqlite = false;

        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
            sqlite = read(fd, magic, 16) == 16 && memcmp(magic, "SQLite format 3", 16) == 0;
            close(fd);
        }
        return rocks_fail(kv, MCKV_EIO, sqlite
            ? "open: this is an SQLite database file (engine = sqlite); engine = rocksdb "
              "keeps a directory: set db_path to a new path"
            : "open: not a directory; engine = rocksdb keeps its database in a directory "
              "(db_path)", NULL);
    }
    snprintf(current, sizeof(current), "%s/CURRENT", path);
    if (access(current, F_OK) == 0) {
        *exists = true;
        return MCKV_OK;
    }
    if (kv->read_only)
        return rocks_fail(kv, MCKV_EIO, "open: no RocksDB database here (no CURRENT file)",
                          NULL);
    /* An empty directory is fine (a new database); anything else is not. */
    if (dir_is_empty(path))
        return MCKV_OK;
    return rocks_fail(kv, MCKV_EIO, "open: the directory is not empty and holds no RocksDB "
                      "database (no CURRENT file); set db_path to a new or empty directory",
                      NULL);
}

/* The mckv meta column family of an existing database must be there: a
 * RocksDB directory of some other program is not ours to write into. */
static int
rocks_check_families(struct kvstore *kv, const struct rocks_db *rdb, const char *path)
{
    char *err = NULL;
    size_t n = 0;
    char **names = rocksdb_list_column_families(rdb->db_opts, path, &n, &err);
    bool meta = false;

    if (err != NULL)
        return rocks_fail(kv, MCKV_EIO, "open: list column families", err);
    for (size_t i = 0; i < n; i++)
        meta |= strcmp(names[i], ROCKS_META_CF) == 0;
    rocksdb_list_column_families_destroy(names, n);
    if (!meta)
        return rocks_fail(kv, MCKV_EIO, "open: a RocksDB database, but not mckv's (no "
                          ROCKS_META_CF " column family)", NULL);
    return MCKV_OK;
}

/* Opens the shared database for path (registry lock held). */
static int
rocks_db_open(struct kvstore *kv, const struct kvstore_options *opts,
              struct rocks_db **out)
{
    const char *names[2] = { "default", ROCKS_META_CF };
    const rocksdb_options_t *cf_opts[2];
    rocksdb_column_family_handle_t *cfs[2] = { NULL, NULL };
    struct rocks_db *rdb;
    char *err = NULL, real[PATH_MAX];
    bool exists;
    int status;

    *out = NULL;
    if ((status = rocks_check_path(kv, opts->path, &exists)) < 0)
        return status;
    if ((rdb = calloc(1, sizeof(*rdb))) == NULL)
        return rocks_fail(kv, MCKV_ENOMEM, "open: out of memory", NULL);
    if ((status = rocks_options(rdb, opts)) < 0) {
        rocks_fail(kv, status, "open: out of memory", NULL);
        goto fail;
    }
    if (exists && (status = rocks_check_families(kv, rdb, opts->path)) < 0)
        goto fail;
    cf_opts[0] = rdb->db_opts;
    cf_opts[1] = rdb->meta_opts;
    if (opts->read_only)
        rdb->db = rocksdb_open_for_read_only_column_families(
            rdb->db_opts, opts->path, 2, names, cf_opts, cfs, 0, &err);
    else
        rdb->db = rocksdb_open_column_families(rdb->db_opts, opts->path, 2, names,
                                               cf_opts, cfs, &err);
    if (rdb->db == NULL || err != NULL) {
        status = rocks_fail(kv, MCKV_EIO, "open", err);
        goto fail;
    }
    rdb->cf_data = cfs[0];
    rdb->cf_meta = cfs[1];
    rdb->opened_read_only = opts->read_only;
    if (realpath(opts->path, real) == NULL || (rdb->path = strdup(real)) == NULL) {
        status = rocks_fail(kv, MCKV_EIO, "open: realpath failed", NULL);
        goto fail;
    }
    *out = rdb;
    return MCKV_OK;
fail:
    rocks_db_free(rdb);
    return status;
}

/* A new database gets its schema version; an existing one must have ours. */
static int
rocks_check_schema(struct kvstore *kv)
{
    int64_t v = 0;
    int status = rocks_get_meta(kv, ROCKS_META_SCHEMA, &v);

    if (status == MCKV_ENOTFOUND && !kv->read_only) {
        if ((status = rocks_begin(kv)) < 0 ||
            (status = rocks_set_meta(kv, ROCKS_META_SCHEMA, ROCKS_SCHEMA_VERSION)) < 0 ||
            (status = rocks_commit(kv)) < 0)
            return status;
        return MCKV_OK;
    }
    if (status == MCKV_ENOTFOUND)
        return rocks_fail(kv, MCKV_EIO, "open: a RocksDB database without mckv's "
                          ROCKS_META_SCHEMA, NULL);
    if (status < 0)
        return status;
    if (v != ROCKS_SCHEMA_VERSION) {
        snprintf(kv->errmsg, sizeof(kv->errmsg),
                 "open: schema version %lld, this mckv reads %d", (long long)v,
                 ROCKS_SCHEMA_VERSION);
        return MCKV_EIO;
    }
    return MCKV_OK;
}

/* Finds the registry entry of path (lock held); NULL when none. */
static struct rocks_db *
rocks_registry_find(const char *path)
{
    char real[PATH_MAX];

    if (realpath(path, real) == NULL)
        return NULL;
    for (struct rocks_db *r = rocks_registry; r != NULL; r = r->next)
        if (strcmp(r->path, real) == 0)
            return r;
    return NULL;
}

static void rocks_close(struct kvstore *kv);

static int
rocks_open(struct kvstore **out, const struct kvstore_options *opts)
{
    struct kvstore *kv;
    struct rocks_db *rdb;
    bool fresh = false;
    int status = MCKV_OK;

    *out = NULL;
    rocks_open_errmsg[0] = '\0';
    if (opts == NULL || opts->path == NULL || opts->path[0] == '\0') {
        snprintf(rocks_open_errmsg, sizeof(rocks_open_errmsg), "rocksdb: no database path");
        return MCKV_EINVAL;
    }
    if ((kv = calloc(1, sizeof(*kv))) == NULL || (kv->path = strdup(opts->path)) == NULL ||
        (kv->ropts = rocksdb_readoptions_create()) == NULL ||
        (kv->wopts = rocksdb_writeoptions_create()) == NULL ||
        (kv->batch = rocksdb_writebatch_create()) == NULL) {
        if (kv != NULL)
            rocks_close(kv);
        snprintf(rocks_open_errmsg, sizeof(rocks_open_errmsg), "rocksdb: out of memory");
        return MCKV_ENOMEM;
    }
    kv->read_only = opts->read_only;
    /* synchronous_full: fsync the WAL at every commit; otherwise the WAL is
     * written (a crash of the process loses nothing) and synced by the OS. */
    rocksdb_writeoptions_set_sync(kv->wopts, opts->synchronous_full);
    pthread_mutex_lock(&rocks_registry_lock);
    rdb = rocks_registry_find(opts->path);
    if (rdb != NULL && !opts->read_only && (rdb->has_writer || rdb->opened_read_only)) {
        status = rocks_fail(kv, MCKV_EIO, rdb->has_writer
            ? "open: already open for writing in this process"
            : "open: already open read-only in this process (open the writer first)", NULL);
    } else if (rdb == NULL && (status = rocks_db_open(kv, opts, &rdb)) == MCKV_OK) {
        rdb->next = rocks_registry;
        rocks_registry = rdb;
        fresh = true;
    }
    if (status == MCKV_OK) {
        rdb->refs++;
        rdb->has_writer |= !opts->read_only;
        kv->rdb = rdb;
    }
    pthread_mutex_unlock(&rocks_registry_lock);
    /* The first handle of a database reads the flush mark; the others share
     * it (only the writer moves it). */
    if (status == MCKV_OK && fresh)
        status = rocks_load_mark(kv);
    if (status == MCKV_OK)
        status = rocks_check_schema(kv);
    if (status < 0) {
        snprintf(rocks_open_errmsg, sizeof(rocks_open_errmsg), "rocksdb %s: %s",
                 opts->path, kv->errmsg);
        rocks_close(kv);
        return status;
    }
    *out = kv;
    return MCKV_OK;
}

static void
rocks_close(struct kvstore *kv)
{
    struct rocks_db *rdb;

    if (kv == NULL)
        return;
    if ((rdb = kv->rdb) != NULL) {
        bool last;

        pthread_mutex_lock(&rocks_registry_lock);
        if (!kv->read_only)
            rdb->has_writer = false;
        last = --rdb->refs == 0;
        if (last)
            for (struct rocks_db **p = &rocks_registry; *p != NULL; p = &(*p)->next)
                if (*p == rdb) {
                    *p = rdb->next;
                    break;
                }
        pthread_mutex_unlock(&rocks_registry_lock);
        if (last)
            rocks_db_free(rdb);   /* closes the DB: flushes nothing, the WAL has it */
    }
    if (kv->batch != NULL)
        rocksdb_writebatch_destroy(kv->batch);
    if (kv->wopts != NULL)
        rocksdb_writeoptions_destroy(kv->wopts);
    if (kv->ropts != NULL)
        rocksdb_readoptions_destroy(kv->ropts);
    free(kv->path);
    free(kv);
}

/* last_error(NULL) describes the last failed open() of the calling thread. */
static const char *
rocks_last_error(struct kvstore *kv)
{
    return kv != NULL ? kv->errmsg : rocks_open_errmsg;
}

const struct kvstore_ops kvstore_rocksdb_ops = {
    .api_version = KVSTORE_API_VERSION,
    .name = "rocksdb",
    .persistent = true,
    .open = rocks_open,
    .close = rocks_close,
    .begin = rocks_begin,
    .put = rocks_put,
    .del = rocks_del,
    .flush = rocks_flush,
    .set_meta = rocks_set_meta,
    .commit = rocks_commit,
    .rollback = rocks_rollback,
    .get_meta = rocks_get_meta,
    .get = rocks_get,
    .scan = rocks_scan,
    .scan_end = NULL,       /* key order cannot be split by a row count */
    .scan_range = NULL,
    .stats = rocks_stats,
    .last_error = rocks_last_error,
};
