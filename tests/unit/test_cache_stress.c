/*
 * test_cache_stress.c: 4 threads store, append, count and delete in the
 * whole cache (server/cache.h), with and without evictions, and the end
 * state is checked for consistency (also meant to be built with
 * -fsanitize=thread).
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/cache.h"
#include "tests/unit/cache_helpers.h"

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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stress_threads, setup_default, teardown_cache),
        cmocka_unit_test_setup_teardown(test_stress_threads_evicting, setup_default, teardown_cache),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
