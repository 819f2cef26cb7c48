/*
 * test_cache.c: tests of the whole cache (server/cache*.c) through its
 * public API, server/cache.h: every store op and result, CAS (on and off),
 * delete, and incr/decr parsing and arithmetic.
 *
 * The other topics have their own binaries, each its own cmocka main:
 * test_cache_expiry.c (expiry and flush_all on a controlled clock),
 * test_cache_memory.c (eviction order and the memory bound, references that
 * outlive delete/eviction, incremental hash table growth),
 * test_cache_stress.c (a 4-thread stress run, also meant for
 * -fsanitize=thread) and test_cache_warmup.c (a cache still warming up from
 * disk). cache_helpers.c holds what they share.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "server/cache.h"
#include "tests/unit/cache_helpers.h"

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
        cmocka_unit_test_setup_teardown(test_delta, setup_default, teardown_cache),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
