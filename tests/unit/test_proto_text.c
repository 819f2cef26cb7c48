/*
 * test_proto_text.c: unit tests for protocol/proto_text.c.
 *
 * Requests are composed as strings and parsed back field by field; every
 * request is also fed at every split point (each prefix must be PARSE_EUNFIN
 * with nothing consumed), in a pipeline, and garbage, oversize, truncated and
 * over-long input is fed. Expected error lines were checked against
 * memcached 1.6.18 (see the report of this module for the list).
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/proto_text.h"

#define MAX_VALUE (1024 * 1024)

static const char fmt_err[] = "CLIENT_ERROR bad command line format";

/* Parses a copy of buf[0..len) held in a buffer of exactly len bytes, so
 * AddressSanitizer catches a read past the end. */
static proto_parse
parse_n(struct text_req *req, const char *buf, size_t len, uint32_t max_value,
        size_t *consumed, const char **errmsg)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, buf, len);
    proto_parse rc = proto_text_parse_req(req, copy, len, max_value, consumed,
                                          errmsg);
    /* Pointers into the copy would dangle: rebase them on buf. */
    if (req->key != NULL && req->key != req->meta.key_buf)
        req->key = buf + (req->key - copy);
    if (req->keys != NULL)
        req->keys = buf + (req->keys - copy);
    if (req->value != NULL)
        req->value = buf + (req->value - copy);
    if (req->arg != NULL)
        req->arg = buf + (req->arg - copy);
    /* a base64 key lives in req->meta.key_buf and stays */
    if (req->meta.key != NULL && req->meta.key != req->meta.key_buf)
        req->meta.key = buf + (req->meta.key - copy);
    if (req->meta.opaque != NULL)
        req->meta.opaque = buf + (req->meta.opaque - copy);
    if (req->meta.value != NULL)
        req->meta.value = buf + (req->meta.value - copy);
    free(copy);
    return rc;
}

/* Copies a request; a base64 meta key points into the struct itself. */
static void
copy_req(struct text_req *to, const struct text_req *from)
{
    *to = *from;
    if (from->meta.key == from->meta.key_buf)
        to->meta.key = to->meta.key_buf;
    if (from->key == from->meta.key_buf)
        to->key = to->meta.key_buf;
}

static void
assert_mem(const char *got, size_t ngot, const char *want)
{
    assert_int_equal(ngot, strlen(want));
    assert_memory_equal(got, want, ngot);
}

/* Every strict prefix of buf[0..whole) is "need more bytes". */
static void
assert_prefixes_unfin(const char *buf, size_t whole, uint32_t max_value)
{
    struct text_req req;
    size_t consumed;
    const char *errmsg;

    for (size_t i = 0; i < whole; i++) {
        consumed = 12345;
        proto_parse rc = parse_n(&req, buf, i, max_value, &consumed, &errmsg);
        if (rc != PARSE_EUNFIN)
            fail_msg("prefix %zu of %zu of \"%.*s\": rc %d", i, whole,
                     (int)(whole > 60 ? 60 : whole), buf, rc);
        assert_int_equal(consumed, 0);
    }
}

/* Parses s (whole, plus trailing bytes that must not matter) and checks rc,
 * consumed and errmsg; then checks every prefix. */
static void
expect(const char *s, size_t len, proto_parse want_rc, size_t want_consumed,
       const char *want_err, struct text_req *out)
{
    struct text_req req;
    size_t consumed;
    const char *errmsg;
    proto_parse rc = parse_n(&req, s, len, MAX_VALUE, &consumed, &errmsg);

    if (rc != want_rc)
        fail_msg("\"%.*s\": rc %d want %d (err %s)", (int)(len > 80 ? 80 : len),
                 s, rc, want_rc, errmsg ? errmsg : "-");
    assert_int_equal(consumed, want_consumed);
    if (want_err == NULL)
        assert_null(errmsg);
    else
        assert_string_equal(errmsg, want_err);
    if (want_rc != PARSE_EFATAL && want_rc != PARSE_EUNFIN)
        assert_prefixes_unfin(s, want_consumed, MAX_VALUE);
    if (out != NULL)
        copy_req(out, &req);
}

/* A whole request s: rc, consumed = strlen(s). */
static void
expect_s(const char *s, proto_parse want_rc, const char *want_err,
         struct text_req *out)
{
    expect(s, strlen(s), want_rc, strlen(s), want_err, out);
}

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

/* ---- storage ---- */

struct storage_case {
    const char *name;
    enum text_cmd cmd;
};

static const struct storage_case storage_cmds[] = {
    { "set", TEXT_SET }, { "add", TEXT_ADD }, { "replace", TEXT_REPLACE },
    { "append", TEXT_APPEND }, { "prepend", TEXT_PREPEND }, { "cas", TEXT_CAS },
};

static size_t
compose_storage(char *out, size_t outlen, const char *cmd, const char *key,
                uint32_t flags, int64_t exptime, const char *value,
                size_t vlen, uint64_t cas, bool noreply)
{
    size_t n = (size_t)snprintf(out, outlen, "%s %s %" PRIu32 " %" PRId64
                                " %zu", cmd, key, flags, exptime, vlen);
    if (strcmp(cmd, "cas") == 0)
        n += (size_t)snprintf(out + n, outlen - n, " %" PRIu64, cas);
    n += (size_t)snprintf(out + n, outlen - n, "%s\r\n",
                          noreply ? " noreply" : "");
    assert_true(n + vlen + 2 <= outlen);
    memcpy(out + n, value, vlen);
    memcpy(out + n + vlen, "\r\n", 2);
    return n + vlen + 2;
}

static void
test_storage_roundtrip(void **state)
{
    (void)state;
    static const struct { const char *p; size_t n; } values[] = {
        { "", 0 }, { "v", 1 }, { "hello world", 11 }, { "a\r\nb\r\n", 6 },
        { "\0\1\2\n", 4 }, { "\r\n", 2 },
    };
    char buf[512];
    struct text_req req;

    for (size_t c = 0; c < sizeof(storage_cmds) / sizeof(storage_cmds[0]);
         c++) {
        for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
            for (int noreply = 0; noreply < 2; noreply++) {
                size_t n = compose_storage(buf, sizeof(buf),
                                           storage_cmds[c].name, "the_key",
                                           4294967295u, -30, values[v].p,
                                           values[v].n,
                                           18446744073709551615ull, noreply);
                expect(buf, n, PARSE_OK, n, NULL, &req);
                assert_int_equal(req.cmd, storage_cmds[c].cmd);
                assert_mem(req.key, req.nkey, "the_key");
                assert_int_equal(req.flags, 4294967295u);
                assert_int_equal(req.exptime, -30);
                assert_int_equal(req.vlen, values[v].n);
                if (values[v].n > 0)
                    assert_memory_equal(req.value, values[v].p, values[v].n);
                assert_memory_equal(req.value + req.vlen, "\r\n", 2);
                assert_int_equal(req.noreply, noreply);
                if (storage_cmds[c].cmd == TEXT_CAS)
                    assert_true(req.cas_unique == 18446744073709551615ull);
                else
                    assert_true(req.cas_unique == 0);
            }
        }
    }

    /* a value that contains what looks like commands */
    expect_s("set k 1 2 13\r\nget x\r\nquit\r\n\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.vlen, 13);
    assert_memory_equal(req.value, "get x\r\nquit\r\n", 13);

    /* line ended with a bare \n; value is still vlen + "\r\n" */
    expect_s("set k 0 0 2\nab\r\n", PARSE_OK, NULL, &req);
    assert_memory_equal(req.value, "ab", 2);

    /* memcached ignores one extra token after the numbers */
    expect_s("set k 0 0 1 junk\r\nx\r\n", PARSE_OK, NULL, &req);
    assert_false(req.noreply);
    expect_s("cas k 0 0 1 5 junk\r\nx\r\n", PARSE_OK, NULL, &req);
    assert_true(req.cas_unique == 5);
}

static void
test_storage_numbers(void **state)
{
    (void)state;
    struct text_req req;

    /* safe_strto*() rules: sign, leading and trailing whitespace */
    expect_s("set k +5 0 1\r\nx\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.flags, 5);
    expect_s("set k \t5 0 1\r\nx\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.flags, 5);
    expect_s("set k 5\tjunk 0 1\r\nx\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.flags, 5);
    expect_s("set k 0 0 1\t\r\nx\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.vlen, 1);
    expect_s("set k 0 0 1\r\r\nx\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.vlen, 1);
    expect_s("set k 0 0 01\r\nx\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.vlen, 1);
    expect_s("set k 0 0 -0\r\n\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.vlen, 0);
    /* strtoul wraps "-N": memcached keeps 1 here */
    expect_s("set k -18446744073709551615 0 1\r\nx\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.flags, 1);
    expect_s("set k 0 -9223372036854775808 1\r\nx\r\n", PARSE_OK, NULL, &req);
    assert_true(req.exptime == INT64_MIN);
    expect_s("set k 0 9223372036854775807 1\r\nx\r\n", PARSE_OK, NULL, &req);
    assert_true(req.exptime == INT64_MAX);
    expect_s("set k 0 2147483648 1\r\nx\r\n", PARSE_OK, NULL, &req);
    assert_true(req.exptime == 2147483648);

    /* bad numbers: CLIENT_ERROR, line consumed, value left to be parsed as
     * a command (memcached then answers it with ERROR) */
    static const char *bad[] = {
        "set k 4294967296 0 1\r\n",            /* flags over 32 bits */
        "set k 99999999999999999999 0 1\r\n",  /* flags over 64 bits */
        "set k -1 0 1\r\n",
        "set k abc 0 1\r\n",
        "set k 1x 0 1\r\n",
        "set k \t 0 1\r\n",
        "set k 0 abc 1\r\n",
        "set k 0 9223372036854775808 1\r\n",   /* exptime over int64 */
        "set k 0 -9223372036854775809 1\r\n",
        "set k 0 0 -1\r\n",
        "set k 0 0 abc\r\n",
        "set k 0 0 2147483646\r\n",            /* over INT_MAX - 2 */
        "set k 0 0 4294967297\r\n",
        "set k 0 0 1x\r\n",
        "cas k 0 0 1 abc\r\n",
        "cas k 0 0 1 -1\r\n",
        "cas k 0 0 1 18446744073709551616\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *s = bad[i];
        const char *nl = strchr(s, '\n');
        size_t line = (size_t)(nl - s) + 1;
        expect(s, strlen(s), PARSE_EINVALID, line, fmt_err, &req);
        assert_false(req.noreply);
    }

    /* noreply is still recognised: memcached then says nothing */
    expect_s("set k abc 0 1 noreply\r\n", PARSE_EINVALID, fmt_err, &req);
    assert_true(req.noreply);
}

static void
test_storage_errors(void **state)
{
    (void)state;
    struct text_req req;
    char buf[1024];
    char k251[252];
    memset(k251, 'a', 251);
    k251[251] = '\0';

    /* wrong token counts are "ERROR", as memcached's WANT_TOKENS */
    expect_s("set k 0 0\r\n", PARSE_EINVALID, "ERROR", NULL);
    expect_s("set k 0 0 1 noreply extra\r\n", PARSE_EINVALID, "ERROR", NULL);
    expect_s("set\r\n", PARSE_EINVALID, "ERROR", NULL);
    expect_s("cas k 0 0 1\r\n", PARSE_EINVALID, "ERROR", NULL);
    expect_s("append k 0 0 1 2 3\r\n", PARSE_EINVALID, "ERROR", NULL);
    /* tab is not a separator */
    expect_s("set k\t0 0 1\r\n", PARSE_EINVALID, "ERROR", NULL);

    /* key too long: no swallow */
    snprintf(buf, sizeof(buf), "set %s 0 0 1\r\n", k251);
    expect_s(buf, PARSE_EINVALID, fmt_err, &req);
    assert_false(req.noreply);
    snprintf(buf, sizeof(buf), "set %s 0 0 1 noreply\r\n", k251);
    expect_s(buf, PARSE_EINVALID, fmt_err, &req);
    assert_true(req.noreply);

    /* data block not followed by \r\n: line + vlen + 2 are gone */
    expect("set k 0 0 3\r\nabcdef\r\n", 21, PARSE_EINVALID, 18,
           "CLIENT_ERROR bad data chunk", &req);
    expect("set k 0 0 3\r\nabc\nget k\r\n", 24, PARSE_EINVALID, 18,
           "CLIENT_ERROR bad data chunk", &req);
    expect("set k 0 0 3 noreply\r\nabcXY", 26, PARSE_EINVALID, 26,
           "CLIENT_ERROR bad data chunk", &req);
    assert_true(req.noreply);
    /* a value missing its last byte is just unfinished */
    expect("set k 0 0 1\r\nx\n", 15, PARSE_EUNFIN, 0, NULL, NULL);
}

static void
test_storage_oversize(void **state)
{
    (void)state;
    struct text_req req;
    size_t consumed;
    const char *errmsg;
    const char *s = "set big 0 0 2000\r\n";

    /* only the line is needed to say "too large" */
    assert_int_equal(parse_n(&req, s, strlen(s), 1000, &consumed, &errmsg),
                     PARSE_EOVERSIZE);
    assert_int_equal(consumed, strlen(s));
    assert_int_equal(req.vlen, 2000);
    assert_false(req.noreply);
    assert_prefixes_unfin(s, strlen(s), 1000);

    s = "set big 0 0 1001 noreply\r\n";
    assert_int_equal(parse_n(&req, s, strlen(s), 1000, &consumed, &errmsg),
                     PARSE_EOVERSIZE);
    assert_true(req.noreply);
    assert_int_equal(req.vlen, 1001);

    /* exactly max_value fits */
    char buf[1100];
    memcpy(buf, "set big 0 0 1000\r\n", 18);
    memset(buf + 18, 'v', 1000);
    memcpy(buf + 1018, "\r\n", 2);
    assert_int_equal(parse_n(&req, buf, 1020, 1000, &consumed, &errmsg),
                     PARSE_OK);
    assert_int_equal(consumed, 1020);
    assert_prefixes_unfin(buf, 1020, 1000);

    /* the same for ms */
    s = "ms big 1001 T0\r\n";
    assert_int_equal(parse_n(&req, s, strlen(s), 1000, &consumed, &errmsg),
                     PARSE_EOVERSIZE);
    assert_int_equal(consumed, strlen(s));
    assert_int_equal(req.vlen, 1001);
    assert_null(errmsg);
    s = "ms big 1001 q\r\n";
    assert_int_equal(parse_n(&req, s, strlen(s), 1000, &consumed, &errmsg),
                     PARSE_EOVERSIZE);
    assert_false(req.noreply);
    /* a flag error is what memcached answers, before the size */
    s = "ms big 1001 q Z\r\n";
    assert_int_equal(parse_n(&req, s, strlen(s), 1000, &consumed, &errmsg),
                     PARSE_EOVERSIZE);
    assert_int_equal(consumed, strlen(s));
    assert_string_equal(errmsg, "CLIENT_ERROR invalid flag");
    assert_false(req.noreply);
    /* classic commands never carry one */
    s = "set big 0 0 2000\r\n";
    assert_int_equal(parse_n(&req, s, strlen(s), 1000, &consumed, &errmsg),
                     PARSE_EOVERSIZE);
    assert_null(errmsg);
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

/* ---- meta ---- */

static void
test_meta_get(void **state)
{
    (void)state;
    struct text_req req;

    expect_s("mg foo v\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_MG);
    assert_int_equal(req.meta.cmd, META_MG);
    assert_mem(req.key, req.nkey, "foo");
    assert_mem(req.meta.key, req.meta.nkey, "foo");
    assert_true(req.meta.ret_value);
    assert_false(req.meta.ret_key);
    assert_false(req.noreply);

    expect_s("mg foo s v f t c k Oopaque123 q h l u T30 N-1 R5 P L E\r\n",
             PARSE_EINVALID, "CLIENT_ERROR invalid flag", NULL);
    expect_s("mg foo s v f t c k Oopaque123 q h l u T30 N-1 R5 P L I\r\n",
             PARSE_OK, NULL, &req);
    assert_true(req.meta.ret_size && req.meta.ret_value &&
                req.meta.ret_flags && req.meta.ret_ttl && req.meta.ret_cas &&
                req.meta.ret_key && req.meta.ret_hit &&
                req.meta.ret_last_access && req.meta.no_lru_bump &&
                req.meta.invalidate && req.meta.has_proxy_p &&
                req.meta.has_proxy_l);
    assert_mem(req.meta.opaque, req.meta.nopaque, "opaque123");
    assert_true(req.meta.quiet);
    assert_true(req.meta.has_ttl && req.meta.ttl == 30);
    assert_true(req.meta.has_vivify && req.meta.vivify_ttl == -1);
    assert_true(req.meta.has_recache && req.meta.recache_ttl == 5);
    assert_mem(req.meta.ret_order, req.meta.nret_order, "sftckOhlTNR");
    assert_true(req.noreply);

    expect_s("mg foo\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.meta.nret_order, 0);
    assert_false(req.meta.ret_value);
    /* a base64 key is decoded: "mk" */
    expect_s("mg bWs= b v\r\n", PARSE_OK, NULL, &req);
    assert_true(req.meta.key_binary);
    assert_mem(req.meta.key, req.meta.nkey, "mk");
    assert_mem(req.key, req.nkey, "mk");

    /* errors, in memcached's order and words */
    expect_s("mg foo Z\r\n", PARSE_EINVALID, "CLIENT_ERROR invalid flag", NULL);
    expect_s("mg foo v v\r\n", PARSE_EINVALID, "CLIENT_ERROR duplicate flag",
             NULL);
    expect_s("mg foo \x80\r\n", PARSE_EINVALID, "CLIENT_ERROR duplicate flag",
             NULL);
    expect_s("mg foo Tx\r\n", PARSE_EINVALID,
             "CLIENT_ERROR bad token in command line format", NULL);
    expect_s("mg foo T\r\n", PARSE_EINVALID,
             "CLIENT_ERROR bad token in command line format", NULL);
    expect_s("mg foo Fx\r\n", PARSE_EINVALID, fmt_err, NULL);
    /* memcached keeps the low 32 bits of F */
    expect_s("mg foo F4294967297\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.meta.client_flags, 1);
    expect_s("mg foo C-1\r\n", PARSE_EINVALID,
             "CLIENT_ERROR bad token in command line format", NULL);
    expect_s("mg foo M\r\n", PARSE_EINVALID,
             "CLIENT_ERROR incorrect length for M token", NULL);
    expect_s("mg foo Jx\r\n", PARSE_EINVALID,
             "CLIENT_ERROR invalid numeric initial value", NULL);
    expect_s("mg foo Dx\r\n", PARSE_EINVALID,
             "CLIENT_ERROR invalid numeric delta value", NULL);
    expect_s("mg foo Tx Dx\r\n", PARSE_EINVALID,
             "CLIENT_ERROR invalid numeric delta value", NULL);
    expect_s("mg foo Dx Tx\r\n", PARSE_EINVALID,
             "CLIENT_ERROR bad token in command line format", NULL);
    expect_s("mg foo Tx Z\r\n", PARSE_EINVALID, "CLIENT_ERROR invalid flag",
             NULL);
    expect_s("mg foo b\r\n", PARSE_EINVALID,
             "CLIENT_ERROR error decoding key", NULL);
    expect_s("mg !!! b\r\n", PARSE_EINVALID,
             "CLIENT_ERROR error decoding key", NULL);
    expect_s("mg A=== b\r\n", PARSE_EINVALID,
             "CLIENT_ERROR error decoding key", NULL);
    /* an opaque token of 32 bytes ('O' included) is the longest */
    char line[128];
    char op32[33], op33[34];
    memset(op32, 'x', 32);
    op32[0] = 'O';
    op32[32] = '\0';
    memset(op33, 'x', 33);
    op33[0] = 'O';
    op33[33] = '\0';
    snprintf(line, sizeof(line), "mg %s\r\n", op33);   /* it is the key */
    expect_s(line, PARSE_OK, NULL, NULL);
    snprintf(line, sizeof(line), "mg k %s\r\n", op32);
    expect_s(line, PARSE_OK, NULL, &req);
    assert_int_equal(req.meta.nopaque, 31);
    snprintf(line, sizeof(line), "mg k %s\r\n", op33);
    expect_s(line, PARSE_EINVALID, "CLIENT_ERROR opaque token too long",
             NULL);
    snprintf(line, sizeof(line), "mg k q %s\r\n", op33);
    expect_s(line, PARSE_EINVALID, "CLIENT_ERROR opaque token too long",
             &req);
    assert_false(req.noreply);

    /* 17 flags is the most; 18 is too many */
    expect_s("mg k O0 O1 O2 O3 O4 O5 O6 O7 O8 O9 O10 O11 O12 O13 O14 O15 O16"
             "\r\n", PARSE_EINVALID, "CLIENT_ERROR duplicate flag", NULL);
    expect_s("mg k O0 O1 O2 O3 O4 O5 O6 O7 O8 O9 O10 O11 O12 O13 O14 O15 O16"
             " O17\r\n", PARSE_EINVALID,
             "CLIENT_ERROR options flags are too long", NULL);

    char buf[512];
    char k251[252];
    memset(k251, 'a', 251);
    k251[251] = '\0';
    snprintf(buf, sizeof(buf), "mg %s v\r\n", k251);
    expect_s(buf, PARSE_EINVALID, fmt_err, NULL);
}

static void
test_meta_set(void **state)
{
    (void)state;
    struct text_req req;

    expect_s("ms foo 2\r\nhi\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_MS);
    assert_mem(req.key, req.nkey, "foo");
    assert_int_equal(req.vlen, 2);
    assert_memory_equal(req.value, "hi\r\n", 4);
    assert_int_equal(req.meta.cmd, META_MS);
    assert_int_equal(req.meta.vlen, 2);
    assert_ptr_equal(req.meta.value, req.value);
    assert_int_equal(req.meta.nret_order, 0);

    expect_s("ms foo 5 T0 F5 c k O123 MS C99 I q\r\nhello\r\n", PARSE_OK,
             NULL, &req);
    assert_true(req.meta.has_ttl && req.meta.ttl == 0);
    assert_true(req.meta.has_client_flags && req.meta.client_flags == 5);
    assert_true(req.meta.ret_cas && req.meta.ret_key);
    assert_mem(req.meta.opaque, req.meta.nopaque, "123");
    assert_int_equal(req.meta.mode_char, 'S');
    assert_int_equal(req.meta.set_mode, META_SET_SET);
    assert_true(req.meta.has_compare_cas && req.meta.compare_cas == 99);
    assert_true(req.meta.invalidate);
    assert_true(req.noreply);
    assert_memory_equal(req.value, "hello", 5);

    static const char *modes = "EAPRS";
    char buf[512];
    for (const char *m = modes; *m; m++) {
        snprintf(buf, sizeof(buf), "ms k 1 M%c\r\nx\r\n", *m);
        expect_s(buf, PARSE_OK, NULL, NULL);
    }

    /* line errors: nothing swallowed */
    static const struct { const char *s; const char *err; } noswallow[] = {
        { "ms foo\r\nhi\r\n", fmt_err },
        { "ms foo abc\r\nhi\r\n", fmt_err },
        { "ms foo -1\r\nhi\r\n", fmt_err },
        { "ms foo 2147483646\r\nhi\r\n", fmt_err },
        { "ms foo 2 O0 O1 O2 O3 O4 O5 O6 O7 O8 O9 O10 O11 O12 O13 O14 O15 "
          "O16\r\nhi\r\n", "CLIENT_ERROR options flags too long" },
    };
    for (size_t i = 0; i < sizeof(noswallow) / sizeof(noswallow[0]); i++) {
        const char *s = noswallow[i].s;
        expect(s, strlen(s), PARSE_EINVALID,
               (size_t)(strchr(s, '\n') - s) + 1, noswallow[i].err, NULL);
    }

    /* flag errors: the value is swallowed, the error sent even with q */
    static const struct { const char *s; const char *err; } swallow[] = {
        { "ms foo 2 Z\r\nhi\r\n", "CLIENT_ERROR invalid flag" },
        { "ms foo 2 T1 T2\r\nhi\r\n", "CLIENT_ERROR duplicate flag" },
        { "ms foo 2 Tabc\r\nhi\r\n",
          "CLIENT_ERROR bad token in command line format" },
        { "ms foo 2 MZ\r\nhi\r\n", "CLIENT_ERROR invalid mode for ms M token" },
        { "ms foo 2 Me\r\nhi\r\n", "CLIENT_ERROR invalid mode for ms M token" },
        { "ms foo 2 MEE\r\nhi\r\n",
          "CLIENT_ERROR incorrect length for M token" },
        { "ms foo 2 Fx q\r\nhi\r\n", fmt_err },
        { "ms foo 2 S100\r\nhi\r\n", "CLIENT_ERROR invalid flag" },
        { "ms foo 2 q Oyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\nhi\r\n",
          "CLIENT_ERROR opaque token too long" },
        { "ms foo 2 Mx Oyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\nhi\r\n",
          "CLIENT_ERROR invalid mode for ms M token" },
        { "ms foo 2 Tx Oyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\nhi\r\n",
          "CLIENT_ERROR bad token in command line format" },
        { "ms foo 2 b\r\nhi\r\n", "CLIENT_ERROR error decoding key" },
        /* swallowed unread: the bytes need not end in \r\n */
        { "ms foo 2 Z\r\nhiXY", "CLIENT_ERROR invalid flag" },
    };
    for (size_t i = 0; i < sizeof(swallow) / sizeof(swallow[0]); i++) {
        expect_s(swallow[i].s, PARSE_EINVALID, swallow[i].err, &req);
        assert_false(req.noreply);
    }

    /* bad chunk: error even with q */
    expect_s("ms foo 2 q\r\nhix\r", PARSE_EINVALID,
             "CLIENT_ERROR bad data chunk", &req);
    assert_false(req.noreply);
}

static void
test_meta_other(void **state)
{
    (void)state;
    struct text_req req;

    expect_s("md foo q C5 I T30 k O1\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_MD);
    assert_mem(req.key, req.nkey, "foo");
    assert_true(req.meta.has_compare_cas && req.meta.compare_cas == 5);
    assert_true(req.meta.invalidate && req.meta.ret_key);
    assert_true(req.meta.has_ttl && req.meta.ttl == 30);
    assert_mem(req.meta.opaque, req.meta.nopaque, "1");
    assert_true(req.noreply);
    expect_s("md foo Z\r\n", PARSE_EINVALID,
             "CLIENT_ERROR invalid or duplicate flag", NULL);
    expect_s("md foo T5 x\r\n", PARSE_EINVALID,
             "CLIENT_ERROR invalid or duplicate flag", NULL);
    expect_s("md foo Oyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n",
             PARSE_EINVALID, "CLIENT_ERROR opaque token too long", NULL);
    expect_s("md k O0 O1 O2 O3 O4 O5 O6 O7 O8 O9 O10 O11 O12 O13 O14 O15 O16"
             " O17\r\n", PARSE_EINVALID,
             "CLIENT_ERROR options flags too long", NULL);

    expect_s("ma cnt N0 J5 D3 MD v\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_MA);
    assert_true(req.meta.has_vivify && req.meta.vivify_ttl == 0);
    assert_true(req.meta.has_initial && req.meta.initial == 5);
    assert_true(req.meta.has_delta && req.meta.delta == 3);
    assert_true(req.meta.decr && req.meta.ret_value);
    expect_s("ma cnt\r\n", PARSE_OK, NULL, &req);
    assert_false(req.meta.has_delta);
    assert_int_equal(req.meta.delta, 1);
    assert_false(req.meta.decr);
    static const char *ma_modes[] = { "MI", "M+", "MD", "M-" };
    char buf[64];
    for (int i = 0; i < 4; i++) {
        snprintf(buf, sizeof(buf), "ma cnt %s\r\n", ma_modes[i]);
        expect_s(buf, PARSE_OK, NULL, NULL);
    }
    expect_s("ma cnt Mi\r\n", PARSE_EINVALID,
             "CLIENT_ERROR invalid mode for ma M token", NULL);
    expect_s("ma cnt MX Oyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n",
             PARSE_EINVALID, "CLIENT_ERROR invalid mode for ma M token", NULL);
    expect_s("ma cnt Dx J1\r\n", PARSE_EINVALID,
             "CLIENT_ERROR invalid or duplicate flag", NULL);
    expect_s("ma cnt Oyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n",
             PARSE_EINVALID, "CLIENT_ERROR opaque token too long", NULL);

    expect_s("mn\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_MN);
    assert_null(req.key);
    expect_s("mn foo\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_MN);

    expect_s("me foo\r\n", PARSE_OK, NULL, &req);
    assert_int_equal(req.cmd, TEXT_ME);
    assert_mem(req.key, req.nkey, "foo");
    expect_s("me bWs= b\r\n", PARSE_OK, NULL, &req);
    assert_true(req.meta.key_binary);
    assert_mem(req.key, req.nkey, "mk");
    expect_s("me foo x y\r\n", PARSE_OK, NULL, &req);
    expect_s("me\r\n", PARSE_EINVALID, fmt_err, NULL);
    expect_s("me foo b\r\n", PARSE_EINVALID, fmt_err, NULL);
    char k251[252];
    memset(k251, 'a', 251);
    k251[251] = '\0';
    char line[300];
    snprintf(line, sizeof(line), "me %s\r\n", k251);
    expect_s(line, PARSE_EINVALID, fmt_err, NULL);
    snprintf(line, sizeof(line), "md %s\r\n", k251);
    expect_s(line, PARSE_EINVALID, fmt_err, NULL);
    snprintf(line, sizeof(line), "ma %s\r\n", k251);
    expect_s(line, PARSE_EINVALID, fmt_err, NULL);
    snprintf(line, sizeof(line), "ms %s 1\r\nx\r\n", k251);
    expect(line, strlen(line), PARSE_EINVALID, strlen(line) - 3, fmt_err,
           NULL);
}

/* The raw flag tokens server/process_text.c still reads. */
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

/* xorshift: the same junk on every run */
static uint64_t
junk_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
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

/* ---- composers ---- */

static void
test_u64toa(void **state)
{
    (void)state;
    char out[21];
    char want[32];
    uint64_t v = 0;

    static const uint64_t fixed[] = { 0, 1, 9, 10, 11, 99, 100, 101, 999,
                                      1000, 4294967295ull, 4294967296ull,
                                      UINT64_MAX - 1, UINT64_MAX };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        size_t n = proto_text_u64toa(fixed[i], out);
        snprintf(want, sizeof(want), "%" PRIu64, fixed[i]);
        assert_mem(out, n, want);
    }
    for (int i = 0; i < 20; i++) {
        size_t n = proto_text_u64toa(v, out);
        snprintf(want, sizeof(want), "%" PRIu64, v);
        assert_mem(out, n, want);
        n = proto_text_u64toa(v ? v - 1 : 0, out);
        snprintf(want, sizeof(want), "%" PRIu64, v ? v - 1 : 0);
        assert_mem(out, n, want);
        v = v ? v * 10 : 1;
    }
    uint64_t seed = 12345;
    for (int i = 0; i < 10000; i++) {
        v = junk_next(&seed) >> (junk_next(&seed) % 64);
        size_t n = proto_text_u64toa(v, out);
        snprintf(want, sizeof(want), "%" PRIu64, v);
        assert_mem(out, n, want);
    }
}

static void
test_compose_value_hdr(void **state)
{
    (void)state;
    char out[PROTO_TEXT_VALUE_HDR_MAX];
    size_t n = proto_text_compose_value_hdr(out, "foo", 3, 5, 10, false, 0);
    assert_mem(out, n, "VALUE foo 5 10\r\n");
    n = proto_text_compose_value_hdr(out, "foo", 3, 0, 0, true, 77);
    assert_mem(out, n, "VALUE foo 0 0 77\r\n");

    /* the longest header fits */
    char key[PROTO_KEY_MAX];
    memset(key, 'k', sizeof(key));
    n = proto_text_compose_value_hdr(out, key, PROTO_KEY_MAX, UINT32_MAX,
                                     UINT32_MAX, true, UINT64_MAX);
    assert_true(n <= PROTO_TEXT_VALUE_HDR_MAX);
    assert_int_equal(n, 6 + 250 + 1 + 10 + 1 + 10 + 1 + 20 + 2);

    /* and parses back as the header of a get reply */
    char line[400];
    n = proto_text_compose_value_hdr(line, "abc", 3, 42, 3, true, 9);
    memcpy(line + n, "\0", 1);
    assert_string_equal(line, "VALUE abc 42 3 9\r\n");
}

static void
test_compose_stat(void **state)
{
    (void)state;
    char out[64];
    size_t n = proto_text_compose_stat(out, sizeof(out), "pid", "1234");
    assert_mem(out, n, "STAT pid 1234\r\n");
    /* exact fit, and one byte short */
    assert_int_equal(proto_text_compose_stat(out, 15, "pid", "1234"), 15);
    assert_int_equal(proto_text_compose_stat(out, 14, "pid", "1234"), 0);
    n = proto_text_compose_stat(out, sizeof(out), "version", "");
    assert_mem(out, n, "STAT version \r\n");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_keys),
        cmocka_unit_test(test_get_many_keys),
        cmocka_unit_test(test_get_key_length),
        cmocka_unit_test(test_gat),
        cmocka_unit_test(test_storage_roundtrip),
        cmocka_unit_test(test_storage_numbers),
        cmocka_unit_test(test_storage_errors),
        cmocka_unit_test(test_storage_oversize),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_arith),
        cmocka_unit_test(test_touch),
        cmocka_unit_test(test_flush_all),
        cmocka_unit_test(test_misc_commands),
        cmocka_unit_test(test_unknown_and_junk),
        cmocka_unit_test(test_line_too_long),
        cmocka_unit_test(test_meta_get),
        cmocka_unit_test(test_meta_set),
        cmocka_unit_test(test_meta_other),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_u64toa),
        cmocka_unit_test(test_compose_value_hdr),
        cmocka_unit_test(test_compose_stat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
