/*
 * sasl_auth.h: SASL authentication for the binary protocol (-S), with
 * cyrus-sasl under memcached's application name, so that a memcached
 * setup (SASL_CONF_PATH, memcached.conf, saslpasswd2 -a memcached) works.
 *
 * Why a thread: sasl_server_start/step may read a sasldb file or talk to
 * saslauthd over a socket, and a worker never blocks. Every cyrus call on
 * a connection's sasl_conn_t runs on one auth thread, so a sasl_conn_t is
 * only ever used by one thread and cyrus needs no mutex callbacks.
 *
 * A session is one connection's exchange; ownership passes back and forth:
 * the worker fills a request and submits it (the session then belongs to
 * the auth thread), the auth thread answers and posts it on that worker's
 * completion ring with the connection id (the session belongs to the
 * worker again). The worker finds the connection by its id; one closed
 * meanwhile is not found and the worker destroys the session. This module
 * includes no connection or worker header.
 */
#ifndef MCKV_SERVER_SASL_AUTH_H
#define MCKV_SERVER_SASL_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sasl_session;

/* What an exchange came to, as the binary reply says it. */
enum sasl_outcome {
    SASL_OUTCOME_OK,        /* authenticated: "Authenticated" */
    SASL_OUTCOME_CONTINUE,  /* another STEP is needed: AUTH_CONTINUE */
    SASL_OUTCOME_FAIL,      /* AUTH_ERROR */
};

/* Longest mechanism name accepted (memcached's MAX_SASL_MECH_LEN). */
#define SASL_MECH_MAX 32

/* Main thread, before the workers: sasl_server_init("memcached") (the
 * SASL_CONF_PATH directory, else /etc/sasl2, holds memcached.conf), the
 * mechanism list, per-worker completion rings, and the auth thread. 0, or
 * -1 with err filled. Without HAVE_SASL it fails (configure found no
 * libsasl2-dev). */
int sasl_auth_setup(unsigned nworkers, char *err, size_t errlen);
/* Main thread, after the workers stopped: stops the thread, sasl_done. */
void sasl_auth_teardown(void);
/* True once sasl_auth_setup() succeeded. */
bool sasl_auth_enabled(void);

/* Any thread: the mechanisms cyrus offers, separated by spaces (LIST_MECHS). */
const char *sasl_auth_mechs(void);

/* Worker thread: the notify fd of its completion ring. */
int sasl_auth_completion_fd(unsigned worker);
/* Worker thread: drains its ring; done(ctx, conn_id, s) for each answer. */
void sasl_auth_completions(unsigned worker,
                           void (*done)(void *ctx, uint64_t conn_id,
                                        struct sasl_session *s),
                           void *ctx);

/* Worker thread: a session for connection conn_id of this worker; NULL
 * when out of memory. */
struct sasl_session *sasl_session_create(unsigned worker, uint64_t conn_id);
/* Worker thread, while it owns s: hands s to the auth thread to be
 * disposed of (the sasl_conn_t is the auth thread's). *s becomes NULL. */
void sasl_session_destroy(struct sasl_session **s);
/* Worker thread, while it owns s: starts AUTH (step false: SASL_AUTH,
 * true: SASL_STEP) with mechanism mech and the client's data. False when
 * it could not be queued (out of memory, too many in flight): answer a
 * temporary failure. On true s belongs to the auth thread until it comes
 * back through sasl_auth_completions(). */
bool sasl_session_submit(struct sasl_session *s, bool step, const char *mech,
                         size_t nmech, const char *data, size_t ndata);
/* Worker thread, while it owns s: the answer of the last submit, if one
 * is waiting to be sent (then true, once: *out stays valid until the next
 * submit or the destroy). */
bool sasl_session_reply(struct sasl_session *s, enum sasl_outcome *outcome,
                        const char **out, size_t *nout);

#endif
