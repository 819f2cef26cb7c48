/*
 * front_bin.c: the binary protocol front end. Maps each request to a
 * command of the core (process.h) and writes memcached's binary replies:
 * status codes, CAS on every reply, the opaque echoed, and quiet opcodes suppressing what memcached suppresses (the
 * success reply; for GETQ/GETKQ/GATQ/GATKQ also the miss). Errors carry
 * memcached's short text as the body.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "protocol/proto_bin.h"
#include "protocol/proto_text.h"
#include "server/cache.h"
#include "server/conn.h"
#include "server/front.h"
#include "server/sasl_auth.h"
#include "server/stats.h"
#include "server/stats_prefix.h"
#include "util/log.h"
#include "util/version.h"

#define TS(c) ((c)->owner->stats)
/* A body may hold extras and a key on top of the largest value. */
#define BIN_BODY_SLACK (PROTO_KEY_MAX + 64)
/* Under -S, the most a SASL_AUTH or SASL_STEP may carry (mechanism name and
 * data). Real tokens are far smaller (PLAIN: a name and a password;
 * Kerberos tickets a few KiB); without this bound any client without
 * credentials could make its read buffer and the auth thread's copy grow
 * to item_size_max each. */
#define BIN_SASL_BODY_MAX 65536

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
    case BIN_STATUS_AUTH_ERROR: return "Auth failure.";
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

/* The reply to a failed command. */
static void
bin_status_reply(struct conn *c, const struct bin_req *req,
                 const struct cmd_result *r, enum cache_store_op op)
{
    switch (r->status) {
    case CMD_OK:
        bin_ok(c, req, r->cas);
        break;
    case CMD_MISS: case CMD_NOT_FOUND:
        bin_error(c, req, BIN_STATUS_KEY_ENOENT);
        break;
    case CMD_EXISTS:
        bin_error(c, req, BIN_STATUS_KEY_EEXISTS);
        break;
    case CMD_NOT_STORED:
        /* memcached maps a refused add to EEXISTS and a refused replace to
         * ENOENT; append/prepend keep NOT_STORED. */
        bin_error(c, req, op == CACHE_ADD ? BIN_STATUS_KEY_EEXISTS
                          : op == CACHE_REPLACE ? BIN_STATUS_KEY_ENOENT
                          : BIN_STATUS_NOT_STORED);
        break;
    case CMD_NON_NUMERIC:
        bin_error(c, req, BIN_STATUS_DELTA_BADVAL);
        break;
    case CMD_E2BIG:
        bin_error(c, req, BIN_STATUS_E2BIG);
        break;
    case CMD_TMPFAIL:
        bin_error(c, req, BIN_STATUS_ETMPFAIL);
        break;
    case CMD_DISABLED:   /* flush_all under -F: memcached's answer */
        bin_error(c, req, BIN_STATUS_AUTH_ERROR);
        break;
    case CMD_NEED_FETCH:
        front_need_fetch(c, req->key, (uint8_t)req->keylen);
        break;
    case CMD_ENOMEM:
        bin_error(c, req, BIN_STATUS_ENOMEM);
        break;
    }
}

/* ---- commands ---- */

static void
bin_get(struct conn *c, const struct cmd_ctx *ctx, const struct bin_req *req)
{
    uint8_t op = req->opcode;
    bool touch = op == BIN_OP_TOUCH || op == BIN_OP_GAT || op == BIN_OP_GATQ ||
                 op == BIN_OP_GATK || op == BIN_OP_GATKQ;
    bool with_key = op == BIN_OP_GETK || op == BIN_OP_GETKQ ||
                    op == BIN_OP_GATK || op == BIN_OP_GATKQ;
    bool with_value = op != BIN_OP_TOUCH;
    uint8_t nkey = (uint8_t)req->keylen;
    struct cmd_result r;
    /* The expiry is unsigned on the wire: 2^31 and more is an absolute
     * time far in the future, as in memcached, not a negative one. */
    rel_time_t exptime = touch ? cache_realtime((int64_t)req->exptime) : 0;

    cmd_get(ctx, req->key, nkey, touch, exptime, op != BIN_OP_TOUCH, &r);
    if (r.status == CMD_NEED_FETCH || r.status == CMD_TMPFAIL) {
        bin_status_reply(c, req, &r, CACHE_SET);
        return;
    }
    struct item *it = r.it;
    if (it == NULL) {
        if (proto_bin_is_quiet(op))
            return;
        if (with_key)
            bin_reply(c, req, BIN_STATUS_KEY_ENOENT, 0, NULL, 0, req->key,
                      req->keylen, NULL, 0);
        else
            bin_error(c, req, BIN_STATUS_KEY_ENOENT);
        return;
    }
    char flags[4];
    proto_bin_put32(flags, it->flags);
    uint16_t keylen = with_key ? it->nkey : 0;
    uint32_t vlen = with_value ? it->nbytes : 0;
    char *p = conn_out_reserve(c, PROTO_BIN_HDR_LEN + 4 + keylen);
    if (p != NULL) {
        proto_bin_compose_hdr(p, op, BIN_STATUS_SUCCESS, 4, keylen,
                              4 + keylen + vlen, req->opaque, r.cas);
        memcpy(p + PROTO_BIN_HDR_LEN, flags, 4);
        if (keylen > 0)
            memcpy(p + PROTO_BIN_HDR_LEN + 4, item_key(it), keylen);
        conn_out_commit(c, PROTO_BIN_HDR_LEN + 4 + keylen);
        if (vlen > 0)
            conn_out_item(c, it, item_value(it), vlen);
    }
    cmd_result_done(&r);
}

static enum cache_store_op
bin_store_op(uint8_t opcode)
{
    switch (opcode) {
    case BIN_OP_SET: case BIN_OP_SETQ: return CACHE_SET;
    case BIN_OP_ADD: case BIN_OP_ADDQ: return CACHE_ADD;
    case BIN_OP_REPLACE: case BIN_OP_REPLACEQ: return CACHE_REPLACE;
    case BIN_OP_APPEND: case BIN_OP_APPENDQ: return CACHE_APPEND;
    default: return CACHE_PREPEND;
    }
}

static void
bin_store(struct conn *c, const struct cmd_ctx *ctx, const struct bin_req *req)
{
    enum cache_store_op op = bin_store_op(req->opcode);
    struct cmd_result r;
    cmd_store(ctx, op, req->key, (uint8_t)req->keylen, req->flags,
              cache_realtime((int64_t)req->exptime), req->value, req->vlen,
              req->cas, &r);
    bin_status_reply(c, req, &r, op);
}

static void
bin_delete(struct conn *c, const struct cmd_ctx *ctx, const struct bin_req *req)
{
    struct cmd_result r;
    cmd_delete(ctx, req->key, (uint8_t)req->keylen, req->cas, &r);
    r.cas = 0;
    bin_status_reply(c, req, &r, CACHE_SET);
}

static void
bin_delta(struct conn *c, const struct cmd_ctx *ctx, const struct bin_req *req)
{
    bool incr = req->opcode == BIN_OP_INCREMENT || req->opcode == BIN_OP_INCREMENTQ;
    struct cmd_result r;
    /* memcached: an expiry of 0xffffffff means "do not create". */
    bool create = req->exptime != 0xffffffffu && req->cas == 0;
    cmd_delta(ctx, req->key, (uint8_t)req->keylen, incr, req->delta, req->cas,
              create, req->initial, cache_realtime((int64_t)req->exptime), &r);
    if (r.status != CMD_OK) {
        bin_status_reply(c, req, &r, CACHE_SET);
        return;
    }
    if (!proto_bin_is_quiet(req->opcode)) {
        char body[8];
        proto_bin_put64(body, r.value);
        bin_reply(c, req, BIN_STATUS_SUCCESS, r.cas, NULL, 0, NULL, 0, body, 8);
    }
}

static void
bin_flush(struct conn *c, const struct cmd_ctx *ctx, const struct bin_req *req)
{
    struct cmd_result r;
    cmd_flush(ctx, req->has_exptime ? req->exptime : 0, &r);
    bin_status_reply(c, req, &r, CACHE_SET);
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
    if (req->keylen >= 6 && memcmp(req->key, "detail", 6) == 0) {
        /* memcached: "detail on|off" answer one empty packet, "detail
         * dump" the whole dump as the value of one "detailed" stat. */
        const char *sub = req->key + 6;
        size_t sublen = req->keylen - 6u;
        if (sublen == 5 && memcmp(sub, " dump", 5) == 0) {
            size_t n;
            char *dump = stats_prefix_dump(&n);
            if (dump == NULL) {
                bin_error(c, req, BIN_STATUS_ENOMEM);
                return;
            }
            bin_reply(c, req, BIN_STATUS_SUCCESS, 0, NULL, 0, "detailed", 8,
                      dump, (uint32_t)n);
            free(dump);
        } else if (sublen == 3 && memcmp(sub, " on", 3) == 0) {
            stats_prefix_enable(true);
        } else if (sublen == 4 && memcmp(sub, " off", 4) == 0) {
            stats_prefix_enable(false);
        } else {
            bin_error(c, req, BIN_STATUS_KEY_ENOENT);
            return;
        }
        bin_reply(c, req, BIN_STATUS_SUCCESS, 0, NULL, 0, NULL, 0, NULL, 0);
        return;
    }
    if (!stats_group(req->key, req->keylen, bin_stat_emit, &ctx)) {
        bin_error(c, req, BIN_STATUS_KEY_ENOENT);
        return;
    }
    /* The terminating packet: empty key and body. */
    bin_reply(c, req, BIN_STATUS_SUCCESS, 0, NULL, 0, NULL, 0, NULL, 0);
}

/* ---- SASL (-S), as memcached answers it ---- */

/* memcached: before authentication only these run; anything else gets
 * AUTH_ERROR and the connection is closed. */
static bool
bin_needs_auth(uint8_t opcode)
{
    return opcode != BIN_OP_SASL_LIST_MECHS && opcode != BIN_OP_SASL_AUTH &&
           opcode != BIN_OP_SASL_STEP && opcode != BIN_OP_VERSION;
}

static void
bin_sasl_answer(struct conn *c, const struct bin_req *req,
                enum sasl_outcome outcome, const char *out, size_t nout)
{
    switch (outcome) {
    case SASL_OUTCOME_OK:
        c->authed = true;
        STAT_INCR(TS(c), auth_cmds);
        bin_reply(c, req, BIN_STATUS_SUCCESS, 0, NULL, 0, NULL, 0,
                  "Authenticated", 13);
        break;
    case SASL_OUTCOME_CONTINUE:
        bin_reply(c, req, BIN_STATUS_AUTH_CONTINUE, 0, NULL, 0, NULL, 0, out,
                  (uint32_t)nout);
        break;
    case SASL_OUTCOME_FAIL:
        STAT_INCR(TS(c), auth_cmds);
        STAT_INCR(TS(c), auth_errors);
        bin_error(c, req, BIN_STATUS_AUTH_ERROR);
        break;
    }
}

/* SASL_AUTH / SASL_STEP. The cyrus call runs on the auth thread: the
 * first run hands it over and parks (true: the request stays unconsumed);
 * the run after conn_auth_done() finds the answer and sends it. */
static bool
bin_sasl(struct conn *c, const struct bin_req *req)
{
    enum sasl_outcome outcome;
    const char *out;
    size_t nout;

    if (c->sasl != NULL && sasl_session_reply(c->sasl, &outcome, &out, &nout)) {
        bin_sasl_answer(c, req, outcome, out, nout);
        return false;
    }
    if (req->keylen > SASL_MECH_MAX) {
        bin_error(c, req, BIN_STATUS_EINVAL);
        return false;
    }
    c->authed = false;   /* memcached: a new exchange starts unauthenticated */
    if (c->sasl == NULL)
        c->sasl = sasl_session_create(c->owner->id, c->id);
    if (c->sasl == NULL ||
        !sasl_session_submit(c->sasl, req->opcode == BIN_OP_SASL_STEP,
                             req->key, req->keylen, req->value, req->vlen)) {
        bin_error(c, req, BIN_STATUS_ETMPFAIL);
        return false;
    }
    c->auth_pending = true;
    return true;
}

static void
bin_sasl_mechs(struct conn *c, const struct bin_req *req)
{
    const char *mechs = sasl_auth_mechs();
    bin_reply(c, req, BIN_STATUS_SUCCESS, 0, NULL, 0, NULL, 0, mechs,
              (uint32_t)strlen(mechs));
}

enum conn_req
front_bin(struct conn *c, size_t *need)
{
    struct bin_req req;
    size_t consumed = 0;
    const char *buf = c->rbuf + c->rstart;
    size_t len = c->rend - c->rstart;
    uint32_t max_body = c->owner->item_size_max + BIN_BODY_SLACK;
    bool sasl_op = c->owner->auth_sasl && len >= 2 &&
                   ((uint8_t)buf[1] == BIN_OP_SASL_AUTH ||
                    (uint8_t)buf[1] == BIN_OP_SASL_STEP);
    if (sasl_op && max_body > BIN_SASL_BODY_MAX)
        max_body = BIN_SASL_BODY_MAX;

    struct cmd_ctx ctx;
    struct cmd_env env;
    front_ctx(c, &ctx, &env);
    *need = 0;
    proto_parse rc = proto_bin_parse_req(&req, buf, len, max_body, &consumed);
    /* One branch on the hot path. The header decides, as in memcached:
     * the body of a refused request is neither waited for nor looked at. */
    if (!c->authed && rc != PARSE_EFATAL && len >= PROTO_BIN_HDR_LEN &&
        (bin_needs_auth(req.opcode) || !c->owner->auth_sasl)) {
        bin_error(c, &req, BIN_STATUS_AUTH_ERROR);
        c->rstart = c->rend;
        return CONN_REQ_CLOSE;
    }
    switch (rc) {
    case PARSE_EUNFIN:
        if (len >= PROTO_BIN_HDR_LEN)
            *need = PROTO_BIN_HDR_LEN + (size_t)req.bodylen;
        return CONN_REQ_NEED_MORE;
    case PARSE_EOVERSIZE: {
        if (sasl_op) {   /* skipped as it arrives; the exchange failed */
            c->authed = false;
            c->rstart += PROTO_BIN_HDR_LEN;
            c->swallow = req.bodylen;
            bin_sasl_answer(c, &req, SASL_OUTCOME_FAIL, NULL, 0);
            return CONN_REQ_OK;
        }
        /* Refused without buffering the value: skip it as it arrives. A
         * too-large SET also drops the old value (memcached does, so a stale
         * value is not served after the client was told the set failed);
         * that needs the key, so wait for extras and key first. */
        size_t skip = PROTO_BIN_HDR_LEN;
        if (req.opcode == BIN_OP_SET || req.opcode == BIN_OP_SETQ) {
            skip += (size_t)req.extlen + req.keylen;
            if (len < skip) {
                *need = skip;
                return CONN_REQ_NEED_MORE;
            }
            bool key_ok = req.keylen > 0 && req.keylen <= PROTO_KEY_MAX;
            cmd_store_too_large(&ctx, true, buf + skip - req.keylen,
                                key_ok ? (uint8_t)req.keylen : 0);
        } else {
            cmd_store_too_large(&ctx, false, NULL, 0);
        }
        c->rstart += skip;
        c->swallow = req.bodylen - (skip - PROTO_BIN_HDR_LEN);
        bin_error(c, &req, BIN_STATUS_E2BIG);
        return CONN_REQ_OK;
    }
    case PARSE_EINVALID:
        /* memcached answers EINVAL and closes the connection. */
        c->rstart = c->rend;
        STAT_INCR(TS(c), protocol_errors);
        bin_error(c, &req, BIN_STATUS_EINVAL);
        return CONN_REQ_CLOSE;
    case PARSE_EFATAL:
        /* Lengths that contradict each other: memcached answers
         * UNKNOWN_COMMAND before closing; a wrong magic just closes. */
        if (len >= PROTO_BIN_HDR_LEN && (unsigned char)buf[0] == PROTO_BIN_REQ_MAGIC)
            bin_error(c, &req, BIN_STATUS_UNKNOWN_COMMAND);
        c->rstart = c->rend;
        STAT_INCR(TS(c), protocol_errors);
        return CONN_REQ_CLOSE;
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
        bin_get(c, &ctx, &req);
        break;
    case BIN_OP_SET: case BIN_OP_SETQ: case BIN_OP_ADD: case BIN_OP_ADDQ:
    case BIN_OP_REPLACE: case BIN_OP_REPLACEQ: case BIN_OP_APPEND:
    case BIN_OP_APPENDQ: case BIN_OP_PREPEND: case BIN_OP_PREPENDQ:
        bin_store(c, &ctx, &req);
        break;
    case BIN_OP_DELETE: case BIN_OP_DELETEQ:
        bin_delete(c, &ctx, &req);
        break;
    case BIN_OP_INCREMENT: case BIN_OP_INCREMENTQ: case BIN_OP_DECREMENT:
    case BIN_OP_DECREMENTQ:
        bin_delta(c, &ctx, &req);
        break;
    case BIN_OP_QUIT:
        bin_ok(c, &req, 0);
        return CONN_REQ_CLOSE;
    case BIN_OP_QUITQ:
        return CONN_REQ_CLOSE;
    case BIN_OP_FLUSH: case BIN_OP_FLUSHQ:
        bin_flush(c, &ctx, &req);
        break;
    case BIN_OP_NOOP:
        bin_reply(c, &req, BIN_STATUS_SUCCESS, 0, NULL, 0, NULL, 0, NULL, 0);
        break;
    case BIN_OP_VERSION:
        bin_reply(c, &req, BIN_STATUS_SUCCESS, 0, NULL, 0, NULL, 0,
                  mckv_version, (uint32_t)strlen(mckv_version));
        break;
    case BIN_OP_STAT:
        bin_stat(c, &req);
        break;
    case BIN_OP_SASL_LIST_MECHS: case BIN_OP_SASL_AUTH: case BIN_OP_SASL_STEP:
        if (!c->owner->auth_sasl) {
            bin_error(c, &req, BIN_STATUS_UNKNOWN_COMMAND);
        } else if (req.opcode == BIN_OP_SASL_LIST_MECHS) {
            bin_sasl_mechs(c, &req);
        } else if (bin_sasl(c, &req)) {
            c->rstart = start;
            return CONN_REQ_PARKED;
        }
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
        return CONN_REQ_PARKED;
    case CONN_PARK_FAIL:
        bin_error(c, &req, BIN_STATUS_ETMPFAIL);
        break;
    case CONN_PARK_NONE:
        break;
    }
    return CONN_REQ_OK;
}
