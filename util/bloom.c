/*
 * bloom.c: a scalable Bloom filter (contract in bloom.h).
 *
 * Layer i holds capacity * 2^i keys at a false-positive rate of
 * 2^-(fp_shift + i): with a false-positive target p, the optimal filter
 * has log2(1/p) bits set per key and log2(1/p) / ln 2 (1.44 log2(1/p))
 * bits per key in all, so each layer needs one more hash and about 1.44
 * more bits per key than the last. No floating point: the rates are
 * powers of two.
 *
 * Blocked (Putze, Sanders and Singler, "Cache-, Hash- and Space-Efficient
 * Bloom Filters", 2007): a key's k bits all lie in one 512-bit block, a
 * cache line, so an insertion or a lookup costs one cache miss instead of
 * k. The price is a slightly higher false-positive rate than a classic
 * filter of the same size (blocks fill unevenly: 0.92 % instead of
 * 0.79 % at 7 bits set and 10.1 bits a key, 0.16 % instead of 0.10 % at
 * 10 and 14.4), which 1.5 more bits a key pay back (test_bloom measures
 * 0.49 % at 2^-7 and 0.09 % at 2^-10).
 */
#include <config.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/bloom.h"

#define BLOOM_BLOCK_BITS 512u

void
bloom_init(struct bloom *b, uint64_t capacity, unsigned fp_shift)
{
    memset(b, 0, sizeof(*b));
    b->first_capacity = capacity < 64 ? 64 : capacity;
    b->fp_shift = fp_shift < 1 ? 1 : fp_shift > 16 ? 16 : fp_shift;
}

void
bloom_clear(struct bloom *b)
{
    for (unsigned i = 0; i < b->nlayers; i++)
        free(b->layer[i].bits);
    bloom_init(b, b->first_capacity, b->fp_shift);
}

/* Adds layer number b->nlayers; its size in bytes, or 0 when it could not
 * be allocated. */
static size_t
bloom_grow(struct bloom *b)
{
    unsigned i = b->nlayers;
    if (i == BLOOM_LAYERS_MAX)
        return 0;
    uint64_t cap = b->first_capacity << i;
    unsigned k = b->fp_shift + i;
    /* 1.4427 * k bits per key (1477 / 1024 = 1.4424) plus 1.5: a blocked
     * filter needs that much more to reach a classic one's rate */
    uint64_t nbits = (cap * (k * 1477 + 1536) + 1023) / 1024;
    nbits = (nbits + BLOOM_BLOCK_BITS - 1) & ~(uint64_t)(BLOOM_BLOCK_BITS - 1);
    /* blocks on cache lines: a lookup touches one line */
    uint64_t *bits = aligned_alloc(64, nbits / 8);
    if (bits == NULL)
        return 0;
    memset(bits, 0, nbits / 8);
    b->layer[i] = (struct bloom_layer){
        .bits = bits, .nbits = nbits, .capacity = cap, .count = 0, .k = k,
    };
    b->nlayers++;
    size_t bytes = (size_t)(nbits / 8);
    b->bytes += bytes;
    return bytes;
}

/* The block of a key (x) in a layer: a multiply-shift ("fastrange",
 * Lemire) maps x onto [0, nblocks) without a division. */
static inline uint64_t *
bloom_block(const struct bloom_layer *l, uint64_t x)
{
    uint64_t nblocks = l->nbits / BLOOM_BLOCK_BITS;
    uint64_t b = (uint64_t)(((unsigned __int128)x * nblocks) >> 64);
    return l->bits + b * (BLOOM_BLOCK_BITS / 64);
}

/* A key's bits inside its block: independent 9-bit slices of y, seven
 * from each 64-bit word, the word remixed for the next seven. (Double
 * hashing, a + j*b mod 512, was tried first: with so small a domain the
 * progressions of different keys overlap too often, and a full layer at
 * 2^-10 measured 0.24 % false positives instead of 0.09 %.) */
#define BLOOM_SLICES 7u   /* 9-bit slices of a 64-bit word */

/* A key's block (from x) and bits (from y). The multiply-shift uses the
 * top bits of x and the slices every bit of y, so both must be spread
 * over all 64: the 32-bit hashes go through a 64-bit mixer (splitmix64's
 * finaliser). */
static inline uint64_t
bloom_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static inline void
bloom_probe(uint32_t h1, uint32_t h2, uint64_t *x, uint64_t *y)
{
    *x = bloom_mix(((uint64_t)h1 << 32) | h2);
    *y = bloom_mix(((uint64_t)h2 << 32) | h1);
}

size_t
bloom_add(struct bloom *b, uint32_t h1, uint32_t h2)
{
    if (b->saturated)
        return 0;
    size_t added = 0;
    if (b->nlayers == 0 ||
        b->layer[b->nlayers - 1].count >= b->layer[b->nlayers - 1].capacity) {
        added = bloom_grow(b);
        if (added == 0) {
            /* from now on every answer is "maybe": never a wrong "no" */
            b->saturated = true;
            return SIZE_MAX;
        }
    }
    struct bloom_layer *l = &b->layer[b->nlayers - 1];
    uint64_t x, y;
    bloom_probe(h1, h2, &x, &y);
    uint64_t *blk = bloom_block(l, x);
    uint64_t w = y;
    for (unsigned j = 0; j < l->k; j++) {
        if (j > 0 && j % BLOOM_SLICES == 0)
            w = bloom_mix(w);
        unsigned bit = (unsigned)(w >> (9 * (j % BLOOM_SLICES))) & 511u;
        blk[bit / 64] |= (uint64_t)1 << (bit % 64);
    }
    l->count++;
    b->keys++;
    return added;
}

bool
bloom_maybe(const struct bloom *b, uint32_t h1, uint32_t h2)
{
    if (b->saturated)
        return true;
    uint64_t x, y;
    bloom_probe(h1, h2, &x, &y);
    for (unsigned i = b->nlayers; i-- > 0;) {   /* newest first: most keys */
        const struct bloom_layer *l = &b->layer[i];
        const uint64_t *blk = bloom_block(l, x);
        uint64_t w = y;
        unsigned j = 0;
        for (; j < l->k; j++) {
            if (j > 0 && j % BLOOM_SLICES == 0)
                w = bloom_mix(w);
            unsigned bit = (unsigned)(w >> (9 * (j % BLOOM_SLICES))) & 511u;
            if (!(blk[bit / 64] & ((uint64_t)1 << (bit % 64))))
                break;
        }
        if (j == l->k)
            return true;
    }
    return false;
}

size_t
bloom_bytes(const struct bloom *b)
{
    return b->bytes;
}
