/*
 * cache_delete.c: delete, and md's invalidation (contract in cache.h).
 *
 * A delete unlinks the item and reports the key to the persistence hook.
 * While warmup runs, the deleted key must read "absent" rather than "maybe
 * on disk", or warmup would install the old version from disk: a tombstone
 * takes the key's place in the same critical section as the unlink.
 *
 * md I keeps the value and marks it stale, as memcached's
 * process_mdelete_command() does in place: here a copy is linked (items are
 * immutable once linked), with a new CAS, the token-sent state cleared so
 * that the next mg wins the recache, and optionally a new expiry. To
 * clients it is the same item, so it keeps its fetched state and atime.
 */
#include <config.h>

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "server/cache_priv.h"

/* md I: see the file comment. */
static enum cache_result
delete_invalidate(const char *key, uint8_t nkey, uint32_t hv,
                  const struct cache_delete_opts *o, uint64_t *cas_out)
{
    struct shard *s = shard_of(hv);
    for (;;) {
        rel_time_t now = clock_op_now();
        enum cache_miss why;
        shard_lock(s);
        struct item *old = ops_find_live(s, key, nkey, hv, now, &why);
        enum cache_result res = CACHE_DELETED;
        if (ops_needs_fetch(old, why))
            res = CACHE_NEED_FETCH;   /* the copy needs the value */
        else if (old == NULL)
            res = CACHE_NOT_FOUND;
        else if (o->cas_in != 0 && old->cas != o->cas_in)
            res = CACHE_EXISTS;
        if (res != CACHE_DELETED) {
            shard_unlock(s);
            return res;
        }
        /* Not an access (memcached looks it up without a bump); if it is
         * evicted while we copy, the next pass finds it gone. */
        item_ref(old);
        shard_unlock(s);

        bool too_large = false;
        struct item *nu = alloc_item(key, nkey, hv, old->flags, 0, old->nbytes,
                                     &too_large, true);
        if (nu == NULL) {
            item_unref(old);
            return CACHE_ENOMEM;
        }
        memcpy(item_value(nu), item_value(old), old->nbytes);
        const struct ops_version v = {
            .set_exptime = o->touch, .exptime = o->exptime,
            .keep = ITEM_META_BITS, .set = ITEM_STALE, .clear = ITEM_TOKEN_SENT,
            .keep_atime = true, .set_cas = o->set_cas, .new_cas = o->new_cas,
        };
        bool done = ops_replace_if_current(s, old, nu, &v, cas_out);
        item_unref(old);
        item_unref(nu);
        if (done)
            return CACHE_DELETED;
    }
}

enum cache_result
cache_delete_ex(const char *key, uint8_t nkey, const struct cache_delete_opts *opts,
                uint64_t *cas_out)
{
    static const struct cache_delete_opts none;
    const struct cache_delete_opts *o = opts != NULL ? opts : &none;
    uint32_t hv = cache_hash(key, nkey);
    if (o->invalidate)
        return delete_invalidate(key, nkey, hv, o, cas_out);

    struct shard *s = shard_of(hv);
    rel_time_t now = clock_op_now();
    enum cache_result res;

    /* Allocated before the lock: the tombstone must take the key's place
     * in the same critical section as the unlink; installed after the lock
     * was dropped, it would leave a window in which cache_install() sees
     * no key and revives it. */
    struct item *tomb = NULL;
    if (!disk_complete())
        tomb = disk_tombstone_alloc(key, nkey, hv);

    enum cache_miss why;
    shard_lock(s);
    struct item *it = ops_find_live(s, key, nkey, hv, now, &why);
    if (it == NULL && why == CACHE_MISS_ON_DISK) {
        res = CACHE_NEED_FETCH;
    } else if (it == NULL) {
        res = CACHE_NOT_FOUND;
    } else if (o->cas_in != 0 && it->cas != o->cas_in) {
        res = CACHE_EXISTS;
    } else {
        shard_unlink(s, it);
        if (tomb != NULL)
            shard_link(s, tomb, now, true);
        res = CACHE_DELETED;
    }
    shard_unlock(s);
    if (tomb != NULL)
        item_unref(tomb);
    if (res == CACHE_DELETED)
        disk_del(key, nkey);
    return res;
}

enum cache_result
cache_delete(const char *key, uint8_t nkey, uint64_t cas_in)
{
    const struct cache_delete_opts o = { .cas_in = cas_in };
    return cache_delete_ex(key, nkey, &o, NULL);
}
