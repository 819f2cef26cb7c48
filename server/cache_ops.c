/*
 * cache_ops.c: the commands (contract in cache.h): get, get-and-touch,
 * touch, store in every mode, delete, incr/decr.
 *
 * Each takes the key's shard lock once for its decision, and reports its
 * change to the persistence hook after dropping it (cache_disk.c). Linked
 * items are immutable, so append, prepend and incr/decr build a new item
 * outside the lock (allocation may evict, and eviction takes shard locks)
 * and link it only if the old one is still the linked one, else they
 * start again (replace_if_current()).
 *
 * Dead items (expired, or invalidated by flush_all) are unlinked when a
 * lookup meets them (find_live()).
 */
#include <config.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "server/cache_priv.h"

/*
 * Finds a live item; shard lock held. A dead one met on the way is unlinked
 * and reported through *why (may be NULL).
 */
static struct item *
find_live(struct shard *s, const char *key, uint8_t nkey, uint32_t hv,
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
    } else if (it == NULL && reason == CACHE_MISS_ABSENT && !disk_complete()) {
        reason = CACHE_MISS_ON_DISK;
    }
    if (why != NULL)
        *why = reason;
    return it;
}

/* The caller must fetch the value before it can answer: a stub, or a key
 * that may be on disk. */
static inline bool
needs_fetch(const struct item *it, enum cache_miss why)
{
    return it != NULL ? (it->iflags & ITEM_STUB) != 0 : why == CACHE_MISS_ON_DISK;
}

/*
 * The second half of a read-modify-write (append, prepend, incr, decr):
 * links `nu` in place of `old` if `old` is still the live linked version
 * (keeping the expiry a touch may have set since), and reports the change.
 * Returns false when something else changed the key first: start again.
 */
static bool
replace_if_current(struct shard *s, struct item *old, struct item *nu,
                   uint64_t *cas_out)
{
    bool done = false;
    rel_time_t now = clock_op_now();
    struct item *changed = NULL;
    shard_lock(s);
    if ((old->iflags & ITEM_LINKED) && !item_is_dead(old, now)) {
        item_set_exptime(nu, item_exptime(old));
        shard_replace(s, old, nu, now);
        if (cas_out != NULL)
            *cas_out = nu->cas;
        changed = disk_mark_dirty(nu);
        done = true;
    }
    shard_unlock(s);
    disk_put(changed);
    return done;
}

/*
 * append/prepend: builds old + data (or data + old) outside the lock and
 * links it if `old` is still the linked item, else starts again.
 */
static enum cache_result
store_concat(struct item *it, bool append, uint64_t cas_in, uint64_t *cas_out)
{
    struct shard *s = shard_of(it->hv);
    for (;;) {
        rel_time_t now = clock_op_now();
        enum cache_miss why;
        shard_lock(s);
        struct item *old = find_live(s, item_key(it), it->nkey, it->hv, now, &why);
        if (needs_fetch(old, why)) {
            shard_unlock(s);
            return CACHE_NEED_FETCH;
        }
        if (old == NULL) {
            shard_unlock(s);
            return CACHE_NOT_STORED;
        }
        if (cas_in != 0 && old->cas != cas_in) {
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
                          item_exptime(old),
                          (uint32_t)total, &too_large, true);
        if (nu == NULL) {
            item_unref(old);
            return too_large ? CACHE_E2BIG : CACHE_ENOMEM;
        }
        const struct item *first = append ? old : it;
        const struct item *second = append ? it : old;
        memcpy(item_value(nu), first->data + first->nkey, first->nbytes);
        memcpy(item_value(nu) + first->nbytes, second->data + second->nkey,
               second->nbytes);

        bool done = replace_if_current(s, old, nu, cas_out);
        item_unref(old);
        item_unref(nu);
        if (done)
            return CACHE_STORED;
    }
}

enum cache_result
cache_store(struct item *it, enum cache_store_op op, uint64_t cas_in,
            uint64_t *cas_out)
{
    if (op == CACHE_APPEND || op == CACHE_PREPEND)
        return store_concat(it, op == CACHE_APPEND, cas_in, cas_out);

    /* memcached's binary protocol turns a set/add/replace that carries a
     * CAS into a cas command. */
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
    struct item *old = find_live(s, item_key(it), it->nkey, it->hv, now, &why);
    if (needs_fetch(old, why) && (op != CACHE_SET || cas_check)) {
        /* add/replace/cas must know whether the key exists on disk; a
         * plain set does not care (a stub is simply replaced). */
        shard_unlock(s);
        return CACHE_NEED_FETCH;
    }
    if (old != NULL) {
        if (cas_check) {
            /* cas_in 0, or any cas_in with CAS off (items hold 0), is a
             * mismatch, as in memcached. */
            res = cas_in != 0 && old->cas == cas_in ? CACHE_STORED : CACHE_EXISTS;
        } else if (op == CACHE_ADD) {
            shard_lru_bump(s, old); /* memcached bumps the item add failed on */
            res = CACHE_NOT_STORED;
        } else {
            res = CACHE_STORED; /* set, replace */
        }
        if (res == CACHE_STORED)
            shard_replace(s, old, it, now);
    } else if (cas_check) {
        res = CACHE_NOT_FOUND;
    } else if (op == CACHE_REPLACE) {
        res = CACHE_NOT_STORED;
    } else {
        shard_link(s, it, now, false); /* set, add */
        res = CACHE_STORED;
    }
    if (res == CACHE_STORED && cas_out != NULL)
        *cas_out = it->cas;
    struct item *changed = res == CACHE_STORED ? disk_mark_dirty(it) : NULL;
    shard_unlock(s);
    disk_put(changed);
    return res;
}

static struct item *
get_common(const char *key, uint8_t nkey, bool touch, rel_time_t exptime,
           enum cache_miss *why)
{
    uint32_t hv = cache_hash(key, nkey);
    struct shard *s = shard_of(hv);
    rel_time_t now = clock_op_now();

    enum cache_miss reason;
    struct item *changed = NULL;
    shard_lock(s);
    struct item *it = find_live(s, key, nkey, hv, now, &reason);
    if (it != NULL && (it->iflags & ITEM_STUB)) {
        shard_lru_bump(s, it);
        reason = CACHE_MISS_ON_DISK;
        it = NULL;
    }
    if (it != NULL) {
        if (touch) {
            item_set_exptime(it, exptime);
            changed = disk_mark_dirty(it);   /* the new expiry persists */
        }
        it->iflags |= ITEM_FETCHED;
        shard_lru_bump(s, it);
        item_ref(it);
    }
    shard_unlock(s);
    disk_put(changed);
    if (why != NULL)
        *why = reason;
    return it;
}

struct item *
cache_get(const char *key, uint8_t nkey, enum cache_miss *why)
{
    return get_common(key, nkey, false, 0, why);
}

struct item *
cache_get_touch(const char *key, uint8_t nkey, rel_time_t exptime,
                enum cache_miss *why)
{
    return get_common(key, nkey, true, exptime, why);
}

enum cache_result
cache_touch(const char *key, uint8_t nkey, rel_time_t exptime)
{
    enum cache_miss why;
    struct item *it = get_common(key, nkey, true, exptime, &why);
    if (it == NULL)
        return why == CACHE_MISS_ON_DISK ? CACHE_NEED_FETCH : CACHE_NOT_FOUND;
    item_unref(it);
    return CACHE_TOUCHED;
}

enum cache_result
cache_delete(const char *key, uint8_t nkey, uint64_t cas_in)
{
    uint32_t hv = cache_hash(key, nkey);
    struct shard *s = shard_of(hv);
    rel_time_t now = clock_op_now();
    enum cache_result res;

    /* While warmup runs, the deleted key must read "absent" rather than
     * "maybe on disk", or warmup would install the old version from disk.
     * The tombstone takes the key's place in the same critical section as
     * the unlink: installed after the lock was dropped, it would leave a
     * window in which cache_install() sees no key and revives it. */
    struct item *tomb = NULL;
    if (!disk_complete())
        tomb = disk_tombstone_alloc(key, nkey, hv);

    enum cache_miss why;
    shard_lock(s);
    struct item *it = find_live(s, key, nkey, hv, now, &why);
    if (it == NULL && why == CACHE_MISS_ON_DISK) {
        res = CACHE_NEED_FETCH;
    } else if (it == NULL) {
        res = CACHE_NOT_FOUND;
    } else if (cas_in != 0 && it->cas != cas_in) {
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

/*
 * memcached's safe_strtoull() on a value that is not NUL-terminated (the
 * "\r\n" after it reads as whitespace there): optional leading whitespace,
 * an optional sign, digits that fit in 64 bits, then whitespace or the end.
 * A '-' is accepted only when the negated result does not look negative as
 * a signed number (so "-0" is 0 and "-1" is refused), exactly as memcached.
 */
static bool
value_parse_u64(const char *p, size_t n, uint64_t *out)
{
    size_t i = 0;
    while (i < n && (p[i] == ' ' || (p[i] >= '\t' && p[i] <= '\r')))
        i++;
    bool negative = false;
    if (i < n && (p[i] == '+' || p[i] == '-')) {
        negative = p[i] == '-';
        i++;
    }
    size_t digits_start = i;
    uint64_t v = 0;
    while (i < n && p[i] >= '0' && p[i] <= '9') {
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false; /* ERANGE */
        v = v * 10 + d;
        i++;
    }
    if (i == digits_start)
        return false;
    if (i < n && !(p[i] == ' ' || (p[i] >= '\t' && p[i] <= '\r')))
        return false;
    if (negative) {
        v = 0 - v;
        if ((int64_t)v < 0)
            return false;
    }
    *out = v;
    return true;
}

enum cache_result
cache_delta(const char *key, uint8_t nkey, bool incr, uint64_t delta,
            uint64_t cas_in, uint64_t *value_out, uint64_t *cas_out)
{
    uint32_t hv = cache_hash(key, nkey);
    struct shard *s = shard_of(hv);

    for (;;) {
        rel_time_t now = clock_op_now();
        shard_lock(s);
        enum cache_miss why;
        struct item *old = find_live(s, key, nkey, hv, now, &why);
        if (needs_fetch(old, why)) {
            shard_unlock(s);
            return CACHE_NEED_FETCH;
        }
        enum cache_result res = CACHE_STORED;
        uint64_t value = 0;
        if (old == NULL)
            res = CACHE_NOT_FOUND;
        else if (old->nbytes == 0)
            res = CACHE_NON_NUMERIC;
        else if (cas_in != 0 && old->cas != cas_in)
            res = CACHE_EXISTS;
        else if (!value_parse_u64(item_value(old), old->nbytes, &value))
            res = CACHE_NON_NUMERIC;
        if (res != CACHE_STORED) {
            shard_unlock(s);
            return res;
        }
        item_ref(old);
        shard_lru_bump(s, old); /* keeps it off the tail while we allocate */
        shard_unlock(s);

        if (incr)
            value += delta; /* wraps at 2^64 */
        else
            value = delta > value ? 0 : value - delta;
        char buf[24];
        int len = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)value);
        /* memcached rewrites a number that got no longer in place, padded
         * with spaces ("110" decr 100 reads back as "10 "); clients see
         * that, so the new item keeps the old length the same way. */
        uint32_t vlen = (uint32_t)len <= old->nbytes ? old->nbytes : (uint32_t)len;

        bool too_large = false;
        struct item *nu = alloc_item(key, nkey, hv, old->flags,
                                      item_exptime(old), vlen, &too_large, true);
        if (nu == NULL) {
            item_unref(old);
            return CACHE_ENOMEM;
        }
        memcpy(item_value(nu), buf, (size_t)len);
        memset(item_value(nu) + len, ' ', vlen - (uint32_t)len);

        bool done = replace_if_current(s, old, nu, cas_out);
        if (done && value_out != NULL)
            *value_out = value;
        item_unref(old);
        item_unref(nu);
        if (done)
            return CACHE_STORED;
    }
}

