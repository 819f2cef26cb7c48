/*
 * throttle.h: the backpressure law, a pure function.
 *
 * Given the dirty backlog (bytes written to memory, not yet committed), the
 * soft and hard limits, the flusher's measured drain rates and the fill of
 * the writer's queue, it says whether a write is admitted at once, admitted
 * with its reply delayed, or refused (temporary failure). No state, no
 * clock, no thread: the caller gathers the inputs (server/persist.c) and
 * applies the verdict (the connection's reply timer). docs/architecture.md
 * ("Backpressure") explains why the law is proportional.
 */
#ifndef MCKV_SERVER_THROTTLE_H
#define MCKV_SERVER_THROTTLE_H

#include <stddef.h>
#include <stdint.h>

#define THROTTLE_QUEUE_SOFT 0.25   /* queue fill where delays start */
#define THROTTLE_QUEUE_HARD 0.95   /* and where writes are refused */
#define THROTTLE_MAX_MS 1000       /* longest delay of one batch of writes */
/* Rates assumed while none has been measured yet. */
#define THROTTLE_DEFAULT_BYTES_PER_S (1024u * 1024u)
#define THROTTLE_DEFAULT_WRITES_PER_S 1000u

struct throttle_input {
    uint64_t dirty_bytes;          /* in memory, not committed (all writers) */
    /* Of dirty_bytes, those in the transaction being written (for stats;
     * the law counts them like the rest, see throttle.c). */
    uint64_t committing_bytes;
    uint64_t soft_bytes;           /* delays start past this */
    uint64_t hard_bytes;           /* writes are refused at this */
    /* Measured drain rates (0 before the first commits); a rate below
     * the THROTTLE_DEFAULT_* floor counts as the floor. */
    uint64_t drain_bytes_per_s;    /* bytes committed per second */
    uint64_t drain_writes_per_s;   /* this writer's share of the writes
                                      committed per second */
    size_t queue_len;              /* this writer's queue to the flusher */
    size_t queue_capacity;         /* 0: no queue (only bytes count) */
};

enum throttle_verdict { THROTTLE_ADMIT, THROTTLE_DELAY, THROTTLE_REFUSE };

/*
 * The law. Pressure is the larger of (dirty - soft) / (hard - soft) and the
 * queue fill scaled from THROTTLE_QUEUE_SOFT (0) to THROTTLE_QUEUE_HARD (1).
 * At pressure >= 1: REFUSE. At pressure <= 0 (below both soft points):
 * ADMIT with no delay. Between: DELAY by the time the flusher needs to drain
 * the backlog past the soft points at its measured rates, the larger of
 * (dirty - soft) / byte rate and (queue_len - soft fill) / write rate, at
 * least 1 ms and at most THROTTLE_MAX_MS. *delay_ms is set in every case
 * (0 unless DELAY). Any thread; reads nothing but `in`.
 */
enum throttle_verdict throttle_decide(const struct throttle_input *in,
                                      uint32_t *delay_ms);

#endif
