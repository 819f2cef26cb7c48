/*
 * flusher.c: the single writer thread (contract in flusher.h).
 *
 * Queues. Each worker owns an SPSC ring to the flusher. A record is the
 * item itself for a put (the cache handed us a reference; nothing is
 * copied) or a small heap record tagged in its low bit for a delete.
 * flush_all does not go through the rings: its CAS mark is a single atomic
 * the flusher reads (a flush may fire on any thread).
 *
 * Batches. The flusher pops the rings into a batch as records arrive (while
 * it gathers, and every FLUSHER_DRAIN_EVERY rows while it writes the other
 * batch), one put per key (server/flusher_batch.h: a version superseded
 * before its write is released at once), at most batch_max records; then
 * writes it in one transaction and commits. The newest version wins: a put
 * is written only while its item is still the linked version of its key
 * (an older one was replaced, and the newer version has a record of its
 * own, in this batch or a later one, which commits later), and a delete
 * only while no newer value exists in memory. After the commit the items
 * are marked clean and released, and each worker's committed sequence
 * advances (sync durability waits on it).
 * A failed transaction is rolled back and retried with backoff, the
 * records kept: items stay dirty (never evicted) until the disk takes them.
 * Once the engine is damaged (server/engine_health.h: this thread's own
 * MCKV_ECORRUPT, or a reader's) the flusher writes nothing more: the batch
 * it holds stays dirty in memory until shutdown, when it is given up at
 * once (retrying a damaged file cannot succeed), and writes are refused
 * at admission meanwhile, so nothing more queues up.
 *
 * Wake-ups. A worker writes its ring's eventfd only while the flusher
 * sleeps (F.sleeping): an awake flusher looks at the rings by itself, so
 * under load a set costs the worker no system call.
 *
 * Engine statistics. The write handle belongs to this thread, so it takes a
 * snapshot of the engine's counters at most once a second
 * (server/engine_stats.h): a stats request never waits for a commit.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "engines/kvstore.h"
#include "server/cache.h"
#include "server/engine_health.h"
#include "server/engine_stats.h"
#include "server/expiry.h"
#include "server/flusher.h"
#include "server/flusher_batch.h"
#include "server/persist_priv.h"
#include "server/throttle.h"
#include "util/hist.h"
#include "util/log.h"
#include "util/ring.h"
#include "util/status.h"

/* Per worker ring, 8 bytes a record, touched as used. Rings fill during one
 * COMMIT call (a batch of 100k keys: ~110 MB of pages, seconds on a busy
 * machine); a quarter of 256k (the throttle's queue term) delayed by 1 s. */
#define FLUSHER_RING_SIZE (1u << 20)
#define FLUSHER_BACKOFF_MIN_MS 50
#define FLUSHER_BACKOFF_MAX_MS 5000
#define FLUSHER_STOP_GIVE_UP_US (30u * 1000000u)
#define FLUSHER_GATHER_MAX_MS 10  /* longest gather before a commit */
#define FLUSHER_GATHER_STEP_MS 2  /* how often a gathering flusher looks */
#define DEL_TAG 1u
#define FLUSHER_PURGES_MAX 256    /* expired rows deleted per transaction */

struct del_rec {
    uint8_t nkey;
    char key[];
};

struct fqueue {
    struct ring ring;           /* worker -> flusher */
    /* records pushed: written by the worker only (a relaxed load and
     * store, no lock prefix), read by stats from any thread */
    _Atomic uint64_t queued;
    _Atomic uint64_t committed; /* records committed (flusher writes) */
    uint64_t drained;           /* records popped (flusher only) */
    void *held;                 /* popped, waiting for room in a batch */
};

static struct {
    const struct persist_engine *engine;
    struct kvstore *kv;
    unsigned nworkers;
    struct fqueue *q;
    bool sync;
    uint32_t batch_max;
    uint32_t delay_us;
    _Atomic uint32_t flush_interval_ms;   /* changed by SIGHUP */
    _Atomic uint64_t soft_bytes, hard_bytes;
    void (*committed)(void *ctx, unsigned worker);
    void *ctx;
    pthread_t thread;
    bool started;
    atomic_bool stopping;
    int wake_fd;                  /* wakes the thread (flush_all, stop) */
    /* In (or entering) its idle wait: only then does a push write the
     * ring's eventfd. Full fences on both sides (worker: push, fence, load;
     * flusher: store, fence, look): one of them sees the other. */
    atomic_bool sleeping;
    struct fbatch batch[2];       /* flusher only: filled while the other commits */
    struct fbatch *filling;       /* the one records are popped into */
    _Atomic uint64_t flush_mark;  /* pending flush_all: cas_below */
    _Atomic int64_t flush_at_new; /* delayed flush_all to record (-1: none) */

    atomic_int_fast64_t dirty_items;
    atomic_int_fast64_t dirty_bytes;
    _Atomic uint64_t committing_bytes;   /* of dirty_bytes: in the commit under way */
    _Atomic uint64_t items_persisted, deletes_persisted, flushes_persisted;
    _Atomic uint64_t commits, commit_us_total, commit_us_max;
    _Atomic uint64_t batch_last, batch_max_seen, batch_items_total;
    _Atomic uint64_t drain_rate_bps;   /* bytes committed per second (EWMA) */
    _Atomic uint64_t drain_rate_ips;   /* writes committed per second (EWMA) */
    _Atomic uint64_t engine_errors, queue_overflows;
    _Atomic uint64_t items_superseded; /* puts never written: a newer version won */
    struct hist commit_hist;           /* flusher thread writes */
} F = { .wake_fd = -1, .flush_at_new = -1 };

static _Thread_local int my_worker = -1;
/* this worker's last queued sequence not yet taken (worker thread only) */
static _Thread_local uint64_t my_untaken_seq;

#define ENGINE_STATS_EVERY_US 1000000u

static void
wake_flusher(void)
{
    uint64_t one = 1;
    ssize_t w = write(F.wake_fd, &one, sizeof(one));
    (void)w;
}

/* ------------------------------------------------------------ the queues */

void
flusher_bind_worker(unsigned worker)
{
    my_worker = (int)worker;
}

uint64_t
flusher_queued_seq(unsigned worker)
{
    return F.q != NULL ? atomic_load_explicit(&F.q[worker].queued,
                                              memory_order_relaxed) : 0;
}

uint64_t
flusher_committed_seq(unsigned worker)
{
    return F.q != NULL ? atomic_load_explicit(&F.q[worker].committed,
                                              memory_order_acquire) : 0;
}

/* Drops a record that will never be written (its item is clean again). */
static void
drop_record(void *rec)
{
    if (((uintptr_t)rec & DEL_TAG) == 0) {
        struct item *it = rec;
        atomic_fetch_sub(&F.dirty_items, 1);
        atomic_fetch_sub(&F.dirty_bytes, (int64_t)cache_item_total_size(it));
        cache_item_clean(it);
        cache_item_release(it);
    } else {
        free((void *)((uintptr_t)rec & ~(uintptr_t)DEL_TAG));
    }
}

/* worker thread */
static void
queue_record(void *rec)
{
    struct fqueue *q = &F.q[my_worker];
    if (!ring_push_quiet(&q->ring, rec)) {
        /* the admission (throttle) keeps room, so this is a bug; never
         * block */
        atomic_fetch_add(&F.queue_overflows, 1);
        log_error_limited("persistence: worker %d queue full; a write is not persisted",
                          my_worker);
        drop_record(rec);
        return;
    }
    /* Orders the push (the ring's tail store) before the read of the
     * flusher's state; pairs with the fence in flusher_wait(). A flusher
     * that is awake looks at the rings by itself: no system call here. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&F.sleeping, memory_order_relaxed))
        ring_wake(&q->ring);
    uint64_t seq = atomic_load_explicit(&q->queued, memory_order_relaxed) + 1;
    atomic_store_explicit(&q->queued, seq, memory_order_relaxed);
    my_untaken_seq = seq;
}

uint64_t
flusher_take_write_seq(void)
{
    uint64_t seq = my_untaken_seq;
    my_untaken_seq = 0;
    return seq;
}

void
flusher_queue_change(const struct cache_change *ch)
{
    switch (ch->kind) {
    case CACHE_CHANGE_FLUSH:
        persist_atomic_max(&F.flush_mark, ch->cas_below);
        /* a delayed flush that fired is no longer pending (an immediate
         * flush cancels a pending one too, as in the cache) */
        atomic_store(&F.flush_at_new, 0);
        wake_flusher();
        return;
    case CACHE_CHANGE_PUT:
        if (my_worker < 0) {   /* not a worker: nothing may queue here */
            cache_item_clean(ch->item);
            cache_item_release(ch->item);
            return;
        }
        atomic_fetch_add(&F.dirty_items, 1);
        atomic_fetch_add(&F.dirty_bytes, (int64_t)cache_item_total_size(ch->item));
        queue_record(ch->item);
        return;
    case CACHE_CHANGE_DEL: {
        if (my_worker < 0)
            return;
        struct del_rec *d = malloc(sizeof(*d) + ch->nkey);
        if (d == NULL) {
            log_error_limited("persistence: out of memory; a delete is not persisted");
            return;
        }
        d->nkey = ch->nkey;
        memcpy(d->key, ch->key, ch->nkey);
        queue_record((void *)((uintptr_t)d | DEL_TAG));
        return;
    }
    }
}

void
flusher_throttle_input(struct throttle_input *in)
{
    struct fqueue *q = &F.q[my_worker];
    int64_t dirty = atomic_load_explicit(&F.dirty_bytes, memory_order_relaxed);
    *in = (struct throttle_input){
        .dirty_bytes = dirty > 0 ? (uint64_t)dirty : 0,
        .committing_bytes = atomic_load_explicit(&F.committing_bytes,
                                                 memory_order_relaxed),
        .soft_bytes = atomic_load_explicit(&F.soft_bytes, memory_order_relaxed),
        .hard_bytes = atomic_load_explicit(&F.hard_bytes, memory_order_relaxed),
        .drain_bytes_per_s = atomic_load_explicit(&F.drain_rate_bps,
                                                  memory_order_relaxed),
        .drain_writes_per_s = atomic_load_explicit(&F.drain_rate_ips,
                                                   memory_order_relaxed) /
                              F.nworkers,
        .queue_len = ring_size(&q->ring),
        .queue_capacity = q->ring.capacity,
    };
}

void
flusher_set_limits(uint64_t soft_bytes, uint64_t hard_bytes,
                   uint32_t flush_interval_ms)
{
    atomic_store(&F.soft_bytes, soft_bytes);
    atomic_store(&F.hard_bytes, hard_bytes);
    atomic_store(&F.flush_interval_ms, flush_interval_ms);
}

void
flusher_record_flush_at(int64_t when)
{
    atomic_store(&F.flush_at_new, when);
    if (F.wake_fd >= 0)
        wake_flusher();
}

/* ------------------------------------------------------------ the thread */

/* A moving average over the last few commits (flusher only writes it). */
static void
ewma_update(_Atomic uint64_t *avg, uint64_t sample)
{
    uint64_t old = atomic_load_explicit(avg, memory_order_relaxed);
    atomic_store_explicit(avg, old == 0 ? sample : (old * 7 + sample) / 8,
                          memory_order_relaxed);
}

struct batch_result {
    uint64_t bytes, puts, dels, skipped, purged;
};

/* flusher thread: pops every ring into `b` (fbatch_pop_ring: superseded
 * versions are dropped at once, not after a commit that would skip them). */
static void
drain(struct fbatch *b)
{
    for (unsigned w = 0; w < F.nworkers; w++)
        fbatch_pop_ring(b, &F.q[w].ring, w, &F.q[w].held, drop_record);
}

/* Rows written between two looks at the rings during a write: a long
 * transaction must not leave the rings filling for its whole length. */
#define FLUSHER_DRAIN_EVERY 256

/* flusher thread: one transaction. MCKV_OK, or the error (rolled back). */
static int
write_batch(void **batch, size_t n, uint64_t mark, int64_t flush_at,
            struct batch_result *res)
{
    const struct kvstore_ops *ops = F.engine->ops;
    struct batch_result r = { 0 };
    int rc = ops->begin(F.kv);
    if (rc == MCKV_OK && mark != 0)
        rc = ops->flush(F.kv, mark);
    if (rc == MCKV_OK && expiry_pending())
        rc = expiry_purge(ops, F.kv, FLUSHER_PURGES_MAX, &r.purged);
    for (size_t i = 0; i < n && rc == MCKV_OK; i++) {
        void *rec = batch[i];
        if (i % FLUSHER_DRAIN_EVERY == FLUSHER_DRAIN_EVERY - 1)
            drain(F.filling);   /* the next batch */
        if ((uintptr_t)rec & DEL_TAG) {
            struct del_rec *d = (void *)((uintptr_t)rec & ~(uintptr_t)DEL_TAG);
            if (cache_key_present(d->key, d->nkey))
                continue;   /* a newer value exists: its put follows */
            rc = ops->del(F.kv, d->key, d->nkey);
            r.dels++;
            continue;
        }
        struct item *it = rec;
        if (!cache_item_is_current(it)) {
            r.skipped++;    /* replaced: the newer version has its record */
            continue;
        }
        if (mark != 0 && it->cas < mark)
            continue;       /* flushed */
        rel_time_t exp = atomic_load_explicit(&it->exptime, memory_order_relaxed);
        struct kvstore_record kr = {
            .key = item_key(it), .nkey = it->nkey, .flags = it->flags,
            .exptime = (int64_t)cache_rel_to_unix(exp), .cas = it->cas,
            .value = item_key(it) + it->nkey, .vlen = it->nbytes,
        };
        if (F.delay_us > 0)
            usleep(F.delay_us);   /* testing knob: a slow disk */
        rc = ops->put(F.kv, &kr);
        r.bytes += cache_item_total_size(it);   /* as dirty_bytes counts it */
        r.puts++;
    }
    if (rc == MCKV_OK)
        rc = ops->set_meta(F.kv, "cas_high", (int64_t)cache_cas_high());
    if (rc == MCKV_OK && flush_at >= 0)
        rc = ops->set_meta(F.kv, "flush_at", flush_at);
    if (rc == MCKV_OK)
        rc = ops->commit(F.kv);
    if (rc != MCKV_OK) {
        atomic_fetch_add(&F.engine_errors, 1);
        ops->rollback(F.kv);
        return rc;
    }
    *res = r;
    return MCKV_OK;
}

/* Waits for work: the rings' notify fds and the wake fd, bounded. */
static void
flusher_wait(int timeout_ms)
{
    struct pollfd fds[F.nworkers + 1];
    for (unsigned i = 0; i < F.nworkers; i++)
        fds[i] = (struct pollfd){ .fd = F.q[i].ring.notify_fd, .events = POLLIN };
    fds[F.nworkers] = (struct pollfd){ .fd = F.wake_fd, .events = POLLIN };
    /* Seq_cst store, then the fence in ring_empty_fenced(): pairs with the
     * worker's fence in queue_record() (a push after our look sees the
     * flag and writes the notify fd). */
    atomic_store(&F.sleeping, true);
    bool idle = true;
    for (unsigned i = 0; i < F.nworkers && idle; i++)
        idle = F.q[i].held == NULL && ring_empty_fenced(&F.q[i].ring);
    if (idle && atomic_load(&F.flush_mark) == 0 &&
        atomic_load(&F.flush_at_new) < 0 && !atomic_load(&F.stopping))
        poll(fds, F.nworkers + 1, timeout_ms);
    atomic_store(&F.sleeping, false);
    for (unsigned i = 0; i < F.nworkers; i++)
        ring_consume_notify(&F.q[i].ring);
}

static void
consume_wake(void)
{
    uint64_t v;
    ssize_t r = read(F.wake_fd, &v, sizeof(v));
    (void)r;
}

/*
 * Async durability: lets writes gather for up to FLUSHER_GATHER_MAX_MS (at
 * most half of flush_interval_ms) after `since` (the last commit, or the
 * wake-up that ended an idle wait), so that a commit carries many rows
 * instead of the few that arrived while the previous one ran. Longer
 * windows saved no more CPU but made the flusher's work bursty: at 60k
 * requests/s open loop (90/10, pipeline 1) the p99 reply was 1.2-1.3 ms
 * with 10 ms, 3.2-4.7 ms with 50 ms, 1.6-2.9 ms with 2 ms. Fewer, larger
 * transactions write each touched page once for more rows, and a worker's
 * flusher is awake meanwhile, so no worker writes an eventfd. Records are
 * popped into the batch as they come (superseded versions are dropped at
 * once). Returns early when the batch is full (batch_max distinct keys),
 * when dirty bytes pass half the soft limit (backpressure must not start
 * because the flusher sat idle), on a flush_all, and at shutdown. Sync
 * durability commits at once: writers wait for it.
 */
static void
flusher_gather(struct fbatch *b, uint64_t since)
{
    if (F.sync)
        return;
    uint64_t window = (uint64_t)atomic_load(&F.flush_interval_ms) * 1000 / 2;
    if (window > FLUSHER_GATHER_MAX_MS * 1000)
        window = FLUSHER_GATHER_MAX_MS * 1000;
    for (;;) {
        if (atomic_load(&F.stopping) || atomic_load(&F.flush_mark) != 0 ||
            atomic_load(&F.flush_at_new) >= 0)
            return;
        uint64_t now = persist_now_us();
        if (now >= since + window)
            return;
        drain(b);
        int64_t dirty = atomic_load_explicit(&F.dirty_bytes, memory_order_relaxed);
        uint64_t soft = atomic_load_explicit(&F.soft_bytes, memory_order_relaxed);
        if (fbatch_full(b) || (dirty > 0 && (uint64_t)dirty > soft / 2))
            return;
        uint64_t left_ms = (since + window - now + 999) / 1000;
        struct pollfd wake = { .fd = F.wake_fd, .events = POLLIN };
        poll(&wake, 1, left_ms < FLUSHER_GATHER_STEP_MS ? (int)left_ms
                                                        : FLUSHER_GATHER_STEP_MS);
    }
}

/* flusher thread: a commit of n records of `res`, dt us long */
static void
count_commit(const struct fbatch *b, uint64_t mark,
             const struct batch_result *res, uint64_t dt)
{
    size_t n = b->n;
    uint64_t drained = 0;
    for (unsigned w = 0; w < F.nworkers; w++)
        drained += b->drained[w];
    atomic_fetch_add(&F.commits, 1);
    atomic_fetch_add(&F.commit_us_total, dt);
    persist_atomic_max(&F.commit_us_max, dt);
    hist_record(&F.commit_hist, dt);
    atomic_store(&F.batch_last, n);
    persist_atomic_max(&F.batch_max_seen, n);
    atomic_fetch_add(&F.batch_items_total, n);
    atomic_fetch_add(&F.items_persisted, res->puts);
    atomic_fetch_add(&F.deletes_persisted, res->dels);
    expiry_count_purged(res->purged);
    atomic_fetch_add(&F.items_superseded, res->skipped + b->superseded);
    if (mark != 0)
        atomic_fetch_add(&F.flushes_persisted, 1);
    /* The rates the backpressure law divides the backlog by: what a commit
     * of this length retires, superseded versions included (they leave the
     * backlog without a write). */
    uint64_t retired = res->bytes + b->superseded_bytes;
    if (dt > 0 && retired > 0)
        ewma_update(&F.drain_rate_bps, retired * 1000000u / dt);
    if (dt > 0)
        ewma_update(&F.drain_rate_ips, drained * 1000000u / dt);
}

/* flusher thread: the engine is damaged; holds the batch (its items stay
 * dirty, so they are still served from memory) until shutdown, keeping
 * the engine statistics fresh. Returns false: the batch is not on disk. */
static bool
hold_damaged_batch(size_t n)
{
    while (!atomic_load(&F.stopping)) {
        struct pollfd pfd = { .fd = F.wake_fd, .events = POLLIN };
        poll(&pfd, 1, (int)(ENGINE_STATS_EVERY_US / 1000));
        consume_wake();
        for (unsigned i = 0; i < F.nworkers; i++)
            ring_consume_notify(&F.q[i].ring);
        engine_stats_take(F.engine->ops, F.kv);
    }
    log_error_limited("persistence: the database is damaged: %zu writes are "
                      "not on disk at shutdown", n);
    return false;
}

/* flusher thread: writes one batch until it commits (retrying with
 * backoff; more flush marks may join it meanwhile). False when it gave up
 * at shutdown, or the engine is damaged. */
static bool
commit_batch(const struct fbatch *b, uint64_t mark, int64_t flush_at,
             uint64_t *stop_deadline)
{
    void **batch = b->recs;
    size_t n = b->n;
    unsigned backoff_ms = FLUSHER_BACKOFF_MIN_MS;
    for (;;) {
        if (engine_health_damaged())
            return hold_damaged_batch(n);
        uint64_t t0 = persist_now_us();
        struct batch_result res;
        int rc = write_batch(batch, n, mark, flush_at, &res);
        if (rc == MCKV_OK) {
            count_commit(b, mark, &res, persist_now_us() - t0);
            return true;
        }
        if (engine_health_report(rc, "flusher", F.engine->ops->last_error(F.kv)))
            continue;   /* held above, not retried */
        log_error_limited("persistence: commit of %zu writes failed: %s; retrying "
                          "in %u ms (data stays in memory)", n,
                          F.engine->ops->last_error(F.kv), backoff_ms);
        if (atomic_load(&F.stopping)) {
            if (*stop_deadline == 0) {
                *stop_deadline = persist_now_us() + FLUSHER_STOP_GIVE_UP_US;
            } else if (persist_now_us() > *stop_deadline) {
                log_error_limited("persistence: giving up at shutdown: %zu writes "
                                  "are not on disk", n);
                return false;
            }
        }
        struct pollfd pfd = { .fd = F.wake_fd, .events = POLLIN };
        poll(&pfd, 1, (int)backoff_ms);
        backoff_ms = backoff_ms * 2 > FLUSHER_BACKOFF_MAX_MS
                     ? FLUSHER_BACKOFF_MAX_MS : backoff_ms * 2;
        uint64_t more = atomic_exchange(&F.flush_mark, 0);
        if (more > mark)
            mark = more;
        int64_t at = atomic_exchange(&F.flush_at_new, -1);
        if (at >= 0)
            flush_at = at;
    }
}

/* flusher thread: the batch is on disk (or given up): items clean, records
 * freed, every worker's committed sequence advanced. */
static void
finish_batch(struct fbatch *b)
{
    fbatch_reset(b, drop_record);   /* items clean, records freed */
    for (unsigned w = 0; w < F.nworkers; w++) {
        if (b->drained[w] == 0)
            continue;
        F.q[w].drained += b->drained[w];
        b->drained[w] = 0;
        /* Release: the items' clean state is visible before a worker that
         * sees this count replies to a sync write. */
        atomic_store_explicit(&F.q[w].committed, F.q[w].drained,
                              memory_order_release);
        if (F.sync && F.committed != NULL)
            F.committed(F.ctx, w);
    }
}

static void *
flusher_main(void *arg)
{
    (void)arg;
    uint64_t stop_deadline = 0;
    uint64_t batch_start = persist_now_us(), stats_at = 0;
    for (;;) {
        if (persist_now_us() - stats_at >= ENGINE_STATS_EVERY_US) {
            engine_stats_take(F.engine->ops, F.kv);
            stats_at = persist_now_us();
        }
        struct fbatch *b = F.filling;
        flusher_gather(b, batch_start);
        consume_wake();
        drain(b);
        uint64_t mark = atomic_exchange(&F.flush_mark, 0);
        int64_t flush_at = atomic_exchange(&F.flush_at_new, -1);
        if (b->n == 0 && mark == 0 && flush_at < 0 && !expiry_pending()) {
            bool empty = true;
            for (unsigned w = 0; w < F.nworkers; w++)
                empty &= F.q[w].held == NULL && ring_empty_fenced(&F.q[w].ring);
            if (empty && atomic_load(&F.stopping))
                break;
            if (empty) {
                flusher_wait((int)atomic_load(&F.flush_interval_ms));
                batch_start = persist_now_us();   /* gather from the wake-up */
            }
            continue;
        }
        /* records that arrive while b is written go to the other batch */
        F.filling = b == &F.batch[0] ? &F.batch[1] : &F.batch[0];
        uint64_t bytes = 0;
        for (size_t i = 0; i < b->n; i++)
            if (((uintptr_t)b->recs[i] & DEL_TAG) == 0)
                bytes += cache_item_total_size(b->recs[i]);
        atomic_store_explicit(&F.committing_bytes, bytes, memory_order_relaxed);
        commit_batch(b, mark, flush_at, &stop_deadline);
        batch_start = persist_now_us();
        finish_batch(b);
        /* after the batch's dirty bytes went: never counted twice over */
        atomic_store_explicit(&F.committing_bytes, 0, memory_order_relaxed);
    }
    return NULL;
}

/* ------------------------------------------------------------ life cycle */

int
flusher_setup(const struct flusher_options *o, char *err, size_t errlen)
{
    F.engine = o->engine;
    F.kv = o->kv;
    F.nworkers = o->nworkers;
    F.sync = o->sync;
    F.batch_max = o->batch_max > 0 ? o->batch_max : 1;
    F.delay_us = o->delay_us;
    F.committed = o->committed;
    F.ctx = o->ctx;
    flusher_set_limits(o->soft_bytes, o->hard_bytes, o->flush_interval_ms);
    atomic_store(&F.stopping, false);
    atomic_store(&F.flush_mark, 0);
    atomic_store(&F.flush_at_new, -1);
    F.q = calloc(o->nworkers, sizeof(*F.q));
    if (F.q == NULL) {
        snprintf(err, errlen, "persistence: out of memory");
        return -1;
    }
    for (unsigned i = 0; i < o->nworkers; i++) {
        if (ring_init(&F.q[i].ring, FLUSHER_RING_SIZE) != 0) {
            snprintf(err, errlen, "persistence: cannot create queues");
            return -1;
        }
    }
    for (unsigned i = 0; i < 2; i++) {
        if (fbatch_init(&F.batch[i], F.batch_max, o->nworkers) != 0) {
            snprintf(err, errlen, "persistence: out of memory");
            return -1;
        }
    }
    F.filling = &F.batch[0];
    atomic_store(&F.sleeping, false);
    F.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (F.wake_fd < 0) {
        snprintf(err, errlen, "persistence: eventfd: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int
flusher_start(char *err, size_t errlen)
{
    if (pthread_create(&F.thread, NULL, flusher_main, NULL) != 0) {
        snprintf(err, errlen, "persistence: cannot start the flusher");
        return -1;
    }
    F.started = true;
    pthread_setname_np(F.thread, "mckv-flusher");
    return 0;
}

void
flusher_stop(void)
{
    if (!F.started)
        return;
    atomic_store(&F.stopping, true);
    wake_flusher();
    pthread_join(F.thread, NULL);
    F.started = false;
    log_info("persistence: stopped; %" PRIu64 " writes persisted, %" PRId64
             " not", atomic_load(&F.items_persisted),
             (int64_t)atomic_load(&F.dirty_items));
}

void
flusher_teardown(void)
{
    for (unsigned i = 0; F.q != NULL && i < F.nworkers; i++) {
        void *rec;
        if (F.q[i].held != NULL)
            drop_record(F.q[i].held);
        while (ring_pop(&F.q[i].ring, &rec))   /* never written */
            drop_record(rec);
        ring_deinit(&F.q[i].ring);
    }
    for (unsigned i = 0; i < 2; i++) {
        /* left only by a flusher that gave up at shutdown: never written */
        for (size_t j = 0; j < F.batch[i].n; j++)
            drop_record(F.batch[i].recs[j]);
        fbatch_deinit(&F.batch[i]);
    }
    F.filling = NULL;
    free(F.q);
    F.q = NULL;
    if (F.wake_fd >= 0)
        close(F.wake_fd);
    F.wake_fd = -1;
    F.kv = NULL;
}

/* ------------------------------------------------------------ statistics */

void
flusher_counters(struct flusher_counters *out)
{
    uint64_t depth = 0;
    for (unsigned i = 0; F.q != NULL && i < F.nworkers; i++)
        depth += atomic_load(&F.q[i].queued) - atomic_load(&F.q[i].committed);
    *out = (struct flusher_counters){
        .dirty_items = atomic_load(&F.dirty_items),
        .dirty_bytes = atomic_load(&F.dirty_bytes),
        .soft_bytes = atomic_load(&F.soft_bytes),
        .hard_bytes = atomic_load(&F.hard_bytes),
        .queue_depth = depth,
        .items_persisted = atomic_load(&F.items_persisted),
        .deletes_persisted = atomic_load(&F.deletes_persisted),
        .flushes_persisted = atomic_load(&F.flushes_persisted),
        .commits = atomic_load(&F.commits),
        .commit_us_total = atomic_load(&F.commit_us_total),
        .commit_us_max = atomic_load(&F.commit_us_max),
        .batch_last = atomic_load(&F.batch_last),
        .batch_max = atomic_load(&F.batch_max_seen),
        .batch_items_total = atomic_load(&F.batch_items_total),
        .drain_bytes_per_s = atomic_load(&F.drain_rate_bps),
        .drain_writes_per_s = atomic_load(&F.drain_rate_ips),
        .engine_errors = atomic_load(&F.engine_errors),
        .queue_overflows = atomic_load(&F.queue_overflows),
        .items_superseded = atomic_load(&F.items_superseded),
    };
}

void
flusher_commit_hist(struct hist *out)
{
    hist_merge(out, &F.commit_hist);
}
