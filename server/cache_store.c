/*
 * cache_store.c: writes that store a value (contract in cache.h): set,
 * add, replace, cas, append, prepend, and ms's options, written once
 * (cache_store_ex(); cache_store() is it with a CAS only).
 *
 * The CAS rule is memcached's do_store_item(): the caller's CAS matches,
 * or with ms's I a lower one stores anyway and marks the new item stale
 * (it keeps the old expiry and token state); with CAS off every check
 * fails. Append and prepend build old + data (or data + old) outside the
 * lock and link it only if the old item is still the linked one, else
 * start again; with ms's N a miss links the data itself.
 */
#include <config.h>

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "server/cache_priv.h"

static const struct cache_store_opts no_store_opts;

/* append/prepend (cache_store_ex with op CACHE_APPEND or CACHE_PREPEND) */
static enum cache_result
store_concat(struct item *it, bool append, const struct cache_store_opts *o,
             struct cache_store_info *info)
{
    struct shard *s = shard_of(it->hv);
    uint8_t binary = o->key_binary ? ITEM_KEY_BINARY : 0;
    for (;;) {
        rel_time_t now = clock_op_now();
        enum cache_miss why;
        shard_lock(s);
        struct item *old = ops_find_live(s, item_key(it), it->nkey, it->hv, now,
                                         &why);
        if (ops_needs_fetch(old, why)) {
            shard_unlock(s);
            return CACHE_NEED_FETCH;
        }
        if (old == NULL && o->vivify && !(it->iflags & ITEM_LINKED)) {
            /* N: the appended data becomes the value */
            item_set_exptime(it, o->vivify_exptime);
            it->iflags |= binary;
            ops_link_version(s, NULL, it, now, o->set_cas, o->new_cas);
            info->cas = it->cas;
            info->nbytes = it->nbytes;
            info->created = true;
            struct item *changed = disk_mark_dirty(it);
            shard_unlock(s);
            disk_put(changed);
            return CACHE_STORED;
        }
        if (old == NULL) {
            shard_unlock(s);
            return CACHE_NOT_STORED;
        }
        info->cas = old->cas;
        if (o->cas_in != 0 && old->cas != o->cas_in) {
            shard_unlock(s);
            return CACHE_EXISTS;
        }
        item_ref(old);
        /* An access: and it keeps `old` off the tail while we allocate. */
        shard_lru_bump(s, old);
        shard_unlock(s);

        uint64_t total = (uint64_t)old->nbytes + it->nbytes;
        bool too_large = total > UINT32_MAX;
        struct item *nu = too_large ? NULL
            : alloc_item(item_key(it), it->nkey, it->hv, old->flags,
                         item_exptime(old), (uint32_t)total, &too_large, true);
        if (nu == NULL) {
            item_unref(old);
            return too_large ? CACHE_E2BIG : CACHE_ENOMEM;
        }
        const struct item *first = append ? old : it;
        const struct item *second = append ? it : old;
        memcpy(item_value(nu), first->data + first->nkey, first->nbytes);
        memcpy(item_value(nu) + first->nbytes, second->data + second->nkey,
               second->nbytes);

        /* a new item (memcached's append allocates one too): fresh state */
        const struct ops_version v = {
            .set = binary, .set_cas = o->set_cas, .new_cas = o->new_cas,
        };
        bool done = ops_replace_if_current(s, old, nu, &v, &info->cas);
        if (done)
            info->nbytes = nu->nbytes;
        item_unref(old);
        item_unref(nu);
        if (done)
            return CACHE_STORED;
    }
}

enum cache_result
cache_store_ex(struct item *it, enum cache_store_op op,
               const struct cache_store_opts *opts, struct cache_store_info *info)
{
    const struct cache_store_opts *o = opts != NULL ? opts : &no_store_opts;
    memset(info, 0, sizeof(*info));
    if (op == CACHE_APPEND || op == CACHE_PREPEND)
        return store_concat(it, op == CACHE_APPEND, o, info);

    /* memcached's binary protocol turns a set/add/replace that carries a
     * CAS into a cas command. */
    uint64_t cas_in = o->cas_in;
    bool cas_check = op == CACHE_CAS || cas_in != 0;
    struct shard *s = shard_of(it->hv);
    rel_time_t now = clock_op_now();
    enum cache_result res;

    shard_lock(s);
    if (it->iflags & ITEM_LINKED) { /* caller bug: already linked */
        shard_unlock(s);
        return CACHE_NOT_STORED;
    }
    enum cache_miss why;
    struct item *old = ops_find_live(s, item_key(it), it->nkey, it->hv, now, &why);
    if (ops_needs_fetch(old, why) && (op != CACHE_SET || cas_check)) {
        /* add/replace/cas must know whether the key exists on disk; a
         * plain set does not care (a stub is simply replaced). */
        shard_unlock(s);
        return CACHE_NEED_FETCH;
    }
    if (o->key_binary)
        it->iflags |= ITEM_KEY_BINARY;
    if (old != NULL) {
        info->cas = old->cas;
        if (cas_check) {
            /* cas_in 0, or any cas_in with CAS off (items hold 0), is a
             * mismatch, as in memcached. */
            if (cas_in != 0 && old->cas == cas_in) {
                res = CACHE_STORED;
            } else if (o->invalidate && cas_in != 0 && cas_in < old->cas) {
                /* memcached's CAS_STALE: the write of an older version is
                 * kept, marked stale, with the live one's expiry and
                 * token state */
                item_set_exptime(it, item_exptime(old));
                it->iflags |= ITEM_STALE | (old->iflags & ITEM_TOKEN_SENT);
                info->stale = true;
                res = CACHE_STORED;
            } else {
                res = CACHE_EXISTS;
            }
        } else if (op == CACHE_ADD) {
            shard_lru_bump(s, old); /* memcached bumps the item add failed on */
            res = CACHE_NOT_STORED;
        } else {
            res = CACHE_STORED; /* set, replace */
        }
        if (res == CACHE_STORED)
            ops_link_version(s, old, it, now, o->set_cas, o->new_cas);
    } else if (cas_check) {
        res = CACHE_NOT_FOUND;
    } else if (op == CACHE_REPLACE) {
        res = CACHE_NOT_STORED;
    } else {
        ops_link_version(s, NULL, it, now, o->set_cas, o->new_cas); /* set, add */
        res = CACHE_STORED;
    }
    struct item *changed = NULL;
    if (res == CACHE_STORED) {
        info->cas = it->cas;
        info->nbytes = it->nbytes;
        changed = disk_mark_dirty(it);
    }
    shard_unlock(s);
    disk_put(changed);
    return res;
}

enum cache_result
cache_store(struct item *it, enum cache_store_op op, uint64_t cas_in,
            uint64_t *cas_out)
{
    const struct cache_store_opts o = { .cas_in = cas_in };
    struct cache_store_info info;
    enum cache_result res = cache_store_ex(it, op, &o, &info);
    if (res == CACHE_STORED && cas_out != NULL)
        *cas_out = info.cas;
    return res;
}
