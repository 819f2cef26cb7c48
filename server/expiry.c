/*
 * expiry.c: hints of expired rows for the flusher (contract in expiry.h).
 *
 * A mutex-protected array: hints come from background threads (fetchers,
 * warmup) at the rate of disk reads, never from a worker's request path,
 * so a lock costs nothing that matters and keeps it simple.
 */
#include <config.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engines/kvstore.h"
#include "server/cache.h"
#include "server/expiry.h"
#include "util/status.h"

static struct {
    pthread_mutex_t lock;
    struct expiry_hint hints[EXPIRY_HINTS_MAX];
    size_t n;
    atomic_size_t pending;
    _Atomic uint64_t added, dropped, purged;
} X = { .lock = PTHREAD_MUTEX_INITIALIZER };

bool
expiry_hint(const char *key, uint8_t nkey, uint64_t cas)
{
    if (nkey == 0 || nkey > PROTO_KEY_MAX)
        return true;   /* not a key a client could have stored: ignore */
    bool queued = false;
    pthread_mutex_lock(&X.lock);
    if (X.n < EXPIRY_HINTS_MAX) {
        struct expiry_hint *h = &X.hints[X.n++];
        h->cas = cas;
        h->nkey = nkey;
        memcpy(h->key, key, nkey);
        atomic_store_explicit(&X.pending, X.n, memory_order_relaxed);
        queued = true;
    }
    pthread_mutex_unlock(&X.lock);
    atomic_fetch_add(queued ? &X.added : &X.dropped, 1);
    return queued;
}

bool
expiry_pending(void)
{
    return atomic_load_explicit(&X.pending, memory_order_relaxed) > 0;
}

size_t
expiry_take(struct expiry_hint *out, size_t max)
{
    pthread_mutex_lock(&X.lock);
    size_t n = X.n < max ? X.n : max;
    /* from the end: order does not matter, and nothing has to move */
    memcpy(out, &X.hints[X.n - n], n * sizeof(*out));
    X.n -= n;
    atomic_store_explicit(&X.pending, X.n, memory_order_relaxed);
    pthread_mutex_unlock(&X.lock);
    return n;
}

struct purge_buf {
    char *p;
    size_t cap;
};

/* get()'s value space for a purge check: one buffer, reused */
static char *
purge_alloc(void *ctx, const struct kvstore_record *rec)
{
    struct purge_buf *b = ctx;
    if (rec->vlen + 1 > b->cap) {
        char *p = realloc(b->p, rec->vlen + 1);
        if (p == NULL)
            return NULL;
        b->p = p;
        b->cap = rec->vlen + 1;
    }
    return b->p;
}

int
expiry_purge(const struct kvstore_ops *ops, struct kvstore *kv, size_t max,
             uint64_t *purged)
{
    /* the flusher's alone: one thread, so static buffers */
    static struct expiry_hint hints[EXPIRY_PURGE_MAX];
    static struct purge_buf buf;
    size_t n = expiry_take(hints, max < EXPIRY_PURGE_MAX ? max : EXPIRY_PURGE_MAX);
    int64_t now = (int64_t)time(NULL);
    int rc = MCKV_OK;
    for (size_t i = 0; i < n && rc == MCKV_OK; i++) {
        const struct expiry_hint *h = &hints[i];
        if (cache_key_present(h->key, h->nkey))
            continue;   /* a version in memory: its own write decides */
        struct kvstore_record rec;
        if (ops->get(kv, h->key, h->nkey, purge_alloc, &buf, &rec) != MCKV_OK)
            continue;   /* a hint: the next read of the row leaves another */
        if (rec.cas != h->cas || rec.exptime == 0 || rec.exptime > now)
            continue;   /* rewritten since */
        rc = ops->del(kv, h->key, h->nkey);
        if (rc == MCKV_OK)
            (*purged)++;
    }
    return rc;
}

void
expiry_count_purged(uint64_t n)
{
    atomic_fetch_add(&X.purged, n);
}

void
expiry_counters(struct expiry_counters *out)
{
    out->hints = atomic_load(&X.added);
    out->dropped = atomic_load(&X.dropped);
    out->purged = atomic_load(&X.purged);
}

void
expiry_reset(void)
{
    pthread_mutex_lock(&X.lock);
    X.n = 0;
    atomic_store(&X.pending, 0);
    pthread_mutex_unlock(&X.lock);
    atomic_store(&X.added, 0);
    atomic_store(&X.dropped, 0);
    atomic_store(&X.purged, 0);
}
