/*
 * fuzz_proto_meta.c: libFuzzer target for protocol/proto_meta.c and
 * proto_meta_rsp.c.
 *
 * Parses the input as a stream of meta requests the way a connection would
 * (advance by *consumed, skip vlen + 2 more bytes after PARSE_EOVERSIZE, stop
 * on PARSE_EUNFIN or PARSE_EFATAL) and abort()s on any broken invariant: a
 * pointer outside the request (or, for a base64 key, outside key_buf), a key
 * over 250 bytes, an opaque over 31, a return-flag order that does not match
 * the typed flags, a prefix of a complete request that is not "need more
 * bytes", a second parse that differs. Every parsed request is composed back
 * with every status, at the widest values, into exactly PROTO_META_RSP_MAX
 * bytes; a base64 key must encode back to something that decodes to it.
 *
 * Build and run from the source tree (<builddir> holds config.h):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -I<builddir> \
 *     -D_GNU_SOURCE -include <builddir>/config.h \
 *     tests/fuzz/fuzz_proto_meta.c protocol/proto_meta.c \
 *     protocol/proto_meta_rsp.c -o fuzz_proto_meta
 *   ./fuzz_proto_meta -dict=tests/fuzz/meta.dict -max_total_time=60 \
 *     <scratch corpus dir> tests/fuzz/corpus/meta
 * The first input byte times 4 is the value limit, so the seeds start with
 * one byte ('z' = 488) before the request text.
 */
#include <config.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/proto_meta.h"
#include "tests/fuzz/fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
inside(const char *p, size_t n, const char *lo, const char *hi)
{
    return p >= lo && p <= hi && n <= (size_t)(hi - p);
}

/* The letter of ret_order that each typed flag puts there. */
static bool
order_has(const struct meta_req *req, char flag)
{
    return memchr(req->ret_order, flag, req->nret_order) != NULL;
}

static void
check_compose(const struct meta_req *req)
{
    static const char wide_key[PROTO_KEY_MAX];
    struct meta_rsp rsp = {
        .vlen = UINT32_MAX, .cas = UINT64_MAX, .client_flags = UINT32_MAX,
        .ttl = INT64_MIN, .ttl_after_set = INT64_MIN,
        .ttl_after_vivify = INT64_MIN, .last_access = UINT32_MAX,
        .hit_before = true, .vivified = true, .won = true, .stale = true,
        .won_by_other = true, .key = wide_key, .nkey = PROTO_KEY_MAX,
        .key_binary = true,
    };
    /* exactly the promised size, so ASan sees a write past it */
    char *out = malloc(PROTO_META_RSP_MAX);
    CHECK(out != NULL);
    for (int st = META_RSP_VA; st <= META_RSP_MN; st++) {
        for (int variant = 0; variant < 3; variant++) {
            const struct meta_rsp *r = variant == 0 ? NULL : &rsp;
            rsp.key = variant == 2 ? NULL : wide_key;
            size_t n = proto_meta_compose_rsp(out, req, st, r);
            CHECK(n >= 4 && n <= PROTO_META_RSP_MAX);
            CHECK(memcmp(out + n - 2, "\r\n", 2) == 0);
            /* keys and opaques come from one line: one line goes out */
            CHECK(memchr(out, '\n', n - 1) == NULL);
        }
    }
    free(out);

    if (req->key != NULL && req->cmd == META_ME) {
        char *dbg = malloc(PROTO_META_DEBUG_MAX);
        CHECK(dbg != NULL);
        struct meta_debug d = { INT64_MIN, UINT64_MAX, UINT64_MAX, true,
                                UINT32_MAX, UINT64_MAX };
        size_t n = proto_meta_compose_debug(dbg, req->key, req->nkey,
                                            req->key_binary, &d);
        CHECK(n <= PROTO_META_DEBUG_MAX);
        CHECK(memcmp(dbg, "ME ", 3) == 0);
        free(dbg);
    }
}

static void
check_req(const struct meta_req *req, const char *start, size_t consumed)
{
    const char *end = start + consumed;

    CHECK(req->cmd != META_NONE);
    if (req->cmd == META_MN) {
        CHECK(req->key == NULL);
    } else {
        CHECK(req->key != NULL);
        CHECK(req->nkey > 0 && req->nkey <= PROTO_KEY_MAX);
        if (req->key_binary) {
            CHECK(req->key == req->key_buf);
            /* a decoded key encodes back to one that decodes the same */
            char enc[PROTO_META_B64_LEN(PROTO_KEY_MAX)];
            char dec[PROTO_KEY_MAX + 2];
            size_t e = proto_meta_base64_encode(req->key, req->nkey, enc,
                                                sizeof(enc));
            CHECK(e == PROTO_META_B64_LEN(req->nkey));
            size_t d = proto_meta_base64_decode(enc, e, dec, sizeof(dec));
            CHECK(d == req->nkey && memcmp(dec, req->key, d) == 0);
        } else {
            CHECK(inside(req->key, req->nkey, start, end));
            CHECK(memchr(req->key, ' ', req->nkey) == NULL);
        }
    }
    if (req->has_opaque) {
        CHECK(req->nopaque <= PROTO_META_OPAQUE_MAX);
        CHECK(inside(req->opaque, req->nopaque, start, end));
    } else {
        CHECK(req->nopaque == 0);
    }
    if (req->cmd == META_MS) {
        CHECK(req->value != NULL);
        CHECK(inside(req->value, (size_t)req->vlen + 2, start, end));
        CHECK(req->value + req->vlen + 2 == end);
        CHECK(memcmp(req->value + req->vlen, "\r\n", 2) == 0);
    } else {
        CHECK(req->value == NULL && req->vlen == 0);
    }
    CHECK(req->delta == 1 || req->has_delta);
    CHECK(req->decr == false || req->cmd == META_MA);
    CHECK(req->set_mode == META_SET_SET || req->cmd == META_MS);

    /* ret_order holds exactly the flags that shape a reply, once each */
    CHECK(req->nret_order <= PROTO_META_TOKENS_MAX);
    for (unsigned i = 0; i < req->nret_order; i++) {
        CHECK(strchr("stcflhOkTNR", req->ret_order[i]) != NULL);
        CHECK(memchr(req->ret_order + i + 1, req->ret_order[i],
                     req->nret_order - i - 1) == NULL);
    }
    CHECK(order_has(req, 's') == req->ret_size);
    CHECK(order_has(req, 't') == req->ret_ttl);
    CHECK(order_has(req, 'c') == req->ret_cas);
    CHECK(order_has(req, 'f') == req->ret_flags);
    CHECK(order_has(req, 'l') == req->ret_last_access);
    CHECK(order_has(req, 'h') == req->ret_hit);
    CHECK(order_has(req, 'O') == req->has_opaque);
    CHECK(order_has(req, 'k') == req->ret_key);
    CHECK(order_has(req, 'T') == req->has_ttl);
    CHECK(order_has(req, 'N') == req->has_vivify);

    check_compose(req);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The first byte picks the value limit so EOVERSIZE gets exercised. */
    uint32_t max_value = 1024 * 1024;
    if (size > 0) {
        max_value = (uint32_t)data[0] * 4;
        data++;
        size--;
    }

    /* A private copy: ASan then flags any read past the end. */
    char *buf = calloc(1, size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);

    /* The decoder alone, on the raw bytes. */
    char dec[PROTO_KEY_MAX];
    size_t d = proto_meta_base64_decode(buf, size < PROTO_KEY_MAX ? size
                                                                 : PROTO_KEY_MAX,
                                        dec, sizeof(dec));
    CHECK(d <= sizeof(dec));

    size_t off = 0;
    while (off < size) {
        struct meta_req req;
        size_t consumed = 12345;
        const char *errmsg = (const char *)1;
        size_t left = size - off;
        proto_parse rc = proto_meta_parse_req(&req, buf + off, left,
                                              max_value, &consumed, &errmsg);

        CHECK(consumed <= left);
        switch (rc) {
        case PARSE_EUNFIN:
            CHECK(consumed == 0 && errmsg == NULL);
            break;
        case PARSE_EFATAL:
            CHECK(consumed == 0);
            CHECK(errmsg != NULL && errmsg[0] != '\0');
            break;
        case PARSE_OK:
            CHECK(consumed > 0);
            CHECK(errmsg == NULL);
            check_req(&req, buf + off, consumed);
            break;
        case PARSE_EINVALID:
            CHECK(consumed > 0);
            CHECK(errmsg != NULL && errmsg[0] != '\0');
            CHECK(!req.quiet);
            break;
        case PARSE_EOVERSIZE:
            CHECK(consumed > 0);
            CHECK(req.cmd == META_MS && req.vlen > max_value);
            CHECK(!req.quiet);
            break;
        default:
            CHECK(!"unknown parse result");
        }

        if (rc != PARSE_EUNFIN && rc != PARSE_EFATAL) {
            /* Same input, same answer. */
            struct meta_req again;
            size_t consumed2;
            const char *errmsg2;
            CHECK(proto_meta_parse_req(&again, buf + off, left, max_value,
                                       &consumed2, &errmsg2) == rc);
            CHECK(consumed2 == consumed && errmsg2 == errmsg);
            CHECK(again.cmd == req.cmd && again.quiet == req.quiet &&
                  again.nkey == req.nkey && again.ttl == req.ttl &&
                  again.nret_order == req.nret_order);

            /* Any shorter prefix of a complete request needs more bytes. */
            size_t cuts[2] = { consumed - 1, consumed / 2 };
            for (int i = 0; i < 2; i++) {
                CHECK(proto_meta_parse_req(&again, buf + off, cuts[i],
                                           max_value, &consumed2,
                                           &errmsg2) == PARSE_EUNFIN);
                CHECK(consumed2 == 0);
            }
        }

        if (rc == PARSE_EUNFIN || rc == PARSE_EFATAL)
            break;
        off += consumed;
        if (rc == PARSE_EOVERSIZE) {
            size_t skip = (size_t)req.vlen + 2;
            if (skip >= size - off)
                break;
            off += skip;
        }
    }
    free(buf);
    return 0;
}
