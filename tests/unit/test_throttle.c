/*
 * test_throttle.c: unit tests of server/throttle.c, the backpressure law.
 *
 * The law is a pure function, so every property is checked on chosen
 * inputs: no delay below the soft limits; between the limits a delay equal
 * to the backlog past the soft point over the measured drain rate (so it
 * grows in proportion to the backlog and shrinks in proportion to the
 * rate), at least 1 ms and capped; the queue fill as a second, independent
 * source of pressure; refusal at the hard limit and at a nearly full queue.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "server/throttle.h"

#define MB (1024u * 1024u)

/* 64 MB soft, 256 MB hard, 16 MB/s and 10000 writes/s measured, an empty
 * queue of 262144 slots. */
static struct throttle_input
base_input(void)
{
    return (struct throttle_input){
        .dirty_bytes = 0, .soft_bytes = 64 * (uint64_t)MB,
        .hard_bytes = 256 * (uint64_t)MB, .drain_bytes_per_s = 16 * MB,
        .drain_writes_per_s = 10000, .queue_len = 0, .queue_capacity = 262144,
    };
}

static enum throttle_verdict
decide(const struct throttle_input *in, uint32_t *ms)
{
    *ms = 12345;   /* must be overwritten */
    return throttle_decide(in, ms);
}

static void
test_below_soft_no_delay(void **state)
{
    (void)state;
    struct throttle_input in = base_input();
    uint32_t ms;
    const uint64_t dirty[] = { 0, 1, 32 * (uint64_t)MB, 64 * (uint64_t)MB };
    for (size_t i = 0; i < sizeof(dirty) / sizeof(dirty[0]); i++) {
        in.dirty_bytes = dirty[i];
        assert_int_equal(decide(&in, &ms), THROTTLE_ADMIT);
        assert_int_equal(ms, 0);
    }
    /* a queue up to its soft fill adds no pressure either */
    in.dirty_bytes = 64 * (uint64_t)MB;
    in.queue_len = in.queue_capacity / 4;
    assert_int_equal(decide(&in, &ms), THROTTLE_ADMIT);
    assert_int_equal(ms, 0);
}

static void
test_delay_is_backlog_over_rate(void **state)
{
    (void)state;
    struct throttle_input in = base_input();
    uint32_t ms;
    /* 8 MB past soft at 16 MB/s: 500 ms */
    in.dirty_bytes = in.soft_bytes + 8 * (uint64_t)MB;
    assert_int_equal(decide(&in, &ms), THROTTLE_DELAY);
    assert_int_equal(ms, 500);
    /* half the backlog, half the delay */
    in.dirty_bytes = in.soft_bytes + 4 * (uint64_t)MB;
    assert_int_equal(decide(&in, &ms), THROTTLE_DELAY);
    assert_int_equal(ms, 250);
    /* twice the rate, half the delay again */
    in.drain_bytes_per_s = 32 * MB;
    assert_int_equal(decide(&in, &ms), THROTTLE_DELAY);
    assert_int_equal(ms, 125);
}

static void
test_delay_grows_monotonically(void **state)
{
    (void)state;
    struct throttle_input in = base_input();
    uint32_t prev = 0, ms;
    for (uint64_t past = MB; in.soft_bytes + past < in.hard_bytes; past += MB) {
        in.dirty_bytes = in.soft_bytes + past;
        assert_int_equal(decide(&in, &ms), THROTTLE_DELAY);
        assert_true(ms >= prev);
        assert_true(ms >= 1 && ms <= THROTTLE_MAX_MS);
        prev = ms;
    }
    assert_int_equal(prev, THROTTLE_MAX_MS);   /* reached the cap */
}

static void
test_capped(void **state)
{
    (void)state;
    struct throttle_input in = base_input();
    uint32_t ms;
    in.dirty_bytes = in.hard_bytes - 1;   /* 192 MB past soft at 16 MB/s */
    assert_int_equal(decide(&in, &ms), THROTTLE_DELAY);
    assert_int_equal(ms, THROTTLE_MAX_MS);
}

static void
test_at_least_one_ms(void **state)
{
    (void)state;
    struct throttle_input in = base_input();
    uint32_t ms;
    in.dirty_bytes = in.soft_bytes + 1;
    assert_int_equal(decide(&in, &ms), THROTTLE_DELAY);
    assert_int_equal(ms, 1);
}

static void
test_refuse_past_hard(void **state)
{
    (void)state;
    struct throttle_input in = base_input();
    uint32_t ms;
    in.dirty_bytes = in.hard_bytes;
    assert_int_equal(decide(&in, &ms), THROTTLE_REFUSE);
    assert_int_equal(ms, 0);
    in.dirty_bytes = in.hard_bytes * 4;
    assert_int_equal(decide(&in, &ms), THROTTLE_REFUSE);
}

static void
test_unknown_rate_uses_floor(void **state)
{
    (void)state;
    struct throttle_input in = base_input();
    uint32_t ms;
    in.drain_bytes_per_s = 0;
    in.dirty_bytes = in.soft_bytes + THROTTLE_DEFAULT_BYTES_PER_S / 4;
    assert_int_equal(decide(&in, &ms), THROTTLE_DELAY);
    assert_int_equal(ms, 250);
    in.drain_bytes_per_s = 1000;   /* below the floor: the floor */
    assert_int_equal(decide(&in, &ms), THROTTLE_DELAY);
    assert_int_equal(ms, 250);
}

static void
test_queue_fill(void **state)
{
    (void)state;
    struct throttle_input in = base_input();
    uint32_t ms;
    size_t qsoft = in.queue_capacity / 4;
    /* 2000 writes past the queue's soft fill at 10000/s: 200 ms */
    in.queue_len = qsoft + 2000;
    assert_int_equal(decide(&in, &ms), THROTTLE_DELAY);
    assert_int_equal(ms, 200);
    /* the larger of the two delays wins */
    in.dirty_bytes = in.soft_bytes + 8 * (uint64_t)MB;   /* 500 ms */
    assert_int_equal(decide(&in, &ms), THROTTLE_DELAY);
    assert_int_equal(ms, 500);
    in.dirty_bytes = 0;
    in.drain_writes_per_s = 0;   /* floor: 1000/s, 2000 ms, capped */
    assert_int_equal(decide(&in, &ms), THROTTLE_DELAY);
    assert_int_equal(ms, THROTTLE_MAX_MS);
    /* 95% full: refused, whatever the bytes */
    in.queue_len = in.queue_capacity * 95 / 100 + 1;
    assert_int_equal(decide(&in, &ms), THROTTLE_REFUSE);
}

static void
test_no_queue_bytes_only(void **state)
{
    (void)state;
    struct throttle_input in = base_input();
    uint32_t ms;
    in.queue_capacity = 0;
    in.queue_len = 0;
    assert_int_equal(decide(&in, &ms), THROTTLE_ADMIT);
    in.dirty_bytes = in.soft_bytes + 8 * (uint64_t)MB;
    assert_int_equal(decide(&in, &ms), THROTTLE_DELAY);
    assert_int_equal(ms, 500);
}

/* The transaction being written counts like any dirty byte: the hard
 * limit counts it, and a law that did not would admit writes without
 * delay until the hard limit refused them. */
static void
test_committing_batch_counts(void **state)
{
    (void)state;
    struct throttle_input in = base_input();
    uint32_t ms;
    in.dirty_bytes = in.soft_bytes + 8 * (uint64_t)MB;
    in.committing_bytes = 8 * (uint64_t)MB;
    /* 8 MB past the soft point at 16 MB/s, committing or not */
    assert_int_equal(decide(&in, &ms), THROTTLE_DELAY);
    assert_int_equal(ms, 500);
    in.dirty_bytes = in.hard_bytes;
    in.committing_bytes = in.hard_bytes;
    assert_int_equal(decide(&in, &ms), THROTTLE_REFUSE);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_below_soft_no_delay),
        cmocka_unit_test(test_delay_is_backlog_over_rate),
        cmocka_unit_test(test_delay_grows_monotonically),
        cmocka_unit_test(test_capped),
        cmocka_unit_test(test_at_least_one_ms),
        cmocka_unit_test(test_refuse_past_hard),
        cmocka_unit_test(test_unknown_rate_uses_floor),
        cmocka_unit_test(test_queue_fill),
        cmocka_unit_test(test_no_queue_bytes_only),
        cmocka_unit_test(test_committing_batch_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
