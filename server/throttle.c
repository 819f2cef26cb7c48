/*
 * throttle.c: the backpressure law (contract in throttle.h).
 *
 * Pressure comes from two limits: dirty bytes between the soft and the hard
 * limit, and the writer's queue filling up (many small writes fill the
 * queue before they amount to many bytes).
 *
 * The delay is the time the flusher needs to drain the backlog past the soft
 * point at its measured rate. This is a proportional controller: a
 * throttled connection sends its next batch one delay later, so W bytes in
 * flight across all writers are admitted at W / delay = W * rate / backlog,
 * which equals the drain rate when the backlog is about W. Writers settle
 * just past the soft point with delays of milliseconds; a stalled flusher
 * (a checkpoint) makes the backlog, and with it the delay, grow smoothly
 * rather than at once.
 */
#include <config.h>

#include "server/throttle.h"

enum throttle_verdict
throttle_decide(const struct throttle_input *in, uint32_t *delay_ms)
{
    *delay_ms = 0;
    uint64_t soft = in->soft_bytes, hard = in->hard_bytes;
    double pressure = 0.0;
    size_t qsoft = 0;
    if (in->queue_capacity > 0) {
        double fill = (double)in->queue_len / (double)in->queue_capacity;
        pressure = (fill - THROTTLE_QUEUE_SOFT) /
                   (THROTTLE_QUEUE_HARD - THROTTLE_QUEUE_SOFT);
        qsoft = (size_t)(THROTTLE_QUEUE_SOFT * (double)in->queue_capacity);
    }
    /* Every dirty byte counts, the batch being committed too: the hard
     * limit counts it (dirty values cannot leave memory), so a law that
     * did not would admit writes without delay until the hard limit
     * refused them (tried: with batches of up to 100k rows an ingest of
     * 300k x 1 KiB under -m 256 had 2.6M writes refused and sent again,
     * and 1.4 s replies, against none refused and 178 ms before). */
    uint64_t excess = in->dirty_bytes > soft ? in->dirty_bytes - soft : 0;
    if (hard > soft && (double)excess / (double)(hard - soft) > pressure)
        pressure = (double)excess / (double)(hard - soft);
    if (pressure >= 1.0)
        return THROTTLE_REFUSE;
    if (pressure <= 0.0)
        return THROTTLE_ADMIT;

    uint64_t rate = in->drain_bytes_per_s;
    if (rate < THROTTLE_DEFAULT_BYTES_PER_S)
        rate = THROTTLE_DEFAULT_BYTES_PER_S;
    uint64_t ms = excess * 1000 / rate;
    uint64_t wrate = in->drain_writes_per_s;
    if (wrate < THROTTLE_DEFAULT_WRITES_PER_S)
        wrate = THROTTLE_DEFAULT_WRITES_PER_S;
    if (in->queue_len > qsoft && (in->queue_len - qsoft) * 1000 / wrate > ms)
        ms = (in->queue_len - qsoft) * 1000 / wrate;
    if (ms == 0)
        ms = 1;
    if (ms > THROTTLE_MAX_MS)
        ms = THROTTLE_MAX_MS;
    *delay_ms = (uint32_t)ms;
    return THROTTLE_DELAY;
}
