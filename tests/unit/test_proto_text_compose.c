/*
 * test_proto_text_compose.c: the text protocol's reply composers of
 * protocol/proto_text.c: u64toa, VALUE headers and STAT lines, byte for
 * byte.
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

/* ---- composers ---- */

static void
test_u64toa(void **state)
{
    (void)state;
    char out[21];
    char want[32];
    uint64_t v = 0;

    static const uint64_t fixed[] = { 0, 1, 9, 10, 11, 99, 100, 101, 999,
                                      1000, 4294967295ull, 4294967296ull,
                                      UINT64_MAX - 1, UINT64_MAX };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        size_t n = proto_text_u64toa(fixed[i], out);
        snprintf(want, sizeof(want), "%" PRIu64, fixed[i]);
        assert_mem(out, n, want);
    }
    for (int i = 0; i < 20; i++) {
        size_t n = proto_text_u64toa(v, out);
        snprintf(want, sizeof(want), "%" PRIu64, v);
        assert_mem(out, n, want);
        n = proto_text_u64toa(v ? v - 1 : 0, out);
        snprintf(want, sizeof(want), "%" PRIu64, v ? v - 1 : 0);
        assert_mem(out, n, want);
        v = v ? v * 10 : 1;
    }
    uint64_t seed = 12345;
    for (int i = 0; i < 10000; i++) {
        v = junk_next(&seed) >> (junk_next(&seed) % 64);
        size_t n = proto_text_u64toa(v, out);
        snprintf(want, sizeof(want), "%" PRIu64, v);
        assert_mem(out, n, want);
    }
}

static void
test_compose_value_hdr(void **state)
{
    (void)state;
    char out[PROTO_TEXT_VALUE_HDR_MAX];
    size_t n = proto_text_compose_value_hdr(out, "foo", 3, 5, 10, false, 0);
    assert_mem(out, n, "VALUE foo 5 10\r\n");
    n = proto_text_compose_value_hdr(out, "foo", 3, 0, 0, true, 77);
    assert_mem(out, n, "VALUE foo 0 0 77\r\n");

    /* the longest header fits */
    char key[PROTO_KEY_MAX];
    memset(key, 'k', sizeof(key));
    n = proto_text_compose_value_hdr(out, key, PROTO_KEY_MAX, UINT32_MAX,
                                     UINT32_MAX, true, UINT64_MAX);
    assert_true(n <= PROTO_TEXT_VALUE_HDR_MAX);
    assert_int_equal(n, 6 + 250 + 1 + 10 + 1 + 10 + 1 + 20 + 2);

    /* and parses back as the header of a get reply */
    char line[400];
    n = proto_text_compose_value_hdr(line, "abc", 3, 42, 3, true, 9);
    memcpy(line + n, "\0", 1);
    assert_string_equal(line, "VALUE abc 42 3 9\r\n");
}

static void
test_compose_stat(void **state)
{
    (void)state;
    char out[64];
    size_t n = proto_text_compose_stat(out, sizeof(out), "pid", "1234");
    assert_mem(out, n, "STAT pid 1234\r\n");
    /* exact fit, and one byte short */
    assert_int_equal(proto_text_compose_stat(out, 15, "pid", "1234"), 15);
    assert_int_equal(proto_text_compose_stat(out, 14, "pid", "1234"), 0);
    n = proto_text_compose_stat(out, sizeof(out), "version", "");
    assert_mem(out, n, "STAT version \r\n");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_u64toa),
        cmocka_unit_test(test_compose_value_hdr),
        cmocka_unit_test(test_compose_stat),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
