/*
 * cache_helpers.h: what the tests of the whole cache share (test_cache*.c
 * that go through server/cache.h): a cache set up per test, and stores,
 * gets and checks of values by key with cmocka assertions.
 */
#ifndef MCKV_TESTS_CACHE_HELPERS_H
#define MCKV_TESTS_CACHE_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/cache.h"

/* Test-only hook in cache_clock.c: sets the rel-time clock. */
void cache_clock_set_for_test(rel_time_t now);

#define MB ((size_t)1024 * 1024)
#define HEADER_SIZE offsetof(struct item, data)

/* cache_setup() with these options; 0 or -1. */
int start_cache(size_t limit, uint32_t item_size_max, bool cas);

/* cmocka setups: 64 MB with CAS, without CAS, 2 MB, 64 MB with 1 KiB items;
 * and the teardown of them all. */
int setup_default(void **state);
int setup_nocas(void **state);
int setup_small(void **state);
int setup_item1k(void **state);
int teardown_cache(void **state);

uint8_t klen(const char *key);
/* Allocates, fills and stores an item; returns cache_store()'s result. */
enum cache_result store_full(enum cache_store_op op, const char *key, const char *val,
                             size_t vlen, uint32_t flags, rel_time_t exptime,
                             uint64_t cas_in, uint64_t *cas_out);
enum cache_result store(enum cache_store_op op, const char *key, const char *val,
                        uint64_t cas_in, uint64_t *cas_out);
enum cache_result set_kv(const char *key, const char *val);
/* The value of `key` as a NUL-terminated copy (malloc'd), or NULL when
 * missing. */
char *get_copy(const char *key);
void assert_value(const char *key, const char *expect);
void assert_missing(const char *key);
uint64_t get_cas(const char *key);
/* Stores `count` values of vlen bytes under "prefix:i". */
void fill_unique(const char *prefix, int count, size_t vlen);

#endif
