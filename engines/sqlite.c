/*
 * sqlite.c: the SQLite storage engine (kvstore_sqlite_ops).
 *
 * One database file in WAL mode. The flusher owns the only read-write handle
 * and writes batches (BEGIN IMMEDIATE; put/del...; COMMIT); each fetcher owns
 * a read-only handle (SQLITE_OPEN_READONLY) and, thanks to WAL, reads the last
 * committed state while the writer works. A handle is used by one thread at a
 * time, so connections are opened with SQLITE_OPEN_NOMUTEX.
 *
 * Layout, chosen by measurement (docs/sqlite-tuning.md, tools/bench_sqlite.c):
 * a rowid table kv(id, key, flags, exptime, cas, value) with a UNIQUE index on
 * key, written with INSERT ... ON CONFLICT(key) DO UPDATE (an update keeps its
 * id). New keys append to the rowid B-tree, so a batch of random keys dirties
 * the small key index at random places but the 1 KiB rows only at its end; a
 * WITHOUT ROWID table keyed by key inserts the rows themselves at random
 * places, and on 4 KiB pages spills every 1 KiB row to an overflow page. The
 * scan walks id order with the id as its cursor, one short read transaction
 * per call.
 *
 * Checkpoints run off the commit path, in a checkpointer thread the writer
 * handle owns (sqlite_ckpt.c explains the cycle). The rest of the engine is
 * split by job behind engines/sqlite_priv.h, which lists the files; this one
 * opens and closes handles, maps SQLite's errors and holds the ops table.
 *
 * tools/bench_sqlite.c opens the other layouts and pragma sets it compares
 * (struct sqlite_tuning) through sqlite_open_tuned(); the server always gets
 * sqlite_tuned through kvstore_sqlite_ops.open.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engines/sqlite_priv.h"
#include "util/status.h"

/* The winner of docs/sqlite-tuning.md: the WAL threshold is what matters
 * most (fewer, larger checkpoints copy each hot index page back once for
 * many batches); 8 KiB pages load as fast as 4 KiB ones but waste less room
 * around 1 KiB rows; a bigger page cache or mmap did not help. */
const struct sqlite_tuning sqlite_tuned = {
    .name = "tuned",
    .wal = true,
    .page_size = 8192,
    .cache_kb = 32 * 1024,
    .reader_cache_kb = 8 * 1024,
    .ckpt_bytes = 256 << 20,
    .ckpt_finish_div = 8,
    .ckpt_cap_mul = 4,
    .mmap_bytes = 0,
};

/* Why the last open() on this thread failed: see sqlite_last_error(NULL). */
static _Thread_local char sqlite_open_errmsg[1280];

/* Maps an SQLite result code onto mckv_status. */
int
sqlite_status(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK: case SQLITE_ROW: case SQLITE_DONE:
        return MCKV_OK;
    case SQLITE_NOMEM:
        return MCKV_ENOMEM;
    case SQLITE_BUSY: case SQLITE_LOCKED:
        return MCKV_EAGAIN;
    case SQLITE_TOOBIG:
        return MCKV_E2BIG;
    case SQLITE_CONSTRAINT: case SQLITE_MISMATCH: case SQLITE_RANGE: case SQLITE_MISUSE:
        return MCKV_EINVAL;
    case SQLITE_CORRUPT: case SQLITE_NOTADB:
        /* the file, not the moment: the server stops writing into it */
        return MCKV_ECORRUPT;
    default: /* FULL, IOERR, READONLY, CANTOPEN, PERM, ... */
        return MCKV_EIO;
    }
}

const char *
sqlite_code_name(int rc)
{
    switch (rc) {
    case SQLITE_IOERR_READ: return "SQLITE_IOERR_READ";
    case SQLITE_IOERR_SHORT_READ: return "SQLITE_IOERR_SHORT_READ";
    case SQLITE_IOERR_WRITE: return "SQLITE_IOERR_WRITE";
    case SQLITE_IOERR_FSYNC: return "SQLITE_IOERR_FSYNC";
    case SQLITE_CANTOPEN_ISDIR: return "SQLITE_CANTOPEN_ISDIR";
    case SQLITE_CANTOPEN_FULLPATH: return "SQLITE_CANTOPEN_FULLPATH";
    case SQLITE_CORRUPT_SEQUENCE: return "SQLITE_CORRUPT_SEQUENCE";
    case SQLITE_CORRUPT_INDEX: return "SQLITE_CORRUPT_INDEX";
    case SQLITE_READONLY_RECOVERY: return "SQLITE_READONLY_RECOVERY";
    case SQLITE_READONLY_CANTLOCK: return "SQLITE_READONLY_CANTLOCK";
    case SQLITE_READONLY_DBMOVED: return "SQLITE_READONLY_DBMOVED";
    case SQLITE_READONLY_CANTINIT: return "SQLITE_READONLY_CANTINIT";
    case SQLITE_READONLY_DIRECTORY: return "SQLITE_READONLY_DIRECTORY";
    }
    switch (rc & 0xff) {
    case SQLITE_OK: return "SQLITE_OK";
    case SQLITE_ERROR: return "SQLITE_ERROR";
    case SQLITE_PERM: return "SQLITE_PERM";
    case SQLITE_BUSY: return "SQLITE_BUSY";
    case SQLITE_LOCKED: return "SQLITE_LOCKED";
    case SQLITE_NOMEM: return "SQLITE_NOMEM";
    case SQLITE_READONLY: return "SQLITE_READONLY";
    case SQLITE_IOERR: return "SQLITE_IOERR";
    case SQLITE_CORRUPT: return "SQLITE_CORRUPT";
    case SQLITE_FULL: return "SQLITE_FULL";
    case SQLITE_CANTOPEN: return "SQLITE_CANTOPEN";
    case SQLITE_PROTOCOL: return "SQLITE_PROTOCOL";
    case SQLITE_TOOBIG: return "SQLITE_TOOBIG";
    case SQLITE_CONSTRAINT: return "SQLITE_CONSTRAINT";
    case SQLITE_MISUSE: return "SQLITE_MISUSE";
    case SQLITE_AUTH: return "SQLITE_AUTH";
    case SQLITE_NOTADB: return "SQLITE_NOTADB";
    }
    return "SQLITE_?";
}

/* Records "what: sqlite message (CODE_NAME, errno) " and returns the
 * status; the code and errno stay in kv for the open() message. */
int
sqlite_fail(struct kvstore *kv, int rc, const char *what)
{
    const char *msg = kv->db != NULL ? sqlite3_errmsg(kv->db) : sqlite3_errstr(rc);
    int err = kv->db != NULL ? sqlite3_system_errno(kv->db) : 0;
    char ebuf[128];

    /* the extended code when the handle kept it (open() turns them on
     * only after sqlite3_open_v2 succeeded) */
    if (kv->db != NULL && rc == (rc & 0xff) &&
        (sqlite3_extended_errcode(kv->db) & 0xff) == rc)
        rc = sqlite3_extended_errcode(kv->db);
    if ((rc & 0xff) != SQLITE_IOERR && (rc & 0xff) != SQLITE_CANTOPEN)
        err = 0;
    kv->last_rc = rc;
    kv->last_errno = err;
    if (err != 0)
        snprintf(kv->errmsg, sizeof(kv->errmsg), "%s: %s (%s, errno %d: %s)",
                 what, msg, sqlite_code_name(rc), err,
                 strerror_r(err, ebuf, sizeof(ebuf)));
    else
        snprintf(kv->errmsg, sizeof(kv->errmsg), "%s: %s (%s)", what, msg,
                 sqlite_code_name(rc));
    return sqlite_status(rc);
}

int
sqlite_fail_msg(struct kvstore *kv, int status, const char *msg)
{
    kv->last_rc = 0;
    kv->last_errno = 0;
    snprintf(kv->errmsg, sizeof(kv->errmsg), "%s", msg);
    return status;
}

/* The directory of path, for advice ("." when it has none). */
static void
dir_of(const char *path, char *dir, size_t n)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, n, ".");
    else if (slash == path)
        snprintf(dir, n, "/");
    else
        snprintf(dir, n, "%.*s", (int)(slash - path), path);
}

/* What a failed open() means and what to do, for the one start-up line:
 * "REASON; sqlite: DETAIL; ADVICE" (kv->errmsg holds the detail). */
static void
open_advice(const struct kvstore *kv, int status, const char *path, char *out,
            size_t n)
{
    char dir[256];
    const char *what, *todo;
    char buf[640];

    dir_of(path, dir, sizeof(dir));
    const char *base = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 : path;
    switch (kv->last_rc & 0xff) {
    case SQLITE_NOTADB:
        what = "not an SQLite database";
        todo = "move it away or point db_path elsewhere";
        break;
    case SQLITE_CORRUPT:
        what = "the database is damaged (truncated or overwritten)";
        todo = "keep a copy and rebuild it as docs/operations.md says "
               "(\"A damaged database\"), or move it away";
        break;
    case SQLITE_CANTOPEN:
        if (kv->last_errno == EISDIR) {
            what = "is a directory";
            snprintf(buf, sizeof(buf), "db_path must name a file, e.g. %s/mckv.db",
                     path);
            todo = buf;
        } else {
            what = "cannot open or create the file";
            snprintf(buf, sizeof(buf), "check that %s exists and that the "
                     "server's user may write in it", dir);
            todo = buf;
        }
        break;
    case SQLITE_READONLY: case SQLITE_PERM: case SQLITE_AUTH:
        what = "read-only";
        snprintf(buf, sizeof(buf), "the server's user must be able to write "
                 "the file and its directory %s, where SQLite creates %s-wal "
                 "and %s-shm: check their permissions and the mount", dir,
                 base, base);
        todo = buf;
        break;
    case SQLITE_FULL:
        what = "the disk is full";
        snprintf(buf, sizeof(buf), "free space on the file system of %s", dir);
        todo = buf;
        break;
    case SQLITE_IOERR:
        what = "disk I/O error";
        todo = "check the disk and the file system (dmesg)";
        break;
    case SQLITE_BUSY: case SQLITE_LOCKED:
        what = "locked by another process";
        todo = "is another mckvd, or a sqlite3 shell in a transaction, using it?";
        break;
    default:
        if (status == MCKV_EINVAL && kv->last_rc == 0) {
            what = "not a database this mckv can use";
            todo = "point db_path elsewhere";
        } else {
            what = "cannot open";
            todo = "see the detail";
        }
        break;
    }
    snprintf(out, n, "%s; sqlite: %s; %s", what, kv->errmsg, todo);
}

/* Process-wide, before the first connection: without memory statistics
 * sqlite3_malloc() takes no global mutex, so the flusher and the fetchers do
 * not serialize on it. Fails harmlessly if SQLite is already initialized. */
static void
sqlite_global_setup(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    sqlite3_initialize();
}

/* SQLite's own error for a directory is "unable to open database file". */
static bool
sqlite_path_is_dir(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Opens a handle with an explicit tuning (the benchmark's entry point). */
int
sqlite_open_tuned(struct kvstore **out, const struct kvstore_options *opts,
                  const struct sqlite_tuning *t)
{
    struct kvstore *kv;
    int flags = SQLITE_OPEN_NOMUTEX;
    int64_t cache_kb, page_size = 0;
    int rc, status;

    static pthread_once_t once = PTHREAD_ONCE_INIT;

    *out = NULL;
    sqlite_open_errmsg[0] = '\0';
    pthread_once(&once, sqlite_global_setup);
    if (opts == NULL || opts->path == NULL || opts->path[0] == '\0') {
        snprintf(sqlite_open_errmsg, sizeof(sqlite_open_errmsg), "sqlite: no database path");
        return MCKV_EINVAL;
    }
    if ((kv = calloc(1, sizeof(*kv))) == NULL || (kv->path = strdup(opts->path)) == NULL) {
        free(kv);
        snprintf(sqlite_open_errmsg, sizeof(sqlite_open_errmsg), "sqlite: out of memory");
        return MCKV_ENOMEM;
    }
    kv->tuning = t;
    kv->read_only = opts->read_only;
    flags |= opts->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (sqlite_path_is_dir(opts->path)) {
        bool rocks = sqlite_file_size(opts->path, "/CURRENT") > 0;
        status = sqlite_fail_msg(kv, MCKV_EIO, rocks
            ? "open: this is a RocksDB directory (engine = rocksdb), not an SQLite file"
            : "open: Is a directory; engine = sqlite keeps one database file");
        if (!rocks) {
            /* described as SQLite's own EISDIR would be: "db_path must
             * name a file" */
            kv->last_rc = SQLITE_CANTOPEN;
            kv->last_errno = EISDIR;
        }
        goto fail;
    }
    if ((rc = sqlite3_open_v2(opts->path, &kv->db, flags, NULL)) != SQLITE_OK) {
        status = sqlite_fail(kv, rc, "open");
        goto fail;
    }
    sqlite3_extended_result_codes(kv->db, 1);
    /* SQLITE_OPEN_READWRITE falls back to read-only on a write-protected
     * file; the flusher would only find out at its first commit. */
    if (!opts->read_only && sqlite3_db_readonly(kv->db, "main") == 1) {
        status = sqlite_fail_msg(kv, MCKV_EIO, "open: database file is read-only");
        kv->last_rc = SQLITE_READONLY;
        goto fail;
    }
    sqlite3_busy_timeout(kv->db, SQLITE_KV_BUSY_TIMEOUT_MS);
    if (!opts->read_only && (status = sqlite_setup_writer(kv, opts)) < 0)
        goto fail;
    cache_kb = opts->cache_kb != 0 ? (int64_t)opts->cache_kb
               : opts->read_only ? t->reader_cache_kb : t->cache_kb;
    if ((cache_kb != 0 && (status = sqlite_pragma(kv, "cache_size", -cache_kb)) < 0) ||
        (t->mmap_bytes != 0 && (status = sqlite_pragma(kv, "mmap_size", t->mmap_bytes)) < 0) ||
        (status = sqlite_exec_sql(kv, "PRAGMA temp_store = MEMORY")) < 0)
        goto fail;
    status = opts->read_only ? sqlite_check_version(kv) : sqlite_setup_schema(kv);
    if (status == MCKV_OK && !opts->read_only && t->wal && t->ckpt_bytes != 0 &&
        (status = sqlite_query(kv, "PRAGMA page_size", &page_size, NULL, 0)) == MCKV_OK) {
        kv->ckpt_pages = (int)(t->ckpt_bytes / (page_size > 0 ? page_size : 4096));
        kv->ckpt_pages = kv->ckpt_pages > 0 ? kv->ckpt_pages : 1;
        kv->ckpt_finish_div = t->ckpt_finish_div > 0 ? (int)t->ckpt_finish_div : 8;
        kv->ckpt_cap_pages = (int)(sqlite_wal_limit_bytes(t) / (page_size > 0 ? page_size : 4096));
        if (!t->ckpt_in_writer)
            status = sqlite_ckptr_create(kv);
    }
    if (status < 0)
        goto fail;
    *out = kv;
    return MCKV_OK;
fail:
    /* the caller names the path; this says why and what to do */
    open_advice(kv, status, opts->path, sqlite_open_errmsg,
                sizeof(sqlite_open_errmsg));
    sqlite_ckptr_destroy(kv);
    sqlite3_close(kv->db);
    free(kv->path);
    free(kv);
    return status;
}

/* kvstore_ops.open: the server's tuning. On failure *kv is NULL and
 * last_error(NULL) on the same thread says why. */
static int
sqlite_open(struct kvstore **kv, const struct kvstore_options *opts)
{
    return sqlite_open_tuned(kv, opts, &sqlite_tuned);
}

void
sqlite_close(struct kvstore *kv)
{
    if (kv == NULL)
        return;
    /* First, so the writer's connection is the last one: it checkpoints
     * and removes the WAL. */
    sqlite_ckptr_destroy(kv);
    for (int i = 0; i < STMT_COUNT; i++)
        sqlite3_finalize(kv->stmt[i]);
    if (kv->db != NULL && !sqlite3_get_autocommit(kv->db))
        sqlite3_exec(kv->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(kv->db);
    free(kv->path);
    free(kv);
}

/* last_error(NULL) describes the last failed open() of the calling thread. */
const char *
sqlite_last_error(struct kvstore *kv)
{
    return kv != NULL ? kv->errmsg : sqlite_open_errmsg;
}

const struct kvstore_ops kvstore_sqlite_ops = {
    .api_version = KVSTORE_API_VERSION,
    .name = "sqlite",
    .persistent = true,
    .open = sqlite_open,
    .close = sqlite_close,
    .begin = sqlite_begin,
    .put = sqlite_put,
    .del = sqlite_del,
    .flush = sqlite_flush,
    .set_meta = sqlite_set_meta,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .get_meta = sqlite_get_meta,
    .get = sqlite_get,
    .scan = sqlite_scan,
    .scan_end = sqlite_scan_end,
    .scan_range = sqlite_scan_range,
    .stats = sqlite_stats,
    .last_error = sqlite_last_error,
    /* .dump reads what it can and ends with ROLLBACK when it met damage;
     * the sed keeps what it read. .recover does better, but Debian 12's
     * sqlite3 (3.40.1) lacks the sqlite_dbpage table it needs. */
    .repair_hint = "move {db}, {db}-wal and {db}-shm aside together (say to "
                   "{db}.damaged), then: sqlite3 {db}.damaged .dump | "
                   "sed 's/^ROLLBACK; -- due to errors$/COMMIT;/' | sqlite3 {db} "
                   "(docs/operations.md, \"A damaged database\")",
};
