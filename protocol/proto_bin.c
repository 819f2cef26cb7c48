/*
 * proto_bin.c: the memcached binary protocol, parse and compose.
 *
 * Pure functions over a caller's buffer: no allocation, no sockets, no cache.
 * The server's binary front end (server/process_bin.c) calls
 * proto_bin_parse_req() on its read buffer and writes replies with
 * proto_bin_compose_hdr(); clients (mcstat, tests, the load tool) use the
 * request composer and proto_bin_parse_rsp().
 *
 * Per-opcode rules follow memcached 1.6's dispatch_bin_command(): which
 * extras length an opcode takes, whether it needs, allows or forbids a key,
 * and whether it may carry a value. All of them depend on the 24-byte header
 * only, so a bad or oversized request is reported as soon as its header is
 * buffered and the caller can swallow the body without storing it. Checks
 * run in this order:
 *   1. wrong magic (first byte, even before 24 bytes)   -> PARSE_EFATAL
 *   2. fewer than 24 bytes                               -> PARSE_EUNFIN
 *   3. extlen + keylen > bodylen                         -> PARSE_EFATAL
 *   4. keylen > 250, or lengths that do not fit opcode   -> PARSE_EINVALID
 *   5. bodylen > max_body                                -> PARSE_EOVERSIZE
 * (rules before size, as memcached: a GET announcing 2 GB is invalid, and a
 * SET announcing 2 GB is too large)
 *   6. fewer than 24 + bodylen bytes                     -> PARSE_EUNFIN
 *   7. otherwise                                         -> PARSE_OK
 */
#include <config.h>

#include <string.h>

#include "protocol/proto_bin.h"

/* Where each header field sits (memcached's protocol_binary.h). */
#define HDR_MAGIC 0
#define HDR_OPCODE 1
#define HDR_KEYLEN 2
#define HDR_EXTLEN 4
#define HDR_DATATYPE 5
#define HDR_VBUCKET 6 /* status in a response */
#define HDR_BODYLEN 8
#define HDR_OPAQUE 12
#define HDR_CAS 16

enum key_rule {
    KEY_FORBIDDEN = 0,
    KEY_REQUIRED,
    KEY_OPTIONAL,
};

/* What one opcode may carry. `known` is false for opcodes we do not know:
 * those parse OK with no extras decoded, so the caller answers
 * UNKNOWN_COMMAND. */
struct op_rule {
    bool known;
    uint8_t extlen;      /* the one extras length the opcode takes... */
    bool extlen_or_zero; /* ...or also 0 (FLUSH: the delay is optional) */
    uint8_t key;         /* enum key_rule */
    bool value_allowed;
};

#define RULE(ext, key_rule, value) \
    { .known = true, .extlen = (ext), .key = (key_rule), \
      .value_allowed = (value) }

static const struct op_rule op_rules[256] = {
    [BIN_OP_GET] = RULE(0, KEY_REQUIRED, false),
    [BIN_OP_GETQ] = RULE(0, KEY_REQUIRED, false),
    [BIN_OP_GETK] = RULE(0, KEY_REQUIRED, false),
    [BIN_OP_GETKQ] = RULE(0, KEY_REQUIRED, false),

    [BIN_OP_SET] = RULE(8, KEY_REQUIRED, true),
    [BIN_OP_SETQ] = RULE(8, KEY_REQUIRED, true),
    [BIN_OP_ADD] = RULE(8, KEY_REQUIRED, true),
    [BIN_OP_ADDQ] = RULE(8, KEY_REQUIRED, true),
    [BIN_OP_REPLACE] = RULE(8, KEY_REQUIRED, true),
    [BIN_OP_REPLACEQ] = RULE(8, KEY_REQUIRED, true),

    [BIN_OP_APPEND] = RULE(0, KEY_REQUIRED, true),
    [BIN_OP_APPENDQ] = RULE(0, KEY_REQUIRED, true),
    [BIN_OP_PREPEND] = RULE(0, KEY_REQUIRED, true),
    [BIN_OP_PREPENDQ] = RULE(0, KEY_REQUIRED, true),

    [BIN_OP_DELETE] = RULE(0, KEY_REQUIRED, false),
    [BIN_OP_DELETEQ] = RULE(0, KEY_REQUIRED, false),

    [BIN_OP_INCREMENT] = RULE(20, KEY_REQUIRED, false),
    [BIN_OP_INCREMENTQ] = RULE(20, KEY_REQUIRED, false),
    [BIN_OP_DECREMENT] = RULE(20, KEY_REQUIRED, false),
    [BIN_OP_DECREMENTQ] = RULE(20, KEY_REQUIRED, false),

    [BIN_OP_QUIT] = RULE(0, KEY_FORBIDDEN, false),
    [BIN_OP_QUITQ] = RULE(0, KEY_FORBIDDEN, false),
    [BIN_OP_NOOP] = RULE(0, KEY_FORBIDDEN, false),
    [BIN_OP_VERSION] = RULE(0, KEY_FORBIDDEN, false),

    [BIN_OP_FLUSH] = { .known = true, .extlen = 4, .extlen_or_zero = true,
                       .key = KEY_FORBIDDEN, .value_allowed = false },
    [BIN_OP_FLUSHQ] = { .known = true, .extlen = 4, .extlen_or_zero = true,
                        .key = KEY_FORBIDDEN, .value_allowed = false },

    [BIN_OP_STAT] = RULE(0, KEY_OPTIONAL, false),
    [BIN_OP_VERBOSITY] = RULE(4, KEY_FORBIDDEN, false),

    [BIN_OP_TOUCH] = RULE(4, KEY_REQUIRED, false),
    [BIN_OP_GAT] = RULE(4, KEY_REQUIRED, false),
    [BIN_OP_GATQ] = RULE(4, KEY_REQUIRED, false),
    [BIN_OP_GATK] = RULE(4, KEY_REQUIRED, false),
    [BIN_OP_GATKQ] = RULE(4, KEY_REQUIRED, false),

    [BIN_OP_SASL_LIST_MECHS] = RULE(0, KEY_FORBIDDEN, false),
    [BIN_OP_SASL_AUTH] = RULE(0, KEY_REQUIRED, true),
    [BIN_OP_SASL_STEP] = RULE(0, KEY_REQUIRED, true),
};

static uint16_t
get16(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint16_t)((u[0] << 8) | u[1]);
}

static void
put16(char *p, uint16_t v)
{
    p[0] = (char)(v >> 8);
    p[1] = (char)v;
}

/* True when the header's lengths fit what the opcode may carry. */
static bool
req_lengths_fit(const struct bin_req *req)
{
    const struct op_rule *rule = &op_rules[req->opcode];
    uint32_t vlen = req->bodylen - req->extlen - req->keylen;

    if (req->keylen > PROTO_KEY_MAX) {
        return false; /* memcached checks this for every opcode */
    }
    if (!rule->known) {
        return true;
    }
    if (req->extlen != rule->extlen &&
        !(rule->extlen_or_zero && req->extlen == 0)) {
        return false;
    }
    if (rule->key == KEY_REQUIRED && req->keylen == 0) {
        return false;
    }
    if (rule->key == KEY_FORBIDDEN && req->keylen != 0) {
        return false;
    }
    if (!rule->value_allowed && vlen != 0) {
        return false;
    }
    return true;
}

/* Decodes the extras of a known opcode; the lengths were checked. */
static void
req_decode_extras(struct bin_req *req, const char *ext)
{
    switch (req->opcode) {
    case BIN_OP_SET: case BIN_OP_SETQ:
    case BIN_OP_ADD: case BIN_OP_ADDQ:
    case BIN_OP_REPLACE: case BIN_OP_REPLACEQ:
        req->flags = proto_bin_get32(ext);
        req->exptime = proto_bin_get32(ext + 4);
        break;
    case BIN_OP_INCREMENT: case BIN_OP_INCREMENTQ:
    case BIN_OP_DECREMENT: case BIN_OP_DECREMENTQ:
        req->delta = proto_bin_get64(ext);
        req->initial = proto_bin_get64(ext + 8);
        req->exptime = proto_bin_get32(ext + 16);
        break;
    case BIN_OP_TOUCH: case BIN_OP_GAT: case BIN_OP_GATQ:
    case BIN_OP_GATK: case BIN_OP_GATKQ:
        req->exptime = proto_bin_get32(ext);
        break;
    case BIN_OP_FLUSH: case BIN_OP_FLUSHQ:
        if (req->extlen == 4) {
            req->exptime = proto_bin_get32(ext);
            req->has_exptime = true;
        }
        break;
    case BIN_OP_VERBOSITY:
        req->verbosity = proto_bin_get32(ext);
        break;
    default:
        break;
    }
}

/*
 * Any thread; pure. See proto_bin.h for the contract. key and value always
 * point into buf (key at 24 + extlen, value right after the key), even when
 * their length is 0, so callers may pass them to memcpy() unconditionally.
 */
proto_parse
proto_bin_parse_req(struct bin_req *req, const char *buf, size_t len,
                    uint32_t max_body, size_t *consumed)
{
    const char *ext;

    memset(req, 0, sizeof(*req));
    *consumed = 0;

    /* A wrong first byte cannot become right with more bytes. */
    if (len > 0 && (unsigned char)buf[HDR_MAGIC] != PROTO_BIN_REQ_MAGIC) {
        return PARSE_EFATAL;
    }
    if (len < PROTO_BIN_HDR_LEN) {
        return PARSE_EUNFIN;
    }

    req->opcode = (uint8_t)buf[HDR_OPCODE];
    req->keylen = get16(buf + HDR_KEYLEN);
    req->extlen = (uint8_t)buf[HDR_EXTLEN];
    req->datatype = (uint8_t)buf[HDR_DATATYPE];
    req->vbucket = get16(buf + HDR_VBUCKET);
    req->bodylen = proto_bin_get32(buf + HDR_BODYLEN);
    req->opaque = proto_bin_get32(buf + HDR_OPAQUE);
    req->cas = proto_bin_get64(buf + HDR_CAS);

    /* Both are at most 16 bits wide, so the sum cannot overflow. */
    if ((uint32_t)req->extlen + req->keylen > req->bodylen) {
        return PARSE_EFATAL;
    }
    if (!req_lengths_fit(req)) {
        *consumed = PROTO_BIN_HDR_LEN;
        return PARSE_EINVALID;
    }
    if (req->bodylen > max_body) {
        *consumed = PROTO_BIN_HDR_LEN;
        return PARSE_EOVERSIZE;
    }
    /* Compare without computing 24 + bodylen, which may wrap size_t on
     * 32-bit builds when max_body is near UINT32_MAX. */
    if (len - PROTO_BIN_HDR_LEN < req->bodylen) {
        return PARSE_EUNFIN;
    }

    ext = buf + PROTO_BIN_HDR_LEN;
    req->key = ext + req->extlen;
    req->vlen = req->bodylen - req->extlen - req->keylen;
    req->value = req->key + req->keylen;
    if (op_rules[req->opcode].known) {
        req_decode_extras(req, ext);
    }
    *consumed = PROTO_BIN_HDR_LEN + (size_t)req->bodylen;
    return PARSE_OK;
}

/* Any thread; pure. */
bool
proto_bin_is_quiet(uint8_t opcode)
{
    switch (opcode) {
    case BIN_OP_GETQ:
    case BIN_OP_GETKQ:
    case BIN_OP_SETQ:
    case BIN_OP_ADDQ:
    case BIN_OP_REPLACEQ:
    case BIN_OP_DELETEQ:
    case BIN_OP_INCREMENTQ:
    case BIN_OP_DECREMENTQ:
    case BIN_OP_QUITQ:
    case BIN_OP_FLUSHQ:
    case BIN_OP_APPENDQ:
    case BIN_OP_PREPENDQ:
    case BIN_OP_GATQ:
    case BIN_OP_GATKQ:
        return true;
    default:
        return false;
    }
}

static size_t
compose_any_hdr(char *out, uint8_t magic, uint8_t opcode, uint16_t status,
                uint8_t extlen, uint16_t keylen, uint32_t bodylen,
                uint32_t opaque, uint64_t cas)
{
    out[HDR_MAGIC] = (char)magic;
    out[HDR_OPCODE] = (char)opcode;
    put16(out + HDR_KEYLEN, keylen);
    out[HDR_EXTLEN] = (char)extlen;
    out[HDR_DATATYPE] = 0; /* raw bytes: the only datatype memcached knows */
    put16(out + HDR_VBUCKET, status);
    proto_bin_put32(out + HDR_BODYLEN, bodylen);
    proto_bin_put32(out + HDR_OPAQUE, opaque);
    proto_bin_put64(out + HDR_CAS, cas);
    return PROTO_BIN_HDR_LEN;
}

/* Any thread; writes exactly 24 bytes to out. opaque is written big-endian,
 * the same way proto_bin_parse_req() read it, so the client sees its own
 * bytes back. */
size_t
proto_bin_compose_hdr(char *out, uint8_t opcode, uint16_t status,
                      uint8_t extlen, uint16_t keylen, uint32_t bodylen,
                      uint32_t opaque, uint64_t cas)
{
    return compose_any_hdr(out, PROTO_BIN_RES_MAGIC, opcode, status, extlen,
                           keylen, bodylen, opaque, cas);
}

/* Any thread; writes exactly 24 bytes to out (vbucket 0). */
size_t
proto_bin_compose_req_hdr(char *out, uint8_t opcode, uint8_t extlen,
                          uint16_t keylen, uint32_t bodylen, uint32_t opaque,
                          uint64_t cas)
{
    return compose_any_hdr(out, PROTO_BIN_REQ_MAGIC, opcode, 0, extlen,
                           keylen, bodylen, opaque, cas);
}

/*
 * Any thread; pure. Same order of checks as proto_bin_parse_req() without
 * the per-opcode rules (a client takes what the server sends). On
 * PARSE_EOVERSIZE the header is decoded and *consumed = 24. extras, key and
 * value always point into buf on PARSE_OK.
 */
proto_parse
proto_bin_parse_rsp(struct bin_rsp *rsp, const char *buf, size_t len,
                    uint32_t max_body, size_t *consumed)
{
    memset(rsp, 0, sizeof(*rsp));
    *consumed = 0;

    if (len > 0 && (unsigned char)buf[HDR_MAGIC] != PROTO_BIN_RES_MAGIC) {
        return PARSE_EFATAL;
    }
    if (len < PROTO_BIN_HDR_LEN) {
        return PARSE_EUNFIN;
    }

    rsp->opcode = (uint8_t)buf[HDR_OPCODE];
    rsp->keylen = get16(buf + HDR_KEYLEN);
    rsp->extlen = (uint8_t)buf[HDR_EXTLEN];
    rsp->status = get16(buf + HDR_VBUCKET);
    rsp->bodylen = proto_bin_get32(buf + HDR_BODYLEN);
    rsp->opaque = proto_bin_get32(buf + HDR_OPAQUE);
    rsp->cas = proto_bin_get64(buf + HDR_CAS);

    if ((uint32_t)rsp->extlen + rsp->keylen > rsp->bodylen) {
        return PARSE_EFATAL;
    }
    if (rsp->bodylen > max_body) {
        *consumed = PROTO_BIN_HDR_LEN;
        return PARSE_EOVERSIZE;
    }
    if (len - PROTO_BIN_HDR_LEN < rsp->bodylen) {
        return PARSE_EUNFIN;
    }

    rsp->extras = buf + PROTO_BIN_HDR_LEN;
    rsp->key = rsp->extras + rsp->extlen;
    rsp->value = rsp->key + rsp->keylen;
    rsp->vlen = rsp->bodylen - rsp->extlen - rsp->keylen;
    *consumed = PROTO_BIN_HDR_LEN + (size_t)rsp->bodylen;
    return PARSE_OK;
}
