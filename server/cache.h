/*
 * cache.h: the in-memory item store shared by all worker threads.
 *
 * Shape: the key space is split into CACHE_SHARDS shards by hash. A shard is
 * a mutex, a chained hash table that grows incrementally (a resize moves a
 * few buckets per operation, so no request waits for a whole rehash) and an
 * LRU list. Memory is accounted globally (malloc_usable_size of each item
 * plus the bucket arrays); an allocation that would pass memory_limit evicts
 * from the tail of its shard's LRU first (then from other shards), so the
 * total stays under the limit.
 *
 * Items are immutable once linked: every mutation (append, incr, ...) links a
 * new item in place of the old one. Only exptime may change in place (touch),
 * and it is an atomic. Readers hold a reference (refcount) while they use an
 * item, so an item unlinked or evicted under them stays valid until released.
 * This is what lets later stages (the persistence queue) reference items
 * instead of copying them.
 *
 * Time: rel_time_t counts seconds since the server started (starting at 2,
 * so 1 is always in the past), advanced by cache_clock_tick() from the
 * listener once per second. Expiry follows memcached: 0 = never, negative =
 * already expired, up to 30 days = relative, else absolute unix time.
 *
 * All functions are thread-safe unless noted.
 */
#ifndef MCKV_SERVER_CACHE_H
#define MCKV_SERVER_CACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef uint32_t rel_time_t;

#define CACHE_SHARDS 64
#define ITEM_LINKED 0x01u   /* in the hash table and LRU */

struct item {
    struct item *h_next;          /* hash chain */
    struct item *lru_prev;        /* towards the head (most recent) */
    struct item *lru_next;        /* towards the tail (least recent) */
    uint64_t cas;
    _Atomic rel_time_t exptime;   /* 0 = never; changed in place by touch */
    rel_time_t time;              /* when it was stored (flush_all delay) */
    rel_time_t atime;             /* last access (mg l, metadump la=); shard lock */
    uint32_t flags;               /* client flags */
    uint32_t nbytes;              /* value length, without the "\r\n" */
    uint32_t hv;                  /* hash of the key */
    atomic_uint refcount;         /* one for the table while linked + readers */
    uint8_t nkey;
    uint8_t iflags;               /* ITEM_LINKED; guarded by the shard lock */
    uint16_t dirty;               /* queued writes not yet committed (shard lock) */
    char data[];                  /* key, then value, then "\r\n" */
};

static inline const char *item_key(const struct item *it) { return it->data; }
/* The value: nbytes bytes followed by "\r\n" (so text replies can send both
 * in one iovec). Writable only between cache_item_alloc() and linking. */
static inline char *item_value(struct item *it) { return it->data + it->nkey; }

/*
 * Persistence hook (cache_options.on_change), called on the thread that
 * made the change, after the shard lock is dropped, in the order changes
 * were made on that thread:
 *   CACHE_CHANGE_PUT: `item` was linked (or touched) and counted dirty; the
 *     callee owns one reference to it and must later call
 *     cache_item_clean() and release it.
 *   CACHE_CHANGE_DEL: key/nkey was deleted.
 *   CACHE_CHANGE_FLUSH: every item with cas < cas_below is gone.
 */
enum cache_change_kind { CACHE_CHANGE_PUT, CACHE_CHANGE_DEL, CACHE_CHANGE_FLUSH };
struct cache_change {
    enum cache_change_kind kind;
    struct item *item;
    const char *key;
    uint8_t nkey;
    uint64_t cas_below;
};

struct cache_options {
    size_t memory_limit;      /* bytes of item memory */
    uint32_t item_size_max;   /* largest value + key + header accepted */
    bool cas_enabled;         /* false: every CAS is 0 (memcached -C) */
    /* Persistent engine: dirty items are never evicted; clean ones lose
     * their value (an "ejected" stub keeps key and metadata) instead of
     * being dropped; keys not in memory may be on disk while the cache is
     * not complete (warmup). on_change is called for every mutation. */
    bool persistent;
    void (*on_change)(const struct cache_change *change);
};

/* Starts the cache. Main thread, before workers start. 0 or mckv_status. */
int cache_setup(const struct cache_options *opts);
/* Frees every item. Main thread, after workers stopped. */
void cache_teardown(void);
/* Changes the memory limit live; shrinking evicts on later allocations. */
void cache_set_memory_limit(size_t bytes);

/* ---- time ---- */
/* Seconds since start (see above). */
rel_time_t cache_now(void);
/* Unix time of rel_time_t 0. */
time_t cache_process_started(void);
/* Advances the clock; listener thread, once a second. */
void cache_clock_tick(void);
/* Converts a client exptime with memcached's rule; negative -> 1 (expired). */
rel_time_t cache_realtime(int64_t exptime);
/* Turns a rel_time_t back into unix time (0 stays 0). */
time_t cache_rel_to_unix(rel_time_t t);

/* ---- items ---- */
/*
 * Allocates an unlinked item with refcount 1, key copied, value space of
 * nbytes + 2 with "\r\n" already written at the end. May evict to make room.
 * Returns NULL when the item is larger than item_size_max (*too_large set)
 * or memory cannot be found (*too_large clear).
 */
struct item *cache_item_alloc(const char *key, uint8_t nkey, uint32_t flags,
                              rel_time_t exptime, uint32_t nbytes,
                              bool *too_large);
/* Drops a reference; frees the item when it was the last and unlinked. */
void cache_item_release(struct item *it);
/* Total bytes the item accounts for (used by tests and stats). */
size_t cache_item_total_size(const struct item *it);

enum cache_store_op {
    CACHE_SET, CACHE_ADD, CACHE_REPLACE, CACHE_APPEND, CACHE_PREPEND, CACHE_CAS,
};

enum cache_result {
    CACHE_STORED,
    CACHE_NOT_STORED,   /* add: exists; replace/append/prepend: missing */
    CACHE_EXISTS,       /* cas mismatch */
    CACHE_NOT_FOUND,    /* cas/delete/touch/delta: no such key */
    CACHE_DELETED,
    CACHE_TOUCHED,
    CACHE_NON_NUMERIC,  /* incr/decr on a value that is not a number */
    CACHE_ENOMEM,       /* no memory for the new item */
    CACHE_E2BIG,        /* append/prepend result too large */
    CACHE_NEED_FETCH,   /* the answer depends on a value on disk: fetch, retry */
};

/*
 * Links `it` (from cache_item_alloc, value filled) according to op.
 * cas_in: for CACHE_CAS the expected CAS; for the other ops a non-zero
 * cas_in must match the current item's CAS too (binary protocol semantics:
 * a SET with CAS fails with EXISTS, or NOT_FOUND when the key is missing).
 * On CACHE_STORED *cas_out holds the new CAS. For APPEND/PREPEND `it` holds
 * only the data to add; a combined item is linked instead (flags and exptime
 * of the old item are kept). The caller keeps its reference to `it` either
 * way and releases it.
 */
enum cache_result cache_store(struct item *it, enum cache_store_op op,
                              uint64_t cas_in, uint64_t *cas_out);

/*
 * Looks a key up. Returns a referenced item (release it) or NULL. Expired
 * or flushed items are unlinked on the way and reported through *expired
 * (may be NULL) for the get_expired / get_flushed stats.
 */
enum cache_miss {
    CACHE_MISS_ABSENT, CACHE_MISS_EXPIRED, CACHE_MISS_FLUSHED,
    CACHE_MISS_ON_DISK,   /* may be on disk: fetch it (cache_install) and retry */
};
struct item *cache_get(const char *key, uint8_t nkey, enum cache_miss *why);

/* Like cache_get, and sets the item's exptime (gat, gats, GAT*). */
struct item *cache_get_touch(const char *key, uint8_t nkey, rel_time_t exptime,
                             enum cache_miss *why);

/* touch: CACHE_TOUCHED or CACHE_NOT_FOUND. */
enum cache_result cache_touch(const char *key, uint8_t nkey, rel_time_t exptime);

/* delete: CACHE_DELETED, CACHE_NOT_FOUND, or CACHE_EXISTS (cas_in != 0 and
 * it does not match). */
enum cache_result cache_delete(const char *key, uint8_t nkey, uint64_t cas_in);

/*
 * incr/decr. On CACHE_STORED *value_out is the new value and *cas_out its
 * CAS. incr wraps at 2^64; decr stops at 0 (memcached rules). cas_in != 0
 * must match (else CACHE_EXISTS). CACHE_NOT_FOUND when missing (the caller
 * creates the initial value with cache_store(CACHE_ADD) when the protocol
 * asks for it), CACHE_NON_NUMERIC when the value is not a decimal number of
 * at most 20 digits.
 */
enum cache_result cache_delta(const char *key, uint8_t nkey, bool incr,
                              uint64_t delta, uint64_t cas_in,
                              uint64_t *value_out, uint64_t *cas_out);

/* flush_all: invalidates every item stored at or before `when` once `when`
 * is reached (when <= now: at once). */
void cache_flush(rel_time_t when);

/* ---- persistence (cache_options.persistent) ---- */
/* Like cache_item_alloc, but fails instead of evicting (warmup). */
struct item *cache_item_alloc_noevict(const char *key, uint8_t nkey,
                                      uint32_t flags, rel_time_t exptime,
                                      uint32_t nbytes);
/*
 * Links an item read from disk (fetcher or warmup thread), keeping the
 * it->cas the caller set: in place of an ejected stub of the same CAS, or
 * where the key is absent while the cache is incomplete. Anything newer in
 * memory wins (returns CACHE_NOT_STORED). The item is clean.
 */
enum cache_result cache_install(struct item *it);
/* A fetch found nothing on disk: remember the key as absent (incomplete
 * cache only) so the request that waited for it can finish. */
void cache_install_absent(const char *key, uint8_t nkey);
/* Flusher: one queued write of `it` is committed (or dropped). */
void cache_item_clean(struct item *it);
/* Flusher: true while `it` is the linked version of its key. */
bool cache_item_is_current(struct item *it);
/* Flusher: true when the key has a live value or stub in memory. */
bool cache_key_present(const char *key, uint8_t nkey);
/* Start-up: CAS values handed out from now on exceed `floor`. */
void cache_set_cas_floor(uint64_t floor);
/* The highest CAS handed out so far. */
uint64_t cache_cas_high(void);
/* Sizes the hash tables for about `items` items (one per bucket) before a
 * bulk load such as the warmup, which would otherwise grow them one
 * doubling at a time: every doubling moves each item again, and while a
 * migration lags lookups walk long chains. Capped by what memory_limit can
 * hold; a shard that is already expanding or big enough is left alone.
 * Any thread, no lock held. */
void cache_reserve(uint64_t items);

/* The cache holds every key of the disk (warmup done, no stub dropped). */
void cache_set_complete(bool complete);
bool cache_is_complete(void);
/* Items whose value is on disk only (stubs), and stubs dropped. */
uint64_t cache_ejected_items(void);

/* ---- stats ---- */
#define CACHE_SIZE_CLASSES 24   /* powers of two from 64 bytes up */
struct cache_stats {
    uint64_t curr_items;
    uint64_t total_items;
    uint64_t bytes;            /* item bytes accounted (malloc_usable_size) */
    uint64_t value_bytes;      /* key + value bytes the clients stored */
    uint64_t hash_bytes;       /* bucket arrays */
    uint64_t hash_buckets;
    uint64_t evictions;        /* live items dropped for memory */
    uint64_t reclaimed;        /* expired/flushed items whose memory was reused */
    uint64_t expired_unfetched;
    uint64_t evicted_unfetched;
    uint64_t limit_maxbytes;
    bool hash_is_expanding;
    /* per size class (bucket i holds items with total size <= 64 << i) */
    uint64_t class_items[CACHE_SIZE_CLASSES];
    uint64_t class_bytes[CACHE_SIZE_CLASSES];
    uint64_t class_evictions[CACHE_SIZE_CLASSES];
    rel_time_t class_oldest[CACHE_SIZE_CLASSES]; /* age of LRU tail, seconds */
};

/* Sums every shard (takes each shard lock briefly). */
void cache_stats(struct cache_stats *out);
/* Zeroes the resettable counters (evictions, reclaimed, total_items...). */
void cache_stats_reset(void);

#endif
