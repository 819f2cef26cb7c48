/*
 * test_cache_evict.c: unit tests of server/cache_evict.c (with the disk
 * state, shards, item memory and clock below it).
 *
 * The limit holds however much is allocated; the LRU tail goes first and
 * an access saves an item; a dead item near the tail is reclaimed before a
 * live one is evicted; a reader's reference keeps an evicted item's bytes
 * until its release; a small shard takes memory from a big one rather
 * than evicting its own; and with the persistent engine dirty items are
 * never dropped, clean values become stubs, and dropping a stub makes the
 * cache incomplete. With evict_disabled (memcached -M) only dead items are
 * reclaimed (ejection still works with the engine); and a lowered limit
 * is reached gradually, every allocation freeing more than it takes.
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

#include "server/cache_priv.h"

void cache_clock_set_for_test(rel_time_t now);

#define KB ((size_t)1024)
#define LIMIT (256 * KB)
#define VLEN 200

static void
on_change(const struct cache_change *ch)
{
    (void)ch;
}

static int
start(bool persistent, bool evict_disabled)
{
    mem_setup(LIMIT);
    clock_setup(true, NULL);
    disk_setup(persistent, persistent ? on_change : NULL);
    evict_setup(evict_disabled);
    return shard_setup();
}

static int setup_memory(void **state) { (void)state; return start(false, false); }
static int setup_persistent(void **state) { (void)state; return start(true, false); }
static int setup_memory_noevict(void **state) { (void)state; return start(false, true); }
static int setup_persistent_noevict(void **state) { (void)state; return start(true, true); }
static int teardown(void **state) { (void)state; shard_teardown(); return 0; }

static void
key_in_shard(char *key, size_t size, unsigned want, unsigned *next)
{
    for (;; (*next)++) {
        snprintf(key, size, "k%u", *next);
        if (shard_index(cache_hash(key, (uint8_t)strlen(key))) == want) {
            (*next)++;
            return;
        }
    }
}

/* What an allocation does: reserve under the limit (evicting), then link.
 * Returns the linked item (the table's reference only), NULL when no
 * memory could be found. */
static struct item *
store(const char *key, rel_time_t exptime, bool dirty)
{
    uint8_t nkey = (uint8_t)strlen(key);
    uint32_t hv = cache_hash(key, nkey);
    struct item *it = item_malloc(offsetof(struct item, data) + nkey + VLEN + 2);
    assert_non_null(it);
    if (!evict_reserve(item_usable(it), shard_index(hv))) {
        free(it);
        return NULL;
    }
    item_init(it, key, nkey, hv, 0, exptime, VLEN);
    memset(item_value(it), 'v', VLEN);
    struct shard *s = shard_of(hv);
    shard_lock(s);
    shard_link(s, it, cache_now(), false);
    if (dirty)
        it->dirty = 1;
    shard_unlock(s);
    assert_true(mem_used_now() <= LIMIT);
    item_unref(it);
    return it;
}

static struct item *
find(const char *key)
{
    uint8_t nkey = (uint8_t)strlen(key);
    uint32_t hv = cache_hash(key, nkey);
    struct shard *s = shard_of(hv);
    shard_lock(s);
    struct item *it = shard_find(s, key, nkey, hv);
    shard_unlock(s);
    return it;
}

static void
bump(const char *key)
{
    struct item *it = find(key);
    assert_non_null(it);
    struct shard *s = shard_of(it->hv);
    shard_lock(s);
    shard_lru_bump(s, it);
    shard_unlock(s);
}

static void
test_lru_tail_first(void **state)
{
    (void)state;
    enum { N = 3000 };
    static char keys[N][16];
    unsigned next = 0;
    struct shard *s = &cache_shards[3];
    for (unsigned i = 0; i < N; i++) {
        key_in_shard(keys[i], sizeof(keys[i]), 3, &next);
        assert_non_null(store(keys[i], 0, false));
        if (i >= 10 && i % 10 == 0)
            bump(keys[0]);   /* read now and then: it stays */
    }
    assert_true(s->st.evictions > 0);
    assert_int_equal(s->st.evictions, N - s->st.curr_items);
    assert_int_equal(s->st.evicted_unfetched, s->st.evictions);
    assert_int_equal(s->st.reclaimed, 0);
    /* what is left is keys[0] and the most recent others, in order */
    assert_non_null(find(keys[0]));
    unsigned first = N - (unsigned)s->st.curr_items + 1;
    for (unsigned i = 1; i < first; i++)
        assert_null(find(keys[i]));
    for (unsigned i = first; i < N; i++)
        assert_non_null(find(keys[i]));
    assert_true(mem_used_now() <= LIMIT);
}

/* Bytes of one item as store() makes them (all the same size here). */
static size_t
item_bytes(void)
{
    struct item *it = item_malloc(offsetof(struct item, data) + 6 + VLEN + 2);
    size_t n = item_usable(it);
    free(it);
    return n;
}

static void
test_dead_first(void **state)
{
    (void)state;
    char k[4][16];
    unsigned next = 0;
    for (int i = 0; i < 4; i++)
        key_in_shard(k[i], sizeof(k[i]), 7, &next);
    rel_time_t now = cache_now();
    store(k[0], 0, false);          /* the LRU tail, live */
    store(k[1], now + 5, false);    /* second from the tail, will expire */
    store(k[2], 0, false);
    /* fill memory from the same shard, up to the last item that fits */
    char key[16];
    size_t sz = item_bytes();
    while (mem_used_now() + sz <= LIMIT) {
        key_in_shard(key, sizeof(key), 7, &next);
        store(key, 0, false);
    }
    struct shard *s = &cache_shards[7];
    assert_int_equal(s->st.evictions, 0);
    cache_clock_set_for_test(now + 10);
    store(k[3], 0, false);
    /* the expired one went, the older live one stayed */
    assert_int_equal(s->st.reclaimed, 1);
    assert_int_equal(s->st.expired_unfetched, 1);
    assert_int_equal(s->st.evictions, 0);
    assert_null(find(k[1]));
    assert_non_null(find(k[0]));
    assert_non_null(find(k[3]));
}

static void
test_reader_keeps_bytes(void **state)
{
    (void)state;
    unsigned next = 0;
    char key[16];
    key_in_shard(key, sizeof(key), 11, &next);
    struct item *held = store(key, 0, false);
    item_ref(held);                 /* a reply being written */
    size_t held_bytes = item_usable(held);
    while (find(key) != NULL) {
        char other[16];
        key_in_shard(other, sizeof(other), 11, &next);
        store(other, 0, false);
    }
    /* evicted: unlinked, still readable, its bytes still counted */
    assert_false(held->iflags & ITEM_LINKED);
    assert_memory_equal(item_value(held), "vvvv", 4);
    size_t used = mem_used_now();
    item_unref(held);
    assert_int_equal(mem_used_now(), used - held_bytes);
}

static void
test_impossible(void **state)
{
    (void)state;
    assert_false(evict_reserve(LIMIT + 1, 0));
    /* a limit below the hash tables: nothing to evict, no memory */
    cache_set_memory_limit(1000);
    assert_false(evict_reserve(100, 0));
    cache_set_memory_limit(LIMIT);
    assert_true(evict_reserve(100, 0));
    mem_release(100);
}

static void
test_small_shard_takes_from_big(void **state)
{
    (void)state;
    /* every shard but 21 holds its share of memory */
    size_t sz = item_bytes();
    char key[16];
    unsigned n = 0;
    while (mem_used_now() + sz <= LIMIT) {
        snprintf(key, sizeof(key), "k%u", n++);
        if (shard_index(cache_hash(key, (uint8_t)strlen(key))) != 21)
            store(key, 0, false);
    }
    uint64_t others = 0;
    for (unsigned i = 0; i < CACHE_SHARDS; i++)
        others += cache_shards[i].st.curr_items;
    /* shard 21 grows at the others' expense until it nears its share
     * (1/64 of memory is about ten items): its own first items stay */
    char first[16];
    unsigned next = n;
    key_in_shard(first, sizeof(first), 21, &next);
    store(first, 0, false);
    for (int i = 0; i < 4; i++) {
        key_in_shard(key, sizeof(key), 21, &next);
        store(key, 0, false);
    }
    /* evict_victim() compares two other shards picked at random (seeded
     * by an address, so it differs run to run): both may hold no more
     * than shard 21 does, and then shard 21 evicts its own tail. Allow
     * that once; every other eviction comes from the big shards. */
    uint64_t own = cache_shards[21].st.evictions;
    assert_true(own <= 1);
    if (own == 0)
        assert_non_null(find(first));
    assert_int_equal(cache_shards[21].st.curr_items, 5 - own);
    uint64_t evicted = 0, left = 0;
    for (unsigned i = 0; i < CACHE_SHARDS; i++) {
        evicted += cache_shards[i].st.evictions;
        if (i != 21)
            left += cache_shards[i].st.curr_items;
    }
    assert_int_equal(evicted, 5);
    assert_int_equal(left, others - (5 - own));
}

static unsigned
count_dirty(struct shard *s)
{
    unsigned n = 0;
    for (struct item *it = s->lru_head; it != NULL; it = it->lru_next)
        n += it->dirty != 0;
    return n;
}

static void
test_persistent_never_drops_dirty(void **state)
{
    (void)state;
    struct shard *s = &cache_shards[30];
    unsigned next = 0, dirty = 0;
    char clean[5][16], key[16];
    for (int i = 0; i < 5; i++) {
        key_in_shard(clean[i], sizeof(clean[i]), 30, &next);
        store(clean[i], 0, false);  /* clean: on disk already */
    }
    size_t sz = item_bytes();
    while (mem_used_now() + sz <= LIMIT) {
        key_in_shard(key, sizeof(key), 30, &next);
        store(key, 0, true);        /* dirty: not on disk yet */
        dirty++;
    }
    /* room is made by ejecting the least recent clean value to a stub */
    key_in_shard(key, sizeof(key), 30, &next);
    assert_non_null(store(key, 0, true));
    dirty++;
    struct item *st = find(clean[0]);
    assert_non_null(st);
    assert_true(st->iflags & ITEM_STUB);
    assert_int_equal(st->nbytes, 0);
    assert_true(shard_stubs_now() >= 1);
    assert_true(s->st.evictions >= 1);
    assert_true(disk_complete());
    assert_int_equal(count_dirty(s), dirty);

    /* then the other clean values, then stubs: the cache is incomplete */
    while (disk_complete()) {
        key_in_shard(key, sizeof(key), 30, &next);
        if (store(key, 0, true) == NULL)
            break;
        dirty++;
    }
    assert_false(disk_complete());
    /* dirty items only: no memory, and every dirty item is still there */
    for (;;) {
        key_in_shard(key, sizeof(key), 30, &next);
        if (store(key, 0, true) == NULL)
            break;
        dirty++;
    }
    assert_int_equal(count_dirty(s), dirty);
    assert_int_equal(s->st.curr_items, dirty);
    assert_int_equal(shard_stubs_now(), 0);
    for (int i = 0; i < 5; i++)
        assert_null(find(clean[i]));
}

static void
test_evict_disabled(void **state)
{
    (void)state;
    struct shard *s = &cache_shards[40];
    unsigned next = 0;
    char first[16], key[16];
    rel_time_t now = cache_now();
    key_in_shard(first, sizeof(first), 40, &next);
    store(first, now + 5, false);   /* the tail, expiring soon */
    size_t sz = item_bytes();
    while (mem_used_now() + sz <= LIMIT) {
        key_in_shard(key, sizeof(key), 40, &next);
        store(key, 0, false);
    }
    uint64_t items = s->st.curr_items;
    /* full, and nothing dead: -M refuses rather than evict */
    key_in_shard(key, sizeof(key), 40, &next);
    assert_null(store(key, 0, false));
    assert_null(store(key, 0, false));
    assert_int_equal(s->st.evictions, 0);
    assert_int_equal(s->st.curr_items, items);
    /* a dead item is still reclaimed */
    cache_clock_set_for_test(now + 5);
    assert_non_null(store(key, 0, false));
    assert_int_equal(s->st.reclaimed, 1);
    assert_int_equal(s->st.evictions, 0);
    assert_null(find(first));
    key_in_shard(key, sizeof(key), 40, &next);
    assert_null(store(key, 0, false));
}

static void
test_evict_disabled_persistent(void **state)
{
    (void)state;
    /* with the engine, ejecting a clean value loses nothing: it goes on */
    unsigned next = 0;
    char clean[16], key[16];
    key_in_shard(clean, sizeof(clean), 41, &next);
    store(clean, 0, false);
    key_in_shard(key, sizeof(key), 41, &next);
    store(key, 0, false);
    size_t sz = item_bytes();
    while (mem_used_now() + sz <= LIMIT) {
        key_in_shard(key, sizeof(key), 41, &next);
        store(key, 0, true);
    }
    key_in_shard(key, sizeof(key), 41, &next);
    assert_non_null(store(key, 0, true));
    assert_true(find(clean)->iflags & ITEM_STUB);
}

static void
test_shrink_gradually(void **state)
{
    (void)state;
    unsigned next = 0;
    char key[16];
    size_t sz = item_bytes();
    while (mem_used_now() + sz <= LIMIT) {
        key_in_shard(key, sizeof(key), 50, &next);
        store(key, 0, false);
    }
    struct shard *s = &cache_shards[50];
    const size_t low = LIMIT / 2;
    cache_set_memory_limit(low);
    /* each allocation evicts at least twice what it takes, at most one
     * batch: memory falls at every step, but not all at once */
    size_t used = mem_used_now();
    uint64_t evictions = s->st.evictions;
    key_in_shard(key, sizeof(key), 50, &next);
    assert_non_null(store(key, 0, false));
    assert_true(mem_used_now() + sz <= used);
    assert_true(mem_used_now() > low);
    assert_true(s->st.evictions - evictions >= 2);
    assert_true(s->st.evictions - evictions <= 64);
    int steps = 1;
    while (mem_used_now() > low) {
        used = mem_used_now();
        key_in_shard(key, sizeof(key), 50, &next);
        assert_non_null(store(key, 0, false));
        assert_true(mem_used_now() < used);
        assert_true(++steps < 1000);
    }
    /* and once under it, the limit holds again */
    for (int i = 0; i < 100; i++) {
        key_in_shard(key, sizeof(key), 50, &next);
        assert_non_null(store(key, 0, false));
        assert_true(mem_used_now() <= low);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lru_tail_first, setup_memory, teardown),
        cmocka_unit_test_setup_teardown(test_dead_first, setup_memory, teardown),
        cmocka_unit_test_setup_teardown(test_reader_keeps_bytes, setup_memory, teardown),
        cmocka_unit_test_setup_teardown(test_impossible, setup_memory, teardown),
        cmocka_unit_test_setup_teardown(test_small_shard_takes_from_big, setup_memory, teardown),
        cmocka_unit_test_setup_teardown(test_persistent_never_drops_dirty, setup_persistent, teardown),
        cmocka_unit_test_setup_teardown(test_evict_disabled, setup_memory_noevict, teardown),
        cmocka_unit_test_setup_teardown(test_evict_disabled_persistent, setup_persistent_noevict, teardown),
        cmocka_unit_test_setup_teardown(test_shrink_gradually, setup_memory, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
