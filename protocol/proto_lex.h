/*
 * proto_lex.h: the lexing the text and meta parsers share, done the way
 * memcached 1.6 does it: a request line split on ' ' only
 * (tokenize_command()), and numbers read as its safe_strto*() helpers read
 * them (glibc's strtoull in base 10: leading whitespace, one sign, digits,
 * then only the end of the token or whitespace). Pure functions over
 * tokens that are not NUL-terminated.
 */
#ifndef MCKV_PROTOCOL_PROTO_LEX_H
#define MCKV_PROTOCOL_PROTO_LEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct proto_token {
    const char *p;
    size_t n;
};

/* Splits p[0..n) on ' ' into at most max tokens; returns how many. */
unsigned proto_lex_tokenize(const char *p, size_t n, struct proto_token *tok,
                            unsigned max);

/* The token is exactly the NUL-terminated word. */
bool proto_lex_is(const struct proto_token *t, const char *word);

/* isspace() in the C locale, which memcached's xisspace() uses. */
bool proto_lex_isspace(char c);

/* The common part of strtoul/strtol (base 10): one sign and the magnitude.
 * False without a digit, when the magnitude passes 64 bits (ERANGE) or
 * when something but whitespace follows the digits. */
bool proto_lex_number(const struct proto_token *t, bool *neg, uint64_t *mag);

/* memcached's safe_strtoull(): "-N" wraps around, and is refused only when
 * the result looks negative as a signed number (so "-0" is 0 and
 * "-18446744073709551615" is 1). */
bool proto_lex_u64(const struct proto_token *t, uint64_t *out);

/* memcached's safe_strtol() with a 64-bit long: strtol()'s int64 range,
 * the value kept whole (callers cut it as memcached does, if they must). */
bool proto_lex_i64(const struct proto_token *t, int64_t *out);

#endif
