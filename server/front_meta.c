/*
 * front_meta.c: the meta commands of the text protocol (mg, ms, md, ma,
 * mn, me). The request arrives parsed and validated (protocol/proto_meta.h:
 * struct meta_req, typed fields); each command maps its flags onto the
 * cache's meta options, runs through the command core (process.h) and has
 * its reply line composed by proto_meta_compose_rsp(), which writes the
 * return flags in the order the client gave them, as memcached does.
 *
 * Quiet mode (q) drops only the nominal reply, as memcached: mg's EN, ms's
 * and md's HD, ma's HD/VA for an existing item. Errors are always sent.
 */
#include <config.h>

#include <string.h>

#include "protocol/proto_meta.h"
#include "protocol/proto_text.h"
#include "server/conn.h"
#include "server/front.h"
#include "server/stats.h"

#define TEMPORARY_FAILURE "SERVER_ERROR temporary failure"

/* Seconds left of a rel_time_t expiry, memcached's way: -1 for none. */
static int64_t
ttl_left(rel_time_t exptime, rel_time_t now)
{
    if (exptime == 0)
        return -1;
    return exptime > now ? (int64_t)(exptime - now) : 0;
}

/* A TTL flag of the request as a rel_time_t (memcached's realtime()). */
static rel_time_t
meta_time(int32_t ttl)
{
    return cache_realtime((int64_t)ttl);
}

/* Where flag a comes before flag b on the line (both given). */
static bool
comes_before(const struct meta_req *m, char a, char b)
{
    for (unsigned i = 0; i < m->nret_order; i++) {
        if (m->ret_order[i] == a)
            return true;
        if (m->ret_order[i] == b)
            return false;
    }
    return false;
}

static void
out_rsp(struct conn *c, const struct meta_req *m, enum meta_status status,
        const struct meta_rsp *rsp)
{
    char *p = conn_out_reserve(c, PROTO_META_RSP_MAX);
    if (p == NULL)
        return;
    conn_out_commit(c, proto_meta_compose_rsp(p, m, status, rsp));
}

/* The line for a command that failed for a reason meta has no code for
 * (NULL: none, it parked for a fetch). */
static const char *
failure_line(struct conn *c, const struct meta_req *m,
             const struct cmd_result *r)
{
    switch (r->status) {
    case CMD_NEED_FETCH:
        front_need_fetch(c, m->key, m->nkey);
        return NULL;
    case CMD_TMPFAIL: return TEMPORARY_FAILURE;
    case CMD_E2BIG: return "SERVER_ERROR object too large for cache";
    case CMD_NON_NUMERIC:
        return "CLIENT_ERROR cannot increment or decrement non-numeric value";
    default: return "SERVER_ERROR out of memory storing object";
    }
}

static void
out_failure(struct conn *c, const struct meta_req *m,
            const struct cmd_result *r)
{
    const char *line = failure_line(c, m, r);
    if (line != NULL)
        conn_out_line(c, line);
}

/* ---- mg ---- */

static void
do_mg(struct conn *c, const struct cmd_ctx *ctx, const struct meta_req *m)
{
    struct cache_mget_opts o = {
        .no_bump = m->no_lru_bump,
        .touch = m->has_ttl, .exptime = m->has_ttl ? meta_time(m->ttl) : 0,
        .vivify = m->has_vivify,
        .vivify_exptime = m->has_vivify ? meta_time(m->vivify_ttl) : 0,
        .recache = m->has_recache,
        .recache_time = m->has_recache ? meta_time(m->recache_ttl) : 0,
        .key_binary = m->key_binary,
        .touch_before_recache = comes_before(m, 'T', 'R'),
        .touch_after_vivify = comes_before(m, 'N', 'T'),
    };
    struct cache_mget_info info;
    struct cmd_result r;
    cmd_mget(ctx, m->key, m->nkey, &o, &r, &info);
    if (r.status == CMD_MISS) {
        if (!m->quiet)
            out_rsp(c, m, META_RSP_EN, NULL);
        return;
    }
    if (r.status != CMD_OK) {
        out_failure(c, m, &r);
        return;
    }
    struct item *it = r.it;
    rel_time_t now = cache_now();
    rel_time_t exp = atomic_load_explicit(&it->exptime, memory_order_relaxed);
    struct meta_rsp rsp = {
        .vlen = it->nbytes,
        .cas = r.cas,
        .client_flags = it->flags,
        .ttl = info.created ? -1 : ttl_left(info.exptime_before, now),
        .ttl_after_set = ttl_left(o.exptime, now),
        .ttl_after_vivify = ttl_left(exp, now),
        .last_access = now >= info.last_access ? now - info.last_access : 0,
        .hit_before = info.fetched,
        .vivified = info.created,
        .won = info.won,
        .stale = info.stale,
        .won_by_other = info.token_sent,
        /* memcached's k echoes the item's key, base64 (and b) when it
         * was stored so, whatever this request's key was */
        .key = item_key(it), .nkey = it->nkey, .key_binary = info.key_binary,
    };
    if (!m->has_ttl && !info.created)
        rsp.ttl = ttl_left(exp, now);
    if (m->ret_value) {
        out_rsp(c, m, META_RSP_VA, &rsp);
        conn_out_item(c, it, item_value(it), (size_t)it->nbytes + 2);
    } else {
        out_rsp(c, m, META_RSP_HD, &rsp);
    }
    cmd_result_done(&r);
}

/* ---- ms ---- */

static void
do_ms(struct conn *c, const struct cmd_ctx *ctx, const struct meta_req *m)
{
    enum cache_store_op op;
    struct cache_store_opts o = {
        .invalidate = m->invalidate,
        .vivify = m->has_vivify,
        .vivify_exptime = m->has_vivify ? meta_time(m->vivify_ttl) : 0,
        .key_binary = m->key_binary,
    };
    /* memcached: C turns a set or replace into a CAS store; an add
     * ignores it; append and prepend check it */
    switch (m->set_mode) {
    case META_SET_ADD: op = CACHE_ADD; break;
    case META_SET_APPEND: op = CACHE_APPEND; break;
    case META_SET_PREPEND: op = CACHE_PREPEND; break;
    case META_SET_REPLACE:
        op = m->has_compare_cas ? CACHE_CAS : CACHE_REPLACE;
        break;
    default:
        op = m->has_compare_cas ? CACHE_CAS : CACHE_SET;
        break;
    }
    if (m->has_compare_cas && op != CACHE_ADD)
        o.cas_in = m->compare_cas;
    struct cache_store_info info;
    struct cmd_result r;
    cmd_mstore(ctx, op, m->key, m->nkey, m->client_flags,
               m->has_ttl ? meta_time(m->ttl) : 0, m->value, m->vlen, &o,
               &r, &info);
    enum meta_status status;
    switch (r.status) {
    case CMD_OK: status = META_RSP_HD; break;
    case CMD_EXISTS: status = META_RSP_EX; break;
    case CMD_NOT_FOUND: status = META_RSP_NF; break;
    case CMD_NOT_STORED: status = META_RSP_NS; break;
    default:
        out_failure(c, m, &r);
        return;
    }
    if (m->quiet && status == META_RSP_HD)
        return;
    /* memcached writes c on every ms reply: the new CAS, 0 unless stored */
    struct meta_rsp rsp = { .cas = r.status == CMD_OK ? info.cas : 0 };
    out_rsp(c, m, status, &rsp);
}

/* ---- md ---- */

static void
do_md(struct conn *c, const struct cmd_ctx *ctx, const struct meta_req *m)
{
    struct cache_delete_opts o = {
        .cas_in = m->has_compare_cas ? m->compare_cas : 0,
        .invalidate = m->invalidate,
        .touch = m->invalidate && m->has_ttl,
        .exptime = m->has_ttl ? meta_time(m->ttl) : 0,
    };
    struct cmd_result r;
    cmd_mdelete(ctx, m->key, m->nkey, &o, &r);
    enum meta_status status;
    switch (r.status) {
    case CMD_OK: status = META_RSP_HD; break;
    case CMD_EXISTS: status = META_RSP_EX; break;
    case CMD_MISS: status = META_RSP_NF; break;
    default:
        out_failure(c, m, &r);
        return;
    }
    if (m->quiet && status == META_RSP_HD)
        return;
    out_rsp(c, m, status, NULL);
}

/* ---- ma ---- */

static void
do_ma(struct conn *c, const struct cmd_ctx *ctx, const struct meta_req *m)
{
    struct cache_delta_opts o = {
        .cas_in = m->has_compare_cas ? m->compare_cas : 0,
        .touch = m->has_ttl, .exptime = m->has_ttl ? meta_time(m->ttl) : 0,
        .vivify = m->has_vivify,
        .vivify_exptime = m->has_vivify ? meta_time(m->vivify_ttl) : 0,
        .initial = m->initial,
        .touch_after_vivify = comes_before(m, 'N', 'T'),
        .key_binary = m->key_binary,
    };
    struct cache_delta_info info;
    struct cmd_result r;
    cmd_mdelta(ctx, m->key, m->nkey, !m->decr, m->delta, &o, &r, &info);
    enum meta_status status;
    switch (r.status) {
    case CMD_OK: status = m->ret_value ? META_RSP_VA : META_RSP_HD; break;
    case CMD_MISS: status = META_RSP_NF; break;
    case CMD_EXISTS: status = META_RSP_EX; break;
    case CMD_ENOMEM:
        conn_out_line(c, "SERVER_ERROR out of memory");
        return;
    default:
        out_failure(c, m, &r);
        return;
    }
    /* q hides the result for an existing item, not for one N created */
    if (m->quiet && r.status == CMD_OK && !info.created)
        return;
    char num[24];
    size_t n = proto_text_u64toa(info.value, num);
    rel_time_t now = cache_now();
    struct meta_rsp rsp = {
        .vlen = (uint32_t)n, .cas = info.cas,
        .ttl = ttl_left(info.exptime, now),
        .ttl_after_set = ttl_left(info.exptime, now),
        .ttl_after_vivify = ttl_left(info.exptime, now),
        .vivified = info.created,
    };
    out_rsp(c, m, status, r.status == CMD_OK ? &rsp : NULL);
    if (status == META_RSP_VA) {
        num[n++] = '\r';
        num[n++] = '\n';
        conn_out_copy(c, num, n);
    }
}

/* ---- me ---- */

static void
do_me(struct conn *c, const struct meta_req *m)
{
    struct cache_walk_entry e;
    enum cache_miss why = CACHE_MISS_ABSENT;
    if (!cache_peek(m->key, m->nkey, &e, &why)) {
        if (why == CACHE_MISS_ON_DISK) {
            front_need_fetch(c, m->key, m->nkey);
            return;
        }
        out_rsp(c, m, META_RSP_EN, NULL);
        return;
    }
    time_t now = cache_rel_to_unix(cache_now());
    struct meta_debug d = {
        /* memcached 1.6.18 prints now - exptime: minus the seconds left */
        .exp = e.exptime == 0 ? -1 : (int64_t)(now - e.exptime),
        .last_access = now >= e.last_access ? (uint64_t)(now - e.last_access) : 0,
        .cas = cmd_visible_cas(e.cas),
        .fetched = e.fetched,
        .slab_class = e.size_class + 1,
        .total_size = e.total_size,
    };
    char *p = conn_out_reserve(c, PROTO_META_DEBUG_MAX);
    if (p == NULL)
        return;
    /* the key as stored (base64 if it came so), as memcached prints it */
    conn_out_commit(c, proto_meta_compose_debug(p, e.key, e.nkey,
                                                e.key_binary, &d));
}

void
front_meta(struct conn *c, const struct text_req *req)
{
    const struct meta_req *m = &req->meta;
    struct cmd_ctx ctx;
    struct cmd_env env;
    front_ctx(c, &ctx, &env);
    STAT_INCR(ctx.ts, cmd_meta);
    switch (m->cmd) {
    case META_MN:
        out_rsp(c, m, META_RSP_MN, NULL);
        break;
    case META_ME:
        do_me(c, m);
        break;
    case META_MG:
        do_mg(c, &ctx, m);
        break;
    case META_MS:
        do_ms(c, &ctx, m);
        break;
    case META_MD:
        do_md(c, &ctx, m);
        break;
    case META_MA:
        do_ma(c, &ctx, m);
        break;
    case META_NONE:
        conn_out_line(c, "ERROR");
        break;
    }
}
