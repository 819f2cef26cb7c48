/*
 * sqlite_ckpt.c: the WAL of the SQLite engine's writer handle and its
 * checkpoints.
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
 */
#include <config.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "engines/sqlite_priv.h"
#include "util/status.h"

static uint64_t
sqlite_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* wal_hook: called after each commit with the number of frames in the WAL. */
int
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
void
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
void
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
int
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
int64_t
sqlite_wal_limit_bytes(const struct sqlite_tuning *t)
{
    if (t->ckpt_in_writer)
        return t->ckpt_bytes;
    return t->ckpt_bytes * (t->ckpt_cap_mul > 1 ? t->ckpt_cap_mul : 2);
}
