/*
 * test_cache_item.c: unit tests of server/cache_item.c alone.
 *
 * The memory count never passes the limit (also with four threads racing
 * for the last bytes), the chunk grid items are rounded to, header
 * initialisation, refcounts that free and give the bytes back on the last
 * release, key-only items, and the size-class boundaries.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server/cache_priv.h"

static int
setup_1mb(void **state)
{
    (void)state;
    mem_setup(1024 * 1024);
    return 0;
}

static void
test_reserve_within_limit(void **state)
{
    (void)state;
    assert_int_equal(mem_used_now(), 0);
    assert_int_equal(mem_limit_now(), 1024 * 1024);
    assert_true(mem_try_reserve(1000 * 1024));
    assert_false(mem_try_reserve(25 * 1024));   /* would pass the limit */
    assert_int_equal(mem_used_now(), 1000 * 1024);
    assert_true(mem_try_reserve(24 * 1024));    /* exactly fills it */
    assert_false(mem_try_reserve(1));
    mem_release(24 * 1024);
    assert_true(mem_try_reserve(1));
    mem_release(1);

    /* charges ignore the limit (stubs, tombstones); reservations then
     * fail until enough is released */
    mem_charge(100 * 1024);
    assert_int_equal(mem_used_now(), 1100 * 1024);
    assert_false(mem_try_reserve(1));
    mem_release(100 * 1024);
    assert_true(mem_try_reserve(24 * 1024));
    assert_false(mem_try_reserve(1));

    /* the limit can move live, either way */
    cache_set_memory_limit(2048 * 1024);
    assert_int_equal(mem_limit_now(), 2048 * 1024);
    assert_true(mem_try_reserve(1024 * 1024));
    cache_set_memory_limit(512 * 1024);
    assert_false(mem_try_reserve(1));
    mem_release(mem_used_now());
    assert_int_equal(mem_used_now(), 0);
}

struct racer {
    pthread_t tid;
    size_t got;
};

static void *
race_main(void *arg)
{
    struct racer *r = arg;
    while (mem_try_reserve(64))
        r->got += 64;
    return NULL;
}

static void
test_reserve_race(void **state)
{
    (void)state;
    struct racer r[4];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&r[i].tid, NULL, race_main, &r[i]), 0);
    size_t total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(r[i].tid, NULL);
        total += r[i].got;
    }
    /* every byte handed out once, none past the limit */
    assert_int_equal(total, 1024 * 1024);
    assert_int_equal(mem_used_now(), 1024 * 1024);
}

static void
test_malloc_grid(void **state)
{
    (void)state;
    /* sizes a few bytes apart share a chunk: four usable sizes per power
     * of two, each less than a quarter above the request */
    size_t distinct = 0, last = 0;
    for (size_t n = 1024; n < 2048; n++) {
        struct item *it = item_malloc(n);
        assert_non_null(it);
        size_t u = item_usable(it);
        assert_true(u >= n);
        assert_true(u < n + n / 4 + 16);
        if (u != last)
            distinct++;
        last = u;
        free(it);
    }
    assert_true(distinct <= 5);
}

static void
test_init_ref_unref(void **state)
{
    (void)state;
    size_t ntotal = offsetof(struct item, data) + 3 + 5 + 2;
    struct item *it = item_malloc(ntotal);
    assert_non_null(it);
    mem_charge(item_usable(it));
    item_init(it, "key", 3, 0xabcdef01u, 77, 1234, 5);
    memcpy(item_value(it), "hello", 5);
    assert_memory_equal(item_key(it), "key", 3);
    assert_memory_equal(item_value(it), "hello\r\n", 7);
    assert_int_equal(it->nkey, 3);
    assert_int_equal(it->nbytes, 5);
    assert_int_equal(it->flags, 77);
    assert_int_equal(it->hv, 0xabcdef01u);
    assert_int_equal(item_exptime(it), 1234);
    assert_int_equal(it->cas, 0);
    assert_int_equal(it->iflags, 0);
    assert_int_equal(it->dirty, 0);
    assert_null(it->h_next);
    assert_int_equal(atomic_load(&it->refcount), 1);
    assert_int_equal(cache_item_total_size(it), item_usable(it));

    /* the last reference frees the item and gives its bytes back */
    item_ref(it);
    item_ref(it);
    assert_false(item_unref(it));
    cache_item_release(it);
    assert_int_equal(atomic_load(&it->refcount), 1);
    assert_true(mem_used_now() > 0);
    assert_true(item_unref(it));
    assert_int_equal(mem_used_now(), 0);
    cache_item_release(NULL);   /* a no-op */
}

static void
test_keyonly(void **state)
{
    (void)state;
    struct item *k = item_keyonly_alloc("stub:key", 8, 99, ITEM_STUB);
    assert_non_null(k);
    assert_int_equal(mem_used_now(), item_usable(k));
    assert_memory_equal(item_key(k), "stub:key", 8);
    assert_memory_equal(item_value(k), "\r\n", 2);
    assert_int_equal(k->nbytes, 0);
    assert_int_equal(k->iflags, ITEM_STUB);
    assert_int_equal(k->hv, 99);
    assert_int_equal(atomic_load(&k->refcount), 1);
    assert_true(item_unref(k));
    assert_int_equal(mem_used_now(), 0);
}

static void
test_size_classes(void **state)
{
    (void)state;
    /* class c holds sizes up to 64 << c */
    assert_int_equal(item_size_class(1), 0);
    assert_int_equal(item_size_class(64), 0);
    assert_int_equal(item_size_class(65), 1);
    assert_int_equal(item_size_class(128), 1);
    assert_int_equal(item_size_class(129), 2);
    assert_int_equal(item_size_class(1024 * 1024), 14);
    assert_int_equal(item_size_class(1024 * 1024 + 1), 15);
    /* the last class takes everything larger */
    assert_int_equal(item_size_class((size_t)1 << 40), CACHE_SIZE_CLASSES - 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_reserve_within_limit, setup_1mb),
        cmocka_unit_test_setup(test_reserve_race, setup_1mb),
        cmocka_unit_test_setup(test_malloc_grid, setup_1mb),
        cmocka_unit_test_setup(test_init_ref_unref, setup_1mb),
        cmocka_unit_test_setup(test_keyonly, setup_1mb),
        cmocka_unit_test_setup(test_size_classes, setup_1mb),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
