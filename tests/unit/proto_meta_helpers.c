/*
 * proto_meta_helpers.c: the meta protocol tests' error lines and parse and
 * check helpers (proto_meta_helpers.h).
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "tests/unit/proto_meta_helpers.h"

const char fmt_err[] = "CLIENT_ERROR bad command line format";
const char invalid_err[] = "CLIENT_ERROR invalid flag";
const char dup_err[] = "CLIENT_ERROR duplicate flag";
const char token_err[] =
    "CLIENT_ERROR bad token in command line format";
const char dup_or_invalid_err[] =
    "CLIENT_ERROR invalid or duplicate flag";
const char opaque_err[] = "CLIENT_ERROR opaque token too long";

/* The copy the last parse() read from: a buffer of exactly the input's
 * length, so AddressSanitizer catches a read past the end. Pointers in the
 * request stay valid until the next parse(). */
static char *held;

proto_parse
parse(struct meta_req *req, const char *s, size_t len, uint32_t max_value,
      size_t *consumed, const char **errmsg)
{
    free(held);
    held = malloc(len ? len : 1);
    assert_non_null(held);
    memcpy(held, s, len);
    return proto_meta_parse_req(req, held, len, max_value, consumed, errmsg);
}

int
teardown(void **state)
{
    (void)state;
    free(held);
    held = NULL;
    return 0;
}

void
assert_mem(const char *got, size_t ngot, const char *want)
{
    if (ngot != strlen(want) || memcmp(got, want, ngot) != 0)
        fail_msg("got \"%.*s\" (%zu) want \"%s\"", (int)ngot, got, ngot,
                 want);
}

/* Every strict prefix of s[0..whole) is "need more bytes". */
void
assert_prefixes_unfin(const char *s, size_t whole)
{
    struct meta_req req;

    for (size_t i = 0; i < whole; i++) {
        char *copy = malloc(i ? i : 1);
        size_t consumed = 12345;
        const char *errmsg = "x";
        assert_non_null(copy);
        memcpy(copy, s, i);
        proto_parse rc = proto_meta_parse_req(&req, copy, i, MAX_VALUE,
                                              &consumed, &errmsg);
        free(copy);
        if (rc != PARSE_EUNFIN)
            fail_msg("prefix %zu of %zu of \"%.*s\": rc %d", i, whole,
                     (int)(whole > 60 ? 60 : whole), s, rc);
        assert_int_equal(consumed, 0);
        assert_null(errmsg);
    }
}

/* Parses s[0..len) into *req and checks rc, consumed and errmsg, then every
 * prefix of the consumed part. */
void
expect(struct meta_req *req, const char *s, size_t len, proto_parse want_rc,
       size_t want_consumed, const char *want_err)
{
    size_t consumed;
    const char *errmsg;
    proto_parse rc = parse(req, s, len, MAX_VALUE, &consumed, &errmsg);

    if (rc != want_rc)
        fail_msg("\"%.*s\": rc %d want %d (err %s)", (int)(len > 80 ? 80 : len),
                 s, rc, want_rc, errmsg ? errmsg : "-");
    assert_int_equal(consumed, want_consumed);
    if (want_err == NULL)
        assert_null(errmsg);
    else
        assert_string_equal(errmsg, want_err);
    if (want_rc != PARSE_EUNFIN && want_rc != PARSE_EFATAL)
        assert_prefixes_unfin(s, want_consumed);
}

void
expect_ok(struct meta_req *req, const char *s)
{
    expect(req, s, strlen(s), PARSE_OK, strlen(s), NULL);
}

/* An error that consumes the whole of s. */
void
expect_err(const char *s, const char *err)
{
    struct meta_req req;
    expect(&req, s, strlen(s), PARSE_EINVALID, strlen(s), err);
    assert_false(req.quiet);
}

void
assert_order(const struct meta_req *req, const char *want)
{
    assert_mem(req->ret_order, req->nret_order, want);
}
