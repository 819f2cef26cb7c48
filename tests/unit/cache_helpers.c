/*
 * cache_helpers.c: the whole-cache tests' setups and helpers
 * (cache_helpers.h).
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

#include "tests/unit/cache_helpers.h"

int
start_cache(size_t limit, uint32_t item_size_max, bool cas)
{
    struct cache_options o = {
        .memory_limit = limit, .item_size_max = item_size_max, .cas_enabled = cas,
    };
    return cache_setup(&o) == 0 ? 0 : -1;
}

int setup_default(void **state) { (void)state; return start_cache(64 * MB, MB, true); }
int setup_nocas(void **state) { (void)state; return start_cache(64 * MB, MB, false); }
int setup_small(void **state) { (void)state; return start_cache(2 * MB, MB, true); }
int setup_item1k(void **state) { (void)state; return start_cache(64 * MB, 1024, true); }
int teardown_cache(void **state) { (void)state; cache_teardown(); return 0; }

uint8_t
klen(const char *key)
{
    return (uint8_t)strlen(key);
}

enum cache_result
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

enum cache_result
store(enum cache_store_op op, const char *key, const char *val, uint64_t cas_in,
      uint64_t *cas_out)
{
    return store_full(op, key, val, strlen(val), 0, 0, cas_in, cas_out);
}

enum cache_result
set_kv(const char *key, const char *val)
{
    return store(CACHE_SET, key, val, 0, NULL);
}

/* The value of `key` as a NUL-terminated copy, or NULL when missing. */
char *
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

void
assert_value(const char *key, const char *expect)
{
    char *v = get_copy(key);
    assert_non_null(v);
    assert_string_equal(v, expect);
    free(v);
}

void
assert_missing(const char *key)
{
    struct item *it = cache_get(key, klen(key), NULL);
    assert_null(it);
}

uint64_t
get_cas(const char *key)
{
    struct item *it = cache_get(key, klen(key), NULL);
    assert_non_null(it);
    uint64_t cas = it->cas;
    cache_item_release(it);
    return cas;
}

void
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
