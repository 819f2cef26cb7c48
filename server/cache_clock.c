/*
 * cache_clock.c: the cache's notions of time and order (contract in
 * cache.h and cache_priv.h).
 *
 * Time. rel_time_t counts seconds since start, beginning at CLOCK_START so
 * that rel time 1 ("expired at once") is always in the past. The listener
 * advances it once a second from CLOCK_MONOTONIC, so a wall-clock step
 * does not expire or revive items. cache_realtime() converts a client's
 * exptime with memcached's rule.
 *
 * Order. The CAS counter hands out one 64-bit value per linked item.
 *
 * flush_all is O(1): it records a mark and dead items are unlinked when an
 * operation meets them. Writers hold flush_lock; readers take no lock.
 * flush_time: items stored at or before it are dead once now >= flush_time
 * (0 = none). flush_cas: items whose CAS is below it are dead (0 = none).
 * With CAS on, a flush that takes effect is turned into a flush_cas mark
 * (the next CAS to be handed out) and flush_time goes back to 0, so items
 * stored later in the same second survive. With CAS off only flush_time
 * exists and has memcached -C's one-second granularity.
 *
 * A CAS the client chose (meta E) says nothing about order, so an item
 * that has one is judged by time against the mark: dead when stored in a
 * second before the flush took effect (flush_cas_time). One stored in that
 * very second, before the flush, survives it (memcached's own time rule
 * keeps the current second too).
 */
#include <config.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "server/cache_priv.h"

#define REALTIME_MAXDELTA (60 * 60 * 24 * 30) /* memcached's 30 days */

/* Written by clock_setup() before other threads start, then read-only. */
static bool cas_enabled;
static void (*on_flush)(const struct cache_change *change);

/* Next CAS to hand out; 1 first. */
static _Atomic uint64_t cas_next = 1;

/* Clock: rel time = whole seconds of (monotonic ns - clock_base_ns). The
 * base carries the wall clock's fraction of a second at start, so the
 * server's second turns when the wall clock's does: a client's absolute
 * exptime of time() + N then has N seconds to live, not N - 1 when the
 * two clocks' seconds happen to turn at different moments. */
static _Atomic rel_time_t clock_current = CLOCK_START;
static _Atomic int64_t clock_base_ns;
static time_t process_started;

static pthread_mutex_t flush_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic rel_time_t flush_time;
static _Atomic uint64_t flush_cas;
static _Atomic rel_time_t flush_cas_time;   /* when flush_cas was set */
/* flush_by_second: the second of the last flush (0: none); items stored
 * in it or before are dead. Set before other threads start. */
static bool flush_by_second;
static _Atomic rel_time_t flush_second;

/* Test-only: sets the clock (declared by the tests that use it). */
void cache_clock_set_for_test(rel_time_t now);

#define NS_PER_S INT64_C(1000000000)

static int64_t
monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

void
clock_setup(bool cas, void (*flush_hook)(const struct cache_change *))
{
    cas_enabled = cas;
    on_flush = flush_hook;
    atomic_store(&cas_next, 1);
    atomic_store(&flush_time, 0);
    atomic_store(&flush_cas, 0);
    atomic_store(&flush_cas_time, 0);
    atomic_store(&flush_second, 0);
    /* memcached's rule: the clock starts at CLOCK_START so that rel time 1
     * (expired at once) is always in the past. */
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    int64_t mono = monotonic_ns();
    process_started = wall.tv_sec - CLOCK_START;
    atomic_store(&clock_base_ns, mono - wall.tv_nsec - CLOCK_START * NS_PER_S);
    atomic_store(&clock_current, CLOCK_START);
}

void
clock_set_flush_by_second(bool on)
{
    flush_by_second = on;
}

rel_time_t
cache_now(void)
{
    return atomic_load_explicit(&clock_current, memory_order_relaxed);
}

time_t
cache_process_started(void)
{
    return process_started;
}

/* Everything stored so far is flushed: records the CAS high mark and
 * clears a pending delayed flush; flush_lock held. */
static void
flush_now_locked(void)
{
    uint64_t mark = atomic_load_explicit(&cas_next, memory_order_relaxed);
    atomic_store_explicit(&flush_cas_time, cache_now(), memory_order_relaxed);
    if (flush_by_second)
        atomic_store_explicit(&flush_second, cache_now(), memory_order_relaxed);
    /* Release: a reader that sees the mark (acquire) sees its time too. */
    atomic_store_explicit(&flush_cas, mark, memory_order_release);
    /* Orders the mark before the clear: a reader that sees flush_time at 0
     * (acquire) also sees the mark that replaces it. */
    atomic_store_explicit(&flush_time, 0, memory_order_release);
    if (on_flush != NULL) {
        struct cache_change ch = { .kind = CACHE_CHANGE_FLUSH, .cas_below = mark };
        on_flush(&ch);
    }
}

/* Turns a delayed flush that has come due into a CAS mark (see flush_time).
 * Takes flush_lock; called with no shard lock held. */
static void
flush_fire(rel_time_t now)
{
    pthread_mutex_lock(&flush_lock);
    rel_time_t ft = atomic_load_explicit(&flush_time, memory_order_relaxed);
    if (ft != 0 && ft <= now) {
        flush_now_locked();
    }
    pthread_mutex_unlock(&flush_lock);
}

rel_time_t
clock_op_now(void)
{
    rel_time_t now = cache_now();
    if (cas_enabled) {
        rel_time_t ft = atomic_load_explicit(&flush_time, memory_order_relaxed);
        if (ft != 0 && ft <= now)
            flush_fire(now);
    }
    return now;
}

void
cache_clock_tick(void)
{
    int64_t rel = (monotonic_ns() -
                   atomic_load_explicit(&clock_base_ns, memory_order_relaxed)) /
                  NS_PER_S;
    if (rel < CLOCK_START)
        rel = CLOCK_START;
    atomic_store_explicit(&clock_current, (rel_time_t)rel, memory_order_relaxed);
    clock_op_now();
}

void
cache_clock_shift(int64_t seconds)
{
    int64_t base = atomic_load_explicit(&clock_base_ns, memory_order_relaxed);
    atomic_store_explicit(&clock_base_ns, base - seconds * NS_PER_S,
                          memory_order_relaxed);
    cache_clock_tick();
}

void
cache_clock_set_for_test(rel_time_t now)
{
    atomic_store_explicit(&clock_base_ns, monotonic_ns() - (int64_t)now * NS_PER_S,
                          memory_order_relaxed);
    atomic_store_explicit(&clock_current, now, memory_order_relaxed);
    clock_op_now();
}

rel_time_t
cache_realtime(int64_t exptime)
{
    if (exptime == 0)
        return 0;
    if (exptime < 0)
        return 1;
    int64_t rel;
    if (exptime > REALTIME_MAXDELTA) {
        if (exptime <= (int64_t)process_started)
            return 1;
        rel = exptime - (int64_t)process_started;
    } else {
        rel = exptime + (int64_t)cache_now();
    }
    return rel > (int64_t)UINT32_MAX ? UINT32_MAX : (rel_time_t)rel;
}

time_t
cache_rel_to_unix(rel_time_t t)
{
    return t == 0 ? 0 : process_started + (time_t)t;
}

bool
clock_cas_enabled(void)
{
    return cas_enabled;
}

uint64_t
clock_next_cas(void)
{
    return cas_enabled
        ? atomic_fetch_add_explicit(&cas_next, 1, memory_order_relaxed) : 0;
}

void
cache_set_cas_floor(uint64_t floor)
{
    uint64_t cur = atomic_load(&cas_next);
    while (cur <= floor && !atomic_compare_exchange_weak(&cas_next, &cur, floor + 1))
        ;
}

uint64_t
cache_cas_high(void)
{
    return atomic_load_explicit(&cas_next, memory_order_relaxed) - 1;
}

bool
clock_item_is_flushed(const struct item *it, rel_time_t now)
{
    /* Acquire: pairs with the release stores in cache_flush()/flush_fire(),
     * so the flush_cas read below is at least as new as this flush_time. */
    rel_time_t ft = atomic_load_explicit(&flush_time, memory_order_acquire);
    if (ft != 0 && ft <= now && it->time <= ft)
        return true;
    if (flush_by_second) {
        rel_time_t fs = atomic_load_explicit(&flush_second, memory_order_relaxed);
        if (fs != 0 && it->time <= fs)
            return true;
    }
    uint64_t mark = atomic_load_explicit(&flush_cas, memory_order_acquire);
    if (mark == 0)
        return false;
    if (it->iflags & ITEM_CAS_EXPLICIT)
        return it->time < atomic_load_explicit(&flush_cas_time,
                                               memory_order_relaxed);
    return it->cas != 0 && it->cas < mark;
}

void
cache_flush(rel_time_t when)
{
    rel_time_t now = cache_now();
    pthread_mutex_lock(&flush_lock);
    if (!cas_enabled) {
        /* memcached -C: items stored at or before `when` (this second for
         * an immediate flush) die once `when` is reached. */
        atomic_store_explicit(&flush_time, when <= now ? now : when,
                              memory_order_release);
    } else if (when <= now) {
        /* An immediate flush supersedes a pending delayed one, as in
         * memcached. */
        flush_now_locked();
    } else {
        atomic_store_explicit(&flush_time, when, memory_order_release);
    }
    pthread_mutex_unlock(&flush_lock);
}
