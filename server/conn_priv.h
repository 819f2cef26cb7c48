/*
 * conn_priv.h: what conn.c and conn_fetch.c share and nobody else uses.
 * conn.c reads, runs requests and writes; conn_fetch.c keeps what a
 * request waits for from disk (fetches in flight, the values they
 * brought, a multiget's window).
 */
#ifndef MCKV_SERVER_CONN_PRIV_H
#define MCKV_SERVER_CONN_PRIV_H

#include <stdbool.h>

#include "server/conn.h"

/* Fetches one request may ask for one key before it gives up (a value
 * ejected again each time before the request could use it). */
#define CONN_FETCH_ROUNDS_MAX 4

/* Owner thread: runs the connection again as if an event had come (a
 * fetch finished, a commit happened, a delay ran out). conn.c. */
void conn_resume(struct conn *c);
/* Owner thread: releases every value held for the request. conn_fetch.c. */
void conn_release_held(struct conn *c);

/* True while fetches in flight (or a SASL step) keep the connection from
 * running its requests. Not for a multiget in pieces: it answers what it can while
 * its fetches are out (it parks again at the key that waits). */
static inline bool
conn_fetch_blocks(const struct conn *c)
{
    return (c->fetch_pending > 0 && !c->mget.active) || c->auth_pending;
}

#endif
