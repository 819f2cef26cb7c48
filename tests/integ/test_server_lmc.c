/*
 * test_server_lmc.c: the running server through libmemcached, each test in
 * binary and in text mode: storage commands, CAS, delete, incr/decr, expiry
 * and touch, flush, multi-get, version, stats, verbosity, large values.
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
#include <time.h>
#include <unistd.h>

#include <libmemcached/memcached.h>

#include "tests/integ/harness.h"
#include "tests/integ/server_helpers.h"

/* ------------------------------------------------------------------ */
/* libmemcached, in binary and in text mode                            */

struct lmc {
    memcached_st *m;
    bool binary;
};

static const bool k_binary = true;
static const bool k_text = false;

static int
lmc_setup(void **state)
{
    struct lmc *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return -1;
    c->binary = *(const bool *)*state;
    c->m = memcached_create(NULL);
    if (c->m == NULL)
        return -1;
    memcached_server_add(c->m, "127.0.0.1", server_port(g_srv));
    memcached_behavior_set(c->m, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL,
                           c->binary);
    memcached_behavior_set(c->m, MEMCACHED_BEHAVIOR_SUPPORT_CAS, 1);
    memcached_behavior_set(c->m, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, TMO);
    memcached_behavior_set(c->m, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, TMO);
    *state = c;
    if (memcached_flush(c->m, 0) != MEMCACHED_SUCCESS)
        return -1;
    return 0;
}

static int
lmc_teardown(void **state)
{
    struct lmc *c = *state;

    memcached_free(c->m);
    free(c);
    return 0;
}

#define assert_rc(c, rc, want)                                              \
    do {                                                                    \
        memcached_return_t rc_ = (rc);                                      \
        if (rc_ != (want))                                                  \
            fail_msg("libmemcached: %s (want %s)",                          \
                     memcached_strerror((c)->m, rc_),                       \
                     memcached_strerror((c)->m, (want)));                   \
    } while (0)

/* Gets key and requires value/flags (value NULL: requires NOTFOUND). */
static void
lmc_expect_at(int line, struct lmc *c, const char *key, const void *value,
              size_t vlen, uint32_t flags)
{
    memcached_return_t rc;
    size_t got_len = 0;
    uint32_t got_flags = 0;
    char *got = memcached_get(c->m, key, strlen(key), &got_len, &got_flags,
                              &rc);

    if (value == NULL) {
        free(got);
        if (rc != MEMCACHED_NOTFOUND)
            fail_msg("line %d: get %s: %s (want NOT FOUND)", line, key,
                     memcached_strerror(c->m, rc));
        return;
    }
    /* libmemcached returns NULL for an empty value */
    if (rc != MEMCACHED_SUCCESS || (got == NULL && vlen != 0)) {
        free(got);
        fail_msg("line %d: get %s: %s", line, key,
                 memcached_strerror(c->m, rc));
    }
    if (!bytes_equal(got != NULL ? got : "", got_len, value, vlen) ||
        got_flags != flags) {
        free(got);
        fail_msg("line %d: get %s: value or flags (%u, want %u) differ",
                 line, key, got_flags, flags);
    }
    free(got);
}
#define lmc_expect(c, key, value, flags)                                    \
    lmc_expect_at(__LINE__, (c), (key), (value), strlen(value), (flags))
#define lmc_expect_miss(c, key)                                             \
    lmc_expect_at(__LINE__, (c), (key), NULL, 0, 0)
#define lmc_expect_n(c, key, value, vlen, flags)                            \
    lmc_expect_at(__LINE__, (c), (key), (value), (vlen), (flags))

static memcached_return_t
lmc_set(struct lmc *c, const char *key, const char *value, time_t exptime,
        uint32_t flags)
{
    return memcached_set(c->m, key, strlen(key), value, strlen(value),
                         exptime, flags);
}

static void
test_lmc_set_get(void **state)
{
    struct lmc *c = *state;
    static const char binval[] = "a\0b\r\nEND\r\n\0\xff";
    size_t big_len = 100000;
    char *big = malloc(big_len);

    assert_non_null(big);
    fill_pattern(big, big_len, 1);
    assert_rc(c, lmc_set(c, "k1", "hello", 0, 0xdeadbeef), MEMCACHED_SUCCESS);
    lmc_expect(c, "k1", "hello", 0xdeadbeef);
    assert_rc(c, lmc_set(c, "k1", "world!", 0, 7), MEMCACHED_SUCCESS);
    lmc_expect(c, "k1", "world!", 7);
    assert_rc(c, memcached_set(c->m, "bin", 3, binval, sizeof(binval), 0, 0),
              MEMCACHED_SUCCESS);
    lmc_expect_n(c, "bin", binval, sizeof(binval), 0);
    assert_rc(c, memcached_set(c->m, "empty", 5, "", 0, 0, 1),
              MEMCACHED_SUCCESS);
    lmc_expect_n(c, "empty", "", 0, 1);
    assert_rc(c, memcached_set(c->m, "big", 3, big, big_len, 0, 0),
              MEMCACHED_SUCCESS);
    lmc_expect_n(c, "big", big, big_len, 0);
    lmc_expect_miss(c, "missing");
    free(big);
}

static void
test_lmc_add_replace(void **state)
{
    struct lmc *c = *state;

    assert_rc(c, memcached_add(c->m, "a", 1, "1", 1, 0, 3), MEMCACHED_SUCCESS);
    lmc_expect(c, "a", "1", 3);
    /* libmemcached maps the binary EEXISTS to DATA_EXISTS, text NOT_STORED
     * to NOTSTORED */
    assert_rc(c, memcached_add(c->m, "a", 1, "2", 1, 0, 0),
              c->binary ? MEMCACHED_DATA_EXISTS : MEMCACHED_NOTSTORED);
    lmc_expect(c, "a", "1", 3);
    assert_rc(c, memcached_replace(c->m, "r", 1, "x", 1, 0, 0),
              c->binary ? MEMCACHED_NOTFOUND : MEMCACHED_NOTSTORED);
    lmc_expect_miss(c, "r");
    assert_rc(c, memcached_replace(c->m, "a", 1, "22", 2, 0, 4),
              MEMCACHED_SUCCESS);
    lmc_expect(c, "a", "22", 4);
}

static void
test_lmc_append_prepend(void **state)
{
    struct lmc *c = *state;

    assert_rc(c, memcached_append(c->m, "ap", 2, "x", 1, 0, 0),
              MEMCACHED_NOTSTORED);
    assert_rc(c, memcached_prepend(c->m, "ap", 2, "x", 1, 0, 0),
              MEMCACHED_NOTSTORED);
    lmc_expect_miss(c, "ap");
    assert_rc(c, lmc_set(c, "ap", "mid", 0, 9), MEMCACHED_SUCCESS);
    assert_rc(c, memcached_append(c->m, "ap", 2, ">>", 2, 0, 1),
              MEMCACHED_SUCCESS);
    assert_rc(c, memcached_prepend(c->m, "ap", 2, "<<", 2, 0, 1),
              MEMCACHED_SUCCESS);
    /* flags of append/prepend are ignored: the item keeps its own */
    lmc_expect(c, "ap", "<<mid>>", 9);
}

static uint64_t
lmc_gets_cas(struct lmc *c, const char *key)
{
    const char *keys[1] = { key };
    size_t lens[1] = { strlen(key) };
    memcached_return_t rc;
    memcached_result_st *res;
    uint64_t cas;

    assert_rc(c, memcached_mget(c->m, keys, lens, 1), MEMCACHED_SUCCESS);
    res = memcached_fetch_result(c->m, NULL, &rc);
    assert_non_null(res);
    cas = memcached_result_cas(res);
    memcached_result_free(res);
    /* drain the END */
    res = memcached_fetch_result(c->m, NULL, &rc);
    assert_null(res);
    return cas;
}

static void
test_lmc_cas(void **state)
{
    struct lmc *c = *state;
    uint64_t cas1, cas2;

    assert_rc(c, lmc_set(c, "c", "v1", 0, 0), MEMCACHED_SUCCESS);
    cas1 = lmc_gets_cas(c, "c");
    assert_true(cas1 != 0);
    assert_rc(c, memcached_cas(c->m, "c", 1, "v2", 2, 0, 0, cas1),
              MEMCACHED_SUCCESS);
    lmc_expect(c, "c", "v2", 0);
    cas2 = lmc_gets_cas(c, "c");
    assert_true(cas2 != 0 && cas2 != cas1);
    assert_rc(c, memcached_cas(c->m, "c", 1, "v3", 2, 0, 0, cas1),
              MEMCACHED_DATA_EXISTS);
    lmc_expect(c, "c", "v2", 0);
    assert_rc(c, memcached_cas(c->m, "nokey", 5, "v", 1, 0, 0, cas2),
              MEMCACHED_NOTFOUND);
}

static void
test_lmc_delete(void **state)
{
    struct lmc *c = *state;

    assert_rc(c, lmc_set(c, "d", "v", 0, 0), MEMCACHED_SUCCESS);
    assert_rc(c, memcached_delete(c->m, "d", 1, 0), MEMCACHED_SUCCESS);
    lmc_expect_miss(c, "d");
    assert_rc(c, memcached_delete(c->m, "d", 1, 0), MEMCACHED_NOTFOUND);
}

static void
test_lmc_incr_decr(void **state)
{
    struct lmc *c = *state;
    uint64_t v = 0;

    assert_rc(c, lmc_set(c, "n", "10", 0, 0), MEMCACHED_SUCCESS);
    assert_rc(c, memcached_increment(c->m, "n", 1, 5, &v), MEMCACHED_SUCCESS);
    assert_int_equal(v, 15);
    assert_rc(c, memcached_decrement(c->m, "n", 1, 20, &v),
              MEMCACHED_SUCCESS);
    assert_int_equal(v, 0);   /* decr stops at 0 */
    assert_rc(c, memcached_increment(c->m, "none", 4, 1, &v),
              MEMCACHED_NOTFOUND);
    assert_rc(c, memcached_decrement(c->m, "none", 4, 1, &v),
              MEMCACHED_NOTFOUND);
    assert_rc(c, lmc_set(c, "s", "abc", 0, 0), MEMCACHED_SUCCESS);
    assert_true(memcached_increment(c->m, "s", 1, 1, &v) !=
                MEMCACHED_SUCCESS);
    lmc_expect(c, "s", "abc", 0);
    if (c->binary) {
        /* with_initial exists only in the binary protocol */
        assert_rc(c, memcached_increment_with_initial(c->m, "wi", 2, 1, 10,
                                                      0, &v),
                  MEMCACHED_SUCCESS);
        assert_int_equal(v, 10);
        assert_rc(c, memcached_increment_with_initial(c->m, "wi", 2, 1, 10,
                                                      0, &v),
                  MEMCACHED_SUCCESS);
        assert_int_equal(v, 11);
        assert_rc(c, memcached_decrement_with_initial(c->m, "wd", 2, 1, 7,
                                                      0, &v),
                  MEMCACHED_SUCCESS);
        assert_int_equal(v, 7);
        lmc_expect(c, "wi", "11", 0);
    }
}

static void
test_lmc_expiry_touch(void **state)
{
    struct lmc *c = *state;

    assert_rc(c, lmc_set(c, "e1", "v", 1, 0), MEMCACHED_SUCCESS);
    assert_rc(c, lmc_set(c, "e0", "v", 0, 0), MEMCACHED_SUCCESS);
    assert_rc(c, lmc_set(c, "tshort", "v", 100, 0), MEMCACHED_SUCCESS);
    assert_rc(c, memcached_touch(c->m, "tshort", 6, 1), MEMCACHED_SUCCESS);
    /* exptime 2 leaves more than one clock tick before it can expire */
    assert_rc(c, lmc_set(c, "tlong", "v", 2, 0), MEMCACHED_SUCCESS);
    assert_rc(c, memcached_touch(c->m, "tlong", 5, 100), MEMCACHED_SUCCESS);
    assert_rc(c, memcached_touch(c->m, "nope", 4, 100), MEMCACHED_NOTFOUND);
    usleep(EXPIRY_SLEEP_US);
    lmc_expect_miss(c, "e1");
    lmc_expect(c, "e0", "v", 0);
    lmc_expect_miss(c, "tshort");
    lmc_expect(c, "tlong", "v", 0);
}

static void
test_lmc_flush(void **state)
{
    struct lmc *c = *state;

    assert_rc(c, lmc_set(c, "f1", "v", 0, 0), MEMCACHED_SUCCESS);
    assert_rc(c, memcached_flush(c->m, 0), MEMCACHED_SUCCESS);
    lmc_expect_miss(c, "f1");
    /* delayed flush: items stay until the delay passes (3 s leaves more
     * than a tick of margin on a second-granularity clock) */
    assert_rc(c, lmc_set(c, "f2", "v", 0, 0), MEMCACHED_SUCCESS);
    assert_rc(c, memcached_flush(c->m, 3), MEMCACHED_SUCCESS);
    lmc_expect(c, "f2", "v", 0);
    /* due 2-3 s from now on the second-granularity clock, which the main
     * thread advances once a second (up to a second late): wait 3.5 s */
    usleep(EXPIRY_SLEEP_US + 1000 * 1000);
    /* (no "new items live after the deadline" check: memcached also drops
     * items stored during the second the delayed flush takes effect) */
    lmc_expect_miss(c, "f2");
}

static void
test_lmc_mget(void **state)
{
    struct lmc *c = *state;
    enum { NKEYS = 200 };
    char keybuf[NKEYS][16];
    const char *keys[NKEYS];
    size_t lens[NKEYS];
    bool seen[NKEYS] = { false };
    memcached_return_t rc;
    memcached_result_st *res;
    int hits = 0;

    for (int i = 0; i < NKEYS; i++) {
        snprintf(keybuf[i], sizeof(keybuf[i]), "mg:%03d", i);
        keys[i] = keybuf[i];
        lens[i] = strlen(keybuf[i]);
        if (i % 2 == 0) {
            char val[32];

            snprintf(val, sizeof(val), "value-%d", i);
            assert_rc(c, lmc_set(c, keys[i], val, 0, (uint32_t)i),
                      MEMCACHED_SUCCESS);
        }
    }
    assert_rc(c, memcached_mget(c->m, keys, lens, NKEYS), MEMCACHED_SUCCESS);
    while ((res = memcached_fetch_result(c->m, NULL, &rc)) != NULL) {
        char want[32];
        int idx;

        assert_rc(c, rc, MEMCACHED_SUCCESS);
        assert_int_equal(sscanf(memcached_result_key_value(res), "mg:%d",
                                &idx), 1);
        assert_true(idx >= 0 && idx < NKEYS && idx % 2 == 0 && !seen[idx]);
        seen[idx] = true;
        snprintf(want, sizeof(want), "value-%d", idx);
        assert_bytes(memcached_result_value(res),
                     memcached_result_length(res), want, strlen(want));
        assert_int_equal(memcached_result_flags(res), idx);
        assert_true(memcached_result_cas(res) != 0);
        memcached_result_free(res);
        hits++;
    }
    assert_int_equal(hits, NKEYS / 2);
}

static void
test_lmc_version(void **state)
{
    struct lmc *c = *state;
    const memcached_instance_st *inst;
    unsigned major = 0, minor = 0, micro = 0;
    char line[256];
    int fd;

    assert_rc(c, memcached_version(c->m), MEMCACHED_SUCCESS);
    inst = memcached_server_instance_by_position(c->m, 0);
    assert_non_null(inst);
    /* libmemcached parses what the server sends: compare with the text
     * protocol's "VERSION x.y.z" */
    fd = tconn();
    assert_int_equal(harness_send_str(fd, "version\r\n"), 0);
    assert_true(harness_read_line(fd, line, sizeof(line), TMO) > 0);
    close(fd);
    assert_int_equal(sscanf(line, "VERSION %u.%u.%u", &major, &minor, &micro),
                     3);
    assert_int_equal(memcached_server_major_version(inst), major);
    assert_int_equal(memcached_server_minor_version(inst), minor);
    assert_int_equal(memcached_server_micro_version(inst), micro);
}

static long
lmc_stat_long(struct lmc *c, memcached_stat_st *st, const char *name)
{
    memcached_return_t rc;
    char *v = memcached_stat_get_value(c->m, st, name, &rc);
    long n;

    assert_rc(c, rc, MEMCACHED_SUCCESS);
    assert_non_null(v);
    n = strtol(v, NULL, 10);
    free(v);
    return n;
}

static void
test_lmc_stats(void **state)
{
    struct lmc *c = *state;
    memcached_return_t rc;
    memcached_stat_st *st;
    long sets_before, sets_after;

    st = memcached_stat(c->m, NULL, &rc);
    assert_rc(c, rc, MEMCACHED_SUCCESS);
    assert_non_null(st);
    assert_int_equal(st[0].pid, server_pid(g_srv));
    assert_int_equal(lmc_stat_long(c, st, "pid"), server_pid(g_srv));
    sets_before = lmc_stat_long(c, st, "cmd_set");
    memcached_stat_free(c->m, st);

    assert_rc(c, lmc_set(c, "st", "v", 0, 0), MEMCACHED_SUCCESS);
    st = memcached_stat(c->m, NULL, &rc);
    assert_rc(c, rc, MEMCACHED_SUCCESS);
    sets_after = lmc_stat_long(c, st, "cmd_set");
    assert_true(lmc_stat_long(c, st, "curr_items") >= 1);
    memcached_stat_free(c->m, st);
    assert_int_equal(sets_after, sets_before + 1);
}

static void
test_lmc_verbosity(void **state)
{
    struct lmc *c = *state;

    /* text mode only: memcached 1.6 answers binary VERBOSITY with
     * UNKNOWN_COMMAND (see test_bin_unknown) */
    assert_rc(c, memcached_verbosity(c->m, 0), MEMCACHED_SUCCESS);
    assert_rc(c, lmc_set(c, "after", "v", 0, 0), MEMCACHED_SUCCESS);
    lmc_expect(c, "after", "v", 0);
}

static void
test_lmc_large_value(void **state)
{
    struct lmc *c = *state;
    size_t len = 1000000;
    char *v = malloc(len);

    assert_non_null(v);
    fill_pattern(v, len, 42);
    assert_rc(c, memcached_set(c->m, "large", 5, v, len, 0, 0),
              MEMCACHED_SUCCESS);
    lmc_expect_n(c, "large", v, len, 0);
    free(v);
}

#define LMC_TEST(f, mode)                                                   \
    { .name = #f "_" #mode, .test_func = (f), .setup_func = lmc_setup,      \
      .teardown_func = lmc_teardown, .initial_state = (void *)&k_##mode }
#define LMC_BOTH(f) LMC_TEST(f, binary), LMC_TEST(f, text)

int
main(void)
{
    const struct CMUnitTest lmc_tests[] = {
        LMC_BOTH(test_lmc_set_get),
        LMC_BOTH(test_lmc_add_replace),
        LMC_BOTH(test_lmc_append_prepend),
        LMC_BOTH(test_lmc_cas),
        LMC_BOTH(test_lmc_delete),
        LMC_BOTH(test_lmc_incr_decr),
        LMC_BOTH(test_lmc_expiry_touch),
        LMC_BOTH(test_lmc_flush),
        LMC_BOTH(test_lmc_mget),
        LMC_BOTH(test_lmc_version),
        LMC_BOTH(test_lmc_stats),
        LMC_TEST(test_lmc_verbosity, text),
        LMC_BOTH(test_lmc_large_value),
    };
    int failed = 0;

    signal(SIGPIPE, SIG_IGN);
    fprintf(stderr, "server under test: %s\n", harness_server_path());
    failed += cmocka_run_group_tests_name("libmemcached", lmc_tests, group_setup,
                                          group_teardown);
    return (failed != 0 || g_bad_stops != 0) ? 1 : 0;
}
