/*
 * stats.c: renders the `stats` groups for both protocols through an emit
 * callback. Counters come from three places: per-worker thread_stats
 * (summed by the workers module through stats_register_threads()),
 * process-wide atomics (global_stats) and the cache's shard totals
 * (cache_stats()). `stats reset` records a baseline that later sums
 * subtract, so counters stay single-writer. Groups of other modules
 * (conns, kvstore, engine, the persistence timings) are registered by
 * those modules: this file includes none of them.
 */
#include <config.h>

#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "server/cache.h"
#include "server/config.h"
#include "server/stats.h"
#include "util/hist.h"
#include "util/version.h"

#define STATS_GROUPS_MAX 16

struct global_stats global_stats;

const char *const cmd_class_names[CMD_CLASSES] = {
    "get", "set", "delete", "incr_decr", "touch", "other",
};

static const struct config *stats_cfg;
static pthread_mutex_t reset_lock = PTHREAD_MUTEX_INITIALIZER;
static struct thread_stats reset_base;  /* guarded by reset_lock */
static struct stats_threads threads;    /* set before the workers start */

/* Registered groups: written before the workers start, read-only after. */
static struct {
    const char *name;
    stats_group_fn fn;
} groups[STATS_GROUPS_MAX];
static unsigned ngroups;

void
stats_setup(const struct config *cfg)
{
    stats_cfg = cfg;
}

bool
stats_register_group(const char *group, stats_group_fn fn)
{
    if (ngroups == STATS_GROUPS_MAX)
        return false;
    groups[ngroups].name = group;
    groups[ngroups].fn = fn;
    ngroups++;
    return true;
}

void
stats_register_threads(const struct stats_threads *src)
{
    threads = *src;
}

static void
stats_sum_raw(struct thread_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (threads.sum != NULL)
        threads.sum(out);
}

void
stats_sum_threads(struct thread_stats *out)
{
    stats_sum_raw(out);
    pthread_mutex_lock(&reset_lock);
#define X(name) out->name -= reset_base.name;
    THREAD_STATS(X)
#undef X
    pthread_mutex_unlock(&reset_lock);
}

static void
emit_u64(stats_emit_fn emit, void *ctx, const char *name, uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
    emit(ctx, name, buf);
}

static void
emit_timeval(stats_emit_fn emit, void *ctx, const char *name, struct timeval tv)
{
    char buf[48];
    snprintf(buf, sizeof(buf), "%ld.%06ld", (long)tv.tv_sec, (long)tv.tv_usec);
    emit(ctx, name, buf);
}

static void
stats_general(stats_emit_fn emit, void *ctx)
{
    struct thread_stats ts;
    struct cache_stats cs;
    struct rusage ru;
    stats_sum_threads(&ts);
    cache_stats(&cs);
    getrusage(RUSAGE_SELF, &ru);
    rel_time_t now = cache_now();

    emit_u64(emit, ctx, "pid", (uint64_t)getpid());
    emit_u64(emit, ctx, "uptime", now);
    emit_u64(emit, ctx, "time", (uint64_t)cache_rel_to_unix(now));
    emit(ctx, "version", mckv_version);
    emit(ctx, "libevent", event_get_version());
    emit_u64(emit, ctx, "pointer_size", 8 * sizeof(void *));
    emit_timeval(emit, ctx, "rusage_user", ru.ru_utime);
    emit_timeval(emit, ctx, "rusage_system", ru.ru_stime);
    emit_u64(emit, ctx, "max_connections", stats_cfg->max_connections);
    emit_u64(emit, ctx, "curr_connections",
             atomic_load(&global_stats.curr_connections));
    emit_u64(emit, ctx, "total_connections",
             atomic_load(&global_stats.total_connections));
    emit_u64(emit, ctx, "rejected_connections",
             atomic_load(&global_stats.rejected_connections));
#define X(name) emit_u64(emit, ctx, #name, ts.name);
    THREAD_STATS(X)
#undef X
    emit_u64(emit, ctx, "limit_maxbytes", cs.limit_maxbytes);
    emit_u64(emit, ctx, "threads", threads.nthreads);
    emit_u64(emit, ctx, "hash_bytes", cs.hash_bytes);
    emit_u64(emit, ctx, "hash_buckets", cs.hash_buckets);
    emit_u64(emit, ctx, "hash_is_expanding", cs.hash_is_expanding);
    emit_u64(emit, ctx, "curr_items", cs.curr_items);
    emit_u64(emit, ctx, "total_items", cs.total_items);
    emit_u64(emit, ctx, "expired_unfetched", cs.expired_unfetched);
    emit_u64(emit, ctx, "evicted_unfetched", cs.evicted_unfetched);
    emit_u64(emit, ctx, "evictions", cs.evictions);
    emit_u64(emit, ctx, "reclaimed", cs.reclaimed);
    emit_u64(emit, ctx, "bytes", cs.bytes);
}

static void
settings_emit(void *ctx, const char *name, const char *value)
{
    void **pair = ctx;
    ((stats_emit_fn)pair[0])(pair[1], name, value);
}

static void
stats_settings(stats_emit_fn emit, void *ctx)
{
    void *pair[2] = { (void *)emit, ctx };
    config_each(stats_cfg, settings_emit, pair);
    /* memcached's names, for tools that read them */
    emit_u64(emit, ctx, "maxbytes", stats_cfg->memory_limit * 1024 * 1024);
    emit_u64(emit, ctx, "maxconns", stats_cfg->max_connections);
    emit_u64(emit, ctx, "tcpport", stats_cfg->port);
    emit_u64(emit, ctx, "udpport", stats_cfg->udp_port);
    emit_u64(emit, ctx, "num_threads", threads.nthreads);
    emit(ctx, "cas_enabled", stats_cfg->cas ? "yes" : "no");
    emit(ctx, "binding_protocol", "auto-negotiate");
}

static void
stats_items(stats_emit_fn emit, void *ctx, bool slabs)
{
    struct cache_stats cs;
    cache_stats(&cs);
    char name[64];
    unsigned active = 0;
    for (unsigned i = 0; i < CACHE_SIZE_CLASSES; i++) {
        if (cs.class_items[i] == 0)
            continue;
        active++;
        unsigned cls = i + 1;
        if (slabs) {
            snprintf(name, sizeof(name), "%u:chunk_size", cls);
            emit_u64(emit, ctx, name, (uint64_t)64 << i);
            snprintf(name, sizeof(name), "%u:used_chunks", cls);
            emit_u64(emit, ctx, name, cs.class_items[i]);
            snprintf(name, sizeof(name), "%u:mem_requested", cls);
            emit_u64(emit, ctx, name, cs.class_bytes[i]);
        } else {
            snprintf(name, sizeof(name), "items:%u:number", cls);
            emit_u64(emit, ctx, name, cs.class_items[i]);
            snprintf(name, sizeof(name), "items:%u:age", cls);
            emit_u64(emit, ctx, name, cs.class_oldest[i]);
            snprintf(name, sizeof(name), "items:%u:evicted", cls);
            emit_u64(emit, ctx, name, cs.class_evictions[i]);
            snprintf(name, sizeof(name), "items:%u:bytes", cls);
            emit_u64(emit, ctx, name, cs.class_bytes[i]);
        }
    }
    if (slabs) {
        emit_u64(emit, ctx, "active_slabs", active);
        emit_u64(emit, ctx, "total_malloced", cs.bytes + cs.hash_bytes);
    }
}

static void
stats_reset(void)
{
    struct thread_stats now;
    stats_sum_raw(&now);
    pthread_mutex_lock(&reset_lock);
    reset_base = now;
    pthread_mutex_unlock(&reset_lock);
    cache_stats_reset();
    atomic_store(&global_stats.total_connections, 0);
    atomic_store(&global_stats.rejected_connections, 0);
}

/* Emits count, p50, p99, p99.9 and max of a histogram as <prefix>_*. */
void
stats_emit_hist(stats_emit_fn emit, void *ctx, const char *prefix,
                const struct hist *h)
{
    char name[96];
    static const struct { const char *suffix; double q; } qs[] = {
        { "p50_us", 0.50 }, { "p99_us", 0.99 }, { "p999_us", 0.999 },
    };
    snprintf(name, sizeof(name), "%s_count", prefix);
    emit_u64(emit, ctx, name, hist_total(h));
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        snprintf(name, sizeof(name), "%s_%s", prefix, qs[i].suffix);
        emit_u64(emit, ctx, name, hist_quantile(h, qs[i].q));
    }
    snprintf(name, sizeof(name), "%s_max_us", prefix);
    emit_u64(emit, ctx, name, h->max_us);
}

static void
stats_timings(stats_emit_fn emit, void *ctx)
{
    for (unsigned k = 0; k < CMD_CLASSES; k++) {
        struct hist sum = { 0 };
        if (threads.timings != NULL)
            threads.timings((enum cmd_class)k, &sum);
        char prefix[32];
        snprintf(prefix, sizeof(prefix), "cmd_%s", cmd_class_names[k]);
        stats_emit_hist(emit, ctx, prefix, &sum);
    }
}

static bool
group_is(const char *group, size_t len, const char *name)
{
    return strlen(name) == len && memcmp(group, name, len) == 0;
}

bool
stats_group(const char *group, size_t len, stats_emit_fn emit, void *ctx)
{
    bool known = true;
    if (len == 0)
        stats_general(emit, ctx);
    else if (group_is(group, len, "settings"))
        stats_settings(emit, ctx);
    else if (group_is(group, len, "items"))
        stats_items(emit, ctx, false);
    else if (group_is(group, len, "slabs"))
        stats_items(emit, ctx, true);
    else if (group_is(group, len, "timings"))
        stats_timings(emit, ctx);
    else if (group_is(group, len, "reset"))
        stats_reset();
    else
        known = false;
    for (unsigned i = 0; i < ngroups; i++) {
        if (group_is(group, len, groups[i].name)) {
            groups[i].fn(emit, ctx);
            known = true;
        }
    }
    return known;
}
