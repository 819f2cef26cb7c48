/*
 * process_text.c: runs text-protocol requests (classic and meta commands)
 * against the cache and writes memcached's reply lines.
 *
 * One call handles one request (proto_text_parse_req decides where it ends).
 * Values are never copied into the reply: a VALUE line is followed by a
 * reference to the item's value, which already ends in "\r\n".
 */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "protocol/proto_text.h"
#include "server/cache.h"
#include "server/conn.h"
#include "server/persist.h"
#include "server/process.h"
#include "server/stats.h"
#include "server/worker.h"
#include "util/log.h"

const char process_version[] = "1.6.0-mckv-" PACKAGE_VERSION;

#define TS(c) (&(c)->worker->stats)

static void
reply(struct conn *c, bool noreply, const char *line)
{
    if (!noreply)
        conn_out_line(c, line);
}

#define TEMPORARY_FAILURE "SERVER_ERROR temporary failure"

static bool
admit_write(struct conn *c, bool noreply)
{
    if (conn_admit_write(c))
        return true;
    reply(c, noreply, TEMPORARY_FAILURE);
    return false;
}

/* ---- retrieval ---- */

static void
out_value(struct conn *c, struct item *it, bool with_cas)
{
    char *hdr = conn_out_reserve(c, PROTO_TEXT_VALUE_HDR_MAX);
    if (hdr == NULL)
        return;
    size_t n = proto_text_compose_value_hdr(hdr, item_key(it), it->nkey,
                                            it->flags, it->nbytes, with_cas,
                                            it->cas);
    conn_out_commit(c, n);
    conn_out_item(c, it, item_value(it), (size_t)it->nbytes + 2);
}

static void
count_miss(struct conn *c, enum cache_miss why)
{
    STAT_INCR(TS(c), get_misses);
    if (why == CACHE_MISS_EXPIRED)
        STAT_INCR(TS(c), get_expired);
    else if (why == CACHE_MISS_FLUSHED)
        STAT_INCR(TS(c), get_flushed);
}

static void
do_get(struct conn *c, const struct text_req *req)
{
    bool touch = req->cmd == TEXT_GAT || req->cmd == TEXT_GATS;
    bool with_cas = req->cmd == TEXT_GETS || req->cmd == TEXT_GATS;
    rel_time_t exptime = touch ? cache_realtime(req->exptime) : 0;
    size_t cursor = 0;
    const char *key;
    uint8_t nkey;

    while (proto_text_next_key(req, &cursor, &key, &nkey)) {
        enum cache_miss why = CACHE_MISS_ABSENT;
        struct item *it = touch ? cache_get_touch(key, nkey, exptime, &why)
                                : cache_get(key, nkey, &why);
        if (touch) {
            STAT_INCR(TS(c), cmd_touch);
            STAT_PICK(TS(c), it != NULL, touch_hits, touch_misses);
        }
        STAT_INCR(TS(c), cmd_get);
        if (it == NULL && why == CACHE_MISS_ON_DISK && !touch)
            it = conn_fetched(c, key, nkey);
        if (it == NULL && why == CACHE_MISS_ON_DISK) {
            conn_need_fetch(c, key, nkey);
            continue;
        }
        if (it == NULL) {
            count_miss(c, why);
            continue;
        }
        STAT_INCR(TS(c), get_hits);
        out_value(c, it, with_cas);
        cache_item_release(it);
    }
    conn_out_copy(c, "END\r\n", 5);
}

/* ---- storage ---- */

static const char *
store_reply(enum cache_result r)
{
    switch (r) {
    case CACHE_STORED: return "STORED";
    case CACHE_EXISTS: return "EXISTS";
    case CACHE_NOT_FOUND: return "NOT_FOUND";
    case CACHE_E2BIG: return "SERVER_ERROR object too large for cache";
    case CACHE_ENOMEM: return "SERVER_ERROR out of memory storing object";
    default: return "NOT_STORED";
    }
}

/* Allocates an item holding the request's value. NULL with *err set to the
 * reply line when it cannot. */
static struct item *
alloc_value(struct conn *c, const char *key, uint8_t nkey, uint32_t flags,
            int64_t exptime, const char *value, uint32_t vlen, const char **err)
{
    bool too_large = false;
    struct item *it = cache_item_alloc(key, nkey, flags, cache_realtime(exptime),
                                       vlen, &too_large);
    if (it == NULL) {
        if (too_large) {
            STAT_INCR(TS(c), store_too_large);
            *err = "SERVER_ERROR object too large for cache";
        } else {
            STAT_INCR(TS(c), store_no_memory);
            *err = "SERVER_ERROR out of memory storing object";
        }
        return NULL;
    }
    memcpy(item_value(it), value, vlen);
    return it;
}

static enum cache_result
store(struct conn *c, struct item *it, enum cache_store_op op, uint64_t cas_in,
      uint64_t *cas_out)
{
    enum cache_result r = cache_store(it, op, cas_in, cas_out);
    STAT_INCR(TS(c), cmd_set);
    if (op == CACHE_CAS) {
        if (r == CACHE_STORED)
            STAT_INCR(TS(c), cas_hits);
        else if (r == CACHE_EXISTS)
            STAT_INCR(TS(c), cas_badval);
        else if (r == CACHE_NOT_FOUND)
            STAT_INCR(TS(c), cas_misses);
    }
    return r;
}

static void
do_store(struct conn *c, const struct text_req *req)
{
    static const enum cache_store_op ops[] = {
        [TEXT_SET] = CACHE_SET, [TEXT_ADD] = CACHE_ADD,
        [TEXT_REPLACE] = CACHE_REPLACE, [TEXT_APPEND] = CACHE_APPEND,
        [TEXT_PREPEND] = CACHE_PREPEND, [TEXT_CAS] = CACHE_CAS,
    };
    enum cache_store_op op = ops[req->cmd];
    const char *err = NULL;
    if (!admit_write(c, req->noreply))
        return;
    struct item *it = alloc_value(c, req->key, req->nkey, req->flags,
                                  req->exptime, req->value, req->vlen, &err);
    if (it == NULL) {
        /* memcached drops the old value of a failed set so that a stale
         * value is not served after the client was told it failed. */
        if (op == CACHE_SET)
            cache_delete(req->key, req->nkey, 0);
        reply(c, req->noreply, err);
        return;
    }
    uint64_t cas = 0;
    enum cache_result r = store(c, it, op,
                                op == CACHE_CAS ? req->cas_unique : 0, &cas);
    cache_item_release(it);
    if (r == CACHE_NEED_FETCH) {
        conn_need_fetch(c, req->key, req->nkey);
        return;
    }
    reply(c, req->noreply, store_reply(r));
}

static void
do_delete(struct conn *c, const struct text_req *req)
{
    if (!admit_write(c, req->noreply))
        return;
    enum cache_result r = cache_delete(req->key, req->nkey, 0);
    if (r == CACHE_NEED_FETCH) {
        conn_need_fetch(c, req->key, req->nkey);
        return;
    }
    if (r == CACHE_DELETED) {
        STAT_INCR(TS(c), delete_hits);
        reply(c, req->noreply, "DELETED");
    } else {
        STAT_INCR(TS(c), delete_misses);
        reply(c, req->noreply, "NOT_FOUND");
    }
}

static void
do_delta(struct conn *c, const struct text_req *req)
{
    bool incr = req->cmd == TEXT_INCR;
    uint64_t value = 0, cas = 0;
    if (!admit_write(c, req->noreply))
        return;
    enum cache_result r = cache_delta(req->key, req->nkey, incr, req->delta, 0,
                                      &value, &cas);
    switch (r) {
    case CACHE_NEED_FETCH:
        conn_need_fetch(c, req->key, req->nkey);
        break;
    case CACHE_STORED: {
        STAT_PICK(TS(c), incr, incr_hits, decr_hits);
        if (!req->noreply) {
            char buf[24];
            size_t n = proto_text_u64toa(value, buf);
            buf[n++] = '\r';
            buf[n++] = '\n';
            conn_out_copy(c, buf, n);
        }
        break;
    }
    case CACHE_NOT_FOUND:
        STAT_PICK(TS(c), incr, incr_misses, decr_misses);
        reply(c, req->noreply, "NOT_FOUND");
        break;
    case CACHE_NON_NUMERIC:
        reply(c, req->noreply,
              "CLIENT_ERROR cannot increment or decrement non-numeric value");
        break;
    default:
        reply(c, req->noreply, "SERVER_ERROR out of memory");
        break;
    }
}

static void
do_touch(struct conn *c, const struct text_req *req)
{
    if (!admit_write(c, req->noreply))
        return;
    enum cache_result r = cache_touch(req->key, req->nkey,
                                      cache_realtime(req->exptime));
    if (r == CACHE_NEED_FETCH) {
        conn_need_fetch(c, req->key, req->nkey);
        return;
    }
    STAT_INCR(TS(c), cmd_touch);
    if (r == CACHE_TOUCHED) {
        STAT_INCR(TS(c), touch_hits);
        reply(c, req->noreply, "TOUCHED");
    } else {
        STAT_INCR(TS(c), touch_misses);
        reply(c, req->noreply, "NOT_FOUND");
    }
}

static void
do_flush(struct conn *c, const struct text_req *req)
{
    STAT_INCR(TS(c), cmd_flush);
    if (req->has_delay && req->delay > 0) {
        cache_flush(cache_realtime(req->delay) - 1);
        persist_schedule_flush(cache_realtime(req->delay) - 1);
    }
    else
        cache_flush(cache_now());
    reply(c, req->noreply, "OK");
}

static void
text_stat_emit(void *ctx, const char *name, const char *value)
{
    struct conn *c = ctx;
    size_t need = strlen(name) + strlen(value) + 8;
    char *p = conn_out_reserve(c, need);
    if (p == NULL)
        return;
    conn_out_commit(c, proto_text_compose_stat(p, need, name, value));
}

static void
do_stats(struct conn *c, const struct text_req *req)
{
    const char *arg = req->arg;
    size_t len = req->arglen;
    while (len > 0 && arg[len - 1] == ' ')
        len--;
    if (len == 5 && memcmp(arg, "reset", 5) == 0) {
        stats_group(arg, len, text_stat_emit, c);
        conn_out_line(c, "RESET");
        return;
    }
    if (!stats_group(arg, len, text_stat_emit, c)) {
        conn_out_line(c, "ERROR");
        return;
    }
    conn_out_copy(c, "END\r\n", 5);
}

/* ---- meta commands ---- */

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
    if (it != NULL && o->ret_cas)
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
do_mg(struct conn *c, const struct text_req *req, const struct meta_opts *o)
{
    enum cache_miss why = CACHE_MISS_ABSENT;
    struct item *it = o->has_ttl
        ? cache_get_touch(req->key, req->nkey, cache_realtime(o->ttl), &why)
        : cache_get(req->key, req->nkey, &why);
    STAT_INCR(TS(c), cmd_get);
    if (o->has_ttl)
        STAT_INCR(TS(c), cmd_touch);
    if (it == NULL && why == CACHE_MISS_ON_DISK && !o->has_ttl)
        it = conn_fetched(c, req->key, req->nkey);
    if (it == NULL && why == CACHE_MISS_ON_DISK) {
        conn_need_fetch(c, req->key, req->nkey);
        return;
    }
    if (it == NULL) {
        count_miss(c, why);
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
    cache_item_release(it);
}

static void
do_ms(struct conn *c, const struct text_req *req, const struct meta_opts *o)
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
    const char *err = NULL;
    if (!admit_write(c, false))
        return;
    struct item *it = alloc_value(c, req->key, req->nkey, o->client_flags,
                                  o->has_ttl ? o->ttl : 0, req->value,
                                  req->vlen, &err);
    if (it == NULL) {
        conn_out_line(c, err);
        return;
    }
    uint64_t cas = 0;
    enum cache_result r = store(c, it, op, o->has_cas ? o->cas : 0, &cas);
    if (r == CACHE_NEED_FETCH) {
        cache_item_release(it);
        conn_need_fetch(c, req->key, req->nkey);
        return;
    }
    const char *code;
    switch (r) {
    case CACHE_STORED: code = "HD"; break;
    case CACHE_EXISTS: code = "EX"; break;
    case CACHE_NOT_FOUND: code = "NF"; break;
    case CACHE_ENOMEM:
    case CACHE_E2BIG:
        cache_item_release(it);
        conn_out_line(c, store_reply(r));
        return;
    default: code = "NS"; break;
    }
    if (!(o->quiet && r == CACHE_STORED))
        meta_status(c, o, code, r == CACHE_STORED ? it : NULL, cas, req->key,
                    req->nkey);
    cache_item_release(it);
}

static void
do_md(struct conn *c, const struct text_req *req, const struct meta_opts *o)
{
    if (!admit_write(c, false))
        return;
    enum cache_result r = cache_delete(req->key, req->nkey, o->has_cas ? o->cas : 0);
    if (r == CACHE_NEED_FETCH) {
        conn_need_fetch(c, req->key, req->nkey);
        return;
    }
    const char *code = r == CACHE_DELETED ? "HD" : r == CACHE_EXISTS ? "EX" : "NF";
    STAT_PICK(TS(c), r == CACHE_DELETED, delete_hits, delete_misses);
    if (o->quiet && r != CACHE_EXISTS)
        return;
    meta_status(c, o, code, NULL, 0, req->key, req->nkey);
}

static void
do_ma(struct conn *c, const struct text_req *req, const struct meta_opts *o)
{
    bool incr = true;
    switch (o->mode) {
    case 0: case 'I': case 'i': case '+': break;
    case 'D': case 'd': case '-': incr = false; break;
    default:
        conn_out_line(c, "CLIENT_ERROR invalid mode for ma");
        return;
    }
    uint64_t delta = o->delta, value = 0, cas = 0;
    bool have_delta = false;
    for (unsigned i = 0; i < req->nmflags; i++)
        have_delta |= req->mflags[i].flag == 'D';
    if (!have_delta)
        delta = 1;
    enum cache_result r;
    if (!admit_write(c, false))
        return;
    for (int attempt = 0; ; attempt++) {
        r = cache_delta(req->key, req->nkey, incr, delta,
                        o->has_cas ? o->cas : 0, &value, &cas);
        if (r == CACHE_NEED_FETCH) {
            conn_need_fetch(c, req->key, req->nkey);
            return;
        }
        if (r != CACHE_NOT_FOUND || !o->has_vivify || attempt > 0)
            break;
        char num[24];
        size_t n = proto_text_u64toa(o->initial, num);
        const char *err = NULL;
        struct item *it = alloc_value(c, req->key, req->nkey, 0, o->vivify_ttl,
                                      num, (uint32_t)n, &err);
        if (it == NULL) {
            conn_out_line(c, err);
            return;
        }
        r = cache_store(it, CACHE_ADD, 0, &cas);
        cache_item_release(it);
        if (r == CACHE_STORED) {
            value = o->initial;
            break;
        }
    }
    STAT_DELTA(TS(c), incr, r == CACHE_STORED);
    const char *code;
    switch (r) {
    case CACHE_STORED: code = "HD"; break;
    case CACHE_NOT_FOUND: code = "NF"; break;
    case CACHE_EXISTS: code = "EX"; break;
    case CACHE_NON_NUMERIC:
        conn_out_line(c, "CLIENT_ERROR cannot increment or decrement non-numeric value");
        return;
    default:
        conn_out_line(c, "SERVER_ERROR out of memory");
        return;
    }
    if (o->quiet && (r == CACHE_STORED || r == CACHE_NOT_FOUND) && !o->ret_value)
        return;
    struct item *it = NULL;
    if (r == CACHE_STORED && (o->ret_cas || o->ret_ttl || o->ret_flags || o->ret_size))
        it = cache_get(req->key, req->nkey, NULL);
    if (r == CACHE_STORED && o->ret_value) {
        char num[24], hdr[32];
        size_t n = proto_text_u64toa(value, num);
        int h = snprintf(hdr, sizeof(hdr), "VA %zu", n);
        conn_out_copy(c, hdr, (size_t)h);
        meta_ret_flags(c, o, it, cas, req->key, req->nkey);
        num[n++] = '\r';
        num[n++] = '\n';
        conn_out_copy(c, num, n);
    } else {
        meta_status(c, o, code, it, cas, req->key, req->nkey);
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

static void
do_meta(struct conn *c, const struct text_req *req)
{
    struct meta_opts o;
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
    case TEXT_MG: do_mg(c, req, &o); break;
    case TEXT_MS: do_ms(c, req, &o); break;
    case TEXT_MD: do_md(c, req, &o); break;
    case TEXT_MA: do_ma(c, req, &o); break;
    default: break;
    }
}

/* ---- dispatch ---- */

enum process_result
process_text(struct conn *c, size_t *need)
{
    struct text_req req;
    size_t consumed = 0;
    const char *errmsg = NULL;
    const char *buf = c->rbuf + c->rstart;
    size_t len = c->rend - c->rstart;

    *need = 0;
    proto_parse rc = proto_text_parse_req(&req, buf, len, c->worker->item_size_max,
                                          &consumed, &errmsg);
    switch (rc) {
    case PARSE_EUNFIN:
        return PROCESS_NEED_MORE;
    case PARSE_EOVERSIZE:
        c->rstart += consumed;
        c->swallow = (uint64_t)req.vlen + 2;
        STAT_INCR(TS(c), store_too_large);
        if (req.cmd == TEXT_SET && req.nkey > 0)
            cache_delete(req.key, req.nkey, 0);
        if (!req.noreply)
            conn_out_line(c, "SERVER_ERROR object too large for cache");
        return PROCESS_OK;
    case PARSE_EINVALID:
        c->rstart += consumed;
        STAT_INCR(TS(c), protocol_errors);
        /* memcached's noreply silences error lines too */
        reply(c, req.noreply, errmsg != NULL ? errmsg : "ERROR");
        return PROCESS_OK;
    case PARSE_EFATAL:
        STAT_INCR(TS(c), protocol_errors);
        if (errmsg != NULL && errmsg[0] != '\0')   /* "": close silently */
            conn_out_line(c, errmsg);
        c->rstart = c->rend;
        return PROCESS_CLOSE;
    case PARSE_OK:
        break;
    }
    size_t start = c->rstart;
    struct conn_out_mark mark;
    conn_out_mark(c, &mark);
    c->rstart += consumed;
    log_debug("<%d %.*s", c->fd, (int)(memchr(buf, '\n', consumed) != NULL
              ? (const char *)memchr(buf, '\n', consumed) - buf : 0), buf);

    switch (req.cmd) {
    case TEXT_GET: case TEXT_GETS: case TEXT_MG:
        c->cmd_class = CMD_CLASS_GET;
        break;
    case TEXT_SET: case TEXT_ADD: case TEXT_REPLACE: case TEXT_APPEND:
    case TEXT_PREPEND: case TEXT_CAS: case TEXT_MS:
        c->cmd_class = CMD_CLASS_SET;
        break;
    case TEXT_DELETE: case TEXT_MD:
        c->cmd_class = CMD_CLASS_DELETE;
        break;
    case TEXT_INCR: case TEXT_DECR: case TEXT_MA:
        c->cmd_class = CMD_CLASS_DELTA;
        break;
    case TEXT_TOUCH: case TEXT_GAT: case TEXT_GATS:
        c->cmd_class = CMD_CLASS_TOUCH;
        break;
    default:
        break;
    }
    switch (req.cmd) {
    case TEXT_GET: case TEXT_GETS: case TEXT_GAT: case TEXT_GATS:
        do_get(c, &req);
        break;
    case TEXT_SET: case TEXT_ADD: case TEXT_REPLACE: case TEXT_APPEND:
    case TEXT_PREPEND: case TEXT_CAS:
        do_store(c, &req);
        break;
    case TEXT_DELETE:
        do_delete(c, &req);
        break;
    case TEXT_INCR: case TEXT_DECR:
        do_delta(c, &req);
        break;
    case TEXT_TOUCH:
        do_touch(c, &req);
        break;
    case TEXT_FLUSH_ALL:
        do_flush(c, &req);
        break;
    case TEXT_STATS:
        do_stats(c, &req);
        break;
    case TEXT_VERSION: {
        char line[64];
        snprintf(line, sizeof(line), "VERSION %s", process_version);
        conn_out_line(c, line);
        break;
    }
    case TEXT_VERBOSITY:
        log_set_verbosity((int)req.level);
        reply(c, req.noreply, "OK");
        break;
    case TEXT_QUIT:
        return PROCESS_CLOSE;
    case TEXT_MG: case TEXT_MS: case TEXT_MD: case TEXT_MA: case TEXT_MN:
    case TEXT_ME:
        do_meta(c, &req);
        break;
    case TEXT_UNKNOWN:
        conn_out_line(c, "ERROR");
        break;
    }
    switch (conn_park_settle(c, &mark, start)) {
    case CONN_PARK_WAIT:
        return PROCESS_PARKED;
    case CONN_PARK_FAIL:
        reply(c, req.noreply, TEMPORARY_FAILURE);
        break;
    case CONN_PARK_NONE:
        break;
    }
    return PROCESS_OK;
}
