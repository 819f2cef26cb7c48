/*
 * test_stats_prefix.c: unit tests of server/stats_prefix.c: counting only
 * while enabled, memcached's dump format, keys without a delimiter, and
 * the bound on the number of prefixes.
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

#include "server/stats_prefix.h"

static int
setup(void **state)
{
    (void)state;
    stats_prefix_setup(':');
    stats_prefix_enable(false);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    stats_prefix_teardown();
    return 0;
}

static char *
dump(void)
{
    size_t n;
    char *d = stats_prefix_dump(&n);
    assert_non_null(d);
    char *s = malloc(n + 1);
    memcpy(s, d, n);
    s[n] = '\0';
    free(d);
    return s;
}

static void
test_off_counts_nothing(void **state)
{
    (void)state;
    stats_prefix_record_get("a:1", 3, true);
    char *d = dump();
    assert_string_equal(d, "END\r\n");
    free(d);
}

static void
test_counts_and_format(void **state)
{
    (void)state;
    stats_prefix_enable(true);
    assert_true(stats_prefix_enabled());
    stats_prefix_record_get("user:1", 6, true);
    stats_prefix_record_get("user:2", 6, false);
    stats_prefix_record_set("user:3", 6);
    stats_prefix_record_delete("user:1", 6);
    stats_prefix_record_set("nodelim", 7);       /* not counted */
    char *d = dump();
    assert_string_equal(d, "PREFIX user get 2 hit 1 set 1 del 1\r\nEND\r\n");
    free(d);
    stats_prefix_enable(false);
    stats_prefix_record_set("user:3", 6);
    d = dump();
    assert_string_equal(d, "PREFIX user get 2 hit 1 set 1 del 1\r\nEND\r\n");
    free(d);
}

static void
test_other_delimiter(void **state)
{
    (void)state;
    stats_prefix_setup('/');
    stats_prefix_enable(true);
    stats_prefix_record_set("a/b:c", 5);
    char *d = dump();
    assert_non_null(strstr(d, "PREFIX a get 0 hit 0 set 1 del 0\r\n"));
    free(d);
}

static void
test_bounded(void **state)
{
    (void)state;
    stats_prefix_enable(true);
    char key[32];
    for (int i = 0; i < STATS_PREFIX_MAX + 100; i++) {
        int n = snprintf(key, sizeof(key), "p%d:x", i);
        stats_prefix_record_set(key, (size_t)n);
    }
    assert_int_equal(stats_prefix_dropped(), 100);
    char *d = dump();
    size_t lines = 0;
    for (char *p = d; (p = strstr(p, "PREFIX ")) != NULL; p++)
        lines++;
    assert_int_equal(lines, STATS_PREFIX_MAX);
    free(d);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_off_counts_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counts_and_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_delimiter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounded, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
