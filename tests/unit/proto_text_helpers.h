/*
 * proto_text_helpers.h: what the text protocol tests share
 * (test_proto_text*.c): parsing from an exact-size copy (so
 * AddressSanitizer catches a read past the end), and the checks that a
 * request parses with the expected result while each of its strict
 * prefixes needs more bytes.
 */
#ifndef MCKV_TESTS_PROTO_TEXT_HELPERS_H
#define MCKV_TESTS_PROTO_TEXT_HELPERS_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/proto_text.h"

#define MAX_VALUE (1024 * 1024)

/* memcached's reply to a malformed command line. */
extern const char fmt_err[];

/* Parses a copy of buf[0..len) held in a buffer of exactly len bytes; the
 * request's pointers are rebased on buf. */
proto_parse parse_n(struct text_req *req, const char *buf, size_t len,
                    uint32_t max_value, size_t *consumed, const char **errmsg);
/* Copies a request; a base64 meta key points into the struct itself. */
void copy_req(struct text_req *to, const struct text_req *from);
/* got[0..ngot) is the string want. */
void assert_mem(const char *got, size_t ngot, const char *want);
/* Every strict prefix of buf[0..whole) is "need more bytes". */
void assert_prefixes_unfin(const char *buf, size_t whole, uint32_t max_value);
/* Parses s (whole, plus trailing bytes that must not matter) and checks rc,
 * consumed and errmsg; then checks every prefix. *out (may be NULL) gets
 * the request. */
void expect(const char *s, size_t len, proto_parse want_rc, size_t want_consumed,
            const char *want_err, struct text_req *out);
/* A whole request s: rc, consumed = strlen(s). */
void expect_s(const char *s, proto_parse want_rc, const char *want_err,
              struct text_req *out);
/* xorshift: the same junk on every run (state *s, not 0). */
uint64_t junk_next(uint64_t *s);

#endif
