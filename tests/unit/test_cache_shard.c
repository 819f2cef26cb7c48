/*
 * test_cache_shard.c: unit tests of server/cache_shard.c (with the item
 * memory and the clock it builds on).
 *
 * Link, find and unlink with their statistics and references, CAS
 * assignment at link, LRU order, tombstones giving way to a new version,
 * the stub count, the growth trigger, and incremental expansion: every key
 * stays findable after every single migration step, by one doubling and by
 * a jump of several powers (cache_reserve()), while keys are added and
 * removed mid-migration; the old table's bytes come back at the end.
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

#define MB ((size_t)1024 * 1024)

static int
setup_shards(void **state)
{
    (void)state;
    mem_setup(64 * MB);
    clock_setup(true, NULL);
    return shard_setup();
}

static int
teardown_shards(void **state)
{
    (void)state;
    shard_teardown();
    return 0;
}

/* A new unlinked item (refcount 1, ours), charged to the memory count. */
static struct item *
make(const char *key, uint8_t iflags)
{
    uint8_t nkey = (uint8_t)strlen(key);
    struct item *it = item_malloc(offsetof(struct item, data) + nkey + 1 + 2);
    assert_non_null(it);
    mem_charge(item_usable(it));
    item_init(it, key, nkey, cache_hash(key, nkey), 0, 0, 1);
    item_value(it)[0] = 'v';
    it->iflags = iflags;
    return it;
}

/* Links a new item and drops our reference: the table holds it. */
static struct item *
link_new(const char *key, uint8_t iflags, bool keep_cas)
{
    struct item *it = make(key, iflags);
    struct shard *s = shard_of(it->hv);
    shard_lock(s);
    shard_link(s, it, cache_now(), keep_cas);
    shard_unlock(s);
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
unlink_key(const char *key)
{
    struct item *it = find(key);
    assert_non_null(it);
    struct shard *s = shard_of(it->hv);
    shard_lock(s);
    assert_true(shard_unlink(s, it));   /* the table's was the last ref */
    shard_unlock(s);
}

/* Writes into `key` the n-th key (from *next on) that lands in shard `want`. */
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

static void
test_link_find_unlink(void **state)
{
    (void)state;
    size_t tables = mem_used_now();
    assert_int_equal(tables, CACHE_SHARDS * ((size_t)1 << HASH_INITIAL_POWER) *
                             sizeof(struct item *));
    struct item *it = make("alpha", 0);
    struct shard *s = shard_of(it->hv);
    shard_lock(s);
    assert_null(shard_find(s, "alpha", 5, it->hv));
    shard_link(s, it, 42, false);
    assert_ptr_equal(shard_find(s, "alpha", 5, it->hv), it);
    assert_null(shard_find(s, "alph", 4, cache_hash("alph", 4)));
    assert_true(it->iflags & ITEM_LINKED);
    assert_int_equal(it->time, 42);
    assert_int_equal(it->cas, 1);
    assert_int_equal(atomic_load(&it->refcount), 2);   /* table + ours */
    assert_int_equal(s->st.curr_items, 1);
    assert_int_equal(s->st.total_items, 1);
    assert_int_equal(s->st.bytes, item_usable(it));
    assert_int_equal(s->st.value_bytes, 5 + 1);
    assert_int_equal(s->st.class_items[item_size_class(item_usable(it))], 1);
    assert_int_equal(atomic_load(&s->lru_bytes), item_usable(it));

    /* unlinked while we hold it: not freed, stats back to zero */
    assert_false(shard_unlink(s, it));
    assert_null(shard_find(s, "alpha", 5, it->hv));
    assert_false(it->iflags & ITEM_LINKED);
    assert_int_equal(s->st.curr_items, 0);
    assert_int_equal(s->st.bytes, 0);
    assert_int_equal(s->st.value_bytes, 0);
    assert_int_equal(s->st.total_items, 1);
    shard_unlock(s);
    assert_true(item_unref(it));
    assert_int_equal(mem_used_now(), tables);
}

static void
test_cas_at_link(void **state)
{
    (void)state;
    struct item *a = link_new("a", 0, false);
    struct item *b = link_new("b", 0, false);
    assert_true(b->cas > a->cas);
    /* a replace links a new version with a fresh CAS */
    struct item *a2 = make("a", 0);
    struct shard *s = shard_of(a2->hv);
    shard_lock(s);
    shard_replace(s, a, a2, cache_now());
    shard_unlock(s);
    assert_ptr_equal(find("a"), a2);
    assert_true(a2->cas > b->cas);
    item_unref(a2);
    /* an item from disk keeps the CAS it was stored with */
    struct item *d = make("d", 0);
    d->cas = 7;
    s = shard_of(d->hv);
    shard_lock(s);
    shard_link(s, d, cache_now(), true);
    shard_unlock(s);
    assert_int_equal(find("d")->cas, 7);
    item_unref(d);
}

static void
test_lru_order(void **state)
{
    (void)state;
    char k1[16], k2[16], k3[16];
    unsigned next = 0;
    key_in_shard(k1, sizeof(k1), 5, &next);
    key_in_shard(k2, sizeof(k2), 5, &next);
    key_in_shard(k3, sizeof(k3), 5, &next);
    struct item *a = link_new(k1, 0, false);
    struct item *b = link_new(k2, 0, false);
    struct item *c = link_new(k3, 0, false);
    struct shard *s = &cache_shards[5];
    shard_lock(s);
    /* newest at the head, oldest at the tail */
    assert_ptr_equal(s->lru_head, c);
    assert_ptr_equal(s->lru_tail, a);
    assert_ptr_equal(c->lru_next, b);
    assert_ptr_equal(b->lru_next, a);
    /* an access moves an item to the head */
    shard_lru_bump(s, a);
    assert_ptr_equal(s->lru_head, a);
    assert_ptr_equal(s->lru_tail, b);
    assert_ptr_equal(a->lru_next, c);
    assert_null(a->lru_prev);
    shard_lru_bump(s, a);   /* already the head: nothing moves */
    assert_ptr_equal(s->lru_head, a);
    /* unlinking from the middle keeps the list whole */
    shard_unlink(s, c);
    assert_ptr_equal(a->lru_next, b);
    assert_ptr_equal(b->lru_prev, a);
    shard_unlock(s);
}

static void
test_tombstone_gives_way(void **state)
{
    (void)state;
    struct item *t = link_new("gone", ITEM_TOMBSTONE, true);
    assert_ptr_equal(find("gone"), t);
    struct item *s1 = link_new("stubbed", ITEM_STUB, true);
    assert_int_equal(shard_stubs_now(), 1);

    /* a new version of the key replaces its tombstone */
    struct item *v = link_new("gone", 0, false);
    assert_ptr_equal(find("gone"), v);
    assert_int_equal(shard_of(v->hv)->st.curr_items, 1 +
                     (shard_of(v->hv) == shard_of(s1->hv)));
    unlink_key("stubbed");
    assert_int_equal(shard_stubs_now(), 0);
}

static void
test_grow_trigger(void **state)
{
    (void)state;
    struct shard *s = &cache_shards[9];
    char key[16];
    unsigned next = 0;
    /* more than 1.5 items per bucket asks for a bigger table */
    for (unsigned i = 0; i < (3u << HASH_INITIAL_POWER) / 2; i++) {
        key_in_shard(key, sizeof(key), 9, &next);
        link_new(key, 0, false);
    }
    assert_false(atomic_load(&s->want_grow));
    key_in_shard(key, sizeof(key), 9, &next);
    link_new(key, 0, false);
    assert_true(atomic_load(&s->want_grow));
}

/* Checks that every key in keys[0, n) with present[i] is found, and no
 * other; under the shard lock without migrating (pthread_mutex_lock). */
static void
check_keys(struct shard *s, char (*keys)[16], const bool *present, unsigned n)
{
    pthread_mutex_lock(&s->lock);
    for (unsigned i = 0; i < n; i++) {
        uint8_t nkey = (uint8_t)strlen(keys[i]);
        struct item *it = shard_find(s, keys[i], nkey, cache_hash(keys[i], nkey));
        if (present[i]) {
            assert_non_null(it);
            assert_memory_equal(item_key(it), keys[i], nkey);
        } else {
            assert_null(it);
        }
    }
    pthread_mutex_unlock(&s->lock);
}

static void
expand_and_check(unsigned shard, uint32_t extra_power)
{
    enum { N = 600, M = 200 };
    static char keys[N + M][16];
    static bool present[N + M];
    struct shard *s = &cache_shards[shard];
    unsigned next = 0;
    for (unsigned i = 0; i < N + M; i++) {
        key_in_shard(keys[i], sizeof(keys[i]), shard, &next);
        present[i] = i < N;
        if (present[i])
            link_new(keys[i], 0, false);
    }
    check_keys(s, keys, present, N + M);

    bool expanding;
    uint32_t hp = shard_hashpower(s, &expanding);
    assert_false(expanding);
    uint32_t power = hp + extra_power;
    size_t bytes = ((size_t)1 << power) * sizeof(struct item *);
    struct item **table = calloc((size_t)1 << power, sizeof(*table));
    assert_non_null(table);
    mem_charge(bytes);
    /* a stale view of the shard is refused */
    assert_false(shard_install_table(s, hp - 1, table, power, bytes));
    assert_true(shard_install_table(s, hp, table, power, bytes));
    shard_hashpower(s, &expanding);
    assert_true(expanding);
    /* only one expansion at a time */
    assert_false(shard_install_table(s, power, table, power + 1, bytes));

    size_t before = mem_used_now() - s->st.bytes;   /* all but these items */
    unsigned steps = 0, added = N, removed = 0;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        bool done = s->old_buckets == NULL;
        pthread_mutex_unlock(&s->lock);
        if (done)
            break;
        /* one migration step, and a change to the key set, then every key */
        shard_lock(s);
        shard_unlock(s);
        steps++;
        if (steps % 3 == 0 && added < N + M) {
            link_new(keys[added], 0, false);
            present[added++] = true;
        } else if (steps % 3 == 1 && removed < N) {
            unlink_key(keys[removed]);
            present[removed++] = false;
        }
        check_keys(s, keys, present, N + M);
    }
    /* one step moves HASH_MIGRATE_PER_OP old buckets; the changes above
     * take locks too */
    assert_true(steps >= ((1u << hp) / HASH_MIGRATE_PER_OP) / 3);
    assert_true(steps <= (1u << hp) / HASH_MIGRATE_PER_OP + 1);
    check_keys(s, keys, present, N + M);
    assert_int_equal(s->hashpower, power);
    assert_int_equal(s->table_bytes, bytes);
    /* the old table's bytes went back at the last unlock */
    assert_int_equal(before - (mem_used_now() - s->st.bytes),
                     ((size_t)1 << hp) * sizeof(struct item *));
}

static void
test_expand_one_doubling(void **state)
{
    (void)state;
    expand_and_check(17, 1);
}

static void
test_expand_several_powers(void **state)
{
    (void)state;
    expand_and_check(33, 4);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_link_find_unlink, setup_shards, teardown_shards),
        cmocka_unit_test_setup_teardown(test_cas_at_link, setup_shards, teardown_shards),
        cmocka_unit_test_setup_teardown(test_lru_order, setup_shards, teardown_shards),
        cmocka_unit_test_setup_teardown(test_tombstone_gives_way, setup_shards, teardown_shards),
        cmocka_unit_test_setup_teardown(test_grow_trigger, setup_shards, teardown_shards),
        cmocka_unit_test_setup_teardown(test_expand_one_doubling, setup_shards, teardown_shards),
        cmocka_unit_test_setup_teardown(test_expand_several_powers, setup_shards, teardown_shards),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
