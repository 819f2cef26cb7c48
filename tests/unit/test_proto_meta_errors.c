/*
 * test_proto_meta_errors.c: what protocol/proto_meta.c refuses, with
 * memcached 1.6.18's error lines: unknown and duplicate flags and which
 * error wins, opaque tokens too long, malformed lines, and spacing.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "protocol/proto_meta.h"
#include "tests/unit/proto_meta_helpers.h"

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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_unknown_flags, teardown),
        cmocka_unit_test_teardown(test_duplicates_and_precedence, teardown),
        cmocka_unit_test_teardown(test_opaque_length, teardown),
        cmocka_unit_test_teardown(test_line_errors, teardown),
        cmocka_unit_test_teardown(test_spacing, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
