/*
 * engine_stats.h: `stats engine`, the storage engine's own counters (SQLite:
 * WAL pages, checkpoints in and off the commit path, page cache use).
 *
 * A handle belongs to one thread at a time, and the write handle belongs to
 * the flusher, so the flusher takes a snapshot at most once a second and
 * readers copy the snapshot under its mutex: a stats request never waits
 * for a commit.
 */
#ifndef MCKV_SERVER_ENGINE_STATS_H
#define MCKV_SERVER_ENGINE_STATS_H

#include "server/stats.h"

struct kvstore;
struct kvstore_ops;

/* The thread that owns kv (the flusher): replaces the snapshot. */
void engine_stats_take(const struct kvstore_ops *ops, struct kvstore *kv);
/* Any thread: the last snapshot, after snapshot_age_ms; before the first
 * (or with persistence off) only "engine <engine_name>" and
 * snapshot_age_ms 0. */
void engine_stats_render(stats_emit_fn emit, void *ctx, const char *engine_name);

#endif
