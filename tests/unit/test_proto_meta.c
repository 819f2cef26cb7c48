/*
 * test_proto_meta.c: unit tests for protocol/proto_meta.c: every accepted
 * flag of every command parsed into its typed field (and nothing else
 * changes), all flags at once, the modes, and mn/me.
 *
 * Every error line, number rule and reply line in these tests was taken
 * from Debian's memcached 1.6.18 on the wire, and every request is also fed
 * at every split point (each prefix must be PARSE_EUNFIN with nothing
 * consumed). The other topics have their own binaries:
 * test_proto_meta_errors.c (refused flags and lines, spacing),
 * test_proto_meta_numbers.c, test_proto_meta_base64.c (base64 keys),
 * test_proto_meta_stream.c (values, pipelines byte by byte, garbage,
 * truncated and over-long input) and test_proto_meta_compose.c (replies, of
 * protocol/proto_meta_rsp.c); proto_meta_helpers.c holds what they share.
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

#include "protocol/proto_meta.h"
#include "tests/unit/proto_meta_helpers.h"

/* ---- every flag, every command ---- */

/* The commands that take flags, as a line prefix and a suffix after the
 * flags ("ms" carries a value). */
static const struct {
    const char *head;
    const char *tail;
    enum meta_cmd cmd;
} flag_cmds[] = {
    { "mg foo", "\r\n", META_MG },
    { "ms foo 2", "\r\nhi\r\n", META_MS },
    { "md foo", "\r\n", META_MD },
    { "ma foo", "\r\n", META_MA },
};

/* Clears what one flag token sets, after checking it. */
static void
check_and_clear(struct meta_req *r, const char *tok)
{
    switch (tok[0]) {
    case 'c': assert_true(r->ret_cas); r->ret_cas = false; break;
    case 'f': assert_true(r->ret_flags); r->ret_flags = false; break;
    case 'h': assert_true(r->ret_hit); r->ret_hit = false; break;
    case 'k': assert_true(r->ret_key); r->ret_key = false; break;
    case 'l':
        assert_true(r->ret_last_access);
        r->ret_last_access = false;
        break;
    case 's': assert_true(r->ret_size); r->ret_size = false; break;
    case 't': assert_true(r->ret_ttl); r->ret_ttl = false; break;
    case 'v': assert_true(r->ret_value); r->ret_value = false; break;
    case 'q': assert_true(r->quiet); r->quiet = false; break;
    case 'u': assert_true(r->no_lru_bump); r->no_lru_bump = false; break;
    case 'I': assert_true(r->invalidate); r->invalidate = false; break;
    case 'P': assert_true(r->has_proxy_p); r->has_proxy_p = false; break;
    case 'L': assert_true(r->has_proxy_l); r->has_proxy_l = false; break;
    case 'T':
        assert_true(r->has_ttl);
        assert_int_equal(r->ttl, atoi(tok + 1));
        r->has_ttl = false;
        r->ttl = 0;
        break;
    case 'N':
        assert_true(r->has_vivify);
        assert_int_equal(r->vivify_ttl, atoi(tok + 1));
        r->has_vivify = false;
        r->vivify_ttl = 0;
        break;
    case 'R':
        assert_true(r->has_recache);
        assert_int_equal(r->recache_ttl, atoi(tok + 1));
        r->has_recache = false;
        r->recache_ttl = 0;
        break;
    case 'C':
        assert_true(r->has_compare_cas);
        assert_int_equal(r->compare_cas, strtoull(tok + 1, NULL, 10));
        r->has_compare_cas = false;
        r->compare_cas = 0;
        break;
    case 'F':
        assert_true(r->has_client_flags);
        assert_int_equal(r->client_flags, strtoul(tok + 1, NULL, 10));
        r->has_client_flags = false;
        r->client_flags = 0;
        break;
    case 'J':
        assert_true(r->has_initial);
        assert_int_equal(r->initial, strtoull(tok + 1, NULL, 10));
        r->has_initial = false;
        r->initial = 0;
        break;
    case 'D':
        assert_true(r->has_delta);
        assert_int_equal(r->delta, strtoull(tok + 1, NULL, 10));
        r->has_delta = false;
        r->delta = 1;
        break;
    case 'O':
        assert_true(r->has_opaque);
        assert_mem(r->opaque, r->nopaque, tok + 1);
        r->has_opaque = false;
        r->nopaque = 0;
        break;
    case 'M':
        assert_int_equal(r->mode_char, tok[1]);
        r->mode_char = 0;
        r->set_mode = META_SET_SET;
        r->decr = false;
        break;
    default:
        fail_msg("no check for %s", tok);
    }
    /* the flags that shape the reply are noted in order */
    if (strchr("stcflhOkTNR", tok[0]) != NULL) {
        assert_int_equal(r->nret_order, 1);
        assert_int_equal(r->ret_order[0], tok[0]);
    } else {
        assert_int_equal(r->nret_order, 0);
    }
    r->nret_order = 0;
}

static void
assert_req_equal(const struct meta_req *a, const struct meta_req *b)
{
    assert_int_equal(a->cmd, b->cmd);
    assert_mem(a->key, a->nkey, "foo");
    assert_mem(b->key, b->nkey, "foo");
    assert_int_equal(a->key_binary, b->key_binary);
    assert_int_equal(a->ret_cas, b->ret_cas);
    assert_int_equal(a->ret_flags, b->ret_flags);
    assert_int_equal(a->ret_hit, b->ret_hit);
    assert_int_equal(a->ret_key, b->ret_key);
    assert_int_equal(a->ret_last_access, b->ret_last_access);
    assert_int_equal(a->ret_size, b->ret_size);
    assert_int_equal(a->ret_ttl, b->ret_ttl);
    assert_int_equal(a->ret_value, b->ret_value);
    assert_int_equal(a->quiet, b->quiet);
    assert_int_equal(a->no_lru_bump, b->no_lru_bump);
    assert_int_equal(a->invalidate, b->invalidate);
    assert_int_equal(a->has_ttl, b->has_ttl);
    assert_int_equal(a->has_vivify, b->has_vivify);
    assert_int_equal(a->has_recache, b->has_recache);
    assert_int_equal(a->has_compare_cas, b->has_compare_cas);
    assert_int_equal(a->has_client_flags, b->has_client_flags);
    assert_int_equal(a->has_initial, b->has_initial);
    assert_int_equal(a->has_delta, b->has_delta);
    assert_int_equal(a->has_opaque, b->has_opaque);
    assert_int_equal(a->has_proxy_p, b->has_proxy_p);
    assert_int_equal(a->has_proxy_l, b->has_proxy_l);
    assert_int_equal(a->ttl, b->ttl);
    assert_int_equal(a->vivify_ttl, b->vivify_ttl);
    assert_int_equal(a->recache_ttl, b->recache_ttl);
    assert_int_equal(a->client_flags, b->client_flags);
    assert_int_equal(a->compare_cas, b->compare_cas);
    assert_int_equal(a->initial, b->initial);
    assert_int_equal(a->delta, b->delta);
    assert_int_equal(a->nopaque, b->nopaque);
    assert_int_equal(a->mode_char, b->mode_char);
    assert_int_equal(a->set_mode, b->set_mode);
    assert_int_equal(a->decr, b->decr);
    assert_int_equal(a->vlen, b->vlen);
    assert_int_equal(a->value != NULL, b->value != NULL);
    assert_int_equal(a->nret_order, b->nret_order);
}

static void
test_every_flag(void **state)
{
    (void)state;
    /* every letter memcached 1.6.18 accepts, with and without tokens */
    static const char *toks[] = {
        "c", "f", "h", "k", "l", "s", "t", "v", "q", "u", "I",
        "P", "P/path/x", "L", "Lroute", "c5", "vjunk",
        "T30", "T0", "T-1", "N-5", "N90", "R7", "C0", "C99", "F5", "F0",
        "J13", "D22", "D0", "O123", "O", "Oopaque-31-bytes-xxxxxxxxxxxxxx",
    };
    char line[256];
    struct meta_req base, req;

    for (size_t c = 0; c < sizeof(flag_cmds) / sizeof(flag_cmds[0]); c++) {
        snprintf(line, sizeof(line), "%s%s", flag_cmds[c].head,
                 flag_cmds[c].tail);
        expect_ok(&base, line);
        struct meta_req b = base;   /* base's key points into held */
        assert_int_equal(b.cmd, flag_cmds[c].cmd);
        assert_mem(b.key, b.nkey, "foo");
        assert_int_equal(b.delta, 1);
        assert_int_equal(b.nret_order, 0);
        if (b.cmd == META_MS) {
            assert_int_equal(b.vlen, 2);
            assert_non_null(b.value);
        }
        char keycopy[4] = "foo";
        b.key = keycopy;

        for (size_t t = 0; t < sizeof(toks) / sizeof(toks[0]); t++) {
            snprintf(line, sizeof(line), "%s %s%s", flag_cmds[c].head,
                     toks[t], flag_cmds[c].tail);
            expect_ok(&req, line);
            if (b.cmd == META_MS)
                assert_memory_equal(req.value, "hi\r\n", 4);
            check_and_clear(&req, toks[t]);
            assert_req_equal(&req, &b);
        }
    }
}

static void
test_all_flags_at_once(void **state)
{
    (void)state;
    struct meta_req req;

    /* 17 flags: the most a line may carry */
    expect_ok(&req, "mg foo s v f t c k Oopaque123 q h l u T30 N-1 R5 P L I"
                    "\r\n");
    assert_int_equal(req.cmd, META_MG);
    assert_true(req.ret_size && req.ret_value && req.ret_flags &&
                req.ret_ttl && req.ret_cas && req.ret_key && req.quiet &&
                req.ret_hit && req.ret_last_access && req.no_lru_bump &&
                req.invalidate && req.has_proxy_p && req.has_proxy_l);
    assert_mem(req.opaque, req.nopaque, "opaque123");
    assert_true(req.has_ttl && req.has_vivify && req.has_recache);
    assert_int_equal(req.ttl, 30);
    assert_int_equal(req.vivify_ttl, -1);
    assert_int_equal(req.recache_ttl, 5);
    assert_order(&req, "sftckOhlTNR");

    expect_ok(&req, "ms foo 5 T-1 F5 c k O123 MR C99 I q J1 D2 v P L N9 R8"
                    "\r\nhello\r\n");
    assert_int_equal(req.cmd, META_MS);
    assert_int_equal(req.vlen, 5);
    assert_memory_equal(req.value, "hello\r\n", 7);
    assert_int_equal(req.ttl, -1);
    assert_true(req.has_client_flags && req.client_flags == 5);
    assert_true(req.ret_cas && req.ret_key && req.ret_value && req.quiet);
    assert_mem(req.opaque, req.nopaque, "123");
    assert_int_equal(req.set_mode, META_SET_REPLACE);
    assert_true(req.has_compare_cas && req.compare_cas == 99);
    assert_true(req.invalidate);
    assert_true(req.has_initial && req.initial == 1);
    assert_true(req.has_delta && req.delta == 2);
    assert_true(req.has_proxy_p && req.has_proxy_l);
    assert_true(req.has_vivify && req.vivify_ttl == 9);
    assert_true(req.has_recache && req.recache_ttl == 8);
    assert_order(&req, "TckONR");

    expect_ok(&req, "ma foo N0 J5 D3 MD v t c q O1 C7 T9 k\r\n");
    assert_int_equal(req.cmd, META_MA);
    assert_true(req.decr);
    assert_true(req.has_vivify && req.vivify_ttl == 0);
    assert_true(req.initial == 5 && req.delta == 3 && req.compare_cas == 7);
    assert_order(&req, "NtcOTk");

    expect_ok(&req, "md foo q C5 I T30 k O1\r\n");
    assert_int_equal(req.cmd, META_MD);
    assert_true(req.quiet && req.invalidate && req.ret_key);
    assert_true(req.has_compare_cas && req.compare_cas == 5);
    assert_true(req.has_ttl && req.ttl == 30);
    assert_order(&req, "TkO");
}

static void
test_modes(void **state)
{
    (void)state;
    struct meta_req req;
    static const struct { char m; enum meta_set_mode mode; } ms[] = {
        { 'S', META_SET_SET }, { 'E', META_SET_ADD },
        { 'A', META_SET_APPEND }, { 'P', META_SET_PREPEND },
        { 'R', META_SET_REPLACE },
    };
    char line[64];

    expect_ok(&req, "ms foo 1\r\nx\r\n");
    assert_int_equal(req.set_mode, META_SET_SET);
    assert_int_equal(req.mode_char, 0);
    for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
        snprintf(line, sizeof(line), "ms foo 1 M%c\r\nx\r\n", ms[i].m);
        expect_ok(&req, line);
        assert_int_equal(req.set_mode, ms[i].mode);
        assert_int_equal(req.mode_char, ms[i].m);
    }
    /* ms: upper case only, as in 1.6.18; the value is swallowed */
    static const char *bad_ms = "esaprIDx+-0";
    for (const char *m = bad_ms; *m; m++) {
        snprintf(line, sizeof(line), "ms foo 1 M%c\r\nx\r\n", *m);
        expect_err(line, "CLIENT_ERROR invalid mode for ms M token");
    }

    expect_ok(&req, "ma foo\r\n");
    assert_false(req.decr);
    static const struct { char m; bool decr; } ma[] = {
        { 'I', false }, { '+', false }, { 'D', true }, { '-', true },
    };
    for (size_t i = 0; i < sizeof(ma) / sizeof(ma[0]); i++) {
        snprintf(line, sizeof(line), "ma foo M%c\r\n", ma[i].m);
        expect_ok(&req, line);
        assert_int_equal(req.decr, ma[i].decr);
        assert_int_equal(req.mode_char, ma[i].m);
    }
    static const char *bad_ma = "idEASx0";
    for (const char *m = bad_ma; *m; m++) {
        snprintf(line, sizeof(line), "ma foo M%c\r\n", *m);
        expect_err(line, "CLIENT_ERROR invalid mode for ma M token");
    }

    /* mg and md take any mode letter and ignore it */
    expect_ok(&req, "mg foo Mz\r\n");
    assert_int_equal(req.mode_char, 'z');
    expect_ok(&req, "md foo M+\r\n");
    assert_int_equal(req.mode_char, '+');

    /* the length is checked by everyone */
    expect_err("mg foo M\r\n", "CLIENT_ERROR incorrect length for M token");
    expect_err("mg foo MSS\r\n", "CLIENT_ERROR incorrect length for M token");
    expect_err("ms foo 1 MEE\r\nx\r\n",
               "CLIENT_ERROR incorrect length for M token");
    expect_err("md foo M\r\n", dup_or_invalid_err);
    expect_err("ma foo MII\r\n", dup_or_invalid_err);
}

/* ---- other commands ---- */

static void
test_mn_me(void **state)
{
    (void)state;
    struct meta_req req;

    expect_ok(&req, "mn\r\n");
    assert_int_equal(req.cmd, META_MN);
    assert_null(req.key);
    expect_ok(&req, "mn foo bar Z Z\r\n");
    assert_int_equal(req.cmd, META_MN);
    expect_ok(&req, "me foo\r\n");
    assert_int_equal(req.cmd, META_ME);
    assert_mem(req.key, req.nkey, "foo");
    assert_false(req.key_binary);
    /* me takes no flags: anything after the key is ignored */
    expect_ok(&req, "me foo x y v v Z\r\n");
    assert_int_equal(req.nret_order, 0);
    assert_false(req.ret_value);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_every_flag, teardown),
        cmocka_unit_test_teardown(test_all_flags_at_once, teardown),
        cmocka_unit_test_teardown(test_modes, teardown),
        cmocka_unit_test_teardown(test_mn_me, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
