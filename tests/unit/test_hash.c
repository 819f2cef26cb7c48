/*
 * test_hash.c: unit tests of util/hash.c.
 *
 * The reference vectors of MurmurHash3 x86_32 (so the function is the
 * published one and stays stable), independence from the key's alignment,
 * an even spread of sequential keys over the top bits (the cache's shard)
 * and the low bits (its bucket), and the avalanche property that lets the
 * cache take both from one hash.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "util/hash.h"

static void
test_reference_vectors(void **state)
{
    (void)state;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    static const struct {
        const char *key;
        size_t len;
        uint32_t seed;
        uint32_t hash;
    } v[] = {
        { "", 0, 0, 0 },
        { "", 0, 1, 0x514e28b7u },
        { "", 0, 0xffffffffu, 0x81f16f39u },
        { "\0\0\0\0", 4, 0, 0x2362f9deu },
        { "aaaa", 4, 0x9747b28cu, 0x5a97808au },
        { "a", 1, 0x9747b28cu, 0x7fa09ea6u },
        { "ab", 2, 0x9747b28cu, 0x74875592u },
        { "abc", 3, 0x9747b28cu, 0xc84a62ddu },
        { "abcd", 4, 0x9747b28cu, 0xf0478627u },
        { "Hello, world!", 13, 0x9747b28cu, 0x24884cbau },
        { "The quick brown fox jumps over the lazy dog", 43, 0x9747b28cu,
          0x2fa826cdu },
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        assert_int_equal(hash_murmur3_32(v[i].key, v[i].len, v[i].seed), v[i].hash);
#else
    skip();
#endif
}

static void
test_stable_and_seeded(void **state)
{
    (void)state;
    const char *key = "user:12345:profile";
    uint32_t h = hash_murmur3_32(key, strlen(key), 42);
    for (int i = 0; i < 10; i++)
        assert_int_equal(hash_murmur3_32(key, strlen(key), 42), h);
    assert_int_not_equal(hash_murmur3_32(key, strlen(key), 43), h);
    /* the length is part of the hash: a key and its prefix differ */
    assert_int_not_equal(hash_murmur3_32(key, strlen(key) - 1, 42), h);
    assert_int_not_equal(hash_murmur3_32("\0", 1, 0), hash_murmur3_32("", 0, 0));

    /* blocks are read with memcpy: the key's alignment does not matter */
    char buf[64];
    for (size_t off = 0; off < 8; off++) {
        memcpy(buf + off, key, strlen(key));
        assert_int_equal(hash_murmur3_32(buf + off, strlen(key), 42), h);
    }
}

/* Pearson's chi-square of `n` counters against an even spread. */
static double
chi_square(const unsigned *count, unsigned n, unsigned total)
{
    double expect = (double)total / n, chi = 0;
    for (unsigned i = 0; i < n; i++) {
        double d = count[i] - expect;
        chi += d * d / expect;
    }
    return chi;
}

static void
test_distribution(void **state)
{
    (void)state;
    enum { KEYS = 256 * 1024, SHARDS = 64, BUCKETS = 4096 };
    static unsigned shard[SHARDS], bucket[BUCKETS];
    char key[32];
    for (unsigned i = 0; i < KEYS; i++) {
        int n = snprintf(key, sizeof(key), "key:%u", i);
        uint32_t h = hash_murmur3_32(key, (size_t)n, 0x6d636b76u);
        shard[h >> 26]++;
        bucket[h & (BUCKETS - 1)]++;
    }
    /* Degrees of freedom n - 1: mean n - 1, standard deviation about
     * sqrt(2n). Six deviations is a one-in-a-billion accident for a good
     * hash, and far below what a skewed one gives (sequential keys under
     * a weak hash pile into a few buckets). */
    assert_true(chi_square(shard, SHARDS, KEYS) < 63 + 6 * 11.3);
    assert_true(chi_square(bucket, BUCKETS, KEYS) < 4095 + 6 * 90.5);
    for (unsigned i = 0; i < SHARDS; i++) {
        assert_true(shard[i] > KEYS / SHARDS * 9 / 10);
        assert_true(shard[i] < KEYS / SHARDS * 11 / 10);
    }
}

/* Flipping any input bit flips each output bit about half the time. */
static void
test_avalanche(void **state)
{
    (void)state;
    enum { TRIALS = 2000, KEYLEN = 12 };
    static unsigned flips[KEYLEN * 8][32];
    uint32_t rng = 2463534242u;
    uint8_t key[KEYLEN];
    for (int t = 0; t < TRIALS; t++) {
        for (int i = 0; i < KEYLEN; i++) {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            key[i] = (uint8_t)rng;
        }
        uint32_t h = hash_murmur3_32(key, KEYLEN, 0);
        for (int bit = 0; bit < KEYLEN * 8; bit++) {
            key[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            uint32_t d = h ^ hash_murmur3_32(key, KEYLEN, 0);
            key[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            for (int o = 0; o < 32; o++)
                flips[bit][o] += (d >> o) & 1;
        }
    }
    for (int bit = 0; bit < KEYLEN * 8; bit++) {
        for (int o = 0; o < 32; o++) {
            /* 0.5 +- 0.1 is over 8 standard deviations at 2000 trials */
            assert_true(flips[bit][o] > TRIALS * 4 / 10);
            assert_true(flips[bit][o] < TRIALS * 6 / 10);
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_vectors),
        cmocka_unit_test(test_stable_and_seeded),
        cmocka_unit_test(test_distribution),
        cmocka_unit_test(test_avalanche),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
