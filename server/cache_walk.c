/*
 * cache_walk.c: admin views of the items (contract in cache.h): one item's
 * metadata (me, metadump <key>) and a walk over all of them (lru_crawler
 * metadump, stats cachedump).
 *
 * Neither counts as an access. The walk never calls back under a lock: it
 * copies up to WALK_BATCH items of one shard into a buffer, drops the
 * lock, then calls back for each, so a slow consumer (a socket) holds up
 * nobody and may itself use the cache.
 *
 * Where to resume between batches is a cursor over the shard's buckets in
 * reverse-binary order (Redis's SCAN, dictScan()): incrementing the
 * bit-reversed index visits bucket b of a table of 2^p buckets exactly
 * when it visits every bucket of a bigger table whose low p bits are b.
 * Buckets are chosen by the hash's low bits, so after a table grows, the
 * buckets the cursor has passed hold exactly the items of the buckets it
 * had passed before: none is skipped. While a shard is migrating, a step
 * visits the old table's bucket and all the new table's buckets it splits
 * into, which between them hold every key with those low bits, wherever
 * the migration has put it.
 *
 * cache_walk_from() hands that cursor to its caller (with the shard's
 * index above it), so a dump answered over many calls resumes where the
 * last one stopped, with the same guarantee: the order does not depend on
 * the table sizes, so growth between calls skips nothing either.
 */
#include <config.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/cache_priv.h"
#include "util/status.h"

#define WALK_BATCH 64   /* items copied per shard lock hold (at least) */
#define WALK_STEPS 1024 /* buckets looked at per shard lock hold (at most) */

static void
entry_fill(struct cache_walk_entry *e, const struct item *it)
{
    memcpy(e->key, item_key(it), it->nkey);
    e->nkey = it->nkey;
    e->key_binary = (it->iflags & ITEM_KEY_BINARY) != 0;
    e->stub = (it->iflags & ITEM_STUB) != 0;
    e->fetched = (it->iflags & ITEM_FETCHED) != 0;
    e->stale = (it->iflags & ITEM_STALE) != 0;
    e->token_sent = (it->iflags & ITEM_TOKEN_SENT) != 0;
    e->flags = it->flags;
    e->nbytes = it->nbytes;
    e->exptime = cache_rel_to_unix(item_exptime(it));
    e->last_access = cache_rel_to_unix(it->atime);
    e->stored = cache_rel_to_unix(it->time);
    e->cas = it->cas;
    e->total_size = item_usable(it);
    e->size_class = item_size_class(e->total_size);
}

bool
cache_peek(const char *key, uint8_t nkey, struct cache_walk_entry *out,
           enum cache_miss *why)
{
    uint32_t hv = cache_hash(key, nkey);
    struct shard *s = shard_of(hv);
    rel_time_t now = clock_op_now();
    shard_lock(s);
    struct item *it = ops_find_live(s, key, nkey, hv, now, why);
    if (it != NULL)
        entry_fill(out, it);
    shard_unlock(s);
    return it != NULL;
}

/* A growable batch; only the walking thread touches it. */
struct batch {
    struct cache_walk_entry *e;
    size_t n, cap;
    bool failed;
};

/* Copies the live items of one chain; shard lock held. */
static void
batch_chain(struct batch *b, const struct item *it, rel_time_t now)
{
    for (; it != NULL; it = it->h_next) {
        if ((it->iflags & ITEM_TOMBSTONE) || item_is_dead(it, now))
            continue;
        if (b->n == b->cap) {
            /* malloc under the lock: it never evicts (not accounted) */
            size_t cap = b->cap * 2;
            struct cache_walk_entry *e = realloc(b->e, cap * sizeof(*e));
            if (e == NULL) {
                b->failed = true;
                return;
            }
            b->e = e;
            b->cap = cap;
        }
        entry_fill(&b->e[b->n++], it);
    }
}

static uint32_t
rev32(uint32_t v)
{
    v = ((v >> 1) & 0x55555555u) | ((v & 0x55555555u) << 1);
    v = ((v >> 2) & 0x33333333u) | ((v & 0x33333333u) << 2);
    v = ((v >> 4) & 0x0f0f0f0fu) | ((v & 0x0f0f0f0fu) << 4);
    v = ((v >> 8) & 0x00ff00ffu) | ((v & 0x00ff00ffu) << 8);
    return (v >> 16) | (v << 16);
}

/* The next cursor after the buckets under `mask`: the bit-reversed
 * increment of the masked bits (0 when the table is done). */
static uint32_t
cursor_next(uint32_t v, uint32_t mask)
{
    v |= ~mask;
    return rev32(rev32(v) + 1);
}

/* Copies the items of cursor position v of shard s and returns the next
 * position; shard lock held. */
static uint32_t
walk_step(struct shard *s, uint32_t v, struct batch *b, rel_time_t now)
{
    if (s->old_buckets == NULL) {
        uint32_t m = (1u << s->hashpower) - 1;
        batch_chain(b, s->buckets[v & m], now);
        return cursor_next(v, m);
    }
    /* migrating: the smaller old table's bucket, then all of the new
     * table's buckets that split it */
    uint32_t m0 = (1u << s->old_hashpower) - 1;
    uint32_t m1 = (1u << s->hashpower) - 1;
    batch_chain(b, s->old_buckets[v & m0], now);
    do {
        batch_chain(b, s->buckets[v & m1], now);
        v = cursor_next(v, m1);
    } while (v & (m0 ^ m1));
    return v;
}

int
cache_walk_from(uint64_t *cursor, cache_walk_fn fn, void *ctx, size_t budget)
{
    uint64_t cur = *cursor;
    unsigned i = (unsigned)(cur >> 32);
    uint32_t v = (uint32_t)cur;
    if (cur == CACHE_WALK_END || i >= CACHE_SHARDS) {
        *cursor = CACHE_WALK_END;
        return MCKV_OK;
    }
    size_t bucket_budget = budget > SIZE_MAX / 8 ? SIZE_MAX : budget * 8;
    struct batch b = { .cap = WALK_BATCH };
    b.e = malloc(b.cap * sizeof(*b.e));
    if (b.e == NULL) {
        *cursor = CACHE_WALK_END;
        return MCKV_ENOMEM;
    }
    int rc = MCKV_OK;
    size_t items = 0, buckets = 0;
    while (i < CACHE_SHARDS && items < budget && buckets < bucket_budget) {
        struct shard *s = &cache_shards[i];
        rel_time_t now = clock_op_now();
        unsigned steps = 0;
        b.n = 0;
        shard_lock(s);
        do {
            v = walk_step(s, v, &b, now);
            steps++;
        } while (v != 0 && b.n < WALK_BATCH && steps < WALK_STEPS && !b.failed);
        shard_unlock(s);
        if (b.failed) {
            rc = MCKV_ENOMEM;
            i = CACHE_SHARDS;
            break;
        }
        buckets += steps;
        if (v == 0)
            i++;   /* this shard is done; the next starts at bucket 0 */
        for (size_t k = 0; k < b.n; k++) {
            items++;
            if (!fn(&b.e[k], ctx)) {
                i = CACHE_SHARDS;
                break;
            }
        }
    }
    *cursor = i >= CACHE_SHARDS ? CACHE_WALK_END : ((uint64_t)i << 32) | v;
    free(b.e);
    return rc;
}

int
cache_walk(cache_walk_fn fn, void *ctx)
{
    uint64_t cursor = CACHE_WALK_START;
    return cache_walk_from(&cursor, fn, ctx, SIZE_MAX);
}
