/*
 * fuzz_proto_bin.c: libFuzzer target for protocol/proto_bin.c.
 *
 * The input is parsed as a stream of requests the way a connection would be:
 * advance by what was consumed, skip the announced body after EOVERSIZE or
 * EINVALID, stop at EUNFIN or EFATAL. Every result is checked against the
 * contract in proto_bin.h (consumed never past the input, pointers inside it,
 * lengths adding up, per-opcode rules held) and any violation abort()s. The
 * same input is then parsed as a stream of responses.
 *
 * Build (see tests/fuzz/corpus/bin/ for the seeds):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I<src> -I<build> \
 *     -D_GNU_SOURCE tests/fuzz/fuzz_proto_bin.c protocol/proto_bin.c
 */
#include <config.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/proto_bin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

/* Reads every byte of [p, p + n) so ASan sees an out-of-bounds pointer. */
static unsigned
touch(const char *p, size_t n)
{
    volatile unsigned sum = 0;
    for (size_t i = 0; i < n; i++) {
        sum += (unsigned char)p[i];
    }
    return sum;
}

static bool
inside(const char *p, size_t n, const char *lo, const char *hi)
{
    return p >= lo && p <= hi && n <= (size_t)(hi - p);
}

/* The per-opcode rules of memcached 1.6, restated independently of the
 * parser's table: extras length, key and value. */
static void
check_opcode_rules(const struct bin_req *req)
{
    bool key = req->keylen > 0;
    bool value = req->vlen > 0;

    CHECK(req->keylen <= PROTO_KEY_MAX);
    switch (req->opcode) {
    case BIN_OP_GET: case BIN_OP_GETQ: case BIN_OP_GETK: case BIN_OP_GETKQ:
    case BIN_OP_DELETE: case BIN_OP_DELETEQ:
        CHECK(req->extlen == 0 && key && !value);
        break;
    case BIN_OP_SET: case BIN_OP_SETQ: case BIN_OP_ADD: case BIN_OP_ADDQ:
    case BIN_OP_REPLACE: case BIN_OP_REPLACEQ:
        CHECK(req->extlen == 8 && key);
        break;
    case BIN_OP_APPEND: case BIN_OP_APPENDQ: case BIN_OP_PREPEND:
    case BIN_OP_PREPENDQ: case BIN_OP_SASL_AUTH: case BIN_OP_SASL_STEP:
        CHECK(req->extlen == 0 && key);
        break;
    case BIN_OP_INCREMENT: case BIN_OP_INCREMENTQ: case BIN_OP_DECREMENT:
    case BIN_OP_DECREMENTQ:
        CHECK(req->extlen == 20 && key && !value);
        break;
    case BIN_OP_QUIT: case BIN_OP_QUITQ: case BIN_OP_NOOP:
    case BIN_OP_VERSION: case BIN_OP_SASL_LIST_MECHS:
        CHECK(req->bodylen == 0);
        break;
    case BIN_OP_FLUSH: case BIN_OP_FLUSHQ:
        CHECK((req->extlen == 0 || req->extlen == 4) && !key && !value);
        CHECK(req->has_exptime == (req->extlen == 4));
        break;
    case BIN_OP_STAT:
        CHECK(req->extlen == 0 && !value);
        break;
    case BIN_OP_VERBOSITY:
        CHECK(req->extlen == 4 && !key && !value);
        break;
    case BIN_OP_TOUCH: case BIN_OP_GAT: case BIN_OP_GATQ: case BIN_OP_GATK:
    case BIN_OP_GATKQ:
        CHECK(req->extlen == 4 && key && !value);
        break;
    default:
        /* unknown: parsed, nothing decoded */
        CHECK(req->flags == 0 && req->exptime == 0 && req->delta == 0 &&
              req->initial == 0 && req->verbosity == 0 && !req->has_exptime);
        break;
    }
}

/* A prefix of a whole request, in a buffer of exactly that size, must be
 * unfinished and consume nothing. */
static void
check_prefix_unfinished(const char *p, size_t whole, uint32_t max_body)
{
    size_t cut = whole > 4096 ? 4096 : whole - 1;
    char *copy = malloc(cut > 0 ? cut : 1);
    struct bin_req req;
    size_t consumed = 1;

    CHECK(copy != NULL);
    memcpy(copy, p, cut);
    CHECK(proto_bin_parse_req(&req, copy, cut, max_body, &consumed) ==
          PARSE_EUNFIN);
    CHECK(consumed == 0);
    free(copy);
}

static void
fuzz_requests(const char *buf, size_t len, uint32_t max_body)
{
    size_t off = 0;

    while (off <= len) {
        const char *p = buf + off;
        size_t avail = len - off;
        struct bin_req req;
        struct bin_req again;
        size_t consumed = (size_t)-1;
        size_t consumed_again = (size_t)-1;
        proto_parse rc = proto_bin_parse_req(&req, p, avail, max_body,
                                             &consumed);

        /* pure: the same bytes give the same answer */
        CHECK(proto_bin_parse_req(&again, p, avail, max_body,
                                  &consumed_again) == rc);
        CHECK(consumed_again == consumed);
        CHECK(consumed <= avail);

        switch (rc) {
        case PARSE_OK:
            CHECK(avail >= PROTO_BIN_HDR_LEN);
            CHECK((unsigned char)p[0] == PROTO_BIN_REQ_MAGIC);
            CHECK(req.opcode == (uint8_t)p[1]);
            CHECK(req.bodylen <= max_body);
            CHECK(consumed == PROTO_BIN_HDR_LEN + (size_t)req.bodylen);
            CHECK((uint32_t)req.extlen + req.keylen + req.vlen ==
                  req.bodylen);
            CHECK(req.key == p + PROTO_BIN_HDR_LEN + req.extlen);
            CHECK(req.value == req.key + req.keylen);
            CHECK(inside(req.key, req.keylen, p, p + consumed));
            CHECK(inside(req.value, req.vlen, p, p + consumed));
            touch(req.key, req.keylen);
            touch(req.value, req.vlen);
            check_opcode_rules(&req);
            check_prefix_unfinished(p, consumed, max_body);
            off += consumed;
            break;
        case PARSE_EOVERSIZE:
        case PARSE_EINVALID:
            CHECK(consumed == PROTO_BIN_HDR_LEN);
            CHECK((uint32_t)req.extlen + req.keylen <= req.bodylen);
            if (rc == PARSE_EOVERSIZE) {
                CHECK(req.bodylen > max_body);
            }
            if (req.bodylen > avail - consumed) {
                return; /* the rest of the stream is swallowed */
            }
            off += consumed + req.bodylen;
            break;
        case PARSE_EUNFIN:
            CHECK(consumed == 0);
            CHECK(avail < PROTO_BIN_HDR_LEN ||
                  req.bodylen > avail - PROTO_BIN_HDR_LEN);
            return;
        case PARSE_EFATAL:
            CHECK(consumed == 0);
            CHECK(avail > 0);
            return;
        default:
            abort();
        }
    }
    abort(); /* off can never pass len */
}

static void
fuzz_responses(const char *buf, size_t len, uint32_t max_body)
{
    size_t off = 0;

    for (;;) {
        const char *p = buf + off;
        size_t avail = len - off;
        struct bin_rsp rsp;
        size_t consumed = (size_t)-1;
        proto_parse rc = proto_bin_parse_rsp(&rsp, p, avail, max_body,
                                             &consumed);

        CHECK(consumed <= avail);
        switch (rc) {
        case PARSE_OK:
            CHECK((unsigned char)p[0] == PROTO_BIN_RES_MAGIC);
            CHECK(consumed == PROTO_BIN_HDR_LEN + (size_t)rsp.bodylen);
            CHECK((uint32_t)rsp.extlen + rsp.keylen + rsp.vlen ==
                  rsp.bodylen);
            CHECK(rsp.extras == p + PROTO_BIN_HDR_LEN);
            CHECK(rsp.key == rsp.extras + rsp.extlen);
            CHECK(rsp.value == rsp.key + rsp.keylen);
            CHECK(inside(rsp.value, rsp.vlen, p, p + consumed));
            touch(rsp.extras, rsp.bodylen);
            off += consumed;
            break;
        case PARSE_EOVERSIZE:
            CHECK(consumed == PROTO_BIN_HDR_LEN);
            CHECK(rsp.bodylen > max_body);
            if (rsp.bodylen > avail - consumed) {
                return;
            }
            off += consumed + rsp.bodylen;
            break;
        case PARSE_EUNFIN:
        case PARSE_EFATAL:
            CHECK(consumed == 0);
            return;
        default:
            abort(); /* responses are never EINVALID */
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;

    fuzz_requests(buf, size, 1024 * 1024);
    fuzz_requests(buf, size, 16);      /* exercises EOVERSIZE and skipping */
    fuzz_requests(buf, size, UINT32_MAX);
    fuzz_responses(buf, size, 1024 * 1024);
    fuzz_responses(buf, size, 16);
    return 0;
}
