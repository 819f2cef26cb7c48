/*
 * bloom.h: a scalable Bloom filter (Almeida et al., "Scalable Bloom
 * Filters", 2007): a set of keys that answers "maybe in" or "certainly
 * not in", in about 2 bytes per key at 0.1 % false positives, whatever
 * the keys' length.
 *
 * Why scalable: the cache does not know how many keys the disk will hold.
 * A plain Bloom filter sized too small fills up and answers "maybe" to
 * everything; one sized for the worst case wastes memory. This one is a
 * list of layers: when the newest layer holds its capacity, a new layer
 * twice as large is added, with a false-positive target half the last
 * one's, so the whole filter stays under twice the first layer's target
 * (P0 / (1 - 1/2)) however many layers it grows. A lookup checks every
 * layer; an insertion sets bits in the newest only.
 *
 * Keys go in as two 32-bit hashes the caller computed (h1, h2; they must
 * be independent hashes of the key), mixed to 64-bit words that pick a
 * 512-bit block and the k bits inside it (bloom.c). Nothing can be
 * removed: a removed key stays a "maybe" until the filter is rebuilt.
 *
 * Not thread-safe: the caller serialises every call on one filter (the
 * cache holds the shard lock). Memory comes from malloc; callers account
 * for it with bloom_bytes().
 */
#ifndef MCKV_UTIL_BLOOM_H
#define MCKV_UTIL_BLOOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BLOOM_LAYERS_MAX 24   /* 2^23 times the first layer's capacity */

struct bloom_layer {
    uint64_t *bits;
    uint64_t nbits;      /* a multiple of 512: whole blocks */
    uint64_t capacity;   /* keys it is sized for */
    uint64_t count;      /* keys added */
    unsigned k;          /* bits per key */
};

struct bloom {
    struct bloom_layer layer[BLOOM_LAYERS_MAX];
    unsigned nlayers;
    uint64_t first_capacity;
    unsigned fp_shift;   /* the first layer's false-positive target: 2^-fp_shift */
    bool saturated;      /* a layer could not be allocated: always "maybe" */
    uint64_t keys;       /* added over every layer */
    size_t bytes;        /* bit arrays allocated */
};

/* An empty filter whose first layer, allocated by the first bloom_add(),
 * holds `capacity` keys (at least 64) at a false-positive rate of
 * 2^-fp_shift (1 to 16; 7 is 0.8 %, about 10 bits a key). Allocates
 * nothing. */
void bloom_init(struct bloom *b, uint64_t capacity, unsigned fp_shift);
/* Frees every layer; the filter is empty again (same settings). */
void bloom_clear(struct bloom *b);
/* Adds a key. Returns the bytes newly allocated (0 but when a layer was
 * added), or SIZE_MAX when a layer was needed and could not be allocated:
 * then the filter answers "maybe" to every key from now on (it must
 * never say "not in" of a key it could not record). */
size_t bloom_add(struct bloom *b, uint32_t h1, uint32_t h2);
/* False only when the key was certainly never added. */
bool bloom_maybe(const struct bloom *b, uint32_t h1, uint32_t h2);
/* Bytes of bit arrays allocated. */
size_t bloom_bytes(const struct bloom *b);

#endif
