/*
 * test_proto_text_stream.c: protocol/proto_text.c fed streams rather than
 * single requests: unknown commands and junk, over-long lines, pipelines,
 * random garbage (every result must be consistent) and truncated input.
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

#include "protocol/proto_text.h"
#include "tests/unit/proto_text_helpers.h"

/* ---- junk ---- */

static void
test_unknown_and_junk(void **state)
{
    (void)state;
    struct text_req req;

    static const char *errors[] = {
        "\r\n", "\n", " \r\n", "x\r\n", "r\r\n", "GET k\r\n", "foo bar\r\n",
        "shutdownx\r\n", "slab reassign 1 2\r\n", "mz k\r\n", "m\r\n",
        "mgx k\r\n", "sets k\r\n", "\x80\x01\x02\r\n", "\xff\xfe\r\n",
        "mg\r\n", "ms\r\n", "md\r\n", "ma\r\n", "\t\r\n",
    };
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
        expect_s(errors[i], PARSE_EINVALID, "ERROR", &req);
    expect_s("bogus\r\n", PARSE_EINVALID, "ERROR", &req);
    assert_int_equal(req.cmd, TEXT_UNKNOWN);

    /* administration commands carry their arguments */
    static const struct { const char *line; enum text_cmd cmd; const char *arg; } admin[] = {
        { "shutdown\r\n", TEXT_SHUTDOWN, "" },
        { "shutdown graceful\r\n", TEXT_SHUTDOWN, "graceful" },
        { "slabs reassign 1 2 \r\n", TEXT_SLABS, "reassign 1 2" },
        { "cache_memlimit 100 noreply\r\n", TEXT_CACHE_MEMLIMIT, "100 noreply" },
        { "lru_crawler metadump all\r\n", TEXT_LRU_CRAWLER, "metadump all" },
        { "lru mode flat\r\n", TEXT_LRU, "mode flat" },
        { "debugtime 3\r\n", TEXT_DEBUGTIME, "3" },
    };
    for (size_t i = 0; i < sizeof(admin) / sizeof(admin[0]); i++) {
        size_t n = strlen(admin[i].line);
        expect(admin[i].line, n, PARSE_OK, n, NULL, &req);
        assert_int_equal(req.cmd, admin[i].cmd);
        assert_mem(req.arg, req.arglen, admin[i].arg);
    }

    /* a NUL ends the line for memcached (it handles a C string) */
    expect("get k\0junk\r\n", 12, PARSE_OK, 12, NULL, &req);
    assert_int_equal(req.nkeys, 1);
    assert_mem(req.keys, req.keys_len, "k");
    expect("ver\0sion\r\n", 10, PARSE_EINVALID, 10, "ERROR", NULL);
    expect("set k 0 0 1\0zz\r\nx\r\n", 19, PARSE_OK, 19, NULL, &req);
    assert_int_equal(req.vlen, 1);
    expect("\0\r\n", 3, PARSE_EINVALID, 3, "ERROR", NULL);

    /* an HTTP request is dropped without a reply */
    expect("GET / HTTP/1.1\r\n", 16, PARSE_EFATAL, 0, "", NULL);
    expect("HTTP/1.0\r\n", 10, PARSE_EFATAL, 0, "", NULL);
    expect("POST /x HTTP/1.1\r\n", 18, PARSE_EFATAL, 0, "", NULL);
    /* ...but not when the command is one memcached knows the branch of */
    expect_s("get / HTTP/1.1\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.nkeys, 2);
    expect_s("set / HTTP/1.1\r\n", PARSE_EINVALID, "ERROR", NULL);
}

static void
test_line_too_long(void **state)
{
    (void)state;
    size_t big = PROTO_TEXT_GET_LINE_MAX + 100;
    char *buf = malloc(big);
    struct text_req req;
    size_t consumed;
    const char *errmsg;
    assert_non_null(buf);

    /* up to PROTO_TEXT_LINE_MAX bytes without a newline: wait */
    memset(buf, 'x', big);
    assert_int_equal(parse_n(&req, buf, PROTO_TEXT_LINE_MAX, MAX_VALUE,
                             &consumed, &errmsg), PARSE_EUNFIN);
    assert_int_equal(parse_n(&req, buf, PROTO_TEXT_LINE_MAX + 1, MAX_VALUE,
                             &consumed, &errmsg), PARSE_EFATAL);
    assert_string_equal(errmsg, "CLIENT_ERROR line too long");
    assert_int_equal(consumed, 0);
    /* a line of exactly PROTO_TEXT_LINE_MAX bytes is parsed */
    buf[PROTO_TEXT_LINE_MAX] = '\n';
    assert_int_equal(parse_n(&req, buf, PROTO_TEXT_LINE_MAX + 1, MAX_VALUE,
                             &consumed, &errmsg), PARSE_EINVALID);
    assert_string_equal(errmsg, "ERROR");
    assert_int_equal(consumed, PROTO_TEXT_LINE_MAX + 1);
    /* one more byte: refused even with its newline */
    buf[PROTO_TEXT_LINE_MAX] = 'x';
    buf[PROTO_TEXT_LINE_MAX + 1] = '\n';
    assert_int_equal(parse_n(&req, buf, PROTO_TEXT_LINE_MAX + 2, MAX_VALUE,
                             &consumed, &errmsg), PARSE_EFATAL);
    /* the same for a set line */
    memcpy(buf, "set k 0 0 1", 11);
    assert_int_equal(parse_n(&req, buf, PROTO_TEXT_LINE_MAX + 1, MAX_VALUE,
                             &consumed, &errmsg), PARSE_EFATAL);

    /* get/gets/gat/gats lines may be long */
    static const char *prefixes[] = { "get", "gets", "gat 0", "gats 0",
                                       "   get" };
    static const enum text_cmd cmds[] = { TEXT_GET, TEXT_GETS, TEXT_GAT,
                                          TEXT_GATS, TEXT_GET };
    for (size_t p = 0; p < 5; p++) {
        size_t n = (size_t)sprintf(buf, "%s", prefixes[p]);
        unsigned nk = 0;
        while (n < 100000) {
            n += (size_t)sprintf(buf + n, " key_number_%u", nk);
            nk++;
        }
        assert_int_equal(parse_n(&req, buf, n, MAX_VALUE, &consumed, &errmsg),
                         PARSE_EUNFIN);
        buf[n++] = '\r';
        assert_int_equal(parse_n(&req, buf, n, MAX_VALUE, &consumed, &errmsg),
                         PARSE_EUNFIN);
        buf[n++] = '\n';
        assert_int_equal(parse_n(&req, buf, n, MAX_VALUE, &consumed, &errmsg),
                         PARSE_OK);
        assert_int_equal(req.cmd, cmds[p]);
        assert_int_equal(consumed, n);
        assert_int_equal(req.nkeys, nk);
    }

    /* ...up to PROTO_TEXT_GET_LINE_MAX */
    memset(buf, 'k', big);
    memcpy(buf, "get ", 4);
    for (size_t i = 100; i < big; i += 100)
        buf[i] = ' ';
    assert_int_equal(parse_n(&req, buf, PROTO_TEXT_GET_LINE_MAX, MAX_VALUE,
                             &consumed, &errmsg), PARSE_EUNFIN);
    assert_int_equal(parse_n(&req, buf, PROTO_TEXT_GET_LINE_MAX + 1,
                             MAX_VALUE, &consumed, &errmsg), PARSE_EFATAL);
    assert_string_equal(errmsg, "CLIENT_ERROR line too long");

    /* more than 100 leading spaces: memcached no longer sees a get */
    memset(buf, ' ', 101);
    memcpy(buf + 101, "get ", 4);
    memset(buf + 105, 'k', 3000);
    assert_int_equal(parse_n(&req, buf, 3105, MAX_VALUE, &consumed, &errmsg),
                     PARSE_EFATAL);
    memset(buf, ' ', 100);
    memcpy(buf + 100, "get ", 4);
    for (size_t i = 104; i < 3104; i++)
        buf[i] = (i % 10) ? 'k' : ' ';
    assert_int_equal(parse_n(&req, buf, 3104, MAX_VALUE, &consumed, &errmsg),
                     PARSE_EUNFIN);
    free(buf);
}

/* ---- streams ---- */

static void
test_pipeline(void **state)
{
    (void)state;
    static const char stream[] =
        "set a 0 0 1\r\n1\r\n"
        "get a b c\r\n"
        "bogus\r\n"
        "ms m 2 T0\r\nhi\r\n"
        "set x 0 0 3\r\nabcdef\r\n"   /* bad chunk; "f\r\n" is next */
        "incr a 5 noreply\n"
        "mg m v\r\n"
        "ms m 2 Z\r\nzz\r\n"          /* swallowed */
        "delete a\r\n"
        "mn\r\n"
        "quit\r\n";
    static const struct { proto_parse rc; enum text_cmd cmd; } want[] = {
        { PARSE_OK, TEXT_SET }, { PARSE_OK, TEXT_GET },
        { PARSE_EINVALID, TEXT_UNKNOWN }, { PARSE_OK, TEXT_MS },
        { PARSE_EINVALID, TEXT_SET }, { PARSE_EINVALID, TEXT_UNKNOWN },
        { PARSE_OK, TEXT_INCR }, { PARSE_OK, TEXT_MG },
        { PARSE_EINVALID, TEXT_MS }, { PARSE_OK, TEXT_DELETE },
        { PARSE_OK, TEXT_MN }, { PARSE_OK, TEXT_QUIT },
    };
    size_t len = sizeof(stream) - 1;
    size_t off = 0;
    struct text_req req;
    size_t consumed;
    const char *errmsg;

    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        proto_parse rc = proto_text_parse_req(&req, stream + off, len - off,
                                              MAX_VALUE, &consumed, &errmsg);
        assert_int_equal(rc, want[i].rc);
        assert_int_equal(req.cmd, want[i].cmd);
        assert_true(consumed > 0 && consumed <= len - off);
        off += consumed;
    }
    assert_int_equal(off, len);
    assert_int_equal(proto_text_parse_req(&req, stream + off, 0, MAX_VALUE,
                                          &consumed, &errmsg), PARSE_EUNFIN);

    /* byte by byte: same answers, each request seen complete exactly once */
    size_t have = 0;
    off = 0;
    size_t seen = 0;
    while (have < len) {
        have++;
        proto_parse rc;
        while ((rc = proto_text_parse_req(&req, stream + off, have - off,
                                          MAX_VALUE, &consumed, &errmsg))
               != PARSE_EUNFIN) {
            assert_int_equal(rc, want[seen].rc);
            assert_int_equal(req.cmd, want[seen].cmd);
            seen++;
            off += consumed;
        }
        assert_int_equal(consumed, 0);
    }
    assert_int_equal(seen, sizeof(want) / sizeof(want[0]));
    assert_int_equal(off, len);
}

static void
check_stream(const char *buf, size_t len)
{
    size_t off = 0;
    struct text_req req;
    size_t consumed;
    const char *errmsg;

    while (off < len) {
        proto_parse rc = parse_n(&req, buf + off, len - off, 4096, &consumed,
                                 &errmsg);
        if (rc == PARSE_EUNFIN || rc == PARSE_EFATAL) {
            assert_int_equal(consumed, 0);
            if (rc == PARSE_EFATAL)
                assert_non_null(errmsg);
            return;
        }
        assert_true(consumed > 0 && consumed <= len - off);
        if (rc == PARSE_EINVALID)
            assert_non_null(errmsg);
        if (rc == PARSE_OK) {
            assert_null(errmsg);
            if (req.key != NULL && req.key != req.meta.key_buf) {
                assert_true(req.nkey <= PROTO_KEY_MAX);
                assert_true(req.key >= buf + off &&
                            req.key + req.nkey <= buf + off + consumed);
            }
            size_t cur = 0;
            const char *key;
            uint8_t nkey;
            unsigned n = 0;
            while (proto_text_next_key(&req, &cur, &key, &nkey)) {
                assert_true(nkey > 0 && nkey <= PROTO_KEY_MAX);
                assert_true(key >= buf + off &&
                            key + nkey <= buf + off + consumed);
                n++;
            }
            assert_int_equal(n, req.nkeys);
        }
        off += consumed;
        if (rc == PARSE_EOVERSIZE) {
            if ((size_t)req.vlen + 2 >= len - off)
                return;
            off += req.vlen + 2;
        }
    }
}

static void
test_garbage(void **state)
{
    (void)state;
    static const char *words[] = {
        "get", "gets", "gat", "gats", "set", "add", "cas", "replace",
        "append", "prepend", "delete", "incr", "decr", "touch", "flush_all",
        "stats", "version", "verbosity", "quit", "mg", "ms", "md", "ma", "mn",
        "me", "noreply", "0", "1", "-1", "4294967296", "k", "v", "T5", "q",
        "O1", "MS", " ", "  ", "\r\n", "\n", "\r", "\0", "\t", "\x80", "HTTP/",
        "99999999999999999999", "3",
    };
    size_t nwords = sizeof(words) / sizeof(words[0]);
    char buf[4096];
    uint64_t seed = 0x9e3779b97f4a7c15ull;

    /* random bytes */
    for (int round = 0; round < 300; round++) {
        size_t len = junk_next(&seed) % sizeof(buf);
        for (size_t i = 0; i < len; i++)
            buf[i] = (char)junk_next(&seed);
        check_stream(buf, len);
    }
    /* random sentences of protocol words */
    for (int round = 0; round < 3000; round++) {
        size_t len = 0;
        size_t nw = junk_next(&seed) % 40;
        for (size_t w = 0; w < nw; w++) {
            const char *word = words[junk_next(&seed) % nwords];
            size_t n = word[0] ? strlen(word) : 1;
            if (len + n + 1 > sizeof(buf))
                break;
            memcpy(buf + len, word, n);
            len += n;
            if (junk_next(&seed) % 3)
                buf[len++] = ' ';
        }
        check_stream(buf, len);
    }
}

/* Truncated requests of every kind: all prefixes wait for more. */
static void
test_truncated(void **state)
{
    (void)state;
    static const char *reqs[] = {
        "get a\r\n", "gets a b\r\n", "gat 1 a\r\n", "gats 1 a\r\n",
        "set k 0 0 5\r\nhello\r\n", "add k 0 0 0\r\n\r\n",
        "replace k 1 2 3 noreply\r\nabc\r\n", "append k 0 0 1\r\nx\r\n",
        "prepend k 0 0 1\r\nx\r\n", "cas k 0 0 1 9\r\nx\r\n",
        "delete k\r\n", "incr k 1\r\n", "decr k 1\r\n", "touch k 1\r\n",
        "flush_all\r\n", "stats\r\n", "version\r\n", "verbosity 1\r\n",
        "quit\r\n", "mg k v\r\n", "ms k 3 T1\r\nabc\r\n", "md k\r\n",
        "ma k\r\n", "mn\r\n", "me k\r\n",
        "bogus\r\n", "set k 0 0 3\r\nabcde", "ms k 2 Z\r\nzz\r\n",
    };
    struct text_req req;
    size_t consumed;
    const char *errmsg;

    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        size_t len = strlen(reqs[i]);
        proto_parse rc = parse_n(&req, reqs[i], len, MAX_VALUE, &consumed,
                                 &errmsg);
        assert_true(rc == PARSE_OK || rc == PARSE_EINVALID);
        assert_int_equal(consumed, len);
        assert_prefixes_unfin(reqs[i], len, MAX_VALUE);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_and_junk),
        cmocka_unit_test(test_line_too_long),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_truncated),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
