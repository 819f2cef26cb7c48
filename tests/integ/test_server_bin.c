/*
 * test_server_bin.c: the running server's binary protocol over raw
 * sockets, byte for byte: get/set and their variants, delete, incr/decr,
 * append/prepend, touch and gat. test_server_bin_admin.c has expiry, flush,
 * noop/version/quit, stat and unknown opcodes; test_server_bin_framing.c
 * quiet pipelines, limits and framing.
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
#include <string.h>
#include <unistd.h>

#include "protocol/proto_bin.h"
#include "tests/integ/harness.h"
#include "tests/integ/server_helpers.h"

static void
test_bin_get_set(void **state)
{
    int fd = bconn();
    struct obuf b = { 0 };
    struct bmsg m;
    uint64_t cas1, cas2;

    (void)state;
    breq_store(&b, BIN_OP_SET, "k1", 0xdeadbeef, 0, "val", 3, 7, 0);
    ob_send(fd, &b);
    bexpect(fd, &m, BIN_OP_SET, BIN_STATUS_SUCCESS, 7);
    assert_int_equal(m.bodylen, 0);
    cas1 = m.cas;
    assert_true(cas1 != 0);
    bm_free(&m);

    breq_key(&b, BIN_OP_GET, "k1", 8, 0);
    ob_send(fd, &b);
    bexpect(fd, &m, BIN_OP_GET, BIN_STATUS_SUCCESS, 8);
    check_value(&m, 4, 0, "val");
    assert_int_equal(bm_flags(&m), 0xdeadbeef);
    assert_true(m.cas == cas1);
    bm_free(&m);

    breq_key(&b, BIN_OP_GETK, "k1", 9, 0);
    ob_send(fd, &b);
    bexpect(fd, &m, BIN_OP_GETK, BIN_STATUS_SUCCESS, 9);
    check_value(&m, 4, 2, "val");
    assert_memory_equal(bm_key(&m), "k1", 2);
    assert_true(m.cas == cas1);
    bm_free(&m);

    /* GET miss: the body is the text "Not found" */
    breq_key(&b, BIN_OP_GET, "nope", 10, 0);
    ob_send(fd, &b);
    bexpect_err(fd, &m, BIN_OP_GET, BIN_STATUS_KEY_ENOENT, 10, "Not found");

    /* memcached: GETK miss returns the key and no message */
    breq_key(&b, BIN_OP_GETK, "nope", 11, 0);
    ob_send(fd, &b);
    bexpect(fd, &m, BIN_OP_GETK, BIN_STATUS_KEY_ENOENT, 11);
    check_value(&m, 0, 4, "");
    assert_memory_equal(bm_key(&m), "nope", 4);
    bm_free(&m);

    breq_store(&b, BIN_OP_ADD, "k1", 0, 0, "v", 1, 12, 0);
    ob_send(fd, &b);
    bexpect_err(fd, &m, BIN_OP_ADD, BIN_STATUS_KEY_EEXISTS, 12,
                "Data exists for key.");
    breq_store(&b, BIN_OP_ADD, "k2", 2, 0, "v2", 2, 13, 0);
    ob_send(fd, &b);
    bexpect(fd, &m, BIN_OP_ADD, BIN_STATUS_SUCCESS, 13);
    assert_true(m.cas != 0);
    bm_free(&m);
    breq_store(&b, BIN_OP_REPLACE, "nope", 0, 0, "v", 1, 14, 0);
    ob_send(fd, &b);
    bexpect_err(fd, &m, BIN_OP_REPLACE, BIN_STATUS_KEY_ENOENT, 14,
                "Not found");
    breq_store(&b, BIN_OP_REPLACE, "k2", 3, 0, "v3", 2, 15, 0);
    ob_send(fd, &b);
    bexpect(fd, &m, BIN_OP_REPLACE, BIN_STATUS_SUCCESS, 15);
    bm_free(&m);

    /* SET with CAS */
    breq_store(&b, BIN_OP_SET, "k1", 1, 0, "new", 3, 16, cas1 + 1000);
    ob_send(fd, &b);
    bexpect_err(fd, &m, BIN_OP_SET, BIN_STATUS_KEY_EEXISTS, 16,
                "Data exists for key.");
    breq_store(&b, BIN_OP_SET, "k1", 1, 0, "new", 3, 17, cas1);
    ob_send(fd, &b);
    bexpect(fd, &m, BIN_OP_SET, BIN_STATUS_SUCCESS, 17);
    cas2 = m.cas;
    assert_true(cas2 != 0 && cas2 != cas1);
    bm_free(&m);
    breq_store(&b, BIN_OP_SET, "nokey", 1, 0, "new", 3, 18, cas1);
    ob_send(fd, &b);
    bexpect_err(fd, &m, BIN_OP_SET, BIN_STATUS_KEY_ENOENT, 18, "Not found");
    breq_store(&b, BIN_OP_REPLACE, "k1", 1, 0, "rep", 3, 19, cas1);
    ob_send(fd, &b);
    bexpect_err(fd, &m, BIN_OP_REPLACE, BIN_STATUS_KEY_EEXISTS, 19,
                "Data exists for key.");

    breq_key(&b, BIN_OP_GET, "k1", 20, 0);
    ob_send(fd, &b);
    bexpect(fd, &m, BIN_OP_GET, BIN_STATUS_SUCCESS, 20);
    check_value(&m, 4, 0, "new");
    assert_int_equal(bm_flags(&m), 1);
    assert_true(m.cas == cas2);
    bm_free(&m);

    /* a 250-byte key works and a zero-length value too */
    {
        char key250[251];

        memset(key250, 'k', 250);
        key250[250] = 0;
        breq_store(&b, BIN_OP_SET, key250, 0, 0, "", 0, 21, 0);
        breq_key(&b, BIN_OP_GETK, key250, 22, 0);
        ob_send(fd, &b);
        bexpect_ok_empty(fd, &m, BIN_OP_SET, 21);
        bexpect(fd, &m, BIN_OP_GETK, BIN_STATUS_SUCCESS, 22);
        check_value(&m, 4, 250, "");
        assert_memory_equal(bm_key(&m), key250, 250);
        bm_free(&m);
    }
    bsync(fd);
    ob_free(&b);
    close(fd);
}

static void
test_bin_delete(void **state)
{
    int fd = bconn();
    struct obuf b = { 0 };
    struct bmsg m;
    uint64_t cas;

    (void)state;
    breq_store(&b, BIN_OP_SET, "d", 0, 0, "v", 1, 1, 0);
    ob_send(fd, &b);
    bexpect(fd, &m, BIN_OP_SET, BIN_STATUS_SUCCESS, 1);
    cas = m.cas;
    bm_free(&m);
    breq_key(&b, BIN_OP_DELETE, "d", 2, cas + 1);
    ob_send(fd, &b);
    bexpect_err(fd, &m, BIN_OP_DELETE, BIN_STATUS_KEY_EEXISTS, 2,
                "Data exists for key.");
    breq_key(&b, BIN_OP_DELETEQ, "d", 3, cas + 1);
    breq_simple(&b, BIN_OP_NOOP, 4);
    ob_send(fd, &b);
    bexpect_err(fd, &m, BIN_OP_DELETEQ, BIN_STATUS_KEY_EEXISTS, 3,
                "Data exists for key.");
    bexpect_ok_empty(fd, &m, BIN_OP_NOOP, 4);
    breq_key(&b, BIN_OP_DELETE, "d", 5, cas);
    ob_send(fd, &b);
    /* memcached: a successful DELETE carries cas 0 */
    bexpect(fd, &m, BIN_OP_DELETE, BIN_STATUS_SUCCESS, 5);
    assert_int_equal(m.bodylen, 0);
    assert_true(m.cas == 0);
    bm_free(&m);
    breq_key(&b, BIN_OP_DELETE, "d", 6, 0);
    ob_send(fd, &b);
    bexpect_err(fd, &m, BIN_OP_DELETE, BIN_STATUS_KEY_ENOENT, 6, "Not found");
    bsync(fd);
    ob_free(&b);
    close(fd);
}

static void
test_bin_incr_decr(void **state)
{
    int fd = bconn();
    struct obuf b = { 0 };
    struct bmsg m;
    uint64_t cas;

    (void)state;
    /* missing key: created with the initial value (delta not applied) */
    breq_arith(&b, BIN_OP_INCREMENT, "c", 1, 5, 0, 1, 0);
    ob_send(fd, &b);
    bexpect(fd, &m, BIN_OP_INCREMENT, BIN_STATUS_SUCCESS, 1);
    assert_int_equal(counter_value(&m), 5);
    assert_true(m.cas != 0);
    bm_free(&m);
    breq_arith(&b, BIN_OP_INCREMENT, "c", 10, 5, 0, 2, 0);
    ob_send(fd, &b);
    bexpect(fd, &m, BIN_OP_INCREMENT, BIN_STATUS_SUCCESS, 2);
    assert_int_equal(counter_value(&m), 15);
    cas = m.cas;
    bm_free(&m);
    /* the counter is stored as decimal text */
    breq_key(&b, BIN_OP_GET, "c", 3, 0);
    ob_send(fd, &b);
    bexpect(fd, &m, BIN_OP_GET, BIN_STATUS_SUCCESS, 3);
    check_value(&m, 4, 0, "15");
    assert_int_equal(bm_flags(&m), 0);
    assert_true(m.cas == cas);
    bm_free(&m);
    breq_arith(&b, BIN_OP_DECREMENT, "c", 100, 5, 0, 4, 0);
    ob_send(fd, &b);
    bexpect(fd, &m, BIN_OP_DECREMENT, BIN_STATUS_SUCCESS, 4);
    assert_int_equal(counter_value(&m), 0);
    bm_free(&m);
    /* exptime 0xffffffff: do not create */
    breq_arith(&b, BIN_OP_INCREMENT, "nc", 1, 5, 0xffffffff, 5, 0);
    breq_arith(&b, BIN_OP_DECREMENT, "nc", 1, 5, 0xffffffff, 6, 0);
    ob_send(fd, &b);
    bexpect_err(fd, &m, BIN_OP_INCREMENT, BIN_STATUS_KEY_ENOENT, 5,
                "Not found");
    bexpect_err(fd, &m, BIN_OP_DECREMENT, BIN_STATUS_KEY_ENOENT, 6,
                "Not found");
    /* wrap at 2^64 */
    breq_store(&b, BIN_OP_SET, "w", 0, 0, "18446744073709551615", 20, 7, 0);
    breq_arith(&b, BIN_OP_INCREMENT, "w", 1, 0, 0, 8, 0);
    ob_send(fd, &b);
    bexpect_ok_empty(fd, &m, BIN_OP_SET, 7);
    bexpect(fd, &m, BIN_OP_INCREMENT, BIN_STATUS_SUCCESS, 8);
    assert_int_equal(counter_value(&m), 0);
    bm_free(&m);
    /* non-numeric value */
    breq_store(&b, BIN_OP_SET, "s", 0, 0, "abc", 3, 9, 0);
    breq_arith(&b, BIN_OP_INCREMENT, "s", 1, 0, 0, 10, 0);
    breq_arith(&b, BIN_OP_DECREMENTQ, "s", 1, 0, 0, 11, 0);
    breq_simple(&b, BIN_OP_NOOP, 12);
    ob_send(fd, &b);
    bexpect_ok_empty(fd, &m, BIN_OP_SET, 9);
    bexpect_err(fd, &m, BIN_OP_INCREMENT, BIN_STATUS_DELTA_BADVAL, 10,
                "Non-numeric server-side value for incr or decr");
    bexpect_err(fd, &m, BIN_OP_DECREMENTQ, BIN_STATUS_DELTA_BADVAL, 11,
                "Non-numeric server-side value for incr or decr");
    bexpect_ok_empty(fd, &m, BIN_OP_NOOP, 12);
    /* CAS given and wrong */
    breq_arith(&b, BIN_OP_INCREMENT, "c", 1, 0, 0, 13, cas + 1000);
    ob_send(fd, &b);
    bexpect_err(fd, &m, BIN_OP_INCREMENT, BIN_STATUS_KEY_EEXISTS, 13,
                "Data exists for key.");
    /* created with an exptime, read back as text */
    breq_arith(&b, BIN_OP_INCREMENT, "ie", 1, 42, 100, 14, 0);
    breq_key(&b, BIN_OP_GET, "ie", 15, 0);
    ob_send(fd, &b);
    bexpect(fd, &m, BIN_OP_INCREMENT, BIN_STATUS_SUCCESS, 14);
    assert_int_equal(counter_value(&m), 42);
    bm_free(&m);
    bexpect(fd, &m, BIN_OP_GET, BIN_STATUS_SUCCESS, 15);
    check_value(&m, 4, 0, "42");
    bm_free(&m);
    bsync(fd);

    /* wrong extras length: EINVAL, then memcached closes the connection */
    ob_req(&b, BIN_OP_INCREMENT, "c", 1, "\0\0\0\0", 4, NULL, 0, 16, 0);
    breq_simple(&b, BIN_OP_NOOP, 17);
    ob_send(fd, &b);
    bexpect_err(fd, &m, BIN_OP_INCREMENT, BIN_STATUS_EINVAL, 16,
                "Invalid arguments");
    expect_closed(fd);
    ob_free(&b);
    close(fd);
}

static void
test_bin_append_prepend(void **state)
{
    int fd = bconn();
    struct obuf b = { 0 };
    struct bmsg m;
    uint64_t cas;

    (void)state;
    breq_concat(&b, BIN_OP_APPEND, "nope", "x", 1, 0);
    breq_concat(&b, BIN_OP_PREPEND, "nope", "x", 2, 0);
    ob_send(fd, &b);
    bexpect_err(fd, &m, BIN_OP_APPEND, BIN_STATUS_NOT_STORED, 1,
                "Not stored.");
    bexpect_err(fd, &m, BIN_OP_PREPEND, BIN_STATUS_NOT_STORED, 2,
                "Not stored.");
    breq_store(&b, BIN_OP_SET, "a", 5, 0, "mid", 3, 3, 0);
    breq_concat(&b, BIN_OP_APPEND, "a", "E", 4, 0);
    breq_concat(&b, BIN_OP_PREPEND, "a", "S", 5, 0);
    breq_key(&b, BIN_OP_GET, "a", 6, 0);
    ob_send(fd, &b);
    bexpect_ok_empty(fd, &m, BIN_OP_SET, 3);
    bexpect(fd, &m, BIN_OP_APPEND, BIN_STATUS_SUCCESS, 4);
    assert_true(m.cas != 0);
    bm_free(&m);
    bexpect(fd, &m, BIN_OP_PREPEND, BIN_STATUS_SUCCESS, 5);
    cas = m.cas;
    bm_free(&m);
    bexpect(fd, &m, BIN_OP_GET, BIN_STATUS_SUCCESS, 6);
    check_value(&m, 4, 0, "SmidE");
    assert_int_equal(bm_flags(&m), 5);
    assert_true(m.cas == cas);
    bm_free(&m);
    breq_concat(&b, BIN_OP_APPEND, "a", "x", 7, cas + 1000);
    ob_send(fd, &b);
    bexpect_err(fd, &m, BIN_OP_APPEND, BIN_STATUS_KEY_EEXISTS, 7,
                "Data exists for key.");
    bsync(fd);
    /* extras are not allowed: EINVAL and close */
    ob_req(&b, BIN_OP_APPEND, "a", 1, "\0\0\0\0\0\0\0\0", 8, "x", 1, 8, 0);
    ob_send(fd, &b);
    bexpect_err(fd, &m, BIN_OP_APPEND, BIN_STATUS_EINVAL, 8,
                "Invalid arguments");
    expect_closed(fd);
    ob_free(&b);
    close(fd);
}

static void
test_bin_touch_gat(void **state)
{
    int fd = bconn();
    struct obuf b = { 0 };
    struct bmsg m;
    uint64_t cas;

    (void)state;
    breq_store(&b, BIN_OP_SET, "t", 5, 0, "tv", 2, 1, 0);
    ob_send(fd, &b);
    bexpect(fd, &m, BIN_OP_SET, BIN_STATUS_SUCCESS, 1);
    cas = m.cas;
    bm_free(&m);
    /* memcached: a TOUCH hit carries the flags as extras and no value */
    breq_exp(&b, BIN_OP_TOUCH, "t", 100, 2);
    breq_exp(&b, BIN_OP_TOUCH, "nope", 100, 3);
    breq_exp(&b, BIN_OP_GAT, "t", 100, 4);
    breq_exp(&b, BIN_OP_GAT, "nope", 100, 5);
    breq_exp(&b, BIN_OP_GATK, "t", 100, 6);
    breq_exp(&b, BIN_OP_GATK, "nope", 100, 7);
    ob_send(fd, &b);
    bexpect(fd, &m, BIN_OP_TOUCH, BIN_STATUS_SUCCESS, 2);
    check_value(&m, 4, 0, "");
    assert_int_equal(bm_flags(&m), 5);
    assert_true(m.cas == cas);
    bm_free(&m);
    bexpect_err(fd, &m, BIN_OP_TOUCH, BIN_STATUS_KEY_ENOENT, 3, "Not found");
    bexpect(fd, &m, BIN_OP_GAT, BIN_STATUS_SUCCESS, 4);
    check_value(&m, 4, 0, "tv");
    assert_int_equal(bm_flags(&m), 5);
    assert_true(m.cas == cas);
    bm_free(&m);
    bexpect_err(fd, &m, BIN_OP_GAT, BIN_STATUS_KEY_ENOENT, 5, "Not found");
    bexpect(fd, &m, BIN_OP_GATK, BIN_STATUS_SUCCESS, 6);
    check_value(&m, 4, 1, "tv");
    assert_memory_equal(bm_key(&m), "t", 1);
    bm_free(&m);
    /* like GETK: a GATK miss returns the key, no message */
    bexpect(fd, &m, BIN_OP_GATK, BIN_STATUS_KEY_ENOENT, 7);
    check_value(&m, 0, 4, "");
    bm_free(&m);
    bsync(fd);
    /* TOUCH without extras: EINVAL and close */
    breq_key(&b, BIN_OP_TOUCH, "t", 8, 0);
    ob_send(fd, &b);
    bexpect_err(fd, &m, BIN_OP_TOUCH, BIN_STATUS_EINVAL, 8,
                "Invalid arguments");
    expect_closed(fd);
    ob_free(&b);
    close(fd);
}

#define T(f) cmocka_unit_test_setup((f), text_group_test_setup)

int
main(void)
{
    const struct CMUnitTest bin_tests[] = {
        T(test_bin_get_set),
        T(test_bin_delete),
        T(test_bin_incr_decr),
        T(test_bin_append_prepend),
        T(test_bin_touch_gat),
    };
    int failed = 0;

    signal(SIGPIPE, SIG_IGN);
    fprintf(stderr, "server under test: %s\n", harness_server_path());
    failed += cmocka_run_group_tests_name("binary", bin_tests, group_setup,
                                          group_teardown);
    return (failed != 0 || g_bad_stops != 0) ? 1 : 0;
}
