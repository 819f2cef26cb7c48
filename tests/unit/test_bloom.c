/*
 * test_bloom.c: unit tests of util/bloom.c, the scalable blocked Bloom
 * filter behind the cache's "may this key be on disk?".
 *
 * What must hold: no key added is ever reported absent (a false "no"
 * would make a stored value invisible), across layers and however many;
 * the false-positive rate of keys never added stays under the bound the
 * header promises (one full layer: its target; any number of full
 * layers: twice the first one's); layers are added when the newest is full, twice as
 * large, and bytes are reported; clear frees everything. The keys are
 * deterministic, so every count below is the same on every run.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "util/bloom.h"
#include "util/hash.h"

static void
key_hashes(const char *prefix, unsigned i, uint32_t *h1, uint32_t *h2)
{
    char key[64];
    int n = snprintf(key, sizeof(key), "%s:%u", prefix, i);
    /* the cache's two hashes: its key hash and a second seed */
    *h1 = hash_murmur3_32(key, (size_t)n, 0xbc9f1d34u);
    *h2 = hash_murmur3_32(key, (size_t)n, 0x6d636b76u);
}

/* Adds n keys "in:i"; returns the bytes bloom_add() reported. */
static size_t
add_keys(struct bloom *b, unsigned n)
{
    size_t bytes = 0;
    for (unsigned i = 0; i < n; i++) {
        uint32_t h1, h2;
        key_hashes("in", i, &h1, &h2);
        size_t added = bloom_add(b, h1, h2);
        assert_true(added != SIZE_MAX);
        bytes += added;
    }
    return bytes;
}

static double
fp_rate(const struct bloom *b, unsigned probes)
{
    unsigned fp = 0;
    for (unsigned i = 0; i < probes; i++) {
        uint32_t h1, h2;
        key_hashes("out", i, &h1, &h2);
        fp += bloom_maybe(b, h1, h2);
    }
    return (double)fp / probes;
}

static void
test_empty_says_no(void **state)
{
    (void)state;
    struct bloom b;
    bloom_init(&b, 1000, 7);
    assert_int_equal(bloom_bytes(&b), 0);   /* nothing allocated yet */
    assert_true(fp_rate(&b, 1000) == 0.0);
    bloom_clear(&b);
}

static void
test_no_false_negatives_across_layers(void **state)
{
    (void)state;
    struct bloom b;
    bloom_init(&b, 1000, 7);
    size_t bytes = add_keys(&b, 200000);
    /* 1000, 2000, ... 128000: 8 layers hold 255,000 keys */
    assert_int_equal(b.nlayers, 8);
    assert_int_equal(b.keys, 200000);
    assert_int_equal(bytes, bloom_bytes(&b));
    for (unsigned i = 0; i < 200000; i++) {
        uint32_t h1, h2;
        key_hashes("in", i, &h1, &h2);
        assert_true(bloom_maybe(&b, h1, h2));
    }
    bloom_clear(&b);
    assert_int_equal(bloom_bytes(&b), 0);
    assert_int_equal(b.nlayers, 0);
}

static void
test_false_positive_bound(void **state)
{
    (void)state;
    /* one layer, filled to capacity: the first layer's own rate */
    struct bloom b;
    bloom_init(&b, 100000, 7);
    add_keys(&b, 100000);
    assert_int_equal(b.nlayers, 1);
    double one = fp_rate(&b, 200000);
    printf("# one full layer at 2^-7: false positives %.3f %%\n", one * 100);
    /* 2^-7 = 0.78 % (the blocks' extra 1.5 bits a key pay for their
     * uneven filling) */
    assert_true(one < 1.0 / 128);
    assert_true(one > 0.25 / 128);   /* it is a filter, not an exact set */
    bloom_clear(&b);

    /* many layers: under twice the first layer's target whatever the
     * number of layers (each layer's target is half the last one's) */
    bloom_init(&b, 1000, 7);
    add_keys(&b, 255000);             /* 8 layers, all full */
    assert_int_equal(b.nlayers, 8);
    double many = fp_rate(&b, 200000);
    printf("# 8 full layers: false positives %.3f %%\n", many * 100);
    assert_true(many < 2.0 / 128);
    bloom_clear(&b);

    /* the cache's setting: 2^-10 */
    bloom_init(&b, 100000, 10);
    add_keys(&b, 100000);
    double tight = fp_rate(&b, 200000);
    printf("# one full layer at 2^-10: false positives %.3f %%, "
           "%.2f bytes a key\n", tight * 100,
           (double)bloom_bytes(&b) / 100000);
    assert_true(tight < 1.0 / 1024);
    assert_true((double)bloom_bytes(&b) / 100000 < 2.1);
    bloom_clear(&b);
}

static void
test_layers_double(void **state)
{
    (void)state;
    struct bloom b;
    bloom_init(&b, 4096, 10);
    add_keys(&b, 4096);
    assert_int_equal(b.nlayers, 1);
    size_t first = bloom_bytes(&b);
    /* 4096 keys x (10 bits x 1.44 + 1.5), whole 64-byte blocks */
    assert_true(first >= 4096 * (1440 + 150) / 100 / 8);
    assert_true(first <= 4096 * (1445 + 150) / 100 / 8 + 64);
    uint32_t h1, h2;
    key_hashes("more", 0, &h1, &h2);
    size_t added = bloom_add(&b, h1, h2);
    assert_int_equal(b.nlayers, 2);
    /* twice the keys, one more bit set per key */
    assert_true(added > 2 * first);
    assert_int_equal(bloom_bytes(&b), first + added);
    assert_true(bloom_maybe(&b, h1, h2));
    bloom_clear(&b);
}

static void
test_tiny_capacity_rounds_up(void **state)
{
    (void)state;
    struct bloom b;
    bloom_init(&b, 1, 0);             /* clamped: 64 keys, 2^-1 */
    assert_int_equal(b.first_capacity, 64);
    assert_int_equal(b.fp_shift, 1);
    add_keys(&b, 64);
    assert_int_equal(b.nlayers, 1);
    for (unsigned i = 0; i < 64; i++) {
        uint32_t h1, h2;
        key_hashes("in", i, &h1, &h2);
        assert_true(bloom_maybe(&b, h1, h2));
    }
    bloom_clear(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_says_no),
        cmocka_unit_test(test_no_false_negatives_across_layers),
        cmocka_unit_test(test_false_positive_bound),
        cmocka_unit_test(test_layers_double),
        cmocka_unit_test(test_tiny_capacity_rounds_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
