/*
 * stats.h: server counters and the `stats` groups.
 *
 * Per-worker counters (struct thread_stats) are written only by their worker
 * and read by whichever worker answers a `stats` request, with relaxed
 * atomic loads and stores: no lock prefix on the hot path, and no data race.
 * Every counter is declared once in THREAD_STATS so the struct, the sum and
 * the stats output come from the same list (documented in docs/stats.md).
 */
#ifndef MCKV_SERVER_STATS_H
#define MCKV_SERVER_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* memcached 1.6.18's run of them in `stats`, in its order (misses before
 * hits); conn_yields comes later there, after threads; the mckv-only ones
 * go at the end. */
#define THREAD_STATS_MC(X) \
    X(cmd_get) X(cmd_set) X(cmd_flush) X(cmd_touch) X(cmd_meta) \
    X(get_hits) X(get_misses) X(get_expired) X(get_flushed) \
    X(delete_misses) X(delete_hits) \
    X(incr_misses) X(incr_hits) X(decr_misses) X(decr_hits) \
    X(cas_misses) X(cas_hits) X(cas_badval) \
    X(touch_hits) X(touch_misses) \
    X(store_too_large) X(store_no_memory) \
    X(auth_cmds) X(auth_errors) \
    X(bytes_read) X(bytes_written)
#define THREAD_STATS_OWN(X) X(protocol_errors) X(idle_kicks)
#define THREAD_STATS(X) THREAD_STATS_MC(X) X(conn_yields) THREAD_STATS_OWN(X)

struct thread_stats {
#define X(name) uint64_t name;
    THREAD_STATS(X)
#undef X
};

/* Owner thread only: adds to one of its own counters. */
#define STAT_ADD(ts, field, n) \
    __atomic_store_n(&(ts)->field, \
        __atomic_load_n(&(ts)->field, __ATOMIC_RELAXED) + (uint64_t)(n), \
        __ATOMIC_RELAXED)
#define STAT_INCR(ts, field) STAT_ADD(ts, field, 1)
/* Counts `yes` when cond holds, else `no`. */
#define STAT_PICK(ts, cond, yes, no) \
    do { if (cond) STAT_INCR(ts, yes); else STAT_INCR(ts, no); } while (0)
/* incr/decr hit or miss. */
#define STAT_DELTA(ts, incr, hit) \
    do { if (incr) STAT_PICK(ts, hit, incr_hits, incr_misses); \
         else STAT_PICK(ts, hit, decr_hits, decr_misses); } while (0)

/* What `stats timings` groups commands by. */
enum cmd_class {
    CMD_CLASS_GET, CMD_CLASS_SET, CMD_CLASS_DELETE, CMD_CLASS_DELTA,
    CMD_CLASS_TOUCH, CMD_CLASS_OTHER, CMD_CLASSES
};
extern const char *const cmd_class_names[CMD_CLASSES];

/* Process-wide counters (listener and workers). */
struct global_stats {
    atomic_uint_fast64_t curr_connections;
    atomic_uint_fast64_t total_connections;
    atomic_uint_fast64_t rejected_connections;
    atomic_bool accept_paused;   /* the listener: out of fds, for a second */
};
extern struct global_stats global_stats;

/* Emits one stat. Used for both protocols: text writes "STAT k v\r\n",
 * binary writes one STAT packet. */
typedef void (*stats_emit_fn)(void *ctx, const char *name, const char *value);

struct config;
/* Main thread before workers start: remembers the config for `stats
 * settings` and the start time. */
void stats_setup(const struct config *cfg);

/*
 * Runs a `stats` group ("" = general, "settings", "items", "slabs",
 * "sizes", "conns"; "reset" zeroes counters and emits nothing). Returns
 * false for an unknown group (nothing emitted). Any worker thread.
 */
bool stats_group(const char *group, size_t len, stats_emit_fn emit, void *ctx);

struct hist;
/* Emits <prefix>_count, _p50_us, _p99_us, _p999_us and _max_us. */
void stats_emit_hist(stats_emit_fn emit, void *ctx, const char *prefix,
                     const struct hist *h);

/* Sums every worker's counters into *out (any thread). */
void stats_sum_threads(struct thread_stats *out);

/*
 * Modules bring their own groups, so that stats depends on none of them.
 * Registration: main thread, before the workers start (every reader runs
 * later, on a worker). fn renders `stats <group>`, or adds to it: a group
 * may have several functions, run in the order they were registered after
 * the group's built-in lines ("timings" has the commands' histograms
 * built in). False when the table is full.
 */
typedef void (*stats_group_fn)(stats_emit_fn emit, void *ctx);
bool stats_register_group(const char *group, stats_group_fn fn);

/* Where stats reads the worker threads' counters and timings. */
struct stats_threads {
    unsigned nthreads;
    /* Any thread: adds every thread's counters into *out (relaxed). */
    void (*sum)(struct thread_stats *out);
    /* Any thread: merges every thread's histogram of class k into *out. */
    void (*timings)(enum cmd_class k, struct hist *out);
};
/* Main thread, before the workers start. */
void stats_register_threads(const struct stats_threads *threads);

#endif
