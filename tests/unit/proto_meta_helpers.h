/*
 * proto_meta_helpers.h: what the meta protocol tests share
 * (test_proto_meta*.c): memcached 1.6.18's error lines, parsing from an
 * exact-size copy (so AddressSanitizer catches a read past the end), and the
 * checks that a request parses with the expected result while each of its
 * strict prefixes needs more bytes.
 */
#ifndef MCKV_TESTS_PROTO_META_HELPERS_H
#define MCKV_TESTS_PROTO_META_HELPERS_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/proto_meta.h"

#define MAX_VALUE (1024 * 1024)

extern const char fmt_err[];
extern const char invalid_err[];
extern const char dup_err[];
extern const char token_err[];
extern const char dup_or_invalid_err[];
extern const char opaque_err[];

/* Parses a copy of s[0..len) held until the next parse() (or teardown()):
 * the request's pointers stay valid until then. */
proto_parse parse(struct meta_req *req, const char *s, size_t len, uint32_t max_value,
                  size_t *consumed, const char **errmsg);
/* cmocka teardown of each test: frees the last parse()'s copy. */
int teardown(void **state);
/* got[0..ngot) is the string want. */
void assert_mem(const char *got, size_t ngot, const char *want);
/* Every strict prefix of s[0..whole) is "need more bytes". */
void assert_prefixes_unfin(const char *s, size_t whole);
/* Parses s[0..len) into *req and checks rc, consumed and errmsg, then every
 * prefix of the consumed part. */
void expect(struct meta_req *req, const char *s, size_t len, proto_parse want_rc,
            size_t want_consumed, const char *want_err);
/* The whole of s parses. */
void expect_ok(struct meta_req *req, const char *s);
/* An error that consumes the whole of s. */
void expect_err(const char *s, const char *err);
/* The flags to return, in request order, are `want`. */
void assert_order(const struct meta_req *req, const char *want);

#endif
