/*
 * test_proto_meta_base64.c: base64 in protocol/proto_meta.c: the RFC 4648
 * vectors, round trips, and base64 keys (the b flag) decoded into the
 * request.
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_base64_vectors, teardown),
        cmocka_unit_test_teardown(test_base64_round_trip, teardown),
        cmocka_unit_test_teardown(test_base64_keys, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
