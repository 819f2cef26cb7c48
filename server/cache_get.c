/*
 * cache_get.c: reads (contract in cache.h): get, get-and-touch, touch and
 * the meta get, mg, written once (get_core()).
 *
 * A read is an access: unless mg's u says otherwise, the item is marked
 * fetched, its atime set and it moves to its LRU head. A stub is bumped
 * too (so it is not dropped while its value is being fetched) and reported
 * as CACHE_MISS_ON_DISK with nothing else done: the request runs again
 * once the value is back.
 *
 * mg's decisions (N, T, R, then Z, X and W) follow memcached's
 * process_mget_command() in order, under the shard lock that reads the
 * state, so two clients never both win. N creates an item outside the
 * lock (allocation may evict) and links it only if the key is still
 * absent, else the request is a hit on what appeared meanwhile.
 */
#include <config.h>

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "server/cache_priv.h"

/* mg's decisions on a live item (not a stub); shard lock held. Returns
 * true when the expiry changed (a persisted change). */
static bool
mget_decide(struct item *it, bool created, const struct cache_mget_opts *o,
            struct cache_mget_info *info)
{
    bool touched = false, won = created;
    info->created = created;
    info->fetched = (it->iflags & ITEM_FETCHED) != 0;
    info->last_access = it->atime;
    info->exptime_before = item_exptime(it);
    info->key_binary = (it->iflags & ITEM_KEY_BINARY) != 0;
    if (o->touch && !created && o->touch_before_recache) {
        item_set_exptime(it, o->exptime);
        touched = true;
    }
    rel_time_t exptime = item_exptime(it);
    if (o->recache && !created && !(it->iflags & ITEM_TOKEN_SENT) &&
        exptime != 0 && exptime < o->recache_time)
        won = true;
    if (o->touch && !created && !o->touch_before_recache) {
        item_set_exptime(it, o->exptime);
        touched = true;
    }
    /* Z before W, so a client never sees both */
    info->token_sent = (it->iflags & ITEM_TOKEN_SENT) != 0;
    if (it->iflags & ITEM_STALE) {
        info->stale = true;
        if (!info->token_sent)
            won = true;   /* stale and nobody recaching it yet */
    }
    if (won)
        it->iflags |= ITEM_TOKEN_SENT;
    info->won = won;
    return touched;
}

/* The read, with (o != NULL: mg) or without (get, gat, touch) the meta
 * decisions; info->why is always set. */
static struct item *
get_core(const char *key, uint8_t nkey, uint32_t hv, bool touch,
         rel_time_t exptime, const struct cache_mget_opts *o,
         struct cache_mget_info *info)
{
    struct shard *s = shard_of(hv);
    struct item *fresh = NULL;
    for (;;) {
        rel_time_t now = clock_op_now();
        enum cache_miss why;
        struct item *changed = NULL;
        bool created = false;
        shard_lock(s);
        struct item *it = ops_find_live(s, key, nkey, hv, now, &why);
        if (it != NULL && (it->iflags & ITEM_STUB)) {
            shard_lru_bump(s, it);
            why = CACHE_MISS_ON_DISK;
            it = NULL;
        } else if (it == NULL && why != CACHE_MISS_ON_DISK && o != NULL &&
                   o->vivify) {
            if (fresh == NULL) {
                shard_unlock(s);
                bool too_large = false;
                rel_time_t vexp = o->touch && o->touch_after_vivify
                    ? o->exptime : o->vivify_exptime;
                fresh = alloc_item(key, nkey, hv, 0, vexp, 0, &too_large, true);
                if (fresh == NULL) {
                    info->why = why;
                    return NULL;
                }
                if (o->key_binary)
                    fresh->iflags |= ITEM_KEY_BINARY;
                continue;   /* look again: the key may have appeared */
            }
            shard_link(s, fresh, now, false);
            changed = disk_mark_dirty(fresh);
            it = fresh;     /* our reference becomes the caller's */
            fresh = NULL;
            created = true;
        }
        if (it != NULL) {
            bool touched = false;
            if (o != NULL) {
                touched = mget_decide(it, created, o, info);
            } else if (touch) {
                item_set_exptime(it, exptime);
                touched = true;
            }
            if (touched && changed == NULL)
                changed = disk_mark_dirty(it);   /* the new expiry persists */
            if (o == NULL || !o->no_bump) {
                it->iflags |= ITEM_FETCHED;
                it->atime = now;
                shard_lru_bump(s, it);
            }
            if (!created)
                item_ref(it);
        }
        shard_unlock(s);
        disk_put(changed);
        cache_item_release(fresh);   /* N raced a store: not needed */
        if (info != NULL)
            info->why = why;
        return it;
    }
}

struct item *
cache_get(const char *key, uint8_t nkey, enum cache_miss *why)
{
    struct cache_mget_info info;
    struct item *it = get_core(key, nkey, cache_hash(key, nkey), false, 0,
                               NULL, &info);
    if (why != NULL)
        *why = info.why;
    return it;
}

struct item *
cache_get_touch(const char *key, uint8_t nkey, rel_time_t exptime,
                enum cache_miss *why)
{
    struct cache_mget_info info;
    struct item *it = get_core(key, nkey, cache_hash(key, nkey), true, exptime,
                               NULL, &info);
    if (why != NULL)
        *why = info.why;
    return it;
}

enum cache_result
cache_touch(const char *key, uint8_t nkey, rel_time_t exptime)
{
    enum cache_miss why;
    struct item *it = cache_get_touch(key, nkey, exptime, &why);
    if (it == NULL)
        return why == CACHE_MISS_ON_DISK ? CACHE_NEED_FETCH : CACHE_NOT_FOUND;
    cache_item_release(it);
    return CACHE_TOUCHED;
}

struct item *
cache_mget(const char *key, uint8_t nkey, const struct cache_mget_opts *opts,
           struct cache_mget_info *info)
{
    static const struct cache_mget_opts none;
    memset(info, 0, sizeof(*info));
    return get_core(key, nkey, cache_hash(key, nkey), false, 0,
                    opts != NULL ? opts : &none, info);
}
