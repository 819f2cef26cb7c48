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
 * Checkpoints: SQLite's automatic checkpoint (every 1000 WAL pages, run inside
 * COMMIT) is replaced by a wal_hook that counts WAL frames, and the bulk of
 * the copying runs off the commit path, in a checkpointer thread the writer
 * handle owns (its own read-write connection, opened in open(), joined in
 * close(); read-only handles have none). Large, rare checkpoints copy pages
 * rewritten by many batches (the key index) back once. SQLite reuses the WAL
 * from its start only when a write transaction begins with every frame
 * copied back, which a checkpoint running beside a writer that keeps
 * appending never achieves; so a cycle (sqlite_maybe_checkpoint, run by
 * commit() after each COMMIT) goes:
 *  1. the WAL passes tuning->ckpt_bytes: commit() wakes the checkpointer,
 *     which runs a PASSIVE checkpoint (no writer lock) while commits go on,
 *     then fsyncs the database file (SQLite skips that when the checkpoint
 *     stops short of the WAL's end, leaving it to the next one: the
 *     writer's) and the WAL frames appended meanwhile;
 *  2. at the next commit() after a round, the tail appended meanwhile is
 *     either short (at most wal / ckpt_finish_div) and the writer copies it
 *     itself, PASSIVE, so its next BEGIN restarts the WAL; or another round
 *     starts. Small rounds hardly outpace the writer (few pages repeat in a
 *     few batches), so the accepted tail grows with the WAL;
 *  3. a hard cap (ckpt_cap_mul times the threshold: the disk is slower than
 *     the writer) makes commit() wait for the running round and checkpoint
 *     itself, so the WAL stays bounded. journal_size_limit is the cap too:
 *     cutting a longer WAL file back at a restart takes a commit 50-100 ms.
 * The flusher never waits for the checkpointer below the cap. Fetchers
 * holding a snapshot only limit how far a PASSIVE checkpoint gets (they
 * never wait either); their reads are short, so the next try goes further.
 * docs/sqlite-tuning.md has the measurements.
 *
 * tools/bench_sqlite.c #includes this file to open the other layouts and
 * pragma sets it compares (struct sqlite_tuning); the server always gets
 * sqlite_tuned through kvstore_sqlite_ops.open.
 */
#include <config.h>

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "engines/kvstore.h"
#include "util/status.h"

/* Bumped whenever the rowid layout changes; other layouts (benchmark only)
 * store their own numbers so a handle never reads a layout it does not know. */
#define SQLITE_KV_SCHEMA_VERSION 1
#define SQLITE_KV_KEYED_SCHEMA_VERSION 1001

/* How long a statement retries a lock held by another connection (a reader
 * recovering the WAL, an operator's sqlite3 shell) before MCKV_EAGAIN. */
#define SQLITE_KV_BUSY_TIMEOUT_MS 1000

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

/* The winner of docs/sqlite-tuning.md: the WAL threshold is what matters
 * most (fewer, larger checkpoints copy each hot index page back once for
 * many batches); 8 KiB pages load as fast as 4 KiB ones but waste less room
 * around 1 KiB rows; a bigger page cache or mmap did not help. */
static const struct sqlite_tuning sqlite_tuned = {
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

enum sqlite_stmt {
    STMT_BEGIN, STMT_COMMIT, STMT_ROLLBACK,
    STMT_PUT, STMT_DEL, STMT_FLUSH, STMT_FLUSH_ALL,
    STMT_SET_META, STMT_GET_META, STMT_GET, STMT_SCAN, STMT_SCAN_END,
    STMT_COUNT
};

/* [0]: the rowid layout and upsert; [1]: the variant (tuning->keyed for
 * STMT_SCAN, tuning->replace for STMT_PUT); NULL: same as [0]. */
static const char *const sqlite_sql[2][STMT_COUNT] = { {
    [STMT_PUT] = "INSERT INTO kv(key, flags, exptime, cas, value)"
                 " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(key) DO UPDATE SET"
                 " flags = excluded.flags, exptime = excluded.exptime,"
                 " cas = excluded.cas, value = excluded.value",
    [STMT_SCAN] = "SELECT id, key, flags, exptime, cas, value FROM kv"
                  " WHERE id > ?1 AND id <= ?3 ORDER BY id LIMIT ?2",
    [STMT_SCAN_END] = "SELECT max(id) FROM kv",
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_DEL] = "DELETE FROM kv WHERE key = ?1",
    [STMT_FLUSH] = "DELETE FROM kv WHERE cas < ?1",
    [STMT_FLUSH_ALL] = "DELETE FROM kv",
    [STMT_SET_META] = "INSERT INTO meta(name, value) VALUES(?1, ?2)"
                      " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
    [STMT_GET_META] = "SELECT value FROM meta WHERE name = ?1",
    [STMT_GET] = "SELECT flags, exptime, cas, value FROM kv WHERE key = ?1",
}, {
    [STMT_PUT] = "INSERT OR REPLACE INTO kv(key, flags, exptime, cas, value)"
                 " VALUES(?1, ?2, ?3, ?4, ?5)",
    [STMT_SCAN] = "SELECT 0, key, flags, exptime, cas, value FROM kv"
                  " WHERE key > ?1 ORDER BY key LIMIT ?2",
} };

static const char sqlite_create_rowid[] =
    "CREATE TABLE kv(id INTEGER PRIMARY KEY, key BLOB NOT NULL,"
    " flags INTEGER NOT NULL, exptime INTEGER NOT NULL, cas INTEGER NOT NULL,"
    " value BLOB NOT NULL);"
    "CREATE UNIQUE INDEX kv_key ON kv(key);";
static const char sqlite_create_keyed[] =
    "CREATE TABLE kv(key BLOB PRIMARY KEY, flags INTEGER NOT NULL,"
    " exptime INTEGER NOT NULL, cas INTEGER NOT NULL, value BLOB NOT NULL)"
    " WITHOUT ROWID;";
static const char sqlite_create_meta[] =
    "CREATE TABLE meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL);";

/* The checkpointer thread of a writer handle. `lock` guards everything but
 * `db` and `thread`, and is never held during a checkpoint. */
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
    char errmsg[512];
};

/* Why the last open() on this thread failed: see sqlite_last_error(NULL). */
static _Thread_local char sqlite_open_errmsg[1024];

/* Maps an SQLite result code onto mckv_status. */
static int
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
    default: /* FULL, IOERR, READONLY, CANTOPEN, CORRUPT, NOTADB, PERM, ... */
        return MCKV_EIO;
    }
}

/* Records "what: sqlite message (code) [errno]" and returns the status. */
static int
sqlite_fail(struct kvstore *kv, int rc, const char *what)
{
    const char *msg = kv->db != NULL ? sqlite3_errmsg(kv->db) : sqlite3_errstr(rc);
    int err = kv->db != NULL ? sqlite3_system_errno(kv->db) : 0;
    char ebuf[128];

    if (err != 0 && ((rc & 0xff) == SQLITE_IOERR || (rc & 0xff) == SQLITE_CANTOPEN))
        snprintf(kv->errmsg, sizeof(kv->errmsg), "%s: %s (sqlite %d, errno %d: %s)",
                 what, msg, rc, err, strerror_r(err, ebuf, sizeof(ebuf)));
    else
        snprintf(kv->errmsg, sizeof(kv->errmsg), "%s: %s (sqlite %d)", what, msg, rc);
    return sqlite_status(rc);
}

static int
sqlite_fail_msg(struct kvstore *kv, int status, const char *msg)
{
    snprintf(kv->errmsg, sizeof(kv->errmsg), "%s", msg);
    return status;
}

/* Returns the handle's cached statement `id`, preparing it on first use. */
static int
sqlite_stmt(struct kvstore *kv, enum sqlite_stmt id, sqlite3_stmt **out)
{
    bool variant = id == STMT_SCAN ? kv->tuning->keyed : kv->tuning->replace;
    const char *sql;
    int rc;

    if (kv->stmt[id] == NULL) {
        sql = variant && sqlite_sql[1][id] != NULL ? sqlite_sql[1][id] : sqlite_sql[0][id];
        rc = sqlite3_prepare_v3(kv->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                &kv->stmt[id], NULL);
        if (rc != SQLITE_OK)
            return sqlite_fail(kv, rc, "prepare");
    }
    *out = kv->stmt[id];
    return MCKV_OK;
}

/* Steps a statement that returns no rows, then resets it. */
static int
sqlite_run(struct kvstore *kv, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    int status = rc == SQLITE_DONE || rc == SQLITE_ROW ? MCKV_OK : sqlite_fail(kv, rc, what);

    sqlite3_reset(st);
    return status;
}

static int
sqlite_exec_id(struct kvstore *kv, enum sqlite_stmt id, const char *what)
{
    sqlite3_stmt *st = NULL;
    int status = sqlite_stmt(kv, id, &st);

    return status < 0 ? status : sqlite_run(kv, st, what);
}

/* One-off SQL (pragmas, schema): not cached. */
static int
sqlite_exec_sql(struct kvstore *kv, const char *sql)
{
    int rc = sqlite3_exec(kv->db, sql, NULL, NULL, NULL);

    return rc == SQLITE_OK ? MCKV_OK : sqlite_fail(kv, rc, sql);
}

/* Runs one-off SQL that yields one row; its first column goes to *value
 * (MCKV_ENOTFOUND for no row). `text` (may be NULL) receives it as text. */
static int
sqlite_query(struct kvstore *kv, const char *sql, int64_t *value, char *text, size_t ntext)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(kv->db, sql, -1, &st, NULL);
    int status;

    if (rc != SQLITE_OK)
        return sqlite_fail(kv, rc, sql);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (value != NULL)
            *value = sqlite3_column_int64(st, 0);
        if (text != NULL) {
            const unsigned char *s = sqlite3_column_text(st, 0);
            snprintf(text, ntext, "%s", s != NULL ? (const char *)s : "");
        }
        status = MCKV_OK;
    } else if (rc == SQLITE_DONE) {
        status = MCKV_ENOTFOUND;
    } else {
        status = sqlite_fail(kv, rc, sql);
    }
    sqlite3_finalize(st);
    return status;
}

static int
sqlite_pragma(struct kvstore *kv, const char *name, int64_t value)
{
    char sql[96];

    snprintf(sql, sizeof(sql), "PRAGMA %s = %" PRId64, name, value);
    return sqlite_exec_sql(kv, sql);
}

static uint64_t
sqlite_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* wal_hook: called after each commit with the number of frames in the WAL. */
static int
sqlite_on_wal(void *arg, sqlite3 *db, const char *name, int frames)
{
    struct kvstore *kv = arg;

    (void)db;
    (void)name;
    /* A restart is seen as a count that went down: it only misses one after
     * a WAL smaller than this commit, and a cycle ends on a WAL of
     * ckpt_bytes or more. */
    if (frames < kv->wal_frames) {
        kv->wal_gen++;            /* the WAL restarted from its beginning */
        kv->wal_frames_ckpt = 0;
    }
    kv->wal_frames = frames;
    if (frames > kv->wal_frames_max)
        kv->wal_frames_max = frames;
    return SQLITE_OK;
}

/* Writer: one PASSIVE checkpoint on the writer's connection. Readers holding
 * old snapshots only limit how far it gets (PASSIVE never waits); BUSY (the
 * checkpointer is still copying) is not an error. A failure leaves the
 * commit intact; it is counted and retried next time. */
static void
sqlite_writer_checkpoint(struct kvstore *kv)
{
    int nlog = 0, nckpt = 0;
    int rc = sqlite3_wal_checkpoint_v2(kv->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &nlog, &nckpt);

    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
        kv->checkpoint_errors++;
        sqlite_fail(kv, rc, "checkpoint");
        return;
    }
    kv->checkpoints++;
    if (nckpt > kv->wal_frames_ckpt)
        kv->wal_frames_ckpt = nckpt;
}

/* Writer, with c->lock held: takes in the result of a finished round. */
static void
sqlite_ckptr_collect(struct kvstore *kv, struct sqlite_ckptr *c)
{
    if (!c->done)
        return;
    c->done = false;
    /* A round that ran across a WAL restart says nothing of the new WAL. */
    if (c->done_gen == kv->wal_gen && c->done_ckpt > kv->wal_frames_ckpt)
        kv->wal_frames_ckpt = c->done_ckpt;
}

/* Writer, after a commit: the checkpoint cycle of the header comment. */
static void
sqlite_maybe_checkpoint(struct kvstore *kv)
{
    struct sqlite_ckptr *c = kv->ckptr;
    uint64_t t0 = 0, us;
    bool busy, self = false;
    int tail, finish;

    if (kv->ckpt_pages == 0 || kv->wal_frames - kv->wal_frames_ckpt == 0)
        return;
    if (c == NULL) {
        /* No checkpointer: the writer copies everything, past the threshold. */
        if (kv->wal_frames - kv->wal_frames_ckpt < kv->ckpt_pages)
            return;
        t0 = sqlite_now_us();
        sqlite_writer_checkpoint(kv);
        goto account;
    }
    pthread_mutex_lock(&c->lock);
    sqlite_ckptr_collect(kv, c);
    busy = c->request || c->running;
    if (kv->wal_frames >= kv->ckpt_cap_pages) {
        /* The disk is slower than the writer: wait for the round, then
         * checkpoint here, so the WAL stays bounded (back-pressure). */
        t0 = sqlite_now_us();
        if (busy)
            kv->checkpoint_waits++;
        while (c->request || c->running)
            pthread_cond_wait(&c->idle, &c->lock);
        sqlite_ckptr_collect(kv, c);
        kv->checkpoints_capped++;
        self = true;
    } else if (!busy) {
        /* Rounds shrink the tail only while the checkpointer outpaces the
         * writer; at par they stall at some size. The longer a cycle runs,
         * the longer a tail the writer accepts (at the cap, all of it). */
        tail = kv->wal_frames - kv->wal_frames_ckpt;
        finish = kv->wal_frames / kv->ckpt_finish_div;
        if (kv->wal_frames_ckpt > 0 && tail <= finish) {
            self = true;          /* a short tail after a round: finish it */
        } else if (kv->wal_frames_ckpt > 0 || tail >= kv->ckpt_pages) {
            c->request = true;    /* a new cycle, or another round of it */
            c->request_gen = kv->wal_gen;
            pthread_cond_signal(&c->wake);
        }
    }
    pthread_mutex_unlock(&c->lock);
    if (!self)
        return;
    if (t0 == 0)
        t0 = sqlite_now_us();
    sqlite_writer_checkpoint(kv);
account:
    us = sqlite_now_us() - t0;
    kv->checkpoint_us += us;
    kv->checkpoint_max_us = us > kv->checkpoint_max_us ? us : kv->checkpoint_max_us;
}

/* Checkpointer thread: fsyncs the database file (op SQLITE_FCNTL_FILE_POINTER)
 * or the WAL (SQLITE_FCNTL_JOURNAL_POINTER) through its own connection's
 * handles (closing another descriptor of the file would drop SQLite's
 * locks). */
static int
sqlite_ckptr_sync(struct sqlite_ckptr *c, int op)
{
    sqlite3_file *file = NULL;
    int rc = sqlite3_file_control(c->db, "main", op, &file);

    if (rc != SQLITE_OK || file == NULL || file->pMethods == NULL)
        return rc != SQLITE_OK ? rc : SQLITE_OK;  /* no WAL open: nothing to sync */
    return file->pMethods->xSync(file, SQLITE_SYNC_NORMAL);
}

/* Checkpointer thread: runs a PASSIVE checkpoint per request of the writer
 * until close() says stop. A round takes no lock the writer needs for its
 * commits (only SQLite's checkpoint lock, which makes a checkpoint of the
 * writer return BUSY at once), so commits go on meanwhile. */
static void *
sqlite_ckptr_main(void *arg)
{
    struct sqlite_ckptr *c = arg;

    pthread_mutex_lock(&c->lock);
    for (;;) {
        uint64_t gen, t0, us;
        int nlog = 0, nckpt = 0, rc;

        while (!c->stop && !c->request)
            pthread_cond_wait(&c->wake, &c->lock);
        if (c->stop)
            break;
        c->request = false;
        c->running = true;
        gen = c->request_gen;
        pthread_mutex_unlock(&c->lock);

        t0 = sqlite_now_us();
        rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &nlog, &nckpt);
        /* A checkpoint that stops short of the end of the WAL (the writer
         * appended meanwhile: always, here) copies pages without syncing the
         * database file; the next one that reaches the end syncs it all,
         * which would be the writer's. Sync what this round copied now (a
         * sync with nothing left to write is cheap). Then sync the frames
         * appended during the round: the writer's checkpoint of that tail
         * then only syncs its last commits before copying. */
        if (rc == SQLITE_OK && nckpt > 0)
            rc = sqlite_ckptr_sync(c, SQLITE_FCNTL_FILE_POINTER);
        if (rc == SQLITE_OK && nckpt > 0)
            rc = sqlite_ckptr_sync(c, SQLITE_FCNTL_JOURNAL_POINTER);
        us = sqlite_now_us() - t0;

        pthread_mutex_lock(&c->lock);
        c->running = false;
        c->us += us;
        c->max_us = us > c->max_us ? us : c->max_us;
        if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
            c->errors++;
            snprintf(c->errmsg, sizeof(c->errmsg), "checkpoint: %s (sqlite %d)",
                     sqlite3_errmsg(c->db), rc);
        } else {
            c->rounds++;
            c->done = true;
            c->done_gen = gen;
            c->done_ckpt = nckpt;
        }
        pthread_cond_broadcast(&c->idle);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* Writer handle, in close() or a failed open(): stops and joins the thread
 * (after the round it may be running), then closes its connection. */
static void
sqlite_ckptr_destroy(struct kvstore *kv)
{
    struct sqlite_ckptr *c = kv->ckptr;

    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    c->stop = true;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    sqlite3_close(c->db);
    pthread_cond_destroy(&c->idle);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->lock);
    free(c);
    kv->ckptr = NULL;
}

/* Writer handle, in open() once the schema exists: the checkpointer's
 * connection (read-write: a checkpoint writes the database file) and
 * thread. */
static int
sqlite_ckptr_create(struct kvstore *kv)
{
    struct sqlite_ckptr *c = calloc(1, sizeof(*c));
    const char *step = "open";
    int rc;

    if (c == NULL)
        return sqlite_fail_msg(kv, MCKV_ENOMEM, "checkpointer: out of memory");
    rc = sqlite3_open_v2(kv->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, SQLITE_KV_BUSY_TIMEOUT_MS);
    /* A connection knows the file is in WAL mode only once it read it:
     * before that its checkpoints do nothing (pnLog = -1). */
    step = "read";
    rc = sqlite3_exec(c->db, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->wake, NULL);
    pthread_cond_init(&c->idle, NULL);
    /* no signals for it: the process's handlers run elsewhere */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int prc = pthread_create(&c->thread, NULL, sqlite_ckptr_main, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (prc != 0) {
        pthread_cond_destroy(&c->idle);
        pthread_cond_destroy(&c->wake);
        pthread_mutex_destroy(&c->lock);
        sqlite3_close(c->db);
        free(c);
        return sqlite_fail_msg(kv, MCKV_ENOMEM, "checkpointer: pthread_create failed");
    }
    pthread_setname_np(c->thread, "mckv-checkpoint");   /* top -H, perf */
    kv->ckptr = c;
    return MCKV_OK;

fail:
    snprintf(kv->errmsg, sizeof(kv->errmsg), "checkpointer: %s: %s (sqlite %d)", step,
             c->db != NULL ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc), rc);
    sqlite3_close(c->db);
    free(c);
    return sqlite_status(rc);
}

/* The size the WAL file is cut back to when it restarts. */
static int64_t
sqlite_wal_limit_bytes(const struct sqlite_tuning *t)
{
    if (t->ckpt_in_writer)
        return t->ckpt_bytes;
    return t->ckpt_bytes * (t->ckpt_cap_mul > 1 ? t->ckpt_cap_mul : 2);
}

/* Writer: pragmas that only take effect on a new file, then per-connection
 * ones. */
static int
sqlite_setup_writer(struct kvstore *kv, const struct kvstore_options *opts)
{
    const struct sqlite_tuning *t = kv->tuning;
    char mode[16];
    int status;

    if (t->page_size != 0 && (status = sqlite_pragma(kv, "page_size", t->page_size)) < 0)
        return status;
    if (t->wal) {
        if ((status = sqlite_query(kv, "PRAGMA journal_mode = WAL", NULL, mode,
                                   sizeof(mode))) < 0)
            return status;
        if (strcmp(mode, "wal") != 0)
            return sqlite_fail_msg(kv, MCKV_EIO, "journal_mode=WAL refused");
        if (t->ckpt_bytes != 0) {
            /* The WAL file shrinks back to this size when it restarts. That
             * truncation runs in the commit that restarts it, and takes
             * 50-100 ms for a few hundred MiB: with a checkpointer the limit
             * is the cap, which the WAL rarely passes. */
            if ((status = sqlite_pragma(kv, "journal_size_limit",
                                        sqlite_wal_limit_bytes(t))) < 0)
                return status;
            sqlite3_wal_hook(kv->db, sqlite_on_wal, kv);  /* replaces autocheckpoint */
        }
    }
    if ((opts->synchronous_full || !t->sqlite_sync) &&
        (status = sqlite_pragma(kv, "synchronous", opts->synchronous_full ? 2 : 1)) < 0)
        return status;
    /* FAST: zero deleted content only where that costs no extra I/O. */
    if (!t->sqlite_secure_delete)
        return sqlite_exec_sql(kv, "PRAGMA secure_delete = FAST");
    return MCKV_OK;
}

static int64_t
sqlite_schema_version(const struct kvstore *kv)
{
    return kv->tuning->keyed ? SQLITE_KV_KEYED_SCHEMA_VERSION : SQLITE_KV_SCHEMA_VERSION;
}

/* The file must be an mckv database of the version this code reads (a
 * reader opens only that; the writer also creates one in an empty file). */
static int
sqlite_check_version(struct kvstore *kv)
{
    int64_t version = 0;
    int status = sqlite_query(kv, "SELECT value FROM meta WHERE name = 'schema_version'",
                              &version, NULL, 0);

    if (status == MCKV_ENOTFOUND)
        return sqlite_fail_msg(kv, MCKV_EINVAL, "meta table has no schema_version");
    if (status == MCKV_OK && version != sqlite_schema_version(kv)) {
        snprintf(kv->errmsg, sizeof(kv->errmsg), "schema_version is %" PRId64
                 ", this mckv reads %" PRId64, version, sqlite_schema_version(kv));
        return MCKV_EINVAL;
    }
    return status;
}

/* Writer: creates the tables in a new file or checks the version of an
 * existing one, in one transaction. */
static int
sqlite_setup_schema(struct kvstore *kv)
{
    int64_t ntables = 0, nours = 0;
    char sql[128];
    int status;

    if ((status = sqlite_exec_sql(kv, "BEGIN IMMEDIATE")) < 0)
        return status;
    status = sqlite_query(kv, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
                          &ntables, NULL, 0);
    if (status == MCKV_OK)
        status = sqlite_query(kv, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
                              " AND name IN ('kv', 'meta')", &nours, NULL, 0);
    if (status < 0)
        goto out;
    if (ntables == 0) {
        snprintf(sql, sizeof(sql), "INSERT INTO meta VALUES('schema_version', %" PRId64 ")",
                 sqlite_schema_version(kv));
        if ((status = sqlite_exec_sql(kv, sqlite_create_meta)) < 0 ||
            (status = sqlite_exec_sql(kv, kv->tuning->keyed ? sqlite_create_keyed
                                                             : sqlite_create_rowid)) < 0 ||
            (status = sqlite_exec_sql(kv, sql)) < 0)
            goto out;
        goto commit;
    }
    if (nours != 2) {
        status = sqlite_fail_msg(kv, MCKV_EINVAL, "not an mckv database (no kv/meta tables)");
        goto out;
    }
    if ((status = sqlite_check_version(kv)) < 0)
        goto out;
commit:
    if ((status = sqlite_exec_sql(kv, "COMMIT")) == MCKV_OK)
        return MCKV_OK;
out:
    sqlite3_exec(kv->db, "ROLLBACK", NULL, NULL, NULL);
    return status;
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

/* Opens a handle with an explicit tuning (the benchmark's entry point). */
static int
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
    if ((rc = sqlite3_open_v2(opts->path, &kv->db, flags, NULL)) != SQLITE_OK) {
        status = sqlite_fail(kv, rc, "open");
        goto fail;
    }
    sqlite3_extended_result_codes(kv->db, 1);
    /* SQLITE_OPEN_READWRITE falls back to read-only on a write-protected
     * file; the flusher would only find out at its first commit. */
    if (!opts->read_only && sqlite3_db_readonly(kv->db, "main") == 1) {
        status = sqlite_fail_msg(kv, MCKV_EIO, "open: database file is read-only");
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
    snprintf(sqlite_open_errmsg, sizeof(sqlite_open_errmsg), "sqlite %s: %s",
             opts->path, kv->errmsg);
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

static void
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

static int
sqlite_check_writer(struct kvstore *kv)
{
    if (kv->read_only)
        return sqlite_fail_msg(kv, MCKV_EINVAL, "write on a read-only handle");
    return MCKV_OK;
}

/* The statement for a write inside the open transaction (kvstore.h: writes
 * happen between begin() and commit() only). */
static int
sqlite_write_stmt(struct kvstore *kv, enum sqlite_stmt id, sqlite3_stmt **st)
{
    int status = sqlite_check_writer(kv);

    if (status < 0)
        return status;
    if (sqlite3_get_autocommit(kv->db))
        return sqlite_fail_msg(kv, MCKV_EINVAL, "write outside a transaction");
    return sqlite_stmt(kv, id, st);
}

static int
sqlite_begin(struct kvstore *kv)
{
    int status = sqlite_check_writer(kv);

    if (status < 0)
        return status;
    if (!sqlite3_get_autocommit(kv->db))
        return sqlite_fail_msg(kv, MCKV_EINVAL, "begin: a transaction is already open");
    return sqlite_exec_id(kv, STMT_BEGIN, "begin");
}

/* Binds a blob that may be empty (a NULL pointer would bind SQL NULL). */
static int
sqlite_bind_bytes(sqlite3_stmt *st, int col, const char *p, int n)
{
    if (n == 0)
        return sqlite3_bind_zeroblob(st, col, 0);
    return sqlite3_bind_blob(st, col, p, n, SQLITE_STATIC);
}

static int
sqlite_put(struct kvstore *kv, const struct kvstore_record *rec)
{
    sqlite3_stmt *st = NULL;
    int status = sqlite_write_stmt(kv, STMT_PUT, &st);

    if (status < 0)
        return status;
    if (sqlite_bind_bytes(st, 1, rec->key, rec->nkey) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, rec->flags) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, rec->exptime) != SQLITE_OK ||
        sqlite3_bind_int64(st, 4, (int64_t)rec->cas) != SQLITE_OK ||
        sqlite_bind_bytes(st, 5, rec->value, (int)rec->vlen) != SQLITE_OK)
        return sqlite_fail(kv, sqlite3_errcode(kv->db), "put: bind");
    return sqlite_run(kv, st, "put");
}

/* Deleting an absent key is not an error. */
static int
sqlite_del(struct kvstore *kv, const char *key, uint8_t nkey)
{
    sqlite3_stmt *st = NULL;
    int status = sqlite_write_stmt(kv, STMT_DEL, &st);

    if (status < 0)
        return status;
    sqlite_bind_bytes(st, 1, key, nkey);
    return sqlite_run(kv, st, "del");
}

/* CAS values are stored as signed 64-bit integers: a cas_below past INT64_MAX
 * means every row (a WHERE-less DELETE, which SQLite does without a scan). */
static int
sqlite_flush(struct kvstore *kv, uint64_t cas_below)
{
    bool all = cas_below > (uint64_t)INT64_MAX;
    sqlite3_stmt *st = NULL;
    int status = sqlite_write_stmt(kv, all ? STMT_FLUSH_ALL : STMT_FLUSH, &st);

    if (status < 0)
        return status;
    if (!all)
        sqlite3_bind_int64(st, 1, (int64_t)cas_below);
    return sqlite_run(kv, st, "flush");
}

static int
sqlite_set_meta(struct kvstore *kv, const char *name, int64_t value)
{
    sqlite3_stmt *st = NULL;
    int status = sqlite_write_stmt(kv, STMT_SET_META, &st);

    if (status < 0)
        return status;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, value);
    return sqlite_run(kv, st, "set_meta");
}

static int
sqlite_commit(struct kvstore *kv)
{
    int status = sqlite_check_writer(kv);

    if (status < 0)
        return status;
    if (sqlite3_get_autocommit(kv->db))
        return sqlite_fail_msg(kv, MCKV_EINVAL, "commit: no open transaction");
    /* On failure the transaction may still be open (BUSY) or already rolled
     * back by SQLite (I/O error, disk full): the caller calls rollback(). */
    if ((status = sqlite_exec_id(kv, STMT_COMMIT, "commit")) < 0)
        return status;
    kv->commits++;
    sqlite_maybe_checkpoint(kv);
    return MCKV_OK;
}

/* Succeeds when no transaction is open: SQLite rolls back by itself after
 * some errors (disk full, I/O error during commit). */
static int
sqlite_rollback(struct kvstore *kv)
{
    int status = sqlite_check_writer(kv);

    if (status < 0)
        return status;
    kv->rollbacks++;
    if (sqlite3_get_autocommit(kv->db))
        return MCKV_OK;
    return sqlite_exec_id(kv, STMT_ROLLBACK, "rollback");
}

static int
sqlite_get_meta(struct kvstore *kv, const char *name, int64_t *value)
{
    sqlite3_stmt *st = NULL;
    int status = sqlite_stmt(kv, STMT_GET_META, &st);
    int rc;

    if (status < 0)
        return status;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *value = sqlite3_column_int64(st, 0);
    else if (rc == SQLITE_DONE)
        status = MCKV_ENOTFOUND;
    else
        status = sqlite_fail(kv, rc, "get_meta");
    sqlite3_reset(st);
    return status;
}

static int
sqlite_get(struct kvstore *kv, const char *key, uint8_t nkey,
           kvstore_alloc_fn alloc, void *ctx, struct kvstore_record *rec)
{
    sqlite3_stmt *st = NULL;
    const void *value;
    char *dst;
    int status = sqlite_stmt(kv, STMT_GET, &st);
    int rc, n;

    if (status < 0)
        return status;
    sqlite_bind_bytes(st, 1, key, nkey);
    if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
        status = rc == SQLITE_DONE ? MCKV_ENOTFOUND : sqlite_fail(kv, rc, "get");
        goto out;
    }
    value = sqlite3_column_blob(st, 3);
    if ((n = sqlite3_column_bytes(st, 3)) > 0 && value == NULL) {
        status = sqlite_fail(kv, SQLITE_NOMEM, "get: value");
        goto out;
    }
    rec->key = key;
    rec->nkey = nkey;
    rec->flags = (uint32_t)sqlite3_column_int64(st, 0);
    rec->exptime = sqlite3_column_int64(st, 1);
    rec->cas = (uint64_t)sqlite3_column_int64(st, 2);
    rec->value = NULL;
    rec->vlen = (uint32_t)n;
    if ((dst = alloc(ctx, rec)) == NULL) {
        status = sqlite_fail_msg(kv, MCKV_ENOMEM, "get: alloc callback returned NULL");
        goto out;
    }
    if (n > 0)
        memcpy(dst, value, (size_t)n);
    rec->value = dst;
out:
    sqlite3_reset(st);  /* ends the read transaction */
    return status;
}

/* Each call is one read transaction of at most `max` rows, so a warmup in
 * chunks never pins a WAL snapshot for long. A row for which fn returns false
 * is not counted as visited: the next call starts with it. */
static int
sqlite_scan_range(struct kvstore *kv, uint64_t *cursor, uint64_t end,
                  unsigned max, kvstore_scan_fn fn, void *ctx)
{
    bool keyed = kv->tuning->keyed;
    uint64_t pos = *cursor;
    struct kvstore_record rec;
    sqlite3_stmt *st = NULL;
    unsigned visited = 0;
    bool stopped = false;
    int status, rc = SQLITE_DONE;

    if (max == 0)
        return sqlite_fail_msg(kv, MCKV_EINVAL, "scan: max is 0");
    if (keyed && pos != 0 && pos != kv->scan_rows)
        return sqlite_fail_msg(kv, MCKV_EINVAL, "scan: cursor not from this handle");
    if (!keyed && pos > (uint64_t)INT64_MAX)
        return MCKV_ENOTFOUND;
    if ((status = sqlite_stmt(kv, STMT_SCAN, &st)) < 0)
        return status;
    if (keyed && end != UINT64_MAX)
        return sqlite_fail_msg(kv, MCKV_EINVAL, "scan: no ranges in this layout");
    if (!keyed) {
        rc = sqlite3_bind_int64(st, 1, (int64_t)pos);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(st, 3, end > (uint64_t)INT64_MAX ? INT64_MAX
                                                                      : (int64_t)end);
    } else if (pos == 0)
        rc = sqlite3_bind_zeroblob(st, 1, 0);  /* every key sorts after X'' */
    else
        rc = sqlite3_bind_blob(st, 1, kv->scan_key, kv->scan_nkey, SQLITE_STATIC);
    if (rc != SQLITE_OK || sqlite3_bind_int64(st, 2, max) != SQLITE_OK)
        return sqlite_fail(kv, sqlite3_errcode(kv->db), "scan: bind");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int nkey, vlen;

        rec.key = sqlite3_column_blob(st, 1);
        nkey = sqlite3_column_bytes(st, 1);
        rec.value = sqlite3_column_blob(st, 5);
        vlen = sqlite3_column_bytes(st, 5);
        if (nkey > 255 || (rec.key == NULL && nkey > 0) || (rec.value == NULL && vlen > 0)) {
            rc = (rec.key == NULL || rec.value == NULL) ? SQLITE_NOMEM : SQLITE_CORRUPT;
            break;
        }
        rec.nkey = (uint8_t)nkey;
        rec.flags = (uint32_t)sqlite3_column_int64(st, 2);
        rec.exptime = sqlite3_column_int64(st, 3);
        rec.cas = (uint64_t)sqlite3_column_int64(st, 4);
        rec.vlen = (uint32_t)vlen;
        if (!fn(ctx, &rec)) {
            stopped = true;
            break;
        }
        visited++;
        if (keyed) {
            memcpy(kv->scan_key, rec.key, rec.nkey);
            kv->scan_nkey = rec.nkey;
            pos = kv->scan_rows = pos + 1;
        } else {
            pos = (uint64_t)sqlite3_column_int64(st, 0);
        }
    }
    if (!stopped && rc != SQLITE_DONE)
        status = sqlite_fail(kv, rc, "scan");
    sqlite3_reset(st);
    if (status < 0)
        return status;
    *cursor = pos;
    return visited == 0 && !stopped ? MCKV_ENOTFOUND : MCKV_OK;
}

static int
sqlite_scan(struct kvstore *kv, uint64_t *cursor, unsigned max,
            kvstore_scan_fn fn, void *ctx)
{
    return sqlite_scan_range(kv, cursor, UINT64_MAX, max, fn, ctx);
}

/* The rowid layout's cursor is the id: max(id) is one B-tree descent. */
static int
sqlite_scan_end(struct kvstore *kv, uint64_t *end)
{
    sqlite3_stmt *st = NULL;
    int status, rc;

    if (kv->tuning->keyed)
        return sqlite_fail_msg(kv, MCKV_EINVAL, "scan_end: no ranges in this layout");
    if ((status = sqlite_stmt(kv, STMT_SCAN_END, &st)) < 0)
        return status;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int64_t v = sqlite3_column_int64(st, 0);   /* NULL (empty) reads 0 */
        *end = v > 0 ? (uint64_t)v : 0;
        rc = SQLITE_DONE;
    }
    status = rc == SQLITE_DONE ? MCKV_OK : sqlite_fail(kv, rc, "scan_end");
    sqlite3_reset(st);
    return status;
}

static void
sqlite_stat_u64(kvstore_stat_fn fn, void *ctx, const char *name, uint64_t v)
{
    char buf[24];

    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    fn(ctx, name, buf);
}

static uint64_t
sqlite_file_size(const char *path, const char *suffix)
{
    char name[4096];
    struct stat sb;

    if (snprintf(name, sizeof(name), "%s%s", path, suffix) >= (int)sizeof(name))
        return 0;
    return stat(name, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

/* Thread owning the handle. */
static void
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
            sqlite_stat_u64(fn, ctx, pragmas[i].name, (uint64_t)v);
    for (size_t i = 0; i < sizeof(dbstat) / sizeof(dbstat[0]); i++) {
        int cur = 0, high = 0;

        if (sqlite3_db_status(kv->db, dbstat[i].op, &cur, &high, 0) == SQLITE_OK)
            sqlite_stat_u64(fn, ctx, dbstat[i].name, (uint64_t)cur);
    }
    sqlite_stat_u64(fn, ctx, "db_file_bytes", sqlite_file_size(kv->path, ""));
    sqlite_stat_u64(fn, ctx, "wal_file_bytes", sqlite_file_size(kv->path, "-wal"));
    if (!kv->read_only) {
        sqlite_stat_u64(fn, ctx, "wal_pages", (uint64_t)kv->wal_frames);
        sqlite_stat_u64(fn, ctx, "commits", kv->commits);
        sqlite_stat_u64(fn, ctx, "rollbacks", kv->rollbacks);
        sqlite_stat_u64(fn, ctx, "checkpoints", kv->checkpoints);
        sqlite_stat_u64(fn, ctx, "checkpoint_errors", kv->checkpoint_errors);
        sqlite_stat_u64(fn, ctx, "checkpoint_us", kv->checkpoint_us);
        sqlite_stat_u64(fn, ctx, "checkpoint_max_us", kv->checkpoint_max_us);
        sqlite_stat_u64(fn, ctx, "checkpoints_capped", kv->checkpoints_capped);
        sqlite_stat_u64(fn, ctx, "checkpoint_waits", kv->checkpoint_waits);
        sqlite_stat_u64(fn, ctx, "wal_pages_max", (uint64_t)kv->wal_frames_max);
        sqlite_stat_u64(fn, ctx, "wal_restarts", kv->wal_gen);
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
        sqlite_stat_u64(fn, ctx, "bg_checkpoints", bg[0]);
        sqlite_stat_u64(fn, ctx, "bg_checkpoint_errors", bg[1]);
        sqlite_stat_u64(fn, ctx, "bg_checkpoint_us", bg[2]);
        sqlite_stat_u64(fn, ctx, "bg_checkpoint_max_us", bg[3]);
    }
}

/* last_error(NULL) describes the last failed open() of the calling thread. */
static const char *
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
};
