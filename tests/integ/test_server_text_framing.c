/*
 * test_server_text_framing.c: the running server's text protocol over raw
 * sockets, byte for byte: key lengths, error lines, bad data chunks, values
 * too large or merely large, over-long lines, pipelines and requests split
 * at every byte.
 *
 * Each binary starts the server under test ($MCKVD, see harness.h) on a
 * free port for its group, and a group fails when the server does not exit
 * with status 0 on SIGTERM, so a crash during a group is caught. The
 * expected bytes are those of memcached 1.6.18 (Debian 12), checked by
 * running the tests with MCKVD=/usr/bin/memcached. Where memcached does
 * something surprising, the test asserts it anyway and says so in a comment
 * marked "memcached:"; mckv must behave the same. Timing is never asserted:
 * sleeps only let a 1-second-granularity clock pass an expiry, with at least
 * a second of margin either way. server_helpers.c holds the fixture and
 * the protocol clients.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/integ/harness.h"
#include "tests/integ/server_helpers.h"

static void
test_text_key_length(void **state)
{
    int fd = tconn();
    char key250[251], key251[252];
    struct obuf b = { 0 }, want = { 0 };

    (void)state;
    memset(key250, 'k', 250);
    key250[250] = 0;
    memset(key251, 'k', 251);
    key251[251] = 0;
    ob_printf(&b, "set %s 0 0 1\r\nx\r\nget %s\r\n", key250, key250);
    ob_printf(&want, "STORED\r\nVALUE %s 0 1\r\nx\r\nEND\r\n", key250);
    text_rt(__LINE__, fd, b.p, b.len, want.p, want.len);
    b.len = 0;
    /* memcached: a bad set line is rejected without swallowing its data,
     * so the data line "x" is then read as a command (ERROR) */
    ob_printf(&b, "set %s 0 0 1\r\nx\r\n", key251);
    TEXTN(fd, b.p, b.len, "CLIENT_ERROR bad command line format\r\nERROR\r\n");
    b.len = 0;
    ob_printf(&b, "get %s\r\n", key251);
    TEXTN(fd, b.p, b.len, "CLIENT_ERROR bad command line format\r\n");
    b.len = 0;
    /* memcached: one bad key discards the whole multiget, hits included */
    ob_printf(&b, "get %s %s %s\r\n", key250, key251, key250);
    TEXTN(fd, b.p, b.len, "CLIENT_ERROR bad command line format\r\n");
    text_sync(fd);
    ob_free(&b);
    ob_free(&want);
    close(fd);
}

static void
test_text_errors(void **state)
{
    int fd = tconn();

    (void)state;
    TEXT(fd, "bogus\r\n", "ERROR\r\n");
    TEXT(fd, "\r\n", "ERROR\r\n");
    TEXT(fd, "GET a\r\n", "ERROR\r\n");       /* commands are lower case */
    TEXT(fd, "get\r\n", "ERROR\r\n");
    TEXT(fd, "incr\r\n", "ERROR\r\n");
    TEXT(fd, "incr a\r\n", "ERROR\r\n");
    TEXT(fd, "touch a\r\n", "ERROR\r\n");
    TEXT(fd, "delete\r\n", "ERROR\r\n");
    TEXT(fd, "verbosity\r\n", "ERROR\r\n");
    /* wrong token counts: ERROR, and the data line is a command too */
    TEXT(fd, "set a 0 0\r\nx\r\n", "ERROR\r\nERROR\r\n");
    TEXT(fd, "set a 0 0 1 noreply extra\r\nx\r\n", "ERROR\r\nERROR\r\n");
    TEXT(fd, "set x 0 0 -1\r\n", "CLIENT_ERROR bad command line format\r\n");
    TEXT(fd, "set x abc 0 1\r\nx\r\n",
         "CLIENT_ERROR bad command line format\r\nERROR\r\n");
    TEXT(fd, "set x -1 0 1\r\nx\r\n",
         "CLIENT_ERROR bad command line format\r\nERROR\r\n");
    TEXT(fd, "cas a 0 0 1\r\nx\r\n", "ERROR\r\nERROR\r\n");
    TEXT(fd, "cas a 0 0 1 abc\r\nx\r\n",
         "CLIENT_ERROR bad command line format\r\nERROR\r\n");
    TEXT(fd, "set d 0 0 1\r\nx\r\n", "STORED\r\n");
    TEXT(fd, "delete d 5\r\n",
         "CLIENT_ERROR bad command line format.  "
         "Usage: delete <key> [noreply]\r\n");
    /* memcached: a time argument of 0 is still accepted by delete */
    TEXT(fd, "delete d 0\r\n", "DELETED\r\n");
    TEXT(fd, "delete d\r\n", "NOT_FOUND\r\n");
    TEXT(fd, "touch a abc\r\n", "CLIENT_ERROR invalid exptime argument\r\n");
    TEXT(fd, "flush_all abc\r\n", "CLIENT_ERROR invalid exptime argument\r\n");
    TEXT(fd, "verbosity abc\r\n", "CLIENT_ERROR bad command line format\r\n");
    text_sync(fd);
    close(fd);
}

static void
test_text_bad_data_chunk(void **state)
{
    int fd = tconn();

    (void)state;
    TEXT(fd, "set bd 0 0 1\r\nx\r\n", "STORED\r\n");
    /* memcached reads exactly <bytes>+2 bytes; when they do not end in
     * CR LF it answers CLIENT_ERROR bad data chunk and parses what follows
     * those bytes as the next command: here "\r\n" (an empty line: ERROR) */
    TEXT(fd, "set bd 0 0 3\r\nabcde\r\n",
         "CLIENT_ERROR bad data chunk\r\nERROR\r\n");
    TEXT(fd, "set bd 0 0 3\r\nabcdefgh\r\n",
         "CLIENT_ERROR bad data chunk\r\nERROR\r\n");
    /* LF alone does not end a data block: "x\ng" are the 3 bytes read */
    TEXT(fd, "set bd 0 0 1\r\nx\nget bd\r\n",
         "CLIENT_ERROR bad data chunk\r\nERROR\r\n");
    /* the old value survives */
    TEXT(fd, "get bd\r\n", "VALUE bd 0 1\r\nx\r\nEND\r\n");
    text_sync(fd);
    close(fd);
}

static void
test_text_too_large(void **state)
{
    int fd = tconn();
    struct obuf b = { 0 };
    char *v = malloc(VALUE_TOO_LARGE);

    (void)state;
    assert_non_null(v);
    fill_pattern(v, VALUE_TOO_LARGE, 3);
    TEXT(fd, "set big 0 0 1\r\nx\r\n", "STORED\r\n");
    ob_printf(&b, "set big 0 0 %d\r\n", VALUE_TOO_LARGE);
    ob_put(&b, v, VALUE_TOO_LARGE);
    ob_put(&b, "\r\n", 2);
    /* the value is swallowed and the connection goes on */
    TEXTN(fd, b.p, b.len, "SERVER_ERROR object too large for cache\r\n");
    /* memcached: a failed set also removes the old value */
    TEXT(fd, "get big\r\n", "END\r\n");
    TEXT(fd, "set big 0 0 1\r\nx\r\n", "STORED\r\n");
    b.len = 0;
    ob_printf(&b, "append big 0 0 %d\r\n", VALUE_TOO_LARGE);
    ob_put(&b, v, VALUE_TOO_LARGE);
    ob_put(&b, "\r\n", 2);
    TEXTN(fd, b.p, b.len, "SERVER_ERROR object too large for cache\r\n");
    /* ... but a failed append keeps it */
    TEXT(fd, "get big\r\n", "VALUE big 0 1\r\nx\r\nEND\r\n");
    /* noreply hides the error; the value is still swallowed */
    b.len = 0;
    ob_printf(&b, "set big2 0 0 %d noreply\r\n", VALUE_TOO_LARGE);
    ob_put(&b, v, VALUE_TOO_LARGE);
    ob_put(&b, "\r\nget big2\r\n", 12);
    TEXTN(fd, b.p, b.len, "END\r\n");
    text_sync(fd);
    ob_free(&b);
    free(v);
    close(fd);
}

static void
test_text_large_value(void **state)
{
    int fd = tconn();
    size_t len = 1000000;
    struct obuf b = { 0 }, want = { 0 };
    char *v = malloc(len);

    (void)state;
    assert_non_null(v);
    fill_pattern(v, len, 9);
    ob_printf(&b, "set lv 3 0 %zu\r\n", len);
    ob_put(&b, v, len);
    ob_put(&b, "\r\n", 2);
    TEXTN(fd, b.p, b.len, "STORED\r\n");
    ob_printf(&want, "VALUE lv 3 %zu\r\n", len);
    ob_put(&want, v, len);
    ob_put(&want, "\r\nEND\r\n", 7);
    text_rt(__LINE__, fd, "get lv\r\n", 8, want.p, want.len);
    text_sync(fd);
    ob_free(&b);
    ob_free(&want);
    free(v);
    close(fd);
}

static void
test_text_long_line(void **state)
{
    int fd = tconn();
    char *line = malloc(4096);
    struct obuf b = { 0 }, want = { 0 };

    (void)state;
    assert_non_null(line);
    /* memcached: more than 2048 bytes without a newline that are not a
     * get/gets: the connection is closed without a reply */
    memset(line, 'a', 4096);
    assert_int_equal(harness_send_all(fd, line, 4096), 0);
    if (!harness_is_memcached()) {
        /* mckv says why before it closes */
        char got[64];
        assert_int_equal(harness_read_line(fd, got, sizeof(got), TMO), 28);
        assert_string_equal(got, "CLIENT_ERROR line too long\r\n");
    }
    expect_closed(fd);
    close(fd);

    /* a multiget line far longer than that is fine */
    fd = tconn();
    TEXT(fd, "set lk007 0 0 1\r\n7\r\nset lk399 0 0 3\r\n399\r\n",
         "STORED\r\nSTORED\r\n");
    ob_printf(&b, "get");
    for (int i = 0; i < 400; i++)
        ob_printf(&b, " lk%03d", i);
    assert_int_equal(harness_send_all(fd, b.p, b.len), 0);
    usleep(100 * 1000);   /* let the server see the line without its end */
    ob_printf(&want, "VALUE lk007 0 1\r\n7\r\nVALUE lk399 0 3\r\n399\r\n"
                     "END\r\n");
    text_rt(__LINE__, fd, "\r\n", 2, want.p, want.len);
    text_sync(fd);
    ob_free(&b);
    ob_free(&want);
    free(line);
    close(fd);
}

/* 100 commands in one write, one exact reply. */
static void
test_text_pipeline(void **state)
{
    int fd = tconn();
    struct obuf b = { 0 }, want = { 0 };
    int counter = 0;

    (void)state;
    TEXT(fd, "set tp:counter 0 0 1\r\n0\r\n", "STORED\r\n");
    for (int i = 0; i < 100; i++) {
        switch (i % 5) {
        case 0:
            ob_printf(&b, "set tp:%d %d 0 %d\r\nval-%03d\r\n", i, i, 7, i);
            ob_printf(&want, "STORED\r\n");
            break;
        case 1:
            ob_printf(&b, "get tp:%d\r\n", i - 1);
            ob_printf(&want, "VALUE tp:%d %d 7\r\nval-%03d\r\nEND\r\n", i - 1,
                      i - 1, i - 1);
            break;
        case 2:
            ob_printf(&b, "get tp:missing:%d\r\n", i);
            ob_printf(&want, "END\r\n");
            break;
        case 3:
            ob_printf(&b, "incr tp:counter 1\r\n");
            ob_printf(&want, "%d\r\n", ++counter);
            break;
        default:
            ob_printf(&b, "delete tp:%d\r\n", i - 4);
            ob_printf(&want, "DELETED\r\n");
            break;
        }
    }
    text_rt(__LINE__, fd, b.p, b.len, want.p, want.len);
    text_sync(fd);
    ob_free(&b);
    ob_free(&want);
    close(fd);
}

/* A request written one byte per write() is still answered. */
static void
test_text_split_bytes(void **state)
{
    int fd = tconn();
    static const char req[] = "set sb 5 0 5\r\nhello\r\nget sb\r\n";
    static const char want[] = "STORED\r\nVALUE sb 5 5\r\nhello\r\nEND\r\n";

    (void)state;
    for (size_t i = 0; i < sizeof(req) - 1; i++) {
        assert_int_equal(harness_send_all(fd, req + i, 1), 0);
        usleep(1000);
    }
    TEXT(fd, "", want);
    text_sync(fd);
    close(fd);
}

#define T(f) cmocka_unit_test_setup((f), text_group_test_setup)

int
main(void)
{
    const struct CMUnitTest text_tests[] = {
        T(test_text_key_length),
        T(test_text_errors),
        T(test_text_bad_data_chunk),
        T(test_text_too_large),
        T(test_text_large_value),
        T(test_text_long_line),
        T(test_text_pipeline),
        T(test_text_split_bytes),
    };
    int failed = 0;

    signal(SIGPIPE, SIG_IGN);
    fprintf(stderr, "server under test: %s\n", harness_server_path());
    failed += cmocka_run_group_tests_name("text framing", text_tests, group_setup,
                                          group_teardown);
    return (failed != 0 || g_bad_stops != 0) ? 1 : 0;
}
