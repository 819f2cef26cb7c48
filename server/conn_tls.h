/*
 * conn_tls.h: a connection's TLS transport (struct conn_io): OpenSSL over
 * the connection's non-blocking socket, its handshake driven by the
 * connection's own events so a slow handshake never blocks the worker.
 */
#ifndef MCKV_SERVER_CONN_TLS_H
#define MCKV_SERVER_CONN_TLS_H

#include <stddef.h>

struct conn;

/* Main thread, before the workers start: the most plaintext one write
 * gathers into a record (ssl_wbuf_size). */
void conn_tls_setup(size_t wbuf_size);
/* Owner thread, right after conn_create(): makes c a TLS server
 * connection from the current context (tls.h); its handshake runs on its
 * first events. 0, or -1 (out of memory, TLS not set up): the caller
 * destroys c. */
int conn_tls_start(struct conn *c);

#endif
