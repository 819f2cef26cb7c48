/*
 * test_proto_text_meta.c: meta commands (mg, ms, md, ma, mn, me) through
 * protocol/proto_text.c, which hands them on to protocol/proto_meta.c: the
 * fields of struct text_req they fill and their flags.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "protocol/proto_text.h"
#include "tests/unit/proto_text_helpers.h"

/* ---- meta ---- */

static void
test_meta_get(void **state)
{
    (void)state;
    struct text_req req;

    expect_s("mg foo v\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_MG);
    assert_int_equal(req.meta.cmd, META_MG);
    assert_mem(req.key, req.nkey, "foo");
    assert_mem(req.meta.key, req.meta.nkey, "foo");
    assert_true(req.meta.ret_value);
    assert_false(req.meta.ret_key);
    assert_false(req.noreply);

    expect_s("mg foo s v f t c k Oopaque123 q h l u T30 N-1 R5 P L E\r\n",
             PARSE_EINVALID, "CLIENT_ERROR invalid flag", NULL);
    expect_s("mg foo s v f t c k Oopaque123 q h l u T30 N-1 R5 P L I\r\n",
             PARSE_OK, NULL, &req);
    assert_true(req.meta.ret_size && req.meta.ret_value &&
                req.meta.ret_flags && req.meta.ret_ttl && req.meta.ret_cas &&
                req.meta.ret_key && req.meta.ret_hit &&
                req.meta.ret_last_access && req.meta.no_lru_bump &&
                req.meta.invalidate && req.meta.has_proxy_p &&
                req.meta.has_proxy_l);
    assert_mem(req.meta.opaque, req.meta.nopaque, "opaque123");
    assert_true(req.meta.quiet);
    assert_true(req.meta.has_ttl && req.meta.ttl == 30);
    assert_true(req.meta.has_vivify && req.meta.vivify_ttl == -1);
    assert_true(req.meta.has_recache && req.meta.recache_ttl == 5);
    assert_mem(req.meta.ret_order, req.meta.nret_order, "sftckOhlTNR");
    assert_true(req.noreply);

    expect_s("mg foo\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.meta.nret_order, 0);
    assert_false(req.meta.ret_value);
    /* a base64 key is decoded: "mk" */
    expect_s("mg bWs= b v\r\n", PARSE_OK, NULL, &req);
    assert_true(req.meta.key_binary);
    assert_mem(req.meta.key, req.meta.nkey, "mk");
    assert_mem(req.key, req.nkey, "mk");

    /* errors, in memcached's order and words */
    expect_s("mg foo Z\r\n", PARSE_EINVALID, "CLIENT_ERROR invalid flag", NULL);
    expect_s("mg foo v v\r\n", PARSE_EINVALID, "CLIENT_ERROR duplicate flag",
             NULL);
    expect_s("mg foo \x80\r\n", PARSE_EINVALID, "CLIENT_ERROR duplicate flag",
             NULL);
    expect_s("mg foo Tx\r\n", PARSE_EINVALID,
             "CLIENT_ERROR bad token in command line format", NULL);
    expect_s("mg foo T\r\n", PARSE_EINVALID,
             "CLIENT_ERROR bad token in command line format", NULL);
    expect_s("mg foo Fx\r\n", PARSE_EINVALID, fmt_err, NULL);
    /* memcached keeps the low 32 bits of F */
    expect_s("mg foo F4294967297\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.meta.client_flags, 1);
    expect_s("mg foo C-1\r\n", PARSE_EINVALID,
             "CLIENT_ERROR bad token in command line format", NULL);
    expect_s("mg foo M\r\n", PARSE_EINVALID,
             "CLIENT_ERROR incorrect length for M token", NULL);
    expect_s("mg foo Jx\r\n", PARSE_EINVALID,
             "CLIENT_ERROR invalid numeric initial value", NULL);
    expect_s("mg foo Dx\r\n", PARSE_EINVALID,
             "CLIENT_ERROR invalid numeric delta value", NULL);
    expect_s("mg foo Tx Dx\r\n", PARSE_EINVALID,
             "CLIENT_ERROR invalid numeric delta value", NULL);
    expect_s("mg foo Dx Tx\r\n", PARSE_EINVALID,
             "CLIENT_ERROR bad token in command line format", NULL);
    expect_s("mg foo Tx Z\r\n", PARSE_EINVALID, "CLIENT_ERROR invalid flag",
             NULL);
    expect_s("mg foo b\r\n", PARSE_EINVALID,
             "CLIENT_ERROR error decoding key", NULL);
    expect_s("mg !!! b\r\n", PARSE_EINVALID,
             "CLIENT_ERROR error decoding key", NULL);
    expect_s("mg A=== b\r\n", PARSE_EINVALID,
             "CLIENT_ERROR error decoding key", NULL);
    /* an opaque token of 32 bytes ('O' included) is the longest */
    char line[128];
    char op32[33], op33[34];
    memset(op32, 'x', 32);
    op32[0] = 'O';
    op32[32] = '\0';
    memset(op33, 'x', 33);
    op33[0] = 'O';
    op33[33] = '\0';
    snprintf(line, sizeof(line), "mg %s\r\n", op33);   /* it is the key */
    expect_s(line, PARSE_OK, NULL, NULL);
    snprintf(line, sizeof(line), "mg k %s\r\n", op32);
    expect_s(line, PARSE_OK, NULL, &req);
    assert_int_equal(req.meta.nopaque, 31);
    snprintf(line, sizeof(line), "mg k %s\r\n", op33);
    expect_s(line, PARSE_EINVALID, "CLIENT_ERROR opaque token too long",
             NULL);
    snprintf(line, sizeof(line), "mg k q %s\r\n", op33);
    expect_s(line, PARSE_EINVALID, "CLIENT_ERROR opaque token too long",
             &req);
    assert_false(req.noreply);

    /* 17 flags is the most; 18 is too many */
    expect_s("mg k O0 O1 O2 O3 O4 O5 O6 O7 O8 O9 O10 O11 O12 O13 O14 O15 O16"
             "\r\n", PARSE_EINVALID, "CLIENT_ERROR duplicate flag", NULL);
    expect_s("mg k O0 O1 O2 O3 O4 O5 O6 O7 O8 O9 O10 O11 O12 O13 O14 O15 O16"
             " O17\r\n", PARSE_EINVALID,
             "CLIENT_ERROR options flags are too long", NULL);

    char buf[512];
    char k251[252];
    memset(k251, 'a', 251);
    k251[251] = '\0';
    snprintf(buf, sizeof(buf), "mg %s v\r\n", k251);
    expect_s(buf, PARSE_EINVALID, fmt_err, NULL);
}

static void
test_meta_set(void **state)
{
    (void)state;
    struct text_req req;

    expect_s("ms foo 2\r\nhi\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_MS);
    assert_mem(req.key, req.nkey, "foo");
    assert_int_equal(req.vlen, 2);
    assert_memory_equal(req.value, "hi\r\n", 4);
    assert_int_equal(req.meta.cmd, META_MS);
    assert_int_equal(req.meta.vlen, 2);
    assert_ptr_equal(req.meta.value, req.value);
    assert_int_equal(req.meta.nret_order, 0);

    expect_s("ms foo 5 T0 F5 c k O123 MS C99 I q\r\nhello\r\n", PARSE_OK,
             NULL, &req);
    assert_true(req.meta.has_ttl && req.meta.ttl == 0);
    assert_true(req.meta.has_client_flags && req.meta.client_flags == 5);
    assert_true(req.meta.ret_cas && req.meta.ret_key);
    assert_mem(req.meta.opaque, req.meta.nopaque, "123");
    assert_int_equal(req.meta.mode_char, 'S');
    assert_int_equal(req.meta.set_mode, META_SET_SET);
    assert_true(req.meta.has_compare_cas && req.meta.compare_cas == 99);
    assert_true(req.meta.invalidate);
    assert_true(req.noreply);
    assert_memory_equal(req.value, "hello", 5);

    static const char *modes = "EAPRS";
    char buf[512];
    for (const char *m = modes; *m; m++) {
        snprintf(buf, sizeof(buf), "ms k 1 M%c\r\nx\r\n", *m);
        expect_s(buf, PARSE_OK, NULL, NULL);
    }

    /* line errors: nothing swallowed */
    static const struct { const char *s; const char *err; } noswallow[] = {
        { "ms foo\r\nhi\r\n", fmt_err },
        { "ms foo abc\r\nhi\r\n", fmt_err },
        { "ms foo -1\r\nhi\r\n", fmt_err },
        { "ms foo 2147483646\r\nhi\r\n", fmt_err },
        { "ms foo 2 O0 O1 O2 O3 O4 O5 O6 O7 O8 O9 O10 O11 O12 O13 O14 O15 "
          "O16\r\nhi\r\n", "CLIENT_ERROR options flags too long" },
    };
    for (size_t i = 0; i < sizeof(noswallow) / sizeof(noswallow[0]); i++) {
        const char *s = noswallow[i].s;
        expect(s, strlen(s), PARSE_EINVALID,
               (size_t)(strchr(s, '\n') - s) + 1, noswallow[i].err, NULL);
    }

    /* flag errors: the value is swallowed, the error sent even with q */
    static const struct { const char *s; const char *err; } swallow[] = {
        { "ms foo 2 Z\r\nhi\r\n", "CLIENT_ERROR invalid flag" },
        { "ms foo 2 T1 T2\r\nhi\r\n", "CLIENT_ERROR duplicate flag" },
        { "ms foo 2 Tabc\r\nhi\r\n",
          "CLIENT_ERROR bad token in command line format" },
        { "ms foo 2 MZ\r\nhi\r\n", "CLIENT_ERROR invalid mode for ms M token" },
        { "ms foo 2 Me\r\nhi\r\n", "CLIENT_ERROR invalid mode for ms M token" },
        { "ms foo 2 MEE\r\nhi\r\n",
          "CLIENT_ERROR incorrect length for M token" },
        { "ms foo 2 Fx q\r\nhi\r\n", fmt_err },
        { "ms foo 2 S100\r\nhi\r\n", "CLIENT_ERROR invalid flag" },
        { "ms foo 2 q Oyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\nhi\r\n",
          "CLIENT_ERROR opaque token too long" },
        { "ms foo 2 Mx Oyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\nhi\r\n",
          "CLIENT_ERROR invalid mode for ms M token" },
        { "ms foo 2 Tx Oyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\nhi\r\n",
          "CLIENT_ERROR bad token in command line format" },
        { "ms foo 2 b\r\nhi\r\n", "CLIENT_ERROR error decoding key" },
        /* swallowed unread: the bytes need not end in \r\n */
        { "ms foo 2 Z\r\nhiXY", "CLIENT_ERROR invalid flag" },
    };
    for (size_t i = 0; i < sizeof(swallow) / sizeof(swallow[0]); i++) {
        expect_s(swallow[i].s, PARSE_EINVALID, swallow[i].err, &req);
        assert_false(req.noreply);
    }

    /* bad chunk: error even with q */
    expect_s("ms foo 2 q\r\nhix\r", PARSE_EINVALID,
             "CLIENT_ERROR bad data chunk", &req);
    assert_false(req.noreply);
}

static void
test_meta_other(void **state)
{
    (void)state;
    struct text_req req;

    expect_s("md foo q C5 I T30 k O1\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_MD);
    assert_mem(req.key, req.nkey, "foo");
    assert_true(req.meta.has_compare_cas && req.meta.compare_cas == 5);
    assert_true(req.meta.invalidate && req.meta.ret_key);
    assert_true(req.meta.has_ttl && req.meta.ttl == 30);
    assert_mem(req.meta.opaque, req.meta.nopaque, "1");
    assert_true(req.noreply);
    expect_s("md foo Z\r\n", PARSE_EINVALID,
             "CLIENT_ERROR invalid or duplicate flag", NULL);
    expect_s("md foo T5 x\r\n", PARSE_EINVALID,
             "CLIENT_ERROR invalid or duplicate flag", NULL);
    expect_s("md foo Oyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n",
             PARSE_EINVALID, "CLIENT_ERROR opaque token too long", NULL);
    expect_s("md k O0 O1 O2 O3 O4 O5 O6 O7 O8 O9 O10 O11 O12 O13 O14 O15 O16"
             " O17\r\n", PARSE_EINVALID,
             "CLIENT_ERROR options flags too long", NULL);

    expect_s("ma cnt N0 J5 D3 MD v\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_MA);
    assert_true(req.meta.has_vivify && req.meta.vivify_ttl == 0);
    assert_true(req.meta.has_initial && req.meta.initial == 5);
    assert_true(req.meta.has_delta && req.meta.delta == 3);
    assert_true(req.meta.decr && req.meta.ret_value);
    expect_s("ma cnt\r\n", PARSE_OK, NULL, &req);
    assert_false(req.meta.has_delta);
    assert_int_equal(req.meta.delta, 1);
    assert_false(req.meta.decr);
    static const char *ma_modes[] = { "MI", "M+", "MD", "M-" };
    char buf[64];
    for (int i = 0; i < 4; i++) {
        snprintf(buf, sizeof(buf), "ma cnt %s\r\n", ma_modes[i]);
        expect_s(buf, PARSE_OK, NULL, NULL);
    }
    expect_s("ma cnt Mi\r\n", PARSE_EINVALID,
             "CLIENT_ERROR invalid mode for ma M token", NULL);
    expect_s("ma cnt MX Oyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n",
             PARSE_EINVALID, "CLIENT_ERROR invalid mode for ma M token", NULL);
    expect_s("ma cnt Dx J1\r\n", PARSE_EINVALID,
             "CLIENT_ERROR invalid or duplicate flag", NULL);
    expect_s("ma cnt Oyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n",
             PARSE_EINVALID, "CLIENT_ERROR opaque token too long", NULL);

    expect_s("mn\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_MN);
    assert_null(req.key);
    expect_s("mn foo\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_MN);

    expect_s("me foo\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_ME);
    assert_mem(req.key, req.nkey, "foo");
    expect_s("me bWs= b\r\n", PARSE_OK, NULL, &req);
    assert_true(req.meta.key_binary);
    assert_mem(req.key, req.nkey, "mk");
    expect_s("me foo x y\r\n", PARSE_OK, NULL, &req);
    expect_s("me\r\n", PARSE_EINVALID, fmt_err, NULL);
    expect_s("me foo b\r\n", PARSE_EINVALID, fmt_err, NULL);
    char k251[252];
    memset(k251, 'a', 251);
    k251[251] = '\0';
    char line[300];
    snprintf(line, sizeof(line), "me %s\r\n", k251);
    expect_s(line, PARSE_EINVALID, fmt_err, NULL);
    snprintf(line, sizeof(line), "md %s\r\n", k251);
    expect_s(line, PARSE_EINVALID, fmt_err, NULL);
    snprintf(line, sizeof(line), "ma %s\r\n", k251);
    expect_s(line, PARSE_EINVALID, fmt_err, NULL);
    snprintf(line, sizeof(line), "ms %s 1\r\nx\r\n", k251);
    expect(line, strlen(line), PARSE_EINVALID, strlen(line) - 3, fmt_err,
           NULL);
}

/* The raw flag tokens server/process_text.c still reads. */
int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_meta_get),
        cmocka_unit_test(test_meta_set),
        cmocka_unit_test(test_meta_other),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
