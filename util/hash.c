/*
 * hash.c: MurmurHash3 x86_32 (Austin Appleby, public domain).
 *
 * 4-byte blocks mixed with two multiplies and a rotate, the 1-3 tail bytes
 * the same way, then the length and an avalanche finaliser. Blocks are read
 * with memcpy, so keys need no alignment.
 */
#include <config.h>

#include <stdint.h>
#include <string.h>

#include "util/hash.h"

static inline uint32_t
rotl32(uint32_t x, int r)
{
    return (x << r) | (x >> (32 - r));
}

uint32_t
hash_murmur3_32(const void *key, size_t len, uint32_t seed)
{
    const uint8_t *p = key;
    const uint32_t c1 = 0xcc9e2d51u, c2 = 0x1b873593u;
    uint32_t h = seed;
    size_t nblocks = len / 4;

    for (size_t i = 0; i < nblocks; i++) {
        uint32_t k;
        memcpy(&k, p + i * 4, sizeof(k));
        k *= c1;
        k = rotl32(k, 15);
        k *= c2;
        h ^= k;
        h = rotl32(h, 13);
        h = h * 5 + 0xe6546b64u;
    }
    const uint8_t *tail = p + nblocks * 4;
    uint32_t k = 0;
    switch (len & 3) {
    case 3:
        k ^= (uint32_t)tail[2] << 16;
        __attribute__((fallthrough));
    case 2:
        k ^= (uint32_t)tail[1] << 8;
        __attribute__((fallthrough));
    case 1:
        k ^= tail[0];
        k *= c1;
        k = rotl32(k, 15);
        k *= c2;
        h ^= k;
    }
    h ^= (uint32_t)len;
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}
