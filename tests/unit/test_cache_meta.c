/*
 * test_cache_meta.c: the cache primitives of memcached's meta commands
 * (cache_mget, cache_store_ex, cache_delete_ex, cache_delta_ex, cache_peek)
 * through server/cache.h, with every piece of the cache linked.
 *
 * mg's decisions in memcached's order (N creates and wins, R wins once
 * below the threshold, Z for everyone after, X and W for a stale item, T
 * before or after R and N), h and l reporting the state before the
 * request, u leaving it alone, one winner per key among racing threads;
 * ms's CAS out on failure, I's stale store, E's explicit CAS (also
 * against flush_all), N on append; md I; ma's N, T and E and the meta
 * state of an incr that fits; and a cache still warming up, where no
 * decision is made before the value is fetched. The race is also meant
 * to be built with -fsanitize=thread.
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

void cache_clock_set_for_test(rel_time_t now);

#define MB ((size_t)1024 * 1024)

static int
start(bool cas)
{
    struct cache_options o = {
        .memory_limit = 64 * MB, .item_size_max = MB, .cas_enabled = cas,
    };
    return cache_setup(&o) == 0 ? 0 : -1;
}

static int setup_cas(void **state) { (void)state; return start(true); }
static int setup_nocas(void **state) { (void)state; return start(false); }
static int teardown(void **state) { (void)state; cache_teardown(); return 0; }

static uint8_t
klen(const char *key)
{
    return (uint8_t)strlen(key);
}

static struct item *
new_item(const char *key, const char *val, uint32_t flags, rel_time_t exptime)
{
    size_t n = strlen(val);
    struct item *it = cache_item_alloc(key, klen(key), flags, exptime,
                                       (uint32_t)n, NULL);
    assert_non_null(it);
    memcpy(item_value(it), val, n);
    return it;
}

static enum cache_result
store_ex(enum cache_store_op op, const char *key, const char *val,
         rel_time_t exptime, const struct cache_store_opts *o,
         struct cache_store_info *info)
{
    struct item *it = new_item(key, val, 3, exptime);
    enum cache_result r = cache_store_ex(it, op, o, info);
    cache_item_release(it);
    return r;
}

static uint64_t
set_kv(const char *key, const char *val, rel_time_t exptime)
{
    struct cache_store_info info;
    assert_int_equal(store_ex(CACHE_SET, key, val, exptime, NULL, &info),
                     CACHE_STORED);
    return info.cas;
}

/* mg with opts; returns the info, checks the item against `hit`. */
static struct cache_mget_info
mg(const char *key, const struct cache_mget_opts *o, bool hit)
{
    struct cache_mget_info info;
    struct item *it = cache_mget(key, klen(key), o, &info);
    if (hit) {
        assert_non_null(it);
        cache_item_release(it);
    } else {
        assert_null(it);
    }
    return info;
}

static void
assert_value(const char *key, const char *expect)
{
    struct item *it = cache_get(key, klen(key), NULL);
    assert_non_null(it);
    assert_int_equal(it->nbytes, strlen(expect));
    assert_memory_equal(item_value(it), expect, it->nbytes);
    cache_item_release(it);
}

static struct cache_walk_entry
peek(const char *key)
{
    struct cache_walk_entry e;
    assert_true(cache_peek(key, klen(key), &e, NULL));
    return e;
}

/* ---------------------------------------------------------------- mg */

static void
test_mget_vivify(void **state)
{
    (void)state;
    const struct cache_mget_opts n30 = {
        .vivify = true, .vivify_exptime = cache_realtime(30),
    };
    /* no N: a plain miss */
    struct cache_mget_info info = mg("k", NULL, false);
    assert_int_equal(info.why, CACHE_MISS_ABSENT);

    /* N on a miss: an empty item is created, and this client wins */
    struct item *it = cache_mget("k", 1, &n30, &info);
    assert_non_null(it);
    assert_true(info.created);
    assert_true(info.won);
    assert_false(info.token_sent);
    assert_false(info.fetched);
    assert_int_equal(it->nbytes, 0);
    assert_int_equal(it->flags, 0);
    assert_int_equal(atomic_load(&it->exptime), cache_realtime(30));
    assert_memory_equal(item_value(it), "\r\n", 2);
    assert_int_equal(atomic_load(&it->refcount), 2);   /* table + ours */
    assert_int_not_equal(it->cas, 0);
    cache_item_release(it);

    /* everyone after sees Z: someone else is recaching */
    info = mg("k", &n30, true);
    assert_false(info.created);
    assert_false(info.won);
    assert_true(info.token_sent);
    assert_true(info.fetched);   /* the creating mg counted as a hit */
    info = mg("k", &n30, true);
    assert_true(info.token_sent);
    assert_false(info.won);

    /* a new version starts fresh */
    set_kv("k", "value", 0);
    info = mg("k", &n30, true);
    assert_false(info.token_sent);
    assert_false(info.won);
    assert_false(info.fetched);

    /* N and T: the later one on the line sets a created item's expiry */
    struct cache_mget_opts nt = n30;
    nt.touch = true;
    nt.exptime = cache_realtime(60);
    nt.touch_after_vivify = true;
    it = cache_mget("a", 1, &nt, &info);
    assert_true(info.created);
    assert_int_equal(atomic_load(&it->exptime), cache_realtime(60));
    cache_item_release(it);
    nt.touch_after_vivify = false;
    it = cache_mget("b", 1, &nt, &info);
    assert_true(info.created);
    assert_int_equal(atomic_load(&it->exptime), cache_realtime(30));
    cache_item_release(it);
}

static void
test_mget_recache(void **state)
{
    (void)state;
    rel_time_t now = cache_now();
    set_kv("r", "v", now + 100);
    const struct cache_mget_opts r30 = {
        .recache = true, .recache_time = cache_realtime(30),
    };
    /* 100 s left: above the threshold */
    struct cache_mget_info info = mg("r", &r30, true);
    assert_false(info.won);
    assert_false(info.token_sent);

    /* 20 s left: the first to ask wins, the others see Z */
    cache_clock_set_for_test(now + 80);
    struct cache_mget_opts r = { .recache = true,
                                 .recache_time = cache_realtime(30) };
    info = mg("r", &r, true);
    assert_true(info.won);
    assert_false(info.token_sent);
    info = mg("r", &r, true);
    assert_false(info.won);
    assert_true(info.token_sent);

    /* an item that never expires never wins by R */
    set_kv("forever", "v", 0);
    info = mg("forever", &r, true);
    assert_false(info.won);

    /* T before R: R judges the expiry T set */
    set_kv("t1", "v", cache_now() + 100);
    struct cache_mget_opts tr = r;
    tr.touch = true;
    tr.exptime = cache_realtime(10);
    tr.touch_before_recache = true;
    info = mg("t1", &tr, true);
    assert_true(info.won);
    assert_int_equal(info.exptime_before, cache_now() + 100);
    /* R before T: R judges the old expiry, T still applies */
    set_kv("t2", "v", cache_now() + 100);
    tr.touch_before_recache = false;
    info = mg("t2", &tr, true);
    assert_false(info.won);
    assert_int_equal(peek("t2").exptime, cache_rel_to_unix(cache_realtime(10)));
}

static void
test_mget_stale(void **state)
{
    (void)state;
    uint64_t cas = set_kv("s", "old", 0);
    /* md I: still there, stale; the first mg wins the recache */
    uint64_t cas2 = 0;
    const struct cache_delete_opts inval = { .invalidate = true };
    assert_int_equal(cache_delete_ex("s", 1, &inval, &cas2), CACHE_DELETED);
    assert_true(cas2 > cas);
    struct cache_mget_info info = mg("s", NULL, true);
    assert_true(info.stale);
    assert_true(info.won);
    assert_false(info.token_sent);
    info = mg("s", NULL, true);
    assert_true(info.stale);
    assert_false(info.won);
    assert_true(info.token_sent);
    assert_value("s", "old");

    /* a plain get of a stale item takes no token */
    assert_int_equal(cache_delete_ex("s", 1, &inval, NULL), CACHE_DELETED);
    struct item *it = cache_get("s", 1, NULL);
    cache_item_release(it);
    info = mg("s", NULL, true);
    assert_true(info.won);

    /* the recached value is fresh */
    set_kv("s", "new", 0);
    info = mg("s", NULL, true);
    assert_false(info.stale);
    assert_false(info.won);
    assert_false(info.token_sent);
}

static void
test_mget_hit_and_access(void **state)
{
    (void)state;
    rel_time_t t0 = cache_now();
    set_kv("h", "v", 0);
    const struct cache_mget_opts u = { .no_bump = true };
    /* u: reported, but nothing updated */
    cache_clock_set_for_test(t0 + 3);
    struct cache_mget_info info = mg("h", &u, true);
    assert_false(info.fetched);
    assert_int_equal(info.last_access, t0);
    cache_clock_set_for_test(t0 + 5);
    info = mg("h", NULL, true);
    assert_false(info.fetched);             /* before this request */
    assert_int_equal(info.last_access, t0);
    cache_clock_set_for_test(t0 + 9);
    info = mg("h", NULL, true);
    assert_true(info.fetched);
    assert_int_equal(info.last_access, t0 + 5);
    struct cache_walk_entry e = peek("h");
    assert_int_equal(e.last_access, cache_rel_to_unix(t0 + 9));
    assert_int_equal(e.stored, cache_rel_to_unix(t0));

    /* a classic get is a hit as well */
    set_kv("g", "v", 0);
    assert_false(peek("g").fetched);
    struct item *it = cache_get("g", 1, NULL);
    cache_item_release(it);
    info = mg("g", NULL, true);
    assert_true(info.fetched);
    /* and a touch through mg persists the new expiry, Z and all intact */
    const struct cache_mget_opts t = { .touch = true,
                                       .exptime = cache_realtime(500) };
    info = mg("g", &t, true);
    assert_int_equal(info.exptime_before, 0);
    assert_int_equal(peek("g").exptime, cache_rel_to_unix(cache_realtime(500)));
}

/* Four clients race mg N (and then mg R) over the same keys: each key is
 * created once and won once, whatever the interleaving. */
#define RACE_KEYS 2000
#define RACE_THREADS 4

struct race {
    atomic_uint created[RACE_KEYS];
    atomic_uint won[RACE_KEYS];
    bool recache;   /* second round: R on the existing keys */
};

static void *
race_main(void *arg)
{
    struct race *r = arg;
    struct cache_mget_opts o = {
        .vivify = !r->recache, .vivify_exptime = cache_realtime(1000),
        .recache = r->recache, .recache_time = cache_realtime(2000),
    };
    char key[32];
    for (int k = 0; k < RACE_KEYS; k++) {
        snprintf(key, sizeof(key), "race:%d", k);
        struct cache_mget_info info;
        struct item *it = cache_mget(key, klen(key), &o, &info);
        if (it == NULL)
            continue;
        if (info.created)
            atomic_fetch_add(&r->created[k], 1);
        if (info.won)
            atomic_fetch_add(&r->won[k], 1);
        cache_item_release(it);
    }
    return NULL;
}

static void
run_race(struct race *r)
{
    pthread_t th[RACE_THREADS];
    for (int i = 0; i < RACE_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, race_main, r), 0);
    for (int i = 0; i < RACE_THREADS; i++)
        pthread_join(th[i], NULL);
}

static void
test_mget_one_winner(void **state)
{
    (void)state;
    struct race *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    run_race(r);
    for (int k = 0; k < RACE_KEYS; k++) {
        assert_int_equal(atomic_load(&r->created[k]), 1);
        assert_int_equal(atomic_load(&r->won[k]), 1);
    }
    /* fresh versions, then a recache race: again one winner each */
    char key[32];
    for (int k = 0; k < RACE_KEYS; k++) {
        snprintf(key, sizeof(key), "race:%d", k);
        set_kv(key, "v", cache_realtime(1500));
        atomic_store(&r->won[k], 0);
    }
    r->recache = true;
    run_race(r);
    for (int k = 0; k < RACE_KEYS; k++)
        assert_int_equal(atomic_load(&r->won[k]), 1);
    free(r);
}

/* ---------------------------------------------------------------- ms */

static void
test_store_info(void **state)
{
    (void)state;
    struct cache_store_info info;
    uint64_t cas = set_kv("k", "abc", 0);
    assert_true(cas != 0);
    /* EX and NS report the CAS that is there, for ms c */
    const struct cache_store_opts wrong = { .cas_in = cas + 1 };
    assert_int_equal(store_ex(CACHE_CAS, "k", "x", 0, &wrong, &info), CACHE_EXISTS);
    assert_int_equal(info.cas, cas);
    assert_int_equal(store_ex(CACHE_ADD, "k", "x", 0, NULL, &info), CACHE_NOT_STORED);
    assert_int_equal(info.cas, cas);
    assert_int_equal(store_ex(CACHE_APPEND, "k", "x", 0, &wrong, &info), CACHE_EXISTS);
    assert_int_equal(info.cas, cas);
    assert_int_equal(store_ex(CACHE_REPLACE, "none", "x", 0, NULL, &info),
                     CACHE_NOT_STORED);
    assert_int_equal(info.cas, 0);
    /* STORED: the new CAS and the stored length (all of it on append) */
    assert_int_equal(store_ex(CACHE_APPEND, "k", "defg", 0, NULL, &info),
                     CACHE_STORED);
    assert_true(info.cas > cas);
    assert_int_equal(info.nbytes, 7);
    assert_false(info.stale);
    assert_false(info.created);
    assert_value("k", "abcdefg");
}

static void
test_store_invalidate(void **state)
{
    (void)state;
    rel_time_t now = cache_now();
    uint64_t old_cas = set_kv("k", "v1", now + 100);
    uint64_t cur_cas = set_kv("k", "v2", now + 200);
    /* someone won the recache of v2 */
    const struct cache_mget_opts r = { .recache = true,
                                       .recache_time = now + 1000 };
    assert_true(mg("k", &r, true).won);

    struct cache_store_info info;
    /* I with an older CAS: stored anyway, marked stale, keeping the
     * live item's expiry and token state */
    const struct cache_store_opts stale = { .cas_in = old_cas, .invalidate = true };
    assert_int_equal(store_ex(CACHE_CAS, "k", "v1again", now + 5, &stale, &info),
                     CACHE_STORED);
    assert_true(info.stale);
    assert_true(info.cas > cur_cas);
    assert_value("k", "v1again");
    struct cache_walk_entry e = peek("k");
    assert_true(e.stale);
    assert_true(e.token_sent);
    assert_int_equal(e.exptime, cache_rel_to_unix(now + 200));
    struct cache_mget_info mi = mg("k", NULL, true);
    assert_true(mi.stale);
    assert_true(mi.token_sent);
    assert_false(mi.won);

    /* a newer CAS than the item's is still a mismatch */
    const struct cache_store_opts newer = { .cas_in = info.cas + 10,
                                            .invalidate = true };
    assert_int_equal(store_ex(CACHE_CAS, "k", "x", 0, &newer, &info), CACHE_EXISTS);
    /* the matching CAS stores a fresh item */
    const struct cache_store_opts match = { .cas_in = peek("k").cas,
                                            .invalidate = true };
    assert_int_equal(store_ex(CACHE_CAS, "k", "fresh", 0, &match, &info),
                     CACHE_STORED);
    assert_false(info.stale);
    e = peek("k");
    assert_false(e.stale);
    assert_false(e.token_sent);
    /* without I an older CAS is just a mismatch */
    const struct cache_store_opts plain = { .cas_in = old_cas };
    assert_int_equal(store_ex(CACHE_CAS, "k", "x", 0, &plain, &info), CACHE_EXISTS);
}

static void
test_store_explicit_cas(void **state)
{
    (void)state;
    struct cache_store_info info;
    const struct cache_store_opts e = { .set_cas = true, .new_cas = 12345 };
    assert_int_equal(store_ex(CACHE_SET, "k", "v", 0, &e, &info), CACHE_STORED);
    assert_int_equal(info.cas, 12345);
    assert_int_equal(peek("k").cas, 12345);
    /* the counter is not moved by it */
    uint64_t next = set_kv("other", "v", 0);
    assert_true(next < 12345);
    /* a cas with it matches; append keeps the explicit one given */
    const struct cache_store_opts c = { .cas_in = 12345, .set_cas = true,
                                        .new_cas = 777 };
    assert_int_equal(store_ex(CACHE_APPEND, "k", "w", 0, &c, &info), CACHE_STORED);
    assert_int_equal(info.cas, 777);
    assert_value("k", "vw");
}

static void
test_explicit_cas_and_flush(void **state)
{
    (void)state;
    rel_time_t now = cache_now();
    const struct cache_store_opts e = { .set_cas = true, .new_cas = 1 };
    struct cache_store_info info;
    assert_int_equal(store_ex(CACHE_SET, "before", "v", 0, &e, &info), CACHE_STORED);
    set_kv("counted", "v", 0);      /* CAS 1 from the counter: the mark is 2 */
    cache_clock_set_for_test(now + 1);
    cache_flush(cache_now());
    assert_null(cache_get("before", 6, NULL));
    /* a low explicit CAS stored after the flush is not taken for an item
     * stored before it */
    cache_clock_set_for_test(now + 2);
    assert_int_equal(store_ex(CACHE_SET, "after", "v", 0, &e, &info), CACHE_STORED);
    assert_value("after", "v");
    assert_null(cache_get("counted", 7, NULL));
}

static void
test_store_explicit_cas_off(void **state)
{
    (void)state;
    struct cache_store_info info;
    const struct cache_store_opts e = { .set_cas = true, .new_cas = 12345 };
    assert_int_equal(store_ex(CACHE_SET, "k", "v", 0, &e, &info), CACHE_STORED);
    assert_int_equal(info.cas, 0);   /* memcached -C: no CAS at all */
}

static void
test_append_vivify(void **state)
{
    (void)state;
    struct cache_store_info info;
    const struct cache_store_opts n = { .vivify = true,
                                        .vivify_exptime = cache_realtime(40),
                                        .key_binary = true };
    /* a miss creates the key from the appended data */
    assert_int_equal(store_ex(CACHE_APPEND, "a", "data", 0, &n, &info), CACHE_STORED);
    assert_true(info.created);
    assert_int_equal(info.nbytes, 4);
    assert_value("a", "data");
    struct cache_walk_entry e = peek("a");
    assert_int_equal(e.exptime, cache_rel_to_unix(cache_realtime(40)));
    assert_int_equal(e.flags, 3);   /* the ms F flags */
    assert_true(e.key_binary);
    /* a hit appends as usual */
    assert_int_equal(store_ex(CACHE_PREPEND, "a", "more", 0, &n, &info), CACHE_STORED);
    assert_false(info.created);
    assert_value("a", "moredata");
    /* without N a miss stores nothing */
    assert_int_equal(store_ex(CACHE_APPEND, "b", "x", 0, NULL, &info),
                     CACHE_NOT_STORED);
    assert_false(cache_peek("b", 1, &e, NULL));
}

/* ---------------------------------------------------------------- md */

static void
test_delete_invalidate(void **state)
{
    (void)state;
    rel_time_t now = cache_now();
    struct cache_store_info si;
    assert_int_equal(store_ex(CACHE_SET, "d", "value", now + 100, NULL, &si),
                     CACHE_STORED);
    /* read once, and someone won the recache */
    const struct cache_mget_opts r = { .recache = true, .recache_time = now + 500 };
    assert_true(mg("d", &r, true).won);

    uint64_t cas = 0;
    const struct cache_delete_opts wrong = { .cas_in = si.cas + 1, .invalidate = true };
    assert_int_equal(cache_delete_ex("d", 1, &wrong, &cas), CACHE_EXISTS);
    cache_clock_set_for_test(now + 2);
    const struct cache_delete_opts inval = {
        .cas_in = si.cas, .invalidate = true,
        .touch = true, .exptime = cache_realtime(30),
    };
    assert_int_equal(cache_delete_ex("d", 1, &inval, &cas), CACHE_DELETED);
    assert_true(cas > si.cas);
    /* the same value and flags, stale, token cleared, new expiry */
    struct cache_walk_entry e = peek("d");
    assert_true(e.stale);
    assert_false(e.token_sent);
    assert_true(e.fetched);
    assert_int_equal(e.last_access, cache_rel_to_unix(now));   /* kept */
    assert_int_equal(e.flags, 3);
    assert_int_equal(e.cas, cas);
    assert_int_equal(e.exptime, cache_rel_to_unix(cache_realtime(30)));
    assert_value("d", "value");

    /* without T the expiry stays; E gives the CAS */
    const struct cache_delete_opts inval_e = { .invalidate = true, .set_cas = true,
                                               .new_cas = 99999 };
    assert_int_equal(cache_delete_ex("d", 1, &inval_e, &cas), CACHE_DELETED);
    assert_int_equal(cas, 99999);
    assert_int_equal(peek("d").exptime, cache_rel_to_unix(cache_realtime(30)));
    assert_int_equal(cache_delete_ex("none", 4, &inval, NULL), CACHE_NOT_FOUND);

    /* a plain md removes it */
    assert_int_equal(cache_delete_ex("d", 1, NULL, NULL), CACHE_DELETED);
    assert_false(cache_peek("d", 1, &e, NULL));
}

/* ---------------------------------------------------------------- ma */

static void
test_delta_meta(void **state)
{
    (void)state;
    struct cache_delta_info info;
    const struct cache_delta_opts n = {
        .vivify = true, .vivify_exptime = cache_realtime(60), .initial = 41,
    };
    /* N on a miss: created with J, no delta applied */
    assert_int_equal(cache_delta_ex("c", 1, true, 5, &n, &info), CACHE_STORED);
    assert_true(info.created);
    assert_int_equal(info.value, 41);
    assert_int_equal(info.exptime, cache_realtime(60));
    assert_value("c", "41");
    /* then the delta */
    assert_int_equal(cache_delta_ex("c", 1, true, 5, &n, &info), CACHE_STORED);
    assert_false(info.created);
    assert_int_equal(info.value, 46);
    /* without N a miss is a miss */
    assert_int_equal(cache_delta_ex("x", 1, true, 1, NULL, &info), CACHE_NOT_FOUND);

    /* T on success, E, and C */
    const struct cache_delta_opts t = { .touch = true, .exptime = cache_realtime(9),
                                        .set_cas = true, .new_cas = 4242 };
    assert_int_equal(cache_delta_ex("c", 1, false, 6, &t, &info), CACHE_STORED);
    assert_int_equal(info.value, 40);
    assert_int_equal(info.cas, 4242);
    assert_int_equal(info.exptime, cache_realtime(9));
    assert_int_equal(peek("c").exptime, cache_rel_to_unix(cache_realtime(9)));
    const struct cache_delta_opts c = { .cas_in = 4241 };
    assert_int_equal(cache_delta_ex("c", 1, true, 1, &c, &info), CACHE_EXISTS);
    /* N with J and T after N: T's expiry for the created item */
    const struct cache_delta_opts nt = {
        .vivify = true, .vivify_exptime = cache_realtime(60), .initial = 7,
        .touch = true, .exptime = cache_realtime(70), .touch_after_vivify = true,
    };
    assert_int_equal(cache_delta_ex("c2", 2, true, 1, &nt, &info), CACHE_STORED);
    assert_int_equal(info.exptime, cache_realtime(70));
}

static void
test_delta_keeps_meta_in_place(void **state)
{
    (void)state;
    const struct cache_delete_opts inval = { .invalidate = true };
    struct cache_delta_info info;
    /* "10" + 1 fits: memcached rewrites it in place, the stale mark stays */
    set_kv("n", "10", 0);
    assert_int_equal(cache_delete_ex("n", 1, &inval, NULL), CACHE_DELETED);
    assert_int_equal(cache_delta_ex("n", 1, true, 1, NULL, &info), CACHE_STORED);
    assert_true(peek("n").stale);
    /* "99" + 1 does not: a new item, fresh */
    set_kv("m", "99", 0);
    assert_int_equal(cache_delete_ex("m", 1, &inval, NULL), CACHE_DELETED);
    assert_int_equal(cache_delta_ex("m", 1, true, 1, NULL, &info), CACHE_STORED);
    assert_value("m", "100");
    assert_false(peek("m").stale);
}

/* ---------------------------------------------------------------- me */

static void
test_peek(void **state)
{
    (void)state;
    rel_time_t now = cache_now();
    struct cache_store_info si;
    assert_int_equal(store_ex(CACHE_SET, "p", "12345", now + 50, NULL, &si),
                     CACHE_STORED);
    struct cache_walk_entry e = peek("p");
    assert_int_equal(e.nkey, 1);
    assert_memory_equal(e.key, "p", 1);
    assert_int_equal(e.nbytes, 5);
    assert_int_equal(e.flags, 3);
    assert_int_equal(e.cas, si.cas);
    assert_false(e.stub);
    assert_false(e.key_binary);
    assert_int_equal(e.exptime, cache_rel_to_unix(now + 50));
    struct item *it = cache_get("p", 1, NULL);
    assert_int_equal(e.total_size, cache_item_total_size(it));
    cache_item_release(it);
    assert_true(e.size_class >= 1 && e.size_class < CACHE_SIZE_CLASSES);
    /* peeking is not an access */
    cache_clock_set_for_test(now + 5);
    e = peek("p");
    assert_true(e.fetched);                  /* from the get above */
    assert_int_equal(e.last_access, cache_rel_to_unix(now));
    /* dead or missing */
    enum cache_miss why = CACHE_MISS_ABSENT;
    cache_clock_set_for_test(now + 50);
    assert_false(cache_peek("p", 1, &e, &why));
    assert_int_equal(why, CACHE_MISS_EXPIRED);
    assert_false(cache_peek("q", 1, &e, &why));
    assert_int_equal(why, CACHE_MISS_ABSENT);
}

/* ---------------------------------------------------------------- warmup */

static void
on_change_commit_now(const struct cache_change *ch)
{
    if (ch->kind == CACHE_CHANGE_PUT) {
        cache_item_clean(ch->item);
        cache_item_release(ch->item);
    }
}

static int
setup_warming(void **state)
{
    (void)state;
    struct cache_options o = {
        .memory_limit = 64 * MB, .item_size_max = MB, .cas_enabled = true,
        .persistent = true, .on_change = on_change_commit_now,
    };
    if (cache_setup(&o) != 0)
        return -1;
    cache_set_complete(false);
    return 0;
}

static void
test_warming_fetch_first(void **state)
{
    (void)state;
    /* the key may be on disk: no item is created, no token handed out */
    const struct cache_mget_opts n = { .vivify = true, .vivify_exptime = 0 };
    struct cache_mget_info info = mg("k", &n, false);
    assert_int_equal(info.why, CACHE_MISS_ON_DISK);
    assert_false(info.created);
    assert_false(info.won);
    struct cache_store_info si;
    const struct cache_store_opts an = { .vivify = true };
    assert_int_equal(store_ex(CACHE_APPEND, "k", "x", 0, &an, &si), CACHE_NEED_FETCH);
    const struct cache_delta_opts dn = { .vivify = true, .initial = 1 };
    struct cache_delta_info di;
    assert_int_equal(cache_delta_ex("k", 1, true, 1, &dn, &di), CACHE_NEED_FETCH);
    const struct cache_delete_opts inval = { .invalidate = true };
    assert_int_equal(cache_delete_ex("k", 1, &inval, NULL), CACHE_NEED_FETCH);
    enum cache_miss why;
    struct cache_walk_entry e;
    assert_false(cache_peek("k", 1, &e, &why));
    assert_int_equal(why, CACHE_MISS_ON_DISK);

    /* the fetch says absent: now N creates */
    cache_install_absent("k", 1);
    info = mg("k", &n, true);
    assert_true(info.created);
    assert_true(info.won);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mget_vivify, setup_cas, teardown),
        cmocka_unit_test_setup_teardown(test_mget_recache, setup_cas, teardown),
        cmocka_unit_test_setup_teardown(test_mget_stale, setup_cas, teardown),
        cmocka_unit_test_setup_teardown(test_mget_hit_and_access, setup_cas, teardown),
        cmocka_unit_test_setup_teardown(test_mget_one_winner, setup_cas, teardown),
        cmocka_unit_test_setup_teardown(test_store_info, setup_cas, teardown),
        cmocka_unit_test_setup_teardown(test_store_invalidate, setup_cas, teardown),
        cmocka_unit_test_setup_teardown(test_store_explicit_cas, setup_cas, teardown),
        cmocka_unit_test_setup_teardown(test_explicit_cas_and_flush, setup_cas, teardown),
        cmocka_unit_test_setup_teardown(test_store_explicit_cas_off, setup_nocas, teardown),
        cmocka_unit_test_setup_teardown(test_append_vivify, setup_cas, teardown),
        cmocka_unit_test_setup_teardown(test_delete_invalidate, setup_cas, teardown),
        cmocka_unit_test_setup_teardown(test_delta_meta, setup_cas, teardown),
        cmocka_unit_test_setup_teardown(test_delta_keeps_meta_in_place, setup_cas, teardown),
        cmocka_unit_test_setup_teardown(test_peek, setup_cas, teardown),
        cmocka_unit_test_setup_teardown(test_warming_fetch_first, setup_warming, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
