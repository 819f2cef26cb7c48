/*
 * test_cache_warmup.c: a persistent cache whose warmup has not finished
 * (server/cache.h): rows installed from disk never revive a key deleted or
 * replaced meanwhile, also while an installer thread races the deletes.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "server/cache.h"
#include "tests/unit/cache_helpers.h"

/* ---------------------------------------------------------------- warmup */

/* The persistence hook of a flusher that commits at once. */
static void
on_change_commit_now(const struct cache_change *ch)
{
    if (ch->kind == CACHE_CHANGE_PUT) {
        cache_item_clean(ch->item);
        cache_item_release(ch->item);
    }
}

/* A persistent cache whose warmup has not finished: keys not in memory
 * may be on disk. */
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

/* What the warmup does with a row read from disk. */
static enum cache_result
install_from_disk(const char *key, const char *val, uint64_t cas)
{
    size_t n = strlen(val);
    struct item *it = cache_item_alloc_noevict(key, klen(key), 0, 0, (uint32_t)n);
    assert_non_null(it);
    memcpy(item_value(it), val, n);
    it->cas = cas;
    enum cache_result r = cache_install(it);
    cache_item_release(it);
    return r;
}

static void
test_warmup_never_revives(void **state)
{
    (void)state;
    enum cache_miss why;
    /* not in memory: maybe on disk */
    assert_null(cache_get("k", 1, &why));
    assert_int_equal(why, CACHE_MISS_ON_DISK);
    assert_int_equal(cache_delete("k", 1, 0), CACHE_NEED_FETCH);

    /* loaded from disk, then deleted: the disk copy stays out */
    assert_int_equal(install_from_disk("k", "old", 1), CACHE_STORED);
    assert_value("k", "old");
    assert_int_equal(cache_delete("k", 1, 0), CACHE_DELETED);
    assert_int_equal(install_from_disk("k", "old", 1), CACHE_NOT_STORED);
    assert_null(cache_get("k", 1, &why));
    assert_int_not_equal(why, CACHE_MISS_ON_DISK);

    /* written during warmup: the older disk version never wins */
    cache_set_cas_floor(100);
    assert_int_equal(set_kv("w", "new"), CACHE_STORED);
    assert_int_equal(install_from_disk("w", "old", 5), CACHE_NOT_STORED);
    assert_value("w", "new");

    /* written during warmup and expired before the disk copy arrived */
    rel_time_t now = cache_now();
    assert_int_equal(store_full(CACHE_SET, "e", "new", 3, 0, now + 2, 0, NULL),
                     CACHE_STORED);
    cache_clock_set_for_test(now + 5);
    assert_null(cache_get("e", 1, &why));
    assert_int_equal(why, CACHE_MISS_EXPIRED);
    assert_int_equal(install_from_disk("e", "old", 7), CACHE_NOT_STORED);
    assert_null(cache_get("e", 1, &why));
    assert_int_not_equal(why, CACHE_MISS_ON_DISK);

    /* a tombstone gives way to a new write */
    assert_int_equal(set_kv("k", "again"), CACHE_STORED);
    assert_value("k", "again");
}

/* Deletes race the warmup's installs of the same keys: whatever the
 * interleaving, a key acknowledged as deleted stays deleted. Before the
 * tombstone took the key's place under the same lock as the unlink, a
 * install landing between the two revived the key. */
#define RACE_KEYS 20000

struct race_state {
    atomic_uint next;       /* keys [0, next) have been set and deleted */
    atomic_bool stop;
};

static void *
race_installer(void *arg)
{
    struct race_state *rs = arg;
    char key[32];
    while (!atomic_load(&rs->stop)) {
        unsigned i = atomic_load(&rs->next);
        if (i >= RACE_KEYS)
            break;
        /* the row of key i as the disk has it, offered again and again */
        snprintf(key, sizeof key, "race:%u", i);
        (void)install_from_disk(key, "disk", 1);
    }
    return NULL;
}

static void
test_warmup_delete_race(void **state)
{
    (void)state;
    struct race_state rs;
    atomic_init(&rs.next, 0);
    atomic_init(&rs.stop, false);
    cache_set_cas_floor(100);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, race_installer, &rs), 0);
    char key[32];
    for (unsigned i = 0; i < RACE_KEYS; i++) {
        snprintf(key, sizeof key, "race:%u", i);
        assert_int_equal(set_kv(key, "mem"), CACHE_STORED);
        assert_int_equal(cache_delete(key, klen(key), 0), CACHE_DELETED);
        atomic_store(&rs.next, i + 1);
    }
    atomic_store(&rs.stop, true);
    pthread_join(th, NULL);
    unsigned revived = 0;
    for (unsigned i = 0; i < RACE_KEYS; i++) {
        snprintf(key, sizeof key, "race:%u", i);
        struct item *it = cache_get(key, klen(key), NULL);
        if (it != NULL) {
            revived++;
            cache_item_release(it);
        }
    }
    assert_int_equal(revived, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_warmup_never_revives, setup_warming, teardown_cache),
        cmocka_unit_test_setup_teardown(test_warmup_delete_race, setup_warming, teardown_cache),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
