/*
 * test_ring.c: unit tests of util/ring.c, the SPSC pointer queue with a
 * notify eventfd.
 *
 * Single-threaded: FIFO order, a full ring refuses a push and queues nothing,
 * an empty ring refuses a pop, wrap-around, and the notify fd protocol (the
 * eventfd is written by a push into an empty ring only). Two threads: a
 * producer pushes 2M sequenced pointers while the consumer sleeps in poll()
 * on the eventfd and drains exactly as ring.h prescribes; every entry must
 * arrive once and in order. A stranded entry would leave the consumer in
 * poll() forever, so a generous wall-clock guard turns a hang into a failure.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/ring.h"

#define ENTRY(i) ((void *)(uintptr_t)(i))

/* Hang guard of the two-thread tests: far beyond any sane run, even under
 * TSan on a loaded machine. Not a timing assertion. */
#define STRESS_GUARD_S 300

/* True when the notify fd is readable right now (poll, no wait). */
static bool
notify_readable(struct ring *r)
{
    struct pollfd p = { .fd = r->notify_fd, .events = POLLIN };
    int rc;

    do {
        rc = poll(&p, 1, 0);
    } while (rc < 0 && errno == EINTR);
    assert_true(rc >= 0);
    return rc == 1 && (p.revents & POLLIN);
}

/* Reads the eventfd counter without blocking; 0 when it was not readable. */
static uint64_t
notify_read(struct ring *r)
{
    uint64_t v = 0;
    ssize_t n = read(r->notify_fd, &v, sizeof(v));

    if (n < 0) {
        assert_int_equal(errno, EAGAIN);
        return 0;
    }
    assert_int_equal(n, sizeof(v));
    return v;
}

static void
test_init_sizes(void **state)
{
    (void)state;
    static const unsigned wants[] = { 0, 1, 3, 4, 7, 8, 100, 1024 };

    for (size_t i = 0; i < sizeof(wants) / sizeof(wants[0]); i++) {
        struct ring r;

        assert_int_equal(ring_init(&r, wants[i]), 0);
        assert_true(r.capacity - 1 >= wants[i]);
        assert_int_equal(r.capacity & (r.capacity - 1), 0);
        assert_true(r.notify_fd >= 0);
        assert_int_equal(ring_size(&r), 0);
        ring_deinit(&r);
        assert_int_equal(r.notify_fd, -1);
        assert_null(r.slots);
    }
}

static void
test_push_pop_order(void **state)
{
    (void)state;
    struct ring r;
    void *e = NULL;

    assert_int_equal(ring_init(&r, 16), 0);
    for (uintptr_t i = 1; i <= 16; i++) {
        assert_true(ring_push(&r, ENTRY(i)));
        assert_int_equal(ring_size(&r), i);
    }
    for (uintptr_t i = 1; i <= 16; i++) {
        assert_true(ring_pop(&r, &e));
        assert_ptr_equal(e, ENTRY(i));
    }
    assert_int_equal(ring_size(&r), 0);
    assert_true(ring_empty_fenced(&r));
    ring_deinit(&r);
}

static void
test_empty_pop(void **state)
{
    (void)state;
    struct ring r;
    void *e = ENTRY(0xdead);

    assert_int_equal(ring_init(&r, 4), 0);
    assert_false(ring_pop(&r, &e));
    assert_true(ring_empty_fenced(&r));
    assert_true(ring_push(&r, ENTRY(1)));
    assert_false(ring_empty_fenced(&r));
    assert_true(ring_pop(&r, &e));
    assert_ptr_equal(e, ENTRY(1));
    assert_false(ring_pop(&r, &e));
    assert_false(ring_pop(&r, &e));
    ring_deinit(&r);
}

static void
test_full_ring(void **state)
{
    (void)state;
    struct ring r;
    void *e;
    unsigned n = 0;

    assert_int_equal(ring_init(&r, 4), 0);
    while (ring_push(&r, ENTRY(n + 1))) {
        n++;
        assert_true(n < 1000);  /* a ring that never fills is a failure */
    }
    assert_true(n >= 4);
    assert_int_equal(n, r.capacity - 1);
    assert_int_equal(ring_size(&r), n);
    /* the refused push queued nothing, and refuses again */
    assert_false(ring_push(&r, ENTRY(999)));
    assert_int_equal(ring_size(&r), n);
    /* one pop makes room for exactly one */
    assert_true(ring_pop(&r, &e));
    assert_ptr_equal(e, ENTRY(1));
    assert_true(ring_push(&r, ENTRY(n + 1)));
    assert_false(ring_push(&r, ENTRY(999)));
    for (unsigned i = 2; i <= n + 1; i++) {
        assert_true(ring_pop(&r, &e));
        assert_ptr_equal(e, ENTRY(i));
    }
    assert_false(ring_pop(&r, &e));
    ring_deinit(&r);
}

static void
test_wraparound(void **state)
{
    (void)state;
    struct ring r;
    uintptr_t next_in = 1, next_out = 1;
    void *e;

    assert_int_equal(ring_init(&r, 5), 0);
    /* batches of 1..capacity-1 entries, many times round the ring */
    for (unsigned round = 0; round < 1000; round++) {
        unsigned batch = 1 + round % (r.capacity - 1);

        for (unsigned i = 0; i < batch; i++)
            assert_true(ring_push(&r, ENTRY(next_in++)));
        for (unsigned i = 0; i < batch; i++) {
            assert_true(ring_pop(&r, &e));
            assert_ptr_equal(e, ENTRY(next_out++));
        }
        assert_false(ring_pop(&r, &e));
    }
    ring_deinit(&r);
}

static void
test_notify_protocol(void **state)
{
    (void)state;
    struct ring r;
    void *e;

    assert_int_equal(ring_init(&r, 16), 0);
    assert_false(notify_readable(&r));

    /* the first push into an empty ring writes the eventfd */
    assert_true(ring_push(&r, ENTRY(1)));
    assert_true(notify_readable(&r));
    assert_int_equal(notify_read(&r), 1);
    assert_false(notify_readable(&r));

    /* pushes into a non-empty ring do not */
    for (uintptr_t i = 2; i <= 10; i++) {
        assert_true(ring_push(&r, ENTRY(i)));
        assert_false(notify_readable(&r));
    }

    /* consumer: drain; the ring is then empty and nothing is signalled */
    for (uintptr_t i = 1; i <= 10; i++) {
        assert_true(ring_pop(&r, &e));
        assert_ptr_equal(e, ENTRY(i));
    }
    assert_true(ring_empty_fenced(&r));
    assert_false(notify_readable(&r));

    /* an empty ring signals again, once, for any number of pushes */
    assert_true(ring_push(&r, ENTRY(11)));
    assert_true(ring_push(&r, ENTRY(12)));
    assert_true(ring_push(&r, ENTRY(13)));
    assert_true(notify_readable(&r));
    assert_int_equal(notify_read(&r), 1);

    /* ring_consume_notify() clears the fd, and is harmless when clear */
    assert_true(ring_pop(&r, &e));
    assert_true(ring_pop(&r, &e));
    assert_true(ring_pop(&r, &e));
    assert_ptr_equal(e, ENTRY(13));
    assert_true(ring_push(&r, ENTRY(14)));
    assert_true(notify_readable(&r));
    ring_consume_notify(&r);
    assert_false(notify_readable(&r));
    ring_consume_notify(&r);
    assert_false(notify_readable(&r));
    assert_true(ring_pop(&r, &e));
    assert_ptr_equal(e, ENTRY(14));

    /* a full ring refusing a push writes nothing */
    while (ring_push(&r, ENTRY(0)))
        ;
    assert_int_equal(notify_read(&r), 1);   /* the first of those pushes */
    assert_false(ring_push(&r, ENTRY(0)));
    assert_false(notify_readable(&r));
    ring_deinit(&r);
}

/* ---- two threads ------------------------------------------------------ */

struct stress {
    struct ring ring;
    uintptr_t count;       /* entries to push: 1..count */
    atomic_bool stop;      /* consumer gave up: producer must return */
    uintptr_t pushed;      /* producer's tally, read after join */
};

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Producer thread: pushes 1..count; on a full ring it yields (the test's
 * producer has nothing else to do; the server's would queue elsewhere). */
static void *
stress_producer(void *arg)
{
    struct stress *s = arg;

    for (uintptr_t i = 1; i <= s->count; i++) {
        while (!ring_push(&s->ring, ENTRY(i))) {
            if (atomic_load_explicit(&s->stop, memory_order_relaxed))
                return NULL;
            sched_yield();
        }
        s->pushed = i;
    }
    return NULL;
}

/* Consumer, on the test's thread: waits in poll() on the notify fd only, and
 * drains as ring.h prescribes: consume the notify, pop until empty, then
 * ring_empty_fenced() before sleeping again. */
static void
run_stress(unsigned ring_entries, uintptr_t count)
{
    struct stress s;
    pthread_t producer;
    uintptr_t expected = 1;
    unsigned long wakeups = 0;
    double deadline = now_s() + STRESS_GUARD_S;
    bool timed_out = false, out_of_order = false;
    int poll_errno = 0;
    void *bad = NULL;
    void *e;

    memset(&s, 0, sizeof(s));
    assert_int_equal(ring_init(&s.ring, ring_entries), 0);
    s.count = count;
    atomic_init(&s.stop, false);
    assert_int_equal(pthread_create(&producer, NULL, stress_producer, &s), 0);

    while (expected <= count && !out_of_order) {
        struct pollfd p = { .fd = s.ring.notify_fd, .events = POLLIN };
        int rc;

        if (now_s() > deadline) {
            timed_out = true;
            break;
        }
        rc = poll(&p, 1, 1000);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0) {
            poll_errno = errno;
            break;
        }
        if (rc == 0)
            continue;  /* checks the guard; the producer may just be slow */
        wakeups++;
        ring_consume_notify(&s.ring);
        for (;;) {
            while (ring_pop(&s.ring, &e)) {
                if (e != ENTRY(expected)) {
                    out_of_order = true;
                    bad = e;
                    break;
                }
                expected++;
            }
            if (out_of_order || ring_empty_fenced(&s.ring))
                break;
        }
    }
    atomic_store_explicit(&s.stop, true, memory_order_relaxed);
    assert_int_equal(pthread_join(producer, NULL), 0);

    if (poll_errno != 0)
        fail_msg("poll: %s", strerror(poll_errno));
    if (timed_out)
        fail_msg("no progress within %d s: received %lu of %lu entries, "
                 "ring holds %u, producer pushed %lu (a stranded entry?)",
                 STRESS_GUARD_S, (unsigned long)(expected - 1),
                 (unsigned long)count, ring_size(&s.ring),
                 (unsigned long)s.pushed);
    if (out_of_order)
        fail_msg("expected entry %lu, got %lu", (unsigned long)expected,
                 (unsigned long)(uintptr_t)bad);
    assert_int_equal(expected - 1, count);
    assert_int_equal(s.pushed, count);
    assert_false(ring_pop(&s.ring, &e));   /* nothing extra, nothing twice */
    assert_true(wakeups > 0);
    print_message("ring of %u: %lu entries, %lu wake-ups\n",
                  s.ring.capacity - 1, (unsigned long)count, wakeups);
    ring_deinit(&s.ring);
}

/* A roomy ring: the consumer keeps up, so it often sleeps on an empty ring
 * and the wake-up path is taken many times. */
static void
test_stress_two_threads(void **state)
{
    (void)state;
    run_stress(1024, 2000000);
}

/* A tiny ring: mostly full, so the producer sees refusals and the size == 1
 * edge is crossed while the consumer is mid-drain. */
static void
test_stress_small_ring(void **state)
{
    (void)state;
    run_stress(3, 500000);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_sizes),
        cmocka_unit_test(test_push_pop_order),
        cmocka_unit_test(test_empty_pop),
        cmocka_unit_test(test_full_ring),
        cmocka_unit_test(test_wraparound),
        cmocka_unit_test(test_notify_protocol),
        cmocka_unit_test(test_stress_two_threads),
        cmocka_unit_test(test_stress_small_ring),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
