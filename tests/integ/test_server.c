/*
 * test_server.c: integration tests of the running server as a whole:
 * robustness (parallel clients, disconnects mid-request, garbage, a client
 * that does not read) and a clean exit on SIGTERM and SIGINT. The protocols
 * have their own binaries: test_server_lmc.c (through libmemcached),
 * test_server_text*.c and test_server_bin*.c (raw sockets, byte for byte).
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

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libmemcached/memcached.h>

#include "protocol/proto_bin.h"
#include "tests/integ/harness.h"
#include "tests/integ/server_helpers.h"

/* ------------------------------------------------------------------ */
/* robustness                                                          */

enum { PAR_THREADS = 20, PAR_OPS = 2000, PAR_SLOTS = 32 };

struct par_arg {
    uint16_t port;
    int tid;
    int incrs;
    int failures;
    char error[256];
};

static void
par_fail(struct par_arg *a, const char *what, int op, memcached_st *m,
         memcached_return_t rc)
{
    if (a->failures++ == 0)
        snprintf(a->error, sizeof(a->error), "thread %d op %d: %s: %s",
                 a->tid, op, what, memcached_strerror(m, rc));
}

static void *
par_worker(void *p)
{
    struct par_arg *a = p;
    memcached_st *m = memcached_create(NULL);
    int last[PAR_SLOTS];
    char key[64], val[600], *got;

    for (int i = 0; i < PAR_SLOTS; i++)
        last[i] = -1;
    memcached_server_add(m, "127.0.0.1", a->port);
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL,
                           a->tid % 2);
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, TMO);
    for (int op = 0; op < PAR_OPS && a->failures < 10; op++) {
        int slot = op % PAR_SLOTS;
        memcached_return_t rc;
        size_t vlen;
        uint32_t flags;

        snprintf(key, sizeof(key), "par:%d:%d", a->tid, slot);
        if (op % 10 == 5) {
            uint64_t v;

            rc = memcached_increment(m, "par:counter", 11, 1, &v);
            if (rc != MEMCACHED_SUCCESS)
                par_fail(a, "incr", op, m, rc);
            else
                a->incrs++;
        } else if (last[slot] < 0 || op % 3 == 0) {
            size_t len = 10 + (size_t)(op * 7 % 500);

            fill_pattern(val, len, (unsigned)(a->tid * 100000 + op));
            rc = memcached_set(m, key, strlen(key), val, len, 0,
                               (uint32_t)op);
            if (rc != MEMCACHED_SUCCESS)
                par_fail(a, "set", op, m, rc);
            else
                last[slot] = op;
        } else {
            size_t len = 10 + (size_t)(last[slot] * 7 % 500);

            fill_pattern(val, len,
                         (unsigned)(a->tid * 100000 + last[slot]));
            got = memcached_get(m, key, strlen(key), &vlen, &flags, &rc);
            if (rc != MEMCACHED_SUCCESS || got == NULL)
                par_fail(a, "get", op, m, rc);
            else if (vlen != len || memcmp(got, val, len) != 0 ||
                     flags != (uint32_t)last[slot])
                par_fail(a, "get returned a wrong value", op, m, rc);
            free(got);
        }
    }
    memcached_free(m);
    return NULL;
}

static void
test_robust_parallel(void **state)
{
    pthread_t threads[PAR_THREADS];
    struct par_arg args[PAR_THREADS];
    int fd = tconn();
    int incrs = 0;
    char want[64];

    (void)state;
    TEXT(fd, "set par:counter 0 0 1\r\n0\r\n", "STORED\r\n");
    for (int i = 0; i < PAR_THREADS; i++) {
        memset(&args[i], 0, sizeof(args[i]));
        args[i].port = server_port(g_srv);
        args[i].tid = i;
        assert_int_equal(pthread_create(&threads[i], NULL, par_worker,
                                        &args[i]), 0);
    }
    for (int i = 0; i < PAR_THREADS; i++) {
        pthread_join(threads[i], NULL);
        if (args[i].failures > 0)
            fprintf(stderr, "  %s (%d failures)\n", args[i].error,
                    args[i].failures);
    }
    for (int i = 0; i < PAR_THREADS; i++) {
        assert_int_equal(args[i].failures, 0);
        incrs += args[i].incrs;
    }
    assert_int_equal(incrs, PAR_THREADS * (PAR_OPS / 10));
    snprintf(want, sizeof(want), "VALUE par:counter 0 %d\r\n%d\r\nEND\r\n",
             (int)snprintf(NULL, 0, "%d", incrs), incrs);
    TEXT(fd, "get par:counter\r\n", want);
    text_sync(fd);
    close(fd);
}

/* Clients that vanish in the middle of a request. */
static void
test_robust_disconnect(void **state)
{
    struct obuf b = { 0 };
    char *v = malloc(10000);
    int fd;

    (void)state;
    assert_non_null(v);
    fill_pattern(v, 10000, 77);
    fd = tconn();
    assert_int_equal(harness_send_str(fd, "set dm 0 0 100\r\n0123456789"), 0);
    close(fd);
    fd = tconn();
    assert_int_equal(harness_send_str(fd, "get dm"), 0);
    close(fd);
    fd = tconn();
    breq_store(&b, BIN_OP_SET, "dm", 0, 0, v, 10000, 1, 0);
    assert_int_equal(harness_send_all(fd, b.p, 100), 0);
    close(fd);
    b.len = 0;
    fd = tconn();
    assert_int_equal(harness_send_all(fd, "\x80\x00\x00\x02\x00", 5), 0);
    close(fd);
    /* a client that asks for a lot and leaves without reading */
    fd = tconn();
    ob_printf(&b, "set dm 0 0 10000\r\n");
    ob_put(&b, v, 10000);
    ob_printf(&b, "\r\n");
    for (int i = 0; i < 500; i++)
        ob_printf(&b, "get dm\r\n");
    assert_int_equal(harness_send_all(fd, b.p, b.len), 0);
    close(fd);
    b.len = 0;
    /* the same with a reset instead of a FIN */
    fd = tconn();
    ob_printf(&b, "get dm dm dm dm\r\n");
    assert_int_equal(harness_send_all(fd, b.p, b.len), 0);
    {
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };

        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(fd);

    assert_true(server_alive(g_srv));
    fd = tconn();
    TEXT(fd, "set after 0 0 2\r\nok\r\nget after\r\n",
         "STORED\r\nVALUE after 0 2\r\nok\r\nEND\r\n");
    text_sync(fd);
    close(fd);
    ob_free(&b);
    free(v);
}

/* Pseudo-random garbage on text and binary connections. */
static void
test_robust_garbage(void **state)
{
    enum { LEN = 65536 };
    char *junk = malloc(LEN), *sink = malloc(1 << 20);
    uint32_t x = 12345;
    int fd;

    (void)state;
    assert_non_null(junk);
    assert_non_null(sink);
    for (int round = 0; round < 8; round++) {
        for (int i = 0; i < LEN; i++) {
            x = x * 1103515245u + 12345u;
            junk[i] = (char)(x >> 16);
        }
        /* even rounds start like text, odd rounds like binary */
        junk[0] = (round % 2) ? (char)0x80 : 'x';
        fd = tconn();
        /* whatever the server answers or however it closes is fine */
        (void)harness_exchange(fd, junk, LEN, sink, 1 << 20, 1 << 20, 300);
        close(fd);
    }
    assert_true(server_alive(g_srv));
    fd = tconn();
    TEXT(fd, "set g 0 0 1\r\nx\r\nget g\r\n",
         "STORED\r\nVALUE g 0 1\r\nx\r\nEND\r\n");
    text_sync(fd);
    close(fd);
    fd = bconn();
    bsync(fd);
    close(fd);
    free(junk);
    free(sink);
}

/* A client that sends many requests before reading any reply. */
static void
test_robust_slow_reader(void **state)
{
    enum { VLEN = 10000, GETS = 1000 };
    int fd = tconn();
    struct obuf b = { 0 }, one = { 0 };
    char *v = malloc(VLEN), *got;
    size_t total;
    ssize_t n;

    (void)state;
    assert_non_null(v);
    fill_pattern(v, VLEN, 11);
    ob_printf(&b, "set sr 0 0 %d\r\n", VLEN);
    ob_put(&b, v, VLEN);
    ob_printf(&b, "\r\n");
    TEXTN(fd, b.p, b.len, "STORED\r\n");
    b.len = 0;
    for (int i = 0; i < GETS; i++)
        ob_printf(&b, "get sr\r\n");
    ob_printf(&one, "VALUE sr 0 %d\r\n", VLEN);
    ob_put(&one, v, VLEN);
    ob_printf(&one, "\r\nEND\r\n");
    total = one.len * GETS;
    got = malloc(total);
    assert_non_null(got);
    assert_int_equal(harness_send_all(fd, b.p, b.len), 0);
    usleep(300 * 1000);   /* let the server's output back up */
    n = harness_read_exact(fd, got, total, TMO);
    assert_int_equal(n, (ssize_t)total);
    for (int i = 0; i < GETS; i++)
        assert_bytes(got + (size_t)i * one.len, one.len, one.p, one.len);
    text_sync(fd);
    ob_free(&b);
    ob_free(&one);
    free(got);
    free(v);
    close(fd);
}

/* ------------------------------------------------------------------ */
/* exit                                                                */

static void
exit_on_signal(int signo)
{
    struct server *srv = server_start(k_server_args);
    int idle, busy, fd;

    assert_non_null(srv);
    idle = harness_connect(server_port(srv));
    busy = harness_connect(server_port(srv));
    fd = harness_connect(server_port(srv));
    assert_true(idle >= 0 && busy >= 0 && fd >= 0);
    assert_int_equal(harness_send_str(fd, "set x 0 0 1\r\nx\r\n"), 0);
    {
        char buf[9];

        assert_int_equal(harness_read_exact(fd, buf, 8, TMO), 8);
        assert_memory_equal(buf, "STORED\r\n", 8);
    }
    /* a request cut in the middle must not keep the server alive */
    assert_int_equal(harness_send_str(busy, "set y 0 0 100\r\nabc"), 0);
    /* memcached 1.6 exits with status 0 on SIGTERM and on SIGINT */
    assert_int_equal(server_stop_with(srv, signo), 0);
    assert_int_equal(harness_wait_closed(idle, TMO, NULL), 1);
    close(idle);
    close(busy);
    close(fd);
}

static void
test_exit_sigterm(void **state)
{
    (void)state;
    exit_on_signal(SIGTERM);
}

static void
test_exit_sigint(void **state)
{
    (void)state;
    exit_on_signal(SIGINT);
}

#define T(f) cmocka_unit_test_setup((f), text_group_test_setup)

int
main(void)
{
    const struct CMUnitTest robust_tests[] = {
        T(test_robust_parallel),
        T(test_robust_disconnect),
        T(test_robust_garbage),
        T(test_robust_slow_reader),
    };
    const struct CMUnitTest exit_tests[] = {
        cmocka_unit_test(test_exit_sigterm),
        cmocka_unit_test(test_exit_sigint),
    };
    int failed = 0;

    signal(SIGPIPE, SIG_IGN);
    fprintf(stderr, "server under test: %s\n", harness_server_path());
    failed += cmocka_run_group_tests_name("robustness", robust_tests, group_setup,
                                          group_teardown);
    failed += cmocka_run_group_tests_name("exit", exit_tests, NULL, NULL);
    return (failed != 0 || g_bad_stops != 0) ? 1 : 0;
}
