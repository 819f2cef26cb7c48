/*
 * hash.h: the key hash.
 *
 * MurmurHash3 x86_32: fast on short keys, and every input bit reaches every
 * output bit (the finaliser avalanches), so callers may take any bits of the
 * result as independent choices (the cache takes the top bits for a shard
 * and the low bits for a bucket). The value is stable across runs for a
 * given seed, but blocks are read in host byte order: do not store it or
 * send it to another host.
 */
#ifndef MCKV_UTIL_HASH_H
#define MCKV_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

/* The 32-bit hash of len bytes at key. Pure; any thread. */
uint32_t hash_murmur3_32(const void *key, size_t len, uint32_t seed);

#endif
