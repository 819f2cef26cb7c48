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
 * and it is an atomic; so may the cache's own bookkeeping (atime and the
 * meta state, see "meta commands"), under the shard lock and read only
 * through this API. Readers hold a reference (refcount) while they use an
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
    rel_time_t atime;             /* last access (mg l, la=); shard lock */
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
    /* memcached -M: when memory is full an allocation fails (CACHE_ENOMEM)
     * rather than evict a live item; expired and flushed ones are still
     * reclaimed. With the persistent engine it changes nothing: a clean
     * value ejected to a stub, or a stub dropped, is still on disk, so
     * nothing is lost, and dirty items are never evicted anyway. */
    bool evict_disabled;
    /* memcached -C's flush: besides everything stored before it, a flush
     * kills what is stored later in the same second (memcached without
     * CAS can only cut by the second; its flush-all.t checks that). The
     * CAS counter still orders flushes and writes internally. */
    bool flush_by_second;
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
/*
 * Changes the memory limit live (memcached's cache_memlimit), any thread.
 * Raising it takes effect at once. Lowering it below what is in use frees
 * nothing by itself: later allocations evict, each at least twice what it
 * takes, so memory comes down gradually and no single request pays for
 * the whole shrink. Under a limit below the hash tables' size, every
 * allocation fails once nothing is left to evict, until the limit is
 * raised again (memcached refuses below 8 MB; the caller should too).
 */
void cache_set_memory_limit(size_t bytes);

/* ---- time ---- */
/* Seconds since start (see above). */
rel_time_t cache_now(void);
/* Unix time of rel_time_t 0. */
time_t cache_process_started(void);
/* Advances the clock; listener thread, once a second. */
void cache_clock_tick(void);
/* memcached-debug's debugtime: moves the clock forward by `seconds` (for
 * test suites; the server refuses it unless debug_commands is on). Any
 * thread. */
void cache_clock_shift(int64_t seconds);
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

/* ---- meta commands (mg, ms, md, ma, me) ----
 *
 * memcached keeps per-item state for the meta protocol, and so does the
 * cache: whether the item was read since it was stored ("fetched", mg h),
 * when it was last accessed (mg l), whether a client already won the right
 * to recache it (TOKEN_SENT: mg W, then Z for everyone else) and whether it
 * was invalidated (STALE: md I, ms I; mg X). Like memcached, a new version
 * of a key (set, append, ...) starts with none of it; what memcached
 * changes in place (touch, an incr whose result fits, md I) keeps it. The
 * state lives in memory only (a stub keeps it while the value is on
 * disk): the persistent engine stores key, value, flags, expiry and CAS,
 * so after a restart every item reads as fresh. Every decision below is
 * made under the key's shard lock, in the same critical section that
 * reads the state.
 */

/* mg flags that change what the get does. Times are rel_time_t, converted
 * by the caller with cache_realtime() exactly as memcached converts them. */
struct cache_mget_opts {
    bool no_bump;             /* u: no LRU bump, fetched and atime unchanged */
    bool touch;               /* T: set the expiry to exptime */
    rel_time_t exptime;
    bool vivify;              /* N: on a miss, create an empty item */
    rel_time_t vivify_exptime;
    bool recache;             /* R: win when the expiry is before recache_time */
    rel_time_t recache_time;
    bool key_binary;          /* b: an item N creates has a binary key */
    /* memcached applies T, N and R in command-line order, which shows:
     * true when T came before R (R then judges the expiry T just set) */
    bool touch_before_recache;
    /* true when T came after N (an item N creates gets T's expiry) */
    bool touch_after_vivify;
};

/* What mg reports besides the item. fetched, last_access and
 * exptime_before are the item's state before this request changed it. */
struct cache_mget_info {
    enum cache_miss why;      /* when NULL is returned */
    bool created;             /* N: the item was created by this request */
    bool won;                 /* W: this client is to recache the item */
    bool token_sent;          /* Z: another client won before */
    bool stale;               /* X: the item was invalidated */
    bool fetched;             /* h: read before (0 for a created item) */
    rel_time_t last_access;   /* l: seconds since = cache_now() - this */
    rel_time_t exptime_before;/* for a t that came before T on the line */
    bool key_binary;          /* the item's key was stored with b (mg k) */
};

/*
 * mg: cache_get() with memcached's meta decisions, in its order: N creates
 * the item on a miss (value length 0, flags 0, expiry N's or T's, see
 * touch_after_vivify) and wins; T sets the expiry; R wins when no token
 * was sent, the item was not just created, and 0 < exptime < recache_time;
 * an item whose token was already sent reports Z; a stale one reports X
 * and wins if no token was sent yet; a win marks the token sent. Then,
 * unless no_bump, the item is marked fetched, its atime set and it moves
 * to the LRU head. Returns a referenced item (release it) or NULL: a miss
 * (info->why; with N only when the item could not be allocated), or
 * CACHE_MISS_ON_DISK when the value must be fetched first (no decision was
 * made: fetch, cache_install(), then call again). Any worker thread.
 */
struct item *cache_mget(const char *key, uint8_t nkey,
                        const struct cache_mget_opts *opts,
                        struct cache_mget_info *info);

/* ms flags beyond cache_store()'s. */
struct cache_store_opts {
    uint64_t cas_in;          /* C: as cache_store()'s cas_in */
    /* I: when the CAS is checked (CACHE_CAS, or any op with cas_in) and
     * cas_in is lower than the item's, store anyway: the new item keeps the
     * old expiry and token-sent state and is marked stale (memcached's
     * CAS_STALE). A higher cas_in is still CACHE_EXISTS. */
    bool invalidate;
    bool set_cas;             /* E: the new item's CAS is new_cas instead of */
    uint64_t new_cas;         /*    the counter's next (ignored with CAS off) */
    /* N (APPEND/PREPEND): on a miss, `it` itself is linked as the value,
     * with its flags and vivify_exptime (memcached: "create a new item
     * seeded with the data from the append"), whatever cas_in says. */
    bool vivify;
    rel_time_t vivify_exptime;
    bool key_binary;          /* b: remember the key was sent base64 */
};

struct cache_store_info {
    /* CACHE_STORED: the new item's CAS. Otherwise the CAS of the item that
     * is there (0: none), for an ms c flag on EX/NS. */
    uint64_t cas;
    uint32_t nbytes;          /* CACHE_STORED: the stored value's length
                                 (after append/prepend: the whole value) */
    bool stale;               /* stored and marked stale (invalidate) */
    bool created;             /* vivify created the key */
};

/*
 * cache_store() with meta options; cache_store(it, op, c, out) is
 * cache_store_ex() with only cas_in. Same results, ownership and threads.
 * memcached's ms modes map as: S and R with C -> CACHE_CAS; E (add) with
 * C -> CACHE_ADD with cas_in 0 (memcached ignores it); A/P with C ->
 * CACHE_APPEND/PREPEND with cas_in.
 */
enum cache_result cache_store_ex(struct item *it, enum cache_store_op op,
                                 const struct cache_store_opts *opts,
                                 struct cache_store_info *info);

/* md flags beyond cache_delete()'s. */
struct cache_delete_opts {
    uint64_t cas_in;          /* C: must match (else CACHE_EXISTS) */
    /* I: instead of removing the item, link a copy marked stale, with the
     * token-sent state cleared (the next mg wins), a new CAS and, with
     * touch, the expiry `exptime`. */
    bool invalidate;
    bool touch;               /* T (with invalidate only) */
    rel_time_t exptime;
    bool set_cas;             /* E (with invalidate): the copy's CAS */
    uint64_t new_cas;
};

/*
 * md: CACHE_DELETED (removed, or invalidated: *cas_out, may be NULL, then
 * holds the stale copy's CAS), CACHE_NOT_FOUND, CACHE_EXISTS (cas_in
 * mismatch), CACHE_NEED_FETCH (the answer, or for invalidate the value,
 * is on disk), CACHE_ENOMEM (invalidate found no memory for the copy).
 */
enum cache_result cache_delete_ex(const char *key, uint8_t nkey,
                                  const struct cache_delete_opts *opts,
                                  uint64_t *cas_out);

/* ma flags beyond cache_delta()'s. */
struct cache_delta_opts {
    uint64_t cas_in;          /* C: must match (else CACHE_EXISTS) */
    bool set_cas;             /* E: the result's CAS */
    uint64_t new_cas;
    bool touch;               /* T: the result's expiry on success */
    rel_time_t exptime;
    /* N: on a miss, create the key with the decimal `initial` (J), flags
     * 0 and expiry vivify_exptime (T's when touch_after_vivify), instead of
     * returning CACHE_NOT_FOUND; no delta is applied to it, as memcached. */
    bool vivify;
    rel_time_t vivify_exptime;
    uint64_t initial;
    bool touch_after_vivify;
    bool key_binary;          /* b: for an item vivify creates */
};

struct cache_delta_info {
    uint64_t value;           /* the new value (or `initial` when created) */
    uint64_t cas;             /* its CAS */
    rel_time_t exptime;       /* its expiry (ma t) */
    bool created;             /* vivify created the key */
};

/* ma: cache_delta() with meta options and results; cache_delta() is this
 * with only cas_in. Results as cache_delta(), CACHE_STORED when created. */
enum cache_result cache_delta_ex(const char *key, uint8_t nkey, bool incr,
                                 uint64_t delta,
                                 const struct cache_delta_opts *opts,
                                 struct cache_delta_info *info);

/* ---- admin views: me, lru_crawler metadump, stats cachedump ---- */

/* One item's metadata, copied out (no reference is held). */
struct cache_walk_entry {
    char key[256];            /* nkey bytes, not NUL-terminated */
    uint8_t nkey;
    bool key_binary;          /* stored with ms b: print it base64 */
    bool stub;                /* value ejected, on disk only (nbytes is 0) */
    bool fetched;             /* fetch=yes */
    bool stale;
    bool token_sent;
    uint32_t flags;
    uint32_t nbytes;          /* value length */
    time_t exptime;           /* unix time; 0 = never */
    time_t last_access;       /* unix time (la=) */
    time_t stored;            /* unix time of the store */
    uint64_t cas;
    unsigned size_class;      /* as in cache_stats: total <= 64 << class */
    size_t total_size;        /* bytes accounted, as cache_item_total_size */
};

/*
 * me and metadump <key>: the metadata of one live item (a stub too, which
 * needs no fetch), without counting an access. True when found; else
 * *why (may be NULL) says why, CACHE_MISS_ON_DISK when the key may be on
 * disk. Any thread.
 */
bool cache_peek(const char *key, uint8_t nkey, struct cache_walk_entry *out,
                enum cache_miss *why);

/* Called for each item; return false to stop the walk. */
typedef bool (*cache_walk_fn)(const struct cache_walk_entry *entry, void *ctx);

/*
 * Visits every live item (not expired, not flushed; stubs included and
 * marked) for lru_crawler metadump and stats cachedump. Each shard lock is
 * taken for one batch (a few dozen items, at most a thousand buckets
 * looked at), copied out, and dropped before fn is called, so fn may call
 * into the cache and writers wait at most one batch; memory is one batch. The walk follows each hash
 * table in reverse-binary bucket order (Redis's SCAN), so an item linked
 * for the whole walk is visited at least once even while tables grow or
 * migrate (rarely twice); items linked or unlinked meanwhile may or may
 * not be seen. Returns MCKV_OK, or MCKV_ENOMEM when no batch buffer could
 * be allocated. Any thread; no lock held.
 */
int cache_walk(cache_walk_fn fn, void *ctx);

/* Where a resumable walk stands: the shard index above the bucket cursor. */
#define CACHE_WALK_START 0
#define CACHE_WALK_END UINT64_MAX

/*
 * cache_walk() in pieces, for a dump answered over many calls: resumes at
 * *cursor (CACHE_WALK_START for a new walk), calls fn as cache_walk() does
 * and returns once it called back for `budget` items or looked at 8 *
 * budget buckets (whole batches: up to one batch more), with *cursor where
 * the next call resumes: CACHE_WALK_END when every shard is done, fn
 * returned false or the batch buffer could not be allocated (MCKV_ENOMEM).
 * cache_walk()'s guarantee holds across the calls: an item linked from
 * the first call to the last is visited at least once, whatever the tables
 * did in between. The cursor is plain data: a walk abandoned midway needs
 * no clean-up. Any thread; no lock held between or during the callbacks.
 */
int cache_walk_from(uint64_t *cursor, cache_walk_fn fn, void *ctx,
                    size_t budget);

/* ---- persistence (cache_options.persistent) ---- */
/* Like cache_item_alloc, but fails instead of evicting (warmup). */
struct item *cache_item_alloc_noevict(const char *key, uint8_t nkey,
                                      uint32_t flags, rel_time_t exptime,
                                      uint32_t nbytes);
/*
 * A value read from disk for one client only (a multiget streaming more
 * than memory holds), never linked: its bytes are counted in the memory
 * total without the limit check and without evicting anything, and come
 * back when the last reference (the queued reply's) is released. What
 * bounds them is the caller's window (server/conn.h). NULL when over
 * item_size_max or out of memory. Any thread.
 */
struct item *cache_item_alloc_outside(const char *key, uint8_t nkey,
                                      uint32_t flags, rel_time_t exptime,
                                      uint32_t nbytes);
/* True when `it`'s expiry has passed (cache_install() refuses such an
 * item; a caller that does not install it asks here). Any thread. */
bool cache_item_is_expired(const struct item *it);
/*
 * Links an item read from disk (fetcher or warmup thread), keeping the
 * it->cas the caller set: in place of an ejected stub of the same CAS, or
 * where the key is absent while the cache is incomplete. Anything newer in
 * memory wins (returns CACHE_NOT_STORED). An item already expired (a row
 * whose time ran out on disk) is not linked: CACHE_NOT_FOUND, and the
 * caller treats the key as absent (cache_install_absent), so a read of it
 * is a miss instead of another fetch. The item is clean.
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

/*
 * Which keys may be on disk (see cache_filter.c): a Bloom filter per
 * shard of every key written since start and every key the warmup read.
 * Once ready, a miss for a key it has never seen costs no disk read and
 * leaves nothing behind, however incomplete the cache. Its memory counts
 * against memory_limit.
 *   cache_filter_reserve: sizes the filters for about `keys` keys (warmup,
 *     from the engine's row count; before any key is added).
 *   cache_filter_add: the warmup read key from disk (any thread).
 *   cache_filter_set_ready: every row of the disk was read (warmup end).
 */
void cache_filter_reserve(uint64_t keys);
void cache_filter_add(const char *key, uint8_t nkey);
void cache_filter_set_ready(void);
bool cache_filter_is_ready(void);

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
    uint64_t filter_bytes;     /* Bloom filters of the keys on disk */
    uint64_t filter_keys;      /* keys added to them */
    uint64_t filter_negatives; /* misses they answered without a disk read */
    bool filter_ready;         /* they cover every key on disk */
    uint64_t tombstones;       /* keys known absent (negative entries) */
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
    /* memcached's evicted_time: seconds since the last access of the live
     * item evicted last in the class (0: none) */
    rel_time_t class_evicted_time[CACHE_SIZE_CLASSES];
    uint64_t class_oom[CACHE_SIZE_CLASSES];      /* items refused for memory */
};

/* Sums every shard (takes each shard lock briefly). */
void cache_stats(struct cache_stats *out);
/* Zeroes the resettable counters (evictions, reclaimed, total_items...). */
void cache_stats_reset(void);

#endif
