/*
 * test_proto_bin.c: unit tests for protocol/proto_bin.c.
 *
 * Every opcode is composed with proto_bin_compose_req_hdr() plus its extras,
 * key and value, parsed back field by field and fed at every split point
 * (each prefix is copied into a buffer of exactly that size, so ASan catches
 * a read past len). Then garbage, truncated and lying headers, oversize
 * bodies, key length limits, wrong extras per opcode, pipelines, and the
 * response composer and parser.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "protocol/proto_bin.h"

#define MAX_BODY (1024u * 1024u)
#define BUF_SIZE (64 * 1024)

/* One request of the sample set: what goes on the wire and what the parser
 * must decode from the extras. */
struct sample {
    uint8_t opcode;
    const char *ext;
    uint8_t extlen;
    const char *key;
    const char *value;
    uint32_t opaque;
    uint64_t cas;
    /* expected decoded extras */
    uint32_t flags;
    uint32_t exptime;
    uint64_t delta;
    uint64_t initial;
    uint32_t verbosity;
    bool has_exptime;
};

/* flags 0xdeadbeef, exptime 3600 */
static const char set_ext[8] = "\xde\xad\xbe\xef\x00\x00\x0e\x10";
/* delta 0x0102030405060708, initial UINT64_MAX, exptime 0xffffffff */
static const char incr_ext[20] =
    "\x01\x02\x03\x04\x05\x06\x07\x08"
    "\xff\xff\xff\xff\xff\xff\xff\xff"
    "\xff\xff\xff\xff";
/* exptime 0x80000001 */
static const char touch_ext[4] = "\x80\x00\x00\x01";
/* delay / verbosity 7 */
static const char four_ext[4] = "\x00\x00\x00\x07";

#define SET_LIKE(op) \
    { .opcode = (op), .ext = set_ext, .extlen = 8, .key = "user:42", \
      .value = "hello world", .opaque = 0x11223344, .cas = 99, \
      .flags = 0xdeadbeef, .exptime = 3600 }
#define GET_LIKE(op) \
    { .opcode = (op), .key = "user:42", .opaque = 0xa1b2c3d4 }
#define INCR_LIKE(op) \
    { .opcode = (op), .ext = incr_ext, .extlen = 20, .key = "counter", \
      .opaque = 7, .cas = 0x0102030405060708ull, \
      .delta = 0x0102030405060708ull, .initial = UINT64_MAX, \
      .exptime = 0xffffffffu }
#define TOUCH_LIKE(op) \
    { .opcode = (op), .ext = touch_ext, .extlen = 4, .key = "t", \
      .opaque = 0xffffffffu, .exptime = 0x80000001u }
#define APPEND_LIKE(op) \
    { .opcode = (op), .key = "k", .value = "tail", .opaque = 5 }
#define BARE(op) { .opcode = (op), .opaque = 0x42 }

static const struct sample samples[] = {
    GET_LIKE(BIN_OP_GET),
    SET_LIKE(BIN_OP_SET),
    SET_LIKE(BIN_OP_ADD),
    SET_LIKE(BIN_OP_REPLACE),
    { .opcode = BIN_OP_DELETE, .key = "gone", .cas = 12345 },
    INCR_LIKE(BIN_OP_INCREMENT),
    INCR_LIKE(BIN_OP_DECREMENT),
    BARE(BIN_OP_QUIT),
    BARE(BIN_OP_FLUSH),
    GET_LIKE(BIN_OP_GETQ),
    BARE(BIN_OP_NOOP),
    BARE(BIN_OP_VERSION),
    GET_LIKE(BIN_OP_GETK),
    GET_LIKE(BIN_OP_GETKQ),
    APPEND_LIKE(BIN_OP_APPEND),
    APPEND_LIKE(BIN_OP_PREPEND),
    BARE(BIN_OP_STAT),
    SET_LIKE(BIN_OP_SETQ),
    SET_LIKE(BIN_OP_ADDQ),
    SET_LIKE(BIN_OP_REPLACEQ),
    { .opcode = BIN_OP_DELETEQ, .key = "gone" },
    INCR_LIKE(BIN_OP_INCREMENTQ),
    INCR_LIKE(BIN_OP_DECREMENTQ),
    BARE(BIN_OP_QUITQ),
    { .opcode = BIN_OP_FLUSHQ, .ext = four_ext, .extlen = 4,
      .exptime = 7, .has_exptime = true },
    APPEND_LIKE(BIN_OP_APPENDQ),
    APPEND_LIKE(BIN_OP_PREPENDQ),
    { .opcode = BIN_OP_VERBOSITY, .ext = four_ext, .extlen = 4,
      .verbosity = 7 },
    TOUCH_LIKE(BIN_OP_TOUCH),
    TOUCH_LIKE(BIN_OP_GAT),
    TOUCH_LIKE(BIN_OP_GATQ),
    BARE(BIN_OP_SASL_LIST_MECHS),
    { .opcode = BIN_OP_SASL_AUTH, .key = "PLAIN",
      .value = "\0user\0secret" /* strlen stops early; see sample_vlen */ },
    { .opcode = BIN_OP_SASL_STEP, .key = "CRAM-MD5", .value = "response" },
    TOUCH_LIKE(BIN_OP_GATK),
    TOUCH_LIKE(BIN_OP_GATKQ),
    /* the variants the loops above do not cover */
    { .opcode = BIN_OP_FLUSH, .ext = four_ext, .extlen = 4, .exptime = 7,
      .has_exptime = true },
    { .opcode = BIN_OP_STAT, .key = "settings" },
    { .opcode = BIN_OP_SET, .ext = set_ext, .extlen = 8, .key = "empty",
      .flags = 0xdeadbeef, .exptime = 3600 },
    { .opcode = BIN_OP_APPEND, .key = "k" },
};
#define N_SAMPLES (sizeof(samples) / sizeof(samples[0]))

static size_t
sample_keylen(const struct sample *s)
{
    return s->key ? strlen(s->key) : 0;
}

static size_t
sample_vlen(const struct sample *s)
{
    if (s->opcode == BIN_OP_SASL_AUTH) {
        return sizeof("\0user\0secret") - 1;
    }
    return s->value ? strlen(s->value) : 0;
}

/* Writes a request with arbitrary parts; returns its length. */
static size_t
build_req(char *out, uint8_t opcode, const char *ext, uint8_t extlen,
          const char *key, uint16_t keylen, const char *value, uint32_t vlen,
          uint32_t opaque, uint64_t cas)
{
    size_t n = proto_bin_compose_req_hdr(out, opcode, extlen, keylen,
                                         (uint32_t)extlen + keylen + vlen,
                                         opaque, cas);
    assert_int_equal(n, PROTO_BIN_HDR_LEN);
    if (extlen > 0) {
        memcpy(out + n, ext, extlen);
        n += extlen;
    }
    if (keylen > 0) {
        memcpy(out + n, key, keylen);
        n += keylen;
    }
    if (vlen > 0) {
        memcpy(out + n, value, vlen);
        n += vlen;
    }
    return n;
}

static size_t
build_sample(char *out, const struct sample *s)
{
    return build_req(out, s->opcode, s->ext, s->extlen, s->key,
                     (uint16_t)sample_keylen(s), s->value,
                     (uint32_t)sample_vlen(s), s->opaque, s->cas);
}

/* Checks every field of a parsed request against its sample. */
static void
check_req(const struct bin_req *req, const struct sample *s, const char *buf)
{
    size_t keylen = sample_keylen(s);
    size_t vlen = sample_vlen(s);

    assert_int_equal(req->opcode, s->opcode);
    assert_int_equal(req->extlen, s->extlen);
    assert_int_equal(req->datatype, 0);
    assert_int_equal(req->keylen, keylen);
    assert_int_equal(req->vbucket, 0);
    assert_int_equal(req->bodylen, s->extlen + keylen + vlen);
    assert_int_equal(req->opaque, s->opaque);
    assert_true(req->cas == s->cas);
    /* key and value sit right after the extras, inside buf */
    assert_ptr_equal(req->key, buf + PROTO_BIN_HDR_LEN + s->extlen);
    assert_ptr_equal(req->value, req->key + keylen);
    if (keylen > 0) {
        assert_memory_equal(req->key, s->key, keylen);
    }
    assert_int_equal(req->vlen, vlen);
    if (vlen > 0) {
        assert_memory_equal(req->value, s->value, vlen);
    }
    assert_int_equal(req->flags, s->flags);
    assert_int_equal(req->exptime, s->exptime);
    assert_true(req->delta == s->delta);
    assert_true(req->initial == s->initial);
    assert_int_equal(req->verbosity, s->verbosity);
    assert_int_equal(req->has_exptime, s->has_exptime);
}

/* Parses buf[0..len) from a heap copy of exactly len bytes, so a read past
 * the end is an ASan error rather than luck. */
static proto_parse
parse_exact(struct bin_req *req, const char *buf, size_t len,
            uint32_t max_body, size_t *consumed)
{
    char *copy = malloc(len > 0 ? len : 1);
    proto_parse rc;

    assert_non_null(copy);
    memcpy(copy, buf, len);
    rc = proto_bin_parse_req(req, copy, len, max_body, consumed);
    /* pointers must not outlive the copy: rebase them onto buf */
    if (rc == PARSE_OK) {
        assert_true(req->key >= copy && req->key <= copy + len);
        assert_true(req->value >= copy && req->value + req->vlen <= copy + len);
        req->key = buf + (req->key - copy);
        req->value = buf + (req->value - copy);
    }
    free(copy);
    return rc;
}

static void
test_every_opcode_round_trip(void **state)
{
    char buf[BUF_SIZE];
    struct bin_req req;
    size_t consumed;
    (void)state;

    for (size_t i = 0; i < N_SAMPLES; i++) {
        size_t n = build_sample(buf, &samples[i]);

        consumed = 12345;
        assert_int_equal(parse_exact(&req, buf, n, MAX_BODY, &consumed),
                         PARSE_OK);
        assert_int_equal(consumed, n);
        check_req(&req, &samples[i], buf);

        /* trailing bytes of a next request are not touched */
        memset(buf + n, 0x80, 10);
        assert_int_equal(proto_bin_parse_req(&req, buf, n + 10, MAX_BODY,
                                             &consumed), PARSE_OK);
        assert_int_equal(consumed, n);
        check_req(&req, &samples[i], buf);
    }
}

/* Every opcode of proto_bin.h appears in the samples. */
static void
test_samples_cover_every_opcode(void **state)
{
    static const uint8_t all[] = {
        BIN_OP_GET, BIN_OP_SET, BIN_OP_ADD, BIN_OP_REPLACE, BIN_OP_DELETE,
        BIN_OP_INCREMENT, BIN_OP_DECREMENT, BIN_OP_QUIT, BIN_OP_FLUSH,
        BIN_OP_GETQ, BIN_OP_NOOP, BIN_OP_VERSION, BIN_OP_GETK, BIN_OP_GETKQ,
        BIN_OP_APPEND, BIN_OP_PREPEND, BIN_OP_STAT, BIN_OP_SETQ, BIN_OP_ADDQ,
        BIN_OP_REPLACEQ, BIN_OP_DELETEQ, BIN_OP_INCREMENTQ,
        BIN_OP_DECREMENTQ, BIN_OP_QUITQ, BIN_OP_FLUSHQ, BIN_OP_APPENDQ,
        BIN_OP_PREPENDQ, BIN_OP_VERBOSITY, BIN_OP_TOUCH, BIN_OP_GAT,
        BIN_OP_GATQ, BIN_OP_SASL_LIST_MECHS, BIN_OP_SASL_AUTH,
        BIN_OP_SASL_STEP, BIN_OP_GATK, BIN_OP_GATKQ,
    };
    (void)state;

    for (size_t i = 0; i < sizeof(all); i++) {
        bool found = false;
        for (size_t j = 0; j < N_SAMPLES; j++) {
            found = found || samples[j].opcode == all[i];
        }
        assert_true(found);
    }
}

static void
test_every_split_point(void **state)
{
    char buf[BUF_SIZE];
    struct bin_req req;
    size_t consumed;
    (void)state;

    for (size_t i = 0; i < N_SAMPLES; i++) {
        size_t n = build_sample(buf, &samples[i]);

        for (size_t cut = 0; cut < n; cut++) {
            consumed = 999;
            assert_int_equal(parse_exact(&req, buf, cut, MAX_BODY, &consumed),
                             PARSE_EUNFIN);
            assert_int_equal(consumed, 0);
            if (cut >= PROTO_BIN_HDR_LEN) {
                /* the header is decoded so the caller sees the size */
                assert_int_equal(req.opcode, samples[i].opcode);
                assert_int_equal(req.bodylen, n - PROTO_BIN_HDR_LEN);
            }
        }
        assert_int_equal(parse_exact(&req, buf, n, MAX_BODY, &consumed),
                         PARSE_OK);
        assert_int_equal(consumed, n);
        check_req(&req, &samples[i], buf);
    }
}

static void
test_wrong_magic_is_fatal(void **state)
{
    static const char *garbage[] = {
        "get foo\r\n",
        "\x81\x00\x00\x00",   /* a response where a request belongs */
        "\x00",
        ("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
         "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"),
    };
    char buf[64];
    struct bin_req req;
    size_t consumed;
    (void)state;

    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        size_t n = strlen(garbage[i]);
        if (n == 0) {
            n = 1; /* "\x00" */
        }
        for (size_t cut = 1; cut <= n; cut++) {
            consumed = 7;
            assert_int_equal(parse_exact(&req, garbage[i], cut, MAX_BODY,
                                         &consumed), PARSE_EFATAL);
            assert_int_equal(consumed, 0);
        }
    }

    /* a well-formed NOOP with only its magic changed */
    build_req(buf, BIN_OP_NOOP, NULL, 0, NULL, 0, NULL, 0, 1, 0);
    buf[0] = (char)PROTO_BIN_RES_MAGIC;
    assert_int_equal(parse_exact(&req, buf, PROTO_BIN_HDR_LEN, MAX_BODY,
                                 &consumed), PARSE_EFATAL);
    assert_int_equal(consumed, 0);

    /* nothing at all is simply unfinished */
    assert_int_equal(proto_bin_parse_req(&req, buf, 0, MAX_BODY, &consumed),
                     PARSE_EUNFIN);
    assert_int_equal(consumed, 0);
}

static void
test_truncated_header(void **state)
{
    char buf[PROTO_BIN_HDR_LEN];
    struct bin_req req;
    size_t consumed;
    (void)state;

    /* a header announcing a body that never comes: still unfinished */
    proto_bin_compose_req_hdr(buf, BIN_OP_SET, 8, 3, 8 + 3 + 100, 1, 0);
    for (size_t cut = 0; cut <= PROTO_BIN_HDR_LEN; cut++) {
        assert_int_equal(parse_exact(&req, buf, cut, MAX_BODY, &consumed),
                         PARSE_EUNFIN);
        assert_int_equal(consumed, 0);
    }
    assert_int_equal(req.bodylen, 111);
    assert_int_equal(req.keylen, 3);
    assert_int_equal(req.extlen, 8);
}

static void
test_lying_body_length_is_fatal(void **state)
{
    char buf[BUF_SIZE];
    struct bin_req req;
    size_t consumed;
    (void)state;

    /* keylen 10, bodylen 5 */
    proto_bin_compose_req_hdr(buf, BIN_OP_GET, 0, 10, 5, 1, 0);
    memset(buf + PROTO_BIN_HDR_LEN, 'k', 10);
    assert_int_equal(parse_exact(&req, buf, PROTO_BIN_HDR_LEN, MAX_BODY,
                                 &consumed), PARSE_EFATAL);
    assert_int_equal(consumed, 0);
    assert_int_equal(parse_exact(&req, buf, PROTO_BIN_HDR_LEN + 10, MAX_BODY,
                                 &consumed), PARSE_EFATAL);
    assert_int_equal(consumed, 0);

    /* extlen 8 + keylen 3 = 11 > bodylen 10 */
    proto_bin_compose_req_hdr(buf, BIN_OP_SET, 8, 3, 10, 1, 0);
    assert_int_equal(parse_exact(&req, buf, PROTO_BIN_HDR_LEN, MAX_BODY,
                                 &consumed), PARSE_EFATAL);

    /* extras alone over the body: even an unknown opcode */
    proto_bin_compose_req_hdr(buf, 0x77, 255, 0, 254, 1, 0);
    assert_int_equal(parse_exact(&req, buf, PROTO_BIN_HDR_LEN, MAX_BODY,
                                 &consumed), PARSE_EFATAL);

    /* maximal keylen + extlen against bodylen 0 (no overflow) */
    proto_bin_compose_req_hdr(buf, BIN_OP_GET, 255, 0xffff, 0, 1, 0);
    assert_int_equal(parse_exact(&req, buf, PROTO_BIN_HDR_LEN, MAX_BODY,
                                 &consumed), PARSE_EFATAL);

    /* exactly equal is fine */
    proto_bin_compose_req_hdr(buf, BIN_OP_SET, 8, 3, 11, 1, 0);
    memcpy(buf + PROTO_BIN_HDR_LEN, set_ext, 8);
    memcpy(buf + PROTO_BIN_HDR_LEN + 8, "abc", 3);
    assert_int_equal(parse_exact(&req, buf, PROTO_BIN_HDR_LEN + 11, MAX_BODY,
                                 &consumed), PARSE_OK);
    assert_int_equal(req.vlen, 0);
}

static void
test_oversize_needs_only_the_header(void **state)
{
    char buf[BUF_SIZE];
    struct bin_req req;
    size_t consumed;
    size_t n;
    (void)state;

    /* a SET announcing 2 GB, only the header present */
    proto_bin_compose_req_hdr(buf, BIN_OP_SET, 8, 3, 0x80000000u, 0xabcd,
                              0);
    assert_int_equal(parse_exact(&req, buf, PROTO_BIN_HDR_LEN, MAX_BODY,
                                 &consumed), PARSE_EOVERSIZE);
    assert_int_equal(consumed, PROTO_BIN_HDR_LEN);
    assert_int_equal(req.bodylen, 0x80000000u);
    assert_int_equal(req.opcode, BIN_OP_SET);
    assert_int_equal(req.opaque, 0xabcd);

    /* the largest bodylen there is */
    proto_bin_compose_req_hdr(buf, BIN_OP_APPEND, 0, 3, UINT32_MAX, 1, 0);
    assert_int_equal(parse_exact(&req, buf, PROTO_BIN_HDR_LEN, MAX_BODY,
                                 &consumed), PARSE_EOVERSIZE);
    assert_int_equal(req.bodylen, UINT32_MAX);
    /* ... which is fine (but unfinished) when max_body allows it */
    assert_int_equal(parse_exact(&req, buf, PROTO_BIN_HDR_LEN, UINT32_MAX,
                                 &consumed), PARSE_EUNFIN);
    assert_int_equal(consumed, 0);

    /* the opcode rules come before the size (as in memcached): a GET
     * announcing 2 GB is invalid, not too large */
    proto_bin_compose_req_hdr(buf, BIN_OP_GET, 0, 3, 0x80000000u, 1, 0);
    assert_int_equal(parse_exact(&req, buf, PROTO_BIN_HDR_LEN, MAX_BODY,
                                 &consumed), PARSE_EINVALID);
    assert_int_equal(consumed, PROTO_BIN_HDR_LEN);

    /* the limit itself: bodylen == max_body is accepted, +1 is not */
    n = build_req(buf, BIN_OP_SET, set_ext, 8, "key", 3, "0123456789", 10, 1,
                  0);
    assert_int_equal(parse_exact(&req, buf, n, 21, &consumed), PARSE_OK);
    assert_int_equal(consumed, n);
    assert_int_equal(parse_exact(&req, buf, n, 20, &consumed),
                     PARSE_EOVERSIZE);
    assert_int_equal(consumed, PROTO_BIN_HDR_LEN);
    assert_int_equal(req.bodylen, 21);
}

static void
test_key_length_limit(void **state)
{
    char key[300];
    char buf[BUF_SIZE];
    struct bin_req req;
    size_t consumed;
    size_t n;
    (void)state;

    memset(key, 'k', sizeof(key));

    n = build_req(buf, BIN_OP_GET, NULL, 0, key, 250, NULL, 0, 1, 0);
    assert_int_equal(parse_exact(&req, buf, n, MAX_BODY, &consumed),
                     PARSE_OK);
    assert_int_equal(req.keylen, 250);
    assert_int_equal(consumed, n);

    n = build_req(buf, BIN_OP_GET, NULL, 0, key, 251, NULL, 0, 1, 0);
    assert_int_equal(parse_exact(&req, buf, n, MAX_BODY, &consumed),
                     PARSE_EINVALID);
    assert_int_equal(consumed, PROTO_BIN_HDR_LEN);
    assert_int_equal(req.keylen, 251);
    assert_int_equal(req.bodylen, 251);
    /* reported from the header alone */
    assert_int_equal(parse_exact(&req, buf, PROTO_BIN_HDR_LEN, MAX_BODY,
                                 &consumed), PARSE_EINVALID);
    assert_int_equal(consumed, PROTO_BIN_HDR_LEN);

    n = build_req(buf, BIN_OP_SETQ, set_ext, 8, key, 250, "v", 1, 1, 0);
    assert_int_equal(parse_exact(&req, buf, n, MAX_BODY, &consumed),
                     PARSE_OK);
    n = build_req(buf, BIN_OP_SETQ, set_ext, 8, key, 251, "v", 1, 1, 0);
    assert_int_equal(parse_exact(&req, buf, n, MAX_BODY, &consumed),
                     PARSE_EINVALID);
    assert_int_equal(req.bodylen, 8 + 251 + 1);

    /* memcached checks the key length before the opcode: unknown ones too */
    n = build_req(buf, 0x55, NULL, 0, key, 251, NULL, 0, 1, 0);
    assert_int_equal(parse_exact(&req, buf, n, MAX_BODY, &consumed),
                     PARSE_EINVALID);
    n = build_req(buf, 0x55, NULL, 0, key, 250, NULL, 0, 1, 0);
    assert_int_equal(parse_exact(&req, buf, n, MAX_BODY, &consumed),
                     PARSE_OK);
}

/* What extras length each opcode accepts, written out independently of the
 * parser's table. */
static bool
extlen_ok(uint8_t opcode, uint8_t extlen)
{
    switch (opcode) {
    case BIN_OP_SET: case BIN_OP_SETQ: case BIN_OP_ADD: case BIN_OP_ADDQ:
    case BIN_OP_REPLACE: case BIN_OP_REPLACEQ:
        return extlen == 8;
    case BIN_OP_INCREMENT: case BIN_OP_INCREMENTQ:
    case BIN_OP_DECREMENT: case BIN_OP_DECREMENTQ:
        return extlen == 20;
    case BIN_OP_FLUSH: case BIN_OP_FLUSHQ:
        return extlen == 0 || extlen == 4;
    case BIN_OP_VERBOSITY:
    case BIN_OP_TOUCH: case BIN_OP_GAT: case BIN_OP_GATQ:
    case BIN_OP_GATK: case BIN_OP_GATKQ:
        return extlen == 4;
    default:
        return extlen == 0;
    }
}

static void
test_wrong_extlen_per_opcode(void **state)
{
    static const uint8_t lens[] = { 0, 1, 3, 4, 5, 8, 12, 16, 20, 21, 255 };
    char ext[255];
    char buf[BUF_SIZE];
    struct bin_req req;
    size_t consumed;
    (void)state;

    memset(ext, 0x5a, sizeof(ext));
    for (size_t i = 0; i < N_SAMPLES; i++) {
        const struct sample *s = &samples[i];
        for (size_t j = 0; j < sizeof(lens); j++) {
            size_t n = build_req(buf, s->opcode, ext, lens[j], s->key,
                                 (uint16_t)sample_keylen(s), s->value,
                                 (uint32_t)sample_vlen(s), 1, 0);
            proto_parse want = extlen_ok(s->opcode, lens[j]) ?
                               PARSE_OK : PARSE_EINVALID;
            proto_parse rc = parse_exact(&req, buf, n, MAX_BODY, &consumed);
            if (rc != want) {
                print_error("opcode 0x%02x extlen %u: got %d want %d\n",
                            s->opcode, lens[j], rc, want);
            }
            assert_int_equal(rc, want);
            assert_int_equal(consumed, want == PARSE_OK ?
                             n : PROTO_BIN_HDR_LEN);
            if (want == PARSE_EINVALID) {
                /* header only is enough to reject it */
                assert_int_equal(parse_exact(&req, buf, PROTO_BIN_HDR_LEN,
                                             MAX_BODY, &consumed),
                                 PARSE_EINVALID);
                assert_int_equal(req.bodylen, n - PROTO_BIN_HDR_LEN);
            }
        }
    }
}

enum { KEY_NO, KEY_YES, KEY_ANY };

/* Key and value rules per opcode, written out independently. */
static int
key_rule(uint8_t opcode)
{
    switch (opcode) {
    case BIN_OP_QUIT: case BIN_OP_QUITQ: case BIN_OP_NOOP:
    case BIN_OP_VERSION: case BIN_OP_FLUSH: case BIN_OP_FLUSHQ:
    case BIN_OP_VERBOSITY: case BIN_OP_SASL_LIST_MECHS:
        return KEY_NO;
    case BIN_OP_STAT:
        return KEY_ANY;
    default:
        return KEY_YES;
    }
}

static bool
value_allowed(uint8_t opcode)
{
    switch (opcode) {
    case BIN_OP_SET: case BIN_OP_SETQ: case BIN_OP_ADD: case BIN_OP_ADDQ:
    case BIN_OP_REPLACE: case BIN_OP_REPLACEQ: case BIN_OP_APPEND:
    case BIN_OP_APPENDQ: case BIN_OP_PREPEND: case BIN_OP_PREPENDQ:
    case BIN_OP_SASL_AUTH: case BIN_OP_SASL_STEP:
        return true;
    default:
        return false;
    }
}

static void
test_key_and_value_rules_per_opcode(void **state)
{
    char buf[BUF_SIZE];
    struct bin_req req;
    size_t consumed;
    size_t n;
    (void)state;

    for (size_t i = 0; i < N_SAMPLES; i++) {
        const struct sample *s = &samples[i];
        int rule = key_rule(s->opcode);
        proto_parse rc;

        /* without a key */
        n = build_req(buf, s->opcode, s->ext, s->extlen, NULL, 0, s->value,
                      (uint32_t)sample_vlen(s), 1, 0);
        rc = parse_exact(&req, buf, n, MAX_BODY, &consumed);
        assert_int_equal(rc, rule == KEY_YES ? PARSE_EINVALID : PARSE_OK);

        /* with a key */
        n = build_req(buf, s->opcode, s->ext, s->extlen, "kk", 2, s->value,
                      (uint32_t)sample_vlen(s), 1, 0);
        rc = parse_exact(&req, buf, n, MAX_BODY, &consumed);
        assert_int_equal(rc, rule == KEY_NO ? PARSE_EINVALID : PARSE_OK);
        if (rc == PARSE_OK) {
            assert_int_equal(req.keylen, 2);
            assert_memory_equal(req.key, "kk", 2);
        }

        /* with a value (and a key where one is needed) */
        n = build_req(buf, s->opcode, s->ext, s->extlen, s->key,
                      (uint16_t)sample_keylen(s), "VAL", 3, 1, 0);
        rc = parse_exact(&req, buf, n, MAX_BODY, &consumed);
        assert_int_equal(rc, value_allowed(s->opcode) ?
                         PARSE_OK : PARSE_EINVALID);
        if (rc == PARSE_OK) {
            assert_int_equal(req.vlen, 3);
            assert_memory_equal(req.value, "VAL", 3);
        } else {
            assert_int_equal(consumed, PROTO_BIN_HDR_LEN);
            assert_int_equal(req.bodylen, n - PROTO_BIN_HDR_LEN);
        }
    }
}

static void
test_unknown_opcode_parses(void **state)
{
    static const uint8_t unknown[] = { 0x1f, 0x25, 0x30, 0x3c, 0x80, 0xff };
    char buf[BUF_SIZE];
    struct bin_req req;
    size_t consumed;
    (void)state;

    for (size_t i = 0; i < sizeof(unknown); i++) {
        /* anything goes, and extras are not decoded */
        size_t n = build_req(buf, unknown[i], incr_ext, 20, "key", 3,
                             "value", 5, 0x99, 3);
        assert_int_equal(parse_exact(&req, buf, n, MAX_BODY, &consumed),
                         PARSE_OK);
        assert_int_equal(consumed, n);
        assert_int_equal(req.opcode, unknown[i]);
        assert_int_equal(req.opaque, 0x99);
        assert_int_equal(req.extlen, 20);
        assert_int_equal(req.keylen, 3);
        assert_memory_equal(req.key, "key", 3);
        assert_int_equal(req.vlen, 5);
        assert_memory_equal(req.value, "value", 5);
        assert_true(req.delta == 0);
        assert_true(req.initial == 0);
        assert_int_equal(req.exptime, 0);
        assert_int_equal(req.flags, 0);

        n = build_req(buf, unknown[i], NULL, 0, NULL, 0, NULL, 0, 0x98, 0);
        assert_int_equal(parse_exact(&req, buf, n, MAX_BODY, &consumed),
                         PARSE_OK);
        assert_int_equal(req.opaque, 0x98);
    }
}

static void
test_header_fields(void **state)
{
    /* hand-written bytes, not the composer: datatype and vbucket set */
    static const char wire[] =
        "\x80\x01\x00\x01\x08\x01\x12\x34"
        "\x00\x00\x00\x0b\xca\xfe\xba\xbe"
        "\x01\x02\x03\x04\x05\x06\x07\x08"
        "\x00\x00\x00\x2a\x00\x00\x00\x00"
        "K" "\x00\xff";
    struct bin_req req;
    size_t consumed;
    (void)state;

    assert_int_equal(parse_exact(&req, wire, sizeof(wire) - 1, MAX_BODY,
                                 &consumed), PARSE_OK);
    assert_int_equal(consumed, 35);
    assert_int_equal(req.opcode, BIN_OP_SET);
    assert_int_equal(req.keylen, 1);
    assert_int_equal(req.extlen, 8);
    assert_int_equal(req.datatype, 1);
    assert_int_equal(req.vbucket, 0x1234);
    assert_int_equal(req.bodylen, 11);
    assert_int_equal(req.opaque, 0xcafebabe);
    assert_true(req.cas == 0x0102030405060708ull);
    assert_int_equal(req.flags, 42);
    assert_int_equal(req.exptime, 0);
    assert_memory_equal(req.key, "K", 1);
    assert_int_equal(req.vlen, 2);
    assert_memory_equal(req.value, "\x00\xff", 2);
}

static void
test_compose_bytes(void **state)
{
    static const char want_rsp[PROTO_BIN_HDR_LEN] =
        "\x81\x0c\x01\x02\x04\x00\x00\x86"
        "\x00\x01\x00\x00\xde\xad\xbe\xef"
        "\x11\x22\x33\x44\x55\x66\x77\x88";
    static const char want_req[PROTO_BIN_HDR_LEN] =
        "\x80\x1d\x00\x03\x04\x00\x00\x00"
        "\x00\x00\x00\x07\x00\x00\x00\x01"
        "\x00\x00\x00\x00\x00\x00\x00\x02";
    char out[PROTO_BIN_HDR_LEN + 1];
    (void)state;

    out[PROTO_BIN_HDR_LEN] = 'Z';
    assert_int_equal(proto_bin_compose_hdr(out, BIN_OP_GETK,
                                           BIN_STATUS_ETMPFAIL, 4, 0x0102,
                                           0x00010000, 0xdeadbeef,
                                           0x1122334455667788ull),
                     PROTO_BIN_HDR_LEN);
    assert_memory_equal(out, want_rsp, PROTO_BIN_HDR_LEN);
    assert_int_equal(out[PROTO_BIN_HDR_LEN], 'Z');

    assert_int_equal(proto_bin_compose_req_hdr(out, BIN_OP_GAT, 4, 3, 7, 1,
                                               2), PROTO_BIN_HDR_LEN);
    assert_memory_equal(out, want_req, PROTO_BIN_HDR_LEN);
    assert_int_equal(out[PROTO_BIN_HDR_LEN], 'Z');
}

static void
test_is_quiet(void **state)
{
    static const uint8_t quiet[] = {
        BIN_OP_GETQ, BIN_OP_GETKQ, BIN_OP_SETQ, BIN_OP_ADDQ, BIN_OP_REPLACEQ,
        BIN_OP_DELETEQ, BIN_OP_INCREMENTQ, BIN_OP_DECREMENTQ, BIN_OP_QUITQ,
        BIN_OP_FLUSHQ, BIN_OP_APPENDQ, BIN_OP_PREPENDQ, BIN_OP_GATQ,
        BIN_OP_GATKQ,
    };
    (void)state;

    for (unsigned op = 0; op < 256; op++) {
        bool want = memchr(quiet, (int)op, sizeof(quiet)) != NULL;
        assert_int_equal(proto_bin_is_quiet((uint8_t)op), want);
    }
}

static void
test_pipelined_requests(void **state)
{
    static char buf[N_SAMPLES * 512];
    struct bin_req req;
    size_t consumed;
    size_t total = 0;
    size_t off = 0;
    (void)state;

    for (size_t i = 0; i < N_SAMPLES; i++) {
        total += build_sample(buf + total, &samples[i]);
    }
    for (size_t i = 0; i < N_SAMPLES; i++) {
        assert_int_equal(proto_bin_parse_req(&req, buf + off, total - off,
                                             MAX_BODY, &consumed), PARSE_OK);
        check_req(&req, &samples[i], buf + off);
        off += consumed;
    }
    assert_int_equal(off, total);
    assert_int_equal(proto_bin_parse_req(&req, buf + off, 0, MAX_BODY,
                                         &consumed), PARSE_EUNFIN);

    /* the whole pipeline cut anywhere: what parses is a prefix of it */
    for (size_t cut = 0; cut <= total; cut += 7) {
        size_t done = 0;
        size_t count = 0;
        proto_parse rc;
        while ((rc = parse_exact(&req, buf + done, cut - done, MAX_BODY,
                                 &consumed)) == PARSE_OK) {
            check_req(&req, &samples[count], buf + done);
            done += consumed;
            count++;
        }
        assert_int_equal(rc, PARSE_EUNFIN);
        assert_int_equal(consumed, 0);
        assert_true(done <= cut);
    }
}

/* A bad request in the middle is skipped by its header's bodylen and the
 * next one parses. */
static void
test_pipeline_skips_invalid(void **state)
{
    char key[260];
    char buf[BUF_SIZE];
    struct bin_req req;
    size_t consumed;
    size_t n = 0;
    size_t off = 0;
    (void)state;

    memset(key, 'x', sizeof(key));
    n += build_req(buf + n, BIN_OP_GETQ, NULL, 0, "a", 1, NULL, 0, 1, 0);
    n += build_req(buf + n, BIN_OP_GET, NULL, 0, key, 251, NULL, 0, 2, 0);
    n += build_req(buf + n, BIN_OP_DELETE, "\0\0\0\0", 4, "b", 1, NULL, 0, 3,
                   0);
    n += build_req(buf + n, BIN_OP_SET, set_ext, 8, "c", 1, "big value", 9,
                   4, 0);
    n += build_req(buf + n, BIN_OP_NOOP, NULL, 0, NULL, 0, NULL, 0, 5, 0);

    assert_int_equal(proto_bin_parse_req(&req, buf + off, n - off, MAX_BODY,
                                         &consumed), PARSE_OK);
    assert_int_equal(req.opaque, 1);
    off += consumed;
    assert_int_equal(proto_bin_parse_req(&req, buf + off, n - off, MAX_BODY,
                                         &consumed), PARSE_EINVALID);
    assert_int_equal(req.opaque, 2);
    off += consumed + req.bodylen;
    assert_int_equal(proto_bin_parse_req(&req, buf + off, n - off, MAX_BODY,
                                         &consumed), PARSE_EINVALID);
    assert_int_equal(req.opaque, 3);
    off += consumed + req.bodylen;
    /* max_body 10 < 8 + 1 + 9 */
    assert_int_equal(proto_bin_parse_req(&req, buf + off, n - off, 10,
                                         &consumed), PARSE_EOVERSIZE);
    assert_int_equal(req.opaque, 4);
    off += consumed + req.bodylen;
    assert_int_equal(proto_bin_parse_req(&req, buf + off, n - off, MAX_BODY,
                                         &consumed), PARSE_OK);
    assert_int_equal(req.opcode, BIN_OP_NOOP);
    assert_int_equal(req.opaque, 5);
    off += consumed;
    assert_int_equal(off, n);
}

static void
test_large_value(void **state)
{
    size_t vlen = MAX_BODY - 8 - 3;
    char *buf = malloc(PROTO_BIN_HDR_LEN + MAX_BODY);
    char *value = malloc(vlen);
    struct bin_req req;
    size_t consumed;
    size_t n;
    (void)state;

    assert_non_null(buf);
    assert_non_null(value);
    for (size_t i = 0; i < vlen; i++) {
        value[i] = (char)(i * 31);
    }
    n = build_req(buf, BIN_OP_SET, set_ext, 8, "big", 3, value,
                  (uint32_t)vlen, 1, 0);
    assert_int_equal(proto_bin_parse_req(&req, buf, n - 1, MAX_BODY,
                                         &consumed), PARSE_EUNFIN);
    assert_int_equal(proto_bin_parse_req(&req, buf, n, MAX_BODY, &consumed),
                     PARSE_OK);
    assert_int_equal(consumed, n);
    assert_int_equal(req.vlen, vlen);
    assert_memory_equal(req.value, value, vlen);
    free(value);
    free(buf);
}

static void
test_response_round_trip(void **state)
{
    char buf[BUF_SIZE];
    struct bin_rsp rsp;
    size_t consumed;
    size_t n;
    (void)state;

    /* a GETK hit: flags extras, key, value */
    n = proto_bin_compose_hdr(buf, BIN_OP_GETK, BIN_STATUS_SUCCESS, 4, 3,
                              4 + 3 + 5, 0x01020304, 77);
    memcpy(buf + n, "\x00\x00\x00\x2a", 4);
    memcpy(buf + n + 4, "key", 3);
    memcpy(buf + n + 7, "value", 5);
    n += 12;

    for (size_t cut = 0; cut < n; cut++) {
        assert_int_equal(proto_bin_parse_rsp(&rsp, buf, cut, MAX_BODY,
                                             &consumed), PARSE_EUNFIN);
        assert_int_equal(consumed, 0);
    }
    assert_int_equal(proto_bin_parse_rsp(&rsp, buf, n, MAX_BODY, &consumed),
                     PARSE_OK);
    assert_int_equal(consumed, n);
    assert_int_equal(rsp.opcode, BIN_OP_GETK);
    assert_int_equal(rsp.status, BIN_STATUS_SUCCESS);
    assert_int_equal(rsp.extlen, 4);
    assert_int_equal(rsp.keylen, 3);
    assert_int_equal(rsp.bodylen, 12);
    assert_int_equal(rsp.opaque, 0x01020304);
    assert_true(rsp.cas == 77);
    assert_ptr_equal(rsp.extras, buf + PROTO_BIN_HDR_LEN);
    assert_int_equal(proto_bin_get32(rsp.extras), 42);
    assert_memory_equal(rsp.key, "key", 3);
    assert_int_equal(rsp.vlen, 5);
    assert_memory_equal(rsp.value, "value", 5);

    /* an error with a message, pipelined after the hit */
    size_t m = proto_bin_compose_hdr(buf + n, BIN_OP_SET,
                                     BIN_STATUS_KEY_EEXISTS, 0, 0, 9, 5, 0);
    memcpy(buf + n + m, "Not found", 9);
    m += 9;
    assert_int_equal(proto_bin_parse_rsp(&rsp, buf + n, m, MAX_BODY,
                                         &consumed), PARSE_OK);
    assert_int_equal(rsp.status, BIN_STATUS_KEY_EEXISTS);
    assert_int_equal(rsp.extlen, 0);
    assert_int_equal(rsp.keylen, 0);
    assert_int_equal(rsp.vlen, 9);
    assert_memory_equal(rsp.value, "Not found", 9);
    assert_int_equal(consumed, m);

    /* a request is not a response */
    proto_bin_compose_req_hdr(buf, BIN_OP_NOOP, 0, 0, 0, 1, 0);
    assert_int_equal(proto_bin_parse_rsp(&rsp, buf, PROTO_BIN_HDR_LEN,
                                         MAX_BODY, &consumed), PARSE_EFATAL);
    assert_int_equal(proto_bin_parse_rsp(&rsp, buf, 1, MAX_BODY, &consumed),
                     PARSE_EFATAL);
    assert_int_equal(consumed, 0);

    /* lying lengths */
    proto_bin_compose_hdr(buf, BIN_OP_GET, 0, 4, 10, 13, 1, 0);
    assert_int_equal(proto_bin_parse_rsp(&rsp, buf, PROTO_BIN_HDR_LEN,
                                         MAX_BODY, &consumed), PARSE_EFATAL);

    /* oversize: header only */
    proto_bin_compose_hdr(buf, BIN_OP_STAT, 0, 0, 0, 0x80000000u, 1, 0);
    assert_int_equal(proto_bin_parse_rsp(&rsp, buf, PROTO_BIN_HDR_LEN,
                                         MAX_BODY, &consumed),
                     PARSE_EOVERSIZE);
    assert_int_equal(consumed, PROTO_BIN_HDR_LEN);
    assert_int_equal(rsp.bodylen, 0x80000000u);

    /* an empty body: pointers are still inside the buffer */
    n = proto_bin_compose_hdr(buf, BIN_OP_NOOP, 0, 0, 0, 0, 9, 0);
    assert_int_equal(proto_bin_parse_rsp(&rsp, buf, n, MAX_BODY, &consumed),
                     PARSE_OK);
    assert_int_equal(consumed, PROTO_BIN_HDR_LEN);
    assert_int_equal(rsp.vlen, 0);
    assert_ptr_equal(rsp.value, buf + PROTO_BIN_HDR_LEN);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_samples_cover_every_opcode),
        cmocka_unit_test(test_every_opcode_round_trip),
        cmocka_unit_test(test_every_split_point),
        cmocka_unit_test(test_wrong_magic_is_fatal),
        cmocka_unit_test(test_truncated_header),
        cmocka_unit_test(test_lying_body_length_is_fatal),
        cmocka_unit_test(test_oversize_needs_only_the_header),
        cmocka_unit_test(test_key_length_limit),
        cmocka_unit_test(test_wrong_extlen_per_opcode),
        cmocka_unit_test(test_key_and_value_rules_per_opcode),
        cmocka_unit_test(test_unknown_opcode_parses),
        cmocka_unit_test(test_header_fields),
        cmocka_unit_test(test_compose_bytes),
        cmocka_unit_test(test_is_quiet),
        cmocka_unit_test(test_pipelined_requests),
        cmocka_unit_test(test_pipeline_skips_invalid),
        cmocka_unit_test(test_large_value),
        cmocka_unit_test(test_response_round_trip),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
