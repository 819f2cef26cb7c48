/*
 * mcload_hist.c: mcload's latency histogram, log-linear in nanoseconds:
 * exact below 128 ns, then 64 sub-buckets per power of two (< 1.6% error).
 * One per client thread, merged at the end.
 */
#include <config.h>

#include "tools/mcload.h"

static unsigned
hist_index(uint64_t v)
{
    if (v < (2u << HIST_SUB_BITS))
        return (unsigned)v;
    unsigned shift = 63 - (unsigned)__builtin_clzll(v) - HIST_SUB_BITS;
    return (shift << HIST_SUB_BITS) + (unsigned)(v >> shift);
}

/* Highest value that falls into bucket i. */
static uint64_t
hist_bucket_top(unsigned i)
{
    if (i < (2u << HIST_SUB_BITS))
        return i;
    unsigned shift = (i >> HIST_SUB_BITS) - 1;
    uint64_t sub = (i & ((1u << HIST_SUB_BITS) - 1)) | (1u << HIST_SUB_BITS);
    return ((sub + 1) << shift) - 1;
}

void
hist_record(struct hist *h, uint64_t v)
{
    h->counts[hist_index(v)]++;
    h->total++;
    if (v > h->max)
        h->max = v;
}

void
hist_merge(struct hist *into, const struct hist *from)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        into->counts[i] += from->counts[i];
    into->total += from->total;
    if (from->max > into->max)
        into->max = from->max;
}

/* Value at quantile q (0..1), as the top of its bucket, capped at max. */
uint64_t
hist_quantile(const struct hist *h, double q)
{
    if (h->total == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->total + 0.999999);
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t top = hist_bucket_top(i);
            return top < h->max ? top : h->max;
        }
    }
    return h->max;
}

