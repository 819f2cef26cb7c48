/*
 * stats_prefix.c: per-prefix statistics (see stats_prefix.h). A chained
 * hash table of prefixes under one mutex, bounded in size.
 */
#include <config.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/stats_prefix.h"

#define BUCKETS 256

struct prefix {
    struct prefix *next;
    uint64_t gets, hits, sets, deletes;
    size_t len;
    char name[];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct prefix *table[BUCKETS];   /* guarded by lock */
static size_t nprefixes, total_len, dropped;   /* guarded by lock */
static char delim = ':';
static atomic_bool enabled;

void
stats_prefix_setup(char delimiter)
{
    delim = delimiter;
}

void
stats_prefix_teardown(void)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < BUCKETS; i++) {
        struct prefix *p = table[i];
        while (p != NULL) {
            struct prefix *next = p->next;
            free(p);
            p = next;
        }
        table[i] = NULL;
    }
    nprefixes = total_len = dropped = 0;
    pthread_mutex_unlock(&lock);
}

void
stats_prefix_enable(bool on)
{
    atomic_store_explicit(&enabled, on, memory_order_relaxed);
}

bool
stats_prefix_enabled(void)
{
    return atomic_load_explicit(&enabled, memory_order_relaxed);
}

/* FNV-1a: prefixes are short and this table is not on a hot path. */
static uint32_t
prefix_hash(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

/* The prefix's entry, created when new. Lock held. NULL: no delimiter,
 * table full or out of memory. */
static struct prefix *
find(const char *key, size_t nkey)
{
    size_t len = 0;
    while (len < nkey && key[len] != delim)
        len++;
    if (len == nkey)
        return NULL;
    uint32_t b = prefix_hash(key, len) % BUCKETS;
    for (struct prefix *p = table[b]; p != NULL; p = p->next)
        if (p->len == len && memcmp(p->name, key, len) == 0)
            return p;
    if (nprefixes >= STATS_PREFIX_MAX) {
        dropped++;
        return NULL;
    }
    struct prefix *p = calloc(1, sizeof(*p) + len + 1);
    if (p == NULL)
        return NULL;
    memcpy(p->name, key, len);
    p->len = len;
    p->next = table[b];
    table[b] = p;
    nprefixes++;
    total_len += len;
    return p;
}

enum kind { GET_MISS, GET_HIT, SET, DELETE };

static void
record(const char *key, size_t nkey, enum kind kind)
{
    if (!stats_prefix_enabled())
        return;
    pthread_mutex_lock(&lock);
    struct prefix *p = find(key, nkey);
    if (p != NULL) {
        switch (kind) {
        case GET_HIT: p->hits++; /* fall through */
        case GET_MISS: p->gets++; break;
        case SET: p->sets++; break;
        case DELETE: p->deletes++; break;
        }
    }
    pthread_mutex_unlock(&lock);
}

void
stats_prefix_record_get(const char *key, size_t nkey, bool hit)
{
    record(key, nkey, hit ? GET_HIT : GET_MISS);
}

void
stats_prefix_record_set(const char *key, size_t nkey)
{
    record(key, nkey, SET);
}

void
stats_prefix_record_delete(const char *key, size_t nkey)
{
    record(key, nkey, DELETE);
}

#define LINE_FMT "PREFIX %s get %llu hit %llu set %llu del %llu\r\n"

char *
stats_prefix_dump(size_t *len)
{
    pthread_mutex_lock(&lock);
    /* each number takes at most 20 digits */
    size_t size = nprefixes * (sizeof(LINE_FMT) + 4 * 20) + total_len + 8;
    char *buf = malloc(size);
    size_t pos = 0;
    if (buf != NULL) {
        for (size_t i = 0; i < BUCKETS; i++)
            for (struct prefix *p = table[i]; p != NULL; p = p->next)
                pos += (size_t)snprintf(buf + pos, size - pos, LINE_FMT,
                                        p->name, (unsigned long long)p->gets,
                                        (unsigned long long)p->hits,
                                        (unsigned long long)p->sets,
                                        (unsigned long long)p->deletes);
        memcpy(buf + pos, "END\r\n", 5);
        pos += 5;
    }
    pthread_mutex_unlock(&lock);
    *len = pos;
    return buf;
}

size_t
stats_prefix_dropped(void)
{
    pthread_mutex_lock(&lock);
    size_t n = dropped;
    pthread_mutex_unlock(&lock);
    return n;
}
