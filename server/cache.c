/*
 * cache.c: the cache's front (contract in cache.h): setup and teardown of
 * its pieces, and the statistics summed over the shards.
 *
 * The cache is split by job (see cache_priv.h for the list and the order
 * of dependencies): the clock and the CAS counter, item memory, shards,
 * what the cache knows about the disk, eviction, allocation, and the
 * commands. This file is the only one that knows them all.
 */
#include <config.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "server/cache_priv.h"
#include "util/status.h"

#define STATS_TAIL_SCAN 64         /* LRU items per shard looked at by stats */

static bool ready;

int
cache_setup(const struct cache_options *opts)
{
    if (opts == NULL || ready)
        return MCKV_EINVAL;
    bool persistent = opts->persistent && opts->on_change != NULL;
    disk_setup(persistent, opts->on_change);
    alloc_setup(opts->item_size_max);
    evict_setup(opts->evict_disabled);
    mem_setup(opts->memory_limit);
    clock_setup(opts->cas_enabled, persistent ? opts->on_change : NULL);
    clock_set_flush_by_second(opts->flush_by_second);
    int rc = shard_setup();
    if (rc < 0)
        return rc;
    filter_setup(persistent);
    ready = true;
    return MCKV_OK;
}

void
cache_teardown(void)
{
    if (!ready)
        return;
    filter_teardown();
    shard_teardown();
    ready = false;
}

void
cache_stats(struct cache_stats *out)
{
    memset(out, 0, sizeof(*out));
    rel_time_t now = cache_now();
    rel_time_t evicted_at[CACHE_SIZE_CLASSES] = { 0 };
    for (unsigned i = 0; i < CACHE_SHARDS; i++) {
        struct shard *s = &cache_shards[i];
        pthread_mutex_lock(&s->lock);
        const struct shard_stats *st = &s->st;
        out->curr_items += st->curr_items;
        out->total_items += st->total_items;
        out->bytes += st->bytes;
        out->value_bytes += st->value_bytes;
        out->evictions += st->evictions;
        out->reclaimed += st->reclaimed;
        out->expired_unfetched += st->expired_unfetched;
        out->evicted_unfetched += st->evicted_unfetched;
        out->hash_bytes += s->table_bytes;
        out->filter_bytes += bloom_bytes(&s->filter);
        out->filter_keys += s->filter.keys;
        out->filter_negatives += s->filter_negatives;
        out->hash_buckets += (uint64_t)1 << s->hashpower;
        if (s->old_buckets != NULL) {
            out->hash_buckets += (uint64_t)1 << s->old_hashpower;
            out->hash_is_expanding = true;
        }
        for (unsigned c = 0; c < CACHE_SIZE_CLASSES; c++) {
            out->class_items[c] += st->class_items[c];
            out->class_bytes[c] += st->class_bytes[c];
            out->class_evictions[c] += st->class_evictions[c];
            if (st->class_evicted_at[c] > evicted_at[c]) {
                evicted_at[c] = st->class_evicted_at[c];
                out->class_evicted_time[c] = st->class_evicted_time[c];
            }
        }
        /* Age of each class's least recently used item, looking at the
         * last STATS_TAIL_SCAN items of the LRU only (bounded hold time). */
        unsigned scanned = 0;
        for (struct item *it = s->lru_tail; it != NULL && scanned < STATS_TAIL_SCAN;
             it = it->lru_prev, scanned++) {
            unsigned c = item_size_class(item_usable(it));
            rel_time_t age = now > it->time ? now - it->time : 0;
            if (age > out->class_oldest[c])
                out->class_oldest[c] = age;
        }
        pthread_mutex_unlock(&s->lock);
    }
    for (unsigned c = 0; c < CACHE_SIZE_CLASSES; c++)
        out->class_oom[c] = evict_oom(c);
    out->limit_maxbytes = mem_limit_now();
    out->filter_ready = cache_filter_is_ready();
    out->tombstones = shard_tombstones_now();
}

void
cache_stats_reset(void)
{
    for (unsigned i = 0; i < CACHE_SHARDS; i++) {
        struct shard *s = &cache_shards[i];
        pthread_mutex_lock(&s->lock);
        s->st.total_items = 0;
        s->st.evictions = 0;
        s->st.reclaimed = 0;
        s->st.expired_unfetched = 0;
        s->st.evicted_unfetched = 0;
        memset(s->st.class_evictions, 0, sizeof(s->st.class_evictions));
        memset(s->st.class_evicted_time, 0, sizeof(s->st.class_evicted_time));
        memset(s->st.class_evicted_at, 0, sizeof(s->st.class_evicted_at));
        pthread_mutex_unlock(&s->lock);
    }
    evict_oom_reset();
}
