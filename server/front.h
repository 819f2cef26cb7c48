/*
 * front.h: the protocol front ends (binary, text, meta). Each takes whole
 * requests from a connection's read buffer, parses them with protocol/,
 * runs them through the command core (process.h) and composes the reply
 * with protocol/'s composers. They translate; they decide nothing about
 * the cache.
 */
#ifndef MCKV_SERVER_FRONT_H
#define MCKV_SERVER_FRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/conn.h"
#include "server/process.h"

struct conn;
struct text_req;

/* Worker thread: handles one request at c->rbuf + c->rstart. On CONN_REQ_OK
 * c->rstart moves past it (and c->swallow may be set). On CONN_REQ_NEED_MORE
 * *need holds the total bytes the request needs when known (else 0). */
enum conn_req front_bin(struct conn *c, size_t *need);
enum conn_req front_text(struct conn *c, size_t *need);

/* Worker thread: a text request of a connection not authenticated yet
 * (-Y: front_auth.c), with front_text's contract. */
enum conn_req front_text_auth(struct conn *c, size_t *need);

/* ---- shared by the front ends (worker thread) ---- */

/* The command context of a connection: its worker's counters, and its
 * admission and fetched-value answers. `env` is filled and must live as
 * long as ctx. */
void front_ctx(struct conn *c, struct cmd_ctx *ctx, struct cmd_env *env);

/* A command answered CMD_NEED_FETCH for key: starts the fetch (the
 * request runs again once the value is in memory). */
void front_need_fetch(struct conn *c, const char *key, uint8_t nkey);

/* Meta commands (mg, ms, md, ma, mn, me) of a parsed text request. */
void front_meta(struct conn *c, const struct text_req *req);

/* The administration commands of a parsed text request (shutdown,
 * cache_memlimit, lru_crawler, slabs, lru). */
enum conn_req front_admin(struct conn *c, const struct text_req *req);

/* Splits s[0..len) on ' ' (memcached's tokenizer) into up to `max` words,
 * which point into s; returns how many. */
unsigned front_words(const char *s, size_t len, const char **w, size_t *n,
                     unsigned max);

/* lru_crawler metadump <all|hash|class ids> (arg: the word after
 * "metadump") and stats cachedump <class> <limit> (arg: the stats
 * arguments, "cachedump" first), as memcached 1.6.18 answers them. Each
 * call writes one bounded piece of the answer: while c->dump.kind is set
 * afterwards the request is not done, and the caller leaves it unconsumed
 * to be run again (front_dump.c says how). Worker thread. */
void front_dump_metadump(struct conn *c, const char *arg, size_t len);
void front_dump_cachedump(struct conn *c, const char *arg, size_t len);

/* Text `stats` and binary STAT share the group renderer; this emits one
 * "STAT name value" line (ctx is the connection). */
void front_text_stat_emit(void *ctx, const char *name, const char *value);

#endif
