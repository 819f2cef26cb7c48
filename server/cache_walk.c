/*
 * cache_walk.c: admin views of the items (contract in cache.h): one item's
 * metadata (me, metadump <key>), copied out under the shard lock. It does
 * not count as an access.
 */
#include <config.h>

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "server/cache_priv.h"

static void
entry_fill(struct cache_walk_entry *e, const struct item *it)
{
    memcpy(e->key, item_key(it), it->nkey);
    e->nkey = it->nkey;
    e->key_binary = (it->iflags & ITEM_KEY_BINARY) != 0;
    e->stub = (it->iflags & ITEM_STUB) != 0;
    e->fetched = (it->iflags & ITEM_FETCHED) != 0;
    e->stale = (it->iflags & ITEM_STALE) != 0;
    e->token_sent = (it->iflags & ITEM_TOKEN_SENT) != 0;
    e->flags = it->flags;
    e->nbytes = it->nbytes;
    e->exptime = cache_rel_to_unix(item_exptime(it));
    e->last_access = cache_rel_to_unix(it->atime);
    e->stored = cache_rel_to_unix(it->time);
    e->cas = it->cas;
    e->total_size = item_usable(it);
    e->size_class = item_size_class(e->total_size);
}

bool
cache_peek(const char *key, uint8_t nkey, struct cache_walk_entry *out,
           enum cache_miss *why)
{
    uint32_t hv = cache_hash(key, nkey);
    struct shard *s = shard_of(hv);
    rel_time_t now = clock_op_now();
    shard_lock(s);
    struct item *it = ops_find_live(s, key, nkey, hv, now, why);
    if (it != NULL)
        entry_fill(out, it);
    shard_unlock(s);
    return it != NULL;
}
