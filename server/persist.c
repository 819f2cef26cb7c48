/*
 * persist.c: write-behind persistence (contract in persist.h).
 *
 * Queues. Each worker owns an SPSC ring to the flusher. A record is the
 * item itself for a put (the cache handed us a reference; nothing is
 * copied) or a small heap record tagged in its low bit for a delete.
 * flush_all does not go through the rings: its CAS mark is a single atomic
 * the flusher reads (a flush may fire on any thread). Each worker also owns
 * an MPSC completion ring, fed by the flusher (a commit advanced) and the
 * fetchers (a background fetch finished).
 *
 * The flusher. Drains every ring into one batch (at most batch_max_items),
 * writes it in one transaction and commits. The newest version wins without
 * a per-batch map: a put is written only while its item is still the
 * linked version of its key (an older one was replaced, and the newer
 * version has a record of its own, in this batch or a later one, which
 * commits later), and a delete only while no newer value exists in memory.
 * After the commit the items are marked clean and released, and each
 * worker's committed sequence advances (sync durability waits on it). A
 * failed transaction is rolled back and retried with backoff, the records
 * kept: items stay dirty (never evicted) until the disk takes them.
 *
 * Reads. Fetcher threads (util/hotpool.c) each own a read-only engine
 * handle. A background fetch reads one key, installs the value in the cache
 * (or records the key as absent) and posts the connection back to its
 * worker.
 *
 * Warmup. At start the rows are split by cursor into one range per fetcher
 * (when the engine can split them: scan_end/scan_range) and each range is
 * read by a warmup thread of its own with its own read-only handle, so the
 * fetchers stay free for the gets that cannot wait for the warmup; the hash
 * tables are sized for the row count first. The last thread to finish
 * marks the cache complete when every range was read to its end.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engines/kvstore.h"
#include "protocol/proto.h"
#include "server/cache.h"
#include "server/config.h"
#include "server/conn.h"
#include "server/persist.h"
#include "server/throttle.h"
#include "server/worker.h"
#include "util/hist.h"
#include "util/hotpool.h"
#include "util/log.h"
#include "util/ring.h"
#include "util/status.h"

#define PERSIST_RING_SIZE 262144
#define PERSIST_DONE_RING_SIZE 16384
#define PERSIST_FETCH_BACKLOG 16384
#define PERSIST_BACKOFF_MIN_MS 50
#define PERSIST_BACKOFF_MAX_MS 5000
#define PERSIST_SCAN_CHUNK 1000
#define PERSIST_GATHER_MAX_MS 10  /* longest gather before a commit */
#define PERSIST_GATHER_STEP_MS 2  /* how often a gathering flusher looks */
#define COMMIT_TAG ((void *)(uintptr_t)1)
#define DEL_TAG 1u

struct del_rec {
    uint8_t nkey;
    char key[];
};

struct pworker {
    struct ring queue;          /* worker -> flusher */
    struct ring done;           /* flusher, fetchers -> worker */
    /* records pushed: written by the worker only (a relaxed load and
     * store, no lock prefix), read by stats from any thread */
    _Atomic uint64_t queued;
    _Atomic uint64_t committed; /* records committed (flusher writes) */
    uint64_t drained;           /* records popped (flusher only) */
};

struct fetch_task {
    struct hotpool_task task;
    struct conn *conn;
    struct item *item;          /* the value read, referenced, or NULL */
    unsigned worker;
    uint8_t nkey;
    char key[PROTO_KEY_MAX];
};

enum warmup_state { WARMUP_NONE, WARMUP_RUNNING, WARMUP_DONE };

#define PERSIST_WARMUP_THREADS_MAX 8

/* A warmup thread reads rows with cursors in (first, end]. */
struct warmup_part {
    pthread_t thread;
    uint64_t first, end;   /* end UINT64_MAX: to the last row */
    bool started;
};

static struct {
    bool enabled;
    bool sync;
    const struct kvstore_ops *ops;
    struct kvstore_options kopts;
    char *path;
    struct kvstore *kv;           /* read-write: flusher thread */
    unsigned nworkers;
    struct pworker *pw;
    _Atomic uint32_t flush_interval_ms;   /* changed by SIGHUP */
    uint32_t batch_max;
    _Atomic uint64_t soft_bytes, hard_bytes;
    uint32_t delay_us;
    unsigned nfetchers;
    struct hotpool *pool;
    pthread_t flusher;
    bool flusher_started;
    atomic_bool stopping;
    int wake_fd;                  /* wakes the flusher (flush_all, stop) */
    _Atomic uint64_t flush_mark;  /* pending flush_all: cas_below */
    _Atomic int64_t flush_at_new; /* delayed flush_all to record (-1: none) */
    int64_t pending_flush_at;     /* read at start-up, armed by persist_start */

    /* stats */
    atomic_int_fast64_t dirty_items;
    atomic_int_fast64_t dirty_bytes;
    _Atomic uint64_t items_persisted, deletes_persisted, flushes_persisted;
    _Atomic uint64_t commits, commit_us_total, commit_us_max;
    _Atomic uint64_t batch_last, batch_max_seen, batch_items_total;
    _Atomic uint64_t bg_fetches, bg_fetch_us_total, bg_fetch_us_max;
    _Atomic uint64_t bg_fetch_misses;
    _Atomic uint64_t throttled_writes, temporary_failures, engine_errors;
    _Atomic uint64_t queue_overflows;
    _Atomic uint64_t drain_rate_bps;   /* bytes committed per second (EWMA) */
    _Atomic uint64_t drain_rate_ips;   /* writes committed per second (EWMA) */
    _Atomic uint64_t throttle_ms_max;  /* longest delay given */
    _Atomic int warmup_state;
    _Atomic uint64_t warmup_loaded, warmup_skipped, warmup_ms;
    atomic_bool warmup_truncated;
    struct warmup_part *wparts;       /* one per warmup thread */
    unsigned nwparts;
    atomic_uint warmup_running;       /* warmup threads not finished */
    atomic_bool warmup_full;          /* memory limit reached: all stop */
    atomic_bool warmup_partial;       /* some part did not reach its end */
    uint64_t warmup_t0;
    struct hist commit_hist;          /* flusher thread writes */
    struct hist fetch_hist;           /* fetchers: under fetch_hist_lock */
    pthread_mutex_t fetch_hist_lock;
} P = { .wake_fd = -1, .flush_at_new = -1,
        .fetch_hist_lock = PTHREAD_MUTEX_INITIALIZER };

static _Thread_local int my_worker = -1;

/*
 * The engine's own statistics (`stats engine`). A handle is used by one
 * thread at a time, and the writer's belongs to the flusher, so the flusher
 * takes a snapshot at most once a second (and the main thread one at
 * start) and readers copy the snapshot under its mutex: a stats request
 * never waits for a commit.
 */
#define ENGINE_STATS_TEXT_MAX 4096
#define ENGINE_STATS_EVERY_US 1000000u
struct engine_stats_text {
    char text[ENGINE_STATS_TEXT_MAX];   /* "name value\n" lines */
    size_t len;
};
static struct {
    pthread_mutex_t lock;
    struct engine_stats_text snap;
    uint64_t taken_us;                  /* 0: none yet */
} ES = { .lock = PTHREAD_MUTEX_INITIALIZER };

static uint64_t
now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void
atomic_max(_Atomic uint64_t *a, uint64_t v)
{
    uint64_t cur = atomic_load_explicit(a, memory_order_relaxed);
    while (cur < v && !atomic_compare_exchange_weak(a, &cur, v))
        ;
}

static void
wake_flusher(void)
{
    uint64_t one = 1;
    ssize_t w = write(P.wake_fd, &one, sizeof(one));
    (void)w;
}

bool
persist_enabled(void)
{
    return P.enabled;
}

bool
persist_durability_sync(void)
{
    return P.enabled && P.sync;
}

/* ---------------------------------------------------------------- set-up */

/* Creates every missing directory of path's parent. */
static int
make_parent_dirs(const char *path, char *err, size_t errlen)
{
    char *dir = strdup(path);
    if (dir == NULL)
        return -1;
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir) {
        free(dir);
        return 0;
    }
    *slash = '\0';
    for (char *p = dir + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
                snprintf(err, errlen, "db_path %s: cannot create %s: %s", path,
                         dir, strerror(errno));
                free(dir);
                return -1;
            }
            *p = c;
            if (c == '\0')
                break;
        }
    }
    free(dir);
    return 0;
}

int
persist_setup(const struct config *cfg, unsigned nthreads, char *err,
              size_t errlen)
{
    P.ops = kvstore_find(cfg->engine);
    if (P.ops == NULL) {
        snprintf(err, errlen, "engine: unknown engine '%s'", cfg->engine);
        return -1;
    }
    P.enabled = P.ops->persistent;
    if (!P.enabled)
        return 0;
    if (!cfg->cas) {
        snprintf(err, errlen, "cas: a persistent engine needs cas = yes "
                 "(flush_all and restarts are ordered by CAS)");
        return -1;
    }
    P.sync = strcmp(cfg->durability, "sync") == 0;
    P.nworkers = nthreads;
    P.flush_interval_ms = (uint32_t)cfg->flush_interval_ms;
    P.batch_max = (uint32_t)cfg->batch_max_items;
    P.soft_bytes = cfg->dirty_soft_limit_mb * 1024 * 1024;
    P.hard_bytes = cfg->dirty_hard_limit_mb * 1024 * 1024;
    /* Dirty items cannot leave memory: the backlog must stay well inside
     * memory_limit or writes would fail for memory instead of slowing. */
    uint64_t mem = cfg->memory_limit * 1024 * 1024;
    if (P.hard_bytes > mem / 2)
        P.hard_bytes = mem / 2;
    if (P.soft_bytes > P.hard_bytes / 2)
        P.soft_bytes = P.hard_bytes / 2;
    P.delay_us = (uint32_t)cfg->engine_delay_us;
    P.nfetchers = (unsigned)cfg->fetchers;
    P.path = strdup(cfg->db_path);
    if (P.path == NULL || make_parent_dirs(P.path, err, errlen) != 0)
        return -1;
    P.kopts = (struct kvstore_options){
        .path = P.path,
        .synchronous_full = strcmp(cfg->sqlite_synchronous, "full") == 0,
        .cache_kb = cfg->sqlite_cache_mb * 1024,   /* the writer's */
    };
    int rc = P.ops->open(&P.kv, &P.kopts);
    if (rc != MCKV_OK) {
        snprintf(err, errlen, "db_path %s: %s", P.path,
                 P.kv != NULL ? P.ops->last_error(P.kv) : mckv_strerror(rc));
        return -1;
    }
    int64_t cas_high = 0;
    if (P.ops->get_meta(P.kv, "cas_high", &cas_high) == MCKV_OK && cas_high > 0)
        cache_set_cas_floor((uint64_t)cas_high);
    /* Until the warmup has read every row, a key missing from memory may
     * be on disk. */
    cache_set_complete(false);
    /* A flush_all with a delay that was pending at shutdown: every row on
     * disk was stored before it, so it takes them all when it falls due
     * (now, if that time has passed while we were down). */
    int64_t flush_at = 0;
    if (P.ops->get_meta(P.kv, "flush_at", &flush_at) == MCKV_OK && flush_at > 0) {
        P.pending_flush_at = flush_at;
    }

    P.pw = calloc(nthreads, sizeof(*P.pw));
    if (P.pw == NULL)
        return -1;
    for (unsigned i = 0; i < nthreads; i++) {
        if (ring_init(&P.pw[i].queue, PERSIST_RING_SIZE) != 0 ||
            ring_init(&P.pw[i].done, PERSIST_DONE_RING_SIZE) != 0) {
            snprintf(err, errlen, "persistence: cannot create queues");
            return -1;
        }
    }
    P.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (P.wake_fd < 0) {
        snprintf(err, errlen, "persistence: eventfd: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- workers */

void
persist_worker_bind(unsigned id)
{
    my_worker = (int)id;
}

int
persist_completion_fd(unsigned worker)
{
    return P.enabled ? P.pw[worker].done.notify_fd : -1;
}

uint64_t
persist_queued_seq(unsigned worker)
{
    return P.enabled ? atomic_load_explicit(&P.pw[worker].queued,
                                            memory_order_relaxed) : 0;
}

uint64_t
persist_committed_seq(unsigned worker)
{
    return P.enabled ? atomic_load_explicit(&P.pw[worker].committed,
                                            memory_order_acquire) : 0;
}

static void
queue_record(void *rec)
{
    struct pworker *pw = &P.pw[my_worker];
    if (!ring_push(&pw->queue, rec)) {
        /* persist_admit_write() keeps room, so this is a bug; never block */
        atomic_fetch_add(&P.queue_overflows, 1);
        log_error("persistence: worker %d queue full; a write is not persisted",
                  my_worker);
        if (((uintptr_t)rec & DEL_TAG) == 0) {
            struct item *it = rec;
            atomic_fetch_sub(&P.dirty_items, 1);
            atomic_fetch_sub(&P.dirty_bytes, (int64_t)cache_item_total_size(it));
            cache_item_clean(it);
            cache_item_release(it);
        } else {
            free((void *)((uintptr_t)rec & ~(uintptr_t)DEL_TAG));
        }
        return;
    }
    atomic_store_explicit(&pw->queued,
                          atomic_load_explicit(&pw->queued, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

void
persist_cache_hook(const struct cache_change *ch)
{
    switch (ch->kind) {
    case CACHE_CHANGE_FLUSH:
        atomic_max(&P.flush_mark, ch->cas_below);
        /* a delayed flush that fired is no longer pending (an immediate
         * flush cancels a pending one too, as in the cache) */
        atomic_store(&P.flush_at_new, 0);
        wake_flusher();
        return;
    case CACHE_CHANGE_PUT:
        if (my_worker < 0) {   /* not a worker: nothing may queue here */
            cache_item_clean(ch->item);
            cache_item_release(ch->item);
            return;
        }
        atomic_fetch_add(&P.dirty_items, 1);
        atomic_fetch_add(&P.dirty_bytes, (int64_t)cache_item_total_size(ch->item));
        queue_record(ch->item);
        return;
    case CACHE_CHANGE_DEL: {
        if (my_worker < 0)
            return;
        struct del_rec *d = malloc(sizeof(*d) + ch->nkey);
        if (d == NULL) {
            log_error("persistence: out of memory; a delete is not persisted");
            return;
        }
        d->nkey = ch->nkey;
        memcpy(d->key, ch->key, ch->nkey);
        queue_record((void *)((uintptr_t)d | DEL_TAG));
        return;
    }
    }
}

enum persist_admit
persist_admit_write(uint32_t *delay_ms)
{
    *delay_ms = 0;
    if (!P.enabled)
        return PERSIST_ADMIT_OK;
    struct pworker *pw = &P.pw[my_worker];
    int64_t dirty = atomic_load_explicit(&P.dirty_bytes, memory_order_relaxed);
    struct throttle_input in = {
        .dirty_bytes = dirty > 0 ? (uint64_t)dirty : 0,
        .soft_bytes = P.soft_bytes, .hard_bytes = P.hard_bytes,
        .drain_bytes_per_s = atomic_load_explicit(&P.drain_rate_bps,
                                                  memory_order_relaxed),
        .drain_writes_per_s = atomic_load_explicit(&P.drain_rate_ips,
                                                   memory_order_relaxed) /
                              P.nworkers,
        .queue_len = ring_size(&pw->queue),
        .queue_capacity = pw->queue.capacity,
    };
    switch (throttle_decide(&in, delay_ms)) {
    case THROTTLE_ADMIT:
        return PERSIST_ADMIT_OK;
    case THROTTLE_REFUSE:
        atomic_fetch_add_explicit(&P.temporary_failures, 1, memory_order_relaxed);
        return PERSIST_ADMIT_REFUSE;
    case THROTTLE_DELAY:
        break;
    }
    atomic_max(&P.throttle_ms_max, *delay_ms);
    atomic_fetch_add_explicit(&P.throttled_writes, 1, memory_order_relaxed);
    return PERSIST_ADMIT_DELAY;
}

/* ---------------------------------------------------------------- flusher */

static void
engine_stat_collect(void *ctx, const char *name, const char *value)
{
    struct engine_stats_text *t = ctx;
    int n = snprintf(t->text + t->len, sizeof(t->text) - t->len, "%s %s\n",
                     name, value);
    if (n > 0 && (size_t)n < sizeof(t->text) - t->len)
        t->len += (size_t)n;
    else
        t->text[t->len] = '\0';   /* full: the rest is left out */
}

/* Snapshot of the writer handle's statistics; the thread that owns P.kv. */
static void
engine_stats_snapshot(void)
{
    struct engine_stats_text *t = malloc(sizeof(*t));
    if (t == NULL || P.ops->stats == NULL) {
        free(t);
        return;
    }
    t->len = 0;
    t->text[0] = '\0';
    P.ops->stats(P.kv, engine_stat_collect, t);
    pthread_mutex_lock(&ES.lock);
    ES.snap = *t;
    ES.taken_us = now_us();
    pthread_mutex_unlock(&ES.lock);
    free(t);
}

/* A moving average over the last few commits (flusher only writes it). */
static void
ewma_update(_Atomic uint64_t *avg, uint64_t sample)
{
    uint64_t old = atomic_load_explicit(avg, memory_order_relaxed);
    atomic_store_explicit(avg, old == 0 ? sample : (old * 7 + sample) / 8,
                          memory_order_relaxed);
}

struct batch_entry {
    void *rec;
};

static int
write_batch(struct batch_entry *batch, size_t n, uint64_t mark, int64_t flush_at,
            uint64_t *bytes_out, uint64_t *puts_out, uint64_t *dels_out)
{
    const struct kvstore_ops *ops = P.ops;
    uint64_t bytes = 0, puts = 0, dels = 0;
    int rc = ops->begin(P.kv);
    if (rc == MCKV_OK && mark != 0)
        rc = ops->flush(P.kv, mark);
    for (size_t i = 0; i < n && rc == MCKV_OK; i++) {
        void *rec = batch[i].rec;
        if ((uintptr_t)rec & DEL_TAG) {
            struct del_rec *d = (void *)((uintptr_t)rec & ~(uintptr_t)DEL_TAG);
            if (cache_key_present(d->key, d->nkey))
                continue;   /* a newer value exists: its put follows */
            rc = ops->del(P.kv, d->key, d->nkey);
            dels++;
            continue;
        }
        struct item *it = rec;
        if (!cache_item_is_current(it))
            continue;       /* replaced: the newer version has its record */
        if (mark != 0 && it->cas < mark)
            continue;       /* flushed */
        rel_time_t exp = atomic_load_explicit(&it->exptime, memory_order_relaxed);
        struct kvstore_record r = {
            .key = item_key(it), .nkey = it->nkey, .flags = it->flags,
            .exptime = (int64_t)cache_rel_to_unix(exp), .cas = it->cas,
            .value = item_key(it) + it->nkey, .vlen = it->nbytes,
        };
        if (P.delay_us > 0)
            usleep(P.delay_us);   /* testing knob: a slow disk */
        rc = ops->put(P.kv, &r);
        bytes += cache_item_total_size(it);   /* as dirty_bytes counts it */
        puts++;
    }
    if (rc == MCKV_OK)
        rc = ops->set_meta(P.kv, "cas_high", (int64_t)cache_cas_high());
    if (rc == MCKV_OK && flush_at >= 0)
        rc = ops->set_meta(P.kv, "flush_at", flush_at);
    if (rc == MCKV_OK)
        rc = ops->commit(P.kv);
    if (rc != MCKV_OK) {
        atomic_fetch_add(&P.engine_errors, 1);
        ops->rollback(P.kv);
        return rc;
    }
    *bytes_out = bytes;
    *puts_out = puts;
    *dels_out = dels;
    return MCKV_OK;
}

/* Waits for work: the rings' notify fds and the wake fd, bounded. */
static void
flusher_wait(int timeout_ms)
{
    struct pollfd fds[P.nworkers + 1];
    for (unsigned i = 0; i < P.nworkers; i++)
        fds[i] = (struct pollfd){ .fd = P.pw[i].queue.notify_fd, .events = POLLIN };
    fds[P.nworkers] = (struct pollfd){ .fd = P.wake_fd, .events = POLLIN };
    for (unsigned i = 0; i < P.nworkers; i++)
        if (!ring_empty_fenced(&P.pw[i].queue))
            return;
    if (atomic_load(&P.flush_mark) != 0 || atomic_load(&P.flush_at_new) >= 0 ||
        atomic_load(&P.stopping))
        return;
    poll(fds, P.nworkers + 1, timeout_ms);
}

static void
consume_notifies(void)
{
    uint64_t v;
    for (unsigned i = 0; i < P.nworkers; i++)
        ring_consume_notify(&P.pw[i].queue);
    ssize_t r = read(P.wake_fd, &v, sizeof(v));
    (void)r;
}

/*
 * Async durability: lets writes gather for up to PERSIST_GATHER_MAX_MS (at
 * most half of flush_interval_ms) after `since` (the last commit, or the
 * wake-up that ended an idle wait), so that a commit carries many rows
 * instead of the few that arrived while the previous one ran. Longer
 * windows saved no more CPU but made the flusher's work bursty: at 60k
 * requests/s open loop (90/10, pipeline 1) the p99 reply was 1.2-1.3 ms
 * with 10 ms, 3.2-4.7 ms with 50 ms, 1.6-2.9 ms with 2 ms. Fewer, larger transactions write each touched page
 * once for more rows, and a worker's ring stays non-empty, so its eventfd
 * is written less often. Returns early when batch_max writes are queued,
 * when dirty bytes pass half the soft limit (backpressure must not start
 * because the flusher sat idle), on a flush_all, and at shutdown. Sync
 * durability commits at once: writers wait for it.
 */
static void
flusher_gather(uint64_t since)
{
    if (P.sync)
        return;
    uint64_t window = (uint64_t)atomic_load(&P.flush_interval_ms) * 1000 / 2;
    if (window > PERSIST_GATHER_MAX_MS * 1000)
        window = PERSIST_GATHER_MAX_MS * 1000;
    for (;;) {
        if (atomic_load(&P.stopping) || atomic_load(&P.flush_mark) != 0 ||
            atomic_load(&P.flush_at_new) >= 0)
            return;
        uint64_t now = now_us();
        if (now >= since + window)
            return;
        size_t queued = 0;
        for (unsigned w = 0; w < P.nworkers; w++)
            queued += ring_size(&P.pw[w].queue);
        int64_t dirty = atomic_load_explicit(&P.dirty_bytes, memory_order_relaxed);
        if (queued >= P.batch_max || (dirty > 0 && (uint64_t)dirty > P.soft_bytes / 2))
            return;
        uint64_t left_ms = (since + window - now + 999) / 1000;
        struct pollfd wake = { .fd = P.wake_fd, .events = POLLIN };
        poll(&wake, 1, left_ms < PERSIST_GATHER_STEP_MS ? (int)left_ms
                                                        : PERSIST_GATHER_STEP_MS);
    }
}

/* flusher thread */
static void *
flusher_main(void *arg)
{
    (void)arg;
    struct batch_entry *batch = malloc(P.batch_max * sizeof(*batch));
    uint64_t *drained_now = calloc(P.nworkers, sizeof(*drained_now));
    unsigned backoff_ms = PERSIST_BACKOFF_MIN_MS;
    uint64_t stop_deadline = 0;
    if (batch == NULL || drained_now == NULL) {
        log_error("persistence: flusher out of memory");
        return NULL;
    }
    uint64_t batch_start = now_us(), stats_at = 0;
    for (;;) {
        if (now_us() - stats_at >= ENGINE_STATS_EVERY_US) {
            engine_stats_snapshot();
            stats_at = now_us();
        }
        flusher_gather(batch_start);
        consume_notifies();
        size_t n = 0;
        for (unsigned w = 0; w < P.nworkers; w++) {
            void *rec;
            drained_now[w] = 0;
            while (n < P.batch_max && ring_pop(&P.pw[w].queue, &rec)) {
                batch[n++].rec = rec;
                drained_now[w]++;
            }
        }
        uint64_t mark = atomic_exchange(&P.flush_mark, 0);
        int64_t flush_at = atomic_exchange(&P.flush_at_new, -1);
        if (n == 0 && mark == 0 && flush_at < 0) {
            bool empty = true;
            for (unsigned w = 0; w < P.nworkers; w++)
                empty &= ring_empty_fenced(&P.pw[w].queue);
            if (empty && atomic_load(&P.stopping))
                break;
            if (empty) {
                flusher_wait((int)P.flush_interval_ms);
                batch_start = now_us();   /* gather from the wake-up */
            }
            continue;
        }
        for (;;) {
            uint64_t t0 = now_us(), bytes = 0, puts = 0, dels = 0;
            int rc = write_batch(batch, n, mark, flush_at, &bytes, &puts, &dels);
            uint64_t dt = now_us() - t0;
            if (rc == MCKV_OK) {
                backoff_ms = PERSIST_BACKOFF_MIN_MS;
                atomic_fetch_add(&P.commits, 1);
                atomic_fetch_add(&P.commit_us_total, dt);
                atomic_max(&P.commit_us_max, dt);
                hist_record(&P.commit_hist, dt);
                atomic_store(&P.batch_last, n);
                atomic_max(&P.batch_max_seen, n);
                atomic_fetch_add(&P.batch_items_total, n);
                atomic_fetch_add(&P.items_persisted, puts);
                atomic_fetch_add(&P.deletes_persisted, dels);
                if (mark != 0)
                    atomic_fetch_add(&P.flushes_persisted, 1);
                if (dt > 0 && bytes > 0)
                    ewma_update(&P.drain_rate_bps, bytes * 1000000u / dt);
                if (dt > 0)
                    ewma_update(&P.drain_rate_ips, (uint64_t)n * 1000000u / dt);
                batch_start = now_us();
                break;
            }
            log_error("persistence: commit of %zu writes failed: %s; retrying "
                      "in %u ms (data stays in memory)", n,
                      P.ops->last_error(P.kv), backoff_ms);
            if (atomic_load(&P.stopping)) {
                if (stop_deadline == 0)
                    stop_deadline = now_us() + 30u * 1000000u;
                else if (now_us() > stop_deadline) {
                    log_error("persistence: giving up at shutdown: %zu writes "
                              "are not on disk", n);
                    break;
                }
            }
            struct pollfd pfd = { .fd = P.wake_fd, .events = POLLIN };
            poll(&pfd, 1, (int)backoff_ms);
            backoff_ms = backoff_ms * 2 > PERSIST_BACKOFF_MAX_MS
                         ? PERSIST_BACKOFF_MAX_MS : backoff_ms * 2;
            uint64_t more = atomic_exchange(&P.flush_mark, 0);
            if (more > mark)
                mark = more;
            int64_t at = atomic_exchange(&P.flush_at_new, -1);
            if (at >= 0)
                flush_at = at;
        }
        for (size_t i = 0; i < n; i++) {
            void *rec = batch[i].rec;
            if ((uintptr_t)rec & DEL_TAG) {
                free((void *)((uintptr_t)rec & ~(uintptr_t)DEL_TAG));
                continue;
            }
            struct item *it = rec;
            atomic_fetch_sub(&P.dirty_items, 1);
            atomic_fetch_sub(&P.dirty_bytes, (int64_t)cache_item_total_size(it));
            cache_item_clean(it);
            cache_item_release(it);
        }
        for (unsigned w = 0; w < P.nworkers; w++) {
            if (drained_now[w] == 0)
                continue;
            P.pw[w].drained += drained_now[w];
            /* Release: the items' clean state is visible before a worker
             * that sees this count replies to a sync write. */
            atomic_store_explicit(&P.pw[w].committed, P.pw[w].drained,
                                  memory_order_release);
            if (P.sync)
                while (!ring_push_mp(&P.pw[w].done, COMMIT_TAG))
                    sched_yield();
        }
    }
    free(batch);
    free(drained_now);
    return NULL;
}

/* ---------------------------------------------------------------- fetchers */

struct fetcher {
    struct kvstore *kv;
};

/* A read-only engine handle for reader `who` number `idx` (a fetcher, a
 * warmup thread); NULL once the reason is logged. */
static struct kvstore *
reader_open(const char *who, unsigned idx)
{
    struct kvstore *kv = NULL;
    struct kvstore_options o = P.kopts;
    o.read_only = true;
    o.cache_kb = 0;   /* the engine's default for readers */
    if (P.ops->open(&kv, &o) == MCKV_OK)
        return kv;
    /* a failed open leaves kv NULL and its reason in last_error(NULL) */
    log_error("persistence: %s %u cannot open %s: %s", who, idx, P.path,
              P.ops->last_error(kv));
    return NULL;
}

static void *
fetcher_init(unsigned idx, void *arg)
{
    (void)arg;
    struct fetcher *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->kv = reader_open("fetcher", idx);
    if (f->kv == NULL) {
        free(f);
        return NULL;
    }
    return f;
}

static void
fetcher_fini(void *ctx)
{
    struct fetcher *f = ctx;
    if (f == NULL)
        return;
    P.ops->close(f->kv);
    free(f);
}

struct fetch_alloc {
    struct item *it;
};

static char *
fetch_alloc_cb(void *ctx, const struct kvstore_record *rec)
{
    struct fetch_alloc *fa = ctx;
    bool too_large = false;
    fa->it = cache_item_alloc(rec->key, rec->nkey, rec->flags,
                              cache_realtime(rec->exptime), rec->vlen, &too_large);
    return fa->it != NULL ? item_value(fa->it) : NULL;
}

/* fetcher thread */
static void
fetch_run(struct hotpool_task *t, void *thread_ctx)
{
    struct fetch_task *ft = (struct fetch_task *)t;
    struct fetcher *f = thread_ctx;
    uint64_t t0 = now_us();
    struct fetch_alloc fa = { NULL };
    struct kvstore_record rec;
    int rc = P.ops->get(f->kv, ft->key, ft->nkey, fetch_alloc_cb, &fa, &rec);
    ft->item = NULL;
    if (rc == MCKV_OK && fa.it != NULL) {
        fa.it->cas = rec.cas;
        /* The request that waits gets the item itself too: under memory
         * pressure other fetches may eject it again before the worker
         * runs the request. Not when something newer is in memory. */
        if (cache_install(fa.it) == CACHE_STORED)
            ft->item = fa.it;
        else
            cache_item_release(fa.it);
    } else if (rc == MCKV_ENOTFOUND) {
        cache_install_absent(ft->key, ft->nkey);
        atomic_fetch_add(&P.bg_fetch_misses, 1);
    } else {
        if (fa.it != NULL)
            cache_item_release(fa.it);
        atomic_fetch_add(&P.engine_errors, 1);
        atomic_store_explicit(&ft->conn->fetch_failed, true, memory_order_relaxed);
        log_error("persistence: background fetch of %.*s failed: %s (%s)",
                  (int)ft->nkey, ft->key, mckv_strerror(rc),
                  rc == MCKV_ENOMEM ? "no memory for the value"
                                    : P.ops->last_error(f->kv));
    }
    uint64_t dt = now_us() - t0;
    atomic_fetch_add(&P.bg_fetches, 1);
    atomic_fetch_add(&P.bg_fetch_us_total, dt);
    atomic_max(&P.bg_fetch_us_max, dt);
    pthread_mutex_lock(&P.fetch_hist_lock);
    hist_record(&P.fetch_hist, dt);
    pthread_mutex_unlock(&P.fetch_hist_lock);
    while (!ring_push_mp(&P.pw[ft->worker].done, ft))
        sched_yield();
}

bool
persist_fetch(struct conn *c, const char *key, uint8_t nkey)
{
    struct fetch_task *ft = malloc(sizeof(*ft));
    if (ft == NULL)
        return false;
    ft->task.run = fetch_run;
    ft->conn = c;
    ft->worker = (unsigned)my_worker;
    ft->nkey = nkey;
    memcpy(ft->key, key, nkey);
    c->fetch_pending++;
    if (hotpool_submit(P.pool, &ft->task) != 0) {
        c->fetch_pending--;
        free(ft);
        atomic_fetch_add(&P.temporary_failures, 1);
        return false;
    }
    return true;
}

void
persist_completions(struct worker *w)
{
    struct ring *r = &P.pw[w->id].done;
    void *e;
    bool commit = false;
    ring_consume_notify(r);
    for (;;) {
        while (ring_pop(r, &e)) {
            if (e == COMMIT_TAG) {
                commit = true;
            } else {
                struct fetch_task *ft = e;
                conn_fetch_done(ft->conn, ft->item);
                free(ft);
            }
        }
        if (ring_empty_fenced(r))
            break;
    }
    if (commit)
        worker_sync_committed(w);
}

/* ---------------------------------------------------------------- warmup */

struct warmup_ctx {
    time_t now;
    bool full;
};

static bool
warmup_row(void *ctx, const struct kvstore_record *rec)
{
    struct warmup_ctx *wc = ctx;
    if (rec->exptime != 0 && rec->exptime <= wc->now) {
        atomic_fetch_add_explicit(&P.warmup_skipped, 1, memory_order_relaxed);
        return true;
    }
    struct item *it = cache_item_alloc_noevict(rec->key, rec->nkey, rec->flags,
                                               cache_realtime(rec->exptime),
                                               rec->vlen);
    if (it == NULL) {
        wc->full = true;   /* memory limit reached: the rest stays on disk */
        return false;
    }
    if (rec->vlen > 0)   /* an empty value may come with a NULL pointer */
        memcpy(item_value(it), rec->value, rec->vlen);
    it->cas = rec->cas;
    if (cache_install(it) == CACHE_STORED)
        atomic_fetch_add_explicit(&P.warmup_loaded, 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&P.warmup_skipped, 1, memory_order_relaxed);
    cache_item_release(it);
    return true;
}

/* The last warmup thread to finish: publishes the outcome. */
static void
warmup_finish(void)
{
    bool finished = !atomic_load(&P.warmup_partial);
    if (finished)
        cache_set_complete(true);
    else
        atomic_store(&P.warmup_truncated, true);
    atomic_store(&P.warmup_ms, (now_us() - P.warmup_t0) / 1000);
    atomic_store(&P.warmup_state, WARMUP_DONE);
    log_info("warmup %s: %" PRIu64 " items loaded in %" PRIu64 " ms by %u "
             "thread%s%s", finished ? "done" : "stopped",
             atomic_load(&P.warmup_loaded), atomic_load(&P.warmup_ms),
             P.nwparts, P.nwparts == 1 ? "" : "s",
             atomic_load(&P.warmup_full)
                 ? " (memory limit reached: the rest is read on demand)" : "");
}

/* warmup thread: one range of rows, in chunks of PERSIST_SCAN_CHUNK */
static void *
warmup_main(void *arg)
{
    struct warmup_part *wp = arg;
    struct warmup_ctx wc = { .full = false };
    struct kvstore *kv = reader_open("warmup thread", (unsigned)(wp - P.wparts));
    int rc = kv != NULL ? MCKV_OK : MCKV_EIO;
    if (kv == NULL) {
        atomic_fetch_add(&P.engine_errors, 1);
    } else {
        uint64_t cursor = wp->first;
        while (!atomic_load(&P.stopping) && !atomic_load(&P.warmup_full)) {
            wc.now = time(NULL);
            rc = wp->end == UINT64_MAX
                ? P.ops->scan(kv, &cursor, PERSIST_SCAN_CHUNK, warmup_row, &wc)
                : P.ops->scan_range(kv, &cursor, wp->end, PERSIST_SCAN_CHUNK,
                                    warmup_row, &wc);
            if (rc != MCKV_OK || wc.full)
                break;
        }
        if (wc.full)
            atomic_store(&P.warmup_full, true);   /* the others stop too */
        if (rc != MCKV_OK && rc != MCKV_ENOTFOUND) {
            atomic_fetch_add(&P.engine_errors, 1);
            log_error("persistence: warmup scan failed: %s", P.ops->last_error(kv));
        }
    }
    if (kv != NULL)
        P.ops->close(kv);
    if (rc != MCKV_ENOTFOUND || wc.full)
        atomic_store(&P.warmup_partial, true);
    if (atomic_fetch_sub(&P.warmup_running, 1) == 1)
        warmup_finish();
    return NULL;
}

/* Splits the rows into ranges, sizes the hash tables, starts the warmup
 * threads; main thread, before the flusher owns P.kv. */
static int
warmup_start(char *err, size_t errlen)
{
    unsigned n = P.nfetchers < PERSIST_WARMUP_THREADS_MAX
        ? P.nfetchers : PERSIST_WARMUP_THREADS_MAX;
    uint64_t end = 0;
    bool ranged = P.ops->scan_end != NULL && P.ops->scan_range != NULL &&
                  P.ops->scan_end(P.kv, &end) == MCKV_OK;
    if (ranged)
        cache_reserve(end);
    if (!ranged || n < 2 || end < (uint64_t)n * PERSIST_SCAN_CHUNK)
        n = 1;   /* one scan of everything */
    P.wparts = calloc(n, sizeof(*P.wparts));
    if (P.wparts == NULL) {
        snprintf(err, errlen, "persistence: out of memory");
        return -1;
    }
    P.nwparts = n;
    for (unsigned i = 0; i < n; i++) {
        P.wparts[i].first = end / n * i;
        P.wparts[i].end = i + 1 < n ? end / n * (i + 1) : UINT64_MAX;
    }
    P.warmup_t0 = now_us();
    atomic_store(&P.warmup_running, n);
    atomic_store(&P.warmup_state, WARMUP_RUNNING);
    for (unsigned i = 0; i < n; i++) {
        if (pthread_create(&P.wparts[i].thread, NULL, warmup_main, &P.wparts[i]) != 0) {
            /* the parts not started count as not read */
            atomic_store(&P.warmup_partial, true);
            if (atomic_fetch_sub(&P.warmup_running, n - i) == n - i)
                warmup_finish();
            log_error("persistence: cannot start warmup thread %u of %u", i + 1, n);
            break;
        }
        P.wparts[i].started = true;
        char name[16];
        snprintf(name, sizeof(name), "mckv-warmup%u", i % 1000u);
        pthread_setname_np(P.wparts[i].thread, name);   /* for top -H, perf */
    }
    return 0;
}

void
persist_set_limits(uint64_t soft_mb, uint64_t hard_mb, uint64_t memory_mb,
                   uint32_t flush_interval_ms)
{
    if (!P.enabled)
        return;
    uint64_t soft = soft_mb * 1024 * 1024, hard = hard_mb * 1024 * 1024;
    uint64_t mem = memory_mb * 1024 * 1024;
    if (hard > mem / 2)
        hard = mem / 2;
    if (soft > hard / 2)
        soft = hard / 2;
    atomic_store(&P.soft_bytes, soft);
    atomic_store(&P.hard_bytes, hard);
    atomic_store(&P.flush_interval_ms, flush_interval_ms);
}

void
persist_schedule_flush(rel_time_t when)
{
    if (!P.enabled)
        return;
    atomic_store(&P.flush_at_new, (int64_t)cache_rel_to_unix(when));
    wake_flusher();
}

int
persist_start(char *err, size_t errlen)
{
    if (!P.enabled)
        return 0;
    if (P.pending_flush_at > 0) {
        /* the hook records the flush (or the new pending time) on disk */
        if (P.pending_flush_at <= (int64_t)time(NULL)) {
            cache_flush(cache_now());
        } else {
            cache_flush(cache_realtime(P.pending_flush_at));
            atomic_store(&P.flush_at_new, P.pending_flush_at);
        }
    }
    P.pool = hotpool_create(P.nfetchers, PERSIST_FETCH_BACKLOG, fetcher_init,
                            fetcher_fini, NULL);
    if (P.pool == NULL) {
        snprintf(err, errlen, "persistence: cannot start %u fetchers on %s",
                 P.nfetchers, P.path);
        return -1;
    }
    if (warmup_start(err, errlen) != 0)
        return -1;
    if (pthread_create(&P.flusher, NULL, flusher_main, NULL) != 0) {
        snprintf(err, errlen, "persistence: cannot start the flusher");
        return -1;
    }
    P.flusher_started = true;
    pthread_setname_np(P.flusher, "mckv-flusher");
    return 0;
}

void
persist_stop(void)
{
    if (!P.enabled)
        return;
    atomic_store(&P.stopping, true);
    for (unsigned i = 0; i < P.nwparts; i++)
        if (P.wparts[i].started)
            pthread_join(P.wparts[i].thread, NULL);
    free(P.wparts);
    P.wparts = NULL;
    P.nwparts = 0;
    if (P.pool != NULL)
        hotpool_destroy(&P.pool);
    /* Fetches that finished after the workers stopped: nobody will read
     * their completions. */
    for (unsigned i = 0; i < P.nworkers; i++) {
        void *e;
        while (ring_pop(&P.pw[i].done, &e)) {
            if (e == COMMIT_TAG)
                continue;
            struct fetch_task *ft = e;
            conn_fetch_abandon(ft->conn, ft->item);
            free(ft);
        }
    }
    if (P.flusher_started) {
        wake_flusher();
        pthread_join(P.flusher, NULL);
        P.flusher_started = false;
    }
    log_info("persistence: stopped; %" PRIu64 " writes persisted, %" PRId64
             " not", atomic_load(&P.items_persisted),
             (int64_t)atomic_load(&P.dirty_items));
    if (P.kv != NULL)
        P.ops->close(P.kv);
    P.kv = NULL;
    for (unsigned i = 0; i < P.nworkers; i++) {
        ring_deinit(&P.pw[i].queue);
        ring_deinit(&P.pw[i].done);
    }
    free(P.pw);
    P.pw = NULL;
    if (P.wake_fd >= 0)
        close(P.wake_fd);
    P.wake_fd = -1;
    free(P.path);
    P.path = NULL;
}

/* ---------------------------------------------------------------- stats */

static void
emit_u64(stats_emit_fn emit, void *ctx, const char *name, uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    emit(ctx, name, buf);
}

void
persist_engine_stats(stats_emit_fn emit, void *ctx)
{
    struct engine_stats_text *t = malloc(sizeof(*t));
    if (t == NULL)
        return;
    pthread_mutex_lock(&ES.lock);
    *t = ES.snap;
    uint64_t taken = ES.taken_us;
    pthread_mutex_unlock(&ES.lock);
    if (taken == 0)   /* no snapshot: persistence off, or not started */
        emit(ctx, "engine", P.ops != NULL ? P.ops->name : "none");
    emit_u64(emit, ctx, "snapshot_age_ms",
             taken != 0 ? (now_us() - taken) / 1000 : 0);
    t->text[t->len < sizeof(t->text) ? t->len : sizeof(t->text) - 1] = '\0';
    char *save = NULL;
    for (char *line = strtok_r(t->text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *sp = strchr(line, ' ');
        if (sp == NULL)
            continue;
        *sp = '\0';
        emit(ctx, line, sp + 1);
    }
    free(t);
}

void
persist_stats(stats_emit_fn emit, void *ctx)
{
    static const char *const states[] = { "none", "running", "done" };
    emit(ctx, "engine", P.ops != NULL ? P.ops->name : "none");
    emit(ctx, "durability", P.enabled ? (P.sync ? "sync" : "async") : "none");
    emit_u64(emit, ctx, "dirty_soft_limit_bytes", P.soft_bytes);
    emit_u64(emit, ctx, "dirty_hard_limit_bytes", P.hard_bytes);
    int64_t di = atomic_load(&P.dirty_items), db = atomic_load(&P.dirty_bytes);
    emit_u64(emit, ctx, "dirty_items", di > 0 ? (uint64_t)di : 0);
    emit_u64(emit, ctx, "dirty_bytes", db > 0 ? (uint64_t)db : 0);
    uint64_t depth = 0;
    for (unsigned i = 0; P.enabled && i < P.nworkers; i++)
        depth += atomic_load(&P.pw[i].queued) - atomic_load(&P.pw[i].committed);
    emit_u64(emit, ctx, "queue_depth", depth);
    emit_u64(emit, ctx, "items_persisted", atomic_load(&P.items_persisted));
    emit_u64(emit, ctx, "deletes_persisted", atomic_load(&P.deletes_persisted));
    emit_u64(emit, ctx, "flushes_persisted", atomic_load(&P.flushes_persisted));
    uint64_t commits = atomic_load(&P.commits);
    emit_u64(emit, ctx, "commits", commits);
    emit_u64(emit, ctx, "commit_time_us_total", atomic_load(&P.commit_us_total));
    emit_u64(emit, ctx, "commit_time_us_max", atomic_load(&P.commit_us_max));
    emit_u64(emit, ctx, "batch_size_last", atomic_load(&P.batch_last));
    emit_u64(emit, ctx, "batch_size_max", atomic_load(&P.batch_max_seen));
    emit_u64(emit, ctx, "batch_size_avg",
             commits ? atomic_load(&P.batch_items_total) / commits : 0);
    emit_u64(emit, ctx, "drain_rate_bytes_per_s", atomic_load(&P.drain_rate_bps));
    emit_u64(emit, ctx, "drain_rate_items_per_s", atomic_load(&P.drain_rate_ips));
    uint64_t fetches = atomic_load(&P.bg_fetches);
    emit_u64(emit, ctx, "bg_fetches", fetches);
    emit_u64(emit, ctx, "bg_fetch_misses", atomic_load(&P.bg_fetch_misses));
    emit_u64(emit, ctx, "bg_fetch_us_avg",
             fetches ? atomic_load(&P.bg_fetch_us_total) / fetches : 0);
    emit_u64(emit, ctx, "bg_fetch_us_max", atomic_load(&P.bg_fetch_us_max));
    emit_u64(emit, ctx, "ejected_items", cache_ejected_items());
    int ws = atomic_load(&P.warmup_state);
    emit(ctx, "warmup_state", states[ws < 0 || ws > 2 ? 0 : ws]);
    emit_u64(emit, ctx, "warmup_items_loaded", atomic_load(&P.warmup_loaded));
    emit_u64(emit, ctx, "warmup_items_skipped", atomic_load(&P.warmup_skipped));
    emit_u64(emit, ctx, "warmup_elapsed_ms",
             ws == WARMUP_DONE ? atomic_load(&P.warmup_ms) : 0);
    emit_u64(emit, ctx, "warmup_truncated", atomic_load(&P.warmup_truncated));
    emit_u64(emit, ctx, "cache_complete", cache_is_complete());
    emit_u64(emit, ctx, "throttled_writes", atomic_load(&P.throttled_writes));
    emit_u64(emit, ctx, "throttle_delay_ms_max", atomic_load(&P.throttle_ms_max));
    emit_u64(emit, ctx, "temporary_failures", atomic_load(&P.temporary_failures));
    emit_u64(emit, ctx, "engine_errors", atomic_load(&P.engine_errors));
    emit_u64(emit, ctx, "queue_overflows", atomic_load(&P.queue_overflows));
}

void
persist_timings(stats_emit_fn emit, void *ctx)
{
    struct hist commit = { 0 }, fetch = { 0 };
    hist_merge(&commit, &P.commit_hist);
    pthread_mutex_lock(&P.fetch_hist_lock);
    hist_merge(&fetch, &P.fetch_hist);
    pthread_mutex_unlock(&P.fetch_hist_lock);
    stats_emit_hist(emit, ctx, "commit", &commit);
    stats_emit_hist(emit, ctx, "bg_fetch", &fetch);
}
