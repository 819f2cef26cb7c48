/*
 * process.c: the command core (see process.h). Each command is written
 * once here; the binary, text and meta front ends only translate.
 *
 * Shape of every write: ask the connection for admission first (nothing
 * changes when backpressure refuses), then run the cache operation, then
 * count it. A cache answer of "the value is on disk" becomes
 * CMD_NEED_FETCH: the front end asks its connection to fetch the key and
 * the request runs again once the value is in memory (from the start; a
 * text multiget from the key that waited: server/conn_fetch.c).
 */
#include <config.h>

#include <string.h>

#include "protocol/proto_text.h"
#include "server/process.h"
#include "server/stats.h"
#include "server/stats_prefix.h"

static struct process_options options = {
    .flush_enabled = true, .dump_enabled = true, .cas_visible = true,
};

/* Under -C a client's non-zero CAS can match no item. */
#define CAS_NEVER UINT64_MAX

void
process_setup(const struct process_options *opts)
{
    options = *opts;
}

const struct process_options *
process_options(void)
{
    return &options;
}

uint64_t
cmd_visible_cas(uint64_t cas)
{
    return options.cas_visible ? cas : 0;
}

static uint64_t
cas_from_client(uint64_t cas_in)
{
    return options.cas_visible || cas_in == 0 ? cas_in : CAS_NEVER;
}

void
cmd_result_done(struct cmd_result *r)
{
    if (r->it != NULL)
        cache_item_release(r->it);
    r->it = NULL;
}

static void
result_init(struct cmd_result *r, enum cmd_status status)
{
    memset(r, 0, sizeof(*r));
    r->status = status;
}

static bool
admit(const struct cmd_ctx *ctx, struct cmd_result *r)
{
    if (ctx->env == NULL || ctx->env->admit_write == NULL ||
        ctx->env->admit_write(ctx->env->owner))
        return true;
    result_init(r, CMD_TMPFAIL);
    return false;
}

static struct item *
fetched(const struct cmd_ctx *ctx, const char *key, uint8_t nkey)
{
    if (ctx->env == NULL || ctx->env->fetched == NULL)
        return NULL;
    return ctx->env->fetched(ctx->env->owner, key, nkey);
}

/* ---- get ---- */

void
cmd_get(const struct cmd_ctx *ctx, const char *key, uint8_t nkey, bool touch,
        rel_time_t exptime, bool count_get, struct cmd_result *r)
{
    if (touch && !admit(ctx, r))   /* a new expiry is a write */
        return;
    result_init(r, CMD_OK);
    enum cache_miss why = CACHE_MISS_ABSENT;
    struct item *it = touch ? cache_get_touch(key, nkey, exptime, &why)
                            : cache_get(key, nkey, &why);
    /* A value fetched for this request may have been ejected again before
     * the request ran; a touch must reach the cache itself. */
    if (it == NULL && why == CACHE_MISS_ON_DISK && !touch)
        it = fetched(ctx, key, nkey);
    if (it == NULL && why == CACHE_MISS_ON_DISK) {
        r->status = CMD_NEED_FETCH;
        return;
    }
    if (touch) {
        STAT_INCR(ctx->ts, cmd_touch);
        STAT_PICK(ctx->ts, it != NULL, touch_hits, touch_misses);
    }
    if (count_get) {
        STAT_INCR(ctx->ts, cmd_get);
        stats_prefix_record_get(key, nkey, it != NULL);
    }
    if (it == NULL) {
        r->status = CMD_MISS;
        if (count_get) {
            STAT_INCR(ctx->ts, get_misses);
            if (why == CACHE_MISS_EXPIRED)
                STAT_INCR(ctx->ts, get_expired);
            else if (why == CACHE_MISS_FLUSHED)
                STAT_INCR(ctx->ts, get_flushed);
        }
        return;
    }
    if (count_get)
        STAT_INCR(ctx->ts, get_hits);
    r->it = it;
    r->cas = cmd_visible_cas(it->cas);
}

bool
cmd_get_on_disk(const char *key, uint8_t nkey)
{
    struct cache_walk_entry e;
    enum cache_miss why = CACHE_MISS_ABSENT;
    if (cache_peek(key, nkey, &e, &why))
        return e.stub;
    return why == CACHE_MISS_ON_DISK;
}

/* ---- storage ---- */

static enum cmd_status
from_cache(enum cache_result cr)
{
    switch (cr) {
    case CACHE_STORED: case CACHE_DELETED: case CACHE_TOUCHED: return CMD_OK;
    case CACHE_NOT_STORED: return CMD_NOT_STORED;
    case CACHE_EXISTS: return CMD_EXISTS;
    case CACHE_NOT_FOUND: return CMD_NOT_FOUND;
    case CACHE_NON_NUMERIC: return CMD_NON_NUMERIC;
    case CACHE_ENOMEM: return CMD_ENOMEM;
    case CACHE_E2BIG: return CMD_E2BIG;
    case CACHE_NEED_FETCH: return CMD_NEED_FETCH;
    }
    return CMD_ENOMEM;
}

void
cmd_store_too_large(const struct cmd_ctx *ctx, bool is_set, const char *key,
                    uint8_t nkey)
{
    STAT_INCR(ctx->ts, store_too_large);
    if (is_set && nkey > 0)
        cache_delete(key, nkey, 0);
}

void
cmd_mstore(const struct cmd_ctx *ctx, enum cache_store_op op, const char *key,
           uint8_t nkey, uint32_t flags, rel_time_t exptime, const char *value,
           uint32_t vlen, const struct cache_store_opts *o,
           struct cmd_result *r, struct cache_store_info *info)
{
    bool append = op == CACHE_APPEND || op == CACHE_PREPEND;
    bool too_large = false;
    memset(info, 0, sizeof(*info));
    if (!admit(ctx, r))
        return;
    result_init(r, CMD_OK);
    /* An append's own flags and expiry are used only when N creates the
     * key from it (meta); otherwise the old item's are kept. */
    bool own_meta = !append || o->vivify;
    struct item *it = cache_item_alloc(key, nkey, own_meta ? flags : 0,
                                       own_meta ? exptime : 0, vlen,
                                       &too_large);
    if (it == NULL) {
        STAT_INCR(ctx->ts, cmd_set);
        stats_prefix_record_set(key, nkey);
        STAT_PICK(ctx->ts, too_large, store_too_large, store_no_memory);
        if (op == CACHE_SET)
            cache_delete(key, nkey, 0);
        r->status = too_large ? CMD_E2BIG : CMD_ENOMEM;
        return;
    }
    memcpy(item_value(it), value, vlen);
    struct cache_store_opts so = *o;
    /* -C: memcached's cas command then matches nothing (EXISTS, or
     * NOT_FOUND for a missing key), whatever CAS it carries, and the CAS
     * of a binary set is ignored */
    if (!options.cas_visible)
        so.cas_in = op == CACHE_CAS ? CAS_NEVER : 0;
    enum cache_result cr = cache_store_ex(it, op, &so, info);
    cache_item_release(it);
    info->cas = cmd_visible_cas(info->cas);
    r->status = from_cache(cr);
    r->cas = cr == CACHE_STORED ? info->cas : 0;
    if (r->status == CMD_NEED_FETCH)
        return;   /* counted when it runs again */
    STAT_INCR(ctx->ts, cmd_set);
    stats_prefix_record_set(key, nkey);
    if (op == CACHE_CAS || o->cas_in != 0) {
        if (cr == CACHE_STORED)
            STAT_INCR(ctx->ts, cas_hits);
        else if (cr == CACHE_EXISTS)
            STAT_INCR(ctx->ts, cas_badval);
        else if (cr == CACHE_NOT_FOUND)
            STAT_INCR(ctx->ts, cas_misses);
    }
}

void
cmd_store(const struct cmd_ctx *ctx, enum cache_store_op op, const char *key,
          uint8_t nkey, uint32_t flags, rel_time_t exptime, const char *value,
          uint32_t vlen, uint64_t cas_in, struct cmd_result *r)
{
    struct cache_store_opts o = { .cas_in = cas_in };
    struct cache_store_info info;
    cmd_mstore(ctx, op, key, nkey, flags, exptime, value, vlen, &o, r, &info);
}

/* ---- delete, touch ---- */

void
cmd_mdelete(const struct cmd_ctx *ctx, const char *key, uint8_t nkey,
            const struct cache_delete_opts *o, struct cmd_result *r)
{
    if (!admit(ctx, r))
        return;
    result_init(r, CMD_OK);
    struct cache_delete_opts d = *o;
    d.cas_in = cas_from_client(d.cas_in);
    enum cache_result cr = cache_delete_ex(key, nkey, &d, &r->cas);
    r->cas = cmd_visible_cas(r->cas);
    if (cr == CACHE_NEED_FETCH) {
        r->status = CMD_NEED_FETCH;
        return;
    }
    stats_prefix_record_delete(key, nkey);
    /* memcached counts a CAS mismatch as neither hit nor miss */
    if (cr != CACHE_EXISTS && cr != CACHE_ENOMEM)
        STAT_PICK(ctx->ts, cr == CACHE_DELETED, delete_hits, delete_misses);
    r->status = cr == CACHE_DELETED ? CMD_OK
              : cr == CACHE_EXISTS ? CMD_EXISTS
              : cr == CACHE_ENOMEM ? CMD_ENOMEM : CMD_MISS;
}

void
cmd_delete(const struct cmd_ctx *ctx, const char *key, uint8_t nkey,
           uint64_t cas_in, struct cmd_result *r)
{
    struct cache_delete_opts o = { .cas_in = cas_in };
    cmd_mdelete(ctx, key, nkey, &o, r);
    r->cas = 0;
}

void
cmd_touch(const struct cmd_ctx *ctx, const char *key, uint8_t nkey,
          rel_time_t exptime, struct cmd_result *r)
{
    if (!admit(ctx, r))
        return;
    result_init(r, CMD_OK);
    enum cache_result cr = cache_touch(key, nkey, exptime);
    if (cr == CACHE_NEED_FETCH) {
        r->status = CMD_NEED_FETCH;
        return;
    }
    STAT_INCR(ctx->ts, cmd_touch);
    STAT_PICK(ctx->ts, cr == CACHE_TOUCHED, touch_hits, touch_misses);
    r->status = cr == CACHE_TOUCHED ? CMD_OK : CMD_MISS;
}

/* ---- incr/decr ---- */

void
cmd_mdelta(const struct cmd_ctx *ctx, const char *key, uint8_t nkey, bool incr,
           uint64_t delta, const struct cache_delta_opts *o,
           struct cmd_result *r, struct cache_delta_info *info)
{
    memset(info, 0, sizeof(*info));
    if (!admit(ctx, r))
        return;
    result_init(r, CMD_OK);
    struct cache_delta_opts d = *o;
    d.cas_in = cas_from_client(d.cas_in);
    enum cache_result cr = cache_delta_ex(key, nkey, incr, delta, &d, info);
    info->cas = cmd_visible_cas(info->cas);
    if (cr == CACHE_NEED_FETCH) {
        r->status = CMD_NEED_FETCH;
        return;
    }
    STAT_DELTA(ctx->ts, incr, cr == CACHE_STORED);
    r->status = cr == CACHE_NOT_FOUND ? CMD_MISS : from_cache(cr);
    r->value = info->value;
    r->cas = info->cas;
}

void
cmd_delta(const struct cmd_ctx *ctx, const char *key, uint8_t nkey, bool incr,
          uint64_t delta, uint64_t cas_in, bool create, uint64_t initial,
          rel_time_t exptime, struct cmd_result *r)
{
    struct cache_delta_opts o = {
        .cas_in = cas_in, .vivify = create, .vivify_exptime = exptime,
        .initial = initial,
    };
    struct cache_delta_info info;
    cmd_mdelta(ctx, key, nkey, incr, delta, &o, r, &info);
}

/* ---- mg ---- */

void
cmd_mget(const struct cmd_ctx *ctx, const char *key, uint8_t nkey,
         const struct cache_mget_opts *o, struct cmd_result *r,
         struct cache_mget_info *info)
{
    memset(info, 0, sizeof(*info));
    if ((o->touch || o->vivify) && !admit(ctx, r))
        return;
    result_init(r, CMD_OK);
    struct item *it = cache_mget(key, nkey, o, info);
    /* fetched for this request and lost again: a plain hit will do, but
     * T, N and R must decide on the cache's own item */
    if (it == NULL && info->why == CACHE_MISS_ON_DISK && !o->touch &&
        !o->vivify && !o->recache)
        it = fetched(ctx, key, nkey);
    if (it == NULL && info->why == CACHE_MISS_ON_DISK) {
        r->status = CMD_NEED_FETCH;
        return;
    }
    /* memcached: an mg with T counts as a touch, else as a get */
    if (o->touch) {
        STAT_INCR(ctx->ts, cmd_touch);
        STAT_PICK(ctx->ts, it != NULL, touch_hits, touch_misses);
    } else {
        STAT_INCR(ctx->ts, cmd_get);
        STAT_PICK(ctx->ts, it != NULL, get_hits, get_misses);
        if (it == NULL && info->why == CACHE_MISS_EXPIRED)
            STAT_INCR(ctx->ts, get_expired);
        else if (it == NULL && info->why == CACHE_MISS_FLUSHED)
            STAT_INCR(ctx->ts, get_flushed);
    }
    stats_prefix_record_get(key, nkey, it != NULL);
    if (it == NULL) {
        r->status = CMD_MISS;
        return;
    }
    r->it = it;
    r->cas = cmd_visible_cas(it->cas);
}

/* ---- flush_all ---- */

void
cmd_flush(const struct cmd_ctx *ctx, uint32_t delay_s, struct cmd_result *r)
{
    result_init(r, CMD_OK);
    if (!options.flush_enabled) {
        r->status = CMD_DISABLED;
        return;
    }
    STAT_INCR(ctx->ts, cmd_flush);
    if (delay_s > 0) {
        /* Items stored up to the second before the deadline are dead
         * once it passes (memcached: realtime(exptime) - 1). */
        rel_time_t when = cache_realtime((int64_t)delay_s) - 1;
        cache_flush(when);
        if (options.on_delayed_flush != NULL)
            options.on_delayed_flush(when);
    } else {
        cache_flush(cache_now());
    }
}
