/*
 * test_proto_text.c: unit tests for protocol/proto_text.c: retrieval (get,
 * gets, gat, key lengths) and the other classic commands (delete, incr/decr,
 * touch, flush_all, and the rest).
 *
 * Requests are composed as strings and parsed back field by field; every
 * request is also fed at every split point (each prefix must be PARSE_EUNFIN
 * with nothing consumed).
 *
 * The other topics have their own binaries: test_proto_text_storage.c
 * (set, add, cas, ...), test_proto_text_meta.c (meta commands handed on to
 * protocol/proto_meta.c), test_proto_text_stream.c (junk, pipelines,
 * garbage, truncated input) and test_proto_text_compose.c (the replies);
 * proto_text_helpers.c holds what they share. Expected error lines were
 * checked against memcached 1.6.18.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "protocol/proto_text.h"
#include "tests/unit/proto_text_helpers.h"

/* ---- retrieval ---- */

static void
test_get_keys(void **state)
{
    (void)state;
    struct text_req req;
    size_t cur = 0;
    const char *key;
    uint8_t nkey;

    expect_s("get foo\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_GET);
    assert_mem(req.key, req.nkey, "foo");
    assert_int_equal(req.nkeys, 1);
    assert_mem(req.keys, req.keys_len, "foo");

    expect_s("gets a bb ccc\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_GETS);
    assert_int_equal(req.nkeys, 3);
    assert_mem(req.key, req.nkey, "a");
    assert_mem(req.keys, req.keys_len, "a bb ccc");
    assert_true(proto_text_next_key(&req, &cur, &key, &nkey));
    assert_mem(key, nkey, "a");
    assert_true(proto_text_next_key(&req, &cur, &key, &nkey));
    assert_mem(key, nkey, "bb");
    assert_true(proto_text_next_key(&req, &cur, &key, &nkey));
    assert_mem(key, nkey, "ccc");
    assert_false(proto_text_next_key(&req, &cur, &key, &nkey));
    assert_false(proto_text_next_key(&req, &cur, &key, &nkey));

    /* Extra spaces anywhere, bare "\n" */
    expect_s("   get   x    y   \n", PARSE_OK, NULL, &req);
    assert_int_equal(req.nkeys, 2);
    assert_mem(req.keys, req.keys_len, "x    y");
    cur = 0;
    assert_true(proto_text_next_key(&req, &cur, &key, &nkey));
    assert_mem(key, nkey, "x");
    assert_true(proto_text_next_key(&req, &cur, &key, &nkey));
    assert_mem(key, nkey, "y");
    assert_false(proto_text_next_key(&req, &cur, &key, &nkey));

    /* The legacy bget is a get */
    expect_s("bget k\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_GET);
    assert_mem(req.key, req.nkey, "k");
}

static void
test_get_many_keys(void **state)
{
    (void)state;
    char line[8192];
    size_t n = (size_t)snprintf(line, sizeof(line), "get");
    for (int i = 0; i < 500; i++)
        n += (size_t)snprintf(line + n, sizeof(line) - n, " key%d", i);
    n += (size_t)snprintf(line + n, sizeof(line) - n, "\r\n");

    struct text_req req;
    expect(line, n, PARSE_OK, n, NULL, &req);
    assert_int_equal(req.nkeys, 500);
    size_t cur = 0;
    const char *key;
    uint8_t nkey;
    char want[16];
    for (int i = 0; i < 500; i++) {
        assert_true(proto_text_next_key(&req, &cur, &key, &nkey));
        snprintf(want, sizeof(want), "key%d", i);
        assert_mem(key, nkey, want);
    }
    assert_false(proto_text_next_key(&req, &cur, &key, &nkey));
}

static void
test_get_key_length(void **state)
{
    (void)state;
    char line[1024];
    char k250[251], k251[252];
    memset(k250, 'k', 250);
    k250[250] = '\0';
    memset(k251, 'k', 251);
    k251[251] = '\0';
    struct text_req req;

    snprintf(line, sizeof(line), "get a %s b\r\n", k250);
    expect_s(line, PARSE_OK, NULL, &req);
    assert_int_equal(req.nkeys, 3);
    size_t cur = 0;
    const char *key;
    uint8_t nkey;
    assert_true(proto_text_next_key(&req, &cur, &key, &nkey));
    assert_true(proto_text_next_key(&req, &cur, &key, &nkey));
    assert_int_equal(nkey, 250);

    /* one long key spoils the whole command, as in memcached */
    snprintf(line, sizeof(line), "get a %s b\r\n", k251);
    expect_s(line, PARSE_EINVALID, fmt_err, NULL);
    snprintf(line, sizeof(line), "gat 1 %s\r\n", k251);
    expect_s(line, PARSE_EINVALID, fmt_err, NULL);
    /* key past the 24th token */
    size_t n = (size_t)snprintf(line, sizeof(line), "get");
    for (int i = 0; i < 30; i++)
        n += (size_t)snprintf(line + n, sizeof(line) - n, " k%d", i);
    snprintf(line + n, sizeof(line) - n, " %s\r\n", k251);
    expect_s(line, PARSE_EINVALID, fmt_err, NULL);
}

static void
test_gat(void **state)
{
    (void)state;
    struct text_req req;

    expect_s("gat 100 foo bar\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_GAT);
    assert_int_equal(req.exptime, 100);
    assert_int_equal(req.nkeys, 2);
    assert_mem(req.keys, req.keys_len, "foo bar");
    assert_mem(req.key, req.nkey, "foo");

    expect_s("gats -1 foo\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_GATS);
    assert_int_equal(req.exptime, -1);
    assert_int_equal(req.nkeys, 1);

    /* memcached answers "gat 10" with END: valid, no key */
    expect_s("gat 10\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.nkeys, 0);
    assert_null(req.keys);
    size_t cur = 0;
    const char *key;
    uint8_t nkey;
    assert_false(proto_text_next_key(&req, &cur, &key, &nkey));

    expect_s("gat abc foo\r\n", PARSE_EINVALID,
             "CLIENT_ERROR invalid exptime argument", NULL);
    expect_s("gat\r\n", PARSE_EINVALID, "ERROR", NULL);
    expect_s("get\r\n", PARSE_EINVALID, "ERROR", NULL);
    expect_s("get \r\n", PARSE_EINVALID, "ERROR", NULL);
    expect_s("gets\r\n", PARSE_EINVALID, "ERROR", NULL);
    expect_s("getx foo\r\n", PARSE_EINVALID, "ERROR", NULL);
}

/* ---- other classic commands ---- */

static void
test_delete(void **state)
{
    (void)state;
    struct text_req req;
    static const char usage[] = "CLIENT_ERROR bad command line format.  "
                                "Usage: delete <key> [noreply]";

    expect_s("delete k\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_DELETE);
    assert_mem(req.key, req.nkey, "k");
    assert_false(req.noreply);
    expect_s("delete k 0\r\n", PARSE_OK, NULL, &req);
    assert_false(req.noreply);
    expect_s("delete k noreply\r\n", PARSE_OK, NULL, &req);
    assert_true(req.noreply);
    expect_s("delete k 0 noreply\r\n", PARSE_OK, NULL, &req);
    assert_true(req.noreply);

    expect_s("delete k 1\r\n", PARSE_EINVALID, usage, NULL);
    expect_s("delete k 0 junk\r\n", PARSE_EINVALID, usage, NULL);
    expect_s("delete k 00\r\n", PARSE_EINVALID, usage, NULL);
    expect_s("delete k 1 noreply\r\n", PARSE_EINVALID, usage, &req);
    assert_true(req.noreply);
    expect_s("delete\r\n", PARSE_EINVALID, "ERROR", NULL);
    expect_s("delete a b c d\r\n", PARSE_EINVALID, "ERROR", NULL);

    char buf[300];
    memset(buf, 'x', sizeof(buf));
    memcpy(buf, "delete ", 7);
    memcpy(buf + 7 + 251, "\r\n", 2);
    expect(buf, 7 + 251 + 2, PARSE_EINVALID, 260, fmt_err, NULL);
}

static void
test_arith(void **state)
{
    (void)state;
    struct text_req req;
    static const char delta_err[] =
        "CLIENT_ERROR invalid numeric delta argument";

    expect_s("incr n 5\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_INCR);
    assert_mem(req.key, req.nkey, "n");
    assert_true(req.delta == 5);
    assert_false(req.noreply);
    expect_s("decr n 18446744073709551615 noreply\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_DECR);
    assert_true(req.delta == UINT64_MAX);
    assert_true(req.noreply);
    expect_s("incr n 1 junk\r\n", PARSE_OK, NULL, &req);
    assert_false(req.noreply);
    expect_s("incr n -0\r\n", PARSE_OK, NULL, &req);
    assert_true(req.delta == 0);

    expect_s("incr n -1\r\n", PARSE_EINVALID, delta_err, NULL);
    expect_s("incr n abc\r\n", PARSE_EINVALID, delta_err, NULL);
    expect_s("incr n 18446744073709551616\r\n", PARSE_EINVALID, delta_err,
             NULL);
    expect_s("decr n \t\r\n", PARSE_EINVALID, delta_err, NULL);
    expect_s("decr n x noreply\r\n", PARSE_EINVALID, delta_err, &req);
    assert_true(req.noreply);
    expect_s("incr n\r\n", PARSE_EINVALID, "ERROR", NULL);
    expect_s("incr n 1 2 3\r\n", PARSE_EINVALID, "ERROR", NULL);
    expect_s("incrx n 1\r\n", PARSE_EINVALID, "ERROR", NULL);
}

static void
test_touch(void **state)
{
    (void)state;
    struct text_req req;

    expect_s("touch k 10\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_TOUCH);
    assert_mem(req.key, req.nkey, "k");
    assert_int_equal(req.exptime, 10);
    expect_s("touch k -5 noreply\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.exptime, -5);
    assert_true(req.noreply);
    expect_s("touch k abc\r\n", PARSE_EINVALID,
             "CLIENT_ERROR invalid exptime argument", NULL);
    expect_s("touch k\r\n", PARSE_EINVALID, "ERROR", NULL);
}

static void
test_flush_all(void **state)
{
    (void)state;
    struct text_req req;
    static const char exp_err[] = "CLIENT_ERROR invalid exptime argument";

    expect_s("flush_all\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_FLUSH_ALL);
    assert_false(req.has_delay);
    assert_false(req.noreply);
    expect_s("flush_all 10\r\n", PARSE_OK, NULL, &req);
    assert_true(req.has_delay);
    assert_int_equal(req.delay, 10);
    expect_s("flush_all noreply\r\n", PARSE_OK, NULL, &req);
    assert_false(req.has_delay);
    assert_true(req.noreply);
    expect_s("flush_all 0 noreply\r\n", PARSE_OK, NULL, &req);
    assert_true(req.has_delay);
    assert_int_equal(req.delay, 0);
    assert_true(req.noreply);
    expect_s("flush_all -1\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.delay, -1);
    /* memcached ignores the second argument when it is not noreply */
    expect_s("flush_all 10 20\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.delay, 10);
    assert_false(req.noreply);

    expect_s("flush_all foo\r\n", PARSE_EINVALID, exp_err, NULL);
    expect_s("flush_all noreply noreply\r\n", PARSE_EINVALID, exp_err, &req);
    assert_true(req.noreply);
    expect_s("flush_all 0 noreply junk\r\n", PARSE_EINVALID, "ERROR", NULL);
}

static void
test_misc_commands(void **state)
{
    (void)state;
    struct text_req req;

    expect_s("version\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_VERSION);
    expect_s("version foo bar\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_VERSION);
    expect_s("quit\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_QUIT);
    expect_s("quit now\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_QUIT);

    expect_s("stats\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_STATS);
    assert_int_equal(req.arglen, 0);
    expect_s("stats settings\r\n", PARSE_OK, NULL, &req);
    assert_mem(req.arg, req.arglen, "settings");
    expect_s("stats  detail on  \r\n", PARSE_OK, NULL, &req);
    assert_mem(req.arg, req.arglen, "detail on");

    expect_s("verbosity 1\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_VERBOSITY);
    assert_int_equal(req.level, 1);
    assert_false(req.noreply);
    expect_s("verbosity 2 noreply\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.level, 2);
    assert_true(req.noreply);
    expect_s("verbosity abc\r\n", PARSE_EINVALID, fmt_err, NULL);
    /* memcached keeps the low 32 bits of a level */
    expect_s("verbosity 4294967297\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.level, 1);
    expect_s("verbosity -1\r\n", PARSE_EINVALID, fmt_err, NULL);
    expect_s("verbosity\r\n", PARSE_EINVALID, "ERROR", NULL);
    expect_s("verbosity 1 2 3\r\n", PARSE_EINVALID, "ERROR", NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_keys),
        cmocka_unit_test(test_get_many_keys),
        cmocka_unit_test(test_get_key_length),
        cmocka_unit_test(test_gat),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_arith),
        cmocka_unit_test(test_touch),
        cmocka_unit_test(test_flush_all),
        cmocka_unit_test(test_misc_commands),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
