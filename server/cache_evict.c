/*
 * cache_evict.c: making room under the memory limit (contract in
 * cache_priv.h, evict_reserve()).
 *
 * An allocation reserves its bytes with mem_try_reserve(); when that fails
 * it evicts from the LRU tail of its own shard (of another one when its own
 * holds clearly less than its share, see evict_victim()) and, once that
 * shard is empty, from the others, holding one shard lock at a time.
 * Evicting an item that a reader holds only unlinks it; its bytes come
 * back at its last release.
 *
 * What goes first: like memcached, a dead item (expired or flushed) among
 * the last EVICT_TAIL_SEARCH of the LRU is reclaimed before a live one is
 * evicted. With the persistent engine a dirty item is never dropped (its
 * write is not on disk yet); the least recent clean value is ejected
 * instead: a stub keeps its key and metadata. Stubs have an LRU of their
 * own; once they hold half the memory, the least recent is dropped, and
 * then the cache is no longer complete (that key may be on disk: the
 * filter of keys on disk, cache_filter.c, tells the misses that cannot
 * be). See eject_clean().
 *
 * evict_disabled (memcached -M): only dead items are reclaimed; a live one
 * is never evicted, so a full cache fails the allocation instead. With the
 * persistent engine the setting changes nothing (see cache.h).
 *
 * A lowered limit (cache_set_memory_limit()) is reached gradually: while
 * memory is over it, an allocation that has freed twice its own size is
 * let through over the limit, so memory still falls with every allocation
 * but no single one evicts the whole difference.
 */
#include <config.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "server/cache_priv.h"

#define EVICT_BATCH_MAX 64         /* items unlinked per shard lock hold */
#define EVICT_TAIL_SEARCH 5        /* items looked at for a dead one */
#define EVICT_CLEAN_SEARCH 1024    /* items looked at for a clean one */
#define SHRINK_PAYBACK 2           /* over the limit: free this many times
                                      the allocation, then let it through */

/* Written by evict_setup() before other threads start, then read-only. */
static bool evict_disabled;

void
evict_setup(bool disabled)
{
    evict_disabled = disabled;
}

/*
 * Persistent mode: frees a value or drops a key. True when the least
 * recent clean value was ejected to a stub (done, the caller moves on);
 * else `*out` is the key-only item to drop (NULL: only dirty items,
 * nothing to free).
 *
 * Values and key-only items (stubs, tombstones) are in separate LRUs
 * (cache_shard.c). While keys take at most half of the shard's bytes, a
 * value goes first: it frees ten to a hundred times what a stub does, and
 * the stubs keep the cache complete. Past half, the least recent key goes.
 * (With one LRU, stubs were passed over for any clean value up to
 * EVICT_CLEAN_SEARCH items away; once memory held mostly stubs, as in an
 * ingest of 8M keys under -m 1024, every allocation walked a thousand of
 * them and shard_evict took 66 % of the server's CPU.) Only dirty values
 * are skipped, and those are the newest while the flusher keeps up.
 */
static bool
eject_clean(struct shard *s, rel_time_t now, struct item **out, size_t *freed)
{
    struct item *it = NULL;
    bool keys_first = s->key_tail != NULL && s->key_bytes * 2 > s->st.bytes;
    unsigned looked = 0;
    for (struct item *p = keys_first ? NULL : s->lru_tail;
         p != NULL && looked < EVICT_CLEAN_SEARCH; p = p->lru_prev, looked++) {
        if (p->dirty == 0) {
            it = p;
            break;
        }
    }
    if (it == NULL)
        it = s->key_tail;   /* dirty values only, or keys first */
    *out = it;
    if (it == NULL)
        return false;
    if (!(it->iflags & (ITEM_STUB | ITEM_TOMBSTONE))) {
        size_t size = item_usable(it);
        if (disk_eject(s, it, now)) {
            s->st.evictions++;
            *freed += size;
            return true;
        }
    }
    if (it->iflags & ITEM_STUB)
        disk_set_incomplete();
    return false;
}

/*
 * Unlinks items from the LRU tail until about `need` bytes are freed (items
 * held by readers free nothing yet), adding what was freed to *freed_out.
 * Takes and drops the shard lock. Returns false when the shard had nothing
 * to unlink.
 */
static bool
shard_evict(struct shard *s, size_t need, size_t *freed_out)
{
    size_t freed = 0;
    unsigned n = 0;
    rel_time_t now = cache_now();
    bool persistent = disk_persistent();

    shard_lock(s);
    while ((s->lru_tail != NULL || s->key_tail != NULL) && freed < need &&
           n < EVICT_BATCH_MAX) {
        struct item *it = NULL;
        unsigned looked = 0;
        for (struct item *p = s->lru_tail; p != NULL && looked < EVICT_TAIL_SEARCH;
             p = p->lru_prev, looked++) {
            if (item_is_dead(p, now)) {
                it = p;
                break;
            }
        }
        if (it == NULL && persistent) {
            if (eject_clean(s, now, &it, &freed)) {
                n++;
                continue;
            }
            if (it == NULL)
                break;   /* only dirty items at the tail: nothing to free */
        } else if (it == NULL && evict_disabled) {
            break;       /* -M: live items stay, the allocation fails */
        }
        size_t size;
        bool fetched;
        if (it != NULL && item_is_dead(it, now)) {
            fetched = (it->iflags & ITEM_FETCHED) != 0;
            size = item_usable(it);
            s->st.reclaimed++;
            if (!fetched)
                s->st.expired_unfetched++;
        } else {
            if (it == NULL)
                it = s->lru_tail;
            fetched = (it->iflags & ITEM_FETCHED) != 0;
            size = item_usable(it);
            s->st.evictions++;
            unsigned c = item_size_class(size);
            s->st.class_evictions[c]++;
            s->st.class_evicted_time[c] = now > it->time ? now - it->time : 0;
            s->st.class_evicted_at[c] = now + 1;   /* 0: never */
            if (!fetched)
                s->st.evicted_unfetched++;
        }
        /* A reader's reference keeps the bytes until its release. */
        if (shard_unlink(s, it))
            freed += size;
        n++;
    }
    shard_unlock(s);
    *freed_out += freed;
    return n > 0;
}

/*
 * The shard to evict from for an allocation in `home`: home itself, unless
 * it holds clearly less than its share of memory; then the larger of two
 * other shards picked at random. Each shard evicting only for its own
 * allocations has no force keeping shard sizes even (an eviction frees a
 * little more or less than the new item needs, and the difference goes to
 * whichever shard allocates next), so without this their sizes drift apart
 * like a random walk until a small shard evicts items that are still hot.
 */
static unsigned
evict_victim(unsigned home)
{
    static _Thread_local uint32_t rng;
    size_t fair = mem_used_now() / CACHE_SHARDS;
    size_t home_bytes = atomic_load_explicit(&cache_shards[home].lru_bytes,
                                             memory_order_relaxed);
    if (home_bytes >= fair - fair / 8)
        return home;
    if (rng == 0)
        rng = (uint32_t)(uintptr_t)&rng | 1u;
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    unsigned a = (home + 1 + rng % (CACHE_SHARDS - 1)) % CACHE_SHARDS;
    unsigned b = (home + 1 + (rng >> 16) % (CACHE_SHARDS - 1)) % CACHE_SHARDS;
    size_t a_bytes = atomic_load_explicit(&cache_shards[a].lru_bytes,
                                          memory_order_relaxed);
    size_t b_bytes = atomic_load_explicit(&cache_shards[b].lru_bytes,
                                          memory_order_relaxed);
    unsigned victim = a_bytes >= b_bytes ? a : b;
    return (a_bytes >= b_bytes ? a_bytes : b_bytes) > home_bytes ? victim : home;
}

/* Rare (a full cache under -M, or only dirty items left): one atomic per
 * class outside any shard lock. */
static _Atomic uint64_t class_oom[CACHE_SIZE_CLASSES];

void
evict_count_oom(size_t bytes)
{
    atomic_fetch_add_explicit(&class_oom[item_size_class(bytes)], 1,
                              memory_order_relaxed);
}

uint64_t
evict_oom(unsigned c)
{
    return atomic_load_explicit(&class_oom[c], memory_order_relaxed);
}

void
evict_oom_reset(void)
{
    for (unsigned c = 0; c < CACHE_SIZE_CLASSES; c++)
        atomic_store_explicit(&class_oom[c], 0, memory_order_relaxed);
}

bool
evict_reserve(size_t bytes, unsigned home)
{
    size_t freed = 0;
    for (;;) {
        if (mem_try_reserve(bytes))
            return true;
        size_t limit = mem_limit_now();
        size_t used = mem_used_now();
        if (bytes > limit)
            return false;
        if (used > limit && freed >= SHRINK_PAYBACK * bytes) {
            /* over a lowered limit, and this allocation paid its way */
            mem_charge(bytes);
            return true;
        }
        size_t need = used + bytes > limit ? used + bytes - limit : 1;
        unsigned victim = evict_victim(home);
        if (shard_evict(&cache_shards[victim], need, &freed))
            continue;
        if (victim != home && shard_evict(&cache_shards[home], need, &freed))
            continue;
        bool evicted = false;
        for (unsigned i = 1; i < CACHE_SHARDS && !evicted; i++)
            evicted = shard_evict(&cache_shards[(home + i) % CACHE_SHARDS], need,
                                  &freed);
        if (!evicted)
            return false;
    }
}
