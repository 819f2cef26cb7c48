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
#include "server/stats_prefix.h"
#include "util/hist.h"
#include "util/log.h"
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
    /* memcached's names in memcached's order (a client that reads the
     * lines in turn, or diffs them, sees the same), then mckv's own */
#define X(name) emit_u64(emit, ctx, #name, ts.name);
    THREAD_STATS_MC(X)
    emit_u64(emit, ctx, "limit_maxbytes", cs.limit_maxbytes);
    emit_u64(emit, ctx, "accepting_conns",
             !atomic_load_explicit(&global_stats.accept_paused,
                                   memory_order_relaxed));
    emit_u64(emit, ctx, "threads", threads.nthreads);
    X(conn_yields)
    emit_u64(emit, ctx, "hash_bytes", cs.hash_bytes);
    emit_u64(emit, ctx, "hash_is_expanding", cs.hash_is_expanding);
    emit_u64(emit, ctx, "bytes", cs.bytes);
    emit_u64(emit, ctx, "curr_items", cs.curr_items);
    emit_u64(emit, ctx, "total_items", cs.total_items);
    emit_u64(emit, ctx, "expired_unfetched", cs.expired_unfetched);
    emit_u64(emit, ctx, "evicted_unfetched", cs.evicted_unfetched);
    emit_u64(emit, ctx, "evictions", cs.evictions);
    emit_u64(emit, ctx, "reclaimed", cs.reclaimed);
    emit_u64(emit, ctx, "hash_buckets", cs.hash_buckets);
    THREAD_STATS_OWN(X)
#undef X
    /* mckv's: log lines a rate limit left out (util/log.h) */
    emit_u64(emit, ctx, "log_suppressed", log_suppressed_total());
}

/*
 * `stats settings`: memcached 1.6.18's names first, in its order and with
 * its formats (process_stat_settings() in memcached.c), then mckv's own
 * keys that memcached has no name for. A key named as memcached names the
 * setting (item_size_max, verbosity, reqs_per_event, idle_timeout,
 * flush_enabled, dump_enabled, evictions, hashpower_init) is printed once,
 * in memcached's place and format (evictions: on/off, which a config file
 * accepts too). A setting with no meaning in mckv (slabs, LRU tuning,
 * crawler, logger) reports memcached's default. The ext_* lines of an
 * extstore build are left out, as a memcached built without extstore
 * leaves them out: mckv has none.
 */
struct settings_out {
    stats_emit_fn emit;
    void *ctx;
    const char *seen[96];    /* memcached's names printed so far */
    unsigned nseen;
};

static void
mc_str(struct settings_out *so, const char *name, const char *value)
{
    if (so->nseen < sizeof(so->seen) / sizeof(so->seen[0]))
        so->seen[so->nseen++] = name;
    so->emit(so->ctx, name, value);
}

static void
mc_u64(struct settings_out *so, const char *name, uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
    mc_str(so, name, buf);
}

static void
mc_bool(struct settings_out *so, const char *name, bool v)
{
    mc_str(so, name, v ? "yes" : "no");
}

/* memcached's defaults for what mckv does not have, as memcached prints
 * them ("(null)" is glibc's %s of a NULL pointer). */
static const char *const mc_defaults_slabs[][2] = {
    { "slab_reassign", "yes" }, { "slab_automove", "1" },
    { "slab_automove_ratio", "0.80" }, { "slab_automove_window", "30" },
    { "slab_chunk_max", "524288" }, { "lru_crawler", "yes" },
    { "lru_crawler_sleep", "100" }, { "lru_crawler_tocrawl", "0" },
    { "tail_repair_time", "0" },
};
static const char *const mc_defaults_lru[][2] = {
    { "lru_maintainer_thread", "yes" }, { "lru_segmented", "yes" },
    { "hot_lru_pct", "20" }, { "warm_lru_pct", "40" },
    { "hot_max_factor", "0.20" }, { "warm_max_factor", "2.00" },
    { "temp_lru", "no" }, { "temporary_ttl", "61" },
};
static const char *const mc_defaults_tail[][2] = {
    { "watcher_logbuf_size", "262144" }, { "worker_logbuf_size", "65536" },
    { "read_buf_mem_limit", "0" }, { "track_sizes", "no" },
    { "inline_ascii_response", "no" },
};
#ifndef HAVE_TLS
static const char *const mc_defaults_ssl[][2] = {
    { "ssl_enabled", "no" }, { "ssl_chain_cert", "(null)" },
    { "ssl_key", "(null)" }, { "ssl_verify_mode", "0" },
    { "ssl_keyformat", "1" }, { "ssl_ciphers", "NULL" },
    { "ssl_ca_cert", "NULL" }, { "ssl_wbuf_size", "16384" },
    { "ssl_session_cache", "no" }, { "ssl_kernel_tls", "no" },
    { "ssl_min_version", "tlsv1.2" },
};
#endif
static const char *const mc_defaults_end[][2] = {
    { "num_napi_ids", "(null)" }, { "memory_file", "(null)" },
};

#define MC_DEFAULTS(so, table) \
    for (size_t i_ = 0; i_ < sizeof(table) / sizeof(table[0]); i_++) \
        mc_str(so, table[i_][0], table[i_][1])

#ifdef HAVE_TLS
/* The TLS keys under memcached's names and in its formats: an unset path
 * is "(null)" or "NULL" as memcached prints each. */
static void
settings_tls(struct settings_out *so, const struct config *c)
{
    static const char *const versions[] = {
        "tlsv1.0", "tlsv1.1", "tlsv1.2", "tlsv1.3",
    };
    mc_bool(so, "ssl_enabled", c->ssl_enabled);
    mc_str(so, "ssl_chain_cert",
           c->ssl_chain_cert[0] != '\0' ? c->ssl_chain_cert : "(null)");
    mc_str(so, "ssl_key", c->ssl_key[0] != '\0' ? c->ssl_key : "(null)");
    mc_u64(so, "ssl_verify_mode", c->ssl_verify_mode);
    mc_u64(so, "ssl_keyformat", c->ssl_keyformat);
    mc_str(so, "ssl_ciphers", c->ssl_ciphers[0] != '\0' ? c->ssl_ciphers : "NULL");
    mc_str(so, "ssl_ca_cert", c->ssl_ca_cert[0] != '\0' ? c->ssl_ca_cert : "NULL");
    mc_u64(so, "ssl_wbuf_size", c->ssl_wbuf_size);
    mc_bool(so, "ssl_session_cache", c->ssl_session_cache);
    mc_str(so, "ssl_kernel_tls", "no");
    mc_str(so, "ssl_min_version", versions[c->ssl_min_version & 3]);
}
#endif

static void
settings_mckv_key(void *ctx, const char *name, const char *value)
{
    struct settings_out *so = ctx;
    for (unsigned i = 0; i < so->nseen; i++)
        if (strcmp(so->seen[i], name) == 0)
            return;   /* printed under memcached's name already */
    so->emit(so->ctx, name, value);
}

static void
stats_settings(stats_emit_fn emit, void *ctx)
{
    const struct config *c = stats_cfg;
    struct settings_out so = { .emit = emit, .ctx = ctx };
    char buf[32];
    /* the limit in force: cache_memlimit changes it, as in memcached,
     * and so does a reload */
    struct cache_stats cs;
    cache_stats(&cs);
    /* the level in force: the verbosity command changes it, as in
     * memcached, and so does a reload */
    int verbosity = atomic_load_explicit(&log_verbosity, memory_order_relaxed);

    mc_u64(&so, "maxbytes", cs.limit_maxbytes);
    mc_u64(&so, "maxconns", c->max_connections);
    mc_u64(&so, "tcpport", c->port);
    mc_u64(&so, "udpport", c->udp_port);
    mc_str(&so, "inter", c->listen[0] != '\0' ? c->listen : "NULL");
    mc_u64(&so, "verbosity", verbosity > 0 ? (uint64_t)verbosity : 0);
    /* memcached's flush_all horizon; mckv's cache keeps it to itself */
    mc_str(&so, "oldest", "0");
    mc_str(&so, "evictions", c->evictions ? "on" : "off");
    mc_str(&so, "domain_socket",
           c->unix_socket[0] != '\0' ? c->unix_socket : "NULL");
    snprintf(buf, sizeof(buf), "%llo", (unsigned long long)c->unix_mask);
    mc_str(&so, "umask", buf);
    mc_bool(&so, "shutdown_command", c->shutdown_enabled);
    mc_str(&so, "growth_factor", "1.25");   /* no slabs: the default */
    mc_str(&so, "chunk_size", "48");
    mc_u64(&so, "num_threads", threads.nthreads);
    mc_u64(&so, "num_threads_per_udp", threads.nthreads);
    mc_str(&so, "stat_key_prefix", ":");
    mc_bool(&so, "detail_enabled", stats_prefix_enabled());
    mc_u64(&so, "reqs_per_event", c->reqs_per_event);
    mc_bool(&so, "cas_enabled", c->cas);
    mc_u64(&so, "tcp_backlog", c->backlog);
    const char *proto = config_protocol(c);
    mc_str(&so, "binding_protocol",
           strcmp(proto, "ascii") == 0 ? "ascii" :
           strcmp(proto, "binary") == 0 ? "binary" : "auto-negotiate");
    mc_bool(&so, "auth_enabled_sasl", c->sasl);
    mc_str(&so, "auth_enabled_ascii",
           c->auth_file[0] != '\0' ? c->auth_file : "no");
    mc_u64(&so, "item_size_max", c->item_size_max);
    mc_str(&so, "maxconns_fast", "yes");    /* what the listener does */
    mc_u64(&so, "hashpower_init", c->hashpower_init);
    MC_DEFAULTS(&so, mc_defaults_slabs);
    mc_bool(&so, "flush_enabled", c->flush_enabled);
    mc_bool(&so, "dump_enabled", c->dump_enabled);
    mc_str(&so, "hash_algorithm", "murmur3");
    MC_DEFAULTS(&so, mc_defaults_lru);
    mc_u64(&so, "idle_timeout", c->idle_timeout);
    MC_DEFAULTS(&so, mc_defaults_tail);
#ifdef HAVE_TLS
    settings_tls(&so, c);
#else
    MC_DEFAULTS(&so, mc_defaults_ssl);
#endif
    MC_DEFAULTS(&so, mc_defaults_end);
    config_each(c, settings_mckv_key, &so);
}

/* memcached's slab page, the unit of its total_pages */
#define SLAB_PAGE_SIZE ((uint64_t)1 << 20)

static void
emit_class(stats_emit_fn emit, void *ctx, const char *fmt, unsigned cls,
           uint64_t v)
{
    char name[64];
    snprintf(name, sizeof(name), fmt, cls);
    emit_u64(emit, ctx, name, v);
}

/*
 * `stats items` and `stats slabs`: per size class (class id = size class
 * + 1, as lru_crawler metadump's cls= and stats cachedump's class), under
 * memcached 1.6.18's names and in its order, those that mean something
 * here. Every item is a malloc block of its own, so a class has no free
 * chunks (total_chunks = used_chunks); total_pages is what memcached's
 * 1 MB pages would hold them at this chunk size, so that memcached-tool's
 * display, which skips classes without pages, shows every class in use.
 */
static void
stats_items(stats_emit_fn emit, void *ctx, bool slabs)
{
    struct cache_stats cs;
    cache_stats(&cs);
    unsigned active = 0;
    for (unsigned i = 0; i < CACHE_SIZE_CLASSES; i++) {
        if (cs.class_items[i] == 0)
            continue;
        active++;
        unsigned cls = i + 1;
        uint64_t chunk = (uint64_t)64 << i, used = cs.class_items[i];
        if (slabs) {
            uint64_t per_page = chunk < SLAB_PAGE_SIZE ? SLAB_PAGE_SIZE / chunk : 1;
            emit_class(emit, ctx, "%u:chunk_size", cls, chunk);
            emit_class(emit, ctx, "%u:chunks_per_page", cls, per_page);
            emit_class(emit, ctx, "%u:total_pages", cls,
                       (used + per_page - 1) / per_page);
            emit_class(emit, ctx, "%u:total_chunks", cls, used);
            emit_class(emit, ctx, "%u:used_chunks", cls, used);
            emit_class(emit, ctx, "%u:free_chunks", cls, 0);
            emit_class(emit, ctx, "%u:free_chunks_end", cls, 0);
        } else {
            emit_class(emit, ctx, "items:%u:number", cls, used);
            emit_class(emit, ctx, "items:%u:age", cls, cs.class_oldest[i]);
            emit_class(emit, ctx, "items:%u:mem_requested", cls,
                       cs.class_bytes[i]);
            emit_class(emit, ctx, "items:%u:evicted", cls,
                       cs.class_evictions[i]);
            emit_class(emit, ctx, "items:%u:evicted_time", cls,
                       cs.class_evicted_time[i]);
            emit_class(emit, ctx, "items:%u:outofmemory", cls, cs.class_oom[i]);
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
    /* `stats` alone: group is NULL, which memcmp may not be given */
    return strlen(name) == len && (len == 0 || memcmp(group, name, len) == 0);
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
    else if (group_is(group, len, "sizes"))
        /* memcached's 32-byte histogram of item sizes exists only with
         * -o track_sizes, which mckvd takes and ignores (settings say
         * track_sizes no); without it this is memcached's answer, and
         * memcached-tool `sizes` waits for an END, never an ERROR */
        emit(ctx, "sizes_status", "disabled");
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
