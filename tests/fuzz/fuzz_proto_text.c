/*
 * fuzz_proto_text.c: libFuzzer target for protocol/proto_text.c.
 *
 * Parses the input as a client stream the way a connection would: advance by
 * *consumed, skip vlen + 2 more bytes after PARSE_EOVERSIZE, stop on
 * PARSE_EUNFIN or PARSE_EFATAL. Walks retrieval keys with
 * proto_text_next_key() and abort()s on any broken invariant (consumed past
 * the end, a pointer outside the request, a key over 250 bytes, a prefix of a
 * complete request that is not "need more bytes", a second parse that differs,
 * a meta command whose req->meta disagrees with the classic fields).
 * fuzz_proto_meta.c digs into the meta fields themselves.
 *
 * Build and run from the source tree (<builddir> holds config.h):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -I<builddir> \
 *     -D_GNU_SOURCE tests/fuzz/fuzz_proto_text.c protocol/proto_text.c \
 *     protocol/proto_meta.c -o fuzz_proto_text
 *   ./fuzz_proto_text -dict=tests/fuzz/text.dict -max_total_time=60 \
 *     <scratch corpus dir> tests/fuzz/corpus/text
 * The first input byte times 4 is the value limit, so the seeds start with
 * one byte ('z' = 488) before the request text.
 */
#include <config.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/proto_text.h"
#include "tests/fuzz/fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
inside(const char *p, size_t n, const char *lo, const char *hi)
{
    return p >= lo && p <= hi && n <= (size_t)(hi - p);
}

static void
check_req(const struct text_req *req, const char *start, size_t consumed)
{
    const char *end = start + consumed;

    if (req->cmd >= TEXT_MG) {
        /* meta: the classic fields are copies of req->meta */
        CHECK(req->meta.cmd != META_NONE);
        CHECK(req->key == req->meta.key && req->nkey == req->meta.nkey);
        CHECK(req->noreply == req->meta.quiet);
        CHECK(req->value == req->meta.value && req->vlen == req->meta.vlen);
        CHECK(!req->meta.has_opaque ||
              inside(req->meta.opaque, req->meta.nopaque, start, end));
    } else {
        CHECK(req->meta.cmd == META_NONE);
    }
    if (req->key != NULL) {
        CHECK(req->nkey <= PROTO_KEY_MAX);
        CHECK(inside(req->key, req->nkey, start, end) ||
              (req->meta.key_binary && req->key == req->meta.key_buf));
    }
    if (req->arg != NULL)
        CHECK(inside(req->arg, req->arglen, start, end));

    if (req->keys != NULL) {
        CHECK(inside(req->keys, req->keys_len, start, end));
    } else {
        CHECK(req->nkeys == 0);
    }
    size_t cursor = 0;
    const char *key;
    uint8_t nkey;
    unsigned n = 0;
    while (proto_text_next_key(req, &cursor, &key, &nkey)) {
        CHECK(nkey > 0 && nkey <= PROTO_KEY_MAX);
        CHECK(inside(key, nkey, req->keys, req->keys + req->keys_len));
        CHECK(memchr(key, ' ', nkey) == NULL);
        CHECK(n < req->nkeys);
        n++;
    }
    CHECK(n == req->nkeys);

    if (req->value != NULL) {
        CHECK(inside(req->value, (size_t)req->vlen + 2, start, end));
        CHECK(req->value + req->vlen + 2 == end);
        CHECK(memcmp(req->value + req->vlen, "\r\n", 2) == 0);
    }

    /* the composers must take whatever the parser hands out */
    if (req->key != NULL) {
        char hdr[PROTO_TEXT_VALUE_HDR_MAX];
        size_t h = proto_text_compose_value_hdr(hdr, req->key, req->nkey,
                                                req->flags, req->vlen, true,
                                                req->cas_unique);
        CHECK(h <= sizeof(hdr));
        CHECK(memcmp(hdr, "VALUE ", 6) == 0);
        CHECK(memcmp(hdr + h - 2, "\r\n", 2) == 0);
    }
    char digits[21];
    char want[32];
    size_t d = proto_text_u64toa(req->delta, digits);
    int w = snprintf(want, sizeof(want), "%llu",
                     (unsigned long long)req->delta);
    CHECK(w > 0 && (size_t)w == d && memcmp(digits, want, d) == 0);
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
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);

    size_t off = 0;
    while (off < size) {
        struct text_req req;
        size_t consumed = 12345;
        const char *errmsg = (const char *)1;
        size_t left = size - off;
        proto_parse rc = proto_text_parse_req(&req, buf + off, left,
                                              max_value, &consumed, &errmsg);

        CHECK(consumed <= left);
        switch (rc) {
        case PARSE_EUNFIN:
            CHECK(consumed == 0);
            break;
        case PARSE_EFATAL:
            CHECK(consumed == 0);
            CHECK(errmsg != NULL);
            break;
        case PARSE_OK:
            CHECK(consumed > 0);
            CHECK(errmsg == NULL);
            CHECK(req.cmd != TEXT_UNKNOWN);
            check_req(&req, buf + off, consumed);
            break;
        case PARSE_EINVALID:
            CHECK(consumed > 0);
            CHECK(errmsg != NULL && errmsg[0] != '\0');
            break;
        case PARSE_EOVERSIZE:
            CHECK(consumed > 0);
            CHECK(req.vlen > max_value);
            /* only ms has a flag error to report instead */
            CHECK(errmsg == NULL || req.cmd == TEXT_MS);
            break;
        default:
            CHECK(!"unknown parse result");
        }

        if (rc != PARSE_EUNFIN && rc != PARSE_EFATAL) {
            /* Same input, same answer. */
            struct text_req again;
            size_t consumed2;
            const char *errmsg2;
            CHECK(proto_text_parse_req(&again, buf + off, left, max_value,
                                       &consumed2, &errmsg2) == rc);
            CHECK(consumed2 == consumed && errmsg2 == errmsg);
            CHECK(again.cmd == req.cmd && again.noreply == req.noreply);

            /* Any shorter prefix of a complete request needs more bytes. */
            size_t cuts[2] = { consumed - 1, consumed / 2 };
            for (int i = 0; i < 2; i++) {
                CHECK(proto_text_parse_req(&again, buf + off, cuts[i],
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
