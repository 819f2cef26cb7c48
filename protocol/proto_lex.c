/*
 * proto_lex.c: memcached's tokenizer and number rules (see proto_lex.h).
 */
#include <config.h>

#include <string.h>

#include "protocol/proto_lex.h"

unsigned
proto_lex_tokenize(const char *p, size_t n, struct proto_token *tok,
                   unsigned max)
{
    size_t i = 0;
    unsigned ntok = 0;

    while (i < n && ntok < max) {
        while (i < n && p[i] == ' ')
            i++;
        if (i == n)
            break;
        size_t start = i;
        while (i < n && p[i] != ' ')
            i++;
        tok[ntok].p = p + start;
        tok[ntok].n = i - start;
        ntok++;
    }
    return ntok;
}

bool
proto_lex_is(const struct proto_token *t, const char *word)
{
    size_t n = strlen(word);
    return t->n == n && memcmp(t->p, word, n) == 0;
}

bool
proto_lex_isspace(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

bool
proto_lex_number(const struct proto_token *t, bool *neg, uint64_t *mag)
{
    size_t i = 0;
    uint64_t v = 0;

    while (i < t->n && proto_lex_isspace(t->p[i]))
        i++;
    *neg = false;
    if (i < t->n && (t->p[i] == '+' || t->p[i] == '-')) {
        *neg = t->p[i] == '-';
        i++;
    }
    size_t digits = i;
    while (i < t->n && t->p[i] >= '0' && t->p[i] <= '9') {
        unsigned d = (unsigned)(t->p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
        i++;
    }
    if (i == digits || (i < t->n && !proto_lex_isspace(t->p[i])))
        return false;
    *mag = v;
    return true;
}

bool
proto_lex_u64(const struct proto_token *t, uint64_t *out)
{
    bool neg;
    uint64_t mag;

    if (!proto_lex_number(t, &neg, &mag))
        return false;
    uint64_t v = neg ? 0 - mag : mag;
    if ((int64_t)v < 0 && memchr(t->p, '-', t->n) != NULL)
        return false;
    *out = v;
    return true;
}

bool
proto_lex_i64(const struct proto_token *t, int64_t *out)
{
    bool neg;
    uint64_t mag;

    if (!proto_lex_number(t, &neg, &mag))
        return false;
    if (neg) {
        if (mag > (uint64_t)INT64_MAX + 1)
            return false;
        *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    } else {
        if (mag > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)mag;
    }
    return true;
}
