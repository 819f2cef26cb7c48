/*
 * test_cache_clock.c: unit tests of server/cache_clock.c alone.
 *
 * memcached's expiry rule (0, negative, the 30-day relative boundary,
 * absolute unix times before and after the start), the clock's start and
 * test hook, the CAS counter and its floor, and flush_all marks judged on
 * items built by hand: immediate and delayed, with CAS on (a CAS mark, and
 * the persistence hook told once) and off (one-second granularity), and
 * items whose CAS the client chose judged by time instead.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "server/cache_priv.h"

void cache_clock_set_for_test(rel_time_t now);

#define DAYS30 (60 * 60 * 24 * 30)

static unsigned flush_calls;
static uint64_t flush_below;

static void
on_flush(const struct cache_change *ch)
{
    assert_int_equal(ch->kind, CACHE_CHANGE_FLUSH);
    flush_calls++;
    flush_below = ch->cas_below;
}

static int
setup_cas(void **state)
{
    (void)state;
    flush_calls = 0;
    flush_below = 0;
    clock_setup(true, on_flush);
    return 0;
}

static int
setup_nocas(void **state)
{
    (void)state;
    flush_calls = 0;
    clock_setup(false, NULL);
    return 0;
}

/* An item as the shard would have linked it: stored at `time`. */
static struct item
stored(rel_time_t time, uint64_t cas)
{
    struct item it;
    memset(&it, 0, sizeof(it));
    it.time = time;
    it.cas = cas;
    return it;
}

static void
test_start(void **state)
{
    (void)state;
    assert_int_equal(cache_now(), CLOCK_START);
    time_t wall = time(NULL);
    time_t started = cache_process_started();
    assert_true(started <= wall - CLOCK_START);
    assert_true(started >= wall - CLOCK_START - 60);
    /* a tick from a fresh start stays within a few seconds of it */
    cache_clock_tick();
    assert_true(cache_now() >= CLOCK_START && cache_now() < CLOCK_START + 60);
    assert_int_equal(clock_op_now(), cache_now());
}

/* The server's second turns with the wall clock's: sampled every 10 ms
 * for 1.1 s, process_started + now is the wall clock's second whenever it
 * did not change during the sample. Before, the two clocks' seconds turned
 * at unrelated moments, and for part of every second the server was a
 * second off (when ahead, an absolute exptime of time() + 1 had expired
 * already: memcached's t/expirations.t failed so once in CI). */
static void
test_second_follows_wall_clock(void **state)
{
    (void)state;
    unsigned compared = 0;
    for (int i = 0; i < 110; i++) {
        /* CLOCK_REALTIME, as clock_setup reads it: time(2) is the coarse
         * clock, a few ms behind it at each turn of the second */
        struct timespec t0, t1;
        clock_gettime(CLOCK_REALTIME, &t0);
        cache_clock_tick();
        time_t server = cache_process_started() + (time_t)cache_now();
        clock_gettime(CLOCK_REALTIME, &t1);
        time_t before = t0.tv_sec, after = t1.tv_sec;
        if (before == after) {
            if (server != before)
                fail_msg("sample %d: server second %lld, wall %lld", i,
                         (long long)server, (long long)before);
            compared++;
        }
        struct timespec ten_ms = { 0, 10 * 1000 * 1000 };
        nanosleep(&ten_ms, NULL);
    }
    assert_true(compared >= 50);
}

static void
test_realtime_rule(void **state)
{
    (void)state;
    time_t started = cache_process_started();
    time_t wall = time(NULL);
    cache_clock_set_for_test(500);

    /* 0 never expires */
    assert_int_equal(cache_realtime(0), 0);
    /* negative: already expired (1 is always in the past) */
    assert_int_equal(cache_realtime(-1), 1);
    assert_int_equal(cache_realtime(-DAYS30), 1);
    assert_int_equal(cache_realtime(INT64_MIN), 1);
    /* up to and including 30 days: relative to now */
    assert_int_equal(cache_realtime(1), 501);
    assert_int_equal(cache_realtime(DAYS30 - 1), 500 + DAYS30 - 1);
    assert_int_equal(cache_realtime(DAYS30), 500 + DAYS30);
    /* one past 30 days: an absolute unix time, here in 1970, so expired */
    assert_int_equal(cache_realtime(DAYS30 + 1), 1);
    /* absolute, at or before the start: expired */
    assert_int_equal(cache_realtime((int64_t)started), 1);
    assert_int_equal(cache_realtime((int64_t)started - 1000), 1);
    /* absolute, after the start: relative to the start, not to now */
    assert_int_equal(cache_realtime((int64_t)started + 1), 1);
    assert_int_equal(cache_realtime((int64_t)wall + 1000),
                     (rel_time_t)(wall + 1000 - started));
    cache_clock_set_for_test(5000);
    assert_int_equal(cache_realtime((int64_t)wall + 1000),
                     (rel_time_t)(wall + 1000 - started));
    assert_int_equal(cache_realtime(10), 5010);
    /* far future absolute times saturate rather than wrap */
    assert_int_equal(cache_realtime(INT64_MAX), UINT32_MAX);

    /* and back to unix time */
    assert_int_equal(cache_rel_to_unix(0), 0);
    assert_int_equal(cache_rel_to_unix(cache_realtime((int64_t)wall + 1000)),
                     wall + 1000);
    assert_int_equal(cache_rel_to_unix(7), started + 7);
}

static void
test_test_clock_and_tick(void **state)
{
    (void)state;
    cache_clock_set_for_test(1000);
    assert_int_equal(cache_now(), 1000);
    /* a tick continues from the test clock, never back to real time */
    cache_clock_tick();
    assert_true(cache_now() >= 1000 && cache_now() < 1000 + 60);
}

static void
test_cas_counter(void **state)
{
    (void)state;
    assert_int_equal(cache_cas_high(), 0);
    assert_int_equal(clock_next_cas(), 1);
    assert_int_equal(clock_next_cas(), 2);
    assert_int_equal(cache_cas_high(), 2);
    /* a floor from the disk: later CAS values exceed it */
    cache_set_cas_floor(100);
    assert_int_equal(cache_cas_high(), 100);
    assert_int_equal(clock_next_cas(), 101);
    /* a lower floor never moves the counter back */
    cache_set_cas_floor(50);
    assert_int_equal(clock_next_cas(), 102);
}

static void
test_cas_disabled(void **state)
{
    (void)state;
    /* memcached -C: every item's CAS is 0 */
    assert_int_equal(clock_next_cas(), 0);
    assert_int_equal(clock_next_cas(), 0);
}

static void
test_flush_immediate(void **state)
{
    (void)state;
    rel_time_t now = cache_now();
    struct item before = stored(now, clock_next_cas());
    struct item nocas = stored(now, 0);
    assert_false(clock_item_is_flushed(&before, now));

    cache_flush(now);
    assert_int_equal(flush_calls, 1);
    assert_int_equal(flush_below, before.cas + 1);
    assert_true(clock_item_is_flushed(&before, now));
    /* a CAS of 0 says nothing about order: only time can judge it */
    assert_false(clock_item_is_flushed(&nocas, now));
    /* stored after the flush in the same second: alive (the CAS mark,
     * unlike memcached -C's time mark, tells them apart) */
    struct item after = stored(now, clock_next_cas());
    assert_false(clock_item_is_flushed(&after, now));
    assert_false(clock_item_is_flushed(&after, now + 100));
}

static void
test_flush_delayed(void **state)
{
    (void)state;
    rel_time_t now = cache_now();
    struct item a = stored(now, clock_next_cas());
    cache_flush(now + 5);
    assert_int_equal(flush_calls, 0);
    cache_clock_set_for_test(now + 4);
    assert_false(clock_item_is_flushed(&a, cache_now()));
    struct item b = stored(now + 4, clock_next_cas());

    /* due: the next operation's clock turns it into a CAS mark */
    cache_clock_set_for_test(now + 5);
    assert_int_equal(flush_calls, 1);
    assert_true(clock_item_is_flushed(&a, clock_op_now()));
    assert_true(clock_item_is_flushed(&b, clock_op_now()));
    struct item c = stored(now + 5, clock_next_cas());
    assert_false(clock_item_is_flushed(&c, clock_op_now()));
    assert_int_equal(flush_calls, 1);   /* fired once */

    /* an immediate flush supersedes a pending delayed one (memcached) */
    cache_flush(now + 20);
    cache_flush(now + 5);
    assert_int_equal(flush_calls, 2);
    assert_true(clock_item_is_flushed(&c, cache_now()));
    struct item d = stored(now + 5, clock_next_cas());
    cache_clock_set_for_test(now + 30);
    assert_false(clock_item_is_flushed(&d, clock_op_now()));
    assert_int_equal(flush_calls, 2);
}

static void
test_flush_explicit_cas(void **state)
{
    (void)state;
    rel_time_t now = cache_now();
    (void)clock_next_cas();
    (void)clock_next_cas();
    /* CAS values the client chose (meta E) say nothing about order */
    struct item before = stored(now, 1);
    before.iflags = ITEM_CAS_EXPLICIT;
    struct item same_second = stored(now + 1, 1);
    same_second.iflags = ITEM_CAS_EXPLICIT;
    cache_clock_set_for_test(now + 1);
    cache_flush(now + 1);
    /* so they are judged by time: stored in an earlier second, dead */
    assert_true(clock_item_is_flushed(&before, now + 1));
    /* stored in the flush's second (before or after it): alive, as
     * memcached's time rule keeps the current second */
    assert_false(clock_item_is_flushed(&same_second, now + 1));
    struct item after = stored(now + 2, 1);
    after.iflags = ITEM_CAS_EXPLICIT;
    assert_false(clock_item_is_flushed(&after, now + 2));
    /* the same low CAS from the counter would be dead */
    struct item counted = stored(now + 2, 1);
    assert_true(clock_item_is_flushed(&counted, now + 2));
}

static void
test_flush_nocas(void **state)
{
    (void)state;
    rel_time_t now = cache_now();
    struct item a = stored(now, 0);
    cache_flush(now);
    assert_true(clock_item_is_flushed(&a, now));
    /* one-second granularity: stored in the flush's second, gone too */
    struct item b = stored(now, 0);
    assert_true(clock_item_is_flushed(&b, now));
    struct item c = stored(now + 1, 0);
    assert_false(clock_item_is_flushed(&c, now + 1));

    cache_flush(now + 10);
    assert_false(clock_item_is_flushed(&c, now + 9));
    assert_true(clock_item_is_flushed(&c, now + 10));
    struct item d = stored(now + 11, 0);
    assert_false(clock_item_is_flushed(&d, now + 11));
    assert_int_equal(flush_calls, 0);   /* no hook given */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_start, setup_cas),
        cmocka_unit_test_setup(test_second_follows_wall_clock, setup_cas),
        cmocka_unit_test_setup(test_realtime_rule, setup_cas),
        cmocka_unit_test_setup(test_test_clock_and_tick, setup_cas),
        cmocka_unit_test_setup(test_cas_counter, setup_cas),
        cmocka_unit_test_setup(test_cas_disabled, setup_nocas),
        cmocka_unit_test_setup(test_flush_immediate, setup_cas),
        cmocka_unit_test_setup(test_flush_delayed, setup_cas),
        cmocka_unit_test_setup(test_flush_explicit_cas, setup_cas),
        cmocka_unit_test_setup(test_flush_nocas, setup_nocas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
