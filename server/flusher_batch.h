/*
 * flusher_batch.h: the flusher's batch, one record per key.
 *
 * The flusher pops the workers' rings into a batch as the records arrive,
 * not only when it starts a transaction, so that a value overwritten
 * before it reached the disk is released at once instead of waiting in a
 * ring or a batch for a commit that would skip it. Puts are kept in an
 * open-addressing map by key (the item's own hash): a put of a key that
 * already has one in the batch keeps only the one that is still the
 * linked version (cache_item_is_current) and hands the other back to the
 * caller to drop. The newest version therefore wins by the cache's truth,
 * not by arrival order (records of one key from different workers come in
 * any order) nor by CAS (a client may choose it, meta E). Deletes are kept
 * in arrival order without the map; the write-time checks of flusher.c
 * decide them as before.
 *
 * Flusher thread only; no locks of its own.
 */
#ifndef MCKV_SERVER_FLUSHER_BATCH_H
#define MCKV_SERVER_FLUSHER_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct item;
struct ring;

struct fbatch {
    void **recs;          /* records: an item, or a tagged delete record */
    size_t n, cap;        /* cap: the batch's records at most */
    uint32_t *slots;      /* map of puts: index + 1 into recs, 0 = empty */
    uint32_t mask;        /* slots - 1 (a power of two >= 2 cap) */
    uint64_t *drained;    /* per worker: records popped into this batch */
    unsigned nworkers;
    /* the caller's count of the puts it dropped as superseded (the items
     * fbatch_add_put() handed back) and their cache_item_total_size() */
    uint64_t superseded, superseded_bytes;
};

/* Room for `cap` records from `nworkers` rings. 0, or -1 (out of memory). */
int fbatch_init(struct fbatch *b, size_t cap, unsigned nworkers);
void fbatch_deinit(struct fbatch *b);
/* Hands every record to drop() (NULL: they were handed back already), then
 * empties the batch; drained[] is left to the caller (it publishes it after
 * the records are dropped, then zeroes it). */
void fbatch_reset(struct fbatch *b, void (*drop)(void *rec));

static inline bool fbatch_full(const struct fbatch *b) { return b->n >= b->cap; }

/* Adds a put of `it` (the batch takes the caller's reference). Returns the
 * item whose reference the caller must now drop (clean and release): the
 * superseded one of the same key, or `it` itself when it is already
 * superseded or is the item the batch holds (a touch queues an item
 * again); NULL when `it` took a new place. */
struct item *fbatch_add_put(struct fbatch *b, struct item *it);
/* Adds a delete record (tagged pointer, flusher.c's). */
void fbatch_add_del(struct fbatch *b, void *rec);
/* Pops worker `w`'s ring into the batch until the ring is empty or a
 * record needs a place the full batch does not have (a put of a key the
 * batch holds never does: a full batch goes on merging), counting
 * drained[w]; records tagged in their low bit are deletes. Superseded puts
 * go to drop(), counted in superseded(_bytes). *held is the ring's record
 * popped but not taken (NULL: none): tried first, and left there when the
 * batch is full. */
void fbatch_pop_ring(struct fbatch *b, struct ring *r, unsigned w, void **held,
                     void (*drop)(void *rec));
#endif
