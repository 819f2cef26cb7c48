/*
 * tls.h: the server's TLS context (memcached -Z), built from the ssl_* keys
 * of options.h, and its replacement by refresh_certs.
 *
 * One SSL_CTX is current at a time. A new connection's SSL object is made
 * from the current one; refresh_certs builds a whole new context from the
 * configured files and makes it current, while connections made earlier
 * keep theirs (each SSL holds a reference to its SSL_CTX). Without a TLS
 * build every function is a stub that says TLS is not there.
 */
#ifndef MCKV_SERVER_TLS_H
#define MCKV_SERVER_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct config;

/* Main thread, before the workers start: with ssl_enabled, builds the
 * context (the files are read now: a missing or unreadable certificate or
 * key fails here, err naming the file and OpenSSL's reason) and registers
 * the TLS lines of `stats`. 0, or -1 with one line in err. Without
 * ssl_enabled it does nothing and returns 0. */
int tls_setup(const struct config *cfg, char *err, size_t errlen);
/* Main thread, after the workers stopped. */
void tls_teardown(void);
/* True once tls_setup built a context. Any thread. */
bool tls_enabled(void);

/* Any thread: a new SSL object (an SSL *) from the current context, or
 * NULL (out of memory, or TLS not set up). The caller frees it with
 * SSL_free(). */
void *tls_ssl_new(void);

/* Any thread (a worker running refresh_certs): reloads the certificate,
 * key and CA files into a new context and makes it current. True on
 * success; else false with memcached's error line in err ("Error loading
 * the certificate chain: PATH : REASON"), the old context staying. */
bool tls_refresh(char *err, size_t errlen);

/* Any thread: a handshake failed (counted as ssl_handshake_errors). */
void tls_count_handshake_error(void);

#endif
