/*
 * cache_shard.c: the shards (contract in cache_priv.h).
 *
 * A key's 32-bit hash picks its shard with its top CACHE_SHARD_BITS bits and
 * its bucket with its low bits. A shard owns, under one mutex: a chained
 * hash table, the previous table while the shard is expanding, an LRU list
 * (head = most recently used) and its share of the statistics.
 *
 * Incremental expansion. When a link leaves more than 1.5 items per bucket,
 * the shard raises want_grow; the next allocation for that shard (which
 * runs with no lock held, cache_alloc.c) allocates a table twice as big and
 * installs it with shard_install_table(). From then on every shard_lock()
 * moves HASH_MIGRATE_PER_OP buckets of the old table to the new one. While
 * that lasts both tables hold items: a key whose old bucket is at or past
 * the migration cursor is in the old table, any other key in the new one,
 * and lookups, inserts and removals choose the table by that rule
 * (bucket_for()). No operation ever rehashes a whole shard.
 *
 * Link and unlink keep the per-shard statistics and the global counts of
 * stubs and tombstones; the table's reference is one of the item's.
 */
#include <config.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/cache_priv.h"
#include "util/log.h"
#include "util/status.h"

struct shard cache_shards[CACHE_SHARDS];

static atomic_uint_fast64_t stubs_now;
static atomic_uint_fast64_t tombstones_now;

int
shard_setup(void)
{
    atomic_store(&stubs_now, 0);
    atomic_store(&tombstones_now, 0);
    for (unsigned i = 0; i < CACHE_SHARDS; i++) {
        struct shard *s = &cache_shards[i];
        memset(s, 0, sizeof(*s));
        pthread_mutex_init(&s->lock, NULL);
        s->hashpower = HASH_INITIAL_POWER;
        s->buckets = calloc((size_t)1 << HASH_INITIAL_POWER, sizeof(*s->buckets));
        if (s->buckets == NULL) {
            log_error("cache: cannot allocate the hash table");
            pthread_mutex_destroy(&s->lock);
            while (i-- > 0) {
                free(cache_shards[i].buckets);
                pthread_mutex_destroy(&cache_shards[i].lock);
            }
            return MCKV_ENOMEM;
        }
        s->table_bytes = ((size_t)1 << HASH_INITIAL_POWER) * sizeof(*s->buckets);
        mem_charge(s->table_bytes);
    }
    return MCKV_OK;
}

void
shard_teardown(void)
{
    for (unsigned i = 0; i < CACHE_SHARDS; i++) {
        struct shard *s = &cache_shards[i];
        pthread_mutex_lock(&s->lock);
        while (s->lru_head != NULL)
            shard_unlink(s, s->lru_head);
        while (s->key_head != NULL)
            shard_unlink(s, s->key_head);
        free(s->buckets);
        free(s->old_buckets);
        free(s->retired);
        s->buckets = s->old_buckets = s->retired = NULL;
        pthread_mutex_unlock(&s->lock);
        pthread_mutex_destroy(&s->lock);
    }
}

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

void
shard_lock(struct shard *s)
{
    pthread_mutex_lock(&s->lock);
    shard_migrate(s);
}

void
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

struct item *
shard_find(struct shard *s, const char *key, uint8_t nkey, uint32_t hv)
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

/* Key-only items (stubs, tombstones) have an LRU of their own, so that
 * eviction can choose between freeing a value and dropping a key without
 * walking over the other kind (cache_evict.c). An item's kind does not
 * change while it is linked. */
static inline bool
lru_keyonly(const struct item *it)
{
    return (it->iflags & (ITEM_STUB | ITEM_TOMBSTONE)) != 0;
}

static void
lru_remove(struct shard *s, struct item *it)
{
    bool k = lru_keyonly(it);
    struct item **head = k ? &s->key_head : &s->lru_head;
    struct item **tail = k ? &s->key_tail : &s->lru_tail;
    if (it->lru_prev != NULL)
        it->lru_prev->lru_next = it->lru_next;
    else
        *head = it->lru_next;
    if (it->lru_next != NULL)
        it->lru_next->lru_prev = it->lru_prev;
    else
        *tail = it->lru_prev;
    it->lru_prev = NULL;
    it->lru_next = NULL;
    if (k)
        s->key_bytes -= item_usable(it);
}

static void
lru_push_head(struct shard *s, struct item *it)
{
    bool k = lru_keyonly(it);
    struct item **head = k ? &s->key_head : &s->lru_head;
    struct item **tail = k ? &s->key_tail : &s->lru_tail;
    it->lru_prev = NULL;
    it->lru_next = *head;
    if (*head != NULL)
        (*head)->lru_prev = it;
    else
        *tail = it;
    *head = it;
    if (k)
        s->key_bytes += item_usable(it);
}

void
shard_lru_bump(struct shard *s, struct item *it)
{
    if (s->lru_head != it && s->key_head != it) {
        lru_remove(s, it);
        lru_push_head(s, it);
    }
}

void
shard_link(struct shard *s, struct item *it, rel_time_t now, bool keep_cas)
{
    if (atomic_load_explicit(&tombstones_now, memory_order_relaxed) > 0) {
        /* lookups hide tombstones: a new version replaces one here */
        struct item *dup = shard_find(s, item_key(it), it->nkey, it->hv);
        if (dup != NULL && (dup->iflags & ITEM_TOMBSTONE))
            shard_unlink(s, dup);
    }
    it->time = now;
    it->atime = now;
    if (!keep_cas)
        it->cas = clock_next_cas();
    it->iflags |= ITEM_LINKED;   /* the rest is what the caller made it */
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
    unsigned c = item_size_class(size);
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

bool
shard_unlink(struct shard *s, struct item *it)
{
    hash_remove(s, it);
    lru_remove(s, it);
    it->iflags &= (uint8_t)~ITEM_LINKED;
    if (it->iflags & ITEM_STUB)
        atomic_fetch_sub_explicit(&stubs_now, 1, memory_order_relaxed);
    if (it->iflags & ITEM_TOMBSTONE)
        atomic_fetch_sub_explicit(&tombstones_now, 1, memory_order_relaxed);

    size_t size = item_usable(it);
    unsigned c = item_size_class(size);
    s->st.curr_items--;
    s->st.bytes -= size;
    s->st.value_bytes -= (uint64_t)it->nkey + it->nbytes;
    s->st.class_items[c]--;
    s->st.class_bytes[c] -= size;
    atomic_store_explicit(&s->lru_bytes, s->st.bytes, memory_order_relaxed);
    return item_unref(it);
}

void
shard_replace(struct shard *s, struct item *old, struct item *it, rel_time_t now)
{
    shard_unlink(s, old);
    shard_link(s, it, now, false);
}

uint32_t
shard_hashpower(struct shard *s, bool *expanding)
{
    pthread_mutex_lock(&s->lock);
    uint32_t hp = s->hashpower;
    *expanding = s->old_buckets != NULL;
    pthread_mutex_unlock(&s->lock);
    return hp;
}

bool
shard_install_table(struct shard *s, uint32_t seen, struct item **table,
                    uint32_t power, size_t bytes)
{
    bool installed = false;
    pthread_mutex_lock(&s->lock);
    if (s->old_buckets == NULL && s->hashpower == seen) {
        s->old_buckets = s->buckets;
        s->old_hashpower = seen;
        s->buckets = table;
        s->hashpower = power;
        s->migrate_pos = 0;
        s->table_bytes += bytes;
        installed = true;
    }
    pthread_mutex_unlock(&s->lock);
    return installed;
}

uint64_t
shard_tombstones_now(void)
{
    return atomic_load_explicit(&tombstones_now, memory_order_relaxed);
}

uint64_t
shard_stubs_now(void)
{
    return atomic_load_explicit(&stubs_now, memory_order_relaxed);
}
