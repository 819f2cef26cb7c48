/*
 * engine_health.h: whether the storage engine's file can still be trusted.
 *
 * Any persistence thread that gets MCKV_ECORRUPT from the engine (the
 * flusher's transaction, a fetcher's read, a warmup scan) reports it here.
 * From then until a restart the engine is "damaged":
 *   - the flusher stops writing into the file (it holds what it has, dirty
 *     in memory, and gives it up at shutdown);
 *   - persist_admit_write() refuses every write (the hard backpressure
 *     limit's reply, `SERVER_ERROR temporary failure`): a persistence
 *     server must not acknowledge a write it cannot persist;
 *   - reads go on, from memory and from whatever of the file is readable.
 * The first report logs one line that names the file, the reason and the
 * repair; `stats kvstore` shows engine_state / engine_corrupt.
 *
 * Engine-neutral: an engine says "my data is damaged" by returning
 * MCKV_ECORRUPT (the SQLite engine maps SQLITE_CORRUPT and SQLITE_NOTADB);
 * how to repair it is the engine's kvstore_ops.repair_hint.
 */
#ifndef MCKV_SERVER_ENGINE_HEALTH_H
#define MCKV_SERVER_ENGINE_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

/* Main thread, before the persistence threads start: the file and how to
 * repair it (may be NULL), for the log line. Both must outlive the
 * threads. Clears the state. */
void engine_health_setup(const char *path, const char *repair_hint);

/* Any thread: `rc` is what an engine call of `who` ("flusher", "fetcher",
 * "warmup") returned and `detail` its last_error(). MCKV_ECORRUPT makes
 * the engine damaged (the first one logs); other codes are ignored.
 * Returns true when rc was MCKV_ECORRUPT. */
bool engine_health_report(int rc, const char *who, const char *detail);

/* Any thread: true once a report made the engine damaged. */
bool engine_health_damaged(void);

struct engine_health_counters {
    bool damaged;
    uint64_t corrupt_errors;   /* MCKV_ECORRUPT reports, all threads */
    int64_t damaged_since;     /* unix time of the first, 0 when none */
};
void engine_health_counters(struct engine_health_counters *out);

#endif
