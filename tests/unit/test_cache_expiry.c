/*
 * test_cache_expiry.c: time in the whole cache (server/cache.h), on a
 * clock driven by cache_clock_set_for_test(), a test-only hook that
 * cache_clock.c exports without declaring it in cache.h: the clock and real
 * time, expiry, touch, and flush_all now, delayed and without CAS.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <time.h>

#include "server/cache.h"
#include "tests/unit/cache_helpers.h"

/* ---------------------------------------------------------------- time */

static void
test_clock_and_realtime(void **state)
{
    (void)state;
    /* the clock starts at 2, so rel time 1 is always in the past */
    assert_int_equal(cache_now(), 2);
    time_t wall = time(NULL);
    time_t started = cache_process_started();
    assert_true(started <= wall - 2);
    assert_true(started >= wall - 2 - 60);

    assert_int_equal(cache_realtime(0), 0);
    assert_int_equal(cache_realtime(-1), 1);
    assert_int_equal(cache_realtime(INT32_MIN), 1);
    assert_int_equal(cache_realtime(100), 2 + 100);
    assert_int_equal(cache_realtime(60 * 60 * 24 * 30), 2 + 60 * 60 * 24 * 30);
    /* past 30 days: absolute unix time */
    assert_int_equal(cache_realtime(60 * 60 * 24 * 30 + 1), 1); /* 1970 */
    assert_int_equal(cache_realtime((int64_t)started), 1);
    assert_int_equal(cache_realtime((int64_t)wall + 1000),
                     (rel_time_t)(wall + 1000 - started));
    assert_int_equal(cache_rel_to_unix(cache_realtime((int64_t)wall + 1000)),
                     wall + 1000);
    assert_int_equal(cache_rel_to_unix(0), 0);
    assert_int_equal(cache_rel_to_unix(5), started + 5);

    cache_clock_set_for_test(1000);
    assert_int_equal(cache_now(), 1000);
    assert_int_equal(cache_realtime(10), 1010);
    /* a tick continues from the test clock, never back to real time */
    cache_clock_tick();
    assert_true(cache_now() >= 1000);
    assert_true(cache_now() < 1000 + 60);
}

static void
test_expiry(void **state)
{
    (void)state;
    rel_time_t now = cache_now();
    assert_int_equal(store_full(CACHE_SET, "t", "v", 1, 0, now + 10, 0, NULL),
                     CACHE_STORED);
    assert_int_equal(store_full(CACHE_SET, "never", "v", 1, 0, 0, 0, NULL),
                     CACHE_STORED);
    assert_int_equal(store_full(CACHE_SET, "past", "v", 1, 0, cache_realtime(-1),
                                0, NULL), CACHE_STORED);
    enum cache_miss why = CACHE_MISS_ABSENT;
    assert_null(cache_get("past", 4, &why));
    assert_int_equal(why, CACHE_MISS_EXPIRED);

    cache_clock_set_for_test(now + 9);
    assert_value("t", "v");
    cache_clock_set_for_test(now + 10);
    why = CACHE_MISS_ABSENT;
    assert_null(cache_get("t", 1, &why));
    assert_int_equal(why, CACHE_MISS_EXPIRED);
    /* once unlinked the key is simply absent */
    assert_null(cache_get("t", 1, &why));
    assert_int_equal(why, CACHE_MISS_ABSENT);

    cache_clock_set_for_test(now + 1000000);
    assert_value("never", "v");

    struct cache_stats st;
    cache_stats(&st);
    assert_int_equal(st.curr_items, 1);
    /* "past" was never fetched; "t" was */
    assert_int_equal(st.expired_unfetched, 1);

    assert_int_equal(cache_touch("t", 1, 0), CACHE_NOT_FOUND);
    assert_int_equal(cache_delta("t", 1, true, 1, 0, NULL, NULL), CACHE_NOT_FOUND);
}

static void
test_touch(void **state)
{
    (void)state;
    rel_time_t now = cache_now();
    assert_int_equal(store_full(CACHE_SET, "t", "v", 1, 3, now + 5, 0, NULL),
                     CACHE_STORED);
    uint64_t cas = get_cas("t");
    assert_int_equal(cache_touch("t", 1, now + 100), CACHE_TOUCHED);
    assert_int_equal(get_cas("t"), cas); /* touch changes exptime only */
    cache_clock_set_for_test(now + 50);
    assert_value("t", "v");

    struct item *it = cache_get_touch("t", 1, now + 60, NULL);
    assert_non_null(it);
    assert_int_equal(atomic_load(&it->exptime), now + 60);
    assert_int_equal(it->flags, 3);
    cache_item_release(it);
    cache_clock_set_for_test(now + 60);
    enum cache_miss why = CACHE_MISS_ABSENT;
    assert_null(cache_get_touch("t", 1, 0, &why));
    assert_int_equal(why, CACHE_MISS_EXPIRED);
    assert_int_equal(cache_touch("t", 1, 0), CACHE_NOT_FOUND);
    assert_int_equal(cache_touch("nothing", 7, 0), CACHE_NOT_FOUND);
}

/* ---------------------------------------------------------------- flush */

static void
test_flush_immediate(void **state)
{
    (void)state;
    assert_int_equal(set_kv("a", "1"), CACHE_STORED);
    assert_int_equal(set_kv("b", "2"), CACHE_STORED);
    cache_flush(cache_now());
    enum cache_miss why = CACHE_MISS_ABSENT;
    assert_null(cache_get("a", 1, &why));
    assert_int_equal(why, CACHE_MISS_FLUSHED);
    /* stored in the same second, after the flush: kept */
    assert_int_equal(set_kv("c", "3"), CACHE_STORED);
    assert_value("c", "3");
    assert_int_equal(store(CACHE_ADD, "b", "4", 0, NULL), CACHE_STORED);
    assert_value("b", "4");
    assert_int_equal(store(CACHE_REPLACE, "a", "5", 0, NULL), CACHE_NOT_STORED);

    cache_clock_set_for_test(cache_now() + 1);
    assert_value("c", "3");
    assert_value("b", "4");

    struct cache_stats st;
    cache_stats(&st);
    assert_int_equal(st.curr_items, 2);
}

static void
test_flush_delayed(void **state)
{
    (void)state;
    rel_time_t now = cache_now();
    assert_int_equal(set_kv("a", "1"), CACHE_STORED);
    cache_flush(now + 5);
    cache_clock_set_for_test(now + 4);
    assert_value("a", "1");
    assert_int_equal(set_kv("b", "2"), CACHE_STORED);

    cache_clock_set_for_test(now + 5);
    enum cache_miss why = CACHE_MISS_ABSENT;
    assert_null(cache_get("a", 1, &why));
    assert_int_equal(why, CACHE_MISS_FLUSHED);
    assert_null(cache_get("b", 1, &why));
    assert_int_equal(why, CACHE_MISS_FLUSHED);
    /* stored once the flush took effect, in its very second: kept */
    assert_int_equal(set_kv("c", "3"), CACHE_STORED);
    assert_value("c", "3");
    cache_clock_set_for_test(now + 6);
    assert_value("c", "3");

    /* an immediate flush cancels a pending delayed one (memcached) */
    cache_flush(now + 20);
    cache_flush(now + 6);
    assert_missing("c");
    cache_clock_set_for_test(now + 7);
    assert_int_equal(set_kv("d", "4"), CACHE_STORED);
    cache_clock_set_for_test(now + 30);
    assert_value("d", "4");
}

static void
test_flush_nocas(void **state)
{
    (void)state;
    rel_time_t now = cache_now();
    assert_int_equal(set_kv("a", "1"), CACHE_STORED);
    cache_flush(now);
    enum cache_miss why = CACHE_MISS_ABSENT;
    assert_null(cache_get("a", 1, &why));
    assert_int_equal(why, CACHE_MISS_FLUSHED);
    /* memcached -C: one-second granularity, items stored in the flush's
     * second are gone too */
    assert_int_equal(set_kv("b", "2"), CACHE_STORED);
    assert_missing("b");
    cache_clock_set_for_test(now + 1);
    assert_int_equal(set_kv("c", "3"), CACHE_STORED);
    assert_value("c", "3");

    cache_flush(now + 10);
    cache_clock_set_for_test(now + 9);
    assert_value("c", "3");
    cache_clock_set_for_test(now + 10);
    assert_missing("c");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_clock_and_realtime, setup_default, teardown_cache),
        cmocka_unit_test_setup_teardown(test_expiry, setup_default, teardown_cache),
        cmocka_unit_test_setup_teardown(test_touch, setup_default, teardown_cache),
        cmocka_unit_test_setup_teardown(test_flush_immediate, setup_default, teardown_cache),
        cmocka_unit_test_setup_teardown(test_flush_delayed, setup_default, teardown_cache),
        cmocka_unit_test_setup_teardown(test_flush_nocas, setup_nocas, teardown_cache),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
