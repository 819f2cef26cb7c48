/*
 * persist.h: write-behind persistence, as the rest of the server sees it.
 *
 * Behind this header: the flusher thread (server/flusher.h, the only
 * writer of the engine), background fetches on the fetcher pool
 * (server/fetcher.h), the restart warmup (server/warmup.h) and the
 * backpressure law (server/throttle.h). Workers queue every change through
 * their own SPSC ring to the flusher (the cache calls persist_cache_hook()
 * on the worker's thread); the flusher and fetchers answer through each
 * worker's completion ring, naming a connection only by the (worker,
 * connection id) token the worker gave. Nothing here knows a connection or
 * a worker's structure. See docs/architecture.md for the whole flow.
 */
#ifndef MCKV_SERVER_PERSIST_H
#define MCKV_SERVER_PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cache_change;
struct config;
struct fetch_result;

/* Main thread, after cache_setup() and before workers start: registers
 * `stats kvstore`, `stats engine` and the persistence timings, opens the
 * engine, restores the CAS high mark. 0 or -1 with err set. */
int persist_setup(const struct config *cfg, unsigned nworkers, char *err,
                  size_t errlen);
/* Main thread, after workers start: starts the flusher, the fetchers and
 * the warmup. 0 or -1 with err set. */
int persist_start(char *err, size_t errlen);
/* Main thread, after workers stopped: writes every queued change, commits,
 * stops the threads and closes the engine. */
void persist_stop(void);

/* True when an engine that keeps data is configured. */
bool persist_enabled(void);
bool persist_durability_sync(void);

/* The cache's on_change hook (any worker thread). */
void persist_cache_hook(const struct cache_change *change);

/* Worker thread: binds the calling thread to worker `id` (its rings). */
void persist_worker_bind(unsigned id);

/* Worker thread: the notify fd of its completion ring. */
int persist_completion_fd(unsigned worker);
/* Worker thread: drains its completion ring. fetched(ctx, r) runs for each
 * finished fetch (r->conn_id is the id given to persist_fetch; the
 * reference r->item passes to the callee; r is freed after the call).
 * Returns true when a commit advanced this worker's committed sequence. */
typedef void (*persist_fetched_fn)(void *ctx, const struct fetch_result *r);
bool persist_completions(unsigned worker, persist_fetched_fn fetched, void *ctx);

enum persist_admit { PERSIST_ADMIT_OK, PERSIST_ADMIT_DELAY, PERSIST_ADMIT_REFUSE };
/* Worker thread, before a write: REFUSE past the hard limit or when the
 * ring is full (reply temporary failure); DELAY past the soft limit, with
 * *delay_ms the reply delay (backlog / measured drain rate). */
enum persist_admit persist_admit_write(uint32_t *delay_ms);

/* Worker thread: the sequence number of the last change this thread
 * queued since the previous call, 0 when none: the write seq of the
 * request that just ran. */
uint64_t persist_take_write_seq(void);
/* Any thread: changes of `worker` committed so far (acquire: the items
 * they cover are clean). */
uint64_t persist_committed_seq(unsigned worker);

/* Worker thread: reads key from disk in the background for connection
 * `conn_id` of `worker`; the result comes back through that worker's
 * completion ring. False when the fetch queue is full (reply temporary
 * failure, counted as one, unless `optional`: a prefetch nobody waits
 * for yet). `stream`: see fetcher_submit(). */
bool persist_fetch(unsigned worker, uint64_t conn_id, const char *key,
                   uint8_t nkey, bool stream, bool optional);

/* Worker thread: a flush_all with a delay was scheduled for `when`; it is
 * recorded so that a restart before it falls due still applies it. */
void persist_schedule_flush(uint32_t when);

/* Main thread (SIGHUP): new backpressure limits and flush interval. */
void persist_set_limits(uint64_t soft_mb, uint64_t hard_mb, uint64_t memory_mb,
                        uint32_t flush_interval_ms);

#endif
