/*
 * fetcher.c: background fetches (contract in fetcher.h).
 *
 * Each fetch is one heap task that carries its result: the task is
 * submitted to the pool without a lock (util/hotpool.h), run once by some
 * fetcher and then handed over, as its fetch_result, to the done callback.
 * The value read is installed in the cache and also handed back
 * (referenced): under memory pressure other fetches may eject it again
 * before the worker runs the request that waits for it. A fetch for
 * streaming (fetcher.h) is installed only when it fits without evicting;
 * else it is only handed back, allocated outside the cache's LRU.
 */
#include <config.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engines/kvstore.h"
#include "server/cache.h"
#include "server/engine_health.h"
#include "server/expiry.h"
#include "server/fetcher.h"
#include "server/persist_priv.h"
#include "util/hist.h"
#include "util/hotpool.h"
#include "util/log.h"
#include "util/status.h"

struct fetch_task {
    struct hotpool_task task;
    struct fetch_result r;
};

struct fetcher {
    struct kvstore *kv;
};

static struct {
    const struct persist_engine *engine;
    void (*done)(void *ctx, struct fetch_result *r);
    void *ctx;
    struct hotpool *pool;
    _Atomic uint64_t fetches, misses, streamed, us_total, us_max,
        engine_errors;
    struct hist hist;                /* under hist_lock */
    pthread_mutex_t hist_lock;
} FT = { .hist_lock = PTHREAD_MUTEX_INITIALIZER };

/* fetcher thread, at its start */
static void *
fetcher_init(unsigned idx, void *arg)
{
    (void)arg;
    struct fetcher *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->kv = persist_reader_open(FT.engine, "fetcher", idx);
    if (f->kv == NULL) {
        free(f);
        return NULL;
    }
    return f;
}

/* fetcher thread, at its end */
static void
fetcher_fini(void *ctx)
{
    struct fetcher *f = ctx;
    if (f == NULL)
        return;
    FT.engine->ops->close(f->kv);
    free(f);
}

struct fetch_alloc {
    struct item *it;
    bool stream;
    bool outside;             /* it came from cache_item_alloc_outside */
};

static char *
fetch_alloc_cb(void *ctx, const struct kvstore_record *rec)
{
    struct fetch_alloc *fa = ctx;
    bool too_large = false;
    rel_time_t exptime = cache_realtime(rec->exptime);
    if (!fa->stream) {
        fa->it = cache_item_alloc(rec->key, rec->nkey, rec->flags, exptime,
                                  rec->vlen, &too_large);
    } else {
        /* Resident only where it fits without evicting: a multiget of
         * more than memory would otherwise evict every value the cache
         * holds for values that are themselves evicted by the next ones
         * (and, while the replies pin them, fail to allocate at all). */
        fa->it = cache_item_alloc_noevict(rec->key, rec->nkey, rec->flags,
                                          exptime, rec->vlen);
        if (fa->it == NULL) {
            fa->it = cache_item_alloc_outside(rec->key, rec->nkey,
                                              rec->flags, exptime, rec->vlen);
            fa->outside = fa->it != NULL;
        }
    }
    return fa->it != NULL ? item_value(fa->it) : NULL;
}

/* A value read for streaming that is not linked: handed back as it is,
 * unless its time ran out on disk (then a miss, as cache_install says). */
static void
fetch_outside(struct fetch_result *r, struct item *it)
{
    if (cache_item_is_expired(it)) {
        cache_item_release(it);
        cache_install_absent(r->key, r->nkey);
        return;
    }
    r->item = it;
}

/* fetcher thread */
static void
fetch_run(struct hotpool_task *t, void *thread_ctx)
{
    struct fetch_task *ft = (struct fetch_task *)t;
    struct fetch_result *r = &ft->r;
    struct fetcher *f = thread_ctx;
    const struct kvstore_ops *ops = FT.engine->ops;
    uint64_t t0 = persist_now_us();
    struct fetch_alloc fa = { .stream = r->stream };
    struct kvstore_record rec;
    int rc = ops->get(f->kv, r->key, r->nkey, fetch_alloc_cb, &fa, &rec);
    r->item = NULL;
    r->failed = false;
    if (rc == MCKV_OK && fa.it != NULL && fa.outside) {
        fa.it->cas = rec.cas;
        fetch_outside(r, fa.it);
    } else if (rc == MCKV_OK && fa.it != NULL) {
        fa.it->cas = rec.cas;
        /* Not when something newer is in memory. */
        enum cache_result cr = cache_install(fa.it);
        if (cr == CACHE_STORED) {
            r->item = fa.it;
        } else {
            cache_item_release(fa.it);
            /* expired on disk: a miss for every command, not a fetch
             * again; the flusher deletes the row (expiry.h) */
            if (cr == CACHE_NOT_FOUND) {
                cache_install_absent(r->key, r->nkey);
                expiry_hint(r->key, r->nkey, rec.cas);
            }
        }
    } else if (rc == MCKV_ENOTFOUND) {
        cache_install_absent(r->key, r->nkey);
        atomic_fetch_add(&FT.misses, 1);
    } else {
        if (fa.it != NULL)
            cache_item_release(fa.it);
        atomic_fetch_add(&FT.engine_errors, 1);
        engine_health_report(rc, "fetcher", ops->last_error(f->kv));
        r->failed = true;
        log_error_limited("persistence: background fetch of %.*s failed: %s (%s)",
                          (int)r->nkey, r->key, mckv_strerror(rc),
                          rc == MCKV_ENOMEM ? "no memory for the value"
                                            : ops->last_error(f->kv));
    }
    uint64_t dt = persist_now_us() - t0;
    atomic_fetch_add(&FT.fetches, 1);
    if (fa.outside)
        atomic_fetch_add(&FT.streamed, 1);
    atomic_fetch_add(&FT.us_total, dt);
    persist_atomic_max(&FT.us_max, dt);
    pthread_mutex_lock(&FT.hist_lock);
    hist_record(&FT.hist, dt);
    pthread_mutex_unlock(&FT.hist_lock);
    FT.done(FT.ctx, r);   /* the task is not touched after this */
}

bool
fetcher_submit(unsigned worker, uint64_t conn_id, const char *key, uint8_t nkey,
               bool stream)
{
    struct fetch_task *ft = malloc(sizeof(*ft));
    if (ft == NULL)
        return false;
    ft->task.run = fetch_run;
    ft->r.worker = worker;
    ft->r.conn_id = conn_id;
    ft->r.item = NULL;
    ft->r.failed = false;
    ft->r.stream = stream;
    ft->r.nkey = nkey;
    memcpy(ft->r.key, key, nkey);
    if (hotpool_submit(FT.pool, &ft->task) != 0) {
        free(ft);
        return false;
    }
    return true;
}

void
fetcher_result_free(struct fetch_result *r)
{
    if (r == NULL)
        return;
    if (r->item != NULL)
        cache_item_release(r->item);
    free((char *)r - offsetof(struct fetch_task, r));
}

int
fetcher_setup(const struct fetcher_options *o)
{
    FT.engine = o->engine;
    FT.done = o->done;
    FT.ctx = o->ctx;
    FT.pool = hotpool_create(o->nfetchers, o->backlog, fetcher_init,
                             fetcher_fini, NULL);
    return FT.pool != NULL ? 0 : -1;
}

void
fetcher_stop(void)
{
    if (FT.pool != NULL)
        hotpool_destroy(&FT.pool);
}

void
fetcher_counters(struct fetcher_counters *out)
{
    *out = (struct fetcher_counters){
        .fetches = atomic_load(&FT.fetches),
        .misses = atomic_load(&FT.misses),
        .streamed = atomic_load(&FT.streamed),
        .us_total = atomic_load(&FT.us_total),
        .us_max = atomic_load(&FT.us_max),
        .engine_errors = atomic_load(&FT.engine_errors),
    };
}

void
fetcher_hist(struct hist *out)
{
    pthread_mutex_lock(&FT.hist_lock);
    hist_merge(out, &FT.hist);
    pthread_mutex_unlock(&FT.hist_lock);
}
