/*
 * idmap.h: a map from non-zero 64-bit ids to pointers, for one thread.
 *
 * Open addressing with linear probing (Fibonacci hashing of the id) and
 * backward-shift deletion, so there are no tombstones and a lookup stops
 * at the first empty slot. The table doubles when half full. Made for
 * tokens: a worker numbers its connections and finds one again from the id
 * that a completion carries; an id that was removed is simply not found.
 * Not thread-safe: one owner thread.
 */
#ifndef MCKV_UTIL_IDMAP_H
#define MCKV_UTIL_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct idmap_slot {
    uint64_t id;     /* 0: empty */
    void *value;
};

struct idmap {
    struct idmap_slot *slots;
    size_t capacity;   /* a power of two, or 0 before the first put */
    size_t count;
};

/* Initialises an empty map (allocates nothing). */
void idmap_init(struct idmap *m);
/* Frees the table; the values are the caller's. */
void idmap_deinit(struct idmap *m);
/* Maps id (!= 0) to value, replacing an earlier value. MCKV_OK,
 * MCKV_EINVAL for id 0 or a NULL value, MCKV_ENOMEM (the map unchanged). */
int idmap_put(struct idmap *m, uint64_t id, void *value);
/* The value of id, or NULL. */
void *idmap_get(const struct idmap *m, uint64_t id);
/* Removes id; returns its value, or NULL when it was not there. */
void *idmap_remove(struct idmap *m, uint64_t id);

#endif
