/*
 * test_process.c: unit tests of the command core (server/process.c) over
 * an in-memory cache, with no connection: a fake environment answers
 * admission and fetched values, and the worker counters are checked as
 * memcached counts them.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "server/process.h"
#include "server/stats.h"

#define MB ((size_t)1024 * 1024)

struct fake_owner {
    bool refuse;        /* admission answers no */
    unsigned admitted;
    rel_time_t flushed_at;
};

static struct fake_owner owner;
static struct thread_stats ts;

static bool
fake_admit(void *p)
{
    struct fake_owner *o = p;
    o->admitted++;
    return !o->refuse;
}

static const struct cmd_env env = { &owner, fake_admit, NULL };
static const struct cmd_ctx ctx = { &ts, &env };

static void
on_delayed_flush(rel_time_t when)
{
    owner.flushed_at = when;
}

static int
setup(void **state)
{
    (void)state;
    struct cache_options o = {
        .memory_limit = 64 * MB, .item_size_max = MB, .cas_enabled = true,
    };
    memset(&owner, 0, sizeof(owner));
    memset(&ts, 0, sizeof(ts));
    struct process_options po = { .flush_enabled = true, .cas_visible = true,
                                  .on_delayed_flush = on_delayed_flush };
    process_setup(&po);
    return cache_setup(&o) == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    cache_teardown();
    return 0;
}

static void
set(const char *key, const char *value, enum cache_store_op op, uint64_t cas,
    struct cmd_result *r)
{
    cmd_store(&ctx, op, key, (uint8_t)strlen(key), 7, 0, value,
              (uint32_t)strlen(value), cas, r);
}

static void
test_store_and_get(void **state)
{
    (void)state;
    struct cmd_result r;
    set("k", "hello", CACHE_SET, 0, &r);
    assert_int_equal(r.status, CMD_OK);
    assert_true(r.cas != 0);
    uint64_t cas = r.cas;

    cmd_get(&ctx, "k", 1, false, 0, true, &r);
    assert_int_equal(r.status, CMD_OK);
    assert_non_null(r.it);
    assert_int_equal(r.it->nbytes, 5);
    assert_memory_equal(item_value(r.it), "hello\r\n", 7);
    assert_int_equal(r.it->flags, 7);
    assert_int_equal(r.cas, cas);
    cmd_result_done(&r);
    assert_null(r.it);

    cmd_get(&ctx, "nope", 4, false, 0, true, &r);
    assert_int_equal(r.status, CMD_MISS);
    assert_null(r.it);
    assert_int_equal(ts.cmd_get, 2);
    assert_int_equal(ts.get_hits, 1);
    assert_int_equal(ts.get_misses, 1);
    assert_int_equal(ts.cmd_set, 1);
}

static void
test_store_ops(void **state)
{
    (void)state;
    struct cmd_result r;
    set("a", "1", CACHE_ADD, 0, &r);
    assert_int_equal(r.status, CMD_OK);
    set("a", "2", CACHE_ADD, 0, &r);
    assert_int_equal(r.status, CMD_NOT_STORED);
    set("b", "2", CACHE_REPLACE, 0, &r);
    assert_int_equal(r.status, CMD_NOT_STORED);
    set("a", "x", CACHE_APPEND, 0, &r);
    assert_int_equal(r.status, CMD_OK);
    set("a", "y", CACHE_PREPEND, 0, &r);
    assert_int_equal(r.status, CMD_OK);
    cmd_get(&ctx, "a", 1, false, 0, true, &r);
    assert_memory_equal(item_value(r.it), "y1x", 3);
    uint64_t cas = r.cas;
    cmd_result_done(&r);

    set("a", "z", CACHE_CAS, cas + 1, &r);
    assert_int_equal(r.status, CMD_EXISTS);
    set("missing", "z", CACHE_CAS, 5, &r);
    assert_int_equal(r.status, CMD_NOT_FOUND);
    set("a", "z", CACHE_CAS, cas, &r);
    assert_int_equal(r.status, CMD_OK);
    assert_int_equal(ts.cas_hits, 1);
    assert_int_equal(ts.cas_badval, 1);
    assert_int_equal(ts.cas_misses, 1);
}

static void
test_backpressure_refuses_before_change(void **state)
{
    (void)state;
    struct cmd_result r;
    set("k", "v1", CACHE_SET, 0, &r);
    owner.refuse = true;
    set("k", "v2", CACHE_SET, 0, &r);
    assert_int_equal(r.status, CMD_TMPFAIL);
    cmd_delete(&ctx, "k", 1, 0, &r);
    assert_int_equal(r.status, CMD_TMPFAIL);
    cmd_delta(&ctx, "n", 1, true, 1, 0, true, 0, 0, &r);
    assert_int_equal(r.status, CMD_TMPFAIL);
    cmd_touch(&ctx, "k", 1, 0, &r);
    assert_int_equal(r.status, CMD_TMPFAIL);
    /* reads are never refused */
    cmd_get(&ctx, "k", 1, false, 0, true, &r);
    assert_int_equal(r.status, CMD_OK);
    assert_memory_equal(item_value(r.it), "v1", 2);
    cmd_result_done(&r);
    assert_int_equal(owner.admitted, 5);
}

static void
test_delete_touch(void **state)
{
    (void)state;
    struct cmd_result r;
    set("k", "v", CACHE_SET, 0, &r);
    cmd_touch(&ctx, "k", 1, cache_realtime(100), &r);
    assert_int_equal(r.status, CMD_OK);
    cmd_touch(&ctx, "x", 1, cache_realtime(100), &r);
    assert_int_equal(r.status, CMD_MISS);
    assert_int_equal(ts.touch_hits, 1);
    assert_int_equal(ts.touch_misses, 1);
    cmd_delete(&ctx, "k", 1, 12345, &r);
    assert_int_equal(r.status, CMD_EXISTS);
    cmd_delete(&ctx, "k", 1, 0, &r);
    assert_int_equal(r.status, CMD_OK);
    cmd_delete(&ctx, "k", 1, 0, &r);
    assert_int_equal(r.status, CMD_MISS);
    assert_int_equal(ts.delete_hits, 1);
    assert_int_equal(ts.delete_misses, 1);
}

static void
test_delta(void **state)
{
    (void)state;
    struct cmd_result r;
    cmd_delta(&ctx, "n", 1, true, 5, 0, false, 0, 0, &r);
    assert_int_equal(r.status, CMD_MISS);
    /* create with the initial value: the delta is not applied */
    cmd_delta(&ctx, "n", 1, true, 5, 0, true, 10, 0, &r);
    assert_int_equal(r.status, CMD_OK);
    assert_int_equal(r.value, 10);
    cmd_delta(&ctx, "n", 1, true, 5, 0, true, 10, 0, &r);
    assert_int_equal(r.value, 15);
    cmd_delta(&ctx, "n", 1, false, 100, 0, false, 0, 0, &r);
    assert_int_equal(r.value, 0);   /* decr stops at 0 */
    set("s", "abc", CACHE_SET, 0, &r);
    cmd_delta(&ctx, "s", 1, true, 1, 0, false, 0, 0, &r);
    assert_int_equal(r.status, CMD_NON_NUMERIC);
    assert_int_equal(ts.incr_misses, 2);   /* miss, non-numeric */
    assert_int_equal(ts.incr_hits, 2);
    assert_int_equal(ts.decr_hits, 1);
}

static void
test_too_large_set_drops_old_value(void **state)
{
    (void)state;
    struct cmd_result r;
    set("k", "old", CACHE_SET, 0, &r);
    static char big[2 * MB];
    memset(big, 'x', sizeof(big));
    cmd_store(&ctx, CACHE_SET, "k", 1, 0, 0, big, sizeof(big), 0, &r);
    assert_int_equal(r.status, CMD_E2BIG);
    cmd_get(&ctx, "k", 1, false, 0, true, &r);
    assert_int_equal(r.status, CMD_MISS);
    set("k", "old", CACHE_SET, 0, &r);
    cmd_store_too_large(&ctx, true, "k", 1);
    cmd_get(&ctx, "k", 1, false, 0, true, &r);
    assert_int_equal(r.status, CMD_MISS);
    assert_int_equal(ts.store_too_large, 2);
}

static void
test_flush(void **state)
{
    (void)state;
    struct cmd_result r;
    set("k", "v", CACHE_SET, 0, &r);
    cmd_flush(&ctx, 0, &r);
    assert_int_equal(r.status, CMD_OK);
    cmd_get(&ctx, "k", 1, false, 0, true, &r);
    assert_int_equal(r.status, CMD_MISS);
    assert_int_equal(owner.flushed_at, 0);

    /* a delay far in the future (an absolute unix time, unsigned on the
     * binary wire) keeps items and is recorded for persistence */
    set("k", "v", CACHE_SET, 0, &r);
    cmd_flush(&ctx, 0xffffffffu, &r);
    assert_int_equal(r.status, CMD_OK);
    assert_true(owner.flushed_at > cache_now() + 1000);
    cmd_get(&ctx, "k", 1, false, 0, true, &r);
    assert_int_equal(r.status, CMD_OK);
    cmd_result_done(&r);
    assert_int_equal(ts.cmd_flush, 2);

    struct process_options po = { .flush_enabled = false, .cas_visible = true };
    process_setup(&po);
    cmd_flush(&ctx, 0, &r);
    assert_int_equal(r.status, CMD_DISABLED);
    cmd_get(&ctx, "k", 1, false, 0, true, &r);
    assert_int_equal(r.status, CMD_OK);
    cmd_result_done(&r);
}

static void
test_unsigned_expiry_is_far_future(void **state)
{
    (void)state;
    struct cmd_result r;
    /* binary SET with expiry 2^31 or more: an absolute time, kept */
    cmd_store(&ctx, CACHE_SET, "k", 1, 0, cache_realtime((int64_t)0x80000000u),
              "v", 1, 0, &r);
    assert_int_equal(r.status, CMD_OK);
    cmd_get(&ctx, "k", 1, false, 0, true, &r);
    assert_int_equal(r.status, CMD_OK);
    cmd_result_done(&r);
    /* gat with it too */
    cmd_get(&ctx, "k", 1, true, cache_realtime((int64_t)0xffffffffu), true, &r);
    assert_int_equal(r.status, CMD_OK);
    cmd_result_done(&r);
    cmd_get(&ctx, "k", 1, false, 0, true, &r);
    assert_int_equal(r.status, CMD_OK);
    cmd_result_done(&r);
}

/* memcached -C: CAS hidden from clients, flushes cut by the second */
static int
setup_nocas(void **state)
{
    (void)state;
    struct cache_options o = {
        .memory_limit = 64 * MB, .item_size_max = MB, .cas_enabled = true,
        .flush_by_second = true,
    };
    memset(&owner, 0, sizeof(owner));
    memset(&ts, 0, sizeof(ts));
    struct process_options po = { .flush_enabled = true, .cas_visible = false };
    process_setup(&po);
    return cache_setup(&o) == 0 ? 0 : -1;
}

static int
teardown_nocas(void **state)
{
    struct process_options po = { .flush_enabled = true, .cas_visible = true };
    process_setup(&po);
    return teardown(state);
}

static void
test_hidden_cas(void **state)
{
    (void)state;
    struct cmd_result r;
    set("k", "v", CACHE_SET, 0, &r);
    assert_int_equal(r.status, CMD_OK);
    assert_int_equal(r.cas, 0);
    cmd_get(&ctx, "k", 1, false, 0, true, &r);
    assert_int_equal(r.status, CMD_OK);
    assert_int_equal(r.cas, 0);
    assert_true(r.it->cas != 0);   /* kept inside */
    cmd_result_done(&r);
    /* the cas command matches nothing, as memcached -C */
    set("k", "w", CACHE_CAS, 0, &r);
    assert_int_equal(r.status, CMD_EXISTS);
    set("nokey", "w", CACHE_CAS, 0, &r);
    assert_int_equal(r.status, CMD_NOT_FOUND);
    /* a binary set's CAS is ignored */
    set("k", "x", CACHE_SET, 12345, &r);
    assert_int_equal(r.status, CMD_OK);
    /* a delete or incr with a CAS mismatches */
    cmd_delete(&ctx, "k", 1, 12345, &r);
    assert_int_equal(r.status, CMD_EXISTS);
    cmd_delete(&ctx, "k", 1, 0, &r);
    assert_int_equal(r.status, CMD_OK);
}

static void
test_flush_by_second(void **state)
{
    (void)state;
    struct cmd_result r;
    set("old", "v", CACHE_SET, 0, &r);
    cmd_flush(&ctx, 0, &r);
    /* stored in the flush's second, after it: dead too (memcached -C) */
    set("new", "v", CACHE_SET, 0, &r);
    assert_int_equal(r.status, CMD_OK);
    cmd_get(&ctx, "old", 3, false, 0, true, &r);
    assert_int_equal(r.status, CMD_MISS);
    cmd_get(&ctx, "new", 3, false, 0, true, &r);
    assert_int_equal(r.status, CMD_MISS);
    /* and not current for the flusher: it is not written to disk */
    bool too_large = false;
    struct item *it = cache_item_alloc("z", 1, 0, 0, 1, &too_large);
    assert_non_null(it);
    uint64_t cas;
    assert_int_equal(cache_store(it, CACHE_SET, 0, &cas), CACHE_STORED);
    assert_false(cache_item_is_current(it));
    cache_item_release(it);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_and_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backpressure_refuses_before_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_touch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_large_set_drops_old_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsigned_expiry_is_far_future, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hidden_cas, setup_nocas, teardown_nocas),
        cmocka_unit_test_setup_teardown(test_flush_by_second, setup_nocas, teardown_nocas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
