/*
 * proto_text_helpers.c: the text protocol tests' parse and check helpers
 * (proto_text_helpers.h).
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "tests/unit/proto_text_helpers.h"

const char fmt_err[] = "CLIENT_ERROR bad command line format";

/* Parses a copy of buf[0..len) held in a buffer of exactly len bytes, so
 * AddressSanitizer catches a read past the end. */
proto_parse
parse_n(struct text_req *req, const char *buf, size_t len, uint32_t max_value,
        size_t *consumed, const char **errmsg)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, buf, len);
    proto_parse rc = proto_text_parse_req(req, copy, len, max_value, consumed,
                                          errmsg);
    /* Pointers into the copy would dangle: rebase them on buf. */
    if (req->key != NULL && req->key != req->meta.key_buf)
        req->key = buf + (req->key - copy);
    if (req->keys != NULL)
        req->keys = buf + (req->keys - copy);
    if (req->value != NULL)
        req->value = buf + (req->value - copy);
    if (req->arg != NULL)
        req->arg = buf + (req->arg - copy);
    /* a base64 key lives in req->meta.key_buf and stays */
    if (req->meta.key != NULL && req->meta.key != req->meta.key_buf)
        req->meta.key = buf + (req->meta.key - copy);
    if (req->meta.opaque != NULL)
        req->meta.opaque = buf + (req->meta.opaque - copy);
    if (req->meta.value != NULL)
        req->meta.value = buf + (req->meta.value - copy);
    free(copy);
    return rc;
}

/* Copies a request; a base64 meta key points into the struct itself. */
void
copy_req(struct text_req *to, const struct text_req *from)
{
    *to = *from;
    if (from->meta.key == from->meta.key_buf)
        to->meta.key = to->meta.key_buf;
    if (from->key == from->meta.key_buf)
        to->key = to->meta.key_buf;
}

void
assert_mem(const char *got, size_t ngot, const char *want)
{
    assert_int_equal(ngot, strlen(want));
    assert_memory_equal(got, want, ngot);
}

/* Every strict prefix of buf[0..whole) is "need more bytes". */
void
assert_prefixes_unfin(const char *buf, size_t whole, uint32_t max_value)
{
    struct text_req req;
    size_t consumed;
    const char *errmsg;

    for (size_t i = 0; i < whole; i++) {
        consumed = 12345;
        proto_parse rc = parse_n(&req, buf, i, max_value, &consumed, &errmsg);
        if (rc != PARSE_EUNFIN)
            fail_msg("prefix %zu of %zu of \"%.*s\": rc %d", i, whole,
                     (int)(whole > 60 ? 60 : whole), buf, rc);
        assert_int_equal(consumed, 0);
    }
}

/* Parses s (whole, plus trailing bytes that must not matter) and checks rc,
 * consumed and errmsg; then checks every prefix. */
void
expect(const char *s, size_t len, proto_parse want_rc, size_t want_consumed,
       const char *want_err, struct text_req *out)
{
    struct text_req req;
    size_t consumed;
    const char *errmsg;
    proto_parse rc = parse_n(&req, s, len, MAX_VALUE, &consumed, &errmsg);

    if (rc != want_rc)
        fail_msg("\"%.*s\": rc %d want %d (err %s)", (int)(len > 80 ? 80 : len),
                 s, rc, want_rc, errmsg ? errmsg : "-");
    assert_int_equal(consumed, want_consumed);
    if (want_err == NULL)
        assert_null(errmsg);
    else
        assert_string_equal(errmsg, want_err);
    if (want_rc != PARSE_EFATAL && want_rc != PARSE_EUNFIN)
        assert_prefixes_unfin(s, want_consumed, MAX_VALUE);
    if (out != NULL)
        copy_req(out, &req);
}

/* A whole request s: rc, consumed = strlen(s). */
void
expect_s(const char *s, proto_parse want_rc, const char *want_err,
         struct text_req *out)
{
    expect(s, strlen(s), want_rc, strlen(s), want_err, out);
}

/* xorshift: the same junk on every run */
uint64_t
junk_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}
