/*
 * test_proto_meta.c: unit tests for protocol/proto_meta.c (parsing, base64)
 * and protocol/proto_meta_rsp.c (replies).
 *
 * Every accepted flag of every command is parsed into its typed field (and
 * nothing else changes); every error line, number rule and reply line below
 * was taken from Debian's memcached 1.6.18 on the wire. Every request is also
 * fed at every split point (each prefix must be PARSE_EUNFIN with nothing
 * consumed), in a pipeline byte by byte, and garbage, oversize, truncated and
 * over-long input is fed.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/proto_meta.h"

#define MAX_VALUE (1024 * 1024)

static const char fmt_err[] = "CLIENT_ERROR bad command line format";
static const char invalid_err[] = "CLIENT_ERROR invalid flag";
static const char dup_err[] = "CLIENT_ERROR duplicate flag";
static const char token_err[] =
    "CLIENT_ERROR bad token in command line format";
static const char dup_or_invalid_err[] =
    "CLIENT_ERROR invalid or duplicate flag";
static const char opaque_err[] = "CLIENT_ERROR opaque token too long";

/* The copy the last parse() read from: a buffer of exactly the input's
 * length, so AddressSanitizer catches a read past the end. Pointers in the
 * request stay valid until the next parse(). */
static char *held;

static proto_parse
parse(struct meta_req *req, const char *s, size_t len, uint32_t max_value,
      size_t *consumed, const char **errmsg)
{
    free(held);
    held = malloc(len ? len : 1);
    assert_non_null(held);
    memcpy(held, s, len);
    return proto_meta_parse_req(req, held, len, max_value, consumed, errmsg);
}

static void
assert_mem(const char *got, size_t ngot, const char *want)
{
    if (ngot != strlen(want) || memcmp(got, want, ngot) != 0)
        fail_msg("got \"%.*s\" (%zu) want \"%s\"", (int)ngot, got, ngot,
                 want);
}

/* Every strict prefix of s[0..whole) is "need more bytes". */
static void
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
static void
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

static void
expect_ok(struct meta_req *req, const char *s)
{
    expect(req, s, strlen(s), PARSE_OK, strlen(s), NULL);
}

/* An error that consumes the whole of s. */
static void
expect_err(const char *s, const char *err)
{
    struct meta_req req;
    expect(&req, s, strlen(s), PARSE_EINVALID, strlen(s), err);
    assert_false(req.quiet);
}

static void
assert_order(const struct meta_req *req, const char *want)
{
    assert_mem(req->ret_order, req->nret_order, want);
}

/* ---- every flag, every command ---- */

/* The commands that take flags, as a line prefix and a suffix after the
 * flags ("ms" carries a value). */
static const struct {
    const char *head;
    const char *tail;
    enum meta_cmd cmd;
} flag_cmds[] = {
    { "mg foo", "\r\n", META_MG },
    { "ms foo 2", "\r\nhi\r\n", META_MS },
    { "md foo", "\r\n", META_MD },
    { "ma foo", "\r\n", META_MA },
};

/* Clears what one flag token sets, after checking it. */
static void
check_and_clear(struct meta_req *r, const char *tok)
{
    switch (tok[0]) {
    case 'c': assert_true(r->ret_cas); r->ret_cas = false; break;
    case 'f': assert_true(r->ret_flags); r->ret_flags = false; break;
    case 'h': assert_true(r->ret_hit); r->ret_hit = false; break;
    case 'k': assert_true(r->ret_key); r->ret_key = false; break;
    case 'l':
        assert_true(r->ret_last_access);
        r->ret_last_access = false;
        break;
    case 's': assert_true(r->ret_size); r->ret_size = false; break;
    case 't': assert_true(r->ret_ttl); r->ret_ttl = false; break;
    case 'v': assert_true(r->ret_value); r->ret_value = false; break;
    case 'q': assert_true(r->quiet); r->quiet = false; break;
    case 'u': assert_true(r->no_lru_bump); r->no_lru_bump = false; break;
    case 'I': assert_true(r->invalidate); r->invalidate = false; break;
    case 'P': assert_true(r->has_proxy_p); r->has_proxy_p = false; break;
    case 'L': assert_true(r->has_proxy_l); r->has_proxy_l = false; break;
    case 'T':
        assert_true(r->has_ttl);
        assert_int_equal(r->ttl, atoi(tok + 1));
        r->has_ttl = false;
        r->ttl = 0;
        break;
    case 'N':
        assert_true(r->has_vivify);
        assert_int_equal(r->vivify_ttl, atoi(tok + 1));
        r->has_vivify = false;
        r->vivify_ttl = 0;
        break;
    case 'R':
        assert_true(r->has_recache);
        assert_int_equal(r->recache_ttl, atoi(tok + 1));
        r->has_recache = false;
        r->recache_ttl = 0;
        break;
    case 'C':
        assert_true(r->has_compare_cas);
        assert_int_equal(r->compare_cas, strtoull(tok + 1, NULL, 10));
        r->has_compare_cas = false;
        r->compare_cas = 0;
        break;
    case 'F':
        assert_true(r->has_client_flags);
        assert_int_equal(r->client_flags, strtoul(tok + 1, NULL, 10));
        r->has_client_flags = false;
        r->client_flags = 0;
        break;
    case 'J':
        assert_true(r->has_initial);
        assert_int_equal(r->initial, strtoull(tok + 1, NULL, 10));
        r->has_initial = false;
        r->initial = 0;
        break;
    case 'D':
        assert_true(r->has_delta);
        assert_int_equal(r->delta, strtoull(tok + 1, NULL, 10));
        r->has_delta = false;
        r->delta = 1;
        break;
    case 'O':
        assert_true(r->has_opaque);
        assert_mem(r->opaque, r->nopaque, tok + 1);
        r->has_opaque = false;
        r->nopaque = 0;
        break;
    case 'M':
        assert_int_equal(r->mode_char, tok[1]);
        r->mode_char = 0;
        r->set_mode = META_SET_SET;
        r->decr = false;
        break;
    default:
        fail_msg("no check for %s", tok);
    }
    /* the flags that shape the reply are noted in order */
    if (strchr("stcflhOkTNR", tok[0]) != NULL) {
        assert_int_equal(r->nret_order, 1);
        assert_int_equal(r->ret_order[0], tok[0]);
    } else {
        assert_int_equal(r->nret_order, 0);
    }
    r->nret_order = 0;
}

static void
assert_req_equal(const struct meta_req *a, const struct meta_req *b)
{
    assert_int_equal(a->cmd, b->cmd);
    assert_mem(a->key, a->nkey, "foo");
    assert_mem(b->key, b->nkey, "foo");
    assert_int_equal(a->key_binary, b->key_binary);
    assert_int_equal(a->ret_cas, b->ret_cas);
    assert_int_equal(a->ret_flags, b->ret_flags);
    assert_int_equal(a->ret_hit, b->ret_hit);
    assert_int_equal(a->ret_key, b->ret_key);
    assert_int_equal(a->ret_last_access, b->ret_last_access);
    assert_int_equal(a->ret_size, b->ret_size);
    assert_int_equal(a->ret_ttl, b->ret_ttl);
    assert_int_equal(a->ret_value, b->ret_value);
    assert_int_equal(a->quiet, b->quiet);
    assert_int_equal(a->no_lru_bump, b->no_lru_bump);
    assert_int_equal(a->invalidate, b->invalidate);
    assert_int_equal(a->has_ttl, b->has_ttl);
    assert_int_equal(a->has_vivify, b->has_vivify);
    assert_int_equal(a->has_recache, b->has_recache);
    assert_int_equal(a->has_compare_cas, b->has_compare_cas);
    assert_int_equal(a->has_client_flags, b->has_client_flags);
    assert_int_equal(a->has_initial, b->has_initial);
    assert_int_equal(a->has_delta, b->has_delta);
    assert_int_equal(a->has_opaque, b->has_opaque);
    assert_int_equal(a->has_proxy_p, b->has_proxy_p);
    assert_int_equal(a->has_proxy_l, b->has_proxy_l);
    assert_int_equal(a->ttl, b->ttl);
    assert_int_equal(a->vivify_ttl, b->vivify_ttl);
    assert_int_equal(a->recache_ttl, b->recache_ttl);
    assert_int_equal(a->client_flags, b->client_flags);
    assert_int_equal(a->compare_cas, b->compare_cas);
    assert_int_equal(a->initial, b->initial);
    assert_int_equal(a->delta, b->delta);
    assert_int_equal(a->nopaque, b->nopaque);
    assert_int_equal(a->mode_char, b->mode_char);
    assert_int_equal(a->set_mode, b->set_mode);
    assert_int_equal(a->decr, b->decr);
    assert_int_equal(a->vlen, b->vlen);
    assert_int_equal(a->value != NULL, b->value != NULL);
    assert_int_equal(a->nret_order, b->nret_order);
}

static void
test_every_flag(void **state)
{
    (void)state;
    /* every letter memcached 1.6.18 accepts, with and without tokens */
    static const char *toks[] = {
        "c", "f", "h", "k", "l", "s", "t", "v", "q", "u", "I",
        "P", "P/path/x", "L", "Lroute", "c5", "vjunk",
        "T30", "T0", "T-1", "N-5", "N90", "R7", "C0", "C99", "F5", "F0",
        "J13", "D22", "D0", "O123", "O", "Oopaque-31-bytes-xxxxxxxxxxxxxx",
    };
    char line[256];
    struct meta_req base, req;

    for (size_t c = 0; c < sizeof(flag_cmds) / sizeof(flag_cmds[0]); c++) {
        snprintf(line, sizeof(line), "%s%s", flag_cmds[c].head,
                 flag_cmds[c].tail);
        expect_ok(&base, line);
        struct meta_req b = base;   /* base's key points into held */
        assert_int_equal(b.cmd, flag_cmds[c].cmd);
        assert_mem(b.key, b.nkey, "foo");
        assert_int_equal(b.delta, 1);
        assert_int_equal(b.nret_order, 0);
        if (b.cmd == META_MS) {
            assert_int_equal(b.vlen, 2);
            assert_non_null(b.value);
        }
        char keycopy[4] = "foo";
        b.key = keycopy;

        for (size_t t = 0; t < sizeof(toks) / sizeof(toks[0]); t++) {
            snprintf(line, sizeof(line), "%s %s%s", flag_cmds[c].head,
                     toks[t], flag_cmds[c].tail);
            expect_ok(&req, line);
            if (b.cmd == META_MS)
                assert_memory_equal(req.value, "hi\r\n", 4);
            check_and_clear(&req, toks[t]);
            assert_req_equal(&req, &b);
        }
    }
}

static void
test_all_flags_at_once(void **state)
{
    (void)state;
    struct meta_req req;

    /* 17 flags: the most a line may carry */
    expect_ok(&req, "mg foo s v f t c k Oopaque123 q h l u T30 N-1 R5 P L I"
                    "\r\n");
    assert_int_equal(req.cmd, META_MG);
    assert_true(req.ret_size && req.ret_value && req.ret_flags &&
                req.ret_ttl && req.ret_cas && req.ret_key && req.quiet &&
                req.ret_hit && req.ret_last_access && req.no_lru_bump &&
                req.invalidate && req.has_proxy_p && req.has_proxy_l);
    assert_mem(req.opaque, req.nopaque, "opaque123");
    assert_true(req.has_ttl && req.has_vivify && req.has_recache);
    assert_int_equal(req.ttl, 30);
    assert_int_equal(req.vivify_ttl, -1);
    assert_int_equal(req.recache_ttl, 5);
    assert_order(&req, "sftckOhlTNR");

    expect_ok(&req, "ms foo 5 T-1 F5 c k O123 MR C99 I q J1 D2 v P L N9 R8"
                    "\r\nhello\r\n");
    assert_int_equal(req.cmd, META_MS);
    assert_int_equal(req.vlen, 5);
    assert_memory_equal(req.value, "hello\r\n", 7);
    assert_int_equal(req.ttl, -1);
    assert_true(req.has_client_flags && req.client_flags == 5);
    assert_true(req.ret_cas && req.ret_key && req.ret_value && req.quiet);
    assert_mem(req.opaque, req.nopaque, "123");
    assert_int_equal(req.set_mode, META_SET_REPLACE);
    assert_true(req.has_compare_cas && req.compare_cas == 99);
    assert_true(req.invalidate);
    assert_true(req.has_initial && req.initial == 1);
    assert_true(req.has_delta && req.delta == 2);
    assert_true(req.has_proxy_p && req.has_proxy_l);
    assert_true(req.has_vivify && req.vivify_ttl == 9);
    assert_true(req.has_recache && req.recache_ttl == 8);
    assert_order(&req, "TckONR");

    expect_ok(&req, "ma foo N0 J5 D3 MD v t c q O1 C7 T9 k\r\n");
    assert_int_equal(req.cmd, META_MA);
    assert_true(req.decr);
    assert_true(req.has_vivify && req.vivify_ttl == 0);
    assert_true(req.initial == 5 && req.delta == 3 && req.compare_cas == 7);
    assert_order(&req, "NtcOTk");

    expect_ok(&req, "md foo q C5 I T30 k O1\r\n");
    assert_int_equal(req.cmd, META_MD);
    assert_true(req.quiet && req.invalidate && req.ret_key);
    assert_true(req.has_compare_cas && req.compare_cas == 5);
    assert_true(req.has_ttl && req.ttl == 30);
    assert_order(&req, "TkO");
}

static void
test_modes(void **state)
{
    (void)state;
    struct meta_req req;
    static const struct { char m; enum meta_set_mode mode; } ms[] = {
        { 'S', META_SET_SET }, { 'E', META_SET_ADD },
        { 'A', META_SET_APPEND }, { 'P', META_SET_PREPEND },
        { 'R', META_SET_REPLACE },
    };
    char line[64];

    expect_ok(&req, "ms foo 1\r\nx\r\n");
    assert_int_equal(req.set_mode, META_SET_SET);
    assert_int_equal(req.mode_char, 0);
    for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
        snprintf(line, sizeof(line), "ms foo 1 M%c\r\nx\r\n", ms[i].m);
        expect_ok(&req, line);
        assert_int_equal(req.set_mode, ms[i].mode);
        assert_int_equal(req.mode_char, ms[i].m);
    }
    /* ms: upper case only, as in 1.6.18; the value is swallowed */
    static const char *bad_ms = "esaprIDx+-0";
    for (const char *m = bad_ms; *m; m++) {
        snprintf(line, sizeof(line), "ms foo 1 M%c\r\nx\r\n", *m);
        expect_err(line, "CLIENT_ERROR invalid mode for ms M token");
    }

    expect_ok(&req, "ma foo\r\n");
    assert_false(req.decr);
    static const struct { char m; bool decr; } ma[] = {
        { 'I', false }, { '+', false }, { 'D', true }, { '-', true },
    };
    for (size_t i = 0; i < sizeof(ma) / sizeof(ma[0]); i++) {
        snprintf(line, sizeof(line), "ma foo M%c\r\n", ma[i].m);
        expect_ok(&req, line);
        assert_int_equal(req.decr, ma[i].decr);
        assert_int_equal(req.mode_char, ma[i].m);
    }
    static const char *bad_ma = "idEASx0";
    for (const char *m = bad_ma; *m; m++) {
        snprintf(line, sizeof(line), "ma foo M%c\r\n", *m);
        expect_err(line, "CLIENT_ERROR invalid mode for ma M token");
    }

    /* mg and md take any mode letter and ignore it */
    expect_ok(&req, "mg foo Mz\r\n");
    assert_int_equal(req.mode_char, 'z');
    expect_ok(&req, "md foo M+\r\n");
    assert_int_equal(req.mode_char, '+');

    /* the length is checked by everyone */
    expect_err("mg foo M\r\n", "CLIENT_ERROR incorrect length for M token");
    expect_err("mg foo MSS\r\n", "CLIENT_ERROR incorrect length for M token");
    expect_err("ms foo 1 MEE\r\nx\r\n",
               "CLIENT_ERROR incorrect length for M token");
    expect_err("md foo M\r\n", dup_or_invalid_err);
    expect_err("ma foo MII\r\n", dup_or_invalid_err);
}

/* ---- errors ---- */

static void
test_unknown_flags(void **state)
{
    (void)state;
    /* letters 1.6.18 does not know, including later versions' E, x, S */
    static const char *bad[] = {
        "E5", "E", "x", "S2", "S", "Z", "m", "o", "a", "e", "n", "W", "X",
        "K", "0", "-", "\t", "\x01", "\x7e", "noreply",
    };
    char line[64];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(line, sizeof(line), "mg foo %s\r\n", bad[i]);
        expect_err(line, invalid_err);
        snprintf(line, sizeof(line), "md foo %s\r\n", bad[i]);
        expect_err(line, dup_or_invalid_err);
        snprintf(line, sizeof(line), "ma foo %s\r\n", bad[i]);
        expect_err(line, dup_or_invalid_err);
        snprintf(line, sizeof(line), "ms foo 2 %s\r\nhi\r\n", bad[i]);
        expect_err(line, invalid_err);
    }
    /* bytes from 127 up count as duplicates */
    expect_err("mg foo \x7f\r\n", dup_err);
    expect_err("mg foo \x80\r\n", dup_err);
    expect_err("mg foo \xff\r\n", dup_err);
    expect_err("ms foo 2 \x80\r\nhi\r\n", dup_err);
    expect_err("md foo \x80\r\n", dup_or_invalid_err);
}

static void
test_duplicates_and_precedence(void **state)
{
    (void)state;
    static const struct { const char *flags; const char *err; } mg[] = {
        { "v v", dup_err },
        { "Oab Oa", dup_err },
        { "T1 T2", dup_err },
        { "b b", dup_err },
        { "t T5 t", dup_err },
        /* a bad token is remembered; a later one overrides it */
        { "Tx Dx", "CLIENT_ERROR invalid numeric delta value" },
        { "Dx Tx", token_err },
        { "Jx Cx", token_err },
        { "Cx Jx", "CLIENT_ERROR invalid numeric initial value" },
        { "Dx M", "CLIENT_ERROR incorrect length for M token" },
        /* a bad F keeps the message as it was */
        { "Fx", fmt_err },
        { "Fx Tx", token_err },
        { "Tx Fx", token_err },
        /* an unknown or repeated letter stops at once */
        { "Tx Z", invalid_err },
        { "Z Tx", invalid_err },
        { "Tx v v", dup_err },
        { "v Tx v", dup_err },
        { "Tx Fx Z", invalid_err },
        /* the preparse comes before the opaque check */
        { "Tx Oyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy", token_err },
    };
    char line[128];

    for (size_t i = 0; i < sizeof(mg) / sizeof(mg[0]); i++) {
        snprintf(line, sizeof(line), "mg YWJj %s\r\n", mg[i].flags);
        expect_err(line, mg[i].err);
        /* md and ma replace the message, whatever it was */
        snprintf(line, sizeof(line), "md YWJj %s\r\n", mg[i].flags);
        expect_err(line, dup_or_invalid_err);
        snprintf(line, sizeof(line), "ma YWJj %s\r\n", mg[i].flags);
        expect_err(line, dup_or_invalid_err);
        /* ms passes it on and swallows the value */
        snprintf(line, sizeof(line), "ms YWJj 2 %s\r\nhi\r\n", mg[i].flags);
        expect_err(line, mg[i].err);
    }

    /* ma: a mode error comes before a long opaque */
    expect_err("ma cnt MX Oyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n",
               "CLIENT_ERROR invalid mode for ma M token");
    expect_err("ma cnt Oyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy MX\r\n",
               "CLIENT_ERROR invalid mode for ma M token");
    /* ms too, whatever the order */
    expect_err("ms foo 2 Mx Oyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\nhi\r\n",
               "CLIENT_ERROR invalid mode for ms M token");
    expect_err("ms foo 2 Oyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy Mx\r\nhi\r\n",
               "CLIENT_ERROR invalid mode for ms M token");
}

static void
test_opaque_length(void **state)
{
    (void)state;
    char o31[40], o32[40], line[128];
    struct meta_req req;

    memset(o31, 'y', sizeof(o31));
    o31[0] = 'O';
    o31[32] = '\0';     /* 'O' + 31 bytes */
    memset(o32, 'y', sizeof(o32));
    o32[0] = 'O';
    o32[33] = '\0';     /* 'O' + 32 bytes */

    static const char *cmds[] = { "mg k", "md k", "ma k" };
    for (size_t i = 0; i < 3; i++) {
        snprintf(line, sizeof(line), "%s %s\r\n", cmds[i], o31);
        expect_ok(&req, line);
        assert_int_equal(req.nopaque, PROTO_META_OPAQUE_MAX);
        assert_memory_equal(req.opaque, o31 + 1, 31);
        snprintf(line, sizeof(line), "%s %s\r\n", cmds[i], o32);
        expect_err(line, opaque_err);
        snprintf(line, sizeof(line), "%s q %s\r\n", cmds[i], o32);
        expect_err(line, opaque_err);
    }
    snprintf(line, sizeof(line), "ms k 2 %s\r\nhi\r\n", o31);
    expect_ok(&req, line);
    assert_int_equal(req.nopaque, 31);
    snprintf(line, sizeof(line), "ms k 2 q %s\r\nhi\r\n", o32);
    expect_err(line, opaque_err);
    /* a long key that looks like an opaque is a key */
    snprintf(line, sizeof(line), "mg %s\r\n", o32);
    expect_ok(&req, line);
    assert_mem(req.key, req.nkey, o32);
}

static void
test_line_errors(void **state)
{
    (void)state;
    char k250[251], k251[252], line[400];
    struct meta_req req;

    memset(k250, 'k', 250);
    k250[250] = '\0';
    memset(k251, 'k', 251);
    k251[251] = '\0';

    expect_err("mg\r\n", "ERROR");
    expect_err("md\r\n", "ERROR");
    expect_err("ma\r\n", "ERROR");
    expect_err("ms\r\n", "ERROR");
    expect_err("mg \r\n", "ERROR");
    expect_err("me\r\n", fmt_err);
    expect_err("mx foo\r\n", "ERROR");
    expect_err("m foo\r\n", "ERROR");
    expect_err("mgg foo\r\n", "ERROR");
    expect_err("MG foo\r\n", "ERROR");
    expect_err("get foo\r\n", "ERROR");   /* not ours */
    expect_err("\r\n", "ERROR");
    expect_err("mg\tfoo\r\n", "ERROR");

    static const char *cmds[] = { "mg", "md", "ma", "me" };
    for (size_t i = 0; i < 4; i++) {
        snprintf(line, sizeof(line), "%s %s\r\n", cmds[i], k250);
        expect_ok(&req, line);
        assert_int_equal(req.nkey, 250);
        snprintf(line, sizeof(line), "%s %s\r\n", cmds[i], k251);
        expect_err(line, fmt_err);
        /* the length is checked before the key is decoded */
        snprintf(line, sizeof(line), "%s %s b\r\n", cmds[i], k251);
        expect_err(line, fmt_err);
    }

    /* ms: line errors come before the value is known: nothing swallowed */
    static const struct { const char *s; const char *err; } ms[] = {
        { "ms foo\r\nhi\r\n", fmt_err },
        { "ms foo \r\nhi\r\n", fmt_err },
        { "ms foo abc\r\nhi\r\n", fmt_err },
        { "ms foo -1\r\nhi\r\n", fmt_err },
        { "ms foo 2x\r\nhi\r\n", fmt_err },
        { "ms foo 2147483646\r\nhi\r\n", fmt_err },
        { "ms foo 2147483648\r\nhi\r\n", fmt_err },
        { "ms foo 9223372036854775808\r\nhi\r\n", fmt_err },
        { "ms foo 2 O0 O1 O2 O3 O4 O5 O6 O7 O8 O9 O10 O11 O12 O13 O14 O15 "
          "O16\r\nhi\r\n", "CLIENT_ERROR options flags too long" },
    };
    for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
        const char *s = ms[i].s;
        expect(&req, s, strlen(s), PARSE_EINVALID,
               (size_t)(strchr(s, '\n') - s) + 1, ms[i].err);
    }
    snprintf(line, sizeof(line), "ms %s 2\r\nhi\r\n", k251);
    expect(&req, line, strlen(line), PARSE_EINVALID, strlen(line) - 4,
           fmt_err);
    snprintf(line, sizeof(line), "ms %s 2\r\nhi\r\n", k250);
    expect_ok(&req, line);

    /* 17 flags are the most: mg words it differently */
    const char *f16 = "O0 O1 O2 O3 O4 O5 O6 O7 O8 O9 O10 O11 O12 O13 O14 O15";
    snprintf(line, sizeof(line), "mg k %s O16\r\n", f16);
    expect_err(line, dup_err);   /* 17 flags: the preparse runs */
    snprintf(line, sizeof(line), "mg k %s O16 O17\r\n", f16);
    expect_err(line, "CLIENT_ERROR options flags are too long");
    snprintf(line, sizeof(line), "md k %s O16 O17\r\n", f16);
    expect_err(line, "CLIENT_ERROR options flags too long");
    snprintf(line, sizeof(line), "ma k %s O16 O17\r\n", f16);
    expect_err(line, "CLIENT_ERROR options flags too long");
    snprintf(line, sizeof(line), "mg k %s O16 O17 a b c d e f g h\r\n", f16);
    expect_err(line, "CLIENT_ERROR options flags are too long");
    /* the key is checked before the count */
    snprintf(line, sizeof(line), "mg %s %s O16 O17\r\n", k251, f16);
    expect_err(line, fmt_err);
}

/* ---- numbers ---- */

static void
test_ttl_numbers(void **state)
{
    (void)state;
    /* safe_strtol() with a 64-bit long, kept in 32 bits */
    static const struct { const char *tok; int32_t want; } ok[] = {
        { "0", 0 }, { "30", 30 }, { "-1", -1 }, { "+5", 5 }, { "-0", 0 },
        { "\t5", 5 }, { "\v5", 5 }, { "5\t", 5 }, { "5\tjunk", 5 },
        { "00000000000000000000000000000000000005", 5 },
        { "2147483647", 2147483647 }, { "2147483648", INT32_MIN },
        { "4294967295", -1 }, { "4294967296", 0 }, { "4294967396", 100 },
        { "-2147483649", INT32_MAX }, { "-4294967296", 0 },
        { "9223372036854775807", -1 }, { "-9223372036854775808", 0 },
    };
    static const char *bad[] = {
        "", "x", "5x", "x5", "+", "-", "+-5", "9223372036854775808",
        "-9223372036854775809", "18446744073709551616", "5.0", "0x10",
    };
    char line[128];
    struct meta_req req;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        snprintf(line, sizeof(line), "mg k T%s N%s R%s\r\n", ok[i].tok,
                 ok[i].tok, ok[i].tok);
        expect_ok(&req, line);
        assert_int_equal(req.ttl, ok[i].want);
        assert_int_equal(req.vivify_ttl, ok[i].want);
        assert_int_equal(req.recache_ttl, ok[i].want);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        static const char letters[] = "TNR";
        for (int l = 0; l < 3; l++) {
            snprintf(line, sizeof(line), "mg k %c%s\r\n", letters[l], bad[i]);
            expect_err(line, token_err);
            snprintf(line, sizeof(line), "ms k 1 %c%s\r\nx\r\n", letters[l],
                     bad[i]);
            expect_err(line, token_err);
        }
    }
}

static void
test_u64_numbers(void **state)
{
    (void)state;
    /* safe_strtoull(): C J D; safe_strtoul() with a 64-bit long: F */
    static const struct { const char *tok; uint64_t want; } ok[] = {
        { "0", 0 }, { "7", 7 }, { "+7", 7 }, { "-0", 0 }, { "\t7", 7 },
        { "7\t", 7 }, { "4294967296", 4294967296ull },
        { "18446744073709551615", UINT64_MAX },
        { "9223372036854775808", 9223372036854775808ull },
        /* strtoull() wraps "-N"; only a result that looks negative is
         * refused */
        { "-18446744073709551615", 1 },
        { "-9223372036854775809", 9223372036854775807ull },
    };
    static const char *bad[] = {
        "", "x", "-1", "-9223372036854775808", "18446744073709551616",
        "7x", "+", "-",
    };
    char line[128];
    struct meta_req req;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        snprintf(line, sizeof(line), "ma k C%s J%s D%s F%s\r\n", ok[i].tok,
                 ok[i].tok, ok[i].tok, ok[i].tok);
        expect_ok(&req, line);
        assert_true(req.compare_cas == ok[i].want);
        assert_true(req.initial == ok[i].want);
        assert_true(req.delta == ok[i].want);
        assert_true(req.client_flags == (uint32_t)ok[i].want);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(line, sizeof(line), "mg k C%s\r\n", bad[i]);
        expect_err(line, token_err);
        snprintf(line, sizeof(line), "mg k J%s\r\n", bad[i]);
        expect_err(line, "CLIENT_ERROR invalid numeric initial value");
        snprintf(line, sizeof(line), "mg k D%s\r\n", bad[i]);
        expect_err(line, "CLIENT_ERROR invalid numeric delta value");
        snprintf(line, sizeof(line), "mg k F%s\r\n", bad[i]);
        expect_err(line, fmt_err);
        snprintf(line, sizeof(line), "ms k 1 F%s\r\nx\r\n", bad[i]);
        expect_err(line, fmt_err);
    }
    /* F keeps the low 32 bits, as memcached */
    expect_ok(&req, "ms k 1 F4294967297\r\nx\r\n");
    assert_int_equal(req.client_flags, 1);
    expect_ok(&req, "ms k 1 F4294967295\r\nx\r\n");
    assert_int_equal(req.client_flags, UINT32_MAX);
}

static void
test_set_length(void **state)
{
    (void)state;
    struct meta_req req;

    expect_ok(&req, "ms k 0\r\n\r\n");
    assert_int_equal(req.vlen, 0);
    expect_ok(&req, "ms k +2\r\nhi\r\n");
    assert_int_equal(req.vlen, 2);
    expect_ok(&req, "ms k 2\t\r\nhi\r\n");
    assert_int_equal(req.vlen, 2);
    /* safe_strtol()'s 32-bit cut: 2^32 + 2 is 2 */
    expect_ok(&req, "ms k 4294967298\r\nhi\r\n");
    assert_int_equal(req.vlen, 2);
    expect_ok(&req, "ms k -4294967294\r\nhi\r\n");
    assert_int_equal(req.vlen, 2);
    /* INT_MAX - 2 is the largest length: too large for us, not an error */
    size_t consumed;
    const char *errmsg;
    assert_int_equal(parse(&req, "ms k 2147483645\r\n", 17, MAX_VALUE,
                           &consumed, &errmsg), PARSE_EOVERSIZE);
    assert_int_equal(req.vlen, 2147483645u);
}

/* ---- spacing ---- */

static void
test_spacing(void **state)
{
    (void)state;
    struct meta_req req;

    expect_ok(&req, "mg foo v\n");
    assert_true(req.ret_value);
    expect_ok(&req, "   mg    foo   v    t   \r\n");
    assert_mem(req.key, req.nkey, "foo");
    assert_true(req.ret_value && req.ret_ttl);
    assert_order(&req, "t");
    expect_ok(&req, "ms   foo    2    T5   \r\nhi\r\n");
    assert_int_equal(req.vlen, 2);
    assert_int_equal(req.ttl, 5);
    assert_memory_equal(req.value, "hi\r\n", 4);
    /* only ' ' separates: a tab is part of a token */
    expect_ok(&req, "mg foo\tv\r\n");
    assert_mem(req.key, req.nkey, "foo\tv");
    assert_false(req.ret_value);
    expect_err("md nokey \t\r\n", dup_or_invalid_err);
    /* a lone '\r' inside the line is a byte of a token */
    expect_ok(&req, "mg foo\rv\r\n");
    assert_mem(req.key, req.nkey, "foo\rv");
    /* a NUL ends the line as in C, the line still ends at its '\n' */
    expect(&req, "mg foo\0 Z\r\n", 11, PARSE_OK, 11, NULL);
    assert_mem(req.key, req.nkey, "foo");
    assert_int_equal(req.nret_order, 0);
    /* the key is the first token after the command, however far */
    expect_ok(&req, "me      foo      b-ignored\r\n");
    assert_mem(req.key, req.nkey, "foo");
}

/* ---- base64 ---- */

static void
test_base64_vectors(void **state)
{
    (void)state;
    static const struct { const char *plain; const char *enc; } rfc[] = {
        { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
        { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
        { "foobar", "Zm9vYmFy" },
    };
    char out[64];

    for (size_t i = 0; i < sizeof(rfc) / sizeof(rfc[0]); i++) {
        size_t n = proto_meta_base64_encode(rfc[i].plain,
                                            strlen(rfc[i].plain), out,
                                            sizeof(out));
        assert_mem(out, n, rfc[i].enc);
        assert_int_equal(n, PROTO_META_B64_LEN(strlen(rfc[i].plain)));
        if (n > 0) {
            n = proto_meta_base64_decode(rfc[i].enc, strlen(rfc[i].enc), out,
                                         sizeof(out));
            assert_mem(out, n, rfc[i].plain);
        }
    }

    /* memcached's decoder: what it stored, re-encoded by its "me <key> b" */
    static const struct { const char *in; const char *reenc; } quirks[] = {
        { "YWJj", "YWJj" }, { "YWI=", "YWI=" }, { "YQ==", "YQ==" },
        { "YW!Jj", "YWJj" }, { "!YWJj!", "YWJj" },
        { "YWJjZA==YWJj", "YWJjZA==" }, { "=YWJ", "AYU=" },
        { "Y=WJ", "YAU=" }, { "YQ=A", "YQA=" }, { "AAAAAAAA", "AAAAAAAA" },
        { "+/+/", "+/+/" }, { "YWJj\tZA==", "YWJjZA==" },
        { "YWJjYQ==YQ==", "YWJjYQ==" }, { "YW==", "YQ==" },
    };
    for (size_t i = 0; i < sizeof(quirks) / sizeof(quirks[0]); i++) {
        char dec[64], enc[64];
        size_t n = proto_meta_base64_decode(quirks[i].in,
                                            strlen(quirks[i].in), dec,
                                            sizeof(dec));
        assert_true(n > 0);
        n = proto_meta_base64_encode(dec, n, enc, sizeof(enc));
        assert_mem(enc, n, quirks[i].reenc);
    }

    /* refused by memcached ("CLIENT_ERROR error decoding key" on mg) */
    static const char *invalid[] = {
        "", "!!!!", "YQ=", "Y===", "====", "YWJj====", "YWJjZ", "A", "foo",
        "-_-_", "YWJjZA==Y==",
    };
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
        assert_int_equal(proto_meta_base64_decode(invalid[i],
                                                  strlen(invalid[i]), out,
                                                  sizeof(out)), 0);

    /* output limits */
    assert_int_equal(proto_meta_base64_decode("YWJj", 4, out, 2), 0);
    assert_int_equal(proto_meta_base64_decode("YWJj", 4, out, 3), 3);
    assert_int_equal(proto_meta_base64_decode("YQ==", 4, out, 2), 0);
    /* after a padded group the rest is not looked at */
    assert_int_equal(proto_meta_base64_decode("YWJjZA==Y===", 12, out,
                                              sizeof(out)), 4);
    assert_int_equal(proto_meta_base64_encode("abc", 3, out, 3), 0);
    assert_int_equal(proto_meta_base64_encode("abc", 3, out, 4), 4);
}

static void
test_base64_round_trip(void **state)
{
    (void)state;
    char plain[PROTO_KEY_MAX], enc[PROTO_META_B64_LEN(PROTO_KEY_MAX)];
    char dec[PROTO_KEY_MAX + 2];   /* 3 bytes per group, padding included */
    uint64_t seed = 12345;

    for (size_t len = 1; len <= PROTO_KEY_MAX; len++) {
        for (size_t i = 0; i < len; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            plain[i] = (char)(seed >> 56);
        }
        size_t n = proto_meta_base64_encode(plain, len, enc, sizeof(enc));
        assert_int_equal(n, PROTO_META_B64_LEN(len));
        size_t m = proto_meta_base64_decode(enc, n, dec, sizeof(dec));
        assert_int_equal(m, len);
        assert_memory_equal(dec, plain, len);
    }
}

static void
test_base64_keys(void **state)
{
    (void)state;
    struct meta_req req;
    char line[512];

    /* 44OG44K544OI is "tesuto" in katakana (memcached's t/metaget.t) */
    expect_ok(&req, "ms 44OG44K544OI 2 b\r\npo\r\n");
    assert_true(req.key_binary);
    assert_mem(req.key, req.nkey, "\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88");
    assert_ptr_equal(req.key, req.key_buf);

    static const char *cmds[] = { "mg", "md", "ma" };
    for (size_t i = 0; i < 3; i++) {
        snprintf(line, sizeof(line), "%s YWJj v b k\r\n", cmds[i]);
        expect_ok(&req, line);
        assert_true(req.key_binary);
        assert_mem(req.key, req.nkey, "abc");
        assert_order(&req, "k");
        /* b takes no token and ignores one */
        snprintf(line, sizeof(line), "%s YWJj bjunk\r\n", cmds[i]);
        expect_ok(&req, line);
        assert_mem(req.key, req.nkey, "abc");
    }
    expect_ok(&req, "me YWJj b\r\n");
    assert_true(req.key_binary);
    assert_mem(req.key, req.nkey, "abc");
    /* me only looks at a "b" right after the key */
    expect_ok(&req, "me YWJj x b\r\n");
    assert_false(req.key_binary);
    expect_ok(&req, "me YWJj b5\r\n");
    assert_false(req.key_binary);
    expect_ok(&req, "me YWJj  b  x\r\n");
    assert_true(req.key_binary);

    /* the longest key decodes to 186 bytes (bytes outside the alphabet
     * are skipped) */
    char k250[251];
    memset(k250, 'A', 248);
    memcpy(k250 + 248, "!!", 3);
    snprintf(line, sizeof(line), "mg %s b\r\n", k250);
    expect_ok(&req, line);
    assert_int_equal(req.nkey, 186);

    /* bad input */
    static const char *bad[] = { "foo", "!!!!", "A===", "YQ=", "YWJjZ" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(line, sizeof(line), "mg %s b\r\n", bad[i]);
        expect_err(line, "CLIENT_ERROR error decoding key");
        snprintf(line, sizeof(line), "ms %s 2 b\r\nhi\r\n", bad[i]);
        expect_err(line, "CLIENT_ERROR error decoding key");
        snprintf(line, sizeof(line), "md %s b\r\n", bad[i]);
        expect_err(line, dup_or_invalid_err);
        snprintf(line, sizeof(line), "ma %s b\r\n", bad[i]);
        expect_err(line, dup_or_invalid_err);
        snprintf(line, sizeof(line), "me %s b\r\n", bad[i]);
        expect_err(line, fmt_err);
    }
    /* a later bad token overrides the decoding error, and vice versa */
    expect_err("mg !!!! b Tx\r\n", token_err);
    expect_err("mg !!!! Tx b\r\n", "CLIENT_ERROR error decoding key");
}

/* ---- other commands ---- */

static void
test_mn_me(void **state)
{
    (void)state;
    struct meta_req req;

    expect_ok(&req, "mn\r\n");
    assert_int_equal(req.cmd, META_MN);
    assert_null(req.key);
    expect_ok(&req, "mn foo bar Z Z\r\n");
    assert_int_equal(req.cmd, META_MN);
    expect_ok(&req, "me foo\r\n");
    assert_int_equal(req.cmd, META_ME);
    assert_mem(req.key, req.nkey, "foo");
    assert_false(req.key_binary);
    /* me takes no flags: anything after the key is ignored */
    expect_ok(&req, "me foo x y v v Z\r\n");
    assert_int_equal(req.nret_order, 0);
    assert_false(req.ret_value);
}

/* ---- streams ---- */

static void
test_ms_value(void **state)
{
    (void)state;
    struct meta_req req;
    size_t consumed;
    const char *errmsg;

    expect_ok(&req, "ms foo 5 T0 F5 c k O123 MS C99 I q\r\nhello\r\n");
    assert_memory_equal(req.value, "hello\r\n", 7);
    assert_int_equal(req.vlen, 5);
    assert_true(req.quiet);
    assert_order(&req, "TckO");

    /* the value may hold anything, "\r\n" included */
    expect_ok(&req, "ms foo 4\r\n\r\n\r\n\r\n");
    assert_memory_equal(req.value, "\r\n\r\n", 4);

    /* bad chunk: the vlen + 2 bytes are read, the error sent even with q */
    expect_err("ms foo 2 q\r\nhix\r", "CLIENT_ERROR bad data chunk");
    expect_err("ms foo 2\r\nhiXY", "CLIENT_ERROR bad data chunk");
    /* a flag error swallows the value unread */
    expect_err("ms foo 2 Z\r\nhiXY", invalid_err);
    expect_err("ms foo 2 q Z\r\nhi\r\n", invalid_err);

    /* what follows is not ours */
    const char *two = "ms foo 2\r\nhi\r\nmn\r\n";
    expect(&req, two, strlen(two), PARSE_OK, 14, NULL);

    /* oversize: the line is consumed, the caller skips vlen + 2 */
    assert_int_equal(parse(&req, "ms foo 5000\r\n", 13, 4096, &consumed,
                           &errmsg), PARSE_EOVERSIZE);
    assert_int_equal(consumed, 13);
    assert_int_equal(req.vlen, 5000);
    assert_null(errmsg);
    assert_int_equal(parse(&req, "ms foo 4096\r\n", 13, 4096, &consumed,
                           &errmsg), PARSE_EUNFIN);
    /* a flag error wins over the size, as memcached checks it first */
    assert_int_equal(parse(&req, "ms foo 5000 q Z\r\n", 17, 4096, &consumed,
                           &errmsg), PARSE_EOVERSIZE);
    assert_int_equal(consumed, 17);
    assert_string_equal(errmsg, invalid_err);
    assert_false(req.quiet);
    assert_int_equal(parse(&req, "ms foo 5000 q\r\n", 15, 4096, &consumed,
                           &errmsg), PARSE_EOVERSIZE);
    assert_null(errmsg);
    assert_false(req.quiet);
}

static void
test_pipeline(void **state)
{
    (void)state;
    static const char stream[] =
        "mg a v\r\n"
        "ms m 2 T0\r\nhi\r\n"
        "bogus\r\n"
        "ms m 2 Z\r\nzz\r\n"          /* swallowed */
        "md m q\n"
        "ms x 3\r\nabcdef\r\n"        /* bad chunk; "f\r\n" is next */
        "ma n N0 J5 v\r\n"
        "me m\r\n"
        "mn\r\n";
    static const struct { proto_parse rc; enum meta_cmd cmd; } want[] = {
        { PARSE_OK, META_MG }, { PARSE_OK, META_MS },
        { PARSE_EINVALID, META_NONE }, { PARSE_EINVALID, META_MS },
        { PARSE_OK, META_MD }, { PARSE_EINVALID, META_MS },
        { PARSE_EINVALID, META_NONE }, { PARSE_OK, META_MA },
        { PARSE_OK, META_ME }, { PARSE_OK, META_MN },
    };
    size_t nwant = sizeof(want) / sizeof(want[0]);
    size_t len = sizeof(stream) - 1;
    struct meta_req req;
    size_t consumed;
    const char *errmsg;

    /* byte by byte: each request seen complete exactly once */
    size_t have = 0, off = 0, seen = 0;
    while (have < len) {
        have++;
        proto_parse rc;
        while ((rc = proto_meta_parse_req(&req, stream + off, have - off,
                                          MAX_VALUE, &consumed, &errmsg))
               != PARSE_EUNFIN) {
            assert_true(seen < nwant);
            assert_int_equal(rc, want[seen].rc);
            assert_int_equal(req.cmd, want[seen].cmd);
            assert_true(consumed > 0);
            seen++;
            off += consumed;
        }
        assert_int_equal(consumed, 0);
    }
    assert_int_equal(seen, nwant);
    assert_int_equal(off, len);
}

/* Truncated requests of every kind: all prefixes wait for more. */
static void
test_truncated(void **state)
{
    (void)state;
    static const char *reqs[] = {
        "mg k v\r\n", "mg k s v f t c k Oop q h l u T30 N30 R5 P L I\r\n",
        "ms k 3 T1\r\nabc\r\n", "ms k 0\r\n\r\n", "md k q C5 I T30\r\n",
        "ma k N0 J5 D3 MD v\r\n", "mn\r\n", "me k\r\n", "me YWJj b\r\n",
        "mg YWJj b k\r\n", "ms k 2 Z\r\nzz\r\n", "ms k 2\r\nzzzz",
        "mg k Z\r\n", "bogus\r\n", "\n",
    };
    struct meta_req req;
    size_t consumed;
    const char *errmsg;

    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        size_t len = strlen(reqs[i]);
        proto_parse rc = parse(&req, reqs[i], len, MAX_VALUE, &consumed,
                               &errmsg);
        assert_true(rc == PARSE_OK || rc == PARSE_EINVALID);
        assert_int_equal(consumed, len);
        assert_prefixes_unfin(reqs[i], len);
    }
}

static void
test_line_too_long(void **state)
{
    (void)state;
    char *buf = malloc(4096);
    struct meta_req req;
    size_t consumed;
    const char *errmsg;

    assert_non_null(buf);
    memcpy(buf, "mg ", 3);
    memset(buf + 3, 'k', 4093);
    assert_int_equal(parse(&req, buf, PROTO_META_LINE_MAX, MAX_VALUE,
                           &consumed, &errmsg), PARSE_EUNFIN);
    assert_int_equal(parse(&req, buf, PROTO_META_LINE_MAX + 1, MAX_VALUE,
                           &consumed, &errmsg), PARSE_EFATAL);
    assert_string_equal(errmsg, "CLIENT_ERROR line too long");
    assert_int_equal(consumed, 0);
    /* a newline as the 2049th byte still ends a line */
    buf[PROTO_META_LINE_MAX] = '\n';
    assert_int_equal(parse(&req, buf, 4096, MAX_VALUE, &consumed, &errmsg),
                     PARSE_EINVALID);
    assert_string_equal(errmsg, fmt_err);   /* the key is too long */
    assert_int_equal(consumed, PROTO_META_LINE_MAX + 1);
    free(buf);
}

/* xorshift: the same junk on every run */
static uint64_t
junk_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static bool
inside(const char *p, size_t n, const char *lo, const char *hi)
{
    return p >= lo && p <= hi && n <= (size_t)(hi - p);
}

/* Whatever the parser hands out, the composers take. */
static void
compose_all(const struct meta_req *req)
{
    struct meta_rsp rsp = {
        .vlen = UINT32_MAX, .cas = UINT64_MAX, .client_flags = UINT32_MAX,
        .ttl = INT64_MIN, .ttl_after_set = INT64_MIN,
        .ttl_after_vivify = INT64_MIN, .last_access = UINT32_MAX,
        .hit_before = true, .vivified = true, .won = true, .stale = true,
        .won_by_other = true,
    };
    char out[PROTO_META_RSP_MAX + 1];

    for (int st = META_RSP_VA; st <= META_RSP_MN; st++) {
        for (int with = 0; with < 2; with++) {
            out[PROTO_META_RSP_MAX] = '#';
            size_t n = proto_meta_compose_rsp(out, req, st,
                                              with ? &rsp : NULL);
            assert_true(n >= 4 && n <= PROTO_META_RSP_MAX);
            assert_int_equal(out[PROTO_META_RSP_MAX], '#');
            assert_memory_equal(out + n - 2, "\r\n", 2);
        }
    }
}

static void
check_stream(const char *buf, size_t len)
{
    size_t off = 0;
    struct meta_req req;
    size_t consumed;
    const char *errmsg;

    while (off < len) {
        proto_parse rc = proto_meta_parse_req(&req, buf + off, len - off,
                                              4096, &consumed, &errmsg);
        const char *start = buf + off;
        if (rc == PARSE_EUNFIN || rc == PARSE_EFATAL) {
            assert_int_equal(consumed, 0);
            if (rc == PARSE_EFATAL)
                assert_non_null(errmsg);
            return;
        }
        assert_true(consumed > 0 && consumed <= len - off);
        if (rc == PARSE_EINVALID)
            assert_true(errmsg != NULL && errmsg[0] != '\0');
        if (rc == PARSE_OK) {
            assert_null(errmsg);
            if (req.key != NULL) {
                assert_true(req.nkey <= PROTO_KEY_MAX);
                assert_true(inside(req.key, req.nkey, start,
                                   start + consumed) ||
                            (req.key_binary && req.key == req.key_buf));
            }
            if (req.has_opaque) {
                assert_true(req.nopaque <= PROTO_META_OPAQUE_MAX);
                assert_true(inside(req.opaque, req.nopaque, start,
                                   start + consumed));
            }
            if (req.value != NULL)
                assert_true(req.value + req.vlen + 2 == start + consumed);
            for (unsigned i = 0; i < req.nret_order; i++)
                assert_non_null(strchr("stcflhOkTNR", req.ret_order[i]));
            compose_all(&req);
        }
        off += consumed;
        if (rc == PARSE_EOVERSIZE) {
            if ((size_t)req.vlen + 2 >= len - off)
                return;
            off += req.vlen + 2;
        }
    }
}

static void
test_garbage(void **state)
{
    (void)state;
    static const char *words[] = {
        "mg", "ms", "md", "ma", "mn", "me", "k", "v", "b", "c", "f", "h", "l",
        "s", "t", "u", "q", "I", "P", "L", "T5", "N0", "R30", "C1", "F2",
        "J3", "D4", "MS", "MD", "ME", "M", "O1", "Oabc", "YWJj", "44OG",
        "0", "1", "2", "-1", "4294967296", "99999999999999999999", " ", "  ",
        "\r\n", "\n", "\r", "\0", "\t", "\x80", "hi", "=", "E", "x", "S",
    };
    size_t nwords = sizeof(words) / sizeof(words[0]);
    char buf[4096];
    uint64_t seed = 0x9e3779b97f4a7c15ull;

    for (int round = 0; round < 300; round++) {
        size_t len = junk_next(&seed) % sizeof(buf);
        for (size_t i = 0; i < len; i++)
            buf[i] = (char)junk_next(&seed);
        check_stream(buf, len);
    }
    for (int round = 0; round < 5000; round++) {
        size_t len = 0;
        size_t nw = junk_next(&seed) % 30;
        for (size_t w = 0; w < nw; w++) {
            const char *word = words[junk_next(&seed) % nwords];
            size_t n = word[0] ? strlen(word) : 1;
            if (len + n + 1 > sizeof(buf))
                break;
            memcpy(buf + len, word, n);
            len += n;
            if (junk_next(&seed) % 3)
                buf[len++] = ' ';
        }
        check_stream(buf, len);
    }
}

/* ---- composers, byte for byte as memcached 1.6.18 wrote them ---- */

/* Parses req_line and composes status from rsp; checks the bytes. */
static void
expect_rsp(const char *req_line, enum meta_status status,
           const struct meta_rsp *rsp, const char *want)
{
    struct meta_req req;
    char out[PROTO_META_RSP_MAX];

    expect_ok(&req, req_line);
    size_t n = proto_meta_compose_rsp(out, &req, status, rsp);
    assert_mem(out, n, want);
}

static void
test_compose_mg(void **state)
{
    (void)state;
    struct meta_rsp r = { .vlen = 2, .cas = 1, .client_flags = 5,
                          .ttl = 100, .last_access = 0 };

    expect_rsp("mg foo s t c f l h k Oabc v\r\n", META_RSP_VA, &r,
               "VA 2 s2 t100 c1 f5 l0 h0 kfoo Oabc\r\n");
    r.hit_before = true;
    r.last_access = 7;
    expect_rsp("mg foo v h l\r\n", META_RSP_VA, &r, "VA 2 h1 l7\r\n");
    expect_rsp("mg foo\r\n", META_RSP_HD, &r, "HD\r\n");
    expect_rsp("mg foo q\r\n", META_RSP_HD, &r, "HD\r\n");

    /* a miss: only O and k, in their order */
    expect_rsp("mg nothere s t c f l h Oxyz k v\r\n", META_RSP_EN, NULL,
               "EN Oxyz knothere\r\n");
    expect_rsp("mg nothere k Oxyz\r\n", META_RSP_EN, NULL,
               "EN knothere Oxyz\r\n");
    expect_rsp("mg foo O\r\n", META_RSP_EN, NULL, "EN O\r\n");
    expect_rsp("mg foo O k\r\n", META_RSP_EN, NULL, "EN O kfoo\r\n");
    expect_rsp("mg YWJk b k v Oq\r\n", META_RSP_EN, NULL,
               "EN kYWJk b Oq\r\n");
    expect_rsp("mg foo\r\n", META_RSP_EN, NULL, "EN\r\n");

    /* base64: the item's own key and mark */
    struct meta_rsp bin = { .vlen = 2, .key = "abc", .nkey = 3,
                            .key_binary = true };
    expect_rsp("mg abc k\r\n", META_RSP_HD, &bin, "HD kYWJj b\r\n");
    bin.key = NULL;
    expect_rsp("mg YWJj b k v Oq\r\n", META_RSP_VA, &bin,
               "VA 2 kYWJj b Oq\r\n");

    /* vivify: the first client wins, the next sees Z */
    struct meta_rsp viv = { .vlen = 0, .cas = 7, .ttl = -1,
                            .ttl_after_vivify = 30, .vivified = true,
                            .won = true };
    expect_rsp("mg vivg q N30 s k O1 c\r\n", META_RSP_HD, &viv,
               "HD s0 kvivg O1 c7 W\r\n");
    struct meta_rsp viv2 = { .vlen = 0, .cas = 7, .ttl = 30,
                             .won_by_other = true };
    expect_rsp("mg vivg q N30 s k O1 c\r\n", META_RSP_HD, &viv2,
               "HD s0 kvivg O1 c7 Z\r\n");
    /* t before N shows the TTL the item was created with */
    expect_rsp("mg viv3 t N30 s v\r\n", META_RSP_VA, &viv,
               "VA 0 t-1 s0 W\r\n");
    expect_rsp("mg viv3 N30 t\r\n", META_RSP_HD, &viv, "HD t30 W\r\n");
    viv.vivified = false;
    expect_rsp("mg viv3 N30 t\r\n", META_RSP_HD, &viv, "HD t-1 W\r\n");

    /* stale (md I): X, and W for the first to see it; Z X after */
    struct meta_rsp st = { .vlen = 2, .cas = 9, .stale = true,
                           .won = true };
    expect_rsp("mg stale s c v O9 k\r\n", META_RSP_VA, &st,
               "VA 2 s2 c9 O9 kstale X W\r\n");
    st.won = false;
    st.won_by_other = true;
    expect_rsp("mg stale s c v O9 k\r\n", META_RSP_VA, &st,
               "VA 2 s2 c9 O9 kstale Z X\r\n");
    expect_rsp("mg stale R10 c\r\n", META_RSP_HD, &st, "HD c9 Z X\r\n");

    /* R: win the recache token */
    struct meta_rsp rc = { .cas = 10, .ttl = 5, .won = true };
    expect_rsp("mg rc R30 c t\r\n", META_RSP_HD, &rc, "HD c10 t5 W\r\n");

    /* T changes the TTL where it stands */
    struct meta_rsp tt = { .ttl = 99, .ttl_after_set = 50 };
    expect_rsp("mg tk t T50\r\n", META_RSP_HD, &tt, "HD t99\r\n");
    tt.ttl_after_set = 60;
    expect_rsp("mg tk T60 t\r\n", META_RSP_HD, &tt, "HD t60\r\n");
    tt.ttl_after_set = -1;
    expect_rsp("mg tk T0 t\r\n", META_RSP_HD, &tt, "HD t-1\r\n");
}

static void
test_compose_ms_md_ma(void **state)
{
    (void)state;

    /* ms: O k c in request order; c is 0 unless stored */
    struct meta_rsp r = { .cas = 2 };
    expect_rsp("ms YWJj 2 b k c Oxx\r\nhi\r\n", META_RSP_HD, &r,
               "HD kYWJj b c2 Oxx\r\n");
    expect_rsp("ms mk 1 c k Oz MR\r\nx\r\n", META_RSP_NS, NULL,
               "NS c0 kmk Oz\r\n");
    r.cas = 853;
    expect_rsp("ms mk 1 Oz k c ME\r\nx\r\n", META_RSP_HD, &r,
               "HD Oz kmk c853\r\n");
    expect_rsp("ms mk 1 Oz k c ME\r\nx\r\n", META_RSP_NS, NULL,
               "NS Oz kmk c0\r\n");
    expect_rsp("ms mk 1 Oz c C1\r\nx\r\n", META_RSP_EX, NULL, "EX Oz c0\r\n");
    r.cas = 854;
    r.vlen = 1;
    r.ttl = 5;
    expect_rsp("ms mk 1 Oz c k s t f v\r\nx\r\n", META_RSP_HD, &r,
               "HD Oz c854 kmk\r\n");
    expect_rsp("ms cx 2 c C999\r\nhi\r\n", META_RSP_NF, NULL, "NF c0\r\n");
    expect_rsp("ms cx 2 q\r\nhi\r\n", META_RSP_HD, NULL, "HD\r\n");

    /* md: O k */
    expect_rsp("md nothere k Oa q\r\n", META_RSP_NF, NULL,
               "NF knothere Oa\r\n");
    expect_rsp("md delk Oa k C1\r\n", META_RSP_EX, NULL, "EX Oa kdelk\r\n");
    expect_rsp("md delk Oa k\r\n", META_RSP_HD, NULL, "HD Oa kdelk\r\n");
    expect_rsp("md YWJjZA== b k Oa\r\n", META_RSP_HD, NULL,
               "HD kYWJjZA== b Oa\r\n");
    expect_rsp("md foo I T30 q\r\n", META_RSP_HD, NULL, "HD\r\n");

    /* ma: c t O k on a hit, O k otherwise */
    expect_rsp("ma nocnt Oz k c t v\r\n", META_RSP_NF, NULL,
               "NF Oz knocnt\r\n");
    expect_rsp("ma YWJjZA== b Oz k\r\n", META_RSP_NF, NULL,
               "NF Oz kYWJjZA== b\r\n");
    expect_rsp("ma cnt9 c C1 k\r\n", META_RSP_EX, NULL, "EX kcnt9\r\n");
    struct meta_rsp a = { .vlen = 2, .cas = 5, .ttl = -1 };
    expect_rsp("ma cnt9 v t k Oz\r\n", META_RSP_VA, &a,
               "VA 2 t-1 kcnt9 Oz\r\n");
    struct meta_rsp viv = { .vlen = 1, .cas = 14, .ttl = -1,
                            .ttl_after_vivify = 100, .vivified = true };
    expect_rsp("ma cz c t v N100 k O5\r\n", META_RSP_VA, &viv,
               "VA 1 c14 t-1 kcz O5\r\n");
    struct meta_rsp set = { .vlen = 1, .cas = 15, .ttl = 100,
                            .ttl_after_set = 50 };
    expect_rsp("ma cz c t v T50 k O5\r\n", META_RSP_VA, &set,
               "VA 1 c15 t100 kcz O5\r\n");
    set.ttl = 50;
    set.ttl_after_set = 60;
    expect_rsp("ma cz t T60\r\n", META_RSP_HD, &set, "HD t50\r\n");
    /* ma never writes s f l h or the token flags */
    expect_rsp("ma cz s f l h t\r\n", META_RSP_HD, &set, "HD t50\r\n");
    expect_rsp("ma mu N90\r\n", META_RSP_HD, &viv, "HD\r\n");

    /* mn */
    expect_rsp("mn\r\n", META_RSP_MN, NULL, "MN\r\n");
}

static void
test_compose_longest(void **state)
{
    (void)state;
    /* every return flag at its widest, with a 250-byte binary key */
    char key[PROTO_KEY_MAX], opaque[PROTO_META_OPAQUE_MAX + 1];
    char line[128], want[PROTO_META_RSP_MAX];
    memset(key, '\xff', sizeof(key));
    memset(opaque, 'y', PROTO_META_OPAQUE_MAX);
    opaque[PROTO_META_OPAQUE_MAX] = '\0';
    snprintf(line, sizeof(line), "mg foo s t c f l h k O%s v T1 N1 q\r\n",
             opaque);
    struct meta_req req;
    expect_ok(&req, line);
    struct meta_rsp r = {
        .vlen = UINT32_MAX, .cas = UINT64_MAX, .client_flags = UINT32_MAX,
        .ttl = INT64_MIN, .ttl_after_set = INT64_MIN,
        .ttl_after_vivify = INT64_MIN, .last_access = UINT32_MAX,
        .hit_before = true, .vivified = true, .won = true, .stale = true,
        .won_by_other = true, .key = key, .nkey = PROTO_KEY_MAX,
        .key_binary = true,
    };
    size_t w = (size_t)snprintf(want, sizeof(want),
                                "VA 4294967295 s4294967295 "
                                "t-9223372036854775808 "
                                "c18446744073709551615 f4294967295 "
                                "l4294967295 h1 k");
    for (int i = 0; i < PROTO_KEY_MAX / 3; i++) {
        memcpy(want + w, "////", 4);
        w += 4;
    }
    w += (size_t)snprintf(want + w, sizeof(want) - w, "/w== b O%s Z X W\r\n",
                          opaque);
    char out[PROTO_META_RSP_MAX];
    size_t n = proto_meta_compose_rsp(out, &req, META_RSP_VA, &r);
    assert_true(n <= PROTO_META_RSP_MAX);
    assert_int_equal(n, w);
    assert_memory_equal(out, want, w);
}

static void
test_compose_debug(void **state)
{
    (void)state;
    char out[PROTO_META_DEBUG_MAX];
    struct meta_debug d = { .exp = -100, .last_access = 0, .cas = 1,
                            .fetched = false, .slab_class = 1,
                            .total_size = 68 };
    size_t n = proto_meta_compose_debug(out, "foo", 3, false, &d);
    assert_mem(out, n, "ME foo exp=-100 la=0 cas=1 fetch=no cls=1 size=68\r\n");

    struct meta_debug b = { .exp = -1, .last_access = 0, .cas = 11,
                            .fetched = false, .slab_class = 1,
                            .total_size = 64 };
    n = proto_meta_compose_debug(out, "abc", 3, true, &b);
    assert_mem(out, n,
               "ME YWJj exp=-1 la=0 cas=11 fetch=no cls=1 size=64\r\n");
    b.fetched = true;
    b.last_access = 12;
    n = proto_meta_compose_debug(out, "abc", 3, false, &b);
    assert_mem(out, n,
               "ME abc exp=-1 la=12 cas=11 fetch=yes cls=1 size=64\r\n");

    /* the widest */
    char key[PROTO_KEY_MAX];
    memset(key, 0, sizeof(key));
    struct meta_debug w = { .exp = INT64_MIN, .last_access = UINT64_MAX,
                            .cas = UINT64_MAX, .fetched = true,
                            .slab_class = UINT32_MAX,
                            .total_size = UINT64_MAX };
    n = proto_meta_compose_debug(out, key, PROTO_KEY_MAX, true, &w);
    assert_true(n <= PROTO_META_DEBUG_MAX);
    assert_memory_equal(out + n - 2, "\r\n", 2);
}

static int
teardown(void **state)
{
    (void)state;
    free(held);
    held = NULL;
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_every_flag, teardown),
        cmocka_unit_test_teardown(test_all_flags_at_once, teardown),
        cmocka_unit_test_teardown(test_modes, teardown),
        cmocka_unit_test_teardown(test_unknown_flags, teardown),
        cmocka_unit_test_teardown(test_duplicates_and_precedence, teardown),
        cmocka_unit_test_teardown(test_opaque_length, teardown),
        cmocka_unit_test_teardown(test_line_errors, teardown),
        cmocka_unit_test_teardown(test_ttl_numbers, teardown),
        cmocka_unit_test_teardown(test_u64_numbers, teardown),
        cmocka_unit_test_teardown(test_set_length, teardown),
        cmocka_unit_test_teardown(test_spacing, teardown),
        cmocka_unit_test_teardown(test_base64_vectors, teardown),
        cmocka_unit_test_teardown(test_base64_round_trip, teardown),
        cmocka_unit_test_teardown(test_base64_keys, teardown),
        cmocka_unit_test_teardown(test_mn_me, teardown),
        cmocka_unit_test_teardown(test_ms_value, teardown),
        cmocka_unit_test_teardown(test_pipeline, teardown),
        cmocka_unit_test_teardown(test_truncated, teardown),
        cmocka_unit_test_teardown(test_line_too_long, teardown),
        cmocka_unit_test_teardown(test_garbage, teardown),
        cmocka_unit_test_teardown(test_compose_mg, teardown),
        cmocka_unit_test_teardown(test_compose_ms_md_ma, teardown),
        cmocka_unit_test_teardown(test_compose_longest, teardown),
        cmocka_unit_test_teardown(test_compose_debug, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
