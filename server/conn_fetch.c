/*
 * conn_fetch.c: what a connection's request waits for from disk (contract
 * in conn.h): background fetches in flight, the values they brought (the
 * hold), parking and resuming.
 *
 * Two shapes of waiting. A single-key request (a binary GET, an mg, a
 * delete of a key on disk, ...) parks whole: its output is undone, it
 * stays unconsumed, and it runs again from the start once every fetch it
 * asked for is back (conn_need_fetch in conn.c, conn_park_settle). A text
 * multiget is answered in pieces (struct conn_mget): it keeps what it
 * queued, waits at the first key on disk, and meanwhile fetches a bounded
 * window of the keys after it (conn_prefetch), so N values on disk cost
 * about N / CONN_PREFETCH_MAX disk round trips in sequence instead of N;
 * it runs again on every completion. Its values are held only until
 * queued (conn_fetched hands the hold over), so what it keeps is bounded
 * by the window, and what it queues by CONN_OUT_HIGH.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "server/cache.h"
#include "server/conn.h"
#include "server/conn_priv.h"
#include "util/log.h"

/* Not a fetch, but the same kind of wait: a SASL step on the auth thread
 * parks the request as a fetch does (conn_fetch_blocks). */
void
conn_auth_done(struct conn *c)
{
    c->auth_pending = false;
    conn_resume(c);
}

void
conn_release_held(struct conn *c)
{
    for (unsigned i = 0; i < c->nheld; i++)
        cache_item_release(c->held[i]);
    c->nheld = 0;
    c->held_bytes = 0;
}

/* Index of key's held value, or -1. */
static int
held_find(const struct conn *c, const char *key, uint8_t nkey)
{
    for (unsigned i = 0; i < c->nheld; i++) {
        const struct item *it = c->held[i];
        if (it->nkey == nkey && memcmp(item_key(it), key, nkey) == 0)
            return (int)i;
    }
    return -1;
}

/* Removes held[i] and returns its reference. Order does not matter. */
static struct item *
held_take(struct conn *c, unsigned i)
{
    struct item *it = c->held[i];
    c->held[i] = c->held[--c->nheld];
    c->held_bytes -= it->nbytes;
    return it;
}

struct item *
conn_fetched(struct conn *c, const char *key, uint8_t nkey)
{
    int i = held_find(c, key, nkey);
    return i >= 0 ? held_take(c, (unsigned)i) : NULL;
}

void
conn_hold_drop(struct conn *c, const char *key, uint8_t nkey)
{
    int i = held_find(c, key, nkey);
    if (i >= 0)
        cache_item_release(held_take(c, (unsigned)i));
}

void
conn_fetch_done(struct conn *c, struct item *it, bool failed)
{
    c->fetch_pending--;
    if (c->fetch_orphans > 0) {
        /* asked for by a multiget that ended meanwhile: nobody will
         * serve it, and a later request must not (it may be stale) */
        c->fetch_orphans--;
        if (it != NULL)
            cache_item_release(it);
        if (c->fetch_pending == 0)
            conn_resume(c);
        return;
    }
    if (failed)
        c->fetch_failed = true;   /* the request gives up when it runs again */
    if (it != NULL) {
        if (c->nheld == c->held_cap) {
            unsigned cap = c->held_cap ? c->held_cap * 2 : 8;
            struct item **h = realloc(c->held, cap * sizeof(*h));
            if (h != NULL) {
                c->held = h;
                c->held_cap = cap;
            }
        }
        if (c->nheld < c->held_cap) {
            c->held[c->nheld++] = it;
            c->held_bytes += it->nbytes;
        } else {
            cache_item_release(it);
        }
    }
    /* A multiget answers what it can at every completion; a request that
     * parked whole waits for all of its fetches. */
    if (c->fetch_pending == 0 || c->mget.active) {
        if (c->fetch_pending == 0 && c->fetch_rounds < UINT8_MAX)
            c->fetch_rounds++;
        conn_resume(c);
    }
}

enum conn_park
conn_park_settle(struct conn *c, const struct conn_out_mark *m, size_t start)
{
    enum conn_park st = c->park_state;
    if (st == CONN_PARK_NONE)
        return st;
    /* Undo what the request wrote: it runs again from the start (WAIT) or
     * is answered with a temporary failure instead (FAIL). */
    conn_out_rewind(c, m);
    c->park_state = CONN_PARK_NONE;
    if (st == CONN_PARK_WAIT)
        c->rstart = start;
    return st;
}

/* ---- a multiget answered in pieces ---- */

enum conn_park
conn_mget_wait(struct conn *c, const char *key, uint8_t nkey, bool stream,
               bool asked)
{
    const char *why;
    if (c->fetch_failed) {
        c->fetch_failed = false;
        why = "the disk read failed";
    } else if (asked && c->fetch_pending > 0) {
        return CONN_PARK_WAIT;   /* its fetch may be among those */
    } else if (c->mget.tries >= CONN_FETCH_ROUNDS_MAX) {
        why = "value evicted again before the request could use it";
    } else if (c->owner->ops->need_fetch(c->owner, c, key, nkey,
                                         stream ? CONN_FETCH_STREAM : 0)) {
        c->fetch_pending++;
        c->mget.tries++;
        return CONN_PARK_WAIT;
    } else if (c->fetch_pending > 0) {
        /* the queue is full, but our own fetches will make room: this
         * one is asked for again when one of them is back */
        return CONN_PARK_WAIT;
    } else {
        why = "the fetch queue is full";
    }
    log_error_limited("connection %d: %.*s: giving up after %u fetch rounds: %s",
                      c->fd, (int)nkey, key, c->mget.tries, why);
    return CONN_PARK_FAIL;
}

bool
conn_prefetch_room(const struct conn *c)
{
    return c->nheld + c->fetch_pending < CONN_PREFETCH_MAX &&
           c->held_bytes < CONN_PREFETCH_BYTES;
}

bool
conn_prefetch(struct conn *c, const char *key, uint8_t nkey)
{
    if (held_find(c, key, nkey) >= 0)
        return true;
    if (!c->owner->ops->need_fetch(c->owner, c, key, nkey,
                                   CONN_FETCH_STREAM | CONN_FETCH_OPTIONAL))
        return false;
    c->fetch_pending++;
    return true;
}

void
conn_mget_end(struct conn *c)
{
    c->fetch_orphans = c->fetch_pending;
    c->fetch_failed = false;   /* a prefetch's, for a key answered since */
    c->mget = (struct conn_mget){ 0 };
}
