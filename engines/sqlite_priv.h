/*
 * sqlite_priv.h: what the files of the SQLite engine share. The server sees
 * none of it (it opens the engine through kvstore_sqlite_ops, kvstore.h);
 * tools/bench_sqlite.c and tests/unit/test_engine_sqlite.c include it to
 * open other layouts (sqlite_open_tuned) and read a handle's counters.
 *
 * The engine, one job per file:
 *   sqlite.c         open() and close(), errors, the ops table; the design
 *   sqlite_sql.c     the SQL of each statement, the statement cache, one-off
 *                    SQL (pragmas, schema)
 *   sqlite_schema.c  the tables, their version check, the writer's pragmas
 *   sqlite_write.c   the writer's transaction: begin, put, del, flush,
 *                    set_meta, commit, rollback
 *   sqlite_ckpt.c    WAL accounting and the checkpointer thread
 *   sqlite_read.c    get, get_meta, the scans
 *   sqlite_stats.c   stats()
 * Every function here runs on the thread that owns the handle (kvstore.h)
 * unless its comment says otherwise.
 */
#ifndef MCKV_ENGINES_SQLITE_PRIV_H
#define MCKV_ENGINES_SQLITE_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "engines/kvstore.h"

/* How long a statement retries a lock held by another connection (a reader
 * recovering the WAL, an operator's sqlite3 shell) before MCKV_EAGAIN. */
#define SQLITE_KV_BUSY_TIMEOUT_MS 1000

/* A layout and pragma set. The server always uses sqlite_tuned; the
 * benchmark compares variants of it. */
struct sqlite_tuning {
    const char *name;
    bool keyed;             /* WITHOUT ROWID table keyed by key */
    bool replace;           /* INSERT OR REPLACE instead of ON CONFLICT DO UPDATE */
    bool wal;               /* journal_mode=WAL (else SQLite's default, DELETE) */
    bool sqlite_sync;       /* keep SQLite's synchronous default (FULL) */
    bool sqlite_secure_delete; /* keep Debian's secure_delete=ON */
    unsigned page_size;     /* for a new file; 0 = SQLite default (4096) */
    int64_t cache_kb;       /* writer page cache; 0 = SQLite default (2000) */
    int64_t reader_cache_kb;/* read-only handles */
    int64_t ckpt_bytes;     /* a checkpoint starts past this much WAL;
                               0 = SQLite's autocheckpoint (1000 pages) */
    bool ckpt_in_writer;    /* no checkpointer thread: commit() copies it all */
    unsigned ckpt_finish_div; /* the writer copies a tail <= WAL size / this */
    unsigned ckpt_cap_mul;  /* commit() checkpoints itself past ckpt_bytes * this */
    int64_t mmap_bytes;     /* mmap_size; 0 = off */
};

/* The server's tuning (sqlite.c). */
extern const struct sqlite_tuning sqlite_tuned;

/* The cached statements of a handle (sqlite_sql.c has their SQL). */
enum sqlite_stmt {
    STMT_BEGIN, STMT_COMMIT, STMT_ROLLBACK,
    STMT_PUT, STMT_DEL, STMT_FLUSH, STMT_FLUSH_ALL,
    STMT_SET_META, STMT_GET_META, STMT_GET, STMT_SCAN, STMT_SCAN_END,
    STMT_COUNT
};

/* The checkpointer thread of a writer handle (sqlite_ckpt.c). `lock` guards
 * everything but `db` and `thread`, and is never held during a checkpoint. */
struct sqlite_ckptr {
    pthread_t thread;
    sqlite3 *db;            /* its own read-write connection, its thread only */
    pthread_mutex_t lock;
    pthread_cond_t wake;    /* to the checkpointer: a request or stop */
    pthread_cond_t idle;    /* to the writer: a round ended */
    bool stop;
    bool request;           /* the writer asked for a round */
    bool running;
    uint64_t request_gen;   /* WAL generation (kvstore.wal_gen) asked about */
    bool done;              /* a round ended; the writer has not looked yet */
    uint64_t done_gen;
    int done_ckpt;          /* frames copied back (pnCkpt) */
    uint64_t rounds;
    uint64_t errors;
    uint64_t us;
    uint64_t max_us;
    char errmsg[256];       /* the last failed round */
};

struct kvstore {
    sqlite3 *db;
    char *path;
    const struct sqlite_tuning *tuning;
    bool read_only;
    sqlite3_stmt *stmt[STMT_COUNT];
    struct sqlite_ckptr *ckptr; /* NULL: readers, tuning->ckpt_in_writer */
    int ckpt_pages;         /* tuning->ckpt_bytes in pages of this file */
    int ckpt_finish_div;    /* the writer copies a tail <= wal_frames / this */
    int ckpt_cap_pages;     /* past this, commit() checkpoints whatever it costs */
    int wal_frames;         /* frames in the WAL after the last commit */
    int wal_frames_ckpt;    /* of which checkpoints copied back */
    int wal_frames_max;
    uint64_t wal_gen;       /* bumped when the WAL restarts from its start */
    uint64_t commits;
    uint64_t rollbacks;
    uint64_t checkpoints;       /* run by commit() */
    uint64_t checkpoints_capped;/* of which forced by the cap */
    uint64_t checkpoint_errors;
    uint64_t checkpoint_us;     /* time commit() spent on checkpoints (waits too) */
    uint64_t checkpoint_max_us; /* the longest such stall of one commit() */
    uint64_t checkpoint_waits;  /* commit() waited for the checkpointer (cap) */
    /* Keyed layout only: where the scan stopped (the cursor is a row count). */
    uint64_t scan_rows;
    uint8_t scan_nkey;
    char scan_key[256];
    int last_rc;            /* extended SQLite code of the last failure */
    int last_errno;         /* and its errno, when SQLite kept one */
    char errmsg[512];
};

/* ---- sqlite.c: open, close, errors ---- */

/* Opens a handle with an explicit tuning, which must outlive it
 * (kvstore_sqlite_ops.open passes &sqlite_tuned). On failure *out is NULL
 * and sqlite_last_error(NULL) says why, for the calling thread. */
int sqlite_open_tuned(struct kvstore **out, const struct kvstore_options *opts,
                      const struct sqlite_tuning *t);
void sqlite_close(struct kvstore *kv);
/* last_error(NULL) describes the last failed open() of the calling thread. */
const char *sqlite_last_error(struct kvstore *kv);
/* Maps an SQLite result code onto mckv_status (CORRUPT and NOTADB are
 * MCKV_ECORRUPT). */
int sqlite_status(int rc);
/* "SQLITE_CORRUPT_INDEX", "SQLITE_READONLY", ...: the name of an (extended)
 * result code as sqlite3.h spells it. Any thread. */
const char *sqlite_code_name(int rc);
/* Records "what: sqlite message (code) [errno]" in kv->errmsg and returns
 * the status of rc. */
int sqlite_fail(struct kvstore *kv, int rc, const char *what);
/* Records msg in kv->errmsg and returns status. */
int sqlite_fail_msg(struct kvstore *kv, int status, const char *msg);

/* ---- sqlite_sql.c: statements ---- */

/* The handle's cached statement `id`, prepared on first use. */
int sqlite_stmt(struct kvstore *kv, enum sqlite_stmt id, sqlite3_stmt **out);
/* Steps a statement that returns no rows, then resets it. */
int sqlite_run(struct kvstore *kv, sqlite3_stmt *st, const char *what);
/* sqlite_stmt() then sqlite_run(). */
int sqlite_exec_id(struct kvstore *kv, enum sqlite_stmt id, const char *what);
/* One-off SQL (pragmas, schema): not cached. */
int sqlite_exec_sql(struct kvstore *kv, const char *sql);
/* One-off SQL that yields one row; its first column goes to *value
 * (MCKV_ENOTFOUND for no row). `text` (may be NULL) receives it as text. */
int sqlite_query(struct kvstore *kv, const char *sql, int64_t *value, char *text,
                 size_t ntext);
/* PRAGMA name = value. */
int sqlite_pragma(struct kvstore *kv, const char *name, int64_t value);
/* Binds a blob that may be empty (a NULL pointer would bind SQL NULL). */
int sqlite_bind_bytes(sqlite3_stmt *st, int col, const char *p, int n);

/* ---- sqlite_schema.c: a new handle ---- */

/* Writer: pragmas that only take effect on a new file, then per-connection
 * ones (the WAL hook of sqlite_ckpt.c among them). */
int sqlite_setup_writer(struct kvstore *kv, const struct kvstore_options *opts);
/* The file is an mckv database of the version this code reads. */
int sqlite_check_version(struct kvstore *kv);
/* Writer: creates the tables in a new file or checks the version of an
 * existing one, in one transaction. */
int sqlite_setup_schema(struct kvstore *kv);

/* ---- sqlite_ckpt.c: the WAL and its checkpoints ---- */

/* The size the WAL file is cut back to when it restarts. */
int64_t sqlite_wal_limit_bytes(const struct sqlite_tuning *t);
/* wal_hook (sqlite3_wal_hook, arg = the writer handle): after each commit. */
int sqlite_on_wal(void *arg, sqlite3 *db, const char *name, int frames);
/* Writer, after a commit: the checkpoint cycle of sqlite_ckpt.c. */
void sqlite_maybe_checkpoint(struct kvstore *kv);
/* Writer handle, in open() once the schema exists: starts the checkpointer
 * (kv->ckptr). */
int sqlite_ckptr_create(struct kvstore *kv);
/* Writer handle, in close() or a failed open(): stops and joins it; does
 * nothing when kv->ckptr is NULL. */
void sqlite_ckptr_destroy(struct kvstore *kv);

/* ---- sqlite_write.c, sqlite_read.c, sqlite_stats.c: kvstore_ops ---- */

int sqlite_begin(struct kvstore *kv);
int sqlite_put(struct kvstore *kv, const struct kvstore_record *rec);
int sqlite_del(struct kvstore *kv, const char *key, uint8_t nkey);
int sqlite_flush(struct kvstore *kv, uint64_t cas_below);
int sqlite_set_meta(struct kvstore *kv, const char *name, int64_t value);
int sqlite_commit(struct kvstore *kv);
int sqlite_rollback(struct kvstore *kv);

int sqlite_get_meta(struct kvstore *kv, const char *name, int64_t *value);
int sqlite_get(struct kvstore *kv, const char *key, uint8_t nkey,
               kvstore_alloc_fn alloc, void *ctx, struct kvstore_record *rec);
int sqlite_scan(struct kvstore *kv, uint64_t *cursor, unsigned max,
                kvstore_scan_fn fn, void *ctx);
int sqlite_scan_end(struct kvstore *kv, uint64_t *end);
int sqlite_scan_range(struct kvstore *kv, uint64_t *cursor, uint64_t end,
                      unsigned max, kvstore_scan_fn fn, void *ctx);

void sqlite_stats(struct kvstore *kv, kvstore_stat_fn fn, void *ctx);
/* Bytes of the file path + suffix ("", "-wal"); 0 when absent. Any thread. */
uint64_t sqlite_file_size(const char *path, const char *suffix);

#endif
