/*
 * cache_filter.c: which keys may be on disk (contract in cache.h,
 * "persistence", and cache_priv.h).
 *
 * Why. Once the cache is incomplete (a stub was dropped for memory, or
 * the warmup stopped at the memory limit), a key missing from memory may
 * still be on disk, and without more knowledge every miss would cost a
 * disk read and leave a tombstone behind: a flood of gets for keys never
 * stored (a client bug, a scan, an attack) would turn into disk reads and
 * memory. memcached allocates nothing for a miss; mckv must not either.
 *
 * How. Each shard keeps a scalable Bloom filter (util/bloom.h) of every
 * key that was written since start (added in the same critical section
 * that counts the write dirty, so before it can reach the disk) and of
 * every key the warmup read from disk. Once the warmup has read every
 * row, a miss whose key the filter has never seen is a plain miss: no
 * disk read, no tombstone. Until then (and for ever when the warmup could
 * not read every row) the filter is not "ready" and a miss may be on disk.
 *
 * Cost: about 2 bytes per key (16 bits, 0.1 % false positives for the
 * first layer, under 0.2 % however it grows; see bloom.c), counted
 * against memory_limit like the hash tables; one more hash and one cache
 * line per write and per incomplete miss.
 * Deleted, expired or flushed keys cannot be removed from a Bloom filter:
 * they stay "maybe" (a disk read, then a counted tombstone) until the
 * next restart rebuilds the filter from the rows that are left.
 */
#include <config.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "server/cache_priv.h"

#define FILTER_SEED 0x6d636b76u        /* "mckv": independent of HASH_SEED */
#define FILTER_FP_SHIFT 10             /* 2^-10: 0.09 % measured, 2 B a key */
#define FILTER_FIRST_CAPACITY 4096     /* keys per shard before a reserve */

static bool filter_on;                 /* persistent: set up before threads */
static atomic_bool filter_ready;

static inline uint32_t
filter_hash2(const char *key, uint8_t nkey)
{
    return hash_murmur3_32(key, nkey, FILTER_SEED);
}

void
filter_setup(bool persistent)
{
    filter_on = persistent;
    atomic_store(&filter_ready, false);
    for (unsigned i = 0; i < CACHE_SHARDS; i++) {
        bloom_init(&cache_shards[i].filter, FILTER_FIRST_CAPACITY,
                   FILTER_FP_SHIFT);
        cache_shards[i].filter_negatives = 0;
    }
}

void
filter_teardown(void)
{
    for (unsigned i = 0; i < CACHE_SHARDS; i++) {
        struct shard *s = &cache_shards[i];
        mem_release(bloom_bytes(&s->filter));
        bloom_clear(&s->filter);
    }
}

void
filter_add(struct shard *s, const char *key, uint8_t nkey, uint32_t hv)
{
    if (!filter_on)
        return;
    size_t added = bloom_add(&s->filter, hv, filter_hash2(key, nkey));
    if (added != 0 && added != SIZE_MAX)
        mem_charge(added);   /* the next allocations evict to make up */
}

bool
filter_maybe_on_disk(struct shard *s, const char *key, uint8_t nkey,
                     uint32_t hv)
{
    if (!filter_on ||
        !atomic_load_explicit(&filter_ready, memory_order_acquire))
        return true;
    if (bloom_maybe(&s->filter, hv, filter_hash2(key, nkey)))
        return true;
    s->filter_negatives++;
    return false;
}

void
cache_filter_reserve(uint64_t keys)
{
    if (!filter_on)
        return;
    /* a quarter more than an even share: shards differ a little, and a
     * layer that overflows adds a second one (twice as large) */
    uint64_t per = keys / CACHE_SHARDS + keys / CACHE_SHARDS / 4;
    for (unsigned i = 0; i < CACHE_SHARDS; i++) {
        struct shard *s = &cache_shards[i];
        shard_lock(s);
        if (s->filter.nlayers == 0 && per > s->filter.first_capacity)
            bloom_init(&s->filter, per, FILTER_FP_SHIFT);
        shard_unlock(s);
    }
}

void
cache_filter_add(const char *key, uint8_t nkey)
{
    if (!filter_on)
        return;
    uint32_t hv = cache_hash(key, nkey);
    struct shard *s = shard_of(hv);
    shard_lock(s);
    filter_add(s, key, nkey, hv);
    shard_unlock(s);
}

void
cache_filter_set_ready(void)
{
    if (filter_on)
        atomic_store_explicit(&filter_ready, true, memory_order_release);
}

bool
cache_filter_is_ready(void)
{
    return atomic_load(&filter_ready);
}
