/*
 * cache_ops.c: what the commands share (contract in cache_priv.h).
 *
 * The commands (cache_get.c, cache_store.c, cache_delete.c) each take the
 * key's shard lock once for their decision and report their change to the
 * persistence hook after dropping it (cache_disk.c).
 *
 * Lookup. Dead items (expired, or invalidated by flush_all) are unlinked
 * when a lookup meets them; tombstones read as absent; while the cache is
 * incomplete a key not in memory may be on disk.
 *
 * Versions. Linked items are immutable, so append, prepend, incr/decr and
 * md's invalidation build a new item outside the lock (allocation may
 * evict, and eviction takes shard locks) and link it only if the old one
 * is still the linked one, else they start again. What memcached would
 * have changed in place (the expiry a touch set meanwhile, the meta state
 * of an incr that fits) is carried from the old item under the lock.
 */
#include <config.h>

#include <stdbool.h>
#include <stdint.h>

#include "server/cache_priv.h"

struct item *
ops_find_live(struct shard *s, const char *key, uint8_t nkey, uint32_t hv,
              rel_time_t now, enum cache_miss *why)
{
    enum cache_miss reason = CACHE_MISS_ABSENT;
    struct item *it = shard_find(s, key, nkey, hv);
    if (it != NULL) {
        if (clock_item_is_flushed(it, now))
            reason = CACHE_MISS_FLUSHED;
        else if (item_is_expired(it, now))
            reason = CACHE_MISS_EXPIRED;
        if (reason != CACHE_MISS_ABSENT) {
            if (!(it->iflags & ITEM_FETCHED))
                s->st.expired_unfetched++;
            disk_bury(s, it, now);
            it = NULL;
        }
    }
    if (it != NULL && (it->iflags & ITEM_TOMBSTONE)) {
        it = NULL;   /* known absent */
    } else if (it == NULL && reason == CACHE_MISS_ABSENT && !disk_complete() &&
               filter_maybe_on_disk(s, key, nkey, hv)) {
        reason = CACHE_MISS_ON_DISK;
    }
    if (why != NULL)
        *why = reason;
    return it;
}

void
ops_link_version(struct shard *s, struct item *old, struct item *it,
                 rel_time_t now, bool set_cas, uint64_t new_cas)
{
    if (old != NULL)
        shard_unlink(s, old);
    bool explicit_cas = set_cas && clock_cas_enabled();
    if (explicit_cas) {
        it->cas = new_cas;
        it->iflags |= ITEM_CAS_EXPLICIT;
    }
    shard_link(s, it, now, explicit_cas);
}

bool
ops_replace_if_current(struct shard *s, struct item *old, struct item *nu,
                       const struct ops_version *v, uint64_t *cas_out)
{
    bool done = false;
    rel_time_t now = clock_op_now();
    struct item *changed = NULL;
    shard_lock(s);
    if ((old->iflags & ITEM_LINKED) && !item_is_dead(old, now)) {
        item_set_exptime(nu, v->set_exptime ? v->exptime : item_exptime(old));
        uint8_t flags = (uint8_t)((old->iflags & v->keep) | v->set);
        nu->iflags = (uint8_t)((nu->iflags | flags) & ~v->clear);
        rel_time_t atime = old->atime;
        ops_link_version(s, old, nu, now, v->set_cas, v->new_cas);
        if (v->keep_atime)
            nu->atime = atime;
        if (cas_out != NULL)
            *cas_out = nu->cas;
        changed = disk_mark_dirty(nu);
        done = true;
    }
    shard_unlock(s);
    disk_put(changed);
    return done;
}
