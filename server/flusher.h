/*
 * flusher.h: the single writer of the engine.
 *
 * Every change a worker makes to the cache reaches the flusher through that
 * worker's own SPSC ring (the cache calls flusher_queue_change() on the
 * worker's thread). One thread drains every ring into a batch, writes it in
 * one transaction and commits; after a commit the items are marked clean
 * and released, and each worker's committed sequence advances. A failed
 * transaction is rolled back and retried with backoff; its records stay
 * queued and its items stay dirty. The flusher knows nothing of
 * connections: it reports a commit through a callback with the worker's id.
 */
#ifndef MCKV_SERVER_FLUSHER_H
#define MCKV_SERVER_FLUSHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cache_change;
struct hist;
struct kvstore;
struct persist_engine;
struct throttle_input;

struct flusher_options {
    const struct persist_engine *engine;
    struct kvstore *kv;           /* read-write; the flusher thread's from
                                     flusher_start() to flusher_stop() */
    unsigned nworkers;            /* one queue each */
    uint32_t batch_max;           /* rows per transaction at most */
    bool sync;                    /* durability = sync: commit at once */
    uint32_t flush_interval_ms;   /* async: the longest wait for writes */
    uint64_t soft_bytes, hard_bytes;   /* backpressure limits (dirty bytes) */
    uint32_t delay_us;            /* testing knob: sleep before each put */
    /* Flusher thread, sync durability only: `worker`'s committed sequence
     * advanced (flusher_committed_seq). May be NULL. */
    void (*committed)(void *ctx, unsigned worker);
    void *ctx;
};

/* Main thread, before any worker queues: the queues and the wake fd. 0, or
 * -1 with err set. */
int flusher_setup(const struct flusher_options *o, char *err, size_t errlen);
/* Main thread: starts the thread. 0, or -1 with err set. */
int flusher_start(char *err, size_t errlen);
/* Main thread, after every worker stopped queueing: writes what is queued,
 * commits, joins the thread (giving up on a failing disk after 30 s). The
 * engine handle is the caller's again. No-op when not started. */
void flusher_stop(void);
/* Main thread, after flusher_stop(): frees the queues. */
void flusher_teardown(void);

/* Worker thread: binds the calling thread to queue `worker`. */
void flusher_bind_worker(unsigned worker);
/* The cache's on_change hook (a worker thread; changes made on any other
 * thread are not queued: a put is marked clean at once). */
void flusher_queue_change(const struct cache_change *change);

/* Worker thread: the sequence number of the last change queued on this
 * thread's ring since the previous call (0: none), so that the request
 * that made it can wait for its commit. */
uint64_t flusher_take_write_seq(void);
/* Changes queued on `worker`'s ring so far, and committed (any thread; the
 * committed count is read with acquire: the items it covers are clean). */
uint64_t flusher_queued_seq(unsigned worker);
uint64_t flusher_committed_seq(unsigned worker);

/* Worker thread: fills the backlog fields of the backpressure law (dirty
 * bytes, limits, drain rates, this worker's share, its queue's fill). */
void flusher_throttle_input(struct throttle_input *in);

/* Any thread (SIGHUP): new limits and flush interval. */
void flusher_set_limits(uint64_t soft_bytes, uint64_t hard_bytes,
                        uint32_t flush_interval_ms);
/* Any thread: a delayed flush_all is pending for unix time `when` (0: none
 * any more); written to the meta table with the next commit. */
void flusher_record_flush_at(int64_t when);

struct flusher_counters {
    int64_t dirty_items, dirty_bytes;     /* queued, not committed */
    uint64_t soft_bytes, hard_bytes;
    uint64_t queue_depth;                 /* all rings */
    uint64_t items_persisted, deletes_persisted, flushes_persisted;
    uint64_t commits, commit_us_total, commit_us_max;
    uint64_t batch_last, batch_max, batch_items_total;
    uint64_t drain_bytes_per_s, drain_writes_per_s;
    uint64_t engine_errors, queue_overflows;
    uint64_t items_superseded;   /* puts never written: a newer version of
                                    the key was queued before them */
};
/* Any thread: a snapshot (each counter exact, not all at one instant). */
void flusher_counters(struct flusher_counters *out);
/* Any thread: adds the commit-time histogram into *out. */
void flusher_commit_hist(struct hist *out);
#endif
