/*
 * mcconn.h: the client connection the tools share (mcstat, mcload).
 *
 * One connection is a TCP socket, optionally wrapped in TLS (OpenSSL:
 * the server is verified against --cafile or the system store, and its name
 * or IP address against the certificate), optionally authenticated with
 * SASL (cyrus libsasl2 over the binary protocol's SASL opcodes; the
 * mechanism is chosen by libsasl2 from the server's list). mcconn_open()
 * does all of it in blocking mode with a timeout on every step; a tool then
 * either keeps it blocking (mcstat: request, reply) or makes it
 * non-blocking and drives it from its event loop (mcload).
 *
 * Errors are a status and one line of text in the connection (or the
 * client) saying what failed, without the program name.
 */
#ifndef MCKV_TOOLS_MCCONN_H
#define MCKV_TOOLS_MCCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "protocol/proto_bin.h"

enum mcconn_status {
    MCCONN_OK = 0,
    MCCONN_ECONNECT = -1,   /* resolution failed, refused, unreachable */
    MCCONN_ETLS = -2,       /* TLS setup, handshake or verification */
    MCCONN_EAUTH = -3,      /* SASL refused, or the server has none */
    MCCONN_EPROTO = -4,     /* bad reply, closed connection, timeout */
};

/* What every connection of a tool is opened with. */
struct mcconn_opts {
    const char *host;       /* name or address, without brackets */
    const char *port;
    bool tls;
    const char *cafile;     /* NULL: the system's trust store */
    const char *cert, *key; /* client certificate (ssl_verify_mode=2) */
    const char *user;       /* SASL when not NULL */
    const char *password;
    int timeout_s;          /* connect, and each blocking read or write */
};

/* Shared by all connections of a process; setup in the main thread before
 * any connection is opened (libsasl2's global init is not thread-safe). */
struct mcconn_client {
    struct mcconn_opts opts;
    void *tls_ctx;          /* SSL_CTX, NULL without TLS */
    char error[512];
};

struct mcconn {
    const struct mcconn_client *client;
    int fd;
    void *ssl;              /* SSL, NULL without TLS */
    char where[300];        /* "host:port" (v6 in brackets) for messages */
    char error[1024];       /* why the last call failed */
    /* binary protocol replies (mcconn_bin_recv) */
    char *buf;
    size_t len, cap, used;
    uint32_t opaque;
};

/* Checks the options and loads the TLS material; MCCONN_OK or MCCONN_ETLS /
 * MCCONN_EAUTH with client->error set. opts is copied (not its strings). */
int mcconn_client_setup(struct mcconn_client *client,
                        const struct mcconn_opts *opts);
void mcconn_client_teardown(struct mcconn_client *client);

/* Connects, does the TLS handshake and SASL when asked; blocking, with
 * SO_RCVTIMEO/SO_SNDTIMEO of timeout_s. On failure c->error says why and
 * c holds nothing to close. */
int mcconn_open(struct mcconn *c, const struct mcconn_client *client);
/* Frees what c holds (it may be closed again); c->error is kept. */
void mcconn_close(struct mcconn *c);

/* From here on reads and writes return -1 with errno EAGAIN instead of
 * waiting (a TLS read that needs the socket writable, or the reverse, is
 * reported as EAGAIN too; the caller retries on either event). */
int mcconn_set_nonblocking(struct mcconn *c);

/* Like read(2)/write(2): > 0 bytes, 0 closed by the peer (read), -1 with
 * errno (EAGAIN: would block or, blocking, timed out; else c->error says
 * why). A write that returned EAGAIN is retried with at least the bytes it
 * was given (the buffer may move). */
ssize_t mcconn_read(struct mcconn *c, void *buf, size_t len);
ssize_t mcconn_write(struct mcconn *c, const void *buf, size_t len);

/* Non-zero when TLS holds bytes already taken from the socket (decrypted
 * or not): no event will come for them, so a reader drains them before
 * waiting again. */
size_t mcconn_pending(const struct mcconn *c);

/* Blocking binary protocol (mcconn_bin.c). send: one request with the next
 * opaque; recv: the next reply, which must answer that request (opcode and
 * opaque); rsp points into c->buf until the next recv. Both are MCCONN_OK
 * or MCCONN_EPROTO with c->error set. */
int mcconn_bin_send(struct mcconn *c, uint8_t opcode, const char *key,
                    size_t keylen, const char *value, size_t vlen);
int mcconn_bin_recv(struct mcconn *c, uint8_t opcode, struct bin_rsp *rsp);

/* SASL over the binary protocol (mcconn_bin.c); called by mcconn_open(). */
int mcconn_sasl_setup(char *error, size_t size);
int mcconn_sasl_auth(struct mcconn *c);

#endif
