/*
 * front_meta.c: the meta commands of the text protocol (mg, ms, md, ma,
 * mn, me): maps each to a command of the core (process.h) and writes the
 * meta reply (status code, then the return flags asked for).
 */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "protocol/proto_text.h"
#include "server/conn.h"
#include "server/front.h"
#include "server/stats.h"

#define TS(c) ((c)->owner->stats)
#define TEMPORARY_FAILURE "SERVER_ERROR temporary failure"


struct meta_opts {
    bool ret_value, ret_cas, ret_flags, ret_key, ret_size, ret_ttl, quiet;
    bool has_ttl, has_cas, has_flags, has_initial, has_vivify;
    const char *opaque;
    uint8_t opaque_len;
    int64_t ttl;
    uint64_t cas, initial, delta;
    uint32_t client_flags;
    int64_t vivify_ttl;
    char mode;
    bool bad;
};

static bool
meta_num(const struct text_meta_flag *f, uint64_t *out)
{
    uint64_t v = 0;
    if (f->toklen == 0 || f->toklen > 20)
        return false;
    for (unsigned i = 0; i < f->toklen; i++) {
        char ch = f->tok[i];
        if (ch < '0' || ch > '9')
            return false;
        uint64_t nv = v * 10 + (uint64_t)(ch - '0');
        if (nv / 10 != v)
            return false;
        v = nv;
    }
    *out = v;
    return true;
}

static bool
meta_snum(const struct text_meta_flag *f, int64_t *out)
{
    struct text_meta_flag g = *f;
    bool neg = g.toklen > 0 && g.tok[0] == '-';
    uint64_t v;
    if (neg) {
        g.tok++;
        g.toklen--;
    }
    if (!meta_num(&g, &v) || v > INT64_MAX)
        return false;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return true;
}

static void
meta_parse(const struct text_req *req, struct meta_opts *o)
{
    memset(o, 0, sizeof(*o));
    for (unsigned i = 0; i < req->nmflags; i++) {
        const struct text_meta_flag *f = &req->mflags[i];
        uint64_t u;
        switch (f->flag) {
        case 'v': o->ret_value = true; break;
        case 'c': o->ret_cas = true; break;
        case 'f': o->ret_flags = true; break;
        case 'k': o->ret_key = true; break;
        case 's': o->ret_size = true; break;
        case 't': o->ret_ttl = true; break;
        case 'q': o->quiet = true; break;
        case 'O': o->opaque = f->tok; o->opaque_len = f->toklen; break;
        case 'T': o->has_ttl = true; o->bad |= !meta_snum(f, &o->ttl); break;
        case 'N': o->has_vivify = true; o->bad |= !meta_snum(f, &o->vivify_ttl); break;
        case 'C': o->has_cas = true; o->bad |= !meta_num(f, &o->cas); break;
        case 'E': break;   /* explicit new CAS: not supported, ignored */
        case 'F':
            o->has_flags = true;
            o->bad |= !meta_num(f, &u) || u > UINT32_MAX;
            o->client_flags = (uint32_t)u;
            break;
        case 'J': o->has_initial = true; o->bad |= !meta_num(f, &o->initial); break;
        case 'D': o->bad |= !meta_num(f, &o->delta); break;
        case 'M': o->mode = f->toklen == 1 ? f->tok[0] : '?'; break;
        case 'b': o->bad = true; break;   /* base64 keys: not supported */
        case 'h': case 'l': case 'I': case 'R': case 'u': case 'x':
            break;   /* accepted, no effect here */
        default: o->bad = true; break;
        }
    }
}

/* Appends the requested return flags (" c123 f0 ...") to the reply. */
static void
meta_ret_flags(struct conn *c, const struct meta_opts *o, struct item *it,
               uint64_t cas, const char *key, uint8_t nkey)
{
    char buf[PROTO_KEY_MAX + 128];
    size_t n = 0;
    if ((it != NULL || cas != 0) && o->ret_cas)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, " c%llu",
                              (unsigned long long)cas);
    if (it != NULL && o->ret_flags)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, " f%u", it->flags);
    if (it != NULL && o->ret_size)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, " s%u", it->nbytes);
    if (it != NULL && o->ret_ttl) {
        rel_time_t exp = atomic_load_explicit(&it->exptime, memory_order_relaxed);
        rel_time_t now = cache_now();
        long ttl = exp == 0 ? -1 : (exp > now ? (long)(exp - now) : 0);
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, " t%ld", ttl);
    }
    if (o->ret_key) {
        buf[n++] = ' ';
        buf[n++] = 'k';
        memcpy(buf + n, key, nkey);
        n += nkey;
    }
    if (o->opaque != NULL) {
        buf[n++] = ' ';
        buf[n++] = 'O';
        memcpy(buf + n, o->opaque, o->opaque_len);
        n += o->opaque_len;
    }
    buf[n++] = '\r';
    buf[n++] = '\n';
    conn_out_copy(c, buf, n);
}

static void
meta_status(struct conn *c, const struct meta_opts *o, const char *code,
            struct item *it, uint64_t cas, const char *key, uint8_t nkey)
{
    conn_out_copy(c, code, 2);
    meta_ret_flags(c, o, it, cas, key, nkey);
}

static void
do_mg(struct conn *c, const struct cmd_ctx *ctx, const struct text_req *req,
      const struct meta_opts *o)
{
    struct cmd_result r;
    cmd_get(ctx, req->key, req->nkey, o->has_ttl,
            o->has_ttl ? cache_realtime(o->ttl) : 0, true, &r);
    if (r.status == CMD_NEED_FETCH) {
        front_need_fetch(c, req->key, req->nkey);
        return;
    }
    if (r.status == CMD_TMPFAIL) {
        conn_out_line(c, TEMPORARY_FAILURE);
        return;
    }
    struct item *it = r.it;
    if (it == NULL) {
        if (!o->quiet)
            conn_out_copy(c, "EN\r\n", 4);
        return;
    }
    STAT_INCR(TS(c), get_hits);
    if (o->ret_value) {
        char hdr[32];
        int n = snprintf(hdr, sizeof(hdr), "VA %u", it->nbytes);
        conn_out_copy(c, hdr, (size_t)n);
        meta_ret_flags(c, o, it, it->cas, req->key, req->nkey);
        conn_out_item(c, it, item_value(it), (size_t)it->nbytes + 2);
    } else {
        meta_status(c, o, "HD", it, it->cas, req->key, req->nkey);
    }
    cmd_result_done(&r);
}

/* The status line of a failed meta command (NULL: parked for a fetch). */
static const char *
meta_error(struct conn *c, const struct text_req *req,
           const struct cmd_result *r)
{
    switch (r->status) {
    case CMD_NEED_FETCH:
        front_need_fetch(c, req->key, req->nkey);
        return NULL;
    case CMD_TMPFAIL: return TEMPORARY_FAILURE;
    case CMD_E2BIG: return "SERVER_ERROR object too large for cache";
    case CMD_NON_NUMERIC:
        return "CLIENT_ERROR cannot increment or decrement non-numeric value";
    default: return "SERVER_ERROR out of memory storing object";
    }
}

static void
do_ms(struct conn *c, const struct cmd_ctx *ctx, const struct text_req *req,
      const struct meta_opts *o)
{
    enum cache_store_op op;
    switch (o->mode) {
    case 0: case 'S': case 's': op = CACHE_SET; break;
    case 'E': case 'e': op = CACHE_ADD; break;
    case 'A': case 'a': op = CACHE_APPEND; break;
    case 'P': case 'p': op = CACHE_PREPEND; break;
    case 'R': case 'r': op = CACHE_REPLACE; break;
    default:
        conn_out_line(c, "CLIENT_ERROR invalid mode for ms");
        return;
    }
    if (o->has_cas && op == CACHE_SET)
        op = CACHE_CAS;
    struct cmd_result r;
    cmd_store(ctx, op, req->key, req->nkey, o->client_flags,
              cache_realtime(o->has_ttl ? o->ttl : 0), req->value, req->vlen,
              o->has_cas ? o->cas : 0, &r);
    const char *code;
    switch (r.status) {
    case CMD_OK: code = "HD"; break;
    case CMD_EXISTS: code = "EX"; break;
    case CMD_NOT_FOUND: code = "NF"; break;
    case CMD_NOT_STORED: code = "NS"; break;
    default: {
        const char *line = meta_error(c, req, &r);
        if (line != NULL)
            conn_out_line(c, line);
        return;
    }
    }
    if (!(o->quiet && r.status == CMD_OK))
        meta_status(c, o, code, NULL, r.cas, req->key, req->nkey);
}

static void
do_md(struct conn *c, const struct cmd_ctx *ctx, const struct text_req *req,
      const struct meta_opts *o)
{
    struct cmd_result r;
    cmd_delete(ctx, req->key, req->nkey, o->has_cas ? o->cas : 0, &r);
    if (r.status == CMD_NEED_FETCH || r.status == CMD_TMPFAIL) {
        const char *line = meta_error(c, req, &r);
        if (line != NULL)
            conn_out_line(c, line);
        return;
    }
    const char *code = r.status == CMD_OK ? "HD"
                     : r.status == CMD_EXISTS ? "EX" : "NF";
    if (o->quiet && r.status != CMD_EXISTS)
        return;
    meta_status(c, o, code, NULL, 0, req->key, req->nkey);
}

static void
do_ma(struct conn *c, const struct cmd_ctx *ctx, const struct text_req *req,
      const struct meta_opts *o)
{
    bool incr = true;
    switch (o->mode) {
    case 0: case 'I': case 'i': case '+': break;
    case 'D': case 'd': case '-': incr = false; break;
    default:
        conn_out_line(c, "CLIENT_ERROR invalid mode for ma");
        return;
    }
    bool have_delta = false;
    for (unsigned i = 0; i < req->nmflags; i++)
        have_delta |= req->mflags[i].flag == 'D';
    struct cmd_result r;
    cmd_delta(ctx, req->key, req->nkey, incr, have_delta ? o->delta : 1,
              o->has_cas ? o->cas : 0, o->has_vivify, o->initial,
              cache_realtime(o->vivify_ttl), &r);
    const char *code;
    switch (r.status) {
    case CMD_OK: code = "HD"; break;
    case CMD_MISS: code = "NF"; break;
    case CMD_EXISTS: code = "EX"; break;
    default: {
        const char *line = meta_error(c, req, &r);
        if (line != NULL)
            conn_out_line(c, line);
        return;
    }
    }
    if (o->quiet && (r.status == CMD_OK || r.status == CMD_MISS) && !o->ret_value)
        return;
    struct item *it = NULL;
    if (r.status == CMD_OK && (o->ret_cas || o->ret_ttl || o->ret_flags || o->ret_size))
        it = cache_get(req->key, req->nkey, NULL);
    if (r.status == CMD_OK && o->ret_value) {
        char num[24], hdr[32];
        size_t n = proto_text_u64toa(r.value, num);
        int h = snprintf(hdr, sizeof(hdr), "VA %zu", n);
        conn_out_copy(c, hdr, (size_t)h);
        meta_ret_flags(c, o, it, r.cas, req->key, req->nkey);
        num[n++] = '\r';
        num[n++] = '\n';
        conn_out_copy(c, num, n);
    } else {
        meta_status(c, o, code, it, r.cas, req->key, req->nkey);
    }
    if (it != NULL)
        cache_item_release(it);
}

static void
do_me(struct conn *c, const struct text_req *req)
{
    struct item *it = cache_get(req->key, req->nkey, NULL);
    if (it == NULL) {
        conn_out_copy(c, "EN\r\n", 4);
        return;
    }
    rel_time_t exp = atomic_load_explicit(&it->exptime, memory_order_relaxed);
    rel_time_t now = cache_now();
    char buf[PROTO_KEY_MAX + 160];
    int n = snprintf(buf, sizeof(buf), "ME %.*s exp=%ld la=%u cas=%llu fetch=no cls=1 size=%zu\r\n",
                     (int)it->nkey, item_key(it),
                     exp == 0 ? -1L : (long)(exp > now ? exp - now : 0),
                     now - it->time, (unsigned long long)it->cas,
                     cache_item_total_size(it));
    conn_out_copy(c, buf, (size_t)n);
    cache_item_release(it);
}

void
front_meta(struct conn *c, const struct text_req *req)
{
    struct meta_opts o;
    struct cmd_ctx ctx;
    struct cmd_env env;
    front_ctx(c, &ctx, &env);
    STAT_INCR(TS(c), cmd_meta);
    if (req->cmd == TEXT_MN) {
        conn_out_copy(c, "MN\r\n", 4);
        return;
    }
    if (req->cmd == TEXT_ME) {
        do_me(c, req);
        return;
    }
    meta_parse(req, &o);
    if (o.bad) {
        conn_out_line(c, "CLIENT_ERROR bad command line format");
        return;
    }
    switch (req->cmd) {
    case TEXT_MG: do_mg(c, &ctx, req, &o); break;
    case TEXT_MS: do_ms(c, &ctx, req, &o); break;
    case TEXT_MD: do_md(c, &ctx, req, &o); break;
    case TEXT_MA: do_ma(c, &ctx, req, &o); break;
    default: break;
    }
}
