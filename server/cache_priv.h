/*
 * cache_priv.h: what the pieces of the cache share (contract of the whole
 * in cache.h). Included by server/cache*.c and by their unit tests only.
 *
 * The pieces, each depending only on those listed after it:
 *
 *   cache.c        setup, teardown and stats: the module's front
 *   cache_walk.c   admin views: one item's metadata, a walk of all
 *   cache_get.c    get, get-and-touch, touch, mg
 *   cache_delta.c  incr/decr (ma)
 *   cache_store.c  store in every mode (ms)
 *   cache_delete.c delete, md invalidation
 *   cache_ops.c    what the commands share: lookup, versioned replace
 *   cache_alloc.c  item and table allocation under the limit; growth
 *   cache_install.c values and absences read from disk enter the cache
 *   cache_evict.c  eviction from the LRU tails, ejection to stubs
 *   cache_disk.c   stubs, tombstones, install from disk, completeness,
 *                  the persistence hook
 *   cache_filter.c which keys may be on disk (a Bloom filter per shard)
 *   cache_shard.c  shards: hash tables, incremental migration, LRU lists,
 *                  link and unlink
 *   cache_item.c   item memory: accounting, rounding, refcounts
 *   cache_clock.c  rel time, realtime(), the CAS counter, flush_all marks
 *   util/hash.c    the key hash
 *
 * Locks: one mutex per shard (struct shard) and flush_lock inside
 * cache_clock.c; a thread holds at most one shard lock, and nothing that
 * allocates an item under the limit (alloc_item()) runs while one is held,
 * because it may evict, and eviction takes shard locks.
 */
#ifndef MCKV_SERVER_CACHE_PRIV_H
#define MCKV_SERVER_CACHE_PRIV_H

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/cache.h"
#include "util/bloom.h"
#include "util/hash.h"

#define CACHE_SHARD_BITS 6
_Static_assert((1u << CACHE_SHARD_BITS) == CACHE_SHARDS,
               "CACHE_SHARD_BITS must match CACHE_SHARDS");

#define HASH_INITIAL_POWER 7       /* 128 buckets per shard at start */
#define HASH_MAX_POWER (32 - CACHE_SHARD_BITS) /* keeps bucket bits apart */
#define HASH_MIGRATE_PER_OP 4      /* old buckets moved per locked operation */
#define HASH_SEED 0x6d636b76u      /* "mckv" */
#define CLOCK_START 2              /* rel time at start: 1 is always past */

/* Private iflags bits, next to the public ITEM_LINKED; shard lock. */
#define ITEM_FETCHED 0x02u         /* read at least once since linked */
#define ITEM_STUB 0x04u            /* value ejected: it is on disk only */
#define ITEM_TOMBSTONE 0x08u       /* known absent while the cache is incomplete */
#define ITEM_TOKEN_SENT 0x10u      /* a client won the right to recache (mg W) */
#define ITEM_STALE 0x20u           /* invalidated (md I, ms I): mg says X */
#define ITEM_KEY_BINARY 0x40u      /* the key came base64-encoded (meta b) */
#define ITEM_CAS_EXPLICIT 0x80u    /* CAS set by the client (E), not the counter */
/* The meta state memcached keeps when it changes an item in place (touch,
 * an incr that fits, md I): a new version made for such a change keeps it,
 * and so do a stub and the value fetched back into it. */
#define ITEM_META_BITS (ITEM_FETCHED | ITEM_TOKEN_SENT | ITEM_STALE | \
                        ITEM_KEY_BINARY)

/* ---------------------------------------------------------------- shards */

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
    /* the live item evicted last in each class: its age then, and when */
    rel_time_t class_evicted_time[CACHE_SIZE_CLASSES];
    rel_time_t class_evicted_at[CACHE_SIZE_CLASSES];
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
    struct item *lru_head;     /* items with a value */
    struct item *lru_tail;
    struct item *key_head;     /* key-only items: stubs and tombstones, */
    struct item *key_tail;     /* in an LRU of their own (cache_evict.c) */
    size_t key_bytes;          /* bytes of the key-only items */
    struct shard_stats st;
    atomic_size_t lru_bytes;   /* st.bytes, readable without the lock */
    atomic_bool want_grow;     /* set under the lock, read by allocators */
    struct bloom filter;       /* keys that may be on disk (cache_filter.c) */
    uint64_t filter_negatives; /* misses the filter answered without a read */
} __attribute__((aligned(64)));

extern struct shard cache_shards[CACHE_SHARDS];

static inline uint32_t
cache_hash(const char *key, uint8_t nkey)
{
    return hash_murmur3_32(key, nkey, HASH_SEED);
}

/* A key's shard: the top bits of its hash (its bucket takes the low bits,
 * so the two choices do not correlate). */
static inline unsigned
shard_index(uint32_t hv)
{
    return hv >> (32 - CACHE_SHARD_BITS);
}

static inline struct shard *
shard_of(uint32_t hv)
{
    return &cache_shards[shard_index(hv)];
}

/* ---------------------------------------------------------------- clock
 * cache_clock.c. Besides the public cache_now() & co. */

/* Resets the clock, the CAS counter and the flush marks; cache_setup().
 * on_flush (NULL: none) is told about every flush that takes effect. */
void clock_setup(bool cas_enabled, void (*on_flush)(const struct cache_change *));
/* cache_options.flush_by_second; before other threads start. */
void clock_set_flush_by_second(bool on);
/* The time an operation works with; fires a due delayed flush first.
 * No shard lock held (it may take flush_lock and call on_flush). */
rel_time_t clock_op_now(void);
/* The CAS for an item being linked: the next counter value, or 0 with CAS
 * off. Any thread, any lock. */
uint64_t clock_next_cas(void);
bool clock_cas_enabled(void);
/* True when flush_all has invalidated `it` (see cache_clock.c); the shard
 * lock of a linked item held. */
bool clock_item_is_flushed(const struct item *it, rel_time_t now);

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

static inline bool
item_is_expired(const struct item *it, rel_time_t now)
{
    rel_time_t exptime = item_exptime(it);
    return exptime != 0 && exptime <= now;
}

/* Expired or flushed: met by an operation, it is unlinked. */
static inline bool
item_is_dead(const struct item *it, rel_time_t now)
{
    return clock_item_is_flushed(it, now) || item_is_expired(it, now);
}

/* ---------------------------------------------------------------- items
 * cache_item.c: item memory. */

/* Sets the limit and zeroes the accounting; cache_setup(). */
void mem_setup(size_t limit);
size_t mem_used_now(void);
size_t mem_limit_now(void);
/* Takes `bytes` under the limit if they fit, atomically; never evicts. */
bool mem_try_reserve(size_t bytes);
/* Counts `bytes` whatever the limit (see callers for why it is safe). */
void mem_charge(size_t bytes);
void mem_release(size_t bytes);

static inline size_t
item_usable(const struct item *it)
{
    return malloc_usable_size((void *)it);
}

/* The size class of an item of `size` bytes (cache_stats()). */
unsigned item_size_class(size_t size);
/* Heap block for an item of ntotal bytes, rounded to the chunk grid, not
 * accounted and not initialised (free() it, or account it and item_init()). */
struct item *item_malloc(size_t ntotal);
/* Fills the header of a new, unlinked item with refcount 1 and copies the
 * key; the value is left for the caller, "\r\n" written after it. */
void item_init(struct item *it, const char *key, uint8_t nkey, uint32_t hv,
               uint32_t flags, rel_time_t exptime, uint32_t nbytes);
/* An item that holds a key and no value (a stub or a tombstone), not
 * linked. Its bytes are charged without the limit check (callers say why).
 * NULL when malloc fails. */
struct item *item_keyonly_alloc(const char *key, uint8_t nkey, uint32_t hv,
                                uint8_t iflags);
/* Drops one reference; frees the item on the last. True if freed. */
bool item_unref(struct item *it);

static inline void
item_ref(struct item *it)
{
    /* Relaxed: the caller already holds a reference or the shard lock of a
     * linked item, so the count cannot reach zero under us. */
    atomic_fetch_add_explicit(&it->refcount, 1, memory_order_relaxed);
}

/* ---------------------------------------------------------------- shards
 * cache_shard.c. Every function taking a struct shard * expects its lock
 * held, except shard_lock() and the table functions that say otherwise. */

/* Allocates every shard's initial table (charged to the memory count). */
int shard_setup(void);
/* Unlinks every item and frees the tables. */
void shard_teardown(void);
/* Locks a shard and advances its expansion by one step. */
void shard_lock(struct shard *s);
/* Unlocks; frees an old table that finished migrating under the lock. */
void shard_unlock(struct shard *s);
/* The item of this key in the table (dead, stub or tombstone alike). */
struct item *shard_find(struct shard *s, const char *key, uint8_t nkey,
                        uint32_t hv);
/* Links an unlinked item: a fresh CAS unless keep_cas, stored and last
 * accessed at `now`, at the LRU head, with the iflags the caller gave it;
 * a tombstone of the same key gives way to it. Takes the table's
 * reference. */
void shard_link(struct shard *s, struct item *it, rel_time_t now, bool keep_cas);
/* Unlinks and drops the table's reference. True when that was the last
 * reference and the item is freed. */
bool shard_unlink(struct shard *s, struct item *it);
/* shard_unlink(old), then shard_link(it) with a fresh CAS. */
void shard_replace(struct shard *s, struct item *old, struct item *it,
                   rel_time_t now);
/* Moves a linked item to the LRU head (an access). */
void shard_lru_bump(struct shard *s, struct item *it);
/* No lock held: the shard's hash power, and whether it is expanding. */
uint32_t shard_hashpower(struct shard *s, bool *expanding);
/* No lock held: makes `table` (1 << power zeroed buckets, `bytes` already
 * accounted) the shard's table and starts migrating to it, if the shard
 * still has hash power `seen` and is not expanding. False otherwise: the
 * caller still owns the table. */
bool shard_install_table(struct shard *s, uint32_t seen, struct item **table,
                         uint32_t power, size_t bytes);
/* Stubs and tombstones linked now, over all shards. Any thread. */
uint64_t shard_stubs_now(void);
uint64_t shard_tombstones_now(void);

/* ---------------------------------------------------------------- disk
 * cache_disk.c: what the cache knows about the persistent engine. */

/* persistent: cache_options.persistent with an on_change hook. */
void disk_setup(bool persistent, void (*on_change)(const struct cache_change *));
bool disk_persistent(void);
/* True while every key of the disk is in memory (see cache_set_complete). */
bool disk_complete(void);
/* A stub was dropped: keys missing from memory may be on disk again. */
void disk_set_incomplete(void);
/* A stub in place of a clean item being ejected, not linked (NULL: no
 * memory). Its bytes are charged without the limit check: the item it
 * replaces frees more. */
struct item *disk_stub_create(const struct item *it);
/* Replaces the linked clean item `it` by its stub (it is freed unless a
 * reader holds it). False when no memory for the stub: nothing changed. */
bool disk_eject(struct shard *s, struct item *it, rel_time_t now);
/* A tombstone for `key`, not linked. Charged without the limit check: it
 * replaces a deleted or dead item (cache_install_absent(), which adds a
 * key, reserves its bytes under the limit instead). */
struct item *disk_tombstone_alloc(const char *key, uint8_t nkey, uint32_t hv);
/* Unlinks the dead item `it`. While warmup runs an older version of its
 * key may still be on its way from disk, so a tombstone takes its place in
 * the same critical section. */
void disk_bury(struct shard *s, struct item *it, rel_time_t now);
/* Counts a linked item dirty and takes the hook's reference. Returns the
 * item to pass to disk_put() once the lock is dropped (NULL when not
 * persistent). */
struct item *disk_mark_dirty(struct item *it);
/* No lock held: reports a put (NULL: nothing) or a delete to the hook. */
void disk_put(struct item *it);
void disk_del(const char *key, uint8_t nkey);

/* ---------------------------------------------------------------- filter
 * cache_filter.c: the keys that may be on disk. */

/* After shard_setup(): empty filters; `persistent` turns them on. */
void filter_setup(bool persistent);
/* Before shard_teardown(): frees them. */
void filter_teardown(void);
/* Shard lock held: key (hash hv) is written, or read from disk. */
void filter_add(struct shard *s, const char *key, uint8_t nkey, uint32_t hv);
/* Shard lock held, the key not in memory and the cache incomplete: false
 * when the key is certainly not on disk (counted), true when it may be
 * (or the filter is not ready yet). */
bool filter_maybe_on_disk(struct shard *s, const char *key, uint8_t nkey,
                          uint32_t hv);

/* ---------------------------------------------------------------- eviction
 * cache_evict.c */

/* disabled: memcached -M (see cache_options.evict_disabled). */
void evict_setup(bool disabled);
/* Reserves `bytes` under the memory limit, evicting when needed (from
 * `home`'s shard first, see cache_evict.c). No lock held. */
bool evict_reserve(size_t bytes, unsigned home);
/* An item of `bytes` was refused for memory (memcached's per class
 * outofmemory); evict_oom() reads the count of size class `c`. */
void evict_count_oom(size_t bytes);
uint64_t evict_oom(unsigned c);
void evict_oom_reset(void);

/* ---------------------------------------------------------------- alloc
 * cache_alloc.c */

void alloc_setup(uint32_t item_size_max);
/* A new item, not linked. With may_evict its bytes are reserved by
 * evicting when needed, else only if they fit. NULL when larger than
 * item_size_max (*too_large set) or no memory. No lock held. */
struct item *alloc_item(const char *key, uint8_t nkey, uint32_t hv,
                        uint32_t flags, rel_time_t exptime, uint32_t nbytes,
                        bool *too_large, bool may_evict);

/* ---------------------------------------------------------------- ops
 * cache_ops.c: what the commands share. */

/*
 * Finds a live item; shard lock held. A dead one met on the way is unlinked
 * and reported through *why (may be NULL); so is a key that may be on disk
 * (CACHE_MISS_ON_DISK). A stub is returned like a live item.
 */
struct item *ops_find_live(struct shard *s, const char *key, uint8_t nkey,
                           uint32_t hv, rel_time_t now, enum cache_miss *why);

/* The caller must fetch the value before it can answer: a stub, or a key
 * that may be on disk. */
static inline bool
ops_needs_fetch(const struct item *it, enum cache_miss why)
{
    return it != NULL ? (it->iflags & ITEM_STUB) != 0 : why == CACHE_MISS_ON_DISK;
}

/* How a new version differs from the item it replaces. */
struct ops_version {
    bool set_exptime;          /* else the old one's (a touch may have come) */
    rel_time_t exptime;
    uint8_t keep;              /* iflags bits copied from the old item */
    uint8_t set;               /* then these set */
    uint8_t clear;             /* and these cleared */
    bool keep_atime;           /* the old one's last access, else now */
    bool set_cas;              /* the client's CAS (E) instead of the next */
    uint64_t new_cas;
};

/* Links `it` (unlinked) in place of `old` (NULL: none), with a fresh CAS or
 * the client's (set_cas, when CAS is on); shard lock held. */
void ops_link_version(struct shard *s, struct item *old, struct item *it,
                      rel_time_t now, bool set_cas, uint64_t new_cas);

/*
 * The second half of a read-modify-write (append, prepend, incr, decr,
 * md I): takes the lock, links `nu` in place of `old` if `old` is still
 * the live linked version, and reports the change. Returns false when
 * something else changed the key first: start again. No lock held.
 */
bool ops_replace_if_current(struct shard *s, struct item *old, struct item *nu,
                            const struct ops_version *v, uint64_t *cas_out);

#endif
