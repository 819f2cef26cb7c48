/*
 * front_text.c: the text protocol front end (classic commands; meta
 * commands go to front_meta.c). Maps each request to a command of the
 * core (process.h) and writes memcached's reply lines.
 *
 * One call handles one request (proto_text_parse_req decides where it ends).
 * Values are never copied into the reply: a VALUE line is followed by a
 * reference to the item's value, which already ends in "\r\n".
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/proto_text.h"
#include "server/cache.h"
#include "server/conn.h"
#include "server/front.h"
#include "server/stats.h"
#include "server/stats_prefix.h"
#include "util/log.h"
#include "util/version.h"

#define TS(c) ((c)->owner->stats)

static void
reply(struct conn *c, bool noreply, const char *line)
{
    if (!noreply)
        conn_out_line(c, line);
}

#define TEMPORARY_FAILURE "SERVER_ERROR temporary failure"

/* The reply line of a command that did not succeed (NULL: none, it parked
 * for a fetch). */
static const char *
status_line(struct conn *c, const char *key, uint8_t nkey,
            const struct cmd_result *r)
{
    switch (r->status) {
    case CMD_OK: return "STORED";
    case CMD_MISS: case CMD_NOT_FOUND: return "NOT_FOUND";
    case CMD_NOT_STORED: return "NOT_STORED";
    case CMD_EXISTS: return "EXISTS";
    case CMD_NON_NUMERIC:
        return "CLIENT_ERROR cannot increment or decrement non-numeric value";
    case CMD_E2BIG: return "SERVER_ERROR object too large for cache";
    case CMD_ENOMEM: return "SERVER_ERROR out of memory storing object";
    case CMD_TMPFAIL: return TEMPORARY_FAILURE;
    case CMD_DISABLED: return "CLIENT_ERROR flush_all not allowed";
    case CMD_NEED_FETCH:
        front_need_fetch(c, key, nkey);
        return NULL;
    }
    return "SERVER_ERROR unknown";
}

static void
status_reply(struct conn *c, const struct text_req *req,
             const struct cmd_result *r, const char *ok)
{
    const char *line = r->status == CMD_OK ? ok
                       : status_line(c, req->key, req->nkey, r);
    if (line != NULL)
        reply(c, req->noreply, line);
}

/* ---- retrieval ---- */

static void
out_value(struct conn *c, struct item *it, bool with_cas, uint64_t cas)
{
    char *hdr = conn_out_reserve(c, PROTO_TEXT_VALUE_HDR_MAX);
    if (hdr == NULL)
        return;
    size_t n = proto_text_compose_value_hdr(hdr, item_key(it), it->nkey,
                                            it->flags, it->nbytes, with_cas,
                                            cas);
    conn_out_commit(c, n);
    conn_out_item(c, it, item_value(it), (size_t)it->nbytes + 2);
}

/* While a multiget waits (for a value, or for its output to drain), it
 * fetches the values on disk among the keys after `from`, within the
 * connection's window. m->ahead only moves forward: each key is looked at
 * once whatever the number of runs. */
static void
prefetch_ahead(struct conn *c, const struct text_req *req, size_t from)
{
    struct conn_mget *m = &c->mget;
    size_t p = m->ahead > from ? m->ahead : from;
    const char *key;
    uint8_t nkey;
    while (conn_prefetch_room(c)) {
        size_t before = p;
        if (!proto_text_next_key(req, &p, &key, &nkey))
            break;
        if (cmd_get_on_disk(key, nkey) && !conn_prefetch(c, key, nkey)) {
            p = before;   /* the queue is full: again at the next run */
            break;
        }
    }
    m->ahead = p;
}

/*
 * get, gets, gat, gats, answered in pieces (struct conn_mget in conn.h):
 * from the key where the previous run stopped, each key's VALUE is queued
 * in order; the run stops at the first key that waits for a fetch, or once
 * the output passes CONN_OUT_HIGH, and keeps what it queued (PARKED; the
 * caller leaves the request unconsumed). END when every key is answered.
 *
 * The values of a get or gets of several keys are fetched for this reply
 * only (CONN_FETCH_STREAM: not made resident unless memory has room
 * without evicting), ahead of the key being answered: a multiget of more
 * than memory then streams instead of evicting its own values. One key,
 * or a touch (which must reach the cache's own item), is fetched into the
 * cache as any single get.
 *
 * A key that cannot be had (a disk read failed, its value was lost again
 * after several fetches, the fetch queue is full, or a touch is refused
 * by backpressure) ends the reply with SERVER_ERROR temporary failure
 * after the values already queued, and without END: memcached's text
 * protocol has no per-key error, and a miss would say the key does not
 * exist, which the server does not know.
 */
static enum conn_req
do_get(struct conn *c, const struct cmd_ctx *ctx, const struct text_req *req)
{
    bool touch = req->cmd == TEXT_GAT || req->cmd == TEXT_GATS;
    bool with_cas = req->cmd == TEXT_GETS || req->cmd == TEXT_GATS;
    bool stream = !touch && req->nkeys > 1;
    rel_time_t exptime = touch ? cache_realtime(req->exptime) : 0;
    struct conn_mget *m = &c->mget;
    size_t cursor = m->active ? m->cursor : 0;
    const char *key;
    uint8_t nkey;

    for (;;) {
        size_t here = cursor;
        if (!proto_text_next_key(req, &cursor, &key, &nkey))
            break;
        if (c->out_pending >= CONN_OUT_HIGH) {
            cursor = here;   /* the socket drains first */
            goto pause;
        }
        struct cmd_result r;
        cmd_get(ctx, key, nkey, touch, exptime, true, &r);
        if (r.status == CMD_NEED_FETCH) {
            if (conn_mget_wait(c, key, nkey, stream, here < m->ahead)
                != CONN_PARK_WAIT)
                goto fail;
            if (m->ahead < cursor)
                m->ahead = cursor;   /* this key is asked for */
            cursor = here;
            goto pause;
        }
        if (r.status == CMD_TMPFAIL)   /* gat refused by backpressure */
            goto fail;
        /* answered: a copy of it fetched ahead is not needed any more */
        conn_hold_drop(c, key, nkey);
        m->tries = 0;
        if (r.it != NULL)
            out_value(c, r.it, with_cas, r.cas);
        cmd_result_done(&r);
    }
    conn_out_copy(c, "END\r\n", 5);
    conn_mget_end(c);
    return CONN_REQ_OK;

pause:
    m->active = true;
    m->cursor = cursor;
    if (stream)
        prefetch_ahead(c, req, cursor);
    return CONN_REQ_PARKED;

fail:
    conn_out_line(c, TEMPORARY_FAILURE);
    conn_mget_end(c);
    return CONN_REQ_OK;
}

/* ---- storage ---- */

static void
do_store(struct conn *c, const struct cmd_ctx *ctx, const struct text_req *req)
{
    static const enum cache_store_op ops[] = {
        [TEXT_SET] = CACHE_SET, [TEXT_ADD] = CACHE_ADD,
        [TEXT_REPLACE] = CACHE_REPLACE, [TEXT_APPEND] = CACHE_APPEND,
        [TEXT_PREPEND] = CACHE_PREPEND, [TEXT_CAS] = CACHE_CAS,
    };
    enum cache_store_op op = ops[req->cmd];
    struct cmd_result r;
    cmd_store(ctx, op, req->key, req->nkey, req->flags,
              cache_realtime(req->exptime), req->value, req->vlen,
              op == CACHE_CAS ? req->cas_unique : 0, &r);
    status_reply(c, req, &r, "STORED");
}

static void
do_delete(struct conn *c, const struct cmd_ctx *ctx, const struct text_req *req)
{
    struct cmd_result r;
    cmd_delete(ctx, req->key, req->nkey, 0, &r);
    status_reply(c, req, &r, "DELETED");
}

static void
do_delta(struct conn *c, const struct cmd_ctx *ctx, const struct text_req *req)
{
    struct cmd_result r;
    cmd_delta(ctx, req->key, req->nkey, req->cmd == TEXT_INCR, req->delta, 0,
              false, 0, 0, &r);
    if (r.status == CMD_ENOMEM) {
        reply(c, req->noreply, "SERVER_ERROR out of memory");
        return;
    }
    if (r.status != CMD_OK) {
        status_reply(c, req, &r, NULL);
        return;
    }
    if (!req->noreply) {
        char buf[24];
        size_t n = proto_text_u64toa(r.value, buf);
        buf[n++] = '\r';
        buf[n++] = '\n';
        conn_out_copy(c, buf, n);
    }
}

static void
do_touch(struct conn *c, const struct cmd_ctx *ctx, const struct text_req *req)
{
    struct cmd_result r;
    cmd_touch(ctx, req->key, req->nkey, cache_realtime(req->exptime), &r);
    status_reply(c, req, &r, "TOUCHED");
}

static void
do_flush(struct conn *c, const struct cmd_ctx *ctx, const struct text_req *req)
{
    struct cmd_result r;
    /* memcached: a delay of 0 or less flushes at once */
    uint32_t delay = !req->has_delay || req->delay <= 0 ? 0
                   : req->delay > UINT32_MAX ? UINT32_MAX : (uint32_t)req->delay;
    cmd_flush(ctx, delay, &r);
    status_reply(c, req, &r, "OK");
}

static void
do_stats(struct conn *c, const struct text_req *req)
{
    const char *arg = req->arg;
    size_t len = req->arglen;
    while (len > 0 && arg[len - 1] == ' ')
        len--;
    if (len >= 6 && memcmp(arg, "detail", 6) == 0 && (len == 6 || arg[6] == ' ')) {
        const char *sub = arg + 6;
        size_t sublen = len - 6;
        while (sublen > 0 && *sub == ' ')
            sub++, sublen--;
        if (sublen == 2 && memcmp(sub, "on", 2) == 0) {
            stats_prefix_enable(true);
            conn_out_line(c, "OK");
        } else if (sublen == 3 && memcmp(sub, "off", 3) == 0) {
            stats_prefix_enable(false);
            conn_out_line(c, "OK");
        } else if (sublen == 4 && memcmp(sub, "dump", 4) == 0) {
            size_t n;
            char *dump = stats_prefix_dump(&n);
            if (dump == NULL) {
                conn_out_line(c, "SERVER_ERROR out of memory writing stats");
                return;
            }
            conn_out_copy(c, dump, n);
            free(dump);
        } else {
            conn_out_line(c, "CLIENT_ERROR usage: stats detail on|off|dump");
        }
        return;
    }
    if (len >= 9 && memcmp(arg, "cachedump", 9) == 0 && (len == 9 || arg[9] == ' ')) {
        front_dump_cachedump(c, arg, len);
        return;
    }
    if (len == 5 && memcmp(arg, "reset", 5) == 0) {
        stats_group(arg, len, front_text_stat_emit, c);
        conn_out_line(c, "RESET");
        return;
    }
    if (!stats_group(arg, len, front_text_stat_emit, c)) {
        conn_out_line(c, "ERROR");
        return;
    }
    conn_out_copy(c, "END\r\n", 5);
}

/* ---- dispatch ---- */

enum conn_req
front_text(struct conn *c, size_t *need)
{
    struct text_req req;
    size_t consumed = 0;
    const char *errmsg = NULL;
    const char *buf = c->rbuf + c->rstart;
    size_t len = c->rend - c->rstart;

    if (!c->authed)   /* -Y: one branch on the hot path */
        return front_text_auth(c, need);
    struct cmd_ctx ctx;
    struct cmd_env env;
    front_ctx(c, &ctx, &env);
    *need = 0;
    proto_parse rc = proto_text_parse_req(&req, buf, len, c->owner->item_size_max,
                                          &consumed, &errmsg);
    switch (rc) {
    case PARSE_EUNFIN:
        return CONN_REQ_NEED_MORE;
    case PARSE_EOVERSIZE:
        c->rstart += consumed;
        c->swallow = (uint64_t)req.vlen + 2;
        /* memcached drops the old value of a too-large set, and of a
         * too-large ms in any mode; a flag error of an ms comes first */
        cmd_store_too_large(&ctx, req.cmd == TEXT_SET || req.cmd == TEXT_MS,
                            req.key, req.nkey);
        if (errmsg != NULL)
            conn_out_line(c, errmsg);
        else if (!req.noreply || req.cmd == TEXT_MS)
            conn_out_line(c, "SERVER_ERROR object too large for cache");
        return CONN_REQ_OK;
    case PARSE_EINVALID:
        c->rstart += consumed;
        STAT_INCR(TS(c), protocol_errors);
        /* memcached's noreply silences error lines too */
        reply(c, req.noreply, errmsg != NULL ? errmsg : "ERROR");
        return CONN_REQ_OK;
    case PARSE_EFATAL:
        STAT_INCR(TS(c), protocol_errors);
        if (errmsg != NULL && errmsg[0] != '\0')   /* "": close silently */
            conn_out_line(c, errmsg);
        c->rstart = c->rend;
        return CONN_REQ_CLOSE;
    case PARSE_OK:
        break;
    }
    size_t start = c->rstart;
    struct conn_out_mark mark;
    conn_out_mark(c, &mark);
    c->rstart += consumed;
    /* not again for each piece of a dump or a multiget */
    if (c->dump.kind == 0 && !c->mget.active)
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
        if (do_get(c, &ctx, &req) == CONN_REQ_PARKED) {
            c->rstart = start;   /* the rest of it runs later */
            return CONN_REQ_PARKED;
        }
        break;
    case TEXT_SET: case TEXT_ADD: case TEXT_REPLACE: case TEXT_APPEND:
    case TEXT_PREPEND: case TEXT_CAS:
        do_store(c, &ctx, &req);
        break;
    case TEXT_DELETE:
        do_delete(c, &ctx, &req);
        break;
    case TEXT_INCR: case TEXT_DECR:
        do_delta(c, &ctx, &req);
        break;
    case TEXT_TOUCH:
        do_touch(c, &ctx, &req);
        break;
    case TEXT_FLUSH_ALL:
        do_flush(c, &ctx, &req);
        break;
    case TEXT_STATS:
        do_stats(c, &req);
        break;
    case TEXT_VERSION: {
        char line[64];
        snprintf(line, sizeof(line), "VERSION %s", mckv_version);
        conn_out_line(c, line);
        break;
    }
    case TEXT_VERBOSITY:
        log_set_verbosity((int)req.level);
        reply(c, req.noreply, "OK");
        break;
    case TEXT_QUIT:
        return CONN_REQ_CLOSE;
    case TEXT_SHUTDOWN: case TEXT_CACHE_MEMLIMIT: case TEXT_LRU_CRAWLER:
    case TEXT_SLABS: case TEXT_LRU: case TEXT_DEBUGTIME:
    case TEXT_REFRESH_CERTS:
        if (front_admin(c, &req) == CONN_REQ_CLOSE)
            return CONN_REQ_CLOSE;
        break;
    case TEXT_MG: case TEXT_MS: case TEXT_MD: case TEXT_MA: case TEXT_MN:
    case TEXT_ME:
        front_meta(c, &req);
        break;
    case TEXT_UNKNOWN:
        conn_out_line(c, "ERROR");
        break;
    }
    switch (conn_park_settle(c, &mark, start)) {
    case CONN_PARK_WAIT:
        return CONN_REQ_PARKED;
    case CONN_PARK_FAIL:   /* meta: errors are sent even with q */
        reply(c, req.noreply && req.cmd < TEXT_MG, TEMPORARY_FAILURE);
        break;
    case CONN_PARK_NONE:
        break;
    }
    /* a dump wrote one piece: the request runs again for the next one
     * (conn_process_all() does, now or once the output drained) */
    if (c->dump.kind != 0)
        c->rstart = start;
    return CONN_REQ_OK;
}
