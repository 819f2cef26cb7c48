/*
 * test_log.c: unit tests of util/log.c's rate limits.
 *
 * The limiters run on an injected clock (log_set_clock) and write into a
 * temporary log file that the test reads back: the first line of a call
 * site is written, the rest of its interval only counted; the next line
 * after the interval carries the count; log_limit_flush(false) writes the count
 * of a burst that stopped, once; two call sites are limited apart; threads
 * hammering one site at one instant write one line and count the rest.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

static _Atomic uint64_t fake_ms;
static char log_path[64];

static uint64_t
fake_clock(void)
{
    return atomic_load(&fake_ms);
}

static int
setup(void **state)
{
    (void)state;
    snprintf(log_path, sizeof(log_path), "/tmp/test_log.%d", (int)getpid());
    unlink(log_path);
    assert_int_equal(log_setup(log_path), 0);
    /* far from 0, so that "never logged" (window_end 0) is not special;
     * past every window of the tests before, whose counts are flushed
     * and the file emptied, so each test starts clean */
    atomic_fetch_add(&fake_ms, 1000000);
    log_set_clock(fake_clock);
    log_limit_flush(false);   /* a flushed count starts a window too */
    atomic_fetch_add(&fake_ms, 1000000);
    assert_int_equal(truncate(log_path, 0), 0);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    log_teardown();
    log_set_clock(NULL);
    unlink(log_path);
    return 0;
}

/* The log file's lines so far, joined; *nlines set. Caller frees. */
static char *
read_log(unsigned *nlines)
{
    FILE *f = fopen(log_path, "r");
    assert_non_null(f);
    char *buf = calloc(1, 1 << 20);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    buf[n] = '\0';
    *nlines = 0;
    for (size_t i = 0; i < n; i++)
        *nlines += buf[i] == '\n';
    return buf;
}

/* One call site, as the server's are: the limiter is the macro's. */
static void
site_a(int i)
{
    log_error_limited("site a: failure %d", i);
}

static void
site_b(int i)
{
    log_error_limited("site b: failure %d", i);
}

static void
test_first_logged_rest_counted(void **state)
{
    (void)state;
    uint64_t before = log_suppressed_total();
    for (int i = 0; i < 100; i++) {
        site_a(i);
        atomic_fetch_add(&fake_ms, 10);   /* 1 s in all: one interval */
    }
    unsigned lines;
    char *log = read_log(&lines);
    assert_int_equal(lines, 1);
    assert_non_null(strstr(log, "error: site a: failure 0\n"));
    assert_int_equal(log_suppressed_total() - before, 99);
    free(log);

    /* after the interval: the next line carries the count, once */
    atomic_fetch_add(&fake_ms, LOG_LIMIT_INTERVAL_MS);
    site_a(100);
    site_a(101);
    log = read_log(&lines);
    assert_int_equal(lines, 2);
    assert_non_null(strstr(log, "site a: failure 100 (99 more like this in the "
                                "last 11 s)\n"));
    assert_int_equal(log_suppressed_total() - before, 100);
    free(log);
}

static void
test_flush_reports_a_burst_that_stopped(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++)
        site_a(i);
    unsigned lines;
    char *log = read_log(&lines);
    assert_int_equal(lines, 1);
    free(log);
    /* inside the interval: nothing to write yet */
    atomic_fetch_add(&fake_ms, LOG_LIMIT_INTERVAL_MS - 1);
    assert_int_equal(log_limit_flush(false), 0);
    atomic_fetch_add(&fake_ms, 1);
    assert_int_equal(log_limit_flush(false), 1);
    log = read_log(&lines);
    assert_int_equal(lines, 2);
    assert_non_null(strstr(log, "error: 4 more like \"site a: failure %d\" in "
                                "the last 10 s\n"));
    free(log);
    /* counted once: neither a second flush nor the next line repeat it */
    atomic_fetch_add(&fake_ms, 2 * LOG_LIMIT_INTERVAL_MS);
    assert_int_equal(log_limit_flush(false), 0);
    site_a(7);
    log = read_log(&lines);
    assert_int_equal(lines, 3);
    assert_non_null(strstr(log, "site a: failure 7\n"));
    free(log);
}

static void
test_flush_all_at_exit(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++)
        site_a(i);
    /* inside the interval, but the server is stopping */
    assert_int_equal(log_limit_flush(false), 0);
    atomic_fetch_add(&fake_ms, 1500);
    assert_int_equal(log_limit_flush(true), 1);
    unsigned lines;
    char *log = read_log(&lines);
    assert_int_equal(lines, 2);
    assert_non_null(strstr(log, "error: 2 more like \"site a: failure %d\" in "
                                "the last 2 s\n"));
    free(log);
    assert_int_equal(log_limit_flush(true), 0);
}

static void
test_sites_are_limited_apart(void **state)
{
    (void)state;
    for (int i = 0; i < 10; i++) {
        site_a(i);
        site_b(i);
    }
    unsigned lines;
    char *log = read_log(&lines);
    assert_int_equal(lines, 2);
    assert_non_null(strstr(log, "site a: failure 0\n"));
    assert_non_null(strstr(log, "site b: failure 0\n"));
    free(log);
}

#define HAMMER_THREADS 4
#define HAMMER_CALLS 20000

static void *
hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < HAMMER_CALLS; i++)
        site_b(i);
    return NULL;
}

static void
test_threads_write_one_line(void **state)
{
    (void)state;
    uint64_t before = log_suppressed_total();
    pthread_t t[HAMMER_THREADS];
    for (int i = 0; i < HAMMER_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, NULL), 0);
    for (int i = 0; i < HAMMER_THREADS; i++)
        pthread_join(t[i], NULL);
    unsigned lines;
    char *log = read_log(&lines);
    assert_int_equal(lines, 1);
    free(log);
    assert_int_equal(log_suppressed_total() - before,
                     HAMMER_THREADS * HAMMER_CALLS - 1);
    atomic_fetch_add(&fake_ms, LOG_LIMIT_INTERVAL_MS);
    assert_int_equal(log_limit_flush(false), 1);
    log = read_log(&lines);
    char want[64];
    snprintf(want, sizeof(want), "error: %d more like",
             HAMMER_THREADS * HAMMER_CALLS - 1);
    assert_non_null(strstr(log, want));
    free(log);
}

static void
test_unlimited_below_verbosity(void **state)
{
    (void)state;
    /* a limited info line at verbosity 0 is written (info is the default
     * level); at the error level nothing is filtered by verbosity */
    log_info_limited("info line %d", 1);
    unsigned lines;
    char *log = read_log(&lines);
    assert_int_equal(lines, 1);
    assert_non_null(strstr(log, "info: info line 1\n"));
    free(log);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_logged_rest_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_reports_a_burst_that_stopped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_all_at_exit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sites_are_limited_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_write_one_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unlimited_below_verbosity, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
