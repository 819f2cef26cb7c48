/*
 * test_proto_text_storage.c: storage commands of protocol/proto_text.c
 * (set, add, replace, append, prepend, cas): composed and parsed back for
 * each command, numbers at their limits, malformed lines, and values over
 * the limit (refused, their bytes to swallow).
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "protocol/proto_text.h"
#include "tests/unit/proto_text_helpers.h"

/* ---- storage ---- */

struct storage_case {
    const char *name;
    enum text_cmd cmd;
};

static const struct storage_case storage_cmds[] = {
    { "set", TEXT_SET }, { "add", TEXT_ADD }, { "replace", TEXT_REPLACE },
    { "append", TEXT_APPEND }, { "prepend", TEXT_PREPEND }, { "cas", TEXT_CAS },
};

static size_t
compose_storage(char *out, size_t outlen, const char *cmd, const char *key,
                uint32_t flags, int64_t exptime, const char *value,
                size_t vlen, uint64_t cas, bool noreply)
{
    size_t n = (size_t)snprintf(out, outlen, "%s %s %" PRIu32 " %" PRId64
                                " %zu", cmd, key, flags, exptime, vlen);
    if (strcmp(cmd, "cas") == 0)
        n += (size_t)snprintf(out + n, outlen - n, " %" PRIu64, cas);
    n += (size_t)snprintf(out + n, outlen - n, "%s\r\n",
                          noreply ? " noreply" : "");
    assert_true(n + vlen + 2 <= outlen);
    memcpy(out + n, value, vlen);
    memcpy(out + n + vlen, "\r\n", 2);
    return n + vlen + 2;
}

static void
test_storage_roundtrip(void **state)
{
    (void)state;
    static const struct { const char *p; size_t n; } values[] = {
        { "", 0 }, { "v", 1 }, { "hello world", 11 }, { "a\r\nb\r\n", 6 },
        { "\0\1\2\n", 4 }, { "\r\n", 2 },
    };
    char buf[512];
    struct text_req req;

    for (size_t c = 0; c < sizeof(storage_cmds) / sizeof(storage_cmds[0]);
         c++) {
        for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
            for (int noreply = 0; noreply < 2; noreply++) {
                size_t n = compose_storage(buf, sizeof(buf),
                                           storage_cmds[c].name, "the_key",
                                           4294967295u, -30, values[v].p,
                                           values[v].n,
                                           18446744073709551615ull, noreply);
                expect(buf, n, PARSE_OK, n, NULL, &req);
                assert_int_equal(req.cmd, storage_cmds[c].cmd);
                assert_mem(req.key, req.nkey, "the_key");
                assert_int_equal(req.flags, 4294967295u);
                assert_int_equal(req.exptime, -30);
                assert_int_equal(req.vlen, values[v].n);
                if (values[v].n > 0)
                    assert_memory_equal(req.value, values[v].p, values[v].n);
                assert_memory_equal(req.value + req.vlen, "\r\n", 2);
                assert_int_equal(req.noreply, noreply);
                if (storage_cmds[c].cmd == TEXT_CAS)
                    assert_true(req.cas_unique == 18446744073709551615ull);
                else
                    assert_true(req.cas_unique == 0);
            }
        }
    }

    /* a value that contains what looks like commands */
    expect_s("set k 1 2 13\r\nget x\r\nquit\r\n\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.vlen, 13);
    assert_memory_equal(req.value, "get x\r\nquit\r\n", 13);

    /* line ended with a bare \n; value is still vlen + "\r\n" */
    expect_s("set k 0 0 2\nab\r\n", PARSE_OK, NULL, &req);
    assert_memory_equal(req.value, "ab", 2);

    /* memcached ignores one extra token after the numbers */
    expect_s("set k 0 0 1 junk\r\nx\r\n", PARSE_OK, NULL, &req);
    assert_false(req.noreply);
    expect_s("cas k 0 0 1 5 junk\r\nx\r\n", PARSE_OK, NULL, &req);
    assert_true(req.cas_unique == 5);
}

static void
test_storage_numbers(void **state)
{
    (void)state;
    struct text_req req;

    /* safe_strto*() rules: sign, leading and trailing whitespace */
    expect_s("set k +5 0 1\r\nx\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.flags, 5);
    expect_s("set k \t5 0 1\r\nx\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.flags, 5);
    expect_s("set k 5\tjunk 0 1\r\nx\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.flags, 5);
    expect_s("set k 0 0 1\t\r\nx\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.vlen, 1);
    expect_s("set k 0 0 1\r\r\nx\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.vlen, 1);
    expect_s("set k 0 0 01\r\nx\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.vlen, 1);
    expect_s("set k 0 0 -0\r\n\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.vlen, 0);
    /* strtoul wraps "-N": memcached keeps 1 here */
    expect_s("set k -18446744073709551615 0 1\r\nx\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.flags, 1);
    expect_s("set k 0 -9223372036854775808 1\r\nx\r\n", PARSE_OK, NULL, &req);
    assert_true(req.exptime == INT64_MIN);
    expect_s("set k 0 9223372036854775807 1\r\nx\r\n", PARSE_OK, NULL, &req);
    assert_true(req.exptime == INT64_MAX);
    expect_s("set k 0 2147483648 1\r\nx\r\n", PARSE_OK, NULL, &req);
    assert_true(req.exptime == 2147483648);

    /* bad numbers: CLIENT_ERROR, line consumed, value left to be parsed as
     * a command (memcached then answers it with ERROR) */
    static const char *bad[] = {
        "set k 4294967296 0 1\r\n",            /* flags over 32 bits */
        "set k 99999999999999999999 0 1\r\n",  /* flags over 64 bits */
        "set k -1 0 1\r\n",
        "set k abc 0 1\r\n",
        "set k 1x 0 1\r\n",
        "set k \t 0 1\r\n",
        "set k 0 abc 1\r\n",
        "set k 0 9223372036854775808 1\r\n",   /* exptime over int64 */
        "set k 0 -9223372036854775809 1\r\n",
        "set k 0 0 -1\r\n",
        "set k 0 0 abc\r\n",
        "set k 0 0 2147483646\r\n",            /* over INT_MAX - 2 */
        "set k 0 0 4294967297\r\n",
        "set k 0 0 1x\r\n",
        "cas k 0 0 1 abc\r\n",
        "cas k 0 0 1 -1\r\n",
        "cas k 0 0 1 18446744073709551616\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *s = bad[i];
        const char *nl = strchr(s, '\n');
        size_t line = (size_t)(nl - s) + 1;
        expect(s, strlen(s), PARSE_EINVALID, line, fmt_err, &req);
        assert_false(req.noreply);
    }

    /* noreply is still recognised: memcached then says nothing */
    expect_s("set k abc 0 1 noreply\r\n", PARSE_EINVALID, fmt_err, &req);
    assert_true(req.noreply);
}

static void
test_storage_errors(void **state)
{
    (void)state;
    struct text_req req;
    char buf[1024];
    char k251[252];
    memset(k251, 'a', 251);
    k251[251] = '\0';

    /* wrong token counts are "ERROR", as memcached's WANT_TOKENS */
    expect_s("set k 0 0\r\n", PARSE_EINVALID, "ERROR", NULL);
    expect_s("set k 0 0 1 noreply extra\r\n", PARSE_EINVALID, "ERROR", NULL);
    expect_s("set\r\n", PARSE_EINVALID, "ERROR", NULL);
    expect_s("cas k 0 0 1\r\n", PARSE_EINVALID, "ERROR", NULL);
    expect_s("append k 0 0 1 2 3\r\n", PARSE_EINVALID, "ERROR", NULL);
    /* tab is not a separator */
    expect_s("set k\t0 0 1\r\n", PARSE_EINVALID, "ERROR", NULL);

    /* key too long: no swallow */
    snprintf(buf, sizeof(buf), "set %s 0 0 1\r\n", k251);
    expect_s(buf, PARSE_EINVALID, fmt_err, &req);
    assert_false(req.noreply);
    snprintf(buf, sizeof(buf), "set %s 0 0 1 noreply\r\n", k251);
    expect_s(buf, PARSE_EINVALID, fmt_err, &req);
    assert_true(req.noreply);

    /* data block not followed by \r\n: line + vlen + 2 are gone */
    expect("set k 0 0 3\r\nabcdef\r\n", 21, PARSE_EINVALID, 18,
           "CLIENT_ERROR bad data chunk", &req);
    expect("set k 0 0 3\r\nabc\nget k\r\n", 24, PARSE_EINVALID, 18,
           "CLIENT_ERROR bad data chunk", &req);
    expect("set k 0 0 3 noreply\r\nabcXY", 26, PARSE_EINVALID, 26,
           "CLIENT_ERROR bad data chunk", &req);
    assert_true(req.noreply);
    /* a value missing its last byte is just unfinished */
    expect("set k 0 0 1\r\nx\n", 15, PARSE_EUNFIN, 0, NULL, NULL);
}

static void
test_storage_oversize(void **state)
{
    (void)state;
    struct text_req req;
    size_t consumed;
    const char *errmsg;
    const char *s = "set big 0 0 2000\r\n";

    /* only the line is needed to say "too large" */
    assert_int_equal(parse_n(&req, s, strlen(s), 1000, &consumed, &errmsg),
                     PARSE_EOVERSIZE);
    assert_int_equal(consumed, strlen(s));
    assert_int_equal(req.vlen, 2000);
    assert_false(req.noreply);
    assert_prefixes_unfin(s, strlen(s), 1000);

    s = "set big 0 0 1001 noreply\r\n";
    assert_int_equal(parse_n(&req, s, strlen(s), 1000, &consumed, &errmsg),
                     PARSE_EOVERSIZE);
    assert_true(req.noreply);
    assert_int_equal(req.vlen, 1001);

    /* exactly max_value fits */
    char buf[1100];
    memcpy(buf, "set big 0 0 1000\r\n", 18);
    memset(buf + 18, 'v', 1000);
    memcpy(buf + 1018, "\r\n", 2);
    assert_int_equal(parse_n(&req, buf, 1020, 1000, &consumed, &errmsg),
                     PARSE_OK);
    assert_int_equal(consumed, 1020);
    assert_prefixes_unfin(buf, 1020, 1000);

    /* the same for ms */
    s = "ms big 1001 T0\r\n";
    assert_int_equal(parse_n(&req, s, strlen(s), 1000, &consumed, &errmsg),
                     PARSE_EOVERSIZE);
    assert_int_equal(consumed, strlen(s));
    assert_int_equal(req.vlen, 1001);
    assert_null(errmsg);
    s = "ms big 1001 q\r\n";
    assert_int_equal(parse_n(&req, s, strlen(s), 1000, &consumed, &errmsg),
                     PARSE_EOVERSIZE);
    assert_false(req.noreply);
    /* a flag error is what memcached answers, before the size */
    s = "ms big 1001 q Z\r\n";
    assert_int_equal(parse_n(&req, s, strlen(s), 1000, &consumed, &errmsg),
                     PARSE_EOVERSIZE);
    assert_int_equal(consumed, strlen(s));
    assert_string_equal(errmsg, "CLIENT_ERROR invalid flag");
    assert_false(req.noreply);
    /* classic commands never carry one */
    s = "set big 0 0 2000\r\n";
    assert_int_equal(parse_n(&req, s, strlen(s), 1000, &consumed, &errmsg),
                     PARSE_EOVERSIZE);
    assert_null(errmsg);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_storage_roundtrip),
        cmocka_unit_test(test_storage_numbers),
        cmocka_unit_test(test_storage_errors),
        cmocka_unit_test(test_storage_oversize),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
