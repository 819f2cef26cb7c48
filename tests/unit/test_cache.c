/*
 * test_cache.c: tests of the whole cache (server/cache*.c) through its
 * public API, server/cache.h.
 *
 * Every store op and result, CAS (on and off), expiry and flush_all on a
 * controlled clock, incr/decr parsing and arithmetic, eviction order and the
 * memory bound, references that outlive delete/eviction, incremental hash
 * table growth, and a 4-thread stress run checked for consistency at the end
 * (also meant to be built with -fsanitize=thread).
 *
 * The clock is driven by cache_clock_set_for_test(), a test-only hook that
 * cache_clock.c exports without declaring it in cache.h.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/cache.h"

/* Test-only hook in cache_clock.c: sets the rel-time clock. */
void cache_clock_set_for_test(rel_time_t now);

#define MB ((size_t)1024 * 1024)
#define HEADER_SIZE offsetof(struct item, data)

/* ---------------------------------------------------------------- helpers */

static int
start_cache(size_t limit, uint32_t item_size_max, bool cas)
{
    struct cache_options o = {
        .memory_limit = limit, .item_size_max = item_size_max, .cas_enabled = cas,
    };
    return cache_setup(&o) == 0 ? 0 : -1;
}

static int setup_default(void **state) { (void)state; return start_cache(64 * MB, MB, true); }
static int setup_nocas(void **state) { (void)state; return start_cache(64 * MB, MB, false); }
static int setup_small(void **state) { (void)state; return start_cache(2 * MB, MB, true); }
static int setup_item1k(void **state) { (void)state; return start_cache(64 * MB, 1024, true); }
static int teardown_cache(void **state) { (void)state; cache_teardown(); return 0; }

static uint8_t
klen(const char *key)
{
    return (uint8_t)strlen(key);
}

static enum cache_result
store_full(enum cache_store_op op, const char *key, const char *val, size_t vlen,
           uint32_t flags, rel_time_t exptime, uint64_t cas_in, uint64_t *cas_out)
{
    bool too_large = true;
    struct item *it = cache_item_alloc(key, klen(key), flags, exptime,
                                       (uint32_t)vlen, &too_large);
    assert_non_null(it);
    assert_false(too_large);
    memcpy(item_value(it), val, vlen);
    enum cache_result r = cache_store(it, op, cas_in, cas_out);
    cache_item_release(it);
    return r;
}

static enum cache_result
store(enum cache_store_op op, const char *key, const char *val, uint64_t cas_in,
      uint64_t *cas_out)
{
    return store_full(op, key, val, strlen(val), 0, 0, cas_in, cas_out);
}

static enum cache_result
set_kv(const char *key, const char *val)
{
    return store(CACHE_SET, key, val, 0, NULL);
}

/* The value of `key` as a NUL-terminated copy, or NULL when missing. */
static char *
get_copy(const char *key)
{
    struct item *it = cache_get(key, klen(key), NULL);
    if (it == NULL)
        return NULL;
    char *s = malloc(it->nbytes + 1);
    assert_non_null(s);
    memcpy(s, item_value(it), it->nbytes);
    s[it->nbytes] = '\0';
    /* the value is always followed by "\r\n" */
    assert_memory_equal(item_value(it) + it->nbytes, "\r\n", 2);
    cache_item_release(it);
    return s;
}

static void
assert_value(const char *key, const char *expect)
{
    char *v = get_copy(key);
    assert_non_null(v);
    assert_string_equal(v, expect);
    free(v);
}

static void
assert_missing(const char *key)
{
    struct item *it = cache_get(key, klen(key), NULL);
    assert_null(it);
}

static uint64_t
get_cas(const char *key)
{
    struct item *it = cache_get(key, klen(key), NULL);
    assert_non_null(it);
    uint64_t cas = it->cas;
    cache_item_release(it);
    return cas;
}

static void
fill_unique(const char *prefix, int count, size_t vlen)
{
    char key[64];
    char val[4096];
    assert_true(vlen <= sizeof(val));
    memset(val, 'x', vlen);
    for (int i = 0; i < count; i++) {
        snprintf(key, sizeof(key), "%s:%d", prefix, i);
        assert_int_equal(store_full(CACHE_SET, key, val, vlen, 0, 0, 0, NULL),
                         CACHE_STORED);
    }
}

/* ---------------------------------------------------------------- basics */

static void
test_set_get(void **state)
{
    (void)state;
    uint64_t cas1 = 0, cas2 = 0;
    assert_int_equal(store_full(CACHE_SET, "foo", "bar", 3, 42, 0, 0, &cas1),
                     CACHE_STORED);
    assert_int_not_equal(cas1, 0);

    enum cache_miss why = CACHE_MISS_EXPIRED;
    struct item *it = cache_get("foo", 3, &why);
    assert_non_null(it);
    assert_int_equal(why, CACHE_MISS_ABSENT);
    assert_int_equal(it->nkey, 3);
    assert_memory_equal(item_key(it), "foo", 3);
    assert_int_equal(it->nbytes, 3);
    assert_memory_equal(item_value(it), "bar\r\n", 5);
    assert_int_equal(it->flags, 42);
    assert_int_equal(it->cas, cas1);
    assert_true(it->iflags & ITEM_LINKED);
    assert_int_equal(atomic_load(&it->refcount), 2); /* table + us */
    assert_true(cache_item_total_size(it) >= HEADER_SIZE + 3 + 3 + 2);

    /* A new set links a new item; the one we hold keeps its value. */
    assert_int_equal(store(CACHE_SET, "foo", "bazz", 0, &cas2), CACHE_STORED);
    assert_true(cas2 > cas1);
    assert_memory_equal(item_value(it), "bar\r\n", 5);
    assert_false(it->iflags & ITEM_LINKED);
    assert_int_equal(atomic_load(&it->refcount), 1);
    cache_item_release(it);
    assert_value("foo", "bazz");
    assert_int_equal(get_cas("foo"), cas2);

    assert_null(cache_get("nope", 4, &why));
    assert_int_equal(why, CACHE_MISS_ABSENT);

    struct cache_stats st;
    cache_stats(&st);
    assert_int_equal(st.curr_items, 1);
    assert_int_equal(st.total_items, 2);
    assert_int_equal(st.value_bytes, 3 + 4);
}

static void
test_add(void **state)
{
    (void)state;
    rel_time_t now = cache_now();
    assert_int_equal(store(CACHE_ADD, "a", "1", 0, NULL), CACHE_STORED);
    assert_int_equal(store(CACHE_ADD, "a", "2", 0, NULL), CACHE_NOT_STORED);
    assert_value("a", "1");

    /* add over an expired item stores */
    assert_int_equal(store_full(CACHE_SET, "e", "old", 3, 0, now + 1, 0, NULL),
                     CACHE_STORED);
    assert_int_equal(store(CACHE_ADD, "e", "new", 0, NULL), CACHE_NOT_STORED);
    cache_clock_set_for_test(now + 1);
    assert_int_equal(store(CACHE_ADD, "e", "new", 0, NULL), CACHE_STORED);
    assert_value("e", "new");
}

static void
test_replace(void **state)
{
    (void)state;
    rel_time_t now = cache_now();
    assert_int_equal(store(CACHE_REPLACE, "r", "1", 0, NULL), CACHE_NOT_STORED);
    assert_missing("r");
    assert_int_equal(set_kv("r", "1"), CACHE_STORED);
    assert_int_equal(store(CACHE_REPLACE, "r", "2", 0, NULL), CACHE_STORED);
    assert_value("r", "2");

    assert_int_equal(store_full(CACHE_SET, "e", "old", 3, 0, now + 5, 0, NULL),
                     CACHE_STORED);
    cache_clock_set_for_test(now + 5);
    assert_int_equal(store(CACHE_REPLACE, "e", "new", 0, NULL), CACHE_NOT_STORED);
    assert_missing("e");
}

static void
test_append_prepend(void **state)
{
    (void)state;
    rel_time_t now = cache_now();
    uint64_t cas0 = 0, cas1 = 0, cas2 = 0;
    assert_int_equal(store_full(CACHE_SET, "k", "mid", 3, 7, now + 100, 0, &cas0),
                     CACHE_STORED);
    struct item *held = cache_get("k", 1, NULL);
    assert_non_null(held);

    /* the flags and exptime of the appended data are ignored */
    assert_int_equal(store_full(CACHE_APPEND, "k", "end", 3, 99, 0, 0, &cas1),
                     CACHE_STORED);
    assert_true(cas1 > cas0);
    assert_int_equal(store_full(CACHE_PREPEND, "k", "start", 5, 98, 0, 0, &cas2),
                     CACHE_STORED);
    assert_true(cas2 > cas1);
    assert_value("k", "startmidend");
    struct item *it = cache_get("k", 1, NULL);
    assert_non_null(it);
    assert_int_equal(it->flags, 7);
    assert_int_equal(atomic_load(&it->exptime), now + 100);
    assert_int_equal(it->cas, cas2);
    cache_item_release(it);

    /* the item held before is a different, unchanged item */
    assert_memory_equal(item_value(held), "mid\r\n", 5);
    cache_item_release(held);

    assert_int_equal(store(CACHE_APPEND, "none", "x", 0, NULL), CACHE_NOT_STORED);
    assert_int_equal(store(CACHE_PREPEND, "none", "x", 0, NULL), CACHE_NOT_STORED);
    assert_missing("none");

    /* appending to an empty value and an empty append */
    assert_int_equal(set_kv("empty", ""), CACHE_STORED);
    assert_int_equal(store(CACHE_APPEND, "empty", "abc", 0, NULL), CACHE_STORED);
    assert_int_equal(store(CACHE_APPEND, "empty", "", 0, NULL), CACHE_STORED);
    assert_value("empty", "abc");

    /* expired items cannot be appended to */
    assert_int_equal(store_full(CACHE_SET, "exp", "v", 1, 0, now + 200, 0, NULL),
                     CACHE_STORED);
    cache_clock_set_for_test(now + 200);
    assert_int_equal(store(CACHE_APPEND, "exp", "w", 0, NULL), CACHE_NOT_STORED);
    assert_missing("exp");

    struct cache_stats st;
    cache_stats(&st);
    assert_int_equal(st.curr_items, 2);
}

static void
test_cas(void **state)
{
    (void)state;
    uint64_t cas = 0, cas_new = 0;
    assert_int_equal(store(CACHE_SET, "c", "1", 0, &cas), CACHE_STORED);
    assert_int_equal(store(CACHE_CAS, "c", "2", cas, &cas_new), CACHE_STORED);
    assert_int_not_equal(cas_new, cas);
    assert_value("c", "2");
    /* the old CAS no longer matches */
    assert_int_equal(store(CACHE_CAS, "c", "3", cas, NULL), CACHE_EXISTS);
    assert_value("c", "2");
    /* a cas command with 0 never matches (memcached) */
    assert_int_equal(store(CACHE_CAS, "c", "3", 0, NULL), CACHE_EXISTS);
    assert_int_equal(store(CACHE_CAS, "missing", "3", 1, NULL), CACHE_NOT_FOUND);
    assert_missing("missing");

    /* cas on an expired item: NOT_FOUND */
    rel_time_t now = cache_now();
    assert_int_equal(store_full(CACHE_SET, "x", "1", 1, 0, now + 3, 0, &cas),
                     CACHE_STORED);
    cache_clock_set_for_test(now + 3);
    assert_int_equal(store(CACHE_CAS, "x", "2", cas, NULL), CACHE_NOT_FOUND);
}

/* Binary protocol: a non-zero CAS on set/add/replace/append/prepend. */
static void
test_cas_on_other_ops(void **state)
{
    (void)state;
    uint64_t cas = 0, cas2 = 0;
    assert_int_equal(store(CACHE_SET, "b", "1", 12345, NULL), CACHE_NOT_FOUND);
    assert_missing("b");
    assert_int_equal(store(CACHE_ADD, "b", "1", 12345, NULL), CACHE_NOT_FOUND);
    assert_int_equal(store(CACHE_REPLACE, "b", "1", 12345, NULL), CACHE_NOT_FOUND);
    assert_int_equal(store(CACHE_APPEND, "b", "1", 12345, NULL), CACHE_NOT_STORED);
    assert_missing("b");

    assert_int_equal(store(CACHE_SET, "b", "1", 0, &cas), CACHE_STORED);
    assert_int_equal(store(CACHE_SET, "b", "2", cas + 1000, NULL), CACHE_EXISTS);
    assert_value("b", "1");
    assert_int_equal(store(CACHE_SET, "b", "2", cas, &cas2), CACHE_STORED);
    assert_value("b", "2");
    assert_int_equal(store(CACHE_REPLACE, "b", "3", cas, NULL), CACHE_EXISTS);
    assert_int_equal(store(CACHE_REPLACE, "b", "3", cas2, &cas), CACHE_STORED);
    assert_int_equal(store(CACHE_APPEND, "b", "x", cas2, NULL), CACHE_EXISTS);
    assert_int_equal(store(CACHE_APPEND, "b", "x", cas, &cas2), CACHE_STORED);
    assert_int_equal(store(CACHE_PREPEND, "b", "y", cas, NULL), CACHE_EXISTS);
    assert_int_equal(store(CACHE_PREPEND, "b", "y", cas2, NULL), CACHE_STORED);
    assert_value("b", "y3x");
}

static void
test_cas_disabled(void **state)
{
    (void)state;
    uint64_t cas = 99;
    assert_int_equal(store(CACHE_SET, "k", "5", 0, &cas), CACHE_STORED);
    assert_int_equal(cas, 0);
    assert_int_equal(get_cas("k"), 0);
    /* as memcached -C: a cas command can never match, and a missing key is
     * still NOT_FOUND */
    assert_int_equal(store(CACHE_CAS, "k", "6", 0, NULL), CACHE_EXISTS);
    assert_int_equal(store(CACHE_CAS, "k", "6", 1, NULL), CACHE_EXISTS);
    assert_int_equal(store(CACHE_CAS, "zz", "6", 1, NULL), CACHE_NOT_FOUND);
    assert_int_equal(store(CACHE_SET, "k", "6", 7, NULL), CACHE_EXISTS);
    assert_int_equal(cache_delete("k", 1, 7), CACHE_EXISTS);
    uint64_t value = 0;
    assert_int_equal(cache_delta("k", 1, true, 1, 7, &value, &cas), CACHE_EXISTS);
    cas = 99;
    assert_int_equal(cache_delta("k", 1, true, 1, 0, &value, &cas), CACHE_STORED);
    assert_int_equal(value, 6);
    assert_int_equal(cas, 0);
    assert_int_equal(store(CACHE_APPEND, "k", "0", 0, &cas), CACHE_STORED);
    assert_int_equal(cas, 0);
    assert_value("k", "60");
    assert_int_equal(cache_delete("k", 1, 0), CACHE_DELETED);
}

static void
test_delete(void **state)
{
    (void)state;
    uint64_t cas = 0;
    assert_int_equal(cache_delete("d", 1, 0), CACHE_NOT_FOUND);
    assert_int_equal(store(CACHE_SET, "d", "v", 0, &cas), CACHE_STORED);
    assert_int_equal(cache_delete("d", 1, cas + 1), CACHE_EXISTS);
    assert_value("d", "v");
    assert_int_equal(cache_delete("d", 1, cas), CACHE_DELETED);
    assert_missing("d");
    assert_int_equal(cache_delete("d", 1, 0), CACHE_NOT_FOUND);
    assert_int_equal(set_kv("d", "w"), CACHE_STORED);
    assert_int_equal(cache_delete("d", 1, 0), CACHE_DELETED);

    struct cache_stats st;
    cache_stats(&st);
    assert_int_equal(st.curr_items, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.value_bytes, 0);
}

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

/* ---------------------------------------------------------------- delta */

static enum cache_result
delta(const char *key, bool incr, uint64_t by, uint64_t *value)
{
    return cache_delta(key, klen(key), incr, by, 0, value, NULL);
}

static void
assert_delta_on(const char *stored, bool incr, uint64_t by, enum cache_result expect,
                uint64_t expect_value)
{
    uint64_t value = 0;
    assert_int_equal(set_kv("n", stored), CACHE_STORED);
    assert_int_equal(delta("n", incr, by, &value), expect);
    if (expect == CACHE_STORED) {
        assert_int_equal(value, expect_value);
        /* a result no longer than the old value is padded with spaces to
         * the old length, as memcached's in-place rewrite does */
        char buf[64];
        int n = snprintf(buf, sizeof(buf), "%" PRIu64, expect_value);
        while ((size_t)n < strlen(stored))
            buf[n++] = ' ';
        buf[n] = '\0';
        assert_value("n", buf);
    } else {
        assert_value("n", stored);
    }
}

static void
test_delta(void **state)
{
    (void)state;
    rel_time_t now = cache_now();
    uint64_t value = 0, cas = 0, cas2 = 0;
    assert_int_equal(delta("n", true, 1, &value), CACHE_NOT_FOUND);

    assert_int_equal(store_full(CACHE_SET, "n", "10", 2, 5, now + 100, 0, &cas),
                     CACHE_STORED);
    struct item *held = cache_get("n", 1, NULL);
    assert_non_null(held);
    assert_int_equal(cache_delta("n", 1, true, 5, 0, &value, &cas2), CACHE_STORED);
    assert_int_equal(value, 15);
    assert_true(cas2 > cas);
    assert_int_equal(get_cas("n"), cas2);
    assert_value("n", "15");
    /* a new item: the old one is untouched, flags and exptime carried over */
    assert_memory_equal(item_value(held), "10\r\n", 4);
    cache_item_release(held);
    struct item *it = cache_get("n", 1, NULL);
    assert_int_equal(it->flags, 5);
    assert_int_equal(atomic_load(&it->exptime), now + 100);
    cache_item_release(it);

    /* cas */
    assert_int_equal(cache_delta("n", 1, true, 1, cas, &value, NULL), CACHE_EXISTS);
    assert_value("n", "15");
    assert_int_equal(cache_delta("n", 1, false, 1, cas2, &value, &cas), CACHE_STORED);
    assert_int_equal(value, 14);

    /* floor, wrap, padding */
    assert_delta_on("5", false, 100, CACHE_STORED, 0);
    assert_delta_on("1000", false, 1, CACHE_STORED, 999);
    assert_delta_on("18446744073709551615", true, 2, CACHE_STORED, 1);
    assert_delta_on("18446744073709551615", false, 0, CACHE_STORED,
                    UINT64_MAX);
    assert_delta_on("0", true, UINT64_MAX, CACHE_STORED, UINT64_MAX);
    /* memcached's safe_strtoull: leading/trailing space, a sign, and
     * anything after a space are accepted ... */
    assert_delta_on(" 12  ", true, 1, CACHE_STORED, 13);
    assert_delta_on("12 abc", true, 1, CACHE_STORED, 13);
    assert_delta_on("+5", true, 1, CACHE_STORED, 6);
    assert_delta_on("-0", true, 1, CACHE_STORED, 1);
    assert_delta_on("000000000000000000001", true, 1, CACHE_STORED, 2);
    /* ... but not these */
    assert_delta_on("", true, 1, CACHE_NON_NUMERIC, 0);
    assert_delta_on("abc", true, 1, CACHE_NON_NUMERIC, 0);
    assert_delta_on("12abc", true, 1, CACHE_NON_NUMERIC, 0);
    assert_delta_on("   ", true, 1, CACHE_NON_NUMERIC, 0);
    assert_delta_on("-1", true, 1, CACHE_NON_NUMERIC, 0);
    assert_delta_on("+", true, 1, CACHE_NON_NUMERIC, 0);
    assert_delta_on("18446744073709551616", true, 1, CACHE_NON_NUMERIC, 0);
    assert_delta_on("100000000000000000000", true, 1, CACHE_NON_NUMERIC, 0);
    assert_delta_on("0x10", true, 1, CACHE_NON_NUMERIC, 0);
    /* non-numeric is reported before a CAS mismatch is not */
    assert_int_equal(set_kv("s", "abc"), CACHE_STORED);
    assert_int_equal(cache_delta("s", 1, true, 1, 1, &value, NULL), CACHE_EXISTS);
    assert_int_equal(cache_delta("s", 1, true, 1, get_cas("s"), &value, NULL),
                     CACHE_NON_NUMERIC);
}

/* ---------------------------------------------------------------- memory */

static void
test_too_large(void **state)
{
    (void)state;
    bool too_large = false;
    assert_null(cache_item_alloc("k", 1, 0, 0, 2000, &too_large));
    assert_true(too_large);

    uint32_t fit = (uint32_t)(1024 - HEADER_SIZE - 1 - 2);
    struct item *it = cache_item_alloc("k", 1, 0, 0, fit, &too_large);
    assert_non_null(it);
    assert_false(too_large);
    cache_item_release(it);
    assert_null(cache_item_alloc("k", 1, 0, 0, fit + 1, &too_large));
    assert_true(too_large);

    char big[900];
    memset(big, 'b', sizeof(big));
    assert_int_equal(store_full(CACHE_SET, "k", big, sizeof(big), 0, 0, 0, NULL),
                     CACHE_STORED);
    assert_int_equal(store_full(CACHE_APPEND, "k", big, 200, 0, 0, 0, NULL),
                     CACHE_E2BIG);
    assert_int_equal(store_full(CACHE_PREPEND, "k", big, 200, 0, 0, 0, NULL),
                     CACHE_E2BIG);
    char *v = get_copy("k");
    assert_int_equal(strlen(v), sizeof(big));
    free(v);
}

static void
assert_within_limit(size_t limit)
{
    struct cache_stats st;
    cache_stats(&st);
    assert_true(st.bytes + st.hash_bytes <= limit);
    assert_int_equal(st.limit_maxbytes, limit);
}

static void
test_eviction_lru(void **state)
{
    (void)state;
    /* 2 MB limit; ~120k items of 100 bytes is about 10x that */
    const int count = 120000;
    fill_unique("key", count, 100);
    assert_within_limit(2 * MB);

    struct cache_stats st;
    cache_stats(&st);
    assert_true(st.evictions > 0);
    assert_int_equal(st.evictions, st.total_items - st.curr_items);
    assert_int_equal(st.evicted_unfetched, st.evictions);
    assert_int_equal(st.reclaimed, 0);
    assert_true(st.curr_items > 5000); /* memory is actually used */

    /* the most recently stored keys survive, the first ones do not */
    char key[64];
    for (int i = count - 200; i < count; i++) {
        snprintf(key, sizeof(key), "key:%d", i);
        char *v = get_copy(key);
        assert_non_null(v);
        free(v);
    }
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "key:%d", i);
        assert_missing(key);
    }

    /* LRU order: keys that are read (or add'ed to) stay, the other one
     * stored at the same time goes. */
    assert_int_equal(set_kv("hot:get", "1"), CACHE_STORED);
    assert_int_equal(set_kv("hot:add", "2"), CACHE_STORED);
    assert_int_equal(set_kv("cold", "3"), CACHE_STORED);
    /* Sizes vary from now on, so evictions free more or less than each new
     * item needs: shard sizes must not drift apart under such churn. */
    char val[400];
    memset(val, 'y', sizeof(val));
    for (int i = 0; i < 3 * count; i++) {
        snprintf(key, sizeof(key), "more:%d", i);
        size_t vlen = 20 + (size_t)i * 7919 % 300;
        assert_int_equal(store_full(CACHE_SET, key, val, vlen, 0, 0, 0, NULL),
                         CACHE_STORED);
        if (i % 50 == 0) {
            assert_value("hot:get", "1");
            assert_int_equal(store(CACHE_ADD, "hot:add", "x", 0, NULL),
                             CACHE_NOT_STORED);
        }
    }
    assert_value("hot:get", "1");
    assert_value("hot:add", "2");
    assert_missing("cold");
    assert_within_limit(2 * MB);
}

static void
test_reclaim_expired(void **state)
{
    (void)state;
    rel_time_t now = cache_now();
    char key[64];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "short:%d", i);
        assert_int_equal(store_full(CACHE_SET, key, "v", 1, 0, now + 5, 0, NULL),
                         CACHE_STORED);
    }
    cache_clock_set_for_test(now + 10);
    fill_unique("live", 120000, 100);

    struct cache_stats st;
    cache_stats(&st);
    assert_int_equal(st.reclaimed, 1000);
    assert_int_equal(st.expired_unfetched, 1000);
    assert_int_equal(st.evictions, st.total_items - 1000 - st.curr_items);
    assert_within_limit(2 * MB);

    cache_stats_reset();
    cache_stats(&st);
    assert_int_equal(st.reclaimed, 0);
    assert_int_equal(st.evictions, 0);
    assert_int_equal(st.total_items, 0);
    assert_true(st.curr_items > 0);
}

static void
test_memory_limit_runtime(void **state)
{
    (void)state;
    cache_set_memory_limit(4 * MB);
    fill_unique("a", 40000, 200);
    assert_within_limit(4 * MB);
    struct cache_stats st;
    cache_stats(&st);
    assert_true(st.bytes > 3 * MB);

    /* shrinking: each later allocation evicts at least twice what it
     * takes, so memory falls at once but gradually (no single request
     * evicts 3 MB of items), and reaches the new limit */
    cache_set_memory_limit(1 * MB);
    uint64_t before = st.bytes + st.hash_bytes;
    fill_unique("b", 10, 200);
    cache_stats(&st);
    assert_true(st.bytes + st.hash_bytes < before - 10 * 200);
    assert_true(st.bytes + st.hash_bytes > 2 * MB);
    fill_unique("c", 2000, 200);
    assert_within_limit(1 * MB);
    cache_stats(&st);
    assert_true(st.bytes > MB / 2);

    /* a limit below the hash tables: once the items are evicted (a batch
     * per allocation), no memory, but not too large */
    cache_set_memory_limit(1000);
    bool too_large = true;
    struct item *it;
    int allocs = 0;
    while ((it = cache_item_alloc("k", 1, 0, 0, 10, &too_large)) != NULL) {
        cache_item_release(it);
        assert_true(++allocs < 1000);
    }
    assert_false(too_large);
    cache_stats(&st);
    assert_int_equal(st.curr_items, 0);

    /* and back up: stores work again */
    cache_set_memory_limit(64 * MB);
    assert_int_equal(set_kv("k", "v"), CACHE_STORED);
    assert_value("k", "v");
}

/* ---------------------------------------------------------------- refs */

static void
test_refs_outlive_unlink(void **state)
{
    (void)state;
    char pattern[300];
    for (size_t i = 0; i < sizeof(pattern); i++)
        pattern[i] = (char)('a' + i % 26);

    /* delete */
    assert_int_equal(store_full(CACHE_SET, "held", pattern, sizeof(pattern), 0, 0,
                                0, NULL), CACHE_STORED);
    struct item *it = cache_get("held", 4, NULL);
    assert_non_null(it);
    assert_int_equal(cache_delete("held", 4, 0), CACHE_DELETED);
    assert_missing("held");
    assert_false(it->iflags & ITEM_LINKED);
    assert_int_equal(atomic_load(&it->refcount), 1);
    assert_memory_equal(item_value(it), pattern, sizeof(pattern));
    cache_item_release(it);

    /* eviction */
    assert_int_equal(store_full(CACHE_SET, "held2", pattern, sizeof(pattern), 0, 0,
                                0, NULL), CACHE_STORED);
    it = cache_get("held2", 5, NULL);
    assert_non_null(it);
    fill_unique("push", 120000, 100);
    assert_missing("held2");
    assert_int_equal(atomic_load(&it->refcount), 1);
    assert_memory_equal(item_value(it), pattern, sizeof(pattern));
    assert_memory_equal(item_value(it) + sizeof(pattern), "\r\n", 2);
    cache_item_release(it);
    assert_within_limit(2 * MB);

    /* an allocated, never linked item is simply freed */
    bool too_large;
    it = cache_item_alloc("x", 1, 0, 0, 10, &too_large);
    assert_non_null(it);
    cache_item_release(it);
    assert_missing("x");
}

/* ---------------------------------------------------------------- hash */

static void
test_hash_growth(void **state)
{
    (void)state;
    const int count = 200000;
    struct cache_stats st;
    cache_stats(&st);
    assert_int_equal(st.hash_buckets, CACHE_SHARDS * 128);
    assert_false(st.hash_is_expanding);
    uint64_t initial_buckets = st.hash_buckets;

    char key[32], val[32], other[32], expect[32];
    bool saw_expanding = false, saw_settled_after = false;
    uint32_t rng = 12345;
    for (int i = 0; i < count; i++) {
        snprintf(key, sizeof(key), "g:%d", i);
        snprintf(val, sizeof(val), "v%d", i);
        assert_int_equal(set_kv(key, val), CACHE_STORED);
        assert_value(key, val);
        rng = rng * 1103515245u + 12345u;
        int j = (int)((rng >> 8) % (uint32_t)(i + 1));
        snprintf(other, sizeof(other), "g:%d", j);
        snprintf(expect, sizeof(expect), "v%d", j);
        assert_value(other, expect);
        if (i % 1000 == 999) {
            cache_stats(&st);
            assert_int_equal(st.curr_items, (uint64_t)i + 1);
            assert_int_equal(st.hash_bytes, st.hash_buckets * sizeof(void *));
            if (st.hash_is_expanding)
                saw_expanding = true;
            else if (saw_expanding)
                saw_settled_after = true;
        }
        if (i % 50000 == 49999) {
            /* every key so far, while tables are mid-expansion */
            for (int k = 0; k <= i; k++) {
                snprintf(other, sizeof(other), "g:%d", k);
                snprintf(expect, sizeof(expect), "v%d", k);
                assert_value(other, expect);
            }
        }
    }
    assert_true(saw_expanding);
    assert_true(saw_settled_after);
    for (int k = 0; k < count; k++) {
        snprintf(other, sizeof(other), "g:%d", k);
        snprintf(expect, sizeof(expect), "v%d", k);
        assert_value(other, expect);
    }
    cache_stats(&st);
    assert_int_equal(st.curr_items, count);
    assert_false(st.hash_is_expanding);
    assert_true(st.hash_buckets > initial_buckets * 16);
    /* load factor stays at or below 1.5 in every shard, so overall too */
    assert_true(st.curr_items * 2 <= st.hash_buckets * 3);
    assert_int_equal(st.evictions, 0);
    assert_missing("g:200000");
}

static void
test_stats_classes(void **state)
{
    (void)state;
    static const size_t sizes[] = { 1, 10, 100, 500, 1000, 5000, 20000, 100000 };
    char key[32];
    char *val = calloc(1, 100000);
    assert_non_null(val);
    uint64_t value_bytes = 0, bytes = 0;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        snprintf(key, sizeof(key), "size:%zu", sizes[i]);
        assert_int_equal(store_full(CACHE_SET, key, val, sizes[i], 0, 0, 0, NULL),
                         CACHE_STORED);
        value_bytes += strlen(key) + sizes[i];
        struct item *it = cache_get(key, klen(key), NULL);
        size_t total = cache_item_total_size(it);
        assert_true(total >= HEADER_SIZE + strlen(key) + sizes[i] + 2);
        bytes += total;
        cache_item_release(it);
    }
    free(val);

    cache_clock_set_for_test(cache_now() + 10);
    struct cache_stats st;
    cache_stats(&st);
    assert_int_equal(st.curr_items, 8);
    assert_int_equal(st.value_bytes, value_bytes);
    assert_int_equal(st.bytes, bytes);
    uint64_t items = 0, class_bytes = 0;
    for (unsigned c = 0; c < CACHE_SIZE_CLASSES; c++) {
        items += st.class_items[c];
        class_bytes += st.class_bytes[c];
        if (st.class_items[c] > 0)
            assert_int_equal(st.class_oldest[c], 10);
        else
            assert_int_equal(st.class_oldest[c], 0);
    }
    assert_int_equal(items, 8);
    assert_int_equal(class_bytes, bytes);
    /* the 1-byte value is in class 1 (65..128 bytes), the 100000-byte one
     * in class 11 (65537..131072) */
    assert_true(st.class_items[1] >= 1);
    assert_int_equal(st.class_items[11], 1);
    assert_int_equal(st.class_items[0], 0); /* header alone is 58 + key */
}

/* ---------------------------------------------------------------- stress */

#define STRESS_THREADS 4
#define STRESS_COUNTERS 4

struct stress_cfg {
    int ops;
    int str_keys;
    int num_keys;
    bool counters; /* no eviction: counters must add up exactly */
};

struct stress_thread {
    pthread_t tid;
    const struct stress_cfg *cfg;
    uint32_t rng;
    uint64_t counter_sum[STRESS_COUNTERS];
    uint64_t errors;
    uint64_t stored;
};

static uint32_t
xorshift(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* s:<i> values are repetitions of the token "s<i>;"; n:<i> values are
 * decimal numbers. Returns false on anything else. */
static bool
stress_valid(const struct item *it)
{
    const char *key = item_key(it);
    const char *v = (const char *)it->data + it->nkey;
    if (memcmp(v + it->nbytes, "\r\n", 2) != 0)
        return false;
    if (key[0] == 's') {
        char token[32];
        int tl = snprintf(token, sizeof(token), "s%.*s;", it->nkey - 2, key + 2);
        if (it->nbytes % (uint32_t)tl != 0)
            return false;
        for (uint32_t off = 0; off < it->nbytes; off += (uint32_t)tl)
            if (memcmp(v + off, token, (size_t)tl) != 0)
                return false;
        return true;
    }
    /* digits, then the spaces a shorter incr/decr result is padded with */
    uint32_t digits = 0;
    while (digits < it->nbytes && v[digits] >= '0' && v[digits] <= '9')
        digits++;
    if (digits == 0 || digits > 20)
        return false;
    for (uint32_t i = digits; i < it->nbytes; i++)
        if (v[i] != ' ')
            return false;
    return true;
}

static bool
stress_store(struct stress_thread *t, enum cache_store_op op, const char *key,
             const char *val, size_t vlen, enum cache_result *r)
{
    bool too_large;
    struct item *it = cache_item_alloc(key, (uint8_t)strlen(key), 0, 0,
                                       (uint32_t)vlen, &too_large);
    if (it == NULL) {
        *r = CACHE_ENOMEM;
        return false;
    }
    memcpy(item_value(it), val, vlen);
    *r = cache_store(it, op, 0, NULL);
    cache_item_release(it);
    if (*r == CACHE_STORED)
        t->stored++;
    return true;
}

static void *
stress_main(void *arg)
{
    struct stress_thread *t = arg;
    const struct stress_cfg *cfg = t->cfg;
    char key[32], val[1024];
    enum cache_result r;

    for (int n = 0; n < cfg->ops; n++) {
        uint32_t x = xorshift(&t->rng);
        uint32_t op = (x >> 4) % 8;
        if (cfg->counters && (x & 15) == 0) {
            int c = (int)((x >> 8) % STRESS_COUNTERS);
            uint64_t by = 1 + (x >> 16) % 10, value;
            snprintf(key, sizeof(key), "ctr:%d", c);
            r = cache_delta(key, (uint8_t)strlen(key), true, by, 0, &value, NULL);
            if (r == CACHE_STORED)
                t->counter_sum[c] += by;
            else
                t->errors++;
            continue;
        }
        bool str = (x & 1) != 0;
        int k = (int)((x >> 12) % (uint32_t)(str ? cfg->str_keys : cfg->num_keys));
        snprintf(key, sizeof(key), "%c:%d", str ? 's' : 'n', k);
        uint8_t nkey = (uint8_t)strlen(key);
        char token[32];
        int tl = snprintf(token, sizeof(token), "s%d;", k);

        switch (op) {
        case 0: case 1: { /* get */
            struct item *it = cache_get(key, nkey, NULL);
            if (it != NULL) {
                if (!stress_valid(it) || memcmp(item_key(it), key, nkey) != 0)
                    t->errors++;
                cache_item_release(it);
            }
            break;
        }
        case 2: /* set */
            if (str) {
                int reps = 1 + (int)((x >> 20) % 16);
                for (int i = 0; i < reps; i++)
                    memcpy(val + i * tl, token, (size_t)tl);
                stress_store(t, CACHE_SET, key, val, (size_t)(reps * tl), &r);
            } else {
                int len = snprintf(val, sizeof(val), "%u", x >> 20);
                stress_store(t, CACHE_SET, key, val, (size_t)len, &r);
            }
            if (r != CACHE_STORED && r != CACHE_ENOMEM)
                t->errors++;
            break;
        case 3: /* add */
            if (str)
                stress_store(t, CACHE_ADD, key, token, (size_t)tl, &r);
            else
                stress_store(t, CACHE_ADD, key, "0", 1, &r);
            if (r != CACHE_STORED && r != CACHE_NOT_STORED && r != CACHE_ENOMEM)
                t->errors++;
            break;
        case 4: /* delete */
            r = cache_delete(key, nkey, 0);
            if (r != CACHE_DELETED && r != CACHE_NOT_FOUND)
                t->errors++;
            break;
        case 5: /* append/prepend */
            if (str) {
                stress_store(t, (x >> 20) & 1 ? CACHE_APPEND : CACHE_PREPEND, key,
                             token, (size_t)tl, &r);
                if (r != CACHE_STORED && r != CACHE_NOT_STORED && r != CACHE_ENOMEM &&
                    r != CACHE_E2BIG)
                    t->errors++;
                break;
            }
            __attribute__((fallthrough));
        default: { /* incr/decr */
            uint64_t value;
            r = cache_delta(key, nkey, (x >> 20) & 1, 1 + (x >> 24), 0, &value, NULL);
            if (str ? (r != CACHE_NON_NUMERIC && r != CACHE_NOT_FOUND)
                    : (r != CACHE_STORED && r != CACHE_NOT_FOUND && r != CACHE_ENOMEM))
                t->errors++;
            break;
        }
        }
    }
    return NULL;
}

static void
run_stress(const struct stress_cfg *cfg, size_t limit)
{
    char key[32];
    if (cfg->counters) {
        for (int c = 0; c < STRESS_COUNTERS; c++) {
            snprintf(key, sizeof(key), "ctr:%d", c);
            assert_int_equal(set_kv(key, "0"), CACHE_STORED);
        }
    }
    struct stress_thread th[STRESS_THREADS];
    memset(th, 0, sizeof(th));
    for (int i = 0; i < STRESS_THREADS; i++) {
        th[i].cfg = cfg;
        th[i].rng = 0x9e3779b9u * (uint32_t)(i + 1);
        assert_int_equal(pthread_create(&th[i].tid, NULL, stress_main, &th[i]), 0);
    }
    uint64_t stored = 0;
    for (int i = 0; i < STRESS_THREADS; i++) {
        assert_int_equal(pthread_join(th[i].tid, NULL), 0);
        assert_int_equal(th[i].errors, 0);
        stored += th[i].stored;
    }
    assert_true(stored > 0);

    /* Consistency: every key readable is valid, the counts and byte sums
     * agree with the stats, and no reference leaked (refcount 2 = the table
     * and ours). */
    uint64_t found = 0, bytes = 0;
    for (int s = 0; s < 2; s++) {
        int nkeys = s ? cfg->str_keys : cfg->num_keys;
        for (int k = 0; k < nkeys; k++) {
            snprintf(key, sizeof(key), "%c:%d", s ? 's' : 'n', k);
            struct item *it = cache_get(key, klen(key), NULL);
            if (it == NULL)
                continue;
            assert_true(stress_valid(it));
            assert_int_equal(atomic_load(&it->refcount), 2);
            found++;
            bytes += cache_item_total_size(it);
            cache_item_release(it);
        }
    }
    if (cfg->counters) {
        for (int c = 0; c < STRESS_COUNTERS; c++) {
            uint64_t sum = 0;
            for (int i = 0; i < STRESS_THREADS; i++)
                sum += th[i].counter_sum[c];
            snprintf(key, sizeof(key), "ctr:%d", c);
            char *v = get_copy(key);
            assert_non_null(v);
            assert_int_equal(strtoull(v, NULL, 10), sum);
            free(v);
            struct item *it = cache_get(key, klen(key), NULL);
            bytes += cache_item_total_size(it);
            cache_item_release(it);
            found++;
        }
    }
    struct cache_stats st;
    cache_stats(&st);
    assert_int_equal(st.curr_items, found);
    assert_int_equal(st.bytes, bytes);
    assert_true(st.bytes + st.hash_bytes <= limit);
    if (cfg->counters)
        assert_int_equal(st.evictions, 0);
    else
        assert_true(st.evictions > 0);
}

static void
test_stress_threads(void **state)
{
    (void)state;
    const struct stress_cfg cfg = {
        .ops = 200000, .str_keys = 300, .num_keys = 100, .counters = true,
    };
    run_stress(&cfg, 64 * MB);
}

static void
test_stress_threads_evicting(void **state)
{
    (void)state;
    /* 256 KB: constant eviction from all threads at once */
    cache_set_memory_limit(256 * 1024);
    const struct stress_cfg cfg = {
        .ops = 200000, .str_keys = 3000, .num_keys = 1000, .counters = false,
    };
    run_stress(&cfg, 256 * 1024);
}

/* ---------------------------------------------------------------- warmup */

/* The persistence hook of a flusher that commits at once. */
static void
on_change_commit_now(const struct cache_change *ch)
{
    if (ch->kind == CACHE_CHANGE_PUT) {
        cache_item_clean(ch->item);
        cache_item_release(ch->item);
    }
}

/* A persistent cache whose warmup has not finished: keys not in memory
 * may be on disk. */
static int
setup_warming(void **state)
{
    (void)state;
    struct cache_options o = {
        .memory_limit = 64 * MB, .item_size_max = MB, .cas_enabled = true,
        .persistent = true, .on_change = on_change_commit_now,
    };
    if (cache_setup(&o) != 0)
        return -1;
    cache_set_complete(false);
    return 0;
}

/* What the warmup does with a row read from disk. */
static enum cache_result
install_from_disk(const char *key, const char *val, uint64_t cas)
{
    size_t n = strlen(val);
    struct item *it = cache_item_alloc_noevict(key, klen(key), 0, 0, (uint32_t)n);
    assert_non_null(it);
    memcpy(item_value(it), val, n);
    it->cas = cas;
    enum cache_result r = cache_install(it);
    cache_item_release(it);
    return r;
}

static void
test_warmup_never_revives(void **state)
{
    (void)state;
    enum cache_miss why;
    /* not in memory: maybe on disk */
    assert_null(cache_get("k", 1, &why));
    assert_int_equal(why, CACHE_MISS_ON_DISK);
    assert_int_equal(cache_delete("k", 1, 0), CACHE_NEED_FETCH);

    /* loaded from disk, then deleted: the disk copy stays out */
    assert_int_equal(install_from_disk("k", "old", 1), CACHE_STORED);
    assert_value("k", "old");
    assert_int_equal(cache_delete("k", 1, 0), CACHE_DELETED);
    assert_int_equal(install_from_disk("k", "old", 1), CACHE_NOT_STORED);
    assert_null(cache_get("k", 1, &why));
    assert_int_not_equal(why, CACHE_MISS_ON_DISK);

    /* written during warmup: the older disk version never wins */
    cache_set_cas_floor(100);
    assert_int_equal(set_kv("w", "new"), CACHE_STORED);
    assert_int_equal(install_from_disk("w", "old", 5), CACHE_NOT_STORED);
    assert_value("w", "new");

    /* written during warmup and expired before the disk copy arrived */
    rel_time_t now = cache_now();
    assert_int_equal(store_full(CACHE_SET, "e", "new", 3, 0, now + 2, 0, NULL),
                     CACHE_STORED);
    cache_clock_set_for_test(now + 5);
    assert_null(cache_get("e", 1, &why));
    assert_int_equal(why, CACHE_MISS_EXPIRED);
    assert_int_equal(install_from_disk("e", "old", 7), CACHE_NOT_STORED);
    assert_null(cache_get("e", 1, &why));
    assert_int_not_equal(why, CACHE_MISS_ON_DISK);

    /* a tombstone gives way to a new write */
    assert_int_equal(set_kv("k", "again"), CACHE_STORED);
    assert_value("k", "again");
}

/* Deletes race the warmup's installs of the same keys: whatever the
 * interleaving, a key acknowledged as deleted stays deleted. Before the
 * tombstone took the key's place under the same lock as the unlink, a
 * install landing between the two revived the key. */
#define RACE_KEYS 20000

struct race_state {
    atomic_uint next;       /* keys [0, next) have been set and deleted */
    atomic_bool stop;
};

static void *
race_installer(void *arg)
{
    struct race_state *rs = arg;
    char key[32];
    while (!atomic_load(&rs->stop)) {
        unsigned i = atomic_load(&rs->next);
        if (i >= RACE_KEYS)
            break;
        /* the row of key i as the disk has it, offered again and again */
        snprintf(key, sizeof key, "race:%u", i);
        (void)install_from_disk(key, "disk", 1);
    }
    return NULL;
}

static void
test_warmup_delete_race(void **state)
{
    (void)state;
    struct race_state rs;
    atomic_init(&rs.next, 0);
    atomic_init(&rs.stop, false);
    cache_set_cas_floor(100);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, race_installer, &rs), 0);
    char key[32];
    for (unsigned i = 0; i < RACE_KEYS; i++) {
        snprintf(key, sizeof key, "race:%u", i);
        assert_int_equal(set_kv(key, "mem"), CACHE_STORED);
        assert_int_equal(cache_delete(key, klen(key), 0), CACHE_DELETED);
        atomic_store(&rs.next, i + 1);
    }
    atomic_store(&rs.stop, true);
    pthread_join(th, NULL);
    unsigned revived = 0;
    for (unsigned i = 0; i < RACE_KEYS; i++) {
        snprintf(key, sizeof key, "race:%u", i);
        struct item *it = cache_get(key, klen(key), NULL);
        if (it != NULL) {
            revived++;
            cache_item_release(it);
        }
    }
    assert_int_equal(revived, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_set_get, setup_default, teardown_cache),
        cmocka_unit_test_setup_teardown(test_add, setup_default, teardown_cache),
        cmocka_unit_test_setup_teardown(test_replace, setup_default, teardown_cache),
        cmocka_unit_test_setup_teardown(test_append_prepend, setup_default, teardown_cache),
        cmocka_unit_test_setup_teardown(test_cas, setup_default, teardown_cache),
        cmocka_unit_test_setup_teardown(test_cas_on_other_ops, setup_default, teardown_cache),
        cmocka_unit_test_setup_teardown(test_cas_disabled, setup_nocas, teardown_cache),
        cmocka_unit_test_setup_teardown(test_delete, setup_default, teardown_cache),
        cmocka_unit_test_setup_teardown(test_clock_and_realtime, setup_default, teardown_cache),
        cmocka_unit_test_setup_teardown(test_expiry, setup_default, teardown_cache),
        cmocka_unit_test_setup_teardown(test_touch, setup_default, teardown_cache),
        cmocka_unit_test_setup_teardown(test_flush_immediate, setup_default, teardown_cache),
        cmocka_unit_test_setup_teardown(test_flush_delayed, setup_default, teardown_cache),
        cmocka_unit_test_setup_teardown(test_flush_nocas, setup_nocas, teardown_cache),
        cmocka_unit_test_setup_teardown(test_delta, setup_default, teardown_cache),
        cmocka_unit_test_setup_teardown(test_too_large, setup_item1k, teardown_cache),
        cmocka_unit_test_setup_teardown(test_eviction_lru, setup_small, teardown_cache),
        cmocka_unit_test_setup_teardown(test_reclaim_expired, setup_small, teardown_cache),
        cmocka_unit_test_setup_teardown(test_memory_limit_runtime, setup_default, teardown_cache),
        cmocka_unit_test_setup_teardown(test_refs_outlive_unlink, setup_small, teardown_cache),
        cmocka_unit_test_setup_teardown(test_hash_growth, setup_default, teardown_cache),
        cmocka_unit_test_setup_teardown(test_stats_classes, setup_default, teardown_cache),
        cmocka_unit_test_setup_teardown(test_stress_threads, setup_default, teardown_cache),
        cmocka_unit_test_setup_teardown(test_stress_threads_evicting, setup_default, teardown_cache),
        cmocka_unit_test_setup_teardown(test_warmup_never_revives, setup_warming, teardown_cache),
        cmocka_unit_test_setup_teardown(test_warmup_delete_race, setup_warming, teardown_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
