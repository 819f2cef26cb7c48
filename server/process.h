/*
 * process.h: the command core. get, store (set/add/replace/append/prepend/
 * cas), delete, delta (incr/decr), touch and flush_all, each written once
 * for the binary, text and meta front ends.
 *
 * A command takes a small context (the calling worker's counters and the
 * connection's answers to "may I write?" and "was this value fetched for
 * me?") and fills a struct cmd_result: a status, and where it applies an
 * item reference, the CAS, the new counter value, or the key that must be
 * fetched from disk before the command can be answered. It never sees a
 * socket, a connection or wire bytes; the front ends map a parsed request
 * to a command and compose the reply with protocol/'s composers.
 *
 * Commands count memcached's stats (cmd_get, get_hits, cas_badval, ...) in
 * ctx->ts, so every protocol counts the same way. All commands run on a
 * worker thread.
 */
#ifndef MCKV_SERVER_PROCESS_H
#define MCKV_SERVER_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/cache.h"

struct thread_stats;

/* What a command may ask of the connection that runs it. */
struct cmd_env {
    void *owner;
    /* Backpressure, before a write changes anything: false refuses it
     * (past the hard limit). May arrange for the reply to be delayed. */
    bool (*admit_write)(void *owner);
    /* A value fetched from disk for the current request that the cache has
     * lost again or did not keep (a reference, handed over), else NULL.
     * May be NULL. */
    struct item *(*fetched)(void *owner, const char *key, uint8_t nkey);
};

struct cmd_ctx {
    struct thread_stats *ts;
    const struct cmd_env *env;
};

enum cmd_status {
    CMD_OK,           /* hit, stored, deleted, touched, flushed */
    CMD_MISS,         /* get/touch/delete/delta: no such key */
    CMD_NOT_STORED,   /* add: exists; replace/append/prepend: missing */
    CMD_EXISTS,       /* CAS mismatch */
    CMD_NOT_FOUND,    /* cas on a missing key */
    CMD_NON_NUMERIC,  /* incr/decr on a value that is not a number */
    CMD_E2BIG,        /* value over item_size_max */
    CMD_ENOMEM,       /* no memory for the item */
    CMD_TMPFAIL,      /* refused by backpressure, or a disk read failed */
    CMD_NEED_FETCH,   /* the answer depends on a value on disk: fetch key */
    CMD_DISABLED,     /* flush_all under -F */
};

struct cmd_result {
    enum cmd_status status;
    struct item *it;       /* get: the item (a reference: cmd_result_done) */
    uint64_t cas;          /* stored/delta: the new CAS */
    uint64_t value;        /* delta: the new value */
};

/* A CAS as clients may see it (0 under -C). */
uint64_t cmd_visible_cas(uint64_t cas);

/* Releases what a result holds. */
void cmd_result_done(struct cmd_result *r);

struct process_options {
    bool flush_enabled;            /* false: flush_all refused (-F) */
    bool shutdown_enabled;         /* the shutdown command (-A) */
    bool dump_enabled;             /* metadump and cachedump allowed */
    bool debug_commands;           /* debugtime (memcached-debug's) */
    /* false (memcached -C): clients see every CAS as 0, and a CAS they
     * send matches nothing, as in memcached. Items keep their CAS inside,
     * which orders writes and flushes, on disk too. */
    bool cas_visible;
    /* Called for a delayed flush_all (persistence records it so that a
     * restart before `when` still applies it). May be NULL. */
    void (*on_delayed_flush)(rel_time_t when);
};
/* Main thread, before workers start. */
void process_setup(const struct process_options *opts);
/* The options in force (any thread; they do not change after start). */
const struct process_options *process_options(void);

/* get / gets / gat / gats: with touch, sets the expiry to `exptime` (a
 * rel_time_t from cache_realtime). OK with r->it, MISS or NEED_FETCH.
 * `count_get` false for binary TOUCH (counted as a touch only). */
void cmd_get(const struct cmd_ctx *ctx, const char *key, uint8_t nkey,
             bool touch, rel_time_t exptime, bool count_get,
             struct cmd_result *r);

/* A multiget's look ahead: true when key's value is on disk only, so a
 * get of it would answer NEED_FETCH. Counts nothing and leaves the LRU
 * and the meta state alone (an expired item met is dropped, as by any
 * lookup): the key is looked at again when it is answered. */
bool cmd_get_on_disk(const char *key, uint8_t nkey);

/* Storage. For APPEND/PREPEND flags and exptime are ignored (the old
 * item's are kept). A non-zero cas_in must match (CACHE_CAS: the cas
 * command; for the other ops the binary protocol's CAS field). A failed
 * set drops the old value, as memcached does, so a stale value is not
 * served after the client was told the set failed. */
void cmd_store(const struct cmd_ctx *ctx, enum cache_store_op op,
               const char *key, uint8_t nkey, uint32_t flags,
               rel_time_t exptime, const char *value, uint32_t vlen,
               uint64_t cas_in, struct cmd_result *r);

/* A value refused for its size before it was read: counts it and, for a
 * set, drops the old value (memcached does). */
void cmd_store_too_large(const struct cmd_ctx *ctx, bool is_set,
                         const char *key, uint8_t nkey);

/* delete: OK, MISS, EXISTS (cas_in != 0 and it differs), TMPFAIL or
 * NEED_FETCH. */
void cmd_delete(const struct cmd_ctx *ctx, const char *key, uint8_t nkey,
                uint64_t cas_in, struct cmd_result *r);

/* incr/decr by delta. When the key is missing and `create` holds, it is
 * created with `initial` and `exptime` (the binary protocol's and meta's
 * autovivify); r->value is the value after the command. */
void cmd_delta(const struct cmd_ctx *ctx, const char *key, uint8_t nkey,
               bool incr, uint64_t delta, uint64_t cas_in, bool create,
               uint64_t initial, rel_time_t exptime, struct cmd_result *r);

/* touch: OK, MISS, TMPFAIL or NEED_FETCH. */
void cmd_touch(const struct cmd_ctx *ctx, const char *key, uint8_t nkey,
               rel_time_t exptime, struct cmd_result *r);

/* ---- the meta protocol's commands: the cache's meta options, counted
 * and admitted as the commands above ---- */

/* mg: OK with r->it and *info (won, stale, ...), MISS, TMPFAIL (T or N
 * refused by backpressure) or NEED_FETCH. */
void cmd_mget(const struct cmd_ctx *ctx, const char *key, uint8_t nkey,
              const struct cache_mget_opts *o, struct cmd_result *r,
              struct cache_mget_info *info);

/* ms: as cmd_store (o->cas_in is the CAS to match); *info has the CAS and
 * the stored length. */
void cmd_mstore(const struct cmd_ctx *ctx, enum cache_store_op op,
                const char *key, uint8_t nkey, uint32_t flags,
                rel_time_t exptime, const char *value, uint32_t vlen,
                const struct cache_store_opts *o, struct cmd_result *r,
                struct cache_store_info *info);

/* md: as cmd_delete; with o->invalidate the item is marked stale instead
 * (r->cas: the stale copy's CAS). */
void cmd_mdelete(const struct cmd_ctx *ctx, const char *key, uint8_t nkey,
                 const struct cache_delete_opts *o, struct cmd_result *r);

/* ma: as cmd_delta; *info has the value, CAS, expiry and whether N
 * created the key. */
void cmd_mdelta(const struct cmd_ctx *ctx, const char *key, uint8_t nkey,
                bool incr, uint64_t delta, const struct cache_delta_opts *o,
                struct cmd_result *r, struct cache_delta_info *info);

/* flush_all: at once (delay_s 0) or once delay_s seconds (relative, or an
 * absolute unix time past 30 days, memcached's rule) have passed. OK or
 * DISABLED. */
void cmd_flush(const struct cmd_ctx *ctx, uint32_t delay_s,
               struct cmd_result *r);

#endif
