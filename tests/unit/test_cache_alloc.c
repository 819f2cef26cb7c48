/*
 * test_cache_alloc.c: unit tests of server/cache_alloc.c (with eviction,
 * the disk state, shards, item memory and clock below it).
 *
 * item_size_max and the too-large report, a new item's shape, allocation
 * with and without eviction, the growth a full shard asks for being done
 * by its next allocation, and cache_reserve() sizing every table for a
 * bulk load within what the memory limit can hold.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "server/cache_priv.h"

#define MB ((size_t)1024 * 1024)
#define HEADER offsetof(struct item, data)

static int
start(size_t limit, uint32_t item_size_max)
{
    mem_setup(limit);
    clock_setup(true, NULL);
    disk_setup(false, NULL);
    evict_setup(false);
    alloc_setup(item_size_max);
    return shard_setup();
}

static int setup_1k(void **state) { (void)state; return start(64 * MB, 1024); }
static int setup_small(void **state) { (void)state; return start(256 * 1024, MB); }
static int setup_big(void **state) { (void)state; return start(1024 * MB, MB); }
static int teardown(void **state) { (void)state; shard_teardown(); return 0; }

static struct item *
store(const char *key, uint32_t nbytes, bool may_evict)
{
    uint8_t nkey = (uint8_t)strlen(key);
    uint32_t hv = cache_hash(key, nkey);
    bool too_large = false;
    struct item *it = alloc_item(key, nkey, hv, 0, 0, nbytes, &too_large, may_evict);
    if (it == NULL)
        return NULL;
    memset(item_value(it), 'v', nbytes);
    struct shard *s = shard_of(hv);
    shard_lock(s);
    shard_link(s, it, cache_now(), false);
    shard_unlock(s);
    item_unref(it);
    return it;
}

static void
test_too_large(void **state)
{
    (void)state;
    bool too_large = false;
    uint32_t fit = (uint32_t)(1024 - HEADER - 1 - 2);
    struct item *it = cache_item_alloc("k", 1, 9, 100, fit, &too_large);
    assert_non_null(it);
    assert_false(too_large);
    assert_int_equal(it->nbytes, fit);
    assert_int_equal(it->flags, 9);
    assert_int_equal(item_exptime(it), 100);
    assert_memory_equal(item_value(it) + fit, "\r\n", 2);
    assert_int_equal(atomic_load(&it->refcount), 1);
    assert_false(it->iflags & ITEM_LINKED);
    assert_true(mem_used_now() >= item_usable(it));
    cache_item_release(it);

    assert_null(cache_item_alloc("k", 1, 0, 0, fit + 1, &too_large));
    assert_true(too_large);
    /* a longer key leaves less room for the value */
    assert_null(cache_item_alloc("kk", 2, 0, 0, fit, &too_large));
    assert_true(too_large);
    assert_null(cache_item_alloc_noevict("k", 1, 0, 0, fit + 1));
    /* too_large may be NULL */
    assert_null(cache_item_alloc("k", 1, 0, 0, fit + 1, NULL));
}

static void
test_evict_or_not(void **state)
{
    (void)state;
    char key[32];
    int i = 0;
    /* fill without evicting until memory is full */
    for (;; i++) {
        snprintf(key, sizeof(key), "fill:%d", i);
        if (store(key, 200, false) == NULL)
            break;
    }
    assert_true(i > 100);
    uint64_t items = 0, evictions = 0;
    for (unsigned s = 0; s < CACHE_SHARDS; s++) {
        items += cache_shards[s].st.curr_items;
        evictions += cache_shards[s].st.evictions;
    }
    assert_int_equal(items, (uint64_t)i);
    assert_int_equal(evictions, 0);
    /* the warmup's allocation fails where a client's evicts */
    assert_null(cache_item_alloc_noevict("x", 1, 0, 0, 200));
    bool too_large = true;
    struct item *it = cache_item_alloc("x", 1, 0, 0, 200, &too_large);
    assert_non_null(it);
    assert_false(too_large);
    cache_item_release(it);
    evictions = 0;
    for (unsigned s = 0; s < CACHE_SHARDS; s++)
        evictions += cache_shards[s].st.evictions;
    assert_true(evictions >= 1);
    assert_true(mem_used_now() <= 256 * 1024);
}

static void
test_grow_on_next_alloc(void **state)
{
    (void)state;
    struct shard *s = &cache_shards[12];
    char key[32];
    unsigned n = 0, linked = 0;
    while (!atomic_load(&s->want_grow)) {
        snprintf(key, sizeof(key), "g%u", n++);
        if (shard_index(cache_hash(key, (uint8_t)strlen(key))) == 12) {
            store(key, 10, true);
            linked++;
        }
    }
    assert_int_equal(linked, (3u << HASH_INITIAL_POWER) / 2 + 1);
    bool expanding;
    assert_int_equal(shard_hashpower(s, &expanding), HASH_INITIAL_POWER);
    assert_false(expanding);
    size_t used = mem_used_now();
    /* the next allocation for the shard installs a table twice as big */
    do {
        snprintf(key, sizeof(key), "g%u", n++);
    } while (shard_index(cache_hash(key, (uint8_t)strlen(key))) != 12);
    struct item *it = store(key, 10, true);
    assert_int_equal(shard_hashpower(s, &expanding), HASH_INITIAL_POWER + 1);
    assert_false(atomic_load(&s->want_grow));
    assert_true(mem_used_now() >= used + item_usable(it) +
                ((size_t)2 << HASH_INITIAL_POWER) * sizeof(struct item *));
    /* every key is still there, whichever table it is in */
    for (unsigned i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "g%u", i);
        uint8_t nkey = (uint8_t)strlen(key);
        uint32_t hv = cache_hash(key, nkey);
        if (shard_index(hv) != 12)
            continue;
        shard_lock(s);
        assert_non_null(shard_find(s, key, nkey, hv));
        shard_unlock(s);
    }
}

static void
test_reserve(void **state)
{
    (void)state;
    /* 1M items over 64 shards: 2^14 buckets each */
    cache_reserve(1000000);
    bool expanding;
    for (unsigned i = 0; i < CACHE_SHARDS; i++) {
        assert_int_equal(shard_hashpower(&cache_shards[i], &expanding), 14);
        assert_true(expanding);
    }
    /* already big enough (or expanding): left alone */
    cache_reserve(10);
    assert_int_equal(shard_hashpower(&cache_shards[0], &expanding), 14);
    size_t tables = 0;
    for (unsigned i = 0; i < CACHE_SHARDS; i++)
        tables += cache_shards[i].table_bytes;
    assert_int_equal(tables, CACHE_SHARDS * (((size_t)1 << 14) +
                     ((size_t)1 << HASH_INITIAL_POWER)) * sizeof(struct item *));
    assert_int_equal(mem_used_now(), tables);
}

static void
test_reserve_capped_by_memory(void **state)
{
    (void)state;
    /* 256 KB holds about 3500 of the smallest items: far fewer buckets
     * than a billion items would ask for */
    cache_reserve(1000000000);
    bool expanding;
    for (unsigned i = 0; i < CACHE_SHARDS; i++) {
        assert_int_equal(shard_hashpower(&cache_shards[i], &expanding),
                         HASH_INITIAL_POWER);
        assert_false(expanding);
    }
    assert_true(mem_used_now() <= 256 * 1024);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_too_large, setup_1k, teardown),
        cmocka_unit_test_setup_teardown(test_evict_or_not, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_grow_on_next_alloc, setup_1k, teardown),
        cmocka_unit_test_setup_teardown(test_reserve, setup_big, teardown),
        cmocka_unit_test_setup_teardown(test_reserve_capped_by_memory, setup_small, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
