/*
 * cache_alloc.c: memory for new items and for bigger hash tables (contract
 * in cache.h and cache_priv.h).
 *
 * Both are reserved under the memory limit with evict_reserve(), which may
 * evict and so takes shard locks: nothing here runs with a shard lock held.
 * A shard that asked to grow (want_grow, raised by shard_link()) gets its
 * bigger table from the next allocation of an item for it, so the cost of
 * the calloc falls outside every lock; the migration itself is incremental
 * (cache_shard.c).
 */
#include <config.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "server/cache_priv.h"

/* Written by alloc_setup() before other threads start, then read-only. */
static uint32_t item_size_max;

void
alloc_setup(uint32_t size_max)
{
    item_size_max = size_max;
}

/* Replaces a shard's table by one of 1 << power buckets (0: twice the
 * current one) and starts migrating to it; no lock held. Returns 1 when it
 * did, 0 when the shard is already expanding or that big, -1 when out of
 * memory. */
static int
shard_expand(struct shard *s, unsigned index, uint32_t power)
{
    bool busy;
    uint32_t hp = shard_hashpower(s, &busy);
    if (power == 0)
        power = hp + 1;
    if (busy || hp >= power || power > HASH_MAX_POWER)
        return 0;

    size_t nbuckets = (size_t)1 << power;
    size_t bytes = nbuckets * sizeof(struct item *);
    struct item **table = calloc(nbuckets, sizeof(*table));
    if (table == NULL || !evict_reserve(bytes, index)) {
        free(table);
        return -1;
    }
    if (!shard_install_table(s, hp, table, power, bytes)) {
        free(table);
        mem_release(bytes);
        return 0;
    }
    return 1;
}

/* Doubles a shard's table when want_grow asks for it; no lock held. */
static void
shard_grow(struct shard *s, unsigned index)
{
    if (!atomic_exchange_explicit(&s->want_grow, false, memory_order_relaxed))
        return; /* another allocator took the job */
    if (shard_expand(s, index, 0) < 0)
        atomic_store_explicit(&s->want_grow, true, memory_order_relaxed);
}

struct item *
alloc_item(const char *key, uint8_t nkey, uint32_t hv, uint32_t flags,
           rel_time_t exptime, uint32_t nbytes, bool *too_large, bool may_evict)
{
    size_t ntotal = offsetof(struct item, data) + nkey + (size_t)nbytes + 2;
    if (ntotal > item_size_max) {
        *too_large = true;
        return NULL;
    }
    unsigned index = shard_index(hv);
    struct shard *s = &cache_shards[index];
    if (atomic_load_explicit(&s->want_grow, memory_order_relaxed))
        shard_grow(s, index);

    struct item *it = item_malloc(ntotal);
    if (it == NULL)
        return NULL;
    if (may_evict ? !evict_reserve(item_usable(it), index)
                  : !mem_try_reserve(item_usable(it))) {
        if (may_evict)
            evict_count_oom(item_usable(it));
        free(it);
        return NULL;
    }
    item_init(it, key, nkey, hv, flags, exptime, nbytes);
    return it;
}

struct item *
cache_item_alloc(const char *key, uint8_t nkey, uint32_t flags,
                 rel_time_t exptime, uint32_t nbytes, bool *too_large)
{
    bool dummy;
    if (too_large == NULL)
        too_large = &dummy;
    *too_large = false;
    return alloc_item(key, nkey, cache_hash(key, nkey), flags, exptime, nbytes,
                      too_large, true);
}

struct item *
cache_item_alloc_noevict(const char *key, uint8_t nkey, uint32_t flags,
                         rel_time_t exptime, uint32_t nbytes)
{
    bool too_large = false;
    return alloc_item(key, nkey, cache_hash(key, nkey), flags, exptime, nbytes,
                      &too_large, false);
}

struct item *
cache_item_alloc_outside(const char *key, uint8_t nkey, uint32_t flags,
                         rel_time_t exptime, uint32_t nbytes)
{
    size_t ntotal = offsetof(struct item, data) + nkey + (size_t)nbytes + 2;
    if (ntotal > item_size_max)
        return NULL;
    struct item *it = item_malloc(ntotal);
    if (it == NULL)
        return NULL;
    /* Charged past the limit on purpose: evicting for a value that will
     * not stay would only empty the cache (see cache.h). item_free()
     * gives the bytes back as for any item. */
    mem_charge(item_usable(it));
    item_init(it, key, nkey, cache_hash(key, nkey), flags, exptime, nbytes);
    return it;
}

bool
cache_item_is_expired(const struct item *it)
{
    return item_is_expired(it, clock_op_now());
}

void
cache_reserve(uint64_t items)
{
    /* no more than memory_limit could hold in the smallest items */
    uint64_t most = mem_limit_now() / (offsetof(struct item, data) + 16);
    if (items > most)
        items = most;
    uint64_t per_shard = items / CACHE_SHARDS + 1;
    uint32_t power = HASH_INITIAL_POWER;
    while (power < HASH_MAX_POWER && ((uint64_t)1 << power) < per_shard)
        power++;
    for (unsigned i = 0; i < CACHE_SHARDS; i++)
        (void)shard_expand(&cache_shards[i], i, power);
}
