/*
 * flusher_batch.c: the flusher's batch, one put per key (contract in
 * flusher_batch.h).
 *
 * Why a map and not only the write-time check. flusher.c writes a put only
 * while its item is the linked version, so a batch never wrote an old
 * value; but every overwritten version stayed referenced (its memory, its
 * dirty bytes) until the commit after the flusher reached it, and the
 * batch, capped in records, filled with versions that would be skipped.
 * With 100k keys and a write-heavy load most records of a long batch are
 * such versions. The map makes the batch's size the number of distinct
 * keys, so a flusher that falls behind writes larger batches that cost
 * less per set, and frees superseded values as soon as it pops them.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "server/cache.h"
#include "server/flusher_batch.h"
#include "util/ring.h"

int
fbatch_init(struct fbatch *b, size_t cap, unsigned nworkers)
{
    memset(b, 0, sizeof(*b));
    size_t nslots = 4;
    while (nslots < 2 * cap)
        nslots <<= 1;
    b->recs = malloc(cap * sizeof(*b->recs));
    b->slots = calloc(nslots, sizeof(*b->slots));
    b->drained = calloc(nworkers, sizeof(*b->drained));
    if (b->recs == NULL || b->slots == NULL || b->drained == NULL) {
        fbatch_deinit(b);
        return -1;
    }
    b->cap = cap;
    b->mask = (uint32_t)(nslots - 1);
    b->nworkers = nworkers;
    return 0;
}

void
fbatch_deinit(struct fbatch *b)
{
    free(b->recs);
    free(b->slots);
    free(b->drained);
    memset(b, 0, sizeof(*b));
}

void
fbatch_reset(struct fbatch *b, void (*drop)(void *rec))
{
    /* Clearing the used slots only: a batch of a few records must not pay
     * for a map sized for the largest one. */
    if (b->n * 8 < (size_t)b->mask + 1) {
        for (size_t i = 0; i < b->n; i++) {
            if ((uintptr_t)b->recs[i] & 1u)
                continue;
            const struct item *it = b->recs[i];
            uint32_t s = it->hv & b->mask;
            /* its slot is on the probe run from its hash; slots cleared
             * before may have emptied the run's start, so look for the
             * index itself rather than stop at an empty slot */
            while (b->slots[s] != i + 1)
                s = (s + 1) & b->mask;
            b->slots[s] = 0;
        }
    } else {
        memset(b->slots, 0, ((size_t)b->mask + 1) * sizeof(*b->slots));
    }
    /* only now: the map was cleared through the items' hashes */
    for (size_t i = 0; drop != NULL && i < b->n; i++)
        drop(b->recs[i]);
    b->n = 0;
    b->superseded = b->superseded_bytes = 0;
}

static bool
same_key(const struct item *a, const struct item *b)
{
    return a->hv == b->hv && a->nkey == b->nkey &&
           memcmp(item_key(a), item_key(b), a->nkey) == 0;
}

/* fbatch_add_put(), but a put of a key the batch does not hold yet is not
 * taken when the batch is full: returns false. */
static bool
try_add_put(struct fbatch *b, struct item *it, struct item **drop)
{
    *drop = NULL;
    uint32_t s = it->hv & b->mask;
    for (; b->slots[s] != 0; s = (s + 1) & b->mask) {
        struct item *old = b->recs[b->slots[s] - 1];
        if (old == it) {
            *drop = it;   /* queued again (touch): one record is enough */
            return true;
        }
        if (!same_key(old, it))
            continue;
        /* Two versions of one key: at most one is linked. Keep the linked
         * one; when neither is, either will be skipped at write time. */
        if (!cache_item_is_current(it)) {
            *drop = it;
            return true;
        }
        b->recs[b->slots[s] - 1] = it;
        *drop = old;
        return true;
    }
    if (fbatch_full(b))
        return false;
    b->slots[s] = (uint32_t)(b->n + 1);
    b->recs[b->n++] = it;
    return true;
}

struct item *
fbatch_add_put(struct fbatch *b, struct item *it)
{
    struct item *drop;
    bool taken = try_add_put(b, it, &drop);
    (void)taken;   /* callers check fbatch_full() first */
    return drop;
}

void
fbatch_add_del(struct fbatch *b, void *rec)
{
    b->recs[b->n++] = rec;
}

void
fbatch_pop_ring(struct fbatch *b, struct ring *r, unsigned w, void **held,
                void (*drop)(void *rec))
{
    for (;;) {
        void *rec = *held;
        *held = NULL;
        if (rec == NULL && !ring_pop(r, &rec))
            return;
        struct item *old = NULL;
        bool taken;
        if ((uintptr_t)rec & 1u) {
            taken = !fbatch_full(b);
            if (taken)
                fbatch_add_del(b, rec);
        } else {
            taken = try_add_put(b, rec, &old);
        }
        if (!taken) {
            *held = rec;   /* needs a place: the next batch's first */
            return;
        }
        b->drained[w]++;
        if (old != NULL) {
            b->superseded++;
            b->superseded_bytes += cache_item_total_size(old);
            drop(old);
        }
    }
}
