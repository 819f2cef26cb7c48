/*
 * test_warmup.c: unit tests of server/warmup.c, the restart scan, against
 * a temporary SQLite database (engines/sqlite.c) and the real cache in
 * persistent mode, with no flusher: the test writes the rows through its
 * own write handle, marks the cache incomplete as persist.c does, and
 * plays the workers (sets and deletes before and while the scan runs).
 *
 * Checked: rows are installed only where the key is absent (a value in
 * memory wins), with the disk's flags, expiry and CAS; expired rows and
 * keys deleted meanwhile (tombstones) are not revived; the cache becomes
 * complete only once every range was read (one thread or several); a
 * memory limit reached first stops every thread, leaves the cache
 * incomplete and says so (truncated).
 *
 * The scan runs on warmup threads; the test waits for its outcome by
 * polling warmup_counters() (1 ms naps, bounded by a guard that turns a
 * hang into a failure).
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engines/kvstore.h"
#include "server/cache.h"
#include "server/persist_priv.h"
#include "server/warmup.h"
#include "util/status.h"

#define MB ((size_t)1024 * 1024)
#define WAIT_GUARD_MS 60000

static char dir[64];
static char path[128];
static struct persist_engine engine;
static struct kvstore *writer;

/* The persistence hook: no flusher here, a queued put is done at once. */
static void
on_change(const struct cache_change *ch)
{
    if (ch->kind == CACHE_CHANGE_PUT) {
        cache_item_clean(ch->item);
        cache_item_release(ch->item);
    }
}

static int
start_cache(size_t memory_limit)
{
    struct cache_options co = {
        .memory_limit = memory_limit, .item_size_max = MB,
        .cas_enabled = true, .persistent = true, .on_change = on_change,
    };
    return cache_setup(&co);
}

static int
group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/mckv-test-warmup-XXXXXX");
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static int
group_teardown(void **state)
{
    (void)state;
    return rmdir(dir);
}

static int
setup_limit(size_t memory_limit)
{
    static unsigned n;
    snprintf(path, sizeof(path), "%s/db%u", dir, n++);
    engine = (struct persist_engine){
        .ops = &kvstore_sqlite_ops, .opts = { .path = path }, .path = path,
    };
    if (engine.ops->open(&writer, &engine.opts) != MCKV_OK)
        return -1;
    if (start_cache(memory_limit) != 0)
        return -1;
    cache_set_complete(false);   /* as persist.c does before the scan */
    return 0;
}

static int
setup(void **state)
{
    (void)state;
    return setup_limit(64 * MB);
}

static int
setup_small(void **state)
{
    (void)state;
    return setup_limit(2 * MB);
}

static int
teardown(void **state)
{
    (void)state;
    warmup_stop();
    engine.ops->close(writer);
    writer = NULL;
    cache_teardown();
    char f[160];
    static const char *const suffix[] = { "", "-wal", "-shm" };
    for (size_t i = 0; i < 3; i++) {
        snprintf(f, sizeof(f), "%s%s", path, suffix[i]);
        unlink(f);
    }
    return 0;
}

/* Rows on disk, in one transaction. */
struct row {
    const char *key;
    const char *value;
    uint32_t flags;
    int64_t exptime;
    uint64_t cas;
};

static void
put_rows(const struct row *rows, size_t n)
{
    const struct kvstore_ops *ops = engine.ops;
    assert_int_equal(ops->begin(writer), MCKV_OK);
    for (size_t i = 0; i < n; i++) {
        struct kvstore_record rec = {
            .key = rows[i].key, .nkey = (uint8_t)strlen(rows[i].key),
            .flags = rows[i].flags, .exptime = rows[i].exptime,
            .cas = rows[i].cas, .value = rows[i].value,
            .vlen = (uint32_t)strlen(rows[i].value),
        };
        assert_int_equal(ops->put(writer, &rec), MCKV_OK);
    }
    assert_int_equal(ops->commit(writer), MCKV_OK);
}

/* n rows "key<i>" with values of vlen bytes. */
static void
put_many(unsigned n, size_t vlen)
{
    const struct kvstore_ops *ops = engine.ops;
    char key[32];
    char *value = malloc(vlen);
    assert_non_null(value);
    memset(value, 'd', vlen);
    assert_int_equal(ops->begin(writer), MCKV_OK);
    for (unsigned i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "key%u", i);
        struct kvstore_record rec = {
            .key = key, .nkey = (uint8_t)strlen(key), .cas = 1000 + i,
            .value = value, .vlen = (uint32_t)vlen,
        };
        assert_int_equal(ops->put(writer, &rec), MCKV_OK);
    }
    assert_int_equal(ops->commit(writer), MCKV_OK);
    free(value);
}

static void
set(const char *key, const char *value)
{
    bool too_large = false;
    struct item *it = cache_item_alloc(key, (uint8_t)strlen(key), 0, 0,
                                       (uint32_t)strlen(value), &too_large);
    assert_non_null(it);
    memcpy(item_value(it), value, strlen(value));
    uint64_t cas;
    assert_int_equal(cache_store(it, CACHE_SET, 0, &cas), CACHE_STORED);
    cache_item_release(it);
}

/* The value of key in memory ("" when missing); *why the reason. */
static const char *
get(const char *key, enum cache_miss *why, struct item **held)
{
    static char buf[256];
    enum cache_miss w = CACHE_MISS_ABSENT;
    struct item *it = cache_get(key, (uint8_t)strlen(key), &w);
    if (why != NULL)
        *why = w;
    if (it == NULL)
        return "";
    snprintf(buf, sizeof(buf), "%.*s", (int)it->nbytes, item_value(it));
    if (held != NULL)
        *held = it;
    else
        cache_item_release(it);
    return buf;
}

static void
start(unsigned nthreads)
{
    char err[256] = "";
    assert_int_equal(warmup_start(&engine, writer, nthreads, err, sizeof(err)), 0);
}

static void
wait_done(struct warmup_counters *c)
{
    for (int ms = 0; ms < WAIT_GUARD_MS; ms++) {
        warmup_counters(c);
        if (c->state == WARMUP_DONE)
            return;
        nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
    }
    fail_msg("the warmup did not finish");
}

/* ---------------------------------------------------------------- tests */

static void
test_installs_only_where_absent(void **state)
{
    (void)state;
    static const struct row rows[] = {
        { "k1", "disk1", 1, 0, 501 },
        { "k2", "disk2", 2, 0, 502 },
        { "k3", "disk3", 3, 0, 503 },
    };
    put_rows(rows, 3);
    cache_set_cas_floor(600);   /* as persist.c does from cas_high */
    set("k1", "memory");        /* a set before the scan reached the key */
    enum cache_miss why;
    assert_string_equal(get("k2", &why, NULL), "");
    assert_int_equal(why, CACHE_MISS_ON_DISK);   /* incomplete: maybe on disk */

    start(1);
    struct warmup_counters c;
    wait_done(&c);
    assert_int_equal(c.loaded, 2);
    assert_int_equal(c.skipped, 1);
    assert_false(c.truncated);
    assert_int_equal(c.engine_errors, 0);
    assert_true(cache_is_complete());

    assert_string_equal(get("k1", NULL, NULL), "memory");
    struct item *it = NULL;
    assert_string_equal(get("k2", NULL, &it), "disk2");
    assert_int_equal(it->flags, 2);
    assert_int_equal(it->cas, 502);   /* the disk's CAS, kept */
    cache_item_release(it);
    assert_string_equal(get("k3", NULL, NULL), "disk3");
    /* complete: a miss is a miss */
    assert_string_equal(get("nope", &why, NULL), "");
    assert_int_equal(why, CACHE_MISS_ABSENT);
}

static void
test_tombstones_and_expired_rows(void **state)
{
    (void)state;
    time_t now = time(NULL);
    static struct row rows[] = {
        { "deleted", "old", 0, 0, 10 },
        { "absent", "old", 0, 0, 11 },
        { "expired", "old", 0, 0, 12 },
        { "future", "new", 0, 0, 13 },
        { "kept", "disk", 0, 0, 14 },
    };
    rows[2].exptime = now - 10;
    rows[3].exptime = now + 3600;
    put_rows(rows, 5);
    /* a client's set then delete while the warmup runs: a tombstone */
    set("deleted", "mine");
    assert_int_equal(cache_delete("deleted", 7, 0), CACHE_DELETED);
    /* a fetch that found nothing: the key reads absent from now on */
    cache_install_absent("absent", 6);

    start(1);
    struct warmup_counters c;
    wait_done(&c);
    assert_int_equal(c.loaded, 2);
    assert_int_equal(c.skipped, 3);
    assert_true(cache_is_complete());
    enum cache_miss why;
    assert_string_equal(get("deleted", &why, NULL), "");
    assert_int_equal(why, CACHE_MISS_ABSENT);
    assert_string_equal(get("absent", NULL, NULL), "");
    assert_string_equal(get("expired", NULL, NULL), "");
    struct item *it = NULL;
    assert_string_equal(get("future", NULL, &it), "new");
    assert_int_equal(cache_rel_to_unix(atomic_load(&it->exptime)), now + 3600);
    cache_item_release(it);
    assert_string_equal(get("kept", NULL, NULL), "disk");
    /* a tombstone gives way to the next write */
    set("deleted", "again");
    assert_string_equal(get("deleted", NULL, NULL), "again");
}

/* Several threads, each its own range: every row once, then complete. */
static void
test_parallel_ranges(void **state)
{
    (void)state;
    put_many(2500, 16);
    start(2);
    struct warmup_counters c;
    wait_done(&c);
    assert_int_equal(c.loaded, 2500);
    assert_int_equal(c.skipped, 0);
    assert_false(c.truncated);
    assert_true(cache_is_complete());
    char key[32];
    for (unsigned i = 0; i < 2500; i += 499) {
        snprintf(key, sizeof(key), "key%u", i);
        assert_string_equal(get(key, NULL, NULL), "dddddddddddddddd");
    }
    struct cache_stats cs;
    cache_stats(&cs);
    assert_int_equal(cs.curr_items, 2500);
}

/* The memory limit is reached first: every thread stops, the rest stays
 * on disk (the cache stays incomplete), and the outcome says so. */
static void
test_memory_full_truncates(void **state)
{
    (void)state;
    put_many(4000, 1024);   /* about 4 MB of values for a 2 MB cache */
    start(2);
    struct warmup_counters c;
    wait_done(&c);
    assert_true(c.truncated);
    assert_true(c.loaded > 0);
    assert_true(c.loaded < 4000);
    assert_false(cache_is_complete());
    /* what was not loaded may still be on disk */
    char key[32];
    unsigned on_disk = 0;
    for (unsigned i = 0; i < 4000; i++) {
        enum cache_miss why;
        snprintf(key, sizeof(key), "key%u", i);
        if (get(key, &why, NULL)[0] == '\0' && why == CACHE_MISS_ON_DISK)
            on_disk++;
    }
    assert_int_equal(on_disk, 4000 - c.loaded);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_installs_only_where_absent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tombstones_and_expired_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parallel_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_full_truncates, setup_small, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
