/*
 * warmup.h: the restart scan.
 *
 * At start the rows on disk are loaded into the cache in the background
 * while the server already answers: the row id range is split into one
 * range per thread (when the engine can split: scan_end/scan_range), each
 * read by a warmup thread of its own with its own read-only handle, in
 * chunks. Rows are installed only where the key is absent (cache_install),
 * so nothing set, deleted or flushed meanwhile is overwritten or revived.
 * When every range was read to its end the cache is marked complete (a
 * miss is then a miss); when memory runs out first every thread stops and
 * the rest stays on disk, read on demand.
 */
#ifndef MCKV_SERVER_WARMUP_H
#define MCKV_SERVER_WARMUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kvstore;
struct persist_engine;

enum warmup_state { WARMUP_NONE, WARMUP_RUNNING, WARMUP_DONE };

/* Main thread, before the flusher owns `kv` (the write handle, used here to
 * find the row range): sizes the hash tables for the rows and starts up to
 * `nthreads` threads. 0, or -1 with err set. */
int warmup_start(const struct persist_engine *engine, struct kvstore *kv,
                 unsigned nthreads, char *err, size_t errlen);
/* Main thread: stops the threads (at their next chunk) and joins them. */
void warmup_stop(void);

struct warmup_counters {
    enum warmup_state state;
    uint64_t loaded, skipped;    /* rows installed; expired or newer in memory */
    uint64_t elapsed_ms;         /* once DONE */
    bool truncated;              /* DONE without reading every row */
    uint64_t engine_errors;
};
/* Any thread. */
void warmup_counters(struct warmup_counters *out);

#endif
