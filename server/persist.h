/*
 * persist.h: write-behind persistence. The flusher thread (the only writer
 * of the engine), background fetches and the restart warmup (on the fetcher
 * pool), and the write admission that turns a growing backlog into slower
 * replies and then temporary failures.
 *
 * Workers queue every change through their own SPSC ring to the flusher
 * (the cache calls persist_cache_hook() on the worker's thread); the flusher
 * and fetchers answer through each worker's completion ring. See
 * docs/architecture.md for the whole flow.
 */
#ifndef MCKV_SERVER_PERSIST_H
#define MCKV_SERVER_PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/stats.h"

struct config;
struct conn;
struct cache_change;
struct worker;

/* Main thread, after cache_setup() and before workers start: opens the
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
/* Worker thread: the notify fd of its completion ring, and the drain of it
 * (resumes connections whose fetch finished or whose writes committed). */
int persist_completion_fd(unsigned worker);
void persist_completions(struct worker *w);

enum persist_admit { PERSIST_ADMIT_OK, PERSIST_ADMIT_DELAY, PERSIST_ADMIT_REFUSE };
/* Worker thread, before a write: REFUSE past the hard limit or when the
 * ring is full (reply temporary failure); DELAY past the soft limit, with
 * *delay_ms the reply delay (backlog / measured drain rate). */
enum persist_admit persist_admit_write(uint32_t *delay_ms);

/* Worker thread: changes queued so far by this worker, and committed. */
uint64_t persist_queued_seq(unsigned worker);
uint64_t persist_committed_seq(unsigned worker);

/* Worker thread: reads key from disk in the background; the connection is
 * resumed (conn_resume) when the value is in the cache or known absent.
 * false when the fetch queue is full (reply temporary failure). */
bool persist_fetch(struct conn *c, const char *key, uint8_t nkey);

/* Worker thread: a flush_all with a delay was scheduled for `when`; it is
 * recorded so that a restart before it falls due still applies it. */
void persist_schedule_flush(uint32_t when);

/* Main thread (SIGHUP): new backpressure limits and flush interval. */
void persist_set_limits(uint64_t soft_mb, uint64_t hard_mb, uint64_t memory_mb,
                        uint32_t flush_interval_ms);

/* `stats kvstore` */
void persist_stats(stats_emit_fn emit, void *ctx);

/* `stats engine`: the storage engine's own counters (SQLite: WAL pages,
 * checkpoints in and off the commit path, page cache use), as of the
 * flusher's last snapshot (at most a second old, snapshot_age_ms says how
 * old). Only "engine none" when persistence is off. Any thread. */
void persist_engine_stats(stats_emit_fn emit, void *ctx);
/* The commit and background-fetch histograms, for `stats timings`. */
void persist_timings(stats_emit_fn emit, void *ctx);

#endif
