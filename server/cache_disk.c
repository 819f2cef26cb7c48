/*
 * cache_disk.c: what the cache knows about the persistent engine
 * (contract in cache.h, "persistence", and cache_priv.h).
 *
 * Stubs. Under memory pressure a clean value is ejected (cache_evict.c): a
 * stub with the key, flags, expiry and CAS takes its place, and a request
 * that meets it fetches the value (cache_install() in cache_install.c puts
 * it back, only over a stub of the same CAS: anything newer wins).
 *
 * Completeness. While the warmup runs, or once a stub has been dropped, a
 * key missing from memory may be on disk (the cache is "incomplete") and
 * lookups report CACHE_MISS_ON_DISK. Then a deleted, expired or flushed key
 * must read "absent" rather than "maybe on disk", or the warmup would
 * install its old version: a tombstone takes the key's place in the same
 * critical section as the unlink, and gives way to the next write.
 *
 * The write path. Every mutation is reported to cache_options.on_change
 * after the shard lock is dropped; a put carries a reference to the item,
 * which counts one queued write in item->dirty until the flusher calls
 * cache_item_clean(). Dirty items are never evicted.
 */
#include <config.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "server/cache_priv.h"

/* Written by disk_setup() before other threads start, then read-only. */
static bool persistent;
static void (*on_change)(const struct cache_change *change);

/* Persistent mode: false while keys absent from memory may be on disk. */
static atomic_bool complete = true;

void
disk_setup(bool is_persistent, void (*hook)(const struct cache_change *))
{
    persistent = is_persistent;
    on_change = hook;
    atomic_store(&complete, true);
}

bool
disk_persistent(void)
{
    return persistent;
}

bool
disk_complete(void)
{
    return atomic_load_explicit(&complete, memory_order_relaxed);
}

void
disk_set_incomplete(void)
{
    atomic_store_explicit(&complete, false, memory_order_relaxed);
}

struct item *
disk_stub_create(const struct item *it)
{
    /* The meta state goes with the key: the value fetched back into the
     * stub is the same item to clients. */
    uint8_t keep = it->iflags & (ITEM_META_BITS | ITEM_CAS_EXPLICIT);
    struct item *st = item_keyonly_alloc(it->data, it->nkey, it->hv,
                                         (uint8_t)(ITEM_STUB | keep));
    if (st == NULL)
        return NULL;
    st->cas = it->cas;
    atomic_init(&st->exptime, item_exptime(it));
    st->flags = it->flags;
    st->atime = it->atime;
    return st;
}

bool
disk_eject(struct shard *s, struct item *it, rel_time_t now)
{
    struct item *stub = disk_stub_create(it);
    if (stub == NULL)
        return false;
    rel_time_t t = it->time, at = it->atime;
    shard_unlink(s, it);
    shard_link(s, stub, now, true);
    stub->time = t;     /* its age and last access are the item's */
    stub->atime = at;
    item_unref(stub);   /* the table holds it now */
    return true;
}

struct item *
disk_tombstone_alloc(const char *key, uint8_t nkey, uint32_t hv)
{
    return item_keyonly_alloc(key, nkey, hv, ITEM_TOMBSTONE);
}

void
disk_bury(struct shard *s, struct item *it, rel_time_t now)
{
    struct item *tomb = NULL;
    if (persistent && !(it->iflags & ITEM_TOMBSTONE) && !disk_complete())
        tomb = disk_tombstone_alloc(item_key(it), it->nkey, it->hv);
    shard_unlink(s, it);
    if (tomb != NULL) {
        shard_link(s, tomb, now, true);
        item_unref(tomb);   /* the table holds it now */
    }
}

struct item *
disk_mark_dirty(struct item *it)
{
    if (!persistent)
        return NULL;
    /* before the write can reach the disk: a miss for this key must
     * never be answered from the filter alone once it is on disk */
    filter_add(shard_of(it->hv), item_key(it), it->nkey, it->hv);
    it->dirty++;
    item_ref(it);
    return it;
}

void
disk_put(struct item *it)
{
    if (it == NULL)
        return;
    struct cache_change ch = { .kind = CACHE_CHANGE_PUT, .item = it };
    on_change(&ch);
}

void
disk_del(const char *key, uint8_t nkey)
{
    if (!persistent)
        return;
    struct cache_change ch = { .kind = CACHE_CHANGE_DEL, .key = key, .nkey = nkey };
    on_change(&ch);
}

void
cache_item_clean(struct item *it)
{
    struct shard *s = shard_of(it->hv);
    pthread_mutex_lock(&s->lock);
    if (it->dirty > 0)
        it->dirty--;
    pthread_mutex_unlock(&s->lock);
}

bool
cache_item_is_current(struct item *it)
{
    struct shard *s = shard_of(it->hv);
    pthread_mutex_lock(&s->lock);
    /* dead by a flush (not unlinked yet): nothing to write */
    bool linked = (it->iflags & ITEM_LINKED) != 0 &&
                  !clock_item_is_flushed(it, cache_now());
    pthread_mutex_unlock(&s->lock);
    return linked;
}

bool
cache_key_present(const char *key, uint8_t nkey)
{
    uint32_t hv = cache_hash(key, nkey);
    struct shard *s = shard_of(hv);
    pthread_mutex_lock(&s->lock);
    struct item *it = shard_find(s, key, nkey, hv);
    bool present = it != NULL && !(it->iflags & ITEM_TOMBSTONE);
    pthread_mutex_unlock(&s->lock);
    return present;
}

void
cache_set_complete(bool value)
{
    atomic_store(&complete, value);
}

bool
cache_is_complete(void)
{
    return atomic_load(&complete);
}

uint64_t
cache_ejected_items(void)
{
    return shard_stubs_now();
}
