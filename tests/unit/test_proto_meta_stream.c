/*
 * test_proto_meta_stream.c: protocol/proto_meta.c fed more than one line:
 * ms values, pipelines byte by byte, truncated and over-long input, and
 * random garbage (every result must be consistent).
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "protocol/proto_meta.h"
#include "tests/unit/proto_meta_helpers.h"

/* ---- streams ---- */

static void
test_ms_value(void **state)
{
    (void)state;
    struct meta_req req;
    size_t consumed;
    const char *errmsg;

    expect_ok(&req, "ms foo 5 T0 F5 c k O123 MS C99 I q\r\nhello\r\n");
    assert_memory_equal(req.value, "hello\r\n", 7);
    assert_int_equal(req.vlen, 5);
    assert_true(req.quiet);
    assert_order(&req, "TckO");

    /* the value may hold anything, "\r\n" included */
    expect_ok(&req, "ms foo 4\r\n\r\n\r\n\r\n");
    assert_memory_equal(req.value, "\r\n\r\n", 4);

    /* bad chunk: the vlen + 2 bytes are read, the error sent even with q */
    expect_err("ms foo 2 q\r\nhix\r", "CLIENT_ERROR bad data chunk");
    expect_err("ms foo 2\r\nhiXY", "CLIENT_ERROR bad data chunk");
    /* a flag error swallows the value unread */
    expect_err("ms foo 2 Z\r\nhiXY", invalid_err);
    expect_err("ms foo 2 q Z\r\nhi\r\n", invalid_err);

    /* what follows is not ours */
    const char *two = "ms foo 2\r\nhi\r\nmn\r\n";
    expect(&req, two, strlen(two), PARSE_OK, 14, NULL);

    /* oversize: the line is consumed, the caller skips vlen + 2 */
    assert_int_equal(parse(&req, "ms foo 5000\r\n", 13, 4096, &consumed,
                           &errmsg), PARSE_EOVERSIZE);
    assert_int_equal(consumed, 13);
    assert_int_equal(req.vlen, 5000);
    assert_null(errmsg);
    assert_int_equal(parse(&req, "ms foo 4096\r\n", 13, 4096, &consumed,
                           &errmsg), PARSE_EUNFIN);
    /* a flag error wins over the size, as memcached checks it first */
    assert_int_equal(parse(&req, "ms foo 5000 q Z\r\n", 17, 4096, &consumed,
                           &errmsg), PARSE_EOVERSIZE);
    assert_int_equal(consumed, 17);
    assert_string_equal(errmsg, invalid_err);
    assert_false(req.quiet);
    assert_int_equal(parse(&req, "ms foo 5000 q\r\n", 15, 4096, &consumed,
                           &errmsg), PARSE_EOVERSIZE);
    assert_null(errmsg);
    assert_false(req.quiet);
}

static void
test_pipeline(void **state)
{
    (void)state;
    static const char stream[] =
        "mg a v\r\n"
        "ms m 2 T0\r\nhi\r\n"
        "bogus\r\n"
        "ms m 2 Z\r\nzz\r\n"          /* swallowed */
        "md m q\n"
        "ms x 3\r\nabcdef\r\n"        /* bad chunk; "f\r\n" is next */
        "ma n N0 J5 v\r\n"
        "me m\r\n"
        "mn\r\n";
    static const struct { proto_parse rc; enum meta_cmd cmd; } want[] = {
        { PARSE_OK, META_MG }, { PARSE_OK, META_MS },
        { PARSE_EINVALID, META_NONE }, { PARSE_EINVALID, META_MS },
        { PARSE_OK, META_MD }, { PARSE_EINVALID, META_MS },
        { PARSE_EINVALID, META_NONE }, { PARSE_OK, META_MA },
        { PARSE_OK, META_ME }, { PARSE_OK, META_MN },
    };
    size_t nwant = sizeof(want) / sizeof(want[0]);
    size_t len = sizeof(stream) - 1;
    struct meta_req req;
    size_t consumed;
    const char *errmsg;

    /* byte by byte: each request seen complete exactly once */
    size_t have = 0, off = 0, seen = 0;
    while (have < len) {
        have++;
        proto_parse rc;
        while ((rc = proto_meta_parse_req(&req, stream + off, have - off,
                                          MAX_VALUE, &consumed, &errmsg))
               != PARSE_EUNFIN) {
            assert_true(seen < nwant);
            assert_int_equal(rc, want[seen].rc);
            assert_int_equal(req.cmd, want[seen].cmd);
            assert_true(consumed > 0);
            seen++;
            off += consumed;
        }
        assert_int_equal(consumed, 0);
    }
    assert_int_equal(seen, nwant);
    assert_int_equal(off, len);
}

/* Truncated requests of every kind: all prefixes wait for more. */
static void
test_truncated(void **state)
{
    (void)state;
    static const char *reqs[] = {
        "mg k v\r\n", "mg k s v f t c k Oop q h l u T30 N30 R5 P L I\r\n",
        "ms k 3 T1\r\nabc\r\n", "ms k 0\r\n\r\n", "md k q C5 I T30\r\n",
        "ma k N0 J5 D3 MD v\r\n", "mn\r\n", "me k\r\n", "me YWJj b\r\n",
        "mg YWJj b k\r\n", "ms k 2 Z\r\nzz\r\n", "ms k 2\r\nzzzz",
        "mg k Z\r\n", "bogus\r\n", "\n",
    };
    struct meta_req req;
    size_t consumed;
    const char *errmsg;

    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        size_t len = strlen(reqs[i]);
        proto_parse rc = parse(&req, reqs[i], len, MAX_VALUE, &consumed,
                               &errmsg);
        assert_true(rc == PARSE_OK || rc == PARSE_EINVALID);
        assert_int_equal(consumed, len);
        assert_prefixes_unfin(reqs[i], len);
    }
}

static void
test_line_too_long(void **state)
{
    (void)state;
    char *buf = malloc(4096);
    struct meta_req req;
    size_t consumed;
    const char *errmsg;

    assert_non_null(buf);
    memcpy(buf, "mg ", 3);
    memset(buf + 3, 'k', 4093);
    assert_int_equal(parse(&req, buf, PROTO_META_LINE_MAX, MAX_VALUE,
                           &consumed, &errmsg), PARSE_EUNFIN);
    assert_int_equal(parse(&req, buf, PROTO_META_LINE_MAX + 1, MAX_VALUE,
                           &consumed, &errmsg), PARSE_EFATAL);
    assert_string_equal(errmsg, "CLIENT_ERROR line too long");
    assert_int_equal(consumed, 0);
    /* a newline as the 2049th byte still ends a line */
    buf[PROTO_META_LINE_MAX] = '\n';
    assert_int_equal(parse(&req, buf, 4096, MAX_VALUE, &consumed, &errmsg),
                     PARSE_EINVALID);
    assert_string_equal(errmsg, fmt_err);   /* the key is too long */
    assert_int_equal(consumed, PROTO_META_LINE_MAX + 1);
    free(buf);
}

/* xorshift: the same junk on every run */
static uint64_t
junk_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static bool
inside(const char *p, size_t n, const char *lo, const char *hi)
{
    return p >= lo && p <= hi && n <= (size_t)(hi - p);
}

/* Whatever the parser hands out, the composers take. */
static void
compose_all(const struct meta_req *req)
{
    struct meta_rsp rsp = {
        .vlen = UINT32_MAX, .cas = UINT64_MAX, .client_flags = UINT32_MAX,
        .ttl = INT64_MIN, .ttl_after_set = INT64_MIN,
        .ttl_after_vivify = INT64_MIN, .last_access = UINT32_MAX,
        .hit_before = true, .vivified = true, .won = true, .stale = true,
        .won_by_other = true,
    };
    char out[PROTO_META_RSP_MAX + 1];

    for (int st = META_RSP_VA; st <= META_RSP_MN; st++) {
        for (int with = 0; with < 2; with++) {
            out[PROTO_META_RSP_MAX] = '#';
            size_t n = proto_meta_compose_rsp(out, req, st,
                                              with ? &rsp : NULL);
            assert_true(n >= 4 && n <= PROTO_META_RSP_MAX);
            assert_int_equal(out[PROTO_META_RSP_MAX], '#');
            assert_memory_equal(out + n - 2, "\r\n", 2);
        }
    }
}

static void
check_stream(const char *buf, size_t len)
{
    size_t off = 0;
    struct meta_req req;
    size_t consumed;
    const char *errmsg;

    while (off < len) {
        proto_parse rc = proto_meta_parse_req(&req, buf + off, len - off,
                                              4096, &consumed, &errmsg);
        const char *start = buf + off;
        if (rc == PARSE_EUNFIN || rc == PARSE_EFATAL) {
            assert_int_equal(consumed, 0);
            if (rc == PARSE_EFATAL)
                assert_non_null(errmsg);
            return;
        }
        assert_true(consumed > 0 && consumed <= len - off);
        if (rc == PARSE_EINVALID)
            assert_true(errmsg != NULL && errmsg[0] != '\0');
        if (rc == PARSE_OK) {
            assert_null(errmsg);
            if (req.key != NULL) {
                assert_true(req.nkey <= PROTO_KEY_MAX);
                assert_true(inside(req.key, req.nkey, start,
                                   start + consumed) ||
                            (req.key_binary && req.key == req.key_buf));
            }
            if (req.has_opaque) {
                assert_true(req.nopaque <= PROTO_META_OPAQUE_MAX);
                assert_true(inside(req.opaque, req.nopaque, start,
                                   start + consumed));
            }
            if (req.value != NULL)
                assert_true(req.value + req.vlen + 2 == start + consumed);
            for (unsigned i = 0; i < req.nret_order; i++)
                assert_non_null(strchr("stcflhOkTNR", req.ret_order[i]));
            compose_all(&req);
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
        "mg", "ms", "md", "ma", "mn", "me", "k", "v", "b", "c", "f", "h", "l",
        "s", "t", "u", "q", "I", "P", "L", "T5", "N0", "R30", "C1", "F2",
        "J3", "D4", "MS", "MD", "ME", "M", "O1", "Oabc", "YWJj", "44OG",
        "0", "1", "2", "-1", "4294967296", "99999999999999999999", " ", "  ",
        "\r\n", "\n", "\r", "\0", "\t", "\x80", "hi", "=", "E", "x", "S",
    };
    size_t nwords = sizeof(words) / sizeof(words[0]);
    char buf[4096];
    uint64_t seed = 0x9e3779b97f4a7c15ull;

    for (int round = 0; round < 300; round++) {
        size_t len = junk_next(&seed) % sizeof(buf);
        for (size_t i = 0; i < len; i++)
            buf[i] = (char)junk_next(&seed);
        check_stream(buf, len);
    }
    for (int round = 0; round < 5000; round++) {
        size_t len = 0;
        size_t nw = junk_next(&seed) % 30;
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_ms_value, teardown),
        cmocka_unit_test_teardown(test_pipeline, teardown),
        cmocka_unit_test_teardown(test_truncated, teardown),
        cmocka_unit_test_teardown(test_line_too_long, teardown),
        cmocka_unit_test_teardown(test_garbage, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
