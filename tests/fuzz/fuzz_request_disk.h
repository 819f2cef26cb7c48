/*
 * fuzz_request_disk.h: a fake persistence for fuzz_request.c: the disk is
 * a table of rows in memory, the flusher commits every queued change when
 * the target calls fake_disk_run(), and the fetcher answers each fetch
 * there as server/fetcher.c does (install into the cache, stream outside
 * it, or remember the key as absent). One thread: the target's.
 */
#ifndef MCKV_TESTS_FUZZ_REQUEST_DISK_H
#define MCKV_TESTS_FUZZ_REQUEST_DISK_H

#include <stdbool.h>
#include <stdint.h>

#include "server/cache.h"

struct conn;

enum fake_disk_mode {
    FAKE_DISK_OFF,         /* engine = memory */
    FAKE_DISK_WARM,        /* persistent, warmup done: misses are misses */
    FAKE_DISK_COLD,        /* persistent, incomplete: every miss fetches */
    FAKE_DISK_FAILING,     /* cold, and every third fetch fails on disk */
};

/* Empties the disk and the queues; before cache_setup(). */
void fake_disk_setup(enum fake_disk_mode mode);
/* After cache_setup(): marks the cache complete or not, as a warmup. */
void fake_disk_started(void);
/* cache_options.on_change: queues the change for the next commit. */
void fake_disk_on_change(const struct cache_change *change);
/* conn_owner_ops.need_fetch's answer: queues a fetch; false when the
 * queue is full (as the fetcher pool's). */
bool fake_disk_need_fetch(const char *key, uint8_t nkey, unsigned how);
/* Commits the queued changes and completes the queued fetches, handing
 * each value to *cp (conn_fetch_done), or releasing it once *cp is NULL
 * (the connection is gone: a completion may close it). True when it did
 * anything. */
bool fake_disk_run(struct conn *const *cp);
/* Nothing queued. */
bool fake_disk_idle(void);
/* Frees the rows; after cache_teardown(). */
void fake_disk_teardown(void);

#endif
