/*
 * persist.c: write-behind persistence, the glue (contract in persist.h).
 *
 * The work is done by three modules that know nothing of connections or
 * workers: flusher.c (the one writer thread), fetcher.c (background
 * fetches) and warmup.c (the restart scan); throttle.c is the backpressure
 * law. This file opens the engine and restores what the database
 * remembers (the CAS high mark, a pending delayed flush_all), starts and
 * stops the threads in order, owns each worker's completion ring, decides
 * write admission from the law, and renders `stats kvstore`, `stats engine`
 * and the persistence timings.
 *
 * Completions. Each worker owns an MPSC completion ring, fed by the flusher
 * (a commit advanced its committed sequence: COMMIT_TAG) and the fetchers
 * (a fetch_result). The worker drains it on its own thread.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "engines/kvstore.h"
#include "server/cache.h"
#include "server/expiry.h"
#include "server/config.h"
#include "server/engine_health.h"
#include "server/engine_stats.h"
#include "server/fetcher.h"
#include "server/flusher.h"
#include "server/persist.h"
#include "server/persist_priv.h"
#include "server/stats.h"
#include "server/throttle.h"
#include "server/warmup.h"
#include "util/hist.h"
#include "util/log.h"
#include "util/ring.h"
#include "util/status.h"

#define PERSIST_DONE_RING_SIZE 16384
#define PERSIST_FETCH_BACKLOG 16384
#define COMMIT_TAG ((void *)(uintptr_t)1)

static struct {
    bool enabled;
    bool sync;
    struct persist_engine engine;
    char *path;
    struct kvstore *kv;           /* read-write: the flusher's once started */
    unsigned nworkers;
    unsigned nfetchers;
    struct ring *done;            /* per worker: flusher, fetchers -> worker */
    int64_t pending_flush_at;     /* read at start-up, armed by persist_start */
    bool fetchers_started, warmup_started;
    _Atomic uint64_t throttled_writes, throttle_ms_max, temporary_failures;
    _Atomic uint64_t writes_refused_damaged;
} P;

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

/* Creates every missing directory of path's parent. The database's own
 * directory, when created here, is 0700: the rows are the cache's contents,
 * as private as the traffic that wrote them (SQLite makes its files 0644,
 * RocksDB its directory 0755). Directories above it are 0755, and a
 * directory that already exists keeps its mode: the operator chose it. */
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
            if (mkdir(dir, c == '\0' ? 0700 : 0755) != 0 && errno != EEXIST) {
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

/* The backpressure limits for soft/hard/memory in MB. Dirty items cannot
 * leave memory: the backlog must stay well inside memory_limit or writes
 * would fail for memory instead of slowing. */
static void
effective_limits(uint64_t soft_mb, uint64_t hard_mb, uint64_t memory_mb,
                 uint64_t *soft, uint64_t *hard)
{
    *soft = soft_mb * 1024 * 1024;
    *hard = hard_mb * 1024 * 1024;
    uint64_t mem = memory_mb * 1024 * 1024;
    if (*hard > mem / 2)
        *hard = mem / 2;
    if (*soft > *hard / 2)
        *soft = *hard / 2;
}

/* The writer's page cache: sqlite_cache_mb, or by default an eighth of
 * memory_limit (at least 32 MB). Pages outside it cost the flusher a pread
 * each: with 100k keys of 1 KiB (a 120 MB file) and a write-heavy load, 32
 * MB left it reading most pages it updated (docs/benchmarks.md). */
static uint64_t
writer_cache_mb(const struct config *cfg)
{
    if (cfg->sqlite_cache_mb != 0)
        return cfg->sqlite_cache_mb;
    return cfg->memory_limit / 8 > 32 ? cfg->memory_limit / 8 : 32;
}

/* flusher thread: a commit advanced `worker`'s committed sequence */
static void
post_commit(void *ctx, unsigned worker)
{
    (void)ctx;
    while (!ring_push_mp(&P.done[worker], COMMIT_TAG))
        sched_yield();
}

/* fetcher thread: a fetch finished */
static void
post_fetch(void *ctx, struct fetch_result *r)
{
    (void)ctx;
    while (!ring_push_mp(&P.done[r->worker], r))
        sched_yield();
}

static void persist_stats(stats_emit_fn emit, void *ctx);
static void persist_engine_stats(stats_emit_fn emit, void *ctx);
static void persist_timings(stats_emit_fn emit, void *ctx);

int
persist_setup(const struct config *cfg, unsigned nthreads, char *err,
              size_t errlen)
{
    /* even with persistence off: they say so */
    stats_register_group("kvstore", persist_stats);
    stats_register_group("engine", persist_engine_stats);
    stats_register_group("timings", persist_timings);
    P.engine.ops = kvstore_find(cfg->engine);
    if (P.engine.ops == NULL) {
        snprintf(err, errlen, "engine: unknown engine '%s'", cfg->engine);
        return -1;
    }
    P.enabled = P.engine.ops->persistent;
    if (!P.enabled)
        return 0;
    P.sync = strcmp(cfg->durability, "sync") == 0;
    P.nworkers = nthreads;
    P.nfetchers = (unsigned)cfg->fetchers;
    P.path = strdup(cfg->db_path);
    if (P.path == NULL) {
        snprintf(err, errlen, "persistence: out of memory");
        return -1;
    }
    if (make_parent_dirs(P.path, err, errlen) != 0)
        return -1;
    P.engine.path = P.path;
    engine_health_setup(P.path, P.engine.ops->repair_hint);
    P.engine.opts = (struct kvstore_options){
        .path = P.path,
        .synchronous_full = strcmp(cfg->sqlite_synchronous, "full") == 0,
        .cache_kb = writer_cache_mb(cfg) * 1024,
    };
    const struct kvstore_ops *ops = P.engine.ops;
    int rc = ops->open(&P.kv, &P.engine.opts);
    if (rc != MCKV_OK) {
        /* a failed open leaves P.kv NULL and its reason in last_error(NULL) */
        const char *why = ops->last_error(NULL);
        snprintf(err, errlen, "db_path %s: %s", P.path,
                 why != NULL && why[0] != '\0' ? why : mckv_strerror(rc));
        return -1;
    }
    int64_t cas_high = 0;
    if (ops->get_meta(P.kv, "cas_high", &cas_high) == MCKV_OK && cas_high > 0)
        cache_set_cas_floor((uint64_t)cas_high);
    /* Until the warmup has read every row, a key missing from memory may
     * be on disk. */
    cache_set_complete(false);
    /* A flush_all with a delay that was pending at shutdown: every row on
     * disk was stored before it, so it takes them all when it falls due
     * (now, if that time has passed while we were down). */
    int64_t flush_at = 0;
    if (ops->get_meta(P.kv, "flush_at", &flush_at) == MCKV_OK && flush_at > 0)
        P.pending_flush_at = flush_at;

    P.done = calloc(nthreads, sizeof(*P.done));
    if (P.done == NULL) {
        snprintf(err, errlen, "persistence: out of memory");
        return -1;
    }
    for (unsigned i = 0; i < nthreads; i++) {
        if (ring_init(&P.done[i], PERSIST_DONE_RING_SIZE) != 0) {
            snprintf(err, errlen, "persistence: cannot create queues");
            return -1;
        }
    }
    struct flusher_options fo = {
        .engine = &P.engine, .kv = P.kv, .nworkers = nthreads,
        .batch_max = (uint32_t)cfg->batch_max_items, .sync = P.sync,
        .flush_interval_ms = (uint32_t)cfg->flush_interval_ms,
        .delay_us = (uint32_t)cfg->engine_delay_us,
        .committed = post_commit, .ctx = NULL,
    };
    effective_limits(cfg->dirty_soft_limit_mb, cfg->dirty_hard_limit_mb,
                     cfg->memory_limit, &fo.soft_bytes, &fo.hard_bytes);
    return flusher_setup(&fo, err, errlen);
}

void
persist_set_limits(uint64_t soft_mb, uint64_t hard_mb, uint64_t memory_mb,
                   uint32_t flush_interval_ms)
{
    if (!P.enabled)
        return;
    uint64_t soft, hard;
    effective_limits(soft_mb, hard_mb, memory_mb, &soft, &hard);
    flusher_set_limits(soft, hard, flush_interval_ms);
}

void
persist_cache_hook(const struct cache_change *change)
{
    flusher_queue_change(change);
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
            flusher_record_flush_at(P.pending_flush_at);
        }
    }
    struct fetcher_options fo = {
        .engine = &P.engine, .nfetchers = P.nfetchers,
        .backlog = PERSIST_FETCH_BACKLOG, .done = post_fetch, .ctx = NULL,
    };
    if (fetcher_setup(&fo) != 0) {
        snprintf(err, errlen, "persistence: cannot start %u fetchers on %s",
                 P.nfetchers, P.path);
        return -1;
    }
    P.fetchers_started = true;
    /* before the flusher owns P.kv */
    P.warmup_started = true;
    if (warmup_start(&P.engine, P.kv, P.nfetchers, err, errlen) != 0)
        return -1;
    return flusher_start(err, errlen);
}

void
persist_stop(void)
{
    if (!P.enabled)
        return;
    if (P.warmup_started)
        warmup_stop();
    if (P.fetchers_started)
        fetcher_stop();
    /* Fetches that finished after the workers stopped: nobody will read
     * their completions (their connections are closed or closing). */
    for (unsigned i = 0; P.done != NULL && i < P.nworkers; i++) {
        void *e;
        while (ring_pop(&P.done[i], &e)) {
            if (e == COMMIT_TAG)
                continue;
            fetcher_result_free(e);   /* releases the value */
        }
    }
    /* after the workers: every change they queued gets to disk */
    flusher_stop();
    if (P.kv != NULL)
        P.engine.ops->close(P.kv);
    P.kv = NULL;
    flusher_teardown();
    for (unsigned i = 0; P.done != NULL && i < P.nworkers; i++)
        ring_deinit(&P.done[i]);
    free(P.done);
    P.done = NULL;
    free(P.path);
    P.path = NULL;
}

/* ---------------------------------------------------------------- workers */

void
persist_worker_bind(unsigned id)
{
    flusher_bind_worker(id);
}

int
persist_completion_fd(unsigned worker)
{
    return P.enabled ? P.done[worker].notify_fd : -1;
}

uint64_t
persist_take_write_seq(void)
{
    return P.enabled ? flusher_take_write_seq() : 0;
}

uint64_t
persist_committed_seq(unsigned worker)
{
    return P.enabled ? flusher_committed_seq(worker) : 0;
}

enum persist_admit
persist_admit_write(uint32_t *delay_ms)
{
    *delay_ms = 0;
    if (!P.enabled)
        return PERSIST_ADMIT_OK;
    if (engine_health_damaged()) {
        /* the file is damaged: a write acknowledged now could never be
         * persisted (engine_health.h) */
        atomic_fetch_add_explicit(&P.writes_refused_damaged, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&P.temporary_failures, 1, memory_order_relaxed);
        return PERSIST_ADMIT_REFUSE;
    }
    struct throttle_input in;
    flusher_throttle_input(&in);
    switch (throttle_decide(&in, delay_ms)) {
    case THROTTLE_ADMIT:
        return PERSIST_ADMIT_OK;
    case THROTTLE_REFUSE:
        atomic_fetch_add_explicit(&P.temporary_failures, 1, memory_order_relaxed);
        return PERSIST_ADMIT_REFUSE;
    case THROTTLE_DELAY:
        break;
    }
    persist_atomic_max(&P.throttle_ms_max, *delay_ms);
    atomic_fetch_add_explicit(&P.throttled_writes, 1, memory_order_relaxed);
    return PERSIST_ADMIT_DELAY;
}

bool
persist_fetch(unsigned worker, uint64_t conn_id, const char *key, uint8_t nkey,
              bool stream, bool optional)
{
    if (!P.enabled)
        return false;
    if (!fetcher_submit(worker, conn_id, key, nkey, stream)) {
        /* a prefetch refused is only not made: no reply says so */
        if (!optional)
            atomic_fetch_add(&P.temporary_failures, 1);
        return false;
    }
    return true;
}

bool
persist_completions(unsigned worker, persist_fetched_fn fetched, void *ctx)
{
    struct ring *r = &P.done[worker];
    void *e;
    bool commit = false;
    ring_consume_notify(r);
    for (;;) {
        while (ring_pop(r, &e)) {
            if (e == COMMIT_TAG) {
                commit = true;
                continue;
            }
            struct fetch_result *fr = e;
            fetched(ctx, fr);
            fr->item = NULL;   /* the callee's now */
            fetcher_result_free(fr);
        }
        if (ring_empty_fenced(r))
            break;
    }
    return commit;
}

void
persist_schedule_flush(rel_time_t when)
{
    if (!P.enabled)
        return;
    flusher_record_flush_at((int64_t)cache_rel_to_unix(when));
}

/* ---------------------------------------------------------------- stats */

static void
emit_u64(stats_emit_fn emit, void *ctx, const char *name, uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    emit(ctx, name, buf);
}

/* `stats engine`: the engine's own counters, as of the flusher's last
 * snapshot (only "engine none" when persistence is off). Any thread. */
static void
persist_engine_stats(stats_emit_fn emit, void *ctx)
{
    engine_stats_render(emit, ctx, P.engine.ops != NULL ? P.engine.ops->name
                                                        : "none");
}

/* `stats kvstore`. Any thread. */
static void
persist_stats(stats_emit_fn emit, void *ctx)
{
    static const char *const states[] = { "none", "running", "done" };
    struct flusher_counters f;
    struct fetcher_counters ft;
    struct warmup_counters w;
    flusher_counters(&f);
    fetcher_counters(&ft);
    warmup_counters(&w);
    emit(ctx, "engine", P.engine.ops != NULL ? P.engine.ops->name : "none");
    emit(ctx, "durability", P.enabled ? (P.sync ? "sync" : "async") : "none");
    emit_u64(emit, ctx, "dirty_soft_limit_bytes", f.soft_bytes);
    emit_u64(emit, ctx, "dirty_hard_limit_bytes", f.hard_bytes);
    emit_u64(emit, ctx, "dirty_items", f.dirty_items > 0 ? (uint64_t)f.dirty_items : 0);
    emit_u64(emit, ctx, "dirty_bytes", f.dirty_bytes > 0 ? (uint64_t)f.dirty_bytes : 0);
    emit_u64(emit, ctx, "queue_depth", f.queue_depth);
    emit_u64(emit, ctx, "items_persisted", f.items_persisted);
    emit_u64(emit, ctx, "items_superseded", f.items_superseded);
    emit_u64(emit, ctx, "deletes_persisted", f.deletes_persisted);
    emit_u64(emit, ctx, "flushes_persisted", f.flushes_persisted);
    emit_u64(emit, ctx, "commits", f.commits);
    emit_u64(emit, ctx, "commit_time_us_total", f.commit_us_total);
    emit_u64(emit, ctx, "commit_time_us_max", f.commit_us_max);
    emit_u64(emit, ctx, "batch_size_last", f.batch_last);
    emit_u64(emit, ctx, "batch_size_max", f.batch_max);
    emit_u64(emit, ctx, "batch_size_avg",
             f.commits ? f.batch_items_total / f.commits : 0);
    emit_u64(emit, ctx, "drain_rate_bytes_per_s", f.drain_bytes_per_s);
    emit_u64(emit, ctx, "drain_rate_items_per_s", f.drain_writes_per_s);
    emit_u64(emit, ctx, "bg_fetches", ft.fetches);
    emit_u64(emit, ctx, "bg_fetch_misses", ft.misses);
    emit_u64(emit, ctx, "bg_fetch_streamed", ft.streamed);
    emit_u64(emit, ctx, "bg_fetch_us_avg",
             ft.fetches ? ft.us_total / ft.fetches : 0);
    emit_u64(emit, ctx, "bg_fetch_us_max", ft.us_max);
    emit_u64(emit, ctx, "ejected_items", cache_ejected_items());
    struct cache_stats cs;
    cache_stats(&cs);
    emit_u64(emit, ctx, "known_absent_items", cs.tombstones);
    struct expiry_counters xc;
    expiry_counters(&xc);
    emit_u64(emit, ctx, "expired_rows_purged", xc.purged);
    emit_u64(emit, ctx, "expired_purge_hints_dropped", xc.dropped);
    emit_u64(emit, ctx, "disk_filter_ready", cs.filter_ready);
    emit_u64(emit, ctx, "disk_filter_keys", cs.filter_keys);
    emit_u64(emit, ctx, "disk_filter_bytes", cs.filter_bytes);
    emit_u64(emit, ctx, "disk_filter_misses", cs.filter_negatives);
    emit(ctx, "warmup_state", states[w.state]);
    emit_u64(emit, ctx, "warmup_items_loaded", w.loaded);
    emit_u64(emit, ctx, "warmup_items_skipped", w.skipped);
    emit_u64(emit, ctx, "warmup_elapsed_ms",
             w.state == WARMUP_DONE ? w.elapsed_ms : 0);
    emit_u64(emit, ctx, "warmup_truncated", w.truncated);
    emit_u64(emit, ctx, "cache_complete", cache_is_complete());
    emit_u64(emit, ctx, "throttled_writes", atomic_load(&P.throttled_writes));
    emit_u64(emit, ctx, "throttle_delay_ms_max", atomic_load(&P.throttle_ms_max));
    emit_u64(emit, ctx, "temporary_failures", atomic_load(&P.temporary_failures));
    emit_u64(emit, ctx, "engine_errors",
             f.engine_errors + ft.engine_errors + w.engine_errors);
    emit_u64(emit, ctx, "queue_overflows", f.queue_overflows);
    struct engine_health_counters h;
    engine_health_counters(&h);
    emit(ctx, "engine_state", h.damaged ? "damaged" : "ok");
    emit_u64(emit, ctx, "engine_corrupt", h.damaged);
    emit_u64(emit, ctx, "engine_corrupt_errors", h.corrupt_errors);
    emit_u64(emit, ctx, "engine_damaged_since",
             h.damaged_since > 0 ? (uint64_t)h.damaged_since : 0);
    emit_u64(emit, ctx, "writes_refused_damaged",
             atomic_load(&P.writes_refused_damaged));
}

/* The commit and background-fetch histograms, for `stats timings`. */
static void
persist_timings(stats_emit_fn emit, void *ctx)
{
    struct hist commit = { 0 }, fetch = { 0 };
    flusher_commit_hist(&commit);
    fetcher_hist(&fetch);
    stats_emit_hist(emit, ctx, "commit", &commit);
    stats_emit_hist(emit, ctx, "bg_fetch", &fetch);
}
