/*
 * test_server_bin_framing.c: the running server's binary protocol over raw
 * sockets, byte for byte: quiet commands pipelined, keys too long, broken
 * framing, huge bodies, values too large, pipelines and requests split at
 * every byte.
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

#include "protocol/proto_bin.h"
#include "tests/integ/harness.h"
#include "tests/integ/server_helpers.h"

/*
 * Quiet opcodes: memcached suppresses the success replies of the Q forms
 * (and GET misses for GETQ/GETKQ/GATQ/GATKQ) but still sends their errors,
 * with the quiet opcode in the reply.
 */
static void
test_bin_quiet_pipeline(void **state)
{
    int fd = bconn();
    struct obuf b = { 0 };
    struct bmsg m;

    (void)state;
    breq_store(&b, BIN_OP_SET, "q1", 1, 0, "v1", 2, 1, 0);
    ob_send(fd, &b);
    bexpect_ok_empty(fd, &m, BIN_OP_SET, 1);

    breq_key(&b, BIN_OP_GETQ, "nope", 2, 0);            /* miss: nothing */
    breq_key(&b, BIN_OP_GETQ, "q1", 3, 0);              /* hit */
    breq_key(&b, BIN_OP_GETKQ, "nope", 4, 0);           /* miss: nothing */
    breq_key(&b, BIN_OP_GETKQ, "q1", 5, 0);             /* hit */
    breq_store(&b, BIN_OP_SETQ, "q2", 2, 0, "v2", 2, 6, 0);       /* nothing */
    breq_store(&b, BIN_OP_SETQ, "q2", 2, 0, "v2", 2, 7, 12345);   /* EEXISTS */
    breq_store(&b, BIN_OP_ADDQ, "q1", 0, 0, "x", 1, 8, 0);        /* EEXISTS */
    breq_store(&b, BIN_OP_ADDQ, "q3", 0, 0, "v3", 2, 9, 0);       /* nothing */
    breq_store(&b, BIN_OP_REPLACEQ, "nope", 0, 0, "x", 1, 10, 0); /* ENOENT */
    breq_store(&b, BIN_OP_REPLACEQ, "q3", 3, 0, "V3", 2, 11, 0);  /* nothing */
    breq_key(&b, BIN_OP_DELETEQ, "nope", 12, 0);                  /* ENOENT */
    breq_key(&b, BIN_OP_DELETEQ, "q2", 13, 0);                    /* nothing */
    breq_arith(&b, BIN_OP_INCREMENTQ, "qn", 1, 5, 0, 14, 0);      /* creates */
    breq_arith(&b, BIN_OP_INCREMENTQ, "qn", 1, 5, 0, 15, 0);      /* 6 */
    breq_arith(&b, BIN_OP_DECREMENTQ, "nope", 1, 5, 0xffffffff, 16, 0);
    breq_concat(&b, BIN_OP_APPENDQ, "nope", "x", 17, 0);          /* NOT_STORED */
    breq_concat(&b, BIN_OP_APPENDQ, "q1", ">", 18, 0);            /* nothing */
    breq_concat(&b, BIN_OP_PREPENDQ, "q1", "<", 19, 0);           /* nothing */
    breq_exp(&b, BIN_OP_GATQ, "q1", 100, 20);                     /* hit */
    breq_exp(&b, BIN_OP_GATQ, "nope", 100, 21);                   /* nothing */
    breq_exp(&b, BIN_OP_GATKQ, "q3", 100, 22);                    /* hit */
    breq_exp(&b, BIN_OP_GATKQ, "nope", 100, 23);                  /* nothing */
    breq_simple(&b, BIN_OP_NOOP, 24);
    ob_send(fd, &b);

    bexpect(fd, &m, BIN_OP_GETQ, BIN_STATUS_SUCCESS, 3);
    check_value(&m, 4, 0, "v1");
    bm_free(&m);
    bexpect(fd, &m, BIN_OP_GETKQ, BIN_STATUS_SUCCESS, 5);
    check_value(&m, 4, 2, "v1");
    assert_memory_equal(bm_key(&m), "q1", 2);
    bm_free(&m);
    bexpect_err(fd, &m, BIN_OP_SETQ, BIN_STATUS_KEY_EEXISTS, 7,
                "Data exists for key.");
    bexpect_err(fd, &m, BIN_OP_ADDQ, BIN_STATUS_KEY_EEXISTS, 8,
                "Data exists for key.");
    bexpect_err(fd, &m, BIN_OP_REPLACEQ, BIN_STATUS_KEY_ENOENT, 10,
                "Not found");
    bexpect_err(fd, &m, BIN_OP_DELETEQ, BIN_STATUS_KEY_ENOENT, 12,
                "Not found");
    bexpect_err(fd, &m, BIN_OP_DECREMENTQ, BIN_STATUS_KEY_ENOENT, 16,
                "Not found");
    bexpect_err(fd, &m, BIN_OP_APPENDQ, BIN_STATUS_NOT_STORED, 17,
                "Not stored.");
    bexpect(fd, &m, BIN_OP_GATQ, BIN_STATUS_SUCCESS, 20);
    check_value(&m, 4, 0, "<v1>");
    assert_int_equal(bm_flags(&m), 1);
    bm_free(&m);
    bexpect(fd, &m, BIN_OP_GATKQ, BIN_STATUS_SUCCESS, 22);
    check_value(&m, 4, 2, "V3");
    assert_int_equal(bm_flags(&m), 3);
    bm_free(&m);
    bexpect_ok_empty(fd, &m, BIN_OP_NOOP, 24);

    /* the quiet writes did happen */
    breq_key(&b, BIN_OP_GET, "qn", 30, 0);
    breq_key(&b, BIN_OP_GET, "q2", 31, 0);
    ob_send(fd, &b);
    bexpect(fd, &m, BIN_OP_GET, BIN_STATUS_SUCCESS, 30);
    check_value(&m, 4, 0, "6");
    bm_free(&m);
    bexpect_err(fd, &m, BIN_OP_GET, BIN_STATUS_KEY_ENOENT, 31, "Not found");

    /* FLUSHQ: no reply, but it flushes */
    breq_simple(&b, BIN_OP_FLUSHQ, 32);
    breq_key(&b, BIN_OP_GETQ, "q1", 33, 0);
    breq_simple(&b, BIN_OP_NOOP, 34);
    ob_send(fd, &b);
    bexpect_ok_empty(fd, &m, BIN_OP_NOOP, 34);
    bsync(fd);
    ob_free(&b);
    close(fd);
}

static void
test_bin_key_too_long(void **state)
{
    struct obuf b = { 0 };
    struct bmsg m;
    char key251[252];
    int fd;

    (void)state;
    memset(key251, 'k', 251);
    key251[251] = 0;
    /* EINVAL, then memcached closes the connection */
    fd = bconn();
    breq_key(&b, BIN_OP_GET, key251, 1, 0);
    breq_simple(&b, BIN_OP_NOOP, 2);
    ob_send(fd, &b);
    bexpect_err(fd, &m, BIN_OP_GET, BIN_STATUS_EINVAL, 1, "Invalid arguments");
    expect_closed(fd);
    close(fd);
    fd = bconn();
    breq_store(&b, BIN_OP_SETQ, key251, 0, 0, "v", 1, 3, 0);
    breq_simple(&b, BIN_OP_NOOP, 4);
    ob_send(fd, &b);
    bexpect_err(fd, &m, BIN_OP_SETQ, BIN_STATUS_EINVAL, 3,
                "Invalid arguments");
    expect_closed(fd);
    close(fd);
    /* GET without a key, SET without extras */
    fd = bconn();
    breq_simple(&b, BIN_OP_GET, 5);
    ob_send(fd, &b);
    bexpect_err(fd, &m, BIN_OP_GET, BIN_STATUS_EINVAL, 5, "Invalid arguments");
    expect_closed(fd);
    close(fd);
    fd = bconn();
    breq_concat(&b, BIN_OP_SET, "k", "v", 6, 0);
    ob_send(fd, &b);
    bexpect_err(fd, &m, BIN_OP_SET, BIN_STATUS_EINVAL, 6, "Invalid arguments");
    expect_closed(fd);
    close(fd);
    ob_free(&b);
}

static void
test_bin_bad_framing(void **state)
{
    struct obuf b = { 0 };
    struct bmsg m;
    int fd;

    (void)state;
    /* wrong magic once the connection speaks binary: closed, no reply */
    fd = bconn();
    breq_simple(&b, BIN_OP_NOOP, 1);
    ob_hdr(&b, 0x81, BIN_OP_NOOP, 0, 0, 0, 2, 0);
    breq_simple(&b, BIN_OP_NOOP, 3);
    ob_send(fd, &b);
    bexpect_ok_empty(fd, &m, BIN_OP_NOOP, 1);
    expect_closed(fd);
    close(fd);
    /* keylen + extlen > bodylen: UNKNOWN_COMMAND, then close */
    fd = bconn();
    ob_hdr(&b, PROTO_BIN_REQ_MAGIC, BIN_OP_GET, 5, 0, 3, 4, 0);
    ob_put(&b, "abcde", 5);
    breq_simple(&b, BIN_OP_NOOP, 5);
    ob_send(fd, &b);
    bexpect_err(fd, &m, BIN_OP_GET, BIN_STATUS_UNKNOWN_COMMAND, 4,
                "Unknown command");
    expect_closed(fd);
    close(fd);
    /* a GET announcing a 2 GB body: its lengths do not fit GET (bodylen !=
     * keylen), so EINVAL and close, without waiting for the body */
    fd = bconn();
    ob_hdr(&b, PROTO_BIN_REQ_MAGIC, BIN_OP_GET, 3, 0, 0x80000000u, 6, 0);
    ob_put(&b, "abc", 3);
    ob_send(fd, &b);
    bexpect_err(fd, &m, BIN_OP_GET, BIN_STATUS_EINVAL, 6, "Invalid arguments");
    expect_closed(fd);
    close(fd);
    /* the server is fine */
    fd = bconn();
    bsync(fd);
    close(fd);
    ob_free(&b);
}

/*
 * A SET announcing a 2 GB value. memcached answers E2BIG only once it has
 * swallowed the whole body, so nothing arrives while the body is missing and
 * the connection stays open; an E2BIG sent at once is fine too. Either way
 * the server must neither crash nor allocate 2 GB, and must keep serving.
 */
static void
test_bin_huge_body(void **state)
{
    struct obuf b = { 0 };
    char ext[8] = { 0 };
    unsigned char got[256];
    bool closed;
    ssize_t n;
    int fd;

    (void)state;
    fd = bconn();
    ob_hdr(&b, PROTO_BIN_REQ_MAGIC, BIN_OP_SET, 3, 8, 0x80000000u, 9, 0);
    ob_put(&b, ext, 8);
    ob_put(&b, "abc", 3);
    ob_put(&b, "some bytes of the value", 23);
    ob_send(fd, &b);
    n = harness_read_quiet(fd, got, sizeof(got), 300, &closed);
    if (n > 0) {
        /* only an E2BIG for this request may have come */
        assert_true(n >= PROTO_BIN_HDR_LEN);
        assert_int_equal(got[0], PROTO_BIN_RES_MAGIC);
        assert_int_equal(got[1], BIN_OP_SET);
        assert_int_equal((got[6] << 8) | got[7], BIN_STATUS_E2BIG);
        assert_int_equal(proto_bin_get32((const char *)got + 12), 9);
    }
    close(fd);
    assert_true(server_alive(g_srv));
    fd = bconn();
    bsync(fd);
    close(fd);
    ob_free(&b);
}

/* A value over -I: E2BIG "Too large." once it is swallowed, then the
 * connection goes on. */
static void
test_bin_too_large(void **state)
{
    int fd = bconn();
    struct obuf b = { 0 };
    struct bmsg m;
    char *v = malloc(1500000);

    (void)state;
    assert_non_null(v);
    fill_pattern(v, 1500000, 5);
    breq_store(&b, BIN_OP_SET, "big", 0, 0, "x", 1, 1, 0);
    breq_store(&b, BIN_OP_SET, "big", 0, 0, v, 1500000, 2, 0);
    breq_store(&b, BIN_OP_SETQ, "big2", 0, 0, v, 1500000, 3, 0);
    breq_concat(&b, BIN_OP_APPEND, "big", "y", 4, 0);
    breq_key(&b, BIN_OP_GET, "big", 5, 0);
    breq_simple(&b, BIN_OP_NOOP, 6);
    ob_send(fd, &b);
    bexpect_ok_empty(fd, &m, BIN_OP_SET, 1);
    bexpect_err(fd, &m, BIN_OP_SET, BIN_STATUS_E2BIG, 2, "Too large.");
    bexpect_err(fd, &m, BIN_OP_SETQ, BIN_STATUS_E2BIG, 3, "Too large.");
    /* memcached: the failed SET removed the old value, so APPEND fails */
    bexpect_err(fd, &m, BIN_OP_APPEND, BIN_STATUS_NOT_STORED, 4,
                "Not stored.");
    bexpect_err(fd, &m, BIN_OP_GET, BIN_STATUS_KEY_ENOENT, 5, "Not found");
    bexpect_ok_empty(fd, &m, BIN_OP_NOOP, 6);
    bsync(fd);
    ob_free(&b);
    free(v);
    close(fd);
}

/* 100 mixed requests in one write, answered in order. */
static void
test_bin_pipeline(void **state)
{
    int fd = bconn();
    struct obuf b = { 0 };
    struct bmsg m;
    char key[32], val[32];

    (void)state;
    for (int i = 0; i < 100; i++) {
        switch (i % 5) {
        case 0:
            snprintf(key, sizeof(key), "pl:%d", i);
            snprintf(val, sizeof(val), "val-%d", i);
            breq_store(&b, BIN_OP_SET, key, (uint32_t)i, 0, val, strlen(val),
                       (uint32_t)i, 0);
            break;
        case 1:
            snprintf(key, sizeof(key), "pl:%d", i - 1);
            breq_key(&b, BIN_OP_GET, key, (uint32_t)i, 0);
            break;
        case 2:
            snprintf(key, sizeof(key), "pl:missing:%d", i);
            breq_key(&b, BIN_OP_GETQ, key, (uint32_t)i, 0);
            break;
        case 3:
            breq_arith(&b, BIN_OP_INCREMENT, "pl:counter", 1, 0, 0,
                       (uint32_t)i, 0);
            break;
        default:
            snprintf(key, sizeof(key), "pl:%d", i - 4);
            breq_key(&b, BIN_OP_DELETE, key, (uint32_t)i, 0);
            break;
        }
    }
    breq_simple(&b, BIN_OP_NOOP, 1000);
    ob_send(fd, &b);
    for (int i = 0; i < 100; i++) {
        switch (i % 5) {
        case 0:
            bexpect_ok_empty(fd, &m, BIN_OP_SET, (uint32_t)i);
            break;
        case 1:
            bexpect(fd, &m, BIN_OP_GET, BIN_STATUS_SUCCESS, (uint32_t)i);
            snprintf(val, sizeof(val), "val-%d", i - 1);
            check_value(&m, 4, 0, val);
            assert_int_equal(bm_flags(&m), i - 1);
            bm_free(&m);
            break;
        case 2:
            break;   /* GETQ miss: no reply */
        case 3:
            bexpect(fd, &m, BIN_OP_INCREMENT, BIN_STATUS_SUCCESS,
                    (uint32_t)i);
            /* created with initial 0, then +1 per request */
            assert_int_equal(counter_value(&m), i / 5);
            bm_free(&m);
            break;
        default:
            bexpect_ok_empty(fd, &m, BIN_OP_DELETE, (uint32_t)i);
            break;
        }
    }
    bexpect_ok_empty(fd, &m, BIN_OP_NOOP, 1000);
    bsync(fd);
    ob_free(&b);
    close(fd);
}

static void
test_bin_split_bytes(void **state)
{
    int fd = bconn();
    struct obuf b = { 0 };
    struct bmsg m;

    (void)state;
    breq_store(&b, BIN_OP_SET, "sb", 3, 0, "hello", 5, 1, 0);
    breq_key(&b, BIN_OP_GETK, "sb", 2, 0);
    for (size_t i = 0; i < b.len; i++) {
        assert_int_equal(harness_send_all(fd, b.p + i, 1), 0);
        usleep(1000);
    }
    b.len = 0;
    bexpect_ok_empty(fd, &m, BIN_OP_SET, 1);
    bexpect(fd, &m, BIN_OP_GETK, BIN_STATUS_SUCCESS, 2);
    check_value(&m, 4, 2, "hello");
    assert_int_equal(bm_flags(&m), 3);
    bm_free(&m);
    bsync(fd);
    ob_free(&b);
    close(fd);
}

#define T(f) cmocka_unit_test_setup((f), text_group_test_setup)

int
main(void)
{
    const struct CMUnitTest bin_tests[] = {
        T(test_bin_quiet_pipeline),
        T(test_bin_key_too_long),
        T(test_bin_bad_framing),
        T(test_bin_huge_body),
        T(test_bin_too_large),
        T(test_bin_pipeline),
        T(test_bin_split_bytes),
    };
    int failed = 0;

    signal(SIGPIPE, SIG_IGN);
    fprintf(stderr, "server under test: %s\n", harness_server_path());
    failed += cmocka_run_group_tests_name("binary framing", bin_tests, group_setup,
                                          group_teardown);
    return (failed != 0 || g_bad_stops != 0) ? 1 : 0;
}
