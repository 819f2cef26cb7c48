/*
 * hist.h: latency histograms with one writer and any number of readers.
 *
 * Buckets are powers of two of microseconds (bucket i holds values in
 * [2^(i-1), 2^i) us; bucket 0 holds 0), so a histogram is 40 counters and
 * recording is a bit scan plus a relaxed load and store: no lock prefix on
 * the writer's hot path, no data race for readers. Percentiles are read as
 * the upper bound of the bucket that holds them (within a factor of two).
 */
#ifndef MCKV_UTIL_HIST_H
#define MCKV_UTIL_HIST_H

#include <stdint.h>

#define HIST_BUCKETS 40

struct hist {
    uint64_t count[HIST_BUCKETS];
    uint64_t max_us;
    uint64_t sum_us;
};

/* Owner thread only. */
void hist_record(struct hist *h, uint64_t us);
/* Any thread: adds src into dst (dst is private to the caller). */
void hist_merge(struct hist *dst, const struct hist *src);
/* On a private copy: the value at quantile q (0..1), in microseconds. */
uint64_t hist_quantile(const struct hist *h, double q);
uint64_t hist_total(const struct hist *h);

#endif
