/*
 * warmup.c: the restart scan (contract in warmup.h).
 *
 * Threads. One per range, not the fetchers: the fetchers stay free for the
 * gets that cannot wait for the warmup. Each thread reads its range in
 * chunks of WARMUP_SCAN_CHUNK rows and looks at the stop flags between
 * chunks. The last thread to finish publishes the outcome (a counter of
 * running threads, decremented by each): the cache is complete only when
 * every range was read to its end.
 */
#include <config.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engines/kvstore.h"
#include "server/cache.h"
#include "server/engine_health.h"
#include "server/persist_priv.h"
#include "server/expiry.h"
#include "server/warmup.h"
#include "util/log.h"
#include "util/status.h"

#define WARMUP_SCAN_CHUNK 1000
#define WARMUP_THREADS_MAX 8

/* A warmup thread reads rows with cursors in (first, end]. */
struct warmup_part {
    pthread_t thread;
    uint64_t first, end;   /* end UINT64_MAX: to the last row */
    bool started;
};

static struct {
    const struct persist_engine *engine;
    struct warmup_part *parts;        /* one per thread */
    unsigned nparts;
    atomic_bool stopping;
    atomic_uint running;              /* threads not finished */
    atomic_bool full;                 /* memory limit reached: keys only */
    atomic_bool partial;              /* some part did not reach its end */
    uint64_t t0;
    _Atomic int state;
    _Atomic uint64_t loaded, skipped, elapsed_ms, engine_errors;
    atomic_bool truncated;
} W;

struct warmup_ctx {
    time_t now;
    bool full;
};

/* warmup thread: one row */
static bool
warmup_row(void *ctx, const struct kvstore_record *rec)
{
    struct warmup_ctx *wc = ctx;
    if (rec->exptime != 0 && rec->exptime <= wc->now) {
        atomic_fetch_add_explicit(&W.skipped, 1, memory_order_relaxed);
        /* the flusher deletes it; wait for room rather than leave it */
        while (!expiry_hint(rec->key, rec->nkey, rec->cas) &&
               !atomic_load(&W.stopping))
            usleep(5000);
        return true;
    }
    /* Every live key goes into the filter of keys on disk, loaded or not:
     * once the whole disk was read, a miss for a key it has not seen needs
     * no disk read (cache_filter.c). */
    cache_filter_add(rec->key, rec->nkey);
    if (wc->full || atomic_load_explicit(&W.full, memory_order_relaxed)) {
        wc->full = true;   /* memory limit reached: only keys from now on */
        return true;
    }
    struct item *it = cache_item_alloc_noevict(rec->key, rec->nkey, rec->flags,
                                               cache_realtime(rec->exptime),
                                               rec->vlen);
    if (it == NULL) {
        /* memory limit reached: the values stay on disk, read on demand,
         * but the scan goes on for the keys */
        wc->full = true;
        atomic_store(&W.full, true);   /* the other threads too */
        return true;
    }
    if (rec->vlen > 0)   /* an empty value may come with a NULL pointer */
        memcpy(item_value(it), rec->value, rec->vlen);
    it->cas = rec->cas;
    if (cache_install(it) == CACHE_STORED)
        atomic_fetch_add_explicit(&W.loaded, 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&W.skipped, 1, memory_order_relaxed);
    cache_item_release(it);
    return true;
}

/* The last warmup thread to finish: publishes the outcome. */
static void
warmup_finish(void)
{
    /* read: every row was seen (the filter knows every key on disk);
     * finished: and every value was loaded (the cache is complete) */
    bool read = !atomic_load(&W.partial);
    bool finished = read && !atomic_load(&W.full);
    if (read)
        cache_filter_set_ready();
    if (finished)
        cache_set_complete(true);
    else
        atomic_store(&W.truncated, true);
    atomic_store(&W.elapsed_ms, (persist_now_us() - W.t0) / 1000);
    atomic_store(&W.state, WARMUP_DONE);
    log_info("warmup %s: %" PRIu64 " items loaded in %" PRIu64 " ms by %u "
             "thread%s%s", finished ? "done" : "stopped",
             atomic_load(&W.loaded), atomic_load(&W.elapsed_ms),
             W.nparts, W.nparts == 1 ? "" : "s",
             atomic_load(&W.full)
                 ? " (memory limit reached: the rest is read on demand)" : "");
}

/* warmup thread: one range of rows, in chunks of WARMUP_SCAN_CHUNK */
static void *
warmup_main(void *arg)
{
    struct warmup_part *wp = arg;
    const struct kvstore_ops *ops = W.engine->ops;
    struct warmup_ctx wc = { .full = false };
    struct kvstore *kv = persist_reader_open(W.engine, "warmup thread",
                                             (unsigned)(wp - W.parts));
    int rc = kv != NULL ? MCKV_OK : MCKV_EIO;
    if (kv == NULL) {
        atomic_fetch_add(&W.engine_errors, 1);
    } else {
        uint64_t cursor = wp->first;
        while (!atomic_load(&W.stopping)) {
            wc.now = time(NULL);
            rc = wp->end == UINT64_MAX
                ? ops->scan(kv, &cursor, WARMUP_SCAN_CHUNK, warmup_row, &wc)
                : ops->scan_range(kv, &cursor, wp->end, WARMUP_SCAN_CHUNK,
                                  warmup_row, &wc);
            if (rc != MCKV_OK)
                break;
        }
        if (rc != MCKV_OK && rc != MCKV_ENOTFOUND) {
            atomic_fetch_add(&W.engine_errors, 1);
            log_error("persistence: warmup scan failed: %s", ops->last_error(kv));
            engine_health_report(rc, "warmup", ops->last_error(kv));
        }
    }
    if (kv != NULL)
        ops->close(kv);
    if (rc != MCKV_ENOTFOUND)
        atomic_store(&W.partial, true);   /* stopped, or a read failed */
    if (atomic_fetch_sub(&W.running, 1) == 1)
        warmup_finish();
    return NULL;
}

int
warmup_start(const struct persist_engine *engine, struct kvstore *kv,
             unsigned nthreads, char *err, size_t errlen)
{
    const struct kvstore_ops *ops = engine->ops;
    /* from a clean slate: a process may warm up more than once (tests) */
    atomic_store(&W.stopping, false);
    atomic_store(&W.full, false);
    atomic_store(&W.partial, false);
    atomic_store(&W.truncated, false);
    atomic_store(&W.loaded, 0);
    atomic_store(&W.skipped, 0);
    atomic_store(&W.elapsed_ms, 0);
    atomic_store(&W.engine_errors, 0);
    W.engine = engine;
    unsigned n = nthreads < WARMUP_THREADS_MAX ? nthreads : WARMUP_THREADS_MAX;
    uint64_t end = 0;
    bool ranged = ops->scan_end != NULL && ops->scan_range != NULL &&
                  ops->scan_end(kv, &end) == MCKV_OK;
    if (ranged) {
        cache_reserve(end);
        cache_filter_reserve(end);
    }
    if (!ranged || n < 2 || end < (uint64_t)n * WARMUP_SCAN_CHUNK)
        n = 1;   /* one scan of everything */
    W.parts = calloc(n, sizeof(*W.parts));
    if (W.parts == NULL) {
        snprintf(err, errlen, "persistence: out of memory");
        return -1;
    }
    W.nparts = n;
    for (unsigned i = 0; i < n; i++) {
        W.parts[i].first = end / n * i;
        W.parts[i].end = i + 1 < n ? end / n * (i + 1) : UINT64_MAX;
    }
    W.t0 = persist_now_us();
    atomic_store(&W.running, n);
    atomic_store(&W.state, WARMUP_RUNNING);
    for (unsigned i = 0; i < n; i++) {
        if (pthread_create(&W.parts[i].thread, NULL, warmup_main, &W.parts[i]) != 0) {
            /* the parts not started count as not read */
            atomic_store(&W.partial, true);
            if (atomic_fetch_sub(&W.running, n - i) == n - i)
                warmup_finish();
            log_error("persistence: cannot start warmup thread %u of %u", i + 1, n);
            break;
        }
        W.parts[i].started = true;
        char name[16];
        snprintf(name, sizeof(name), "mckv-warmup%u", i % 1000u);
        pthread_setname_np(W.parts[i].thread, name);   /* for top -H, perf */
    }
    return 0;
}

void
warmup_stop(void)
{
    atomic_store(&W.stopping, true);
    for (unsigned i = 0; i < W.nparts; i++)
        if (W.parts[i].started)
            pthread_join(W.parts[i].thread, NULL);
    free(W.parts);
    W.parts = NULL;
    W.nparts = 0;
}

void
warmup_counters(struct warmup_counters *out)
{
    int st = atomic_load(&W.state);
    *out = (struct warmup_counters){
        .state = st >= WARMUP_NONE && st <= WARMUP_DONE ? (enum warmup_state)st
                                                        : WARMUP_NONE,
        .loaded = atomic_load(&W.loaded),
        .skipped = atomic_load(&W.skipped),
        .elapsed_ms = atomic_load(&W.elapsed_ms),
        .truncated = atomic_load(&W.truncated),
        .engine_errors = atomic_load(&W.engine_errors),
    };
}
