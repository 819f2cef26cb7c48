/*
 * proto_bin.h: the memcached binary protocol, parse and compose.
 *
 * Wire format (all integers big-endian), from memcached's protocol_binary.h:
 *   magic(1) opcode(1) keylen(2) extlen(1) datatype(1) vbucket|status(2)
 *   bodylen(4) opaque(4) cas(8), then extras, key, value (bodylen bytes).
 *
 * proto_bin_parse_req() only looks at bytes; it knows the per-opcode rules
 * for extras and key lengths (e.g. SET needs 8 bytes of extras and a key) and
 * decodes the extras into the request, so the server never touches the wire.
 */
#ifndef MCKV_PROTOCOL_PROTO_BIN_H
#define MCKV_PROTOCOL_PROTO_BIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/proto.h"

#define PROTO_BIN_HDR_LEN 24
#define PROTO_BIN_REQ_MAGIC 0x80
#define PROTO_BIN_RES_MAGIC 0x81

enum proto_bin_opcode {
    BIN_OP_GET = 0x00,
    BIN_OP_SET = 0x01,
    BIN_OP_ADD = 0x02,
    BIN_OP_REPLACE = 0x03,
    BIN_OP_DELETE = 0x04,
    BIN_OP_INCREMENT = 0x05,
    BIN_OP_DECREMENT = 0x06,
    BIN_OP_QUIT = 0x07,
    BIN_OP_FLUSH = 0x08,
    BIN_OP_GETQ = 0x09,
    BIN_OP_NOOP = 0x0a,
    BIN_OP_VERSION = 0x0b,
    BIN_OP_GETK = 0x0c,
    BIN_OP_GETKQ = 0x0d,
    BIN_OP_APPEND = 0x0e,
    BIN_OP_PREPEND = 0x0f,
    BIN_OP_STAT = 0x10,
    BIN_OP_SETQ = 0x11,
    BIN_OP_ADDQ = 0x12,
    BIN_OP_REPLACEQ = 0x13,
    BIN_OP_DELETEQ = 0x14,
    BIN_OP_INCREMENTQ = 0x15,
    BIN_OP_DECREMENTQ = 0x16,
    BIN_OP_QUITQ = 0x17,
    BIN_OP_FLUSHQ = 0x18,
    BIN_OP_APPENDQ = 0x19,
    BIN_OP_PREPENDQ = 0x1a,
    BIN_OP_VERBOSITY = 0x1b,
    BIN_OP_TOUCH = 0x1c,
    BIN_OP_GAT = 0x1d,
    BIN_OP_GATQ = 0x1e,
    BIN_OP_SASL_LIST_MECHS = 0x20,
    BIN_OP_SASL_AUTH = 0x21,
    BIN_OP_SASL_STEP = 0x22,
    BIN_OP_GATK = 0x23,
    BIN_OP_GATKQ = 0x24,
};

enum proto_bin_status {
    BIN_STATUS_SUCCESS = 0x00,
    BIN_STATUS_KEY_ENOENT = 0x01,
    BIN_STATUS_KEY_EEXISTS = 0x02,
    BIN_STATUS_E2BIG = 0x03,
    BIN_STATUS_EINVAL = 0x04,
    BIN_STATUS_NOT_STORED = 0x05,
    BIN_STATUS_DELTA_BADVAL = 0x06,
    BIN_STATUS_NOT_MY_VBUCKET = 0x07,
    BIN_STATUS_AUTH_ERROR = 0x20,
    BIN_STATUS_AUTH_CONTINUE = 0x21,
    BIN_STATUS_UNKNOWN_COMMAND = 0x81,
    BIN_STATUS_ENOMEM = 0x82,
    BIN_STATUS_NOT_SUPPORTED = 0x83,
    BIN_STATUS_EINTERNAL = 0x84,
    BIN_STATUS_EBUSY = 0x85,
    BIN_STATUS_ETMPFAIL = 0x86,
};

/* A parsed request. Pointers point into the caller's buffer and are valid
 * while that buffer is. Extras are decoded into the named fields; fields an
 * opcode does not carry are zero. */
struct bin_req {
    uint8_t opcode;
    uint8_t extlen;
    uint8_t datatype;
    uint16_t keylen;
    uint16_t vbucket;
    uint32_t bodylen;
    uint32_t opaque;
    uint64_t cas;

    const char *key;     /* keylen bytes */
    const char *value;   /* vlen bytes */
    uint32_t vlen;

    uint32_t flags;      /* SET/ADD/REPLACE */
    uint32_t exptime;    /* SET/ADD/REPLACE, INCR/DECR, TOUCH/GAT*, FLUSH (delay) */
    uint64_t delta;      /* INCR/DECR */
    uint64_t initial;    /* INCR/DECR */
    uint32_t verbosity;  /* VERBOSITY */
    bool has_exptime;    /* FLUSH: extras present (delay given) */
};

/*
 * Parses one request from buf[0..len).
 *
 * PARSE_OK: *req is filled, *consumed = 24 + bodylen.
 * PARSE_EUNFIN: fewer than 24 + bodylen bytes; nothing consumed. When at
 *   least a header is there, req holds the header so the caller can see the
 *   announced size.
 * PARSE_EOVERSIZE: bodylen > max_body (the header alone was decoded into
 *   req; *consumed = 24 and the caller should skip req->bodylen more bytes,
 *   replying E2BIG). Never requires the body to be buffered.
 * PARSE_EINVALID: header is well formed but extras/key/body lengths do not
 *   fit the opcode, or a key is over 250 bytes; header decoded, *consumed =
 *   24 and the caller skips req->bodylen bytes and replies EINVAL. Unknown
 *   opcodes are NOT invalid: they parse OK so the caller can answer
 *   UNKNOWN_COMMAND with the opaque.
 * PARSE_EFATAL: wrong magic or keylen + extlen > bodylen: close the stream.
 */
proto_parse proto_bin_parse_req(struct bin_req *req, const char *buf,
                                size_t len, uint32_t max_body,
                                size_t *consumed);

/* True for the quiet opcodes (GETQ, SETQ, ..., GATKQ). */
bool proto_bin_is_quiet(uint8_t opcode);

/*
 * Writes a 24-byte response header into out (which must have 24 bytes).
 * bodylen = extlen + keylen + value length. Returns 24.
 */
size_t proto_bin_compose_hdr(char *out, uint8_t opcode, uint16_t status,
                             uint8_t extlen, uint16_t keylen, uint32_t bodylen,
                             uint32_t opaque, uint64_t cas);

/*
 * Writes a request header (magic 0x80) into out: used by clients (mcstat,
 * tests, the load tool). Returns 24.
 */
size_t proto_bin_compose_req_hdr(char *out, uint8_t opcode, uint8_t extlen,
                                 uint16_t keylen, uint32_t bodylen,
                                 uint32_t opaque, uint64_t cas);

/* A parsed response (for clients and tests). */
struct bin_rsp {
    uint8_t opcode;
    uint8_t extlen;
    uint16_t keylen;
    uint16_t status;
    uint32_t bodylen;
    uint32_t opaque;
    uint64_t cas;
    const char *extras;
    const char *key;
    const char *value;
    uint32_t vlen;
};

/* Parses one response; same PARSE_OK / PARSE_EUNFIN / PARSE_EFATAL contract
 * as proto_bin_parse_req (no size limit other than max_body). */
proto_parse proto_bin_parse_rsp(struct bin_rsp *rsp, const char *buf,
                                size_t len, uint32_t max_body,
                                size_t *consumed);

/* Big-endian helpers shared by composers. */
static inline void
proto_bin_put32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24); p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);  p[3] = (char)v;
}
static inline void
proto_bin_put64(char *p, uint64_t v)
{
    proto_bin_put32(p, (uint32_t)(v >> 32));
    proto_bin_put32(p + 4, (uint32_t)v);
}
static inline uint32_t
proto_bin_get32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return ((uint32_t)u[0] << 24) | ((uint32_t)u[1] << 16) |
           ((uint32_t)u[2] << 8) | u[3];
}
static inline uint64_t
proto_bin_get64(const char *p)
{
    return ((uint64_t)proto_bin_get32(p) << 32) | proto_bin_get32(p + 4);
}

#endif
