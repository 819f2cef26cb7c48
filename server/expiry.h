/*
 * expiry.h: expired rows on disk are removed in the background.
 *
 * A row whose expiry passed while its value was on disk only is a miss for
 * every command (the fetcher and the warmup treat it as absent), but the
 * row itself stays in the database until something removes it. Whoever
 * meets one (a fetcher thread, a warmup thread) leaves a hint here: the
 * key and the CAS of the row it read. The flusher, the only writer, takes
 * hints at the start of each transaction, before the batch's own writes,
 * and deletes a row only if it still has that CAS and is still expired,
 * and no version of the key is in memory: a newer write of the key is
 * never undone, whichever thread queued it.
 *
 * Hints are bounded (EXPIRY_HINTS_MAX); a fetcher's hint is dropped when
 * the list is full (counted: the row is met again by the next fetch), the
 * warmup waits for room instead, so every expired row it reads goes.
 * Rows that nobody reads stay until their key is written or flushed: an
 * expiry sweep of the whole table would need an index on the expiry,
 * which the schema does not have.
 */
#ifndef MCKV_SERVER_EXPIRY_H
#define MCKV_SERVER_EXPIRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/proto.h"

#define EXPIRY_HINTS_MAX 4096

struct expiry_hint {
    uint64_t cas;
    uint8_t nkey;
    char key[PROTO_KEY_MAX];
};

/* Any thread: the row of key with this CAS was read and found expired.
 * False when the list is full (nothing queued). */
bool expiry_hint(const char *key, uint8_t nkey, uint64_t cas);
/* True when hints are waiting (any thread, relaxed). */
bool expiry_pending(void);
/* Flusher: moves up to max hints to out; returns how many. */
size_t expiry_take(struct expiry_hint *out, size_t max);
#define EXPIRY_PURGE_MAX 256   /* hints one expiry_purge() takes at most */

struct kvstore;
struct kvstore_ops;
/*
 * Flusher, in its open transaction before the batch's own writes: takes
 * up to `max` hints and deletes each row that still has the hint's CAS,
 * is still expired, and whose key has no version in memory (a newer
 * write is never undone). Adds the rows deleted to *purged. MCKV_OK, or
 * the error of a delete (the transaction is then rolled back; the hints
 * taken are lost, as hints may be).
 */
int expiry_purge(const struct kvstore_ops *ops, struct kvstore *kv, size_t max,
                 uint64_t *purged);
/* Flusher: n expired rows were deleted. */
void expiry_count_purged(uint64_t n);

struct expiry_counters {
    uint64_t hints, dropped, purged;
};
void expiry_counters(struct expiry_counters *out);
/* Tests and restarts in one process: empties the list and the counters. */
void expiry_reset(void);

#endif
