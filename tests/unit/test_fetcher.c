/*
 * test_fetcher.c: unit tests of server/fetcher.c, background fetches.
 *
 * The fetcher runs for real (two threads of util/hotpool.c) against the
 * real cache (persistent, not complete: a key missing from memory may be
 * on disk) and a stub engine defined here whose get() serves a fixed
 * table, fails for one key and finds nothing for the rest. Results come
 * back through the done callback into a list guarded by a mutex.
 *
 * Checked: a result carries the requester's token (worker, connection id)
 * and key untouched; a row found is installed in the cache and handed back
 * referenced; a row absent is remembered as absent (the cache then answers
 * a miss without the disk); a disk error sets `failed` and counts an
 * engine error; a newer value in memory is never overwritten (the result
 * then has no item); many fetches each come back exactly once.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engines/kvstore.h"
#include "server/cache.h"
#include "server/cache_priv.h"   /* mem_used_now() */
#include "server/fetcher.h"
#include "server/persist_priv.h"
#include "util/status.h"

#define MB ((size_t)1024 * 1024)
#define MAX_RESULTS 256
#define WAIT_GUARD_S 60   /* a hang becomes a failure; not a timing */

/* ------------------------------------------------------- the stub engine */

static const struct { const char *key, *value; uint64_t cas; int64_t exptime; } disk[] = {
    { "k1", "from disk", 41, 0 },
    { "k2", "old on disk", 42, 0 },
    { "empty", "", 43, 0 },
    { "expired", "too late", 44, -1 },   /* its time ran out on disk */
    { "s1", "streamed one", 45, 0 },
    { "s2", "streamed two", 46, 0 },
    { "s3", "gone already", 47, -1 },
};

static int stub_open(struct kvstore **kv, const struct kvstore_options *o)
{ (void)o; *kv = (struct kvstore *)disk; return MCKV_OK; }
static void stub_close(struct kvstore *kv) { (void)kv; }

static int
stub_get(struct kvstore *kv, const char *key, uint8_t nkey,
         kvstore_alloc_fn alloc, void *ctx, struct kvstore_record *rec)
{
    (void)kv;
    if (nkey == 4 && memcmp(key, "fail", 4) == 0)
        return MCKV_EIO;
    for (size_t i = 0; i < sizeof(disk) / sizeof(disk[0]); i++) {
        if (strlen(disk[i].key) != nkey || memcmp(disk[i].key, key, nkey) != 0)
            continue;
        *rec = (struct kvstore_record){
            .key = key, .nkey = nkey, .flags = 7, .exptime = disk[i].exptime,
            .cas = disk[i].cas, .vlen = (uint32_t)strlen(disk[i].value),
        };
        char *dst = alloc(ctx, rec);
        if (dst == NULL)
            return MCKV_ENOMEM;
        memcpy(dst, disk[i].value, rec->vlen);
        rec->value = dst;
        return MCKV_OK;
    }
    return MCKV_ENOTFOUND;
}

static const char *stub_last_error(struct kvstore *kv)
{ (void)kv; return "stub: failing on purpose"; }

static const struct kvstore_ops stub_ops = {
    .api_version = KVSTORE_API_VERSION, .name = "stub", .persistent = true,
    .open = stub_open, .close = stub_close, .get = stub_get,
    .last_error = stub_last_error,
};

static const struct persist_engine engine = {
    .ops = &stub_ops, .path = "(stub)",
};

/* ------------------------------------------------------------ helpers */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct fetch_result *r[MAX_RESULTS];
    unsigned n;
} R = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/* fetcher thread */
static void
on_done(void *ctx, struct fetch_result *r)
{
    /* not cmocka's asserts: they must not jump out of another thread */
    if (ctx != &R)
        abort();
    pthread_mutex_lock(&R.lock);
    if (R.n >= MAX_RESULTS)
        abort();
    R.r[R.n++] = r;
    pthread_cond_broadcast(&R.cond);
    pthread_mutex_unlock(&R.lock);
}

static void
wait_results(unsigned n)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WAIT_GUARD_S;
    pthread_mutex_lock(&R.lock);
    while (R.n < n)
        assert_int_equal(pthread_cond_timedwait(&R.cond, &R.lock, &deadline), 0);
    pthread_mutex_unlock(&R.lock);
}

static void
free_results(void)
{
    pthread_mutex_lock(&R.lock);
    for (unsigned i = 0; i < R.n; i++)
        fetcher_result_free(R.r[i]);
    R.n = 0;
    pthread_mutex_unlock(&R.lock);
}

/* The cache's persistence hook: nobody writes here, so a change is clean
 * at once. */
static void
on_change(const struct cache_change *ch)
{
    if (ch->kind == CACHE_CHANGE_PUT) {
        cache_item_clean(ch->item);
        cache_item_release(ch->item);
    }
}

static int
setup(void **state)
{
    (void)state;
    struct cache_options co = {
        .memory_limit = 64 * MB, .item_size_max = MB, .cas_enabled = true,
        .persistent = true, .on_change = on_change,
    };
    if (cache_setup(&co) != 0)
        return -1;
    cache_set_complete(false);
    struct fetcher_options fo = {
        .engine = &engine, .nfetchers = 2, .backlog = 64,
        .done = on_done, .ctx = &R,
    };
    return fetcher_setup(&fo);
}

static int
teardown(void **state)
{
    (void)state;
    fetcher_stop();
    free_results();
    cache_teardown();
    return 0;
}

static struct fetch_result *
fetch_one(unsigned worker, uint64_t conn_id, const char *key)
{
    assert_true(fetcher_submit(worker, conn_id, key, (uint8_t)strlen(key),
                               false));
    wait_results(1);
    pthread_mutex_lock(&R.lock);
    struct fetch_result *r = R.r[0];
    R.n = 0;
    pthread_mutex_unlock(&R.lock);
    return r;
}

static struct fetch_result *
fetch_stream(const char *key)
{
    assert_true(fetcher_submit(0, 5, key, (uint8_t)strlen(key), true));
    wait_results(1);
    pthread_mutex_lock(&R.lock);
    struct fetch_result *r = R.r[0];
    R.n = 0;
    pthread_mutex_unlock(&R.lock);
    return r;
}

/* Stores values until memory is full to the byte: an allocation that may
 * not evict fails after it. */
static void
fill_cache(void)
{
    char key[32];
    bool too_large;
    for (unsigned i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "fill:%u", i);
        struct item *it = cache_item_alloc(key, (uint8_t)strlen(key), 0, 0,
                                           64 * 1024, &too_large);
        assert_non_null(it);
        memset(item_value(it), 'f', 64 * 1024);
        uint64_t cas;
        assert_int_equal(cache_store(it, CACHE_SET, 0, &cas), CACHE_STORED);
        cache_item_release(it);
    }
    for (unsigned i = 0; i < 100000; i++) {   /* the slack the last left */
        snprintf(key, sizeof(key), "slack:%u", i);
        struct item *it = cache_item_alloc_noevict(key, (uint8_t)strlen(key),
                                                   0, 0, 16);
        if (it == NULL)
            return;
        uint64_t cas;
        assert_int_equal(cache_store(it, CACHE_SET, 0, &cas), CACHE_STORED);
        cache_item_release(it);
    }
    fail_msg("memory never filled");
}

/* A fetch for streaming is made resident while memory has room without
 * evicting; once memory is full it is handed back without being linked,
 * evicting nothing, its bytes counted until the last reference goes; a
 * row expired on disk is a miss either way. */
static void
test_stream_outside_when_full(void **state)
{
    (void)state;
    enum cache_miss why;
    struct fetch_result *r = fetch_stream("s1");
    assert_non_null(r->item);
    struct item *it = cache_get("s1", 2, &why);
    assert_ptr_equal(it, r->item);   /* room: installed as any fetch */
    cache_item_release(it);
    fetcher_result_free(r);

    fill_cache();
    struct cache_stats before, after;
    cache_stats(&before);
    size_t used = mem_used_now();
    uint64_t ejected = cache_ejected_items();
    struct fetcher_counters fb, fa;
    fetcher_counters(&fb);
    r = fetch_stream("s2");
    assert_false(r->failed);
    assert_non_null(r->item);
    assert_int_equal(r->item->cas, 46);
    assert_memory_equal(item_value(r->item), "streamed two", 12);
    assert_int_equal(r->item->iflags & ITEM_LINKED, 0);
    assert_null(cache_get("s2", 2, &why));
    assert_int_equal(why, CACHE_MISS_ON_DISK);   /* not made resident */
    cache_stats(&after);
    assert_int_equal(after.evictions, before.evictions);
    assert_int_equal(cache_ejected_items(), ejected);
    assert_int_equal(after.curr_items, before.curr_items);
    /* counted without the limit check ... */
    assert_int_equal(mem_used_now(), used + cache_item_total_size(r->item));
    fetcher_result_free(r);
    assert_int_equal(mem_used_now(), used);          /* ... until released */
    fetcher_counters(&fa);
    assert_int_equal(fa.streamed, fb.streamed + 1);

    r = fetch_stream("s3");
    assert_null(r->item);
    assert_false(r->failed);
    fetcher_result_free(r);
    assert_null(cache_get("s3", 2, &why));
    assert_int_not_equal(why, CACHE_MISS_ON_DISK);
}

/* ------------------------------------------------------------ the tests */

static void
test_found_is_installed_and_returned(void **state)
{
    (void)state;
    struct fetcher_counters before, after;
    fetcher_counters(&before);
    struct fetch_result *r = fetch_one(3, 77, "k1");
    assert_int_equal(r->worker, 3);
    assert_int_equal(r->conn_id, 77);
    assert_int_equal(r->nkey, 2);
    assert_memory_equal(r->key, "k1", 2);
    assert_false(r->failed);
    assert_non_null(r->item);
    assert_int_equal(r->item->cas, 41);
    assert_int_equal(r->item->nbytes, 9);
    assert_memory_equal(item_value(r->item), "from disk", 9);
    enum cache_miss why;
    struct item *it = cache_get("k1", 2, &why);
    assert_ptr_equal(it, r->item);   /* the same item, in the cache */
    cache_item_release(it);
    fetcher_result_free(r);          /* drops the result's reference */
    fetcher_counters(&after);
    assert_int_equal(after.fetches, before.fetches + 1);
    assert_int_equal(after.misses, before.misses);
}

static void
test_absent_is_remembered(void **state)
{
    (void)state;
    enum cache_miss why;
    assert_null(cache_get("nope", 4, &why));
    assert_int_equal(why, CACHE_MISS_ON_DISK);
    struct fetcher_counters before, after;
    fetcher_counters(&before);
    struct fetch_result *r = fetch_one(0, 1, "nope");
    assert_null(r->item);
    assert_false(r->failed);
    fetcher_result_free(r);
    fetcher_counters(&after);
    assert_int_equal(after.misses, before.misses + 1);
    assert_null(cache_get("nope", 4, &why));
    assert_int_not_equal(why, CACHE_MISS_ON_DISK);   /* known absent now */
}

/* A row whose time ran out is a miss for the next request, not one more
 * fetch (which would end in temporary failure after a few rounds). */
static void
test_expired_row_is_absent(void **state)
{
    (void)state;
    enum cache_miss why;
    assert_null(cache_get("expired", 7, &why));
    assert_int_equal(why, CACHE_MISS_ON_DISK);
    struct fetch_result *r = fetch_one(0, 2, "expired");
    assert_null(r->item);
    assert_false(r->failed);
    fetcher_result_free(r);
    assert_null(cache_get("expired", 7, &why));
    assert_int_not_equal(why, CACHE_MISS_ON_DISK);
}

static void
test_disk_error_sets_failed(void **state)
{
    (void)state;
    struct fetcher_counters before, after;
    fetcher_counters(&before);
    struct fetch_result *r = fetch_one(1, 9, "fail");
    assert_true(r->failed);
    assert_null(r->item);
    assert_int_equal(r->conn_id, 9);
    fetcher_result_free(r);
    fetcher_counters(&after);
    assert_int_equal(after.engine_errors, before.engine_errors + 1);
    enum cache_miss why;
    assert_null(cache_get("fail", 4, &why));
    assert_int_equal(why, CACHE_MISS_ON_DISK);   /* still unknown */
}

static void
test_newer_in_memory_wins(void **state)
{
    (void)state;
    bool too_large;
    struct item *it = cache_item_alloc("k2", 2, 0, 0, 3, &too_large);
    assert_non_null(it);
    memcpy(item_value(it), "new", 3);
    uint64_t cas;
    assert_int_equal(cache_store(it, CACHE_SET, 0, &cas), CACHE_STORED);
    cache_item_release(it);
    struct fetch_result *r = fetch_one(0, 2, "k2");
    assert_null(r->item);
    assert_false(r->failed);
    fetcher_result_free(r);
    enum cache_miss why;
    it = cache_get("k2", 2, &why);
    assert_non_null(it);
    assert_memory_equal(item_value(it), "new", 3);
    cache_item_release(it);
}

static void
test_many_each_once(void **state)
{
    (void)state;
    enum { N = 48 };   /* within backlog + threads: none refused */
    const char *keys[] = { "k1", "empty", "nope", "other" };
    for (unsigned i = 0; i < N; i++)
        assert_true(fetcher_submit(i % 4, 1000 + i, keys[i % 4],
                                   (uint8_t)strlen(keys[i % 4]), false));
    wait_results(N);
    bool seen[N] = { false };
    pthread_mutex_lock(&R.lock);
    assert_int_equal(R.n, N);
    for (unsigned i = 0; i < R.n; i++) {
        struct fetch_result *r = R.r[i];
        assert_true(r->conn_id >= 1000 && r->conn_id < 1000 + N);
        unsigned idx = (unsigned)(r->conn_id - 1000);
        assert_false(seen[idx]);
        seen[idx] = true;
        assert_int_equal(r->worker, idx % 4);
        assert_int_equal(r->nkey, strlen(keys[idx % 4]));
        assert_memory_equal(r->key, keys[idx % 4], r->nkey);
        assert_false(r->failed);
    }
    pthread_mutex_unlock(&R.lock);
    free_results();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_found_is_installed_and_returned),
        cmocka_unit_test(test_absent_is_remembered),
        cmocka_unit_test(test_expired_row_is_absent),
        cmocka_unit_test(test_disk_error_sets_failed),
        cmocka_unit_test(test_newer_in_memory_wins),
        cmocka_unit_test(test_many_each_once),
        cmocka_unit_test(test_stream_outside_when_full),   /* fills memory */
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
