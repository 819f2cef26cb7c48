/*
 * fetcher.h: background fetches on the hot thread pool.
 *
 * A worker that meets a key whose value is on disk only asks for it here
 * and goes on serving others. A fetcher thread (util/hotpool.c; each owns a
 * read-only engine handle) reads the row, installs the value in the cache
 * (only where nothing newer is in memory) or records the key as absent, and
 * hands a fetch_result back through a callback, to be posted to the worker
 * that asked. The result names the requester by the token it gave (worker
 * id, connection id): the fetcher never sees a connection.
 */
#ifndef MCKV_SERVER_FETCHER_H
#define MCKV_SERVER_FETCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/proto.h"

struct hist;
struct item;
struct persist_engine;

struct fetch_result {
    unsigned worker;          /* the token the requester gave */
    uint64_t conn_id;
    struct item *item;        /* the value read, referenced (the receiver
                                 releases it), or NULL: not on disk, newer
                                 in memory, or failed */
    bool failed;              /* the disk read failed */
    bool stream;              /* asked for streaming (fetcher_submit) */
    uint8_t nkey;
    char key[PROTO_KEY_MAX];
};

struct fetcher_options {
    const struct persist_engine *engine;
    unsigned nfetchers;       /* threads (>= 1) */
    size_t backlog;           /* fetches queued while every thread is busy */
    /* Fetcher thread: a fetch finished; the callee owns `r` and frees it
     * with fetcher_result_free(). */
    void (*done)(void *ctx, struct fetch_result *r);
    void *ctx;
};

/* Main thread: starts the fetcher threads, each with its own read-only
 * handle. 0, or -1 (the reason is logged). */
int fetcher_setup(const struct fetcher_options *o);
/* Runs every fetch already submitted, then stops and joins the threads.
 * Main thread, once nothing submits any more. */
void fetcher_stop(void);

/* Any thread but a fetcher: reads key in the background for the requester
 * (worker, conn_id). False when the backlog is full or out of memory
 * (nothing was queued).
 * With `stream` the value is for that requester's reply only (a multiget
 * larger than memory): it is made resident only if memory has room for it
 * without evicting anything; else it is allocated outside the cache
 * (cache_item_alloc_outside) and handed back without being linked, so a
 * value that cannot stay does not evict the ones that can. Without it the
 * value is installed like any other, evicting as a store would. */
bool fetcher_submit(unsigned worker, uint64_t conn_id, const char *key,
                    uint8_t nkey, bool stream);
/* Releases r->item if still set, and frees r. Any thread. */
void fetcher_result_free(struct fetch_result *r);

struct fetcher_counters {
    uint64_t fetches, misses;        /* finished; of those, not on disk */
    uint64_t streamed;               /* of those, served outside the cache */
    uint64_t us_total, us_max;
    uint64_t engine_errors;
};
/* Any thread. */
void fetcher_counters(struct fetcher_counters *out);
/* Any thread: adds the fetch-time histogram into *out. */
void fetcher_hist(struct hist *out);

#endif
