/*
 * test_server_text.c: the running server's text protocol over raw sockets,
 * byte for byte: storage commands, gets/cas, incr/decr, noreply, touch and
 * gat, expiry, flush_all, and the other commands (version, verbosity,
 * stats, quit...). test_server_text_framing.c has key lengths, errors,
 * sizes and framing.
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

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/integ/harness.h"
#include "tests/integ/server_helpers.h"

static void
test_text_storage(void **state)
{
    int fd = tconn();
    static const char binset[] = "set bin 0 0 6\r\na\r\nb\0c\r\n";
    static const char binget[] = "VALUE bin 0 6\r\na\r\nb\0c\r\nEND\r\n";

    (void)state;
    TEXT(fd, "set a 0 0 1\r\nx\r\n", "STORED\r\n");
    TEXT(fd, "set b 4294967295 0 3\r\nyyy\r\n", "STORED\r\n");
    /* hits come back in request order, repeats included, misses skipped */
    TEXT(fd, "get a b nope a\r\n",
         "VALUE a 0 1\r\nx\r\nVALUE b 4294967295 3\r\nyyy\r\n"
         "VALUE a 0 1\r\nx\r\nEND\r\n");
    TEXT(fd, "get nope\r\n", "END\r\n");
    TEXT(fd, "add a 0 0 1\r\nz\r\n", "NOT_STORED\r\n");
    TEXT(fd, "add c 5 0 2\r\ncc\r\n", "STORED\r\n");
    TEXT(fd, "replace nope 0 0 1\r\nz\r\n", "NOT_STORED\r\n");
    TEXT(fd, "replace c 6 0 3\r\nCCC\r\n", "STORED\r\n");
    TEXT(fd, "get c\r\n", "VALUE c 6 3\r\nCCC\r\nEND\r\n");
    TEXT(fd, "append nope 0 0 1\r\nz\r\n", "NOT_STORED\r\n");
    TEXT(fd, "prepend nope 0 0 1\r\nz\r\n", "NOT_STORED\r\n");
    TEXT(fd, "append c 99 0 2\r\n>>\r\n", "STORED\r\n");
    TEXT(fd, "prepend c 99 0 2\r\n<<\r\n", "STORED\r\n");
    /* append/prepend keep the item's flags */
    TEXT(fd, "get c\r\n", "VALUE c 6 7\r\n<<CCC>>\r\nEND\r\n");
    /* values are binary-safe: CR LF and NUL inside */
    TEXTN(fd, binset, sizeof(binset) - 1, "STORED\r\n");
    text_rt(__LINE__, fd, "get bin\r\n", 9, binget, sizeof(binget) - 1);
    TEXT(fd, "set empty 0 0 0\r\n\r\n", "STORED\r\n");
    TEXT(fd, "get empty\r\n", "VALUE empty 0 0\r\n\r\nEND\r\n");
    /* a bare LF ends a command line too */
    TEXT(fd, "set nl 0 0 1\nx\r\nget nl\n", "STORED\r\nVALUE nl 0 1\r\nx\r\nEND\r\n");
    /* extra spaces between tokens are accepted */
    TEXT(fd, "set  sp  1  0  1\r\nx\r\nget  sp  a\r\n",
         "STORED\r\nVALUE sp 1 1\r\nx\r\nVALUE a 0 1\r\nx\r\nEND\r\n");
    text_sync(fd);
    close(fd);
}

static void
test_text_cas(void **state)
{
    int fd = tconn();
    uint64_t cas1, cas2, cas3;
    char cmd[128];

    (void)state;
    TEXT(fd, "set c 0 0 1\r\nx\r\n", "STORED\r\n");
    assert_int_equal(harness_send_str(fd, "gets c\r\n"), 0);
    cas1 = read_gets_header(fd, "c", 0, 1);
    TEXT(fd, "", "x\r\nEND\r\n");
    snprintf(cmd, sizeof(cmd), "cas c 0 0 1 %" PRIu64 "\r\ny\r\n", cas1);
    TEXT(fd, cmd, "STORED\r\n");
    TEXT(fd, cmd, "EXISTS\r\n");
    TEXT(fd, "cas nope 0 0 1 1\r\nx\r\n", "NOT_FOUND\r\n");
    /* gets of several keys, with a miss and a repeat */
    assert_int_equal(harness_send_str(fd, "gets c nope c\r\n"), 0);
    cas2 = read_gets_header(fd, "c", 0, 1);
    TEXT(fd, "", "y\r\n");
    cas3 = read_gets_header(fd, "c", 0, 1);
    TEXT(fd, "", "y\r\nEND\r\n");
    assert_true(cas2 != cas1);
    assert_true(cas3 == cas2);
    /* any store gives a new cas */
    TEXT(fd, "append c 0 0 1\r\nz\r\n", "STORED\r\n");
    assert_int_equal(harness_send_str(fd, "gets c\r\n"), 0);
    cas3 = read_gets_header(fd, "c", 0, 2);
    TEXT(fd, "", "yz\r\nEND\r\n");
    assert_true(cas3 != cas2);
    text_sync(fd);
    close(fd);
}

static void
test_text_incr_decr(void **state)
{
    int fd = tconn();

    (void)state;
    TEXT(fd, "set n 0 0 2\r\n10\r\n", "STORED\r\n");
    TEXT(fd, "incr n 1\r\n", "11\r\n");
    TEXT(fd, "get n\r\n", "VALUE n 0 2\r\n11\r\nEND\r\n");
    TEXT(fd, "incr n 99\r\n", "110\r\n");
    TEXT(fd, "get n\r\n", "VALUE n 0 3\r\n110\r\nEND\r\n");
    TEXT(fd, "decr n 100\r\n", "10\r\n");
    /* memcached: a shorter result is written in place and padded with
     * spaces, so the stored value keeps its length: "10 " */
    TEXT(fd, "get n\r\n", "VALUE n 0 3\r\n10 \r\nEND\r\n");
    TEXT(fd, "decr n 1000\r\n", "0\r\n");    /* decr stops at 0 */
    TEXT(fd, "set n 0 0 20\r\n18446744073709551615\r\n", "STORED\r\n");
    TEXT(fd, "incr n 1\r\n", "0\r\n");       /* incr wraps at 2^64 */
    TEXT(fd, "incr n 18446744073709551615\r\n", "18446744073709551615\r\n");
    TEXT(fd, "incr n 18446744073709551616\r\n",
         "CLIENT_ERROR invalid numeric delta argument\r\n");
    TEXT(fd, "incr n abc\r\n",
         "CLIENT_ERROR invalid numeric delta argument\r\n");
    TEXT(fd, "incr n -1\r\n",
         "CLIENT_ERROR invalid numeric delta argument\r\n");
    TEXT(fd, "set s 0 0 3\r\nabc\r\n", "STORED\r\n");
    TEXT(fd, "incr s 1\r\n",
         "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
    TEXT(fd, "decr s 1\r\n",
         "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
    TEXT(fd, "set s 0 0 3\r\n-12\r\n", "STORED\r\n");
    TEXT(fd, "incr s 1\r\n",
         "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
    TEXT(fd, "set s 0 0 0\r\n\r\n", "STORED\r\n");
    TEXT(fd, "incr s 1\r\n",
         "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
    TEXT(fd, "incr missing 1\r\n", "NOT_FOUND\r\n");
    TEXT(fd, "decr missing 1\r\n", "NOT_FOUND\r\n");
    text_sync(fd);
    close(fd);
}

static void
test_text_noreply(void **state)
{
    int fd = tconn();
    static const char cmds[] =
        "set nr 0 0 1 noreply\r\n5\r\n"
        "add nr 0 0 1 noreply\r\nx\r\n"          /* fails silently */
        "replace nope 0 0 1 noreply\r\nx\r\n"    /* fails silently */
        "append nr 0 0 1 noreply\r\n0\r\n"
        "prepend nr 0 0 1 noreply\r\n1\r\n"      /* "150" */
        "incr nr 5 noreply\r\n"                  /* 155 */
        "decr nr 5 noreply\r\n"                  /* 150 */
        "incr nope 1 noreply\r\n"
        "decr nope 1 noreply\r\n"
        "incr nr abc noreply\r\n"                /* CLIENT_ERROR hidden */
        "delete nope noreply\r\n"
        "touch nr 100 noreply\r\n"
        "touch nope 1 noreply\r\n"
        "cas nr 0 0 1 1 noreply\r\nx\r\n"        /* EXISTS hidden */
        "cas nope 0 0 1 1 noreply\r\nx\r\n"      /* NOT_FOUND hidden */
        "verbosity 0 noreply\r\n"
        "get nr\r\n";

    (void)state;
    TEXT(fd, cmds, "VALUE nr 0 3\r\n150\r\nEND\r\n");
    TEXT(fd, "set s 0 0 1\r\nx\r\nincr s 1 noreply\r\nget s\r\n",
         "STORED\r\nVALUE s 0 1\r\nx\r\nEND\r\n");
    /* memcached: noreply hides "bad data chunk" too, but the bytes after
     * the data block are still parsed as a command (ERROR) */
    TEXT(fd, "set bd 0 0 3 noreply\r\nabcde\r\nget bd\r\n",
         "ERROR\r\nEND\r\n");
    TEXT(fd, "delete nr noreply\r\nget nr\r\n", "END\r\n");
    TEXT(fd, "set f 0 0 1\r\nx\r\nflush_all noreply\r\nget f\r\n",
         "STORED\r\nEND\r\n");
    TEXT(fd, "set f 0 0 1\r\nx\r\nflush_all 0 noreply\r\nget f\r\n",
         "STORED\r\nEND\r\n");
    text_sync(fd);
    close(fd);
}

static void
test_text_touch_gat(void **state)
{
    int fd = tconn();
    uint64_t cas;

    (void)state;
    TEXT(fd, "set t 7 0 2\r\ntv\r\n", "STORED\r\n");
    TEXT(fd, "touch t 100\r\n", "TOUCHED\r\n");
    TEXT(fd, "touch nope 100\r\n", "NOT_FOUND\r\n");
    TEXT(fd, "gat 100 t nope\r\n", "VALUE t 7 2\r\ntv\r\nEND\r\n");
    TEXT(fd, "gat 100 nope\r\n", "END\r\n");
    assert_int_equal(harness_send_str(fd, "gats 100 t\r\n"), 0);
    cas = read_gets_header(fd, "t", 7, 2);
    assert_true(cas != 0);
    TEXT(fd, "", "tv\r\nEND\r\n");
    TEXT(fd, "gat abc t\r\n", "CLIENT_ERROR invalid exptime argument\r\n");
    TEXT(fd, "gat\r\n", "ERROR\r\n");
    text_sync(fd);
    close(fd);
}

static void
test_text_expiry(void **state)
{
    int fd = tconn();
    char cmd[128];
    time_t now = time(NULL);

    (void)state;
    /* negative exptime: expired at once */
    TEXT(fd, "set neg 0 -1 1\r\nx\r\nget neg\r\n", "STORED\r\nEND\r\n");
    /* over 30 days is an absolute unix time */
    snprintf(cmd, sizeof(cmd), "set past 0 %ld 1\r\nx\r\nget past\r\n",
             (long)now - 1000);
    TEXT(fd, cmd, "STORED\r\nEND\r\n");
    snprintf(cmd, sizeof(cmd), "set fut 0 %ld 1\r\nx\r\nget fut\r\n",
             (long)now + 1000);
    TEXT(fd, cmd, "STORED\r\nVALUE fut 0 1\r\nx\r\nEND\r\n");
    TEXT(fd, "set e1 0 1 1\r\nx\r\n", "STORED\r\n");
    TEXT(fd, "set e100 0 100 1\r\nx\r\n", "STORED\r\n");
    TEXT(fd, "set t1 0 100 1\r\nx\r\ntouch t1 1\r\n", "STORED\r\nTOUCHED\r\n");
    TEXT(fd, "set g1 0 100 1\r\nx\r\ngat 1 g1\r\n",
         "STORED\r\nVALUE g1 0 1\r\nx\r\nEND\r\n");
    usleep(EXPIRY_SLEEP_US);
    TEXT(fd, "get e1 e100 t1 g1 fut\r\n",
         "VALUE e100 0 1\r\nx\r\nVALUE fut 0 1\r\nx\r\nEND\r\n");
    text_sync(fd);
    close(fd);
}

static void
test_text_flush(void **state)
{
    int fd = tconn();

    (void)state;
    TEXT(fd, "set f1 0 0 1\r\nx\r\nflush_all\r\nget f1\r\n",
         "STORED\r\nOK\r\nEND\r\n");
    TEXT(fd, "set f2 0 0 1\r\nx\r\nflush_all 0\r\nget f2\r\n",
         "STORED\r\nOK\r\nEND\r\n");
    /* memcached: a negative delay is accepted and flushes now */
    TEXT(fd, "set f2 0 0 1\r\nx\r\nflush_all -1\r\nget f2\r\n",
         "STORED\r\nOK\r\nEND\r\n");
    TEXT(fd, "set f3 0 0 1\r\nx\r\nflush_all 3\r\nget f3\r\n",
         "STORED\r\nOK\r\nVALUE f3 0 1\r\nx\r\nEND\r\n");
    usleep(EXPIRY_SLEEP_US);
    TEXT(fd, "get f3\r\n", "END\r\n");
    TEXT(fd, "flush_all noreply 0\r\n",
         "CLIENT_ERROR invalid exptime argument\r\n");
    text_sync(fd);
    close(fd);
}

static void
test_text_misc(void **state)
{
    int fd = tconn();
    char value[64] = "", want[64];
    int n;

    (void)state;
    text_sync(fd);
    TEXT(fd, "verbosity 1\r\n", "OK\r\n");
    /* memcached's stats settings shows the level the command set */
    (void)text_stats(fd, "settings", "verbosity", value, sizeof(value));
    assert_string_equal(value, "1");
    TEXT(fd, "verbosity 0\r\n", "OK\r\n");
    TEXT(fd, "mn\r\n", "MN\r\n");
    n = text_stats(fd, NULL, "pid", value, sizeof(value));
    assert_true(n > 10);
    snprintf(want, sizeof(want), "%d", (int)server_pid(g_srv));
    assert_string_equal(value, want);
    value[0] = 0;
    (void)text_stats(fd, NULL, "threads", value, sizeof(value));
    assert_string_equal(value, "4");   /* -t 4 */
    n = text_stats(fd, "settings", NULL, NULL, 0);
    assert_true(n > 0);
    /* memcached's names and formats, as its t/binary.t reads them; the
     * harness starts both servers with their defaults here */
    {
        static const char *const settings[][2] = {
            { "maxconns", "1024" }, { "domain_socket", "NULL" },
            { "evictions", "on" }, { "cas_enabled", "yes" },
            { "flush_enabled", "yes" }, { "shutdown_command", "no" },
            { "binding_protocol", "auto-negotiate" }, { "umask", "700" },
            { "reqs_per_event", "20" }, { "idle_timeout", "0" },
            { "item_size_max", "1048576" }, { "tcp_backlog", "1024" },
            { "inter", "127.0.0.1" }, { "growth_factor", "1.25" },
            { "num_threads", "4" }, { "maxconns_fast", "yes" },
        };
        for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
            value[0] = '\0';
            (void)text_stats(fd, "settings", settings[i][0], value,
                             sizeof(value));
            if (strcmp(value, settings[i][1]) != 0)
                fail_msg("stats settings %s: '%s', want '%s'", settings[i][0],
                         value, settings[i][1]);
        }
    }
    TEXT(fd, "stats reset\r\n", "RESET\r\n");
    /* memcached: an unknown stats group is a plain ERROR */
    TEXT(fd, "stats bogus\r\n", "ERROR\r\n");
    text_sync(fd);
    assert_int_equal(harness_send_str(fd, "quit\r\n"), 0);
    expect_closed(fd);
    close(fd);
}

#define T(f) cmocka_unit_test_setup((f), text_group_test_setup)

int
main(void)
{
    const struct CMUnitTest text_tests[] = {
        T(test_text_storage),
        T(test_text_cas),
        T(test_text_incr_decr),
        T(test_text_noreply),
        T(test_text_touch_gat),
        T(test_text_expiry),
        T(test_text_flush),
        T(test_text_misc),
    };
    int failed = 0;

    signal(SIGPIPE, SIG_IGN);
    fprintf(stderr, "server under test: %s\n", harness_server_path());
    failed += cmocka_run_group_tests_name("text", text_tests, group_setup,
                                          group_teardown);
    return (failed != 0 || g_bad_stops != 0) ? 1 : 0;
}
