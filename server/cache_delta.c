/*
 * cache_delta.c: incr and decr (contract in cache.h), and ma's options,
 * written once (cache_delta_ex(); cache_delta() is it with a CAS only).
 *
 * memcached's do_add_delta(): the checks in its order (missing, empty,
 * CAS, not a number), a 64-bit value that wraps on incr and stops at 0 on
 * decr. memcached rewrites a result that is no longer than the old value
 * in place, padded with spaces; the cache links a new item of the old
 * length instead, and since to clients that is the same item changed in
 * place, it keeps the meta state (fetched, token sent, stale) too. A
 * longer result is a new item in memcached as well, with fresh state.
 *
 * ma's N: a miss creates the key with the initial value through
 * cache_store_ex(CACHE_ADD); if another client created it first, the
 * delta is applied to that one instead.
 */
#include <config.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "server/cache_priv.h"

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

/* ma N on a miss: CACHE_STORED (created), CACHE_NOT_STORED (someone else
 * created the key first: apply the delta to it), or an error. */
static enum cache_result
delta_vivify(const char *key, uint8_t nkey, uint32_t hv,
             const struct cache_delta_opts *o, struct cache_delta_info *info)
{
    char buf[24];
    int len = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)o->initial);
    rel_time_t exptime = o->touch && o->touch_after_vivify
        ? o->exptime : o->vivify_exptime;
    bool too_large = false;
    struct item *it = alloc_item(key, nkey, hv, 0, exptime, (uint32_t)len,
                                 &too_large, true);
    if (it == NULL)
        return too_large ? CACHE_E2BIG : CACHE_ENOMEM;
    memcpy(item_value(it), buf, (size_t)len);
    const struct cache_store_opts so = {
        .set_cas = o->set_cas, .new_cas = o->new_cas, .key_binary = o->key_binary,
    };
    struct cache_store_info si;
    enum cache_result res = cache_store_ex(it, CACHE_ADD, &so, &si);
    cache_item_release(it);
    if (res == CACHE_STORED) {
        info->value = o->initial;
        info->cas = si.cas;
        info->exptime = exptime;
        info->created = true;
    }
    return res;
}

enum cache_result
cache_delta_ex(const char *key, uint8_t nkey, bool incr, uint64_t delta,
               const struct cache_delta_opts *opts, struct cache_delta_info *info)
{
    static const struct cache_delta_opts none;
    const struct cache_delta_opts *o = opts != NULL ? opts : &none;
    uint32_t hv = cache_hash(key, nkey);
    struct shard *s = shard_of(hv);
    memset(info, 0, sizeof(*info));

    for (;;) {
        rel_time_t now = clock_op_now();
        shard_lock(s);
        enum cache_miss why;
        struct item *old = ops_find_live(s, key, nkey, hv, now, &why);
        if (ops_needs_fetch(old, why)) {
            shard_unlock(s);
            return CACHE_NEED_FETCH;
        }
        enum cache_result res = CACHE_STORED;
        uint64_t value = 0;
        if (old == NULL)
            res = CACHE_NOT_FOUND;
        else if (old->nbytes == 0)
            res = CACHE_NON_NUMERIC;
        else if (o->cas_in != 0 && old->cas != o->cas_in)
            res = CACHE_EXISTS;
        else if (!value_parse_u64(item_value(old), old->nbytes, &value))
            res = CACHE_NON_NUMERIC;
        if (res != CACHE_STORED) {
            shard_unlock(s);
            if (res == CACHE_NOT_FOUND && o->vivify) {
                res = delta_vivify(key, nkey, hv, o, info);
                if (res == CACHE_NOT_STORED)
                    continue;   /* created meanwhile: apply the delta */
            }
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
        bool in_place = (uint32_t)len <= old->nbytes;
        uint32_t vlen = in_place ? old->nbytes : (uint32_t)len;

        bool too_large = false;
        struct item *nu = alloc_item(key, nkey, hv, old->flags,
                                     item_exptime(old), vlen, &too_large, true);
        if (nu == NULL) {
            item_unref(old);
            return CACHE_ENOMEM;
        }
        memcpy(item_value(nu), buf, (size_t)len);
        memset(item_value(nu) + len, ' ', vlen - (uint32_t)len);

        const struct ops_version v = {
            .set_exptime = o->touch, .exptime = o->exptime,
            .keep = in_place ? ITEM_META_BITS : ITEM_KEY_BINARY,
            .set_cas = o->set_cas, .new_cas = o->new_cas,
        };
        bool done = ops_replace_if_current(s, old, nu, &v, &info->cas);
        if (done) {
            info->value = value;
            info->exptime = item_exptime(nu);
        }
        item_unref(old);
        item_unref(nu);
        if (done)
            return CACHE_STORED;
    }
}

enum cache_result
cache_delta(const char *key, uint8_t nkey, bool incr, uint64_t delta,
            uint64_t cas_in, uint64_t *value_out, uint64_t *cas_out)
{
    const struct cache_delta_opts o = { .cas_in = cas_in };
    struct cache_delta_info info;
    enum cache_result res = cache_delta_ex(key, nkey, incr, delta, &o, &info);
    if (res == CACHE_STORED) {
        if (value_out != NULL)
            *value_out = info.value;
        if (cas_out != NULL)
            *cas_out = info.cas;
    }
    return res;
}
