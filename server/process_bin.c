/*
 * process_bin.c: runs binary-protocol requests against the cache and writes
 * memcached's binary replies: status codes, CAS on every reply, the opaque
 * echoed, and quiet opcodes suppressing what memcached suppresses (the
 * success reply; for GETQ/GETKQ/GATQ/GATKQ also the miss). Errors carry
 * memcached's short text as the body.
 */
#include <config.h>

#include <string.h>

#include "protocol/proto_bin.h"
#include "protocol/proto_text.h"
#include "server/cache.h"
#include "server/conn.h"
#include "server/persist.h"
#include "server/process.h"
#include "server/stats.h"
#include "server/worker.h"
#include "util/log.h"

#define TS(c) (&(c)->worker->stats)
/* A body may hold extras and a key on top of the largest value. */
#define BIN_BODY_SLACK (PROTO_KEY_MAX + 64)

static const char *
bin_errstr(uint16_t status)
{
    switch (status) {
    case BIN_STATUS_KEY_ENOENT: return "Not found";
    case BIN_STATUS_KEY_EEXISTS: return "Data exists for key.";
    case BIN_STATUS_E2BIG: return "Too large.";
    case BIN_STATUS_EINVAL: return "Invalid arguments";
    case BIN_STATUS_NOT_STORED: return "Not stored.";
    case BIN_STATUS_DELTA_BADVAL: return "Non-numeric server-side value for incr or decr";
    case BIN_STATUS_UNKNOWN_COMMAND: return "Unknown command";
    case BIN_STATUS_ENOMEM: return "Out of memory";
    case BIN_STATUS_ETMPFAIL: return "Temporary failure";
    default: return "Unknown error";
    }
}

/* Header + extras + key + body copied into the reply stream. */
static void
bin_reply(struct conn *c, const struct bin_req *req, uint16_t status,
          uint64_t cas, const void *extras, uint8_t extlen, const char *key,
          uint16_t keylen, const char *body, uint32_t bodylen)
{
    size_t total = PROTO_BIN_HDR_LEN + extlen + keylen + bodylen;
    char *p = conn_out_reserve(c, total);
    if (p == NULL)
        return;
    proto_bin_compose_hdr(p, req->opcode, status, extlen, keylen,
                          (uint32_t)(extlen + keylen + bodylen), req->opaque, cas);
    size_t off = PROTO_BIN_HDR_LEN;
    if (extlen > 0)
        memcpy(p + off, extras, extlen);
    off += extlen;
    if (keylen > 0)
        memcpy(p + off, key, keylen);
    off += keylen;
    if (bodylen > 0)
        memcpy(p + off, body, bodylen);
    conn_out_commit(c, total);
}

static void
bin_error(struct conn *c, const struct bin_req *req, uint16_t status)
{
    const char *msg = bin_errstr(status);
    bin_reply(c, req, status, 0, NULL, 0, NULL, 0, msg, (uint32_t)strlen(msg));
}

static void
bin_ok(struct conn *c, const struct bin_req *req, uint64_t cas)
{
    if (!proto_bin_is_quiet(req->opcode))
        bin_reply(c, req, BIN_STATUS_SUCCESS, cas, NULL, 0, NULL, 0, NULL, 0);
}

static bool
admit_write(struct conn *c, const struct bin_req *req)
{
    if (conn_admit_write(c))
        return true;
    bin_error(c, req, BIN_STATUS_ETMPFAIL);
    return false;
}

/* ---- commands ---- */

static void
bin_get(struct conn *c, const struct bin_req *req)
{
    uint8_t op = req->opcode;
    bool touch = op == BIN_OP_TOUCH || op == BIN_OP_GAT || op == BIN_OP_GATQ ||
                 op == BIN_OP_GATK || op == BIN_OP_GATKQ;
    bool with_key = op == BIN_OP_GETK || op == BIN_OP_GETKQ ||
                    op == BIN_OP_GATK || op == BIN_OP_GATKQ;
    bool with_value = op != BIN_OP_TOUCH;
    enum cache_miss why = CACHE_MISS_ABSENT;
    uint8_t nkey = (uint8_t)req->keylen;
    if (op == BIN_OP_TOUCH && !admit_write(c, req))
        return;
    struct item *it = touch
        ? cache_get_touch(req->key, nkey, cache_realtime((int32_t)req->exptime), &why)
        : cache_get(req->key, nkey, &why);

    if (touch) {
        STAT_INCR(TS(c), cmd_touch);
        STAT_PICK(TS(c), it != NULL, touch_hits, touch_misses);
    }
    if (op != BIN_OP_TOUCH)
        STAT_INCR(TS(c), cmd_get);
    if (it == NULL && why == CACHE_MISS_ON_DISK && !touch)
        it = conn_fetched(c, req->key, nkey);
    if (it == NULL && why == CACHE_MISS_ON_DISK) {
        conn_need_fetch(c, req->key, nkey);
        return;
    }
    if (it == NULL) {
        if (op != BIN_OP_TOUCH) {
            STAT_INCR(TS(c), get_misses);
            if (why == CACHE_MISS_EXPIRED)
                STAT_INCR(TS(c), get_expired);
            else if (why == CACHE_MISS_FLUSHED)
                STAT_INCR(TS(c), get_flushed);
        }
        if (proto_bin_is_quiet(op))
            return;
        if (with_key)
            bin_reply(c, req, BIN_STATUS_KEY_ENOENT, 0, NULL, 0, req->key,
                      req->keylen, NULL, 0);
        else
            bin_error(c, req, BIN_STATUS_KEY_ENOENT);
        return;
    }
    if (op != BIN_OP_TOUCH)
        STAT_INCR(TS(c), get_hits);
    char flags[4];
    proto_bin_put32(flags, it->flags);
    uint16_t keylen = with_key ? it->nkey : 0;
    uint32_t vlen = with_value ? it->nbytes : 0;
    char *p = conn_out_reserve(c, PROTO_BIN_HDR_LEN + 4 + keylen);
    if (p != NULL) {
        proto_bin_compose_hdr(p, op, BIN_STATUS_SUCCESS, 4, keylen,
                              4 + keylen + vlen, req->opaque, it->cas);
        memcpy(p + PROTO_BIN_HDR_LEN, flags, 4);
        if (keylen > 0)
            memcpy(p + PROTO_BIN_HDR_LEN + 4, item_key(it), keylen);
        conn_out_commit(c, PROTO_BIN_HDR_LEN + 4 + keylen);
        if (vlen > 0)
            conn_out_item(c, it, item_value(it), vlen);
    }
    cache_item_release(it);
}

static void
bin_store(struct conn *c, const struct bin_req *req)
{
    enum cache_store_op op;
    switch (req->opcode) {
    case BIN_OP_SET: case BIN_OP_SETQ: op = CACHE_SET; break;
    case BIN_OP_ADD: case BIN_OP_ADDQ: op = CACHE_ADD; break;
    case BIN_OP_REPLACE: case BIN_OP_REPLACEQ: op = CACHE_REPLACE; break;
    case BIN_OP_APPEND: case BIN_OP_APPENDQ: op = CACHE_APPEND; break;
    default: op = CACHE_PREPEND; break;
    }
    bool too_large = false;
    bool append = op == CACHE_APPEND || op == CACHE_PREPEND;
    uint8_t nkey = (uint8_t)req->keylen;
    if (!admit_write(c, req))
        return;
    struct item *it = cache_item_alloc(req->key, nkey, append ? 0 : req->flags,
                                       append ? 0 : cache_realtime((int32_t)req->exptime),
                                       req->vlen, &too_large);
    STAT_INCR(TS(c), cmd_set);
    if (it == NULL) {
        STAT_PICK(TS(c), too_large, store_too_large, store_no_memory);
        if (op == CACHE_SET)
            cache_delete(req->key, nkey, 0);
        bin_error(c, req, too_large ? BIN_STATUS_E2BIG : BIN_STATUS_ENOMEM);
        return;
    }
    memcpy(item_value(it), req->value, req->vlen);
    uint64_t cas = 0;
    enum cache_result r = cache_store(it, op, req->cas, &cas);
    cache_item_release(it);
    if (r == CACHE_NEED_FETCH) {
        conn_need_fetch(c, req->key, nkey);
        return;
    }
    if (req->cas != 0) {
        if (r == CACHE_STORED)
            STAT_INCR(TS(c), cas_hits);
        else if (r == CACHE_EXISTS)
            STAT_INCR(TS(c), cas_badval);
        else if (r == CACHE_NOT_FOUND)
            STAT_INCR(TS(c), cas_misses);
    }
    switch (r) {
    case CACHE_STORED:
        bin_ok(c, req, cas);
        break;
    case CACHE_EXISTS:
        bin_error(c, req, BIN_STATUS_KEY_EEXISTS);
        break;
    case CACHE_NOT_FOUND:
        bin_error(c, req, BIN_STATUS_KEY_ENOENT);
        break;
    case CACHE_NOT_STORED:
        /* memcached maps a refused add to EEXISTS and a refused replace to
         * ENOENT; append/prepend keep NOT_STORED. */
        bin_error(c, req, op == CACHE_ADD ? BIN_STATUS_KEY_EEXISTS
                          : op == CACHE_REPLACE ? BIN_STATUS_KEY_ENOENT
                          : BIN_STATUS_NOT_STORED);
        break;
    case CACHE_E2BIG:
        bin_error(c, req, BIN_STATUS_E2BIG);
        break;
    default:
        bin_error(c, req, BIN_STATUS_ENOMEM);
        break;
    }
}

static void
bin_delete(struct conn *c, const struct bin_req *req)
{
    if (!admit_write(c, req))
        return;
    enum cache_result r = cache_delete(req->key, (uint8_t)req->keylen, req->cas);
    if (r == CACHE_NEED_FETCH) {
        conn_need_fetch(c, req->key, (uint8_t)req->keylen);
        return;
    }
    STAT_PICK(TS(c), r == CACHE_DELETED, delete_hits, delete_misses);
    if (r == CACHE_DELETED)
        bin_ok(c, req, 0);
    else
        bin_error(c, req, r == CACHE_EXISTS ? BIN_STATUS_KEY_EEXISTS
                                            : BIN_STATUS_KEY_ENOENT);
}

static void
bin_delta(struct conn *c, const struct bin_req *req)
{
    bool incr = req->opcode == BIN_OP_INCREMENT || req->opcode == BIN_OP_INCREMENTQ;
    uint8_t nkey = (uint8_t)req->keylen;
    uint64_t value = 0, cas = 0;
    enum cache_result r;

    if (!admit_write(c, req))
        return;
    for (int attempt = 0; ; attempt++) {
        r = cache_delta(req->key, nkey, incr, req->delta, req->cas, &value, &cas);
        if (r == CACHE_NEED_FETCH) {
            conn_need_fetch(c, req->key, nkey);
            return;
        }
        if (r != CACHE_NOT_FOUND || req->exptime == 0xffffffffu ||
            req->cas != 0 || attempt > 0)
            break;
        /* Missing: create it with the initial value (memcached semantics). */
        char num[24];
        size_t n = proto_text_u64toa(req->initial, num);
        bool too_large = false;
        struct item *it = cache_item_alloc(req->key, nkey, 0,
                                           cache_realtime((int32_t)req->exptime),
                                           (uint32_t)n, &too_large);
        if (it == NULL) {
            bin_error(c, req, BIN_STATUS_ENOMEM);
            return;
        }
        memcpy(item_value(it), num, n);
        r = cache_store(it, CACHE_ADD, 0, &cas);
        cache_item_release(it);
        if (r == CACHE_STORED) {
            value = req->initial;
            break;
        }
        /* Lost a race with another add: apply the delta to that value. */
    }
    STAT_DELTA(TS(c), incr, r == CACHE_STORED);
    switch (r) {
    case CACHE_STORED:
        if (!proto_bin_is_quiet(req->opcode)) {
            char body[8];
            proto_bin_put64(body, value);
            bin_reply(c, req, BIN_STATUS_SUCCESS, cas, NULL, 0, NULL, 0, body, 8);
        }
        break;
    case CACHE_NOT_FOUND:
        bin_error(c, req, BIN_STATUS_KEY_ENOENT);
        break;
    case CACHE_EXISTS:
        bin_error(c, req, BIN_STATUS_KEY_EEXISTS);
        break;
    case CACHE_NON_NUMERIC:
        bin_error(c, req, BIN_STATUS_DELTA_BADVAL);
        break;
    default:
        bin_error(c, req, BIN_STATUS_ENOMEM);
        break;
    }
}

struct bin_stat_ctx {
    struct conn *c;
    const struct bin_req *req;
};

static void
bin_stat_emit(void *ctx, const char *name, const char *value)
{
    struct bin_stat_ctx *s = ctx;
    size_t nlen = strlen(name), vlen = strlen(value);
    bin_reply(s->c, s->req, BIN_STATUS_SUCCESS, 0, NULL, 0, name,
              (uint16_t)nlen, value, (uint32_t)vlen);
}

static void
bin_stat(struct conn *c, const struct bin_req *req)
{
    struct bin_stat_ctx ctx = { c, req };
    if (!stats_group(req->key, req->keylen, bin_stat_emit, &ctx)) {
        bin_error(c, req, BIN_STATUS_KEY_ENOENT);
        return;
    }
    /* The terminating packet: empty key and body. */
    bin_reply(c, req, BIN_STATUS_SUCCESS, 0, NULL, 0, NULL, 0, NULL, 0);
}

enum process_result
process_bin(struct conn *c, size_t *need)
{
    struct bin_req req;
    size_t consumed = 0;
    const char *buf = c->rbuf + c->rstart;
    size_t len = c->rend - c->rstart;
    uint32_t max_body = c->worker->item_size_max + BIN_BODY_SLACK;

    *need = 0;
    proto_parse rc = proto_bin_parse_req(&req, buf, len, max_body, &consumed);
    switch (rc) {
    case PARSE_EUNFIN:
        if (len >= PROTO_BIN_HDR_LEN)
            *need = PROTO_BIN_HDR_LEN + (size_t)req.bodylen;
        return PROCESS_NEED_MORE;
    case PARSE_EOVERSIZE: {
        /* Refused without buffering the value: skip it as it arrives. A
         * too-large SET also drops the old value (memcached does, so a stale
         * value is not served after the client was told the set failed);
         * that needs the key, so wait for extras and key first. */
        size_t skip = PROTO_BIN_HDR_LEN;
        if (req.opcode == BIN_OP_SET || req.opcode == BIN_OP_SETQ) {
            skip += (size_t)req.extlen + req.keylen;
            if (len < skip) {
                *need = skip;
                return PROCESS_NEED_MORE;
            }
            if (req.keylen > 0 && req.keylen <= PROTO_KEY_MAX)
                cache_delete(buf + skip - req.keylen, (uint8_t)req.keylen, 0);
        }
        c->rstart += skip;
        c->swallow = req.bodylen - (skip - PROTO_BIN_HDR_LEN);
        STAT_INCR(TS(c), store_too_large);
        bin_error(c, &req, BIN_STATUS_E2BIG);
        return PROCESS_OK;
    }
    case PARSE_EINVALID:
        /* memcached answers EINVAL and closes the connection. */
        c->rstart = c->rend;
        STAT_INCR(TS(c), protocol_errors);
        bin_error(c, &req, BIN_STATUS_EINVAL);
        return PROCESS_CLOSE;
    case PARSE_EFATAL:
        /* Lengths that contradict each other: memcached answers
         * UNKNOWN_COMMAND before closing; a wrong magic just closes. */
        if (len >= PROTO_BIN_HDR_LEN && (unsigned char)buf[0] == PROTO_BIN_REQ_MAGIC)
            bin_error(c, &req, BIN_STATUS_UNKNOWN_COMMAND);
        c->rstart = c->rend;
        STAT_INCR(TS(c), protocol_errors);
        return PROCESS_CLOSE;
    case PARSE_OK:
        break;
    }
    size_t start = c->rstart;
    struct conn_out_mark mark;
    conn_out_mark(c, &mark);
    c->rstart += consumed;
    log_debug("<%d binary opcode 0x%02x", c->fd, req.opcode);

    switch (req.opcode) {
    case BIN_OP_GET: case BIN_OP_GETQ: case BIN_OP_GETK: case BIN_OP_GETKQ:
        c->cmd_class = CMD_CLASS_GET;
        break;
    case BIN_OP_TOUCH: case BIN_OP_GAT: case BIN_OP_GATQ: case BIN_OP_GATK:
    case BIN_OP_GATKQ:
        c->cmd_class = CMD_CLASS_TOUCH;
        break;
    case BIN_OP_DELETE: case BIN_OP_DELETEQ:
        c->cmd_class = CMD_CLASS_DELETE;
        break;
    case BIN_OP_INCREMENT: case BIN_OP_INCREMENTQ: case BIN_OP_DECREMENT:
    case BIN_OP_DECREMENTQ:
        c->cmd_class = CMD_CLASS_DELTA;
        break;
    case BIN_OP_SET: case BIN_OP_SETQ: case BIN_OP_ADD: case BIN_OP_ADDQ:
    case BIN_OP_REPLACE: case BIN_OP_REPLACEQ: case BIN_OP_APPEND:
    case BIN_OP_APPENDQ: case BIN_OP_PREPEND: case BIN_OP_PREPENDQ:
        c->cmd_class = CMD_CLASS_SET;
        break;
    default:
        break;
    }
    switch (req.opcode) {
    case BIN_OP_GET: case BIN_OP_GETQ: case BIN_OP_GETK: case BIN_OP_GETKQ:
    case BIN_OP_TOUCH: case BIN_OP_GAT: case BIN_OP_GATQ: case BIN_OP_GATK:
    case BIN_OP_GATKQ:
        bin_get(c, &req);
        break;
    case BIN_OP_SET: case BIN_OP_SETQ: case BIN_OP_ADD: case BIN_OP_ADDQ:
    case BIN_OP_REPLACE: case BIN_OP_REPLACEQ: case BIN_OP_APPEND:
    case BIN_OP_APPENDQ: case BIN_OP_PREPEND: case BIN_OP_PREPENDQ:
        bin_store(c, &req);
        break;
    case BIN_OP_DELETE: case BIN_OP_DELETEQ:
        bin_delete(c, &req);
        break;
    case BIN_OP_INCREMENT: case BIN_OP_INCREMENTQ: case BIN_OP_DECREMENT:
    case BIN_OP_DECREMENTQ:
        bin_delta(c, &req);
        break;
    case BIN_OP_QUIT:
        bin_ok(c, &req, 0);
        return PROCESS_CLOSE;
    case BIN_OP_QUITQ:
        return PROCESS_CLOSE;
    case BIN_OP_FLUSH: case BIN_OP_FLUSHQ:
        STAT_INCR(TS(c), cmd_flush);
        if (req.has_exptime && req.exptime > 0) {
            cache_flush(cache_realtime((int32_t)req.exptime) - 1);
            persist_schedule_flush(cache_realtime((int32_t)req.exptime) - 1);
        }
        else
            cache_flush(cache_now());
        bin_ok(c, &req, 0);
        break;
    case BIN_OP_NOOP:
        bin_reply(c, &req, BIN_STATUS_SUCCESS, 0, NULL, 0, NULL, 0, NULL, 0);
        break;
    case BIN_OP_VERSION:
        bin_reply(c, &req, BIN_STATUS_SUCCESS, 0, NULL, 0, NULL, 0,
                  process_version, (uint32_t)strlen(process_version));
        break;
    case BIN_OP_STAT:
        bin_stat(c, &req);
        break;
    case BIN_OP_VERBOSITY:
        log_set_verbosity((int)req.verbosity);
        bin_reply(c, &req, BIN_STATUS_SUCCESS, 0, NULL, 0, NULL, 0, NULL, 0);
        break;
    default:
        bin_error(c, &req, BIN_STATUS_UNKNOWN_COMMAND);
        break;
    }
    switch (conn_park_settle(c, &mark, start)) {
    case CONN_PARK_WAIT:
        return PROCESS_PARKED;
    case CONN_PARK_FAIL:
        bin_error(c, &req, BIN_STATUS_ETMPFAIL);
        break;
    case CONN_PARK_NONE:
        break;
    }
    return PROCESS_OK;
}
