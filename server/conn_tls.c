/*
 * conn_tls.c: the TLS transport of a connection (conn_tls.h, struct
 * conn_io in conn.h).
 *
 * Handshake: SSL_do_handshake on the non-blocking socket, called from the
 * connection's events; WANT_READ / WANT_WRITE become the event it waits
 * for, so a client that stalls mid-handshake costs its worker nothing. A
 * failure is counted (ssl_handshake_errors), logged with a rate limit and
 * closes that connection only.
 *
 * Writes: conn.c offers its segments as an iovec, as it would to
 * sendmsg(2). They are gathered into one buffer of ssl_wbuf_size bytes
 * (memcached's default 16 KiB, the largest TLS record) and go out as one
 * SSL_write: a batch of pipelined replies becomes few records and few
 * writes. The gather buffer is per thread, so an idle connection holds
 * none. OpenSSL wants a write it refused (WANT_WRITE) retried with the
 * same bytes; only then are they copied into the connection's own buffer
 * (the context allows the retry from a moved buffer) and nothing is
 * reported written, so conn.c keeps offering them first.
 *
 * Memory of an idle TLS connection: the SSL object and its session
 * (record buffers are released when idle, SSL_MODE_RELEASE_BUFFERS), plus
 * this file's small struct: about 16 KB measured (docs/benchmarks.md).
 */
#include <config.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "server/conn.h"
#include "server/conn_tls.h"
#include "server/tls.h"
#include "util/log.h"

#ifdef HAVE_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>

struct conn_tls {
    SSL *ssl;
    char *retry;         /* bytes of a refused SSL_write, to retry */
    size_t retry_len;
    bool read_starved;   /* the last SSL_read wanted more from the socket */
};

/* ssl_wbuf_size: written by conn_tls_setup before the workers start */
static size_t tls_wbuf_size = 16384;

/* The gather buffer of this thread (freed at its exit). */
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void
scratch_key_make(void)
{
    (void)pthread_key_create(&scratch_key, free);
}

static char *
scratch_get(void)
{
    pthread_once(&scratch_once, scratch_key_make);
    char *b = pthread_getspecific(scratch_key);
    if (b == NULL) {
        b = malloc(tls_wbuf_size);
        if (b != NULL && pthread_setspecific(scratch_key, b) != 0) {
            free(b);
            b = NULL;
        }
    }
    return b;
}

/* OpenSSL's reason for the failure just seen, its queue emptied. */
static const char *
tls_why(int err, char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    if (e != 0)
        ERR_error_string_n(e, buf, len);
    else if (err == SSL_ERROR_SYSCALL)
        snprintf(buf, len, "%s", errno != 0 ? strerror(errno)
                                            : "connection closed by the peer");
    else
        snprintf(buf, len, "TLS error %d", err);
    ERR_clear_error();
    return buf;
}

static int
tls_handshake(struct conn *c)
{
    struct conn_tls *t = c->io_state;
    char why[256];

    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(t->ssl);
    if (r == 1)
        return 0;
    int err = SSL_get_error(t->ssl, r);
    if (err == SSL_ERROR_WANT_READ)
        return EV_READ;
    if (err == SSL_ERROR_WANT_WRITE)
        return EV_WRITE;
    tls_count_handshake_error();
    /* a client that connects and goes (a port probe, a health check) is
     * counted, as memcached does, but is no error worth a log line */
    unsigned long top = ERR_peek_last_error();
    bool went_away = err == SSL_ERROR_SYSCALL && top == 0 &&
                     (errno == 0 || errno == ECONNRESET || errno == EPIPE);
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING   /* OpenSSL 3 says EOF so */
    went_away = went_away || (err == SSL_ERROR_SSL &&
                              ERR_GET_REASON(top) == SSL_R_UNEXPECTED_EOF_WHILE_READING);
#endif
    if (went_away)
        log_verbose("connection %d: TLS handshake: %s", c->fd,
                    tls_why(err, why, sizeof(why)));
    else
        log_error_limited("connection %d: TLS handshake failed: %s", c->fd,
                          tls_why(err, why, sizeof(why)));
    return -1;
}

static ssize_t
tls_read(struct conn *c, void *buf, size_t n)
{
    struct conn_tls *t = c->io_state;
    char why[256];

    ERR_clear_error();
    int r = SSL_read(t->ssl, buf, n > INT_MAX ? INT_MAX : (int)n);
    t->read_starved = false;
    if (r > 0)
        return r;
    int err = SSL_get_error(t->ssl, r);
    switch (err) {
    case SSL_ERROR_WANT_WRITE:
        c->io_read_on_write = true;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_READ:
        t->read_starved = true;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:   /* close_notify: the end of the stream */
        return 0;
    default:
        log_verbose("connection %d: TLS read: %s", c->fd,
                    tls_why(err, why, sizeof(why)));
        errno = EPROTO;
        return -1;
    }
}

/* Copies the leading bytes of iov into buf, at most cap. */
static size_t
tls_gather(char *buf, size_t cap, const struct iovec *iov, int niov)
{
    size_t len = 0;
    for (int i = 0; i < niov && len < cap; i++) {
        size_t take = iov[i].iov_len < cap - len ? iov[i].iov_len : cap - len;
        memcpy(buf + len, iov[i].iov_base, take);
        len += take;
    }
    return len;
}

static ssize_t
tls_writev(struct conn *c, const struct iovec *iov, int niov)
{
    struct conn_tls *t = c->io_state;
    const char *buf = t->retry;
    size_t len = t->retry_len;
    char why[256];

    if (len == 0) {
        char *scratch = scratch_get();
        if (scratch == NULL) {
            errno = ENOMEM;
            return -1;
        }
        len = tls_gather(scratch, tls_wbuf_size, iov, niov);
        buf = scratch;
    }
    ERR_clear_error();
    int r = SSL_write(t->ssl, buf, (int)len);
    if (r > 0) {   /* all of it: partial writes are not enabled */
        free(t->retry);
        t->retry = NULL;
        t->retry_len = 0;
        return r;
    }
    int err = SSL_get_error(t->ssl, r);
    if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
        if (t->retry == NULL) {
            t->retry = malloc(len);
            if (t->retry == NULL) {
                errno = ENOMEM;
                return -1;
            }
            memcpy(t->retry, buf, len);
            t->retry_len = len;
        }
        errno = EAGAIN;
        return -1;
    }
    log_verbose("connection %d: TLS write: %s", c->fd,
                tls_why(err, why, sizeof(why)));
    errno = EPIPE;
    return -1;
}

static bool
tls_pending(const struct conn *c)
{
    const struct conn_tls *t = c->io_state;
    /* Decrypted bytes, or (read-ahead) records read but not processed:
     * no socket event will come for them. After a read that wanted more,
     * what is buffered is part of a record: the socket brings the rest. */
    return SSL_pending(t->ssl) > 0 ||
           (!t->read_starved && SSL_has_pending(t->ssl) == 1);
}

static void
tls_destroy(struct conn *c)
{
    struct conn_tls *t = c->io_state;
    if (t == NULL)
        return;
    /* a close_notify if the socket takes it at once; never waited for */
    if (c->io_ready && SSL_is_init_finished(t->ssl))
        (void)SSL_shutdown(t->ssl);
    ERR_clear_error();
    SSL_free(t->ssl);
    free(t->retry);
    free(t);
    c->io_state = NULL;
}

static const struct conn_io conn_tls_io = {
    .handshake = tls_handshake,
    .read = tls_read,
    .writev = tls_writev,
    .pending = tls_pending,
    .destroy = tls_destroy,
};

void
conn_tls_setup(size_t wbuf_size)
{
    tls_wbuf_size = wbuf_size > INT_MAX ? INT_MAX : wbuf_size;
}

int
conn_tls_start(struct conn *c)
{
    struct conn_tls *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return -1;
    t->ssl = tls_ssl_new();
    if (t->ssl == NULL || SSL_set_fd(t->ssl, c->fd) != 1) {
        if (t->ssl != NULL)
            SSL_free(t->ssl);
        ERR_clear_error();
        free(t);
        return -1;
    }
    SSL_set_accept_state(t->ssl);
    c->io_state = t;
    c->io = &conn_tls_io;
    return 0;
}

#else /* !HAVE_TLS */

void
conn_tls_setup(size_t wbuf_size)
{
    (void)wbuf_size;
}

int
conn_tls_start(struct conn *c)
{
    (void)c;
    return -1;
}

#endif
