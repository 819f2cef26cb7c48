/*
 * cache.c: the in-memory item store (contract in cache.h).
 *
 * Shards. A key's 32-bit hash (murmur3, util/hash.c) picks its shard with
 * its top CACHE_SHARD_BITS bits and its bucket with its low bits, so the two
 * choices do not correlate. A shard owns, under one mutex: a chained hash table, the
 * previous table while the shard is expanding, an LRU list (head = most
 * recently used) and its share of the statistics.
 *
 * Incremental expansion. When a link leaves more than 1.5 items per bucket,
 * the shard raises want_grow. The next allocation for that shard (which runs
 * with no lock held) allocates a table twice as big, reserves its bytes like
 * an item's and installs it. From then on every locked operation on the
 * shard moves HASH_MIGRATE_PER_OP buckets of the old table to the new one.
 * While that lasts both tables hold items: a key whose old bucket is at or
 * past the migration cursor is in the old table, any other key in the new
 * one, and lookups, inserts and removals choose the table by that rule. No
 * operation ever rehashes a whole shard.
 *
 * Memory. mem_used counts malloc_usable_size() of every allocated item
 * (linked, held by a reader, or not linked yet) plus every bucket array. An
 * allocation reserves its bytes with a compare-and-swap that never takes the
 * counter past the limit; when it would, it evicts from the LRU tail of its
 * own shard (of another one when its own holds clearly less than its share,
 * see evict_victim()) and, once that shard is empty, from the others,
 * holding one shard lock at a time. Evicting an item that a reader holds
 * only unlinks it; its bytes come back at its last release. Item requests
 * are rounded to a grid of chunk sizes (alloc_request()) so that the heap
 * does not fragment under churn.
 *
 * Lifetimes. An item's refcount counts the table (while ITEM_LINKED) and each
 * reader. Linked items are immutable, so append, prepend and incr/decr build
 * a new item outside the lock and link it only if the old one is still the
 * linked one, else they start again. Nothing allocates while holding a shard
 * lock, because allocation may evict and eviction takes shard locks.
 *
 * Dead items (expired, or invalidated by flush_all) are unlinked lazily when
 * an operation meets them: on lookup, or at the LRU tail during eviction.
 */
#include <config.h>

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/cache.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/status.h"

#define CACHE_SHARD_BITS 6
_Static_assert((1u << CACHE_SHARD_BITS) == CACHE_SHARDS,
               "CACHE_SHARD_BITS must match CACHE_SHARDS");

#define HASH_INITIAL_POWER 7       /* 128 buckets per shard at start */
#define HASH_MAX_POWER (32 - CACHE_SHARD_BITS) /* keeps bucket bits apart */
#define HASH_MIGRATE_PER_OP 4      /* old buckets moved per locked operation */
#define HASH_SEED 0x6d636b76u      /* "mckv" */
#define EVICT_BATCH_MAX 64         /* items unlinked per shard lock hold */
#define EVICT_TAIL_SEARCH 5        /* items looked at for a dead one */
#define STATS_TAIL_SCAN 64         /* LRU items per shard looked at by stats */
#define REALTIME_MAXDELTA (60 * 60 * 24 * 30) /* memcached's 30 days */
#define CLOCK_START 2              /* rel time at start: 1 is always past */

/* Private iflags bits, next to the public ITEM_LINKED; shard lock. */
#define ITEM_FETCHED 0x02u         /* read at least once since linked */
#define ITEM_STUB 0x04u            /* value ejected: it is on disk only */
#define ITEM_TOMBSTONE 0x08u       /* known absent while the cache is incomplete */

struct shard_stats {
    uint64_t curr_items;
    uint64_t total_items;
    uint64_t bytes;
    uint64_t value_bytes;
    uint64_t evictions;
    uint64_t reclaimed;
    uint64_t expired_unfetched;
    uint64_t evicted_unfetched;
    uint64_t class_items[CACHE_SIZE_CLASSES];
    uint64_t class_bytes[CACHE_SIZE_CLASSES];
    uint64_t class_evictions[CACHE_SIZE_CLASSES];
};

struct shard {
    pthread_mutex_t lock;
    struct item **buckets;     /* 1 << hashpower buckets */
    struct item **old_buckets; /* 1 << old_hashpower while expanding */
    struct item **retired;     /* old table to free once the lock drops */
    uint32_t hashpower;
    uint32_t old_hashpower;    /* smaller than hashpower (by 1 when growing
                                  on demand, by more after cache_reserve) */
    uint32_t migrate_pos;      /* old buckets below this have moved */
    size_t table_bytes;        /* both bucket arrays */
    struct item *lru_head;
    struct item *lru_tail;
    struct shard_stats st;
    atomic_size_t lru_bytes;   /* st.bytes, readable without the lock */
    atomic_bool want_grow;     /* set under the lock, read by allocators */
} __attribute__((aligned(64)));

static struct shard shards[CACHE_SHARDS];

/* Written by cache_setup() before other threads start, then read-only. */
static struct {
    uint32_t item_size_max;
    bool cas_enabled;
    bool persistent;
    void (*on_change)(const struct cache_change *change);
    bool ready;
} cfg;

/* Persistent mode: false while keys absent from memory may be on disk. */
static atomic_bool complete = true;
static atomic_uint_fast64_t stubs_now;
static atomic_uint_fast64_t tombstones_now;

static atomic_size_t mem_used;
static atomic_size_t mem_limit;
/* Next CAS to hand out; 1 first. */
static _Atomic uint64_t cas_next = 1;

/* Clock: rel time = monotonic seconds - clock_base. */
static _Atomic rel_time_t clock_current = CLOCK_START;
static _Atomic int64_t clock_base;
static time_t process_started;

/*
 * flush_all state. Writers hold flush_lock; readers take no lock.
 * flush_time: items stored at or before it are dead once now >= flush_time
 * (0 = none). flush_cas: items whose CAS is below it are dead (0 = none).
 * With CAS on, a flush that takes effect is turned into a flush_cas mark
 * (the next CAS to be handed out) and flush_time goes back to 0, so items
 * stored later in the same second survive. With CAS off only flush_time
 * exists and has memcached -C's one-second granularity.
 */
static pthread_mutex_t flush_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic rel_time_t flush_time;
static _Atomic uint64_t flush_cas;

/* Test-only: sets the clock (declared by tests/unit/test_cache.c). */
void cache_clock_set_for_test(rel_time_t now);

/* ---------------------------------------------------------------- hash */

static inline unsigned
shard_index(uint32_t hv)
{
    return hv >> (32 - CACHE_SHARD_BITS);
}

/* ---------------------------------------------------------------- time */

static int64_t
monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

rel_time_t
cache_now(void)
{
    return atomic_load_explicit(&clock_current, memory_order_relaxed);
}

time_t
cache_process_started(void)
{
    return process_started;
}

/* Everything stored so far is flushed: records the CAS high mark and
 * clears a pending delayed flush; flush_lock held. */
static void
flush_now_locked(void)
{
    uint64_t mark = atomic_load_explicit(&cas_next, memory_order_relaxed);
    atomic_store_explicit(&flush_cas, mark, memory_order_release);
    /* Orders the mark before the clear: a reader that sees flush_time at 0
     * (acquire) also sees the mark that replaces it. */
    atomic_store_explicit(&flush_time, 0, memory_order_release);
    if (cfg.persistent) {
        struct cache_change ch = { .kind = CACHE_CHANGE_FLUSH, .cas_below = mark };
        cfg.on_change(&ch);
    }
}

/* Turns a delayed flush that has come due into a CAS mark (see flush_time).
 * Takes flush_lock; called with no shard lock held. */
static void
flush_fire(rel_time_t now)
{
    pthread_mutex_lock(&flush_lock);
    rel_time_t ft = atomic_load_explicit(&flush_time, memory_order_relaxed);
    if (ft != 0 && ft <= now) {
        flush_now_locked();
    }
    pthread_mutex_unlock(&flush_lock);
}

/* The time an operation works with; fires a due delayed flush first. */
static rel_time_t
op_now(void)
{
    rel_time_t now = cache_now();
    if (cfg.cas_enabled) {
        rel_time_t ft = atomic_load_explicit(&flush_time, memory_order_relaxed);
        if (ft != 0 && ft <= now)
            flush_fire(now);
    }
    return now;
}

void
cache_clock_tick(void)
{
    int64_t rel = monotonic_seconds() -
                  atomic_load_explicit(&clock_base, memory_order_relaxed);
    if (rel < CLOCK_START)
        rel = CLOCK_START;
    atomic_store_explicit(&clock_current, (rel_time_t)rel, memory_order_relaxed);
    op_now();
}

void
cache_clock_set_for_test(rel_time_t now)
{
    atomic_store_explicit(&clock_base, monotonic_seconds() - (int64_t)now,
                          memory_order_relaxed);
    atomic_store_explicit(&clock_current, now, memory_order_relaxed);
    op_now();
}

rel_time_t
cache_realtime(int64_t exptime)
{
    if (exptime == 0)
        return 0;
    if (exptime < 0)
        return 1;
    int64_t rel;
    if (exptime > REALTIME_MAXDELTA) {
        if (exptime <= (int64_t)process_started)
            return 1;
        rel = exptime - (int64_t)process_started;
    } else {
        rel = exptime + (int64_t)cache_now();
    }
    return rel > (int64_t)UINT32_MAX ? UINT32_MAX : (rel_time_t)rel;
}

time_t
cache_rel_to_unix(rel_time_t t)
{
    return t == 0 ? 0 : process_started + (time_t)t;
}

/* ---------------------------------------------------------------- memory */

static inline size_t
item_usable(const struct item *it)
{
    return malloc_usable_size((void *)it);
}

static unsigned
size_class(size_t size)
{
    unsigned c = 0;
    while (c < CACHE_SIZE_CLASSES - 1 && ((size_t)64 << c) < size)
        c++;
    return c;
}

static void
mem_release(size_t bytes)
{
    atomic_fetch_sub_explicit(&mem_used, bytes, memory_order_relaxed);
}

static bool
mem_try_reserve(size_t bytes)
{
    size_t used = atomic_load_explicit(&mem_used, memory_order_relaxed);
    size_t limit = atomic_load_explicit(&mem_limit, memory_order_relaxed);
    while (used <= limit && bytes <= limit - used) {
        /* Relaxed: the counter guards no other data. */
        if (atomic_compare_exchange_weak_explicit(&mem_used, &used, used + bytes,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
            return true;
    }
    return false;
}

static void
item_free(struct item *it)
{
    size_t size = item_usable(it);
    free(it);
    mem_release(size);
}

/* Drops one reference; frees the item on the last. Returns true if freed. */
static bool
item_unref(struct item *it)
{
    /* Release: our reads and writes of the item happen before whoever
     * drops the last reference frees it. */
    if (atomic_fetch_sub_explicit(&it->refcount, 1, memory_order_release) == 1) {
        /* Acquire before the free: this load reads the end of the release
         * sequence of decrements, so it synchronises with every holder's
         * release above (an acquire load rather than a fence, which TSan
         * does not model). */
        (void)atomic_load_explicit(&it->refcount, memory_order_acquire);
        item_free(it);
        return true;
    }
    return false;
}

static inline void
item_ref(struct item *it)
{
    /* Relaxed: the caller already holds a reference or the shard lock of a
     * linked item, so the count cannot reach zero under us. */
    atomic_fetch_add_explicit(&it->refcount, 1, memory_order_relaxed);
}

/* ---------------------------------------------------------------- items */

/* Relaxed: exptime is a lone value (touch); it orders nothing else. */
static inline rel_time_t
item_exptime(const struct item *it)
{
    return atomic_load_explicit(&it->exptime, memory_order_relaxed);
}

static inline void
item_set_exptime(struct item *it, rel_time_t exptime)
{
    atomic_store_explicit(&it->exptime, exptime, memory_order_relaxed);
}

static bool
item_is_expired(const struct item *it, rel_time_t now)
{
    rel_time_t exptime = item_exptime(it);
    return exptime != 0 && exptime <= now;
}

static bool
item_is_flushed(const struct item *it, rel_time_t now)
{
    /* Acquire: pairs with the release stores in cache_flush()/flush_fire(),
     * so the flush_cas read below is at least as new as this flush_time. */
    rel_time_t ft = atomic_load_explicit(&flush_time, memory_order_acquire);
    if (ft != 0 && ft <= now && it->time <= ft)
        return true;
    uint64_t mark = atomic_load_explicit(&flush_cas, memory_order_acquire);
    return mark != 0 && it->cas != 0 && it->cas < mark;
}

/* ---------------------------------------------------------------- shards */

static inline struct item **
bucket_for(struct shard *s, uint32_t hv)
{
    if (s->old_buckets != NULL) {
        uint32_t old_index = hv & ((1u << s->old_hashpower) - 1);
        if (old_index >= s->migrate_pos)
            return &s->old_buckets[old_index];
    }
    return &s->buckets[hv & ((1u << s->hashpower) - 1)];
}

/* Moves up to HASH_MIGRATE_PER_OP old buckets; shard lock held. */
static void
shard_migrate(struct shard *s)
{
    if (s->old_buckets == NULL)
        return;
    uint32_t old_size = 1u << s->old_hashpower;
    uint32_t mask = (1u << s->hashpower) - 1;
    for (int n = 0; n < HASH_MIGRATE_PER_OP && s->migrate_pos < old_size; n++) {
        struct item *it = s->old_buckets[s->migrate_pos];
        while (it != NULL) {
            struct item *next = it->h_next;
            struct item **b = &s->buckets[it->hv & mask];
            it->h_next = *b;
            *b = it;
            it = next;
        }
        s->old_buckets[s->migrate_pos] = NULL;
        s->migrate_pos++;
    }
    if (s->migrate_pos == old_size) {
        s->retired = s->old_buckets;
        s->old_buckets = NULL;
        s->migrate_pos = 0;
        s->table_bytes -= (size_t)old_size * sizeof(struct item *);
    }
}

/* Locks a shard and advances its expansion by one step. */
static void
shard_lock(struct shard *s)
{
    pthread_mutex_lock(&s->lock);
    shard_migrate(s);
}

/* Unlocks; frees an old table that finished migrating under the lock. */
static void
shard_unlock(struct shard *s)
{
    struct item **retired = s->retired;
    s->retired = NULL;
    size_t bytes = retired == NULL ? 0
        : ((size_t)1 << s->old_hashpower) * sizeof(struct item *);
    pthread_mutex_unlock(&s->lock);
    if (retired != NULL) {
        free(retired);
        mem_release(bytes);
    }
}

static struct item *
hash_find(struct shard *s, const char *key, uint8_t nkey, uint32_t hv)
{
    for (struct item *it = *bucket_for(s, hv); it != NULL; it = it->h_next) {
        if (it->hv == hv && it->nkey == nkey && memcmp(item_key(it), key, nkey) == 0)
            return it;
    }
    return NULL;
}

static void
hash_remove(struct shard *s, struct item *it)
{
    struct item **pp = bucket_for(s, it->hv);
    while (*pp != NULL && *pp != it)
        pp = &(*pp)->h_next;
    if (*pp == it)
        *pp = it->h_next;
    it->h_next = NULL;
}

static void
lru_remove(struct shard *s, struct item *it)
{
    if (it->lru_prev != NULL)
        it->lru_prev->lru_next = it->lru_next;
    else
        s->lru_head = it->lru_next;
    if (it->lru_next != NULL)
        it->lru_next->lru_prev = it->lru_prev;
    else
        s->lru_tail = it->lru_prev;
    it->lru_prev = NULL;
    it->lru_next = NULL;
}

static void
lru_push_head(struct shard *s, struct item *it)
{
    it->lru_prev = NULL;
    it->lru_next = s->lru_head;
    if (s->lru_head != NULL)
        s->lru_head->lru_prev = it;
    else
        s->lru_tail = it;
    s->lru_head = it;
}

static void
lru_bump(struct shard *s, struct item *it)
{
    if (s->lru_head != it) {
        lru_remove(s, it);
        lru_push_head(s, it);
    }
}

/* Links an unlinked item with a fresh CAS; shard lock held. */
static bool item_unlink_locked(struct shard *s, struct item *it);

static void
item_link_common(struct shard *s, struct item *it, rel_time_t now, bool keep_cas)
{
    if (atomic_load_explicit(&tombstones_now, memory_order_relaxed) > 0) {
        /* find_live() hides tombstones: a new version replaces one here */
        struct item *dup = hash_find(s, item_key(it), it->nkey, it->hv);
        if (dup != NULL && (dup->iflags & ITEM_TOMBSTONE))
            item_unlink_locked(s, dup);
    }
    it->time = now;
    if (!keep_cas)
        it->cas = cfg.cas_enabled
            ? atomic_fetch_add_explicit(&cas_next, 1, memory_order_relaxed) : 0;
    it->iflags = (uint8_t)((it->iflags & (ITEM_STUB | ITEM_TOMBSTONE)) | ITEM_LINKED);
    if (it->iflags & ITEM_STUB)
        atomic_fetch_add_explicit(&stubs_now, 1, memory_order_relaxed);
    if (it->iflags & ITEM_TOMBSTONE)
        atomic_fetch_add_explicit(&tombstones_now, 1, memory_order_relaxed);
    item_ref(it); /* the table's reference */

    struct item **b = bucket_for(s, it->hv);
    it->h_next = *b;
    *b = it;
    lru_push_head(s, it);

    size_t size = item_usable(it);
    unsigned c = size_class(size);
    s->st.curr_items++;
    s->st.total_items++;
    s->st.bytes += size;
    s->st.value_bytes += (uint64_t)it->nkey + it->nbytes;
    s->st.class_items[c]++;
    s->st.class_bytes[c] += size;
    atomic_store_explicit(&s->lru_bytes, s->st.bytes, memory_order_relaxed);

    uint64_t nbuckets = (uint64_t)1 << s->hashpower;
    if (s->old_buckets == NULL && s->hashpower < HASH_MAX_POWER &&
        s->st.curr_items * 2 > nbuckets * 3)
        atomic_store_explicit(&s->want_grow, true, memory_order_relaxed);
}

static void
item_link_locked(struct shard *s, struct item *it, rel_time_t now)
{
    item_link_common(s, it, now, false);
}

/* Unlinks and drops the table's reference; shard lock held. Returns true
 * when that was the last reference and the item is freed. */
static bool
item_unlink_locked(struct shard *s, struct item *it)
{
    hash_remove(s, it);
    lru_remove(s, it);
    it->iflags &= (uint8_t)~ITEM_LINKED;
    if (it->iflags & ITEM_STUB)
        atomic_fetch_sub_explicit(&stubs_now, 1, memory_order_relaxed);
    if (it->iflags & ITEM_TOMBSTONE)
        atomic_fetch_sub_explicit(&tombstones_now, 1, memory_order_relaxed);

    size_t size = item_usable(it);
    unsigned c = size_class(size);
    s->st.curr_items--;
    s->st.bytes -= size;
    s->st.value_bytes -= (uint64_t)it->nkey + it->nbytes;
    s->st.class_items[c]--;
    s->st.class_bytes[c] -= size;
    atomic_store_explicit(&s->lru_bytes, s->st.bytes, memory_order_relaxed);
    return item_unref(it);
}

static void
item_replace_locked(struct shard *s, struct item *old, struct item *it,
                    rel_time_t now)
{
    item_unlink_locked(s, old);
    item_link_locked(s, it, now);
}

/* An item that holds a key and no value (a stub or a tombstone), not
 * linked. Its bytes are accounted without the limit check (see callers). */
static struct item *
keyonly_alloc(const char *key, uint8_t nkey, uint32_t hv, uint8_t iflags)
{
    size_t ntotal = offsetof(struct item, data) + nkey + 2;
    struct item *k = malloc(ntotal);
    if (k == NULL)
        return NULL;
    atomic_fetch_add_explicit(&mem_used, item_usable(k), memory_order_relaxed);
    memset(k, 0, offsetof(struct item, data));
    k->hv = hv;
    atomic_init(&k->refcount, 1);
    k->nkey = nkey;
    k->iflags = iflags;
    memcpy(k->data, key, nkey);
    memcpy(k->data + nkey, "\r\n", 2);
    return k;
}

/*
 * Finds a live item; shard lock held. A dead one met on the way is unlinked
 * and reported through *why (may be NULL).
 */
static struct item *
find_live(struct shard *s, const char *key, uint8_t nkey, uint32_t hv,
          rel_time_t now, enum cache_miss *why)
{
    enum cache_miss reason = CACHE_MISS_ABSENT;
    struct item *it = hash_find(s, key, nkey, hv);
    if (it != NULL) {
        if (item_is_flushed(it, now))
            reason = CACHE_MISS_FLUSHED;
        else if (item_is_expired(it, now))
            reason = CACHE_MISS_EXPIRED;
        if (reason != CACHE_MISS_ABSENT) {
            if (!(it->iflags & ITEM_FETCHED))
                s->st.expired_unfetched++;
            /* While warmup runs, an older version of the key may still be
             * on its way from disk: a tombstone keeps it out. */
            struct item *tomb = NULL;
            if (cfg.persistent && !(it->iflags & ITEM_TOMBSTONE) &&
                !atomic_load_explicit(&complete, memory_order_relaxed))
                tomb = keyonly_alloc(item_key(it), it->nkey, hv, ITEM_TOMBSTONE);
            item_unlink_locked(s, it);
            it = NULL;
            if (tomb != NULL) {
                item_link_common(s, tomb, now, true);
                item_unref(tomb);
                it = tomb;
            }
        }
    }
    if (it != NULL && (it->iflags & ITEM_TOMBSTONE)) {
        it = NULL;   /* known absent */
    } else if (it == NULL && reason == CACHE_MISS_ABSENT &&
               !atomic_load_explicit(&complete, memory_order_relaxed)) {
        reason = CACHE_MISS_ON_DISK;
    }
    if (why != NULL)
        *why = reason;
    return it;
}

/* The caller must fetch the value before it can answer: a stub, or a key
 * that may be on disk. */
static inline bool
needs_fetch(const struct item *it, enum cache_miss why)
{
    return it != NULL ? (it->iflags & ITEM_STUB) != 0 : why == CACHE_MISS_ON_DISK;
}

/* Persistence: counts a linked item dirty and takes the hook's reference;
 * shard lock held. Returns the item to pass to change_put() once the lock
 * is dropped (NULL when not persistent). */
static struct item *
mark_dirty(struct item *it)
{
    if (!cfg.persistent)
        return NULL;
    it->dirty++;
    item_ref(it);
    return it;
}

static void
change_put(struct item *it)
{
    if (it == NULL)
        return;
    struct cache_change ch = { .kind = CACHE_CHANGE_PUT, .item = it };
    cfg.on_change(&ch);
}

static void
change_del(const char *key, uint8_t nkey)
{
    if (!cfg.persistent)
        return;
    struct cache_change ch = { .kind = CACHE_CHANGE_DEL, .key = key, .nkey = nkey };
    cfg.on_change(&ch);
}

/* A stub in place of a clean item that is being evicted; shard lock held.
 * NULL when no memory (the item is then dropped: the cache is no longer
 * complete). The stub's bytes are accounted without the limit check: the
 * item it replaces frees more. */
static struct item *
stub_create(const struct item *it)
{
    struct item *st = keyonly_alloc(it->data, it->nkey, it->hv, ITEM_STUB);
    if (st == NULL)
        return NULL;
    st->cas = it->cas;
    atomic_init(&st->exptime, item_exptime(it));
    st->flags = it->flags;
    return st;
}

/*
 * Unlinks items from the LRU tail until about `need` bytes are freed (items
 * held by readers free nothing yet). Takes and drops the shard lock.
 * Returns false when the shard had nothing to unlink.
 */
static bool
shard_evict(struct shard *s, size_t need)
{
    size_t freed = 0;
    unsigned n = 0;
    rel_time_t now = cache_now();

    shard_lock(s);
    while (s->lru_tail != NULL && freed < need && n < EVICT_BATCH_MAX) {
        /* Like memcached, look a few items up from the tail for a dead one
         * to reclaim before evicting a live one. */
        struct item *it = NULL;
        unsigned looked = 0;
        for (struct item *p = s->lru_tail; p != NULL && looked < EVICT_TAIL_SEARCH;
             p = p->lru_prev, looked++) {
            if (item_is_flushed(p, now) || item_is_expired(p, now)) {
                it = p;
                break;
            }
        }
        if (it == NULL && cfg.persistent) {
            /* Never drop a dirty item. Prefer ejecting the least recent
             * clean value (a stub keeps its key, so gets stay exact); drop
             * a stub only when the window holds nothing else. */
            struct item *stub_victim = NULL;
            unsigned looked_p = 0;
            for (struct item *p = s->lru_tail; p != NULL && looked_p < 1024;
                 p = p->lru_prev, looked_p++) {
                if (p->dirty != 0)
                    continue;
                if (p->iflags & ITEM_STUB) {
                    if (stub_victim == NULL)
                        stub_victim = p;
                    continue;
                }
                it = p;
                break;
            }
            if (it == NULL)
                it = stub_victim;
            if (it == NULL)
                break;   /* only dirty items at the tail: nothing to free */
            if (!(it->iflags & (ITEM_STUB | ITEM_TOMBSTONE))) {
                size_t size = item_usable(it);
                struct item *stub = stub_create(it);
                if (stub != NULL) {
                    rel_time_t t = it->time;
                    item_unlink_locked(s, it);
                    item_link_common(s, stub, now, true);
                    stub->time = t;
                    item_unref(stub);   /* the table holds it now */
                    s->st.evictions++;
                    freed += size;
                    n++;
                    continue;
                }
            }
            if (it->iflags & ITEM_STUB)
                atomic_store_explicit(&complete, false, memory_order_relaxed);
        }
        size_t size;
        bool fetched;
        if (it != NULL && (item_is_flushed(it, now) || item_is_expired(it, now))) {
            fetched = (it->iflags & ITEM_FETCHED) != 0;
            size = item_usable(it);
            s->st.reclaimed++;
            if (!fetched)
                s->st.expired_unfetched++;
        } else {
            if (it == NULL)
                it = s->lru_tail;
            fetched = (it->iflags & ITEM_FETCHED) != 0;
            size = item_usable(it);
            s->st.evictions++;
            s->st.class_evictions[size_class(size)]++;
            if (!fetched)
                s->st.evicted_unfetched++;
        }
        /* A reader's reference keeps the bytes until its release. */
        if (item_unlink_locked(s, it))
            freed += size;
        n++;
    }
    shard_unlock(s);
    return n > 0;
}

/*
 * The shard to evict from for an allocation in `home`: home itself, unless
 * it holds clearly less than its share of memory; then the larger of two
 * other shards picked at random. Each shard evicting only for its own
 * allocations has no force keeping shard sizes even (an eviction frees a
 * little more or less than the new item needs, and the difference goes to
 * whichever shard allocates next), so without this their sizes drift apart
 * like a random walk until a small shard evicts items that are still hot.
 */
static unsigned
evict_victim(unsigned home)
{
    static _Thread_local uint32_t rng;
    size_t fair = atomic_load_explicit(&mem_used, memory_order_relaxed);
    fair /= CACHE_SHARDS;
    size_t home_bytes = atomic_load_explicit(&shards[home].lru_bytes,
                                             memory_order_relaxed);
    if (home_bytes >= fair - fair / 8)
        return home;
    if (rng == 0)
        rng = (uint32_t)(uintptr_t)&rng | 1u;
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    unsigned a = (home + 1 + rng % (CACHE_SHARDS - 1)) % CACHE_SHARDS;
    unsigned b = (home + 1 + (rng >> 16) % (CACHE_SHARDS - 1)) % CACHE_SHARDS;
    size_t a_bytes = atomic_load_explicit(&shards[a].lru_bytes,
                                          memory_order_relaxed);
    size_t b_bytes = atomic_load_explicit(&shards[b].lru_bytes,
                                          memory_order_relaxed);
    unsigned victim = a_bytes >= b_bytes ? a : b;
    return (a_bytes >= b_bytes ? a_bytes : b_bytes) > home_bytes ? victim : home;
}

/*
 * Reserves `bytes` under the memory limit, evicting (see evict_victim())
 * and, when that shard and `home` are empty, from any other shard. Takes
 * one shard lock at a time; no lock held on entry.
 */
static bool
mem_reserve(size_t bytes, unsigned home)
{
    for (;;) {
        if (mem_try_reserve(bytes))
            return true;
        size_t limit = atomic_load_explicit(&mem_limit, memory_order_relaxed);
        size_t used = atomic_load_explicit(&mem_used, memory_order_relaxed);
        if (bytes > limit)
            return false;
        size_t need = used + bytes > limit ? used + bytes - limit : 1;
        unsigned victim = evict_victim(home);
        if (shard_evict(&shards[victim], need))
            continue;
        if (victim != home && shard_evict(&shards[home], need))
            continue;
        bool evicted = false;
        for (unsigned i = 1; i < CACHE_SHARDS && !evicted; i++)
            evicted = shard_evict(&shards[(home + i) % CACHE_SHARDS], need);
        if (!evicted)
            return false;
    }
}

/* Replaces a shard's table by one of 1 << power buckets (0: twice the
 * current one) and starts migrating to it; no lock held. Returns 1 when it
 * did, 0 when the shard is already expanding or that big, -1 when out of
 * memory. */
static int
shard_expand(struct shard *s, unsigned index, uint32_t power)
{
    pthread_mutex_lock(&s->lock);
    uint32_t hp = s->hashpower;
    bool busy = s->old_buckets != NULL;
    pthread_mutex_unlock(&s->lock);
    if (power == 0)
        power = hp + 1;
    if (busy || hp >= power || power > HASH_MAX_POWER)
        return 0;

    size_t nbuckets = (size_t)1 << power;
    size_t bytes = nbuckets * sizeof(struct item *);
    struct item **table = calloc(nbuckets, sizeof(*table));
    if (table == NULL || !mem_reserve(bytes, index)) {
        free(table);
        return -1;
    }

    pthread_mutex_lock(&s->lock);
    if (s->old_buckets == NULL && s->hashpower == hp) {
        s->old_buckets = s->buckets;
        s->old_hashpower = hp;
        s->buckets = table;
        s->hashpower = power;
        s->migrate_pos = 0;
        s->table_bytes += bytes;
        table = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    if (table != NULL) {
        free(table);
        mem_release(bytes);
        return 0;
    }
    return 1;
}

/* Doubles a shard's table when want_grow asks for it; no lock held. */
static void
shard_grow(struct shard *s, unsigned index)
{
    if (!atomic_exchange_explicit(&s->want_grow, false, memory_order_relaxed))
        return; /* another allocator took the job */
    if (shard_expand(s, index, 0) < 0)
        atomic_store_explicit(&s->want_grow, true, memory_order_relaxed);
}

/*
 * The malloc request for an item of `ntotal` bytes: rounded so that its
 * heap chunk (glibc: request + 8-byte header, in 16-byte steps) lands on a
 * grid of eight sizes per power of two. Items a few bytes apart (keys of
 * different lengths) then share a chunk size, so a chunk freed by an
 * eviction fits the next item instead of leaving a hole: with 4 threads
 * churning 100-byte values under a 64 MB limit this took RSS from about
 * 81 MB to 69 MB. The extra bytes (under 1/8) show in malloc_usable_size
 * and are accounted like the rest.
 */
static size_t
alloc_request(size_t ntotal)
{
    const size_t header = 8;
    size_t step = 16;
    while (step * 8 < ntotal + header)
        step <<= 1;
    return ((ntotal + header + step - 1) & ~(step - 1)) - header;
}

/* A new item, not linked. With may_evict its bytes are reserved by
 * evicting when needed (mem_reserve), else only if they fit (the warmup
 * must not evict what it just loaded). */
static struct item *
item_create(const char *key, uint8_t nkey, uint32_t hv, uint32_t flags,
            rel_time_t exptime, uint32_t nbytes, bool *too_large, bool may_evict)
{
    size_t ntotal = offsetof(struct item, data) + nkey + (size_t)nbytes + 2;
    if (ntotal > cfg.item_size_max) {
        *too_large = true;
        return NULL;
    }
    unsigned index = shard_index(hv);
    if (atomic_load_explicit(&shards[index].want_grow, memory_order_relaxed))
        shard_grow(&shards[index], index);

    struct item *it = malloc(alloc_request(ntotal));
    if (it == NULL)
        return NULL;
    if (may_evict ? !mem_reserve(item_usable(it), index)
                  : !mem_try_reserve(item_usable(it))) {
        free(it);
        return NULL;
    }
    it->h_next = NULL;
    it->lru_prev = NULL;
    it->lru_next = NULL;
    it->cas = 0;
    atomic_init(&it->exptime, exptime);
    it->time = 0;
    it->flags = flags;
    it->nbytes = nbytes;
    it->hv = hv;
    atomic_init(&it->refcount, 1);
    it->nkey = nkey;
    it->iflags = 0;
    it->dirty = 0;
    memcpy(it->data, key, nkey);
    memcpy(item_value(it) + nbytes, "\r\n", 2);
    return it;
}

/* ---------------------------------------------------------------- API */

int
cache_setup(const struct cache_options *opts)
{
    if (opts == NULL || cfg.ready)
        return MCKV_EINVAL;
    cfg.item_size_max = opts->item_size_max;
    cfg.cas_enabled = opts->cas_enabled;
    cfg.persistent = opts->persistent && opts->on_change != NULL;
    cfg.on_change = opts->on_change;
    atomic_store(&complete, true);
    atomic_store(&stubs_now, 0);
    atomic_store(&tombstones_now, 0);
    atomic_store(&mem_used, 0);
    atomic_store(&mem_limit, opts->memory_limit);
    atomic_store(&cas_next, 1);
    atomic_store(&flush_time, 0);
    atomic_store(&flush_cas, 0);

    /* memcached's rule: the clock starts at CLOCK_START so that rel time 1
     * (expired at once) is always in the past. */
    process_started = time(NULL) - CLOCK_START;
    atomic_store(&clock_base, monotonic_seconds() - CLOCK_START);
    atomic_store(&clock_current, CLOCK_START);

    for (unsigned i = 0; i < CACHE_SHARDS; i++) {
        struct shard *s = &shards[i];
        memset(s, 0, sizeof(*s));
        pthread_mutex_init(&s->lock, NULL);
        s->hashpower = HASH_INITIAL_POWER;
        s->buckets = calloc((size_t)1 << HASH_INITIAL_POWER, sizeof(*s->buckets));
        if (s->buckets == NULL) {
            log_error("cache: cannot allocate the hash table");
            pthread_mutex_destroy(&s->lock);
            while (i-- > 0) {
                free(shards[i].buckets);
                pthread_mutex_destroy(&shards[i].lock);
            }
            return MCKV_ENOMEM;
        }
        s->table_bytes = ((size_t)1 << HASH_INITIAL_POWER) * sizeof(*s->buckets);
        atomic_fetch_add(&mem_used, s->table_bytes);
    }
    cfg.ready = true;
    return MCKV_OK;
}

void
cache_teardown(void)
{
    if (!cfg.ready)
        return;
    for (unsigned i = 0; i < CACHE_SHARDS; i++) {
        struct shard *s = &shards[i];
        pthread_mutex_lock(&s->lock);
        while (s->lru_head != NULL)
            item_unlink_locked(s, s->lru_head);
        free(s->buckets);
        free(s->old_buckets);
        free(s->retired);
        s->buckets = s->old_buckets = s->retired = NULL;
        pthread_mutex_unlock(&s->lock);
        pthread_mutex_destroy(&s->lock);
    }
    atomic_store(&mem_used, 0);
    cfg.ready = false;
}

void
cache_set_memory_limit(size_t bytes)
{
    atomic_store_explicit(&mem_limit, bytes, memory_order_relaxed);
}

struct item *
cache_item_alloc(const char *key, uint8_t nkey, uint32_t flags,
                 rel_time_t exptime, uint32_t nbytes, bool *too_large)
{
    bool dummy;
    if (too_large == NULL)
        too_large = &dummy;
    *too_large = false;
    return item_create(key, nkey, hash_murmur3_32(key, nkey, HASH_SEED),
                       flags, exptime, nbytes, too_large, true);
}

void
cache_item_release(struct item *it)
{
    if (it != NULL)
        item_unref(it);
}

size_t
cache_item_total_size(const struct item *it)
{
    return item_usable(it);
}

/*
 * The second half of a read-modify-write (append, prepend, incr, decr):
 * links `nu` in place of `old` if `old` is still the live linked version
 * (keeping the expiry a touch may have set since), and reports the change.
 * Returns false when something else changed the key first: start again.
 */
static bool
replace_if_current(struct shard *s, struct item *old, struct item *nu,
                   uint64_t *cas_out)
{
    bool done = false;
    rel_time_t now = op_now();
    struct item *changed = NULL;
    shard_lock(s);
    if ((old->iflags & ITEM_LINKED) && !item_is_flushed(old, now) &&
        !item_is_expired(old, now)) {
        item_set_exptime(nu, item_exptime(old));
        item_replace_locked(s, old, nu, now);
        if (cas_out != NULL)
            *cas_out = nu->cas;
        changed = mark_dirty(nu);
        done = true;
    }
    shard_unlock(s);
    change_put(changed);
    return done;
}

/*
 * append/prepend: builds old + data (or data + old) outside the lock and
 * links it if `old` is still the linked item, else starts again.
 */
static enum cache_result
store_concat(struct item *it, bool append, uint64_t cas_in, uint64_t *cas_out)
{
    struct shard *s = &shards[shard_index(it->hv)];
    for (;;) {
        rel_time_t now = op_now();
        enum cache_miss why;
        shard_lock(s);
        struct item *old = find_live(s, item_key(it), it->nkey, it->hv, now, &why);
        if (needs_fetch(old, why)) {
            shard_unlock(s);
            return CACHE_NEED_FETCH;
        }
        if (old == NULL) {
            shard_unlock(s);
            return CACHE_NOT_STORED;
        }
        if (cas_in != 0 && old->cas != cas_in) {
            shard_unlock(s);
            return CACHE_EXISTS;
        }
        item_ref(old);
        /* An access: and it keeps `old` off the tail while we allocate. */
        lru_bump(s, old);
        shard_unlock(s);

        uint64_t total = (uint64_t)old->nbytes + it->nbytes;
        bool too_large = total > UINT32_MAX;
        struct item *nu = too_large ? NULL
            : item_create(item_key(it), it->nkey, it->hv, old->flags,
                          item_exptime(old),
                          (uint32_t)total, &too_large, true);
        if (nu == NULL) {
            item_unref(old);
            return too_large ? CACHE_E2BIG : CACHE_ENOMEM;
        }
        const struct item *first = append ? old : it;
        const struct item *second = append ? it : old;
        memcpy(item_value(nu), first->data + first->nkey, first->nbytes);
        memcpy(item_value(nu) + first->nbytes, second->data + second->nkey,
               second->nbytes);

        bool done = replace_if_current(s, old, nu, cas_out);
        item_unref(old);
        item_unref(nu);
        if (done)
            return CACHE_STORED;
    }
}

enum cache_result
cache_store(struct item *it, enum cache_store_op op, uint64_t cas_in,
            uint64_t *cas_out)
{
    if (op == CACHE_APPEND || op == CACHE_PREPEND)
        return store_concat(it, op == CACHE_APPEND, cas_in, cas_out);

    /* memcached's binary protocol turns a set/add/replace that carries a
     * CAS into a cas command. */
    bool cas_check = op == CACHE_CAS || cas_in != 0;
    struct shard *s = &shards[shard_index(it->hv)];
    rel_time_t now = op_now();
    enum cache_result res;

    shard_lock(s);
    if (it->iflags & ITEM_LINKED) { /* caller bug: already linked */
        shard_unlock(s);
        return CACHE_NOT_STORED;
    }
    enum cache_miss why;
    struct item *old = find_live(s, item_key(it), it->nkey, it->hv, now, &why);
    if (needs_fetch(old, why) && (op != CACHE_SET || cas_check)) {
        /* add/replace/cas must know whether the key exists on disk; a
         * plain set does not care (a stub is simply replaced). */
        shard_unlock(s);
        return CACHE_NEED_FETCH;
    }
    if (old != NULL) {
        if (cas_check) {
            /* cas_in 0, or any cas_in with CAS off (items hold 0), is a
             * mismatch, as in memcached. */
            res = cas_in != 0 && old->cas == cas_in ? CACHE_STORED : CACHE_EXISTS;
        } else if (op == CACHE_ADD) {
            lru_bump(s, old); /* memcached bumps the item add failed on */
            res = CACHE_NOT_STORED;
        } else {
            res = CACHE_STORED; /* set, replace */
        }
        if (res == CACHE_STORED)
            item_replace_locked(s, old, it, now);
    } else if (cas_check) {
        res = CACHE_NOT_FOUND;
    } else if (op == CACHE_REPLACE) {
        res = CACHE_NOT_STORED;
    } else {
        item_link_locked(s, it, now); /* set, add */
        res = CACHE_STORED;
    }
    if (res == CACHE_STORED && cas_out != NULL)
        *cas_out = it->cas;
    struct item *changed = res == CACHE_STORED ? mark_dirty(it) : NULL;
    shard_unlock(s);
    change_put(changed);
    return res;
}

static struct item *
get_common(const char *key, uint8_t nkey, bool touch, rel_time_t exptime,
           enum cache_miss *why)
{
    uint32_t hv = hash_murmur3_32(key, nkey, HASH_SEED);
    struct shard *s = &shards[shard_index(hv)];
    rel_time_t now = op_now();

    enum cache_miss reason;
    struct item *changed = NULL;
    shard_lock(s);
    struct item *it = find_live(s, key, nkey, hv, now, &reason);
    if (it != NULL && (it->iflags & ITEM_STUB)) {
        lru_bump(s, it);
        reason = CACHE_MISS_ON_DISK;
        it = NULL;
    }
    if (it != NULL) {
        if (touch) {
            item_set_exptime(it, exptime);
            changed = mark_dirty(it);   /* the new expiry persists */
        }
        it->iflags |= ITEM_FETCHED;
        lru_bump(s, it);
        item_ref(it);
    }
    shard_unlock(s);
    change_put(changed);
    if (why != NULL)
        *why = reason;
    return it;
}

struct item *
cache_get(const char *key, uint8_t nkey, enum cache_miss *why)
{
    return get_common(key, nkey, false, 0, why);
}

struct item *
cache_get_touch(const char *key, uint8_t nkey, rel_time_t exptime,
                enum cache_miss *why)
{
    return get_common(key, nkey, true, exptime, why);
}

enum cache_result
cache_touch(const char *key, uint8_t nkey, rel_time_t exptime)
{
    enum cache_miss why;
    struct item *it = get_common(key, nkey, true, exptime, &why);
    if (it == NULL)
        return why == CACHE_MISS_ON_DISK ? CACHE_NEED_FETCH : CACHE_NOT_FOUND;
    item_unref(it);
    return CACHE_TOUCHED;
}

/* A tombstone for `key`, not linked. Accounted without the limit check:
 * it replaces a deleted item, or marks a key the disk does not hold, and
 * lives only while warmup runs. */
static struct item *
tombstone_alloc(const char *key, uint8_t nkey)
{
    return keyonly_alloc(key, nkey, hash_murmur3_32(key, nkey, HASH_SEED),
                         ITEM_TOMBSTONE);
}

enum cache_result
cache_delete(const char *key, uint8_t nkey, uint64_t cas_in)
{
    uint32_t hv = hash_murmur3_32(key, nkey, HASH_SEED);
    struct shard *s = &shards[shard_index(hv)];
    rel_time_t now = op_now();
    enum cache_result res;

    /* While warmup runs, the deleted key must read "absent" rather than
     * "maybe on disk", or warmup would install the old version from disk.
     * The tombstone takes the key's place in the same critical section as
     * the unlink: installed after the lock was dropped, it would leave a
     * window in which cache_install() sees no key and revives it. */
    struct item *tomb = NULL;
    if (!atomic_load_explicit(&complete, memory_order_relaxed))
        tomb = tombstone_alloc(key, nkey);

    enum cache_miss why;
    shard_lock(s);
    struct item *it = find_live(s, key, nkey, hv, now, &why);
    if (it == NULL && why == CACHE_MISS_ON_DISK) {
        res = CACHE_NEED_FETCH;
    } else if (it == NULL) {
        res = CACHE_NOT_FOUND;
    } else if (cas_in != 0 && it->cas != cas_in) {
        res = CACHE_EXISTS;
    } else {
        item_unlink_locked(s, it);
        if (tomb != NULL)
            item_link_common(s, tomb, now, true);
        res = CACHE_DELETED;
    }
    shard_unlock(s);
    if (tomb != NULL)
        item_unref(tomb);
    if (res == CACHE_DELETED)
        change_del(key, nkey);
    return res;
}

/*
 * memcached's safe_strtoull() on a value that is not NUL-terminated (the
 * "\r\n" after it reads as whitespace there): optional leading whitespace,
 * an optional sign, digits that fit in 64 bits, then whitespace or the end.
 * A '-' is accepted only when the negated result does not look negative as
 * a signed number (so "-0" is 0 and "-1" is refused), exactly as memcached.
 */
static bool
value_parse_u64(const char *p, size_t n, uint64_t *out)
{
    size_t i = 0;
    while (i < n && (p[i] == ' ' || (p[i] >= '\t' && p[i] <= '\r')))
        i++;
    bool negative = false;
    if (i < n && (p[i] == '+' || p[i] == '-')) {
        negative = p[i] == '-';
        i++;
    }
    size_t digits_start = i;
    uint64_t v = 0;
    while (i < n && p[i] >= '0' && p[i] <= '9') {
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false; /* ERANGE */
        v = v * 10 + d;
        i++;
    }
    if (i == digits_start)
        return false;
    if (i < n && !(p[i] == ' ' || (p[i] >= '\t' && p[i] <= '\r')))
        return false;
    if (negative) {
        v = 0 - v;
        if ((int64_t)v < 0)
            return false;
    }
    *out = v;
    return true;
}

enum cache_result
cache_delta(const char *key, uint8_t nkey, bool incr, uint64_t delta,
            uint64_t cas_in, uint64_t *value_out, uint64_t *cas_out)
{
    uint32_t hv = hash_murmur3_32(key, nkey, HASH_SEED);
    struct shard *s = &shards[shard_index(hv)];

    for (;;) {
        rel_time_t now = op_now();
        shard_lock(s);
        enum cache_miss why;
        struct item *old = find_live(s, key, nkey, hv, now, &why);
        if (needs_fetch(old, why)) {
            shard_unlock(s);
            return CACHE_NEED_FETCH;
        }
        enum cache_result res = CACHE_STORED;
        uint64_t value = 0;
        if (old == NULL)
            res = CACHE_NOT_FOUND;
        else if (old->nbytes == 0)
            res = CACHE_NON_NUMERIC;
        else if (cas_in != 0 && old->cas != cas_in)
            res = CACHE_EXISTS;
        else if (!value_parse_u64(item_value(old), old->nbytes, &value))
            res = CACHE_NON_NUMERIC;
        if (res != CACHE_STORED) {
            shard_unlock(s);
            return res;
        }
        item_ref(old);
        lru_bump(s, old); /* keeps it off the tail while we allocate */
        shard_unlock(s);

        if (incr)
            value += delta; /* wraps at 2^64 */
        else
            value = delta > value ? 0 : value - delta;
        char buf[24];
        int len = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)value);
        /* memcached rewrites a number that got no longer in place, padded
         * with spaces ("110" decr 100 reads back as "10 "); clients see
         * that, so the new item keeps the old length the same way. */
        uint32_t vlen = (uint32_t)len <= old->nbytes ? old->nbytes : (uint32_t)len;

        bool too_large = false;
        struct item *nu = item_create(key, nkey, hv, old->flags,
                                      item_exptime(old), vlen, &too_large, true);
        if (nu == NULL) {
            item_unref(old);
            return CACHE_ENOMEM;
        }
        memcpy(item_value(nu), buf, (size_t)len);
        memset(item_value(nu) + len, ' ', vlen - (uint32_t)len);

        bool done = replace_if_current(s, old, nu, cas_out);
        if (done && value_out != NULL)
            *value_out = value;
        item_unref(old);
        item_unref(nu);
        if (done)
            return CACHE_STORED;
    }
}

void
cache_flush(rel_time_t when)
{
    rel_time_t now = cache_now();
    pthread_mutex_lock(&flush_lock);
    if (!cfg.cas_enabled) {
        /* memcached -C: items stored at or before `when` (this second for
         * an immediate flush) die once `when` is reached. */
        atomic_store_explicit(&flush_time, when <= now ? now : when,
                              memory_order_release);
    } else if (when <= now) {
        /* An immediate flush supersedes a pending delayed one, as in
         * memcached. */
        flush_now_locked();
    } else {
        atomic_store_explicit(&flush_time, when, memory_order_release);
    }
    pthread_mutex_unlock(&flush_lock);
}

void
cache_stats(struct cache_stats *out)
{
    memset(out, 0, sizeof(*out));
    rel_time_t now = cache_now();
    for (unsigned i = 0; i < CACHE_SHARDS; i++) {
        struct shard *s = &shards[i];
        pthread_mutex_lock(&s->lock);
        const struct shard_stats *st = &s->st;
        out->curr_items += st->curr_items;
        out->total_items += st->total_items;
        out->bytes += st->bytes;
        out->value_bytes += st->value_bytes;
        out->evictions += st->evictions;
        out->reclaimed += st->reclaimed;
        out->expired_unfetched += st->expired_unfetched;
        out->evicted_unfetched += st->evicted_unfetched;
        out->hash_bytes += s->table_bytes;
        out->hash_buckets += (uint64_t)1 << s->hashpower;
        if (s->old_buckets != NULL) {
            out->hash_buckets += (uint64_t)1 << s->old_hashpower;
            out->hash_is_expanding = true;
        }
        for (unsigned c = 0; c < CACHE_SIZE_CLASSES; c++) {
            out->class_items[c] += st->class_items[c];
            out->class_bytes[c] += st->class_bytes[c];
            out->class_evictions[c] += st->class_evictions[c];
        }
        /* Age of each class's least recently used item, looking at the
         * last STATS_TAIL_SCAN items of the LRU only (bounded hold time). */
        unsigned scanned = 0;
        for (struct item *it = s->lru_tail; it != NULL && scanned < STATS_TAIL_SCAN;
             it = it->lru_prev, scanned++) {
            unsigned c = size_class(item_usable(it));
            rel_time_t age = now > it->time ? now - it->time : 0;
            if (age > out->class_oldest[c])
                out->class_oldest[c] = age;
        }
        pthread_mutex_unlock(&s->lock);
    }
    out->limit_maxbytes = atomic_load_explicit(&mem_limit, memory_order_relaxed);
}

void
cache_stats_reset(void)
{
    for (unsigned i = 0; i < CACHE_SHARDS; i++) {
        struct shard *s = &shards[i];
        pthread_mutex_lock(&s->lock);
        s->st.total_items = 0;
        s->st.evictions = 0;
        s->st.reclaimed = 0;
        s->st.expired_unfetched = 0;
        s->st.evicted_unfetched = 0;
        memset(s->st.class_evictions, 0, sizeof(s->st.class_evictions));
        pthread_mutex_unlock(&s->lock);
    }
}

/* ---------------------------------------------------------------- persistence */

struct item *
cache_item_alloc_noevict(const char *key, uint8_t nkey, uint32_t flags,
                         rel_time_t exptime, uint32_t nbytes)
{
    bool too_large = false;
    return item_create(key, nkey, hash_murmur3_32(key, nkey, HASH_SEED),
                       flags, exptime, nbytes, &too_large, false);
}

enum cache_result
cache_install(struct item *it)
{
    struct shard *s = &shards[shard_index(it->hv)];
    rel_time_t now = op_now();
    enum cache_result res = CACHE_NOT_STORED;

    if (item_is_expired(it, now))
        return CACHE_NOT_STORED;
    shard_lock(s);
    struct item *old = hash_find(s, item_key(it), it->nkey, it->hv);
    if (old != NULL && (old->iflags & ITEM_STUB) && old->cas == it->cas) {
        rel_time_t t = old->time;
        item_unlink_locked(s, old);
        item_link_common(s, it, now, true);
        it->time = t;
        res = CACHE_STORED;
    } else if (old == NULL && !atomic_load_explicit(&complete, memory_order_relaxed)) {
        item_link_common(s, it, now, true);
        res = CACHE_STORED;
    } else if (old != NULL && old->iflags & ITEM_STUB) {
        /* a stub of another version: the disk read raced a newer write */
    }
    shard_unlock(s);
    return res;
}

void
cache_install_absent(const char *key, uint8_t nkey)
{
    if (atomic_load_explicit(&complete, memory_order_relaxed))
        return;
    struct item *t = tombstone_alloc(key, nkey);
    if (t == NULL)
        return;
    struct shard *s = &shards[shard_index(t->hv)];
    rel_time_t now = op_now();
    shard_lock(s);
    struct item *old = hash_find(s, key, nkey, t->hv);
    if (old == NULL)
        item_link_common(s, t, now, true);
    shard_unlock(s);
    item_unref(t);
}

void
cache_item_clean(struct item *it)
{
    struct shard *s = &shards[shard_index(it->hv)];
    pthread_mutex_lock(&s->lock);
    if (it->dirty > 0)
        it->dirty--;
    pthread_mutex_unlock(&s->lock);
}

bool
cache_item_is_current(struct item *it)
{
    struct shard *s = &shards[shard_index(it->hv)];
    pthread_mutex_lock(&s->lock);
    bool linked = (it->iflags & ITEM_LINKED) != 0;
    pthread_mutex_unlock(&s->lock);
    return linked;
}

bool
cache_key_present(const char *key, uint8_t nkey)
{
    uint32_t hv = hash_murmur3_32(key, nkey, HASH_SEED);
    struct shard *s = &shards[shard_index(hv)];
    pthread_mutex_lock(&s->lock);
    struct item *it = hash_find(s, key, nkey, hv);
    bool present = it != NULL && !(it->iflags & ITEM_TOMBSTONE);
    pthread_mutex_unlock(&s->lock);
    return present;
}

void
cache_set_cas_floor(uint64_t floor)
{
    uint64_t cur = atomic_load(&cas_next);
    while (cur <= floor && !atomic_compare_exchange_weak(&cas_next, &cur, floor + 1))
        ;
}

uint64_t
cache_cas_high(void)
{
    return atomic_load_explicit(&cas_next, memory_order_relaxed) - 1;
}

void
cache_reserve(uint64_t items)
{
    /* no more than memory_limit could hold in the smallest items */
    uint64_t most = atomic_load(&mem_limit) / (offsetof(struct item, data) + 16);
    if (items > most)
        items = most;
    uint64_t per_shard = items / CACHE_SHARDS + 1;
    uint32_t power = HASH_INITIAL_POWER;
    while (power < HASH_MAX_POWER && ((uint64_t)1 << power) < per_shard)
        power++;
    for (unsigned i = 0; i < CACHE_SHARDS; i++)
        (void)shard_expand(&shards[i], i, power);
}

void
cache_set_complete(bool value)
{
    atomic_store(&complete, value);
}

bool
cache_is_complete(void)
{
    return atomic_load(&complete);
}

uint64_t
cache_ejected_items(void)
{
    return atomic_load_explicit(&stubs_now, memory_order_relaxed);
}
