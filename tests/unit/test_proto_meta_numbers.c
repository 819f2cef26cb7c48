/*
 * test_proto_meta_numbers.c: the numbers of protocol/proto_meta.c's
 * requests, by memcached 1.6.18's rules: TTLs, 64-bit tokens (CAS, deltas,
 * initial values) and ms value lengths.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "protocol/proto_meta.h"
#include "tests/unit/proto_meta_helpers.h"

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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_ttl_numbers, teardown),
        cmocka_unit_test_teardown(test_u64_numbers, teardown),
        cmocka_unit_test_teardown(test_set_length, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
