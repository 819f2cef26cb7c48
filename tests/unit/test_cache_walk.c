/*
 * test_cache_walk.c: cache_walk() (server/cache_walk.c), with every piece
 * of the cache linked.
 *
 * Every live item once and nothing dead; the fields of an entry; stopping
 * early; callbacks run with no shard lock held and may use the cache; and
 * no item that stays linked is missed while the walk's own callbacks make
 * the tables grow, by doublings and by a cache_reserve() jump; stubs are
 * reported as such. cache_walk_from(): a walk in small pieces sees every
 * item once, each piece within its budget, also when the tables grow
 * between the pieces; stopping ends it; an ended cursor stays ended.
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
#include "util/status.h"

void cache_clock_set_for_test(rel_time_t now);

#define MB ((size_t)1024 * 1024)
#define KEYS 5000

static int
start(size_t limit, bool persistent, void (*hook)(const struct cache_change *))
{
    struct cache_options o = {
        .memory_limit = limit, .item_size_max = MB, .cas_enabled = true,
        .persistent = persistent, .on_change = hook,
    };
    return cache_setup(&o) == 0 ? 0 : -1;
}

static int setup_default(void **state) { (void)state; return start(64 * MB, false, NULL); }
static int teardown(void **state) { (void)state; cache_teardown(); return 0; }

static void
set_kv(const char *key, const char *val, uint32_t flags, rel_time_t exptime)
{
    size_t n = strlen(val);
    struct item *it = cache_item_alloc(key, (uint8_t)strlen(key), flags, exptime,
                                       (uint32_t)n, NULL);
    assert_non_null(it);
    memcpy(item_value(it), val, n);
    assert_int_equal(cache_store(it, CACHE_SET, 0, NULL), CACHE_STORED);
    cache_item_release(it);
}

/* What a walk saw of the keys "w:<i>". */
struct seen {
    unsigned count[KEYS];
    unsigned calls, others, stubs;
    unsigned stop_after;      /* 0: never stop */
    unsigned grow_per_call;   /* new keys stored by each callback */
    unsigned grown;
    bool reserve_once;
    bool locks_free;
    uint32_t first_hp[CACHE_SHARDS];   /* +1: hash power when first met */
    unsigned grew_mid_walk;            /* shards whose table grew under us */
};

static int
key_index(const struct cache_walk_entry *e)
{
    char buf[32];
    if (e->nkey < 3 || e->nkey >= sizeof(buf) || memcmp(e->key, "w:", 2) != 0)
        return -1;
    memcpy(buf, e->key + 2, e->nkey - 2u);
    buf[e->nkey - 2] = '\0';
    return atoi(buf);
}

static bool
on_entry(const struct cache_walk_entry *e, void *ctx)
{
    struct seen *s = ctx;
    s->calls++;
    /* no shard lock is held while we are called */
    struct shard *sh = shard_of(cache_hash(e->key, e->nkey));
    if (pthread_mutex_trylock(&sh->lock) == 0)
        pthread_mutex_unlock(&sh->lock);
    else
        s->locks_free = false;
    int i = key_index(e);
    if (i >= 0 && i < KEYS)
        s->count[i]++;
    else
        s->others++;
    if (e->stub)
        s->stubs++;
    if (s->reserve_once) {
        s->reserve_once = false;
        cache_reserve(2000000);
    }
    /* new keys in the shard being walked, only for the original keys: the
     * walk may meet new keys too, and growing from those would never end */
    unsigned index = shard_index(cache_hash(e->key, e->nkey));
    bool expanding;
    uint32_t hp = shard_hashpower(sh, &expanding);
    if (s->first_hp[index] == 0)
        s->first_hp[index] = hp + 1;
    else if (s->first_hp[index] == hp)   /* grew by one since first met */
        s->grew_mid_walk++;
    for (unsigned k = 0; i >= 0 && k < s->grow_per_call;) {
        char key[32];
        snprintf(key, sizeof(key), "new:%u", s->grown++);
        if (shard_index(cache_hash(key, (uint8_t)strlen(key))) != index)
            continue;
        set_kv(key, "n", 0, 0);
        k++;
    }
    return s->stop_after == 0 || s->calls < s->stop_after;
}

static struct seen *
new_seen(void)
{
    struct seen *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->locks_free = true;
    return s;
}

static void
fill(void)
{
    char key[32], val[32];
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof(key), "w:%d", i);
        snprintf(val, sizeof(val), "value-%d", i);
        set_kv(key, val, (uint32_t)i, 0);
    }
}

static void
test_every_live_item_once(void **state)
{
    (void)state;
    fill();
    rel_time_t now = cache_now();
    char key[32];
    /* dead ones: expired, deleted; neither is reported */
    for (int i = 0; i < KEYS; i += 10) {
        snprintf(key, sizeof(key), "w:%d", i);
        set_kv(key, "short", 0, now + 5);
    }
    for (int i = 5; i < KEYS; i += 10) {
        snprintf(key, sizeof(key), "w:%d", i);
        assert_int_equal(cache_delete(key, (uint8_t)strlen(key), 0), CACHE_DELETED);
    }
    cache_clock_set_for_test(now + 5);
    struct seen *s = new_seen();
    assert_int_equal(cache_walk(on_entry, s), MCKV_OK);
    for (int i = 0; i < KEYS; i++)
        assert_int_equal(s->count[i], i % 5 == 0 ? 0u : 1u);
    assert_int_equal(s->others, 0);
    assert_true(s->locks_free);
    /* a walk is not an access and reclaims nothing */
    struct cache_stats st;
    cache_stats(&st);
    assert_int_equal(st.curr_items, KEYS - KEYS / 10);
    free(s);
}

struct one {
    struct cache_walk_entry e;
    bool found;
};

static bool
find_one(const struct cache_walk_entry *e, void *ctx)
{
    struct one *o = ctx;
    if (e->nkey == 5 && memcmp(e->key, "w:123", 5) == 0) {
        o->e = *e;
        o->found = true;
        return false;
    }
    return true;
}

static void
test_entry_fields(void **state)
{
    (void)state;
    fill();
    struct item *it = cache_get("w:123", 5, NULL);
    assert_non_null(it);
    uint64_t cas = it->cas;
    size_t total = cache_item_total_size(it);
    cache_item_release(it);
    struct one o = { .found = false };
    assert_int_equal(cache_walk(find_one, &o), MCKV_OK);
    assert_true(o.found);
    assert_int_equal(o.e.flags, 123);
    assert_int_equal(o.e.nbytes, strlen("value-123"));
    assert_int_equal(o.e.cas, cas);
    assert_int_equal(o.e.total_size, total);
    assert_int_equal(o.e.exptime, 0);
    assert_true(o.e.fetched);
    assert_false(o.e.stub);
    assert_false(o.e.stale);
    assert_int_equal(o.e.last_access, cache_rel_to_unix(cache_now()));
    assert_int_equal(o.e.size_class, 1);   /* 65..128 bytes */
}

static void
test_stop_early(void **state)
{
    (void)state;
    fill();
    struct seen *s = new_seen();
    s->stop_after = 10;
    assert_int_equal(cache_walk(on_entry, s), MCKV_OK);
    assert_int_equal(s->calls, 10);
    free(s);
}

static void
test_growth_during_walk(void **state)
{
    (void)state;
    fill();
    struct seen *s = new_seen();
    /* every callback stores new keys: the tables grow and migrate while
     * the walk is between batches */
    s->grow_per_call = 8;
    struct cache_stats st;
    cache_stats(&st);
    uint64_t buckets = st.hash_buckets;
    assert_int_equal(cache_walk(on_entry, s), MCKV_OK);
    cache_stats(&st);
    assert_true(st.hash_buckets >= buckets * 4);
    assert_true(s->grew_mid_walk > 0);
    assert_int_equal(st.evictions, 0);
    for (int i = 0; i < KEYS; i++)
        assert_true(s->count[i] >= 1);
    assert_true(s->locks_free);
    free(s);
}

static void
test_reserve_during_walk(void **state)
{
    (void)state;
    fill();
    struct seen *s = new_seen();
    /* a jump of several powers at the first callback: the rest of the walk
     * crosses tables that are migrating */
    s->reserve_once = true;
    s->grow_per_call = 1;
    assert_int_equal(cache_walk(on_entry, s), MCKV_OK);
    struct cache_stats st;
    cache_stats(&st);
    assert_int_equal(st.evictions, 0);
    for (int i = 0; i < KEYS; i++)
        assert_true(s->count[i] >= 1);
    free(s);
}

/* Walks in pieces of `budget` items; returns how many pieces it took and
 * checks that none called back for more than budget plus what one lock
 * hold can copy past it (a batch, whole chains). `between` runs between
 * pieces. */
static unsigned
walk_in_pieces(struct seen *s, size_t budget, void (*between)(unsigned))
{
    uint64_t cursor = CACHE_WALK_START;
    unsigned pieces = 0;
    do {
        unsigned before = s->calls;
        assert_int_equal(cache_walk_from(&cursor, on_entry, s, budget), MCKV_OK);
        assert_true(s->calls - before <= budget + 128);
        pieces++;
        assert_true(pieces < 100000);
        if (between != NULL && cursor != CACHE_WALK_END)
            between(pieces);
    } while (cursor != CACHE_WALK_END);
    return pieces;
}

static void
test_walk_from_pieces(void **state)
{
    (void)state;
    fill();
    struct seen *s = new_seen();
    unsigned pieces = walk_in_pieces(s, 50, NULL);
    assert_true(pieces >= KEYS / (50 + 128));
    for (int i = 0; i < KEYS; i++)
        assert_int_equal(s->count[i], 1);
    assert_int_equal(s->others, 0);
    assert_true(s->locks_free);
    /* an ended walk stays ended and calls nothing */
    uint64_t cursor = CACHE_WALK_END;
    unsigned calls = s->calls;
    assert_int_equal(cache_walk_from(&cursor, on_entry, s, 50), MCKV_OK);
    assert_int_equal(cursor, CACHE_WALK_END);
    assert_int_equal(s->calls, calls);
    free(s);
}

/* Between two pieces: enough new keys to make the tables grow. */
static void
grow_between(unsigned piece)
{
    char key[32];
    for (unsigned k = 0; k < 200; k++) {
        snprintf(key, sizeof(key), "between:%u:%u", piece, k);
        set_kv(key, "b", 0, 0);
    }
    if (piece == 3)
        cache_reserve(1000000);   /* and once a jump of several powers */
}

static void
test_walk_from_growth_between(void **state)
{
    (void)state;
    fill();
    struct cache_stats st;
    cache_stats(&st);
    uint64_t buckets = st.hash_buckets;
    struct seen *s = new_seen();
    walk_in_pieces(s, 100, grow_between);
    cache_stats(&st);
    assert_true(st.hash_buckets >= buckets * 4);
    assert_int_equal(st.evictions, 0);
    for (int i = 0; i < KEYS; i++)
        assert_true(s->count[i] >= 1);
    free(s);
}

static void
test_walk_from_stop(void **state)
{
    (void)state;
    fill();
    struct seen *s = new_seen();
    s->stop_after = 10;
    uint64_t cursor = CACHE_WALK_START;
    assert_int_equal(cache_walk_from(&cursor, on_entry, s, 1000), MCKV_OK);
    assert_int_equal(s->calls, 10);
    assert_int_equal(cursor, CACHE_WALK_END);
    free(s);
}

static void
commit_now(const struct cache_change *ch)
{
    if (ch->kind == CACHE_CHANGE_PUT) {
        cache_item_clean(ch->item);
        cache_item_release(ch->item);
    }
}

static int
setup_persistent_small(void **state)
{
    (void)state;
    return start(2 * MB, true, commit_now);
}

static void
test_stubs_reported(void **state)
{
    (void)state;
    /* persisted at once, then pushed out by memory pressure: stubs */
    char key[32], val[400];
    memset(val, 'x', sizeof(val) - 1);
    val[sizeof(val) - 1] = '\0';
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "s:%d", i);
        set_kv(key, val, 0, 0);
    }
    uint64_t stubs = cache_ejected_items();
    assert_true(stubs > 0);
    struct seen *s = new_seen();
    assert_int_equal(cache_walk(on_entry, s), MCKV_OK);
    assert_int_equal(s->stubs, stubs);
    struct cache_stats st;
    cache_stats(&st);
    assert_int_equal(s->calls, st.curr_items);
    free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_live_item_once, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_entry_fields, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_stop_early, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_growth_during_walk, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_reserve_during_walk, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_walk_from_pieces, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_walk_from_growth_between, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_walk_from_stop, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_stubs_reported, setup_persistent_small, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
