/*
 * persist_priv.h: what the persistence modules (persist.c, flusher.c,
 * fetcher.c, warmup.c) share and nothing else includes: the description of
 * the engine every one of their threads opens a handle on, and small
 * helpers. Each module keeps its own state static; this header holds no
 * state.
 */
#ifndef MCKV_SERVER_PERSIST_PRIV_H
#define MCKV_SERVER_PERSIST_PRIV_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "engines/kvstore.h"
#include "server/engine_health.h"
#include "util/log.h"

/* Set up by persist_setup() on the main thread and read-only afterwards. */
struct persist_engine {
    const struct kvstore_ops *ops;
    struct kvstore_options opts;   /* the writer's; readers derive theirs */
    const char *path;              /* the database, for messages */
};

static inline uint64_t
persist_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Raises *a to v unless it is larger already (any thread). */
static inline void
persist_atomic_max(_Atomic uint64_t *a, uint64_t v)
{
    uint64_t cur = atomic_load_explicit(a, memory_order_relaxed);
    while (cur < v && !atomic_compare_exchange_weak(a, &cur, v))
        ;
}

/* A read-only engine handle for reader `who` number `idx` (a fetcher, a
 * warmup thread); NULL once the reason is logged. The calling thread owns
 * the handle. */
static inline struct kvstore *
persist_reader_open(const struct persist_engine *e, const char *who,
                    unsigned idx)
{
    struct kvstore *kv = NULL;
    struct kvstore_options o = e->opts;
    o.read_only = true;
    o.cache_kb = 0;   /* the engine's default for readers */
    int rc = e->ops->open(&kv, &o);
    if (rc == 0)
        return kv;
    /* a failed open leaves kv NULL and its reason in last_error(NULL) */
    log_error("persistence: %s %u cannot open %s: %s", who, idx, e->path,
              e->ops->last_error(kv));
    engine_health_report(rc, who, e->ops->last_error(kv));
    return NULL;
}

#endif
