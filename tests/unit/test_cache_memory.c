/*
 * test_cache_memory.c: the whole cache's memory (server/cache.h): items too
 * large, eviction order and the memory bound, expired items reclaimed
 * first, the limit changed at run time, references that outlive
 * delete/eviction, incremental hash table growth and the size classes of
 * the stats.
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

#include "server/cache.h"
#include "tests/unit/cache_helpers.h"

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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_too_large, setup_item1k, teardown_cache),
        cmocka_unit_test_setup_teardown(test_eviction_lru, setup_small, teardown_cache),
        cmocka_unit_test_setup_teardown(test_reclaim_expired, setup_small, teardown_cache),
        cmocka_unit_test_setup_teardown(test_memory_limit_runtime, setup_default, teardown_cache),
        cmocka_unit_test_setup_teardown(test_refs_outlive_unlink, setup_small, teardown_cache),
        cmocka_unit_test_setup_teardown(test_hash_growth, setup_default, teardown_cache),
        cmocka_unit_test_setup_teardown(test_stats_classes, setup_default, teardown_cache),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
