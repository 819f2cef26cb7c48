/*
 * test_cache_disk.c: unit tests of server/cache_disk.c (with the shards,
 * item memory and clock below it).
 *
 * Stubs copy what a reply needs but the value, and the meta state (token,
 * stale, fetched, last access); cache_install() puts a value
 * back only over a stub of the same CAS, or where the key is absent while
 * the cache is incomplete; dead keys and fetched-absent keys become
 * tombstones only while incomplete; the persistence hook sees every put and
 * delete, holds a reference and a dirty count per put, and never hears
 * from a cache that is not persistent.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "server/cache_priv.h"

void cache_clock_set_for_test(rel_time_t now);

#define MB ((size_t)1024 * 1024)

static unsigned puts_seen, dels_seen;
static struct item *last_put;
static char last_del[32];

static void
on_change(const struct cache_change *ch)
{
    if (ch->kind == CACHE_CHANGE_PUT) {
        puts_seen++;
        last_put = ch->item;
    } else if (ch->kind == CACHE_CHANGE_DEL) {
        dels_seen++;
        memcpy(last_del, ch->key, ch->nkey);
        last_del[ch->nkey] = '\0';
    }
}

static int
start(bool persistent)
{
    puts_seen = dels_seen = 0;
    last_put = NULL;
    mem_setup(64 * MB);
    clock_setup(true, NULL);
    disk_setup(persistent, persistent ? on_change : NULL);
    return shard_setup();
}

static int setup_persistent(void **state) { (void)state; return start(true); }
static int setup_memory(void **state) { (void)state; return start(false); }
static int teardown(void **state) { (void)state; shard_teardown(); return 0; }
static int
setup_filter(void **state)
{
    (void)state;
    int rc = start(true);
    filter_setup(true);
    return rc;
}
static int
teardown_filter(void **state)
{
    (void)state;
    filter_teardown();
    shard_teardown();
    return 0;
}

static struct item *
make(const char *key, const char *val, uint64_t cas)
{
    uint8_t nkey = (uint8_t)strlen(key);
    uint32_t n = (uint32_t)strlen(val);
    struct item *it = item_malloc(offsetof(struct item, data) + nkey + n + 2);
    assert_non_null(it);
    mem_charge(item_usable(it));
    item_init(it, key, nkey, cache_hash(key, nkey), 5, 0, n);
    memcpy(item_value(it), val, n);
    it->cas = cas;
    return it;
}

static struct item *
linked(const char *key)
{
    uint8_t nkey = (uint8_t)strlen(key);
    uint32_t hv = cache_hash(key, nkey);
    struct shard *s = shard_of(hv);
    shard_lock(s);
    struct item *it = shard_find(s, key, nkey, hv);
    shard_unlock(s);
    return it;
}

/* Links `it` as the shard would after a set, keeping its CAS. */
static void
put_linked(struct item *it)
{
    struct shard *s = shard_of(it->hv);
    shard_lock(s);
    shard_link(s, it, cache_now(), true);
    shard_unlock(s);
}

/* What the evictor does: a stub takes the clean item's place. */
static void
eject(const char *key)
{
    struct item *it = linked(key);
    assert_non_null(it);
    struct shard *s = shard_of(it->hv);
    shard_lock(s);
    assert_true(disk_eject(s, it, cache_now()));
    shard_unlock(s);
}

static void
test_stub(void **state)
{
    (void)state;
    struct item *it = make("key", "a value", 77);
    item_set_exptime(it, 1234);
    size_t before = mem_used_now();
    struct item *st = disk_stub_create(it);
    assert_non_null(st);
    assert_int_equal(mem_used_now(), before + item_usable(st));
    assert_true(item_usable(st) <= item_usable(it));
    assert_memory_equal(item_key(st), "key", 3);
    assert_int_equal(st->nbytes, 0);
    assert_int_equal(st->cas, 77);
    assert_int_equal(item_exptime(st), 1234);
    assert_int_equal(st->flags, 5);
    assert_int_equal(st->iflags, ITEM_STUB);
    item_unref(st);
    item_unref(it);
}

static void
test_stub_keeps_meta_state(void **state)
{
    (void)state;
    /* invalidated, token handed out, read, binary key, client's CAS */
    const uint8_t meta = ITEM_FETCHED | ITEM_STALE | ITEM_TOKEN_SENT |
                         ITEM_KEY_BINARY | ITEM_CAS_EXPLICIT;
    struct item *it = make("m", "value", 500);
    it->iflags |= meta;
    put_linked(it);
    item_unref(it);
    cache_clock_set_for_test(cache_now() + 7);
    rel_time_t atime = cache_now();
    linked("m")->atime = atime;
    cache_clock_set_for_test(cache_now() + 20);
    eject("m");
    struct item *st = linked("m");
    assert_int_equal(st->iflags, ITEM_STUB | ITEM_LINKED | meta);
    assert_int_equal(st->atime, atime);

    /* the value fetched back is the same item to clients */
    struct item *back = make("m", "value", 500);
    assert_int_equal(cache_install(back), CACHE_STORED);
    assert_int_equal(back->iflags, ITEM_LINKED | meta);
    assert_int_equal(back->atime, atime);
    item_unref(back);
}

static void
test_install(void **state)
{
    (void)state;
    /* complete: an absent key is absent, nothing to install */
    struct item *d = make("k", "disk", 10);
    assert_int_equal(cache_install(d), CACHE_NOT_STORED);

    /* incomplete: where the key is absent, the disk copy goes in */
    cache_set_complete(false);
    assert_false(cache_is_complete());
    assert_int_equal(cache_install(d), CACHE_STORED);
    assert_ptr_equal(linked("k"), d);
    assert_int_equal(d->cas, 10);   /* keeps the disk's CAS */
    assert_int_equal(d->dirty, 0);  /* clean: it is on disk */
    assert_int_equal(puts_seen, 0);
    item_unref(d);
    /* a second copy never replaces what memory holds */
    struct item *d2 = make("k", "older", 9);
    assert_int_equal(cache_install(d2), CACHE_NOT_STORED);
    item_unref(d2);

    /* a stub takes the value back only from a read of its own version */
    cache_set_complete(true);
    eject("k");
    assert_int_equal(cache_ejected_items(), 1);
    assert_true(cache_key_present("k", 1));
    rel_time_t stored_at = linked("k")->time;
    cache_clock_set_for_test(cache_now() + 30);
    struct item *other = make("k", "other", 11);
    assert_int_equal(cache_install(other), CACHE_NOT_STORED);
    item_unref(other);
    struct item *same = make("k", "disk", 10);
    assert_int_equal(cache_install(same), CACHE_STORED);
    assert_ptr_equal(linked("k"), same);
    assert_int_equal(same->time, stored_at);   /* the stub's age, not now */
    assert_int_equal(cache_ejected_items(), 0);
    item_unref(same);

    /* an expired row is never installed; NOT_FOUND tells the fetcher
     * the key is as good as absent */
    cache_set_complete(false);
    struct item *e = make("e", "x", 12);
    item_set_exptime(e, cache_now());
    assert_int_equal(cache_install(e), CACHE_NOT_FOUND);
    item_unref(e);
    assert_null(linked("e"));
}

static void
test_install_absent(void **state)
{
    (void)state;
    cache_install_absent("a", 1);   /* complete: nothing to remember */
    assert_null(linked("a"));
    cache_set_complete(false);
    cache_install_absent("a", 1);
    struct item *t = linked("a");
    assert_non_null(t);
    assert_true(t->iflags & ITEM_TOMBSTONE);
    assert_false(cache_key_present("a", 1));
    /* ... and the tombstone keeps the disk's old copy out */
    struct item *d = make("a", "old", 3);
    assert_int_equal(cache_install(d), CACHE_NOT_STORED);
    item_unref(d);
    /* never over a key that is there */
    struct item *v = make("b", "v", 4);
    put_linked(v);
    item_unref(v);
    cache_install_absent("b", 1);
    assert_ptr_equal(linked("b"), v);
    assert_true(cache_key_present("b", 1));
}

static void
test_bury(void **state)
{
    (void)state;
    struct item *a = make("a", "1", 1);
    put_linked(a);
    item_unref(a);
    struct shard *s = shard_of(a->hv);
    /* complete: a dead item just goes */
    shard_lock(s);
    disk_bury(s, a, cache_now());
    shard_unlock(s);
    assert_null(linked("a"));

    /* incomplete: a tombstone takes its place in the same lock hold */
    cache_set_complete(false);
    struct item *b = make("a", "2", 2);
    put_linked(b);
    item_unref(b);
    shard_lock(s);
    disk_bury(s, b, cache_now());
    struct item *t = shard_find(s, "a", 1, cache_hash("a", 1));
    assert_non_null(t);
    assert_true(t->iflags & ITEM_TOMBSTONE);
    /* burying a tombstone leaves nothing behind */
    disk_bury(s, t, cache_now());
    assert_null(shard_find(s, "a", 1, cache_hash("a", 1)));
    shard_unlock(s);
}

static void
test_dirty_and_hook(void **state)
{
    (void)state;
    struct item *it = make("w", "v", 0);
    put_linked(it);
    struct shard *s = shard_of(it->hv);
    shard_lock(s);
    struct item *changed = disk_mark_dirty(it);
    shard_unlock(s);
    assert_ptr_equal(changed, it);
    assert_int_equal(it->dirty, 1);
    assert_int_equal(atomic_load(&it->refcount), 3);   /* table, ours, hook's */
    disk_put(changed);
    assert_int_equal(puts_seen, 1);
    assert_ptr_equal(last_put, it);
    disk_put(NULL);
    assert_int_equal(puts_seen, 1);

    /* the flusher: committed, then the hook's reference released */
    assert_true(cache_item_is_current(it));
    cache_item_clean(it);
    assert_int_equal(it->dirty, 0);
    cache_item_clean(it);              /* never below zero */
    assert_int_equal(it->dirty, 0);
    cache_item_release(it);
    disk_del("w", 1);
    assert_int_equal(dels_seen, 1);
    assert_string_equal(last_del, "w");
    shard_lock(s);
    shard_unlink(s, it);
    shard_unlock(s);
    assert_false(cache_item_is_current(it));
    item_unref(it);
}

/* The miss path's question to the filter, as ops_find_live() asks it. */
static enum cache_miss
lookup(const char *key)
{
    uint8_t nkey = (uint8_t)strlen(key);
    uint32_t hv = cache_hash(key, nkey);
    struct shard *s = shard_of(hv);
    enum cache_miss why;
    shard_lock(s);
    struct item *it = ops_find_live(s, key, nkey, hv, cache_now(), &why);
    shard_unlock(s);
    assert_null(it);
    return why;
}

static uint64_t
negatives(void)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < CACHE_SHARDS; i++)
        n += cache_shards[i].filter_negatives;
    return n;
}

static void
test_filter(void **state)
{
    (void)state;
    cache_set_complete(false);
    /* not ready (the warmup has not read the disk yet): maybe on disk */
    assert_int_equal(lookup("never"), CACHE_MISS_ON_DISK);
    assert_int_equal(negatives(), 0);

    /* a key written now goes into the filter before it can reach disk;
     * the memory of the filter's first layer is charged */
    size_t used = mem_used_now();
    struct item *w = make("written", "v", 7);
    put_linked(w);
    struct shard *s = shard_of(w->hv);
    shard_lock(s);
    struct item *ref = disk_mark_dirty(w);
    shard_unlock(s);
    assert_ptr_equal(ref, w);
    assert_true(mem_used_now() > used);
    cache_filter_add("warm", 4);   /* a row the warmup read */
    cache_filter_set_ready();

    /* ready: a key never seen is a plain miss, counted */
    assert_int_equal(lookup("never"), CACHE_MISS_ABSENT);
    assert_int_equal(lookup("never2"), CACHE_MISS_ABSENT);
    assert_int_equal(negatives(), 2);
    /* a key read by the warmup may be on disk */
    assert_int_equal(lookup("warm"), CACHE_MISS_ON_DISK);
    /* a written key dropped from memory may be on disk */
    item_unref(ref);   /* the hook's reference */
    shard_lock(s);
    shard_unlink(s, w);
    shard_unlock(s);
    item_unref(w);
    assert_int_equal(lookup("written"), CACHE_MISS_ON_DISK);
    /* complete: nothing is asked */
    cache_set_complete(true);
    assert_int_equal(lookup("warm"), CACHE_MISS_ABSENT);
    assert_int_equal(negatives(), 2);
}

static void
test_not_persistent(void **state)
{
    (void)state;
    assert_false(disk_persistent());
    struct item *it = make("m", "v", 0);
    put_linked(it);
    struct shard *s = shard_of(it->hv);
    shard_lock(s);
    assert_null(disk_mark_dirty(it));
    assert_int_equal(it->dirty, 0);
    shard_unlock(s);
    disk_del("m", 1);
    assert_int_equal(dels_seen, 0);
    /* no tombstones without a disk, even when told incomplete */
    disk_set_incomplete();
    assert_false(disk_complete());
    shard_lock(s);
    disk_bury(s, it, cache_now());
    assert_null(shard_find(s, "m", 1, it->hv));
    shard_unlock(s);
    item_unref(it);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stub, setup_persistent, teardown),
        cmocka_unit_test_setup_teardown(test_stub_keeps_meta_state, setup_persistent, teardown),
        cmocka_unit_test_setup_teardown(test_install, setup_persistent, teardown),
        cmocka_unit_test_setup_teardown(test_install_absent, setup_persistent, teardown),
        cmocka_unit_test_setup_teardown(test_bury, setup_persistent, teardown),
        cmocka_unit_test_setup_teardown(test_dirty_and_hook, setup_persistent, teardown),
        cmocka_unit_test_setup_teardown(test_filter, setup_filter, teardown_filter),
        cmocka_unit_test_setup_teardown(test_not_persistent, setup_memory, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
