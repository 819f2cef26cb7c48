/* hist.c: see hist.h. */
#include <config.h>

#include "util/hist.h"

static inline void
add_relaxed(uint64_t *p, uint64_t n)
{
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

void
hist_record(struct hist *h, uint64_t us)
{
    unsigned b = us == 0 ? 0 : 64u - (unsigned)__builtin_clzll(us);
    if (b >= HIST_BUCKETS)
        b = HIST_BUCKETS - 1;
    add_relaxed(&h->count[b], 1);
    add_relaxed(&h->sum_us, us);
    if (us > __atomic_load_n(&h->max_us, __ATOMIC_RELAXED))
        __atomic_store_n(&h->max_us, us, __ATOMIC_RELAXED);
}

void
hist_merge(struct hist *dst, const struct hist *src)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        dst->count[i] += __atomic_load_n(&src->count[i], __ATOMIC_RELAXED);
    dst->sum_us += __atomic_load_n(&src->sum_us, __ATOMIC_RELAXED);
    uint64_t m = __atomic_load_n(&src->max_us, __ATOMIC_RELAXED);
    if (m > dst->max_us)
        dst->max_us = m;
}

uint64_t
hist_total(const struct hist *h)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        n += h->count[i];
    return n;
}

uint64_t
hist_quantile(const struct hist *h, double q)
{
    uint64_t total = hist_total(h);
    if (total == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)total);
    if (rank >= total)
        rank = total - 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->count[i];
        if (seen > rank) {
            uint64_t upper = i == 0 ? 0 : (1ull << i) - 1;
            return upper < h->max_us ? upper : h->max_us;
        }
    }
    return h->max_us;
}
