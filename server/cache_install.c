/*
 * cache_install.c: values and absences read from disk enter the cache
 * (contract in cache.h, "persistence").
 *
 * Apart from cache_disk.c because an absence adds a key (a tombstone) and
 * must be made room for under the memory limit, which takes eviction:
 * this piece comes after cache_evict.c in the order of cache_priv.h.
 */
#include <config.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/cache_priv.h"

enum cache_result
cache_install(struct item *it)
{
    struct shard *s = shard_of(it->hv);
    rel_time_t now = clock_op_now();
    enum cache_result res = CACHE_NOT_STORED;

    if (item_is_expired(it, now))
        return CACHE_NOT_FOUND;
    shard_lock(s);
    struct item *old = shard_find(s, item_key(it), it->nkey, it->hv);
    if (old != NULL && (old->iflags & ITEM_STUB) && old->cas == it->cas) {
        rel_time_t t = old->time, at = old->atime;
        it->iflags |= old->iflags & (ITEM_META_BITS | ITEM_CAS_EXPLICIT);
        shard_unlink(s, old);
        shard_link(s, it, now, true);
        it->time = t;
        it->atime = at;
        res = CACHE_STORED;
    } else if (old == NULL && !disk_complete()) {
        shard_link(s, it, now, true);
        res = CACHE_STORED;
    }
    /* else a newer version (or a stub of one) is in memory: the disk read
     * raced a write, and the write wins */
    shard_unlock(s);
    return res;
}

void
cache_install_absent(const char *key, uint8_t nkey)
{
    if (disk_complete())
        return;
    struct item *t = disk_tombstone_alloc(key, nkey, cache_hash(key, nkey));
    if (t == NULL)
        return;
    /* Unlike the tombstone of a delete, which takes the place of an item,
     * this one adds a key: it must fit under the limit like any item, or
     * misses for keys that are not on disk would grow memory without
     * bound. Its charge becomes a reservation that may evict (no lock is
     * held here); when nothing can be evicted (only dirty items are left)
     * it is kept over the limit all the same, for the request that waited
     * for the fetch must finish, and is evicted with the next room made. */
    size_t size = item_usable(t);
    mem_release(size);
    if (!evict_reserve(size, shard_index(t->hv)))
        mem_charge(size);
    struct shard *s = shard_of(t->hv);
    rel_time_t now = clock_op_now();
    shard_lock(s);
    struct item *old = shard_find(s, key, nkey, t->hv);
    if (old == NULL)
        shard_link(s, t, now, true);
    shard_unlock(s);
    item_unref(t);
}
