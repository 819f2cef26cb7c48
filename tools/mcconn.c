/*
 * mcconn.c: connecting, TLS and raw reads and writes for the client tools
 * (see mcconn.h). The binary protocol and SASL are in mcconn_bin.c.
 *
 * TLS: one SSL_CTX per process, verifying the server (SSL_VERIFY_PEER
 * against --cafile or the default paths) and its identity (the host name,
 * or the IP address when the host is a literal; SNI only for names, as RFC
 * 6066 forbids literals). There is no option to skip verification:
 * memcached's own tools have none either. Without OpenSSL at build time
 * (no HAVE_TLS) asking for TLS is an error at setup.
 */
#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#endif

#include "tools/mcconn.h"

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- TLS ----------------------------------------------------------------- */

#ifdef HAVE_TLS
/* Appends ": reason" of OpenSSL's innermost queued error (the most
 * specific one) to buf, and clears the queue. */
static void
tls_reasons(char *buf, size_t size)
{
    unsigned long e = ERR_peek_last_error();
    size_t used = strlen(buf);
    if (e != 0) {
        char text[256];
        const char *reason = ERR_reason_error_string(e);
        if (reason == NULL) {
            ERR_error_string_n(e, text, sizeof(text));
            reason = text;
        }
        snprintf(buf + used, size - used, ": %s", reason);
    }
    ERR_clear_error();
}

static int
tls_ctx_create(struct mcconn_client *client)
{
    const struct mcconn_opts *o = &client->opts;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    const char *what = NULL, *file = NULL;

    if (ctx == NULL) {
        what = "cannot create the TLS context";
        goto fail;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* A server that closes without close_notify (memcached does) reads as
     * a close, not as an error. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* mcload appends to and moves its output buffer between retries. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Read as much as the socket has in one syscall; mcconn_pending()
     * tells the reader to come back for the records that holds. */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (o->cafile != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, o->cafile, NULL) != 1) {
            what = "cannot load the CA file";
            file = o->cafile;
            goto fail;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        what = "cannot load the system's trust store";
        goto fail;
    }
    if (o->cert != NULL &&
        SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1) {
        what = "cannot load the client certificate";
        file = o->cert;
        goto fail;
    }
    if (o->cert != NULL &&
        (SSL_CTX_use_PrivateKey_file(ctx, o->key != NULL ? o->key : o->cert,
                                     SSL_FILETYPE_PEM) != 1 ||
         SSL_CTX_check_private_key(ctx) != 1)) {
        what = "cannot load the client key";
        file = o->key != NULL ? o->key : o->cert;
        goto fail;
    }
    client->tls_ctx = ctx;
    return MCCONN_OK;

fail:
    snprintf(client->error, sizeof(client->error), "TLS: %s%s%s", what,
             file != NULL ? " " : "", file != NULL ? file : "");
    /* OpenSSL says "system lib" for a missing file: errno says more. */
    if (file != NULL && access(file, R_OK) != 0) {
        size_t used = strlen(client->error);
        snprintf(client->error + used, sizeof(client->error) - used, ": %s",
                 strerror(errno));
        ERR_clear_error();
    }
    tls_reasons(client->error, sizeof(client->error));
    SSL_CTX_free(ctx);
    return MCCONN_ETLS;
}

/* Sets the name (or address) the certificate must carry, and SNI. */
static int
tls_set_peer(SSL *ssl, const char *host)
{
    unsigned char addr[16];
    bool literal = inet_pton(AF_INET, host, addr) == 1 ||
                   inet_pton(AF_INET6, host, addr) == 1;
    if (literal)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1;
    return SSL_set_tlsext_host_name(ssl, host) == 1 &&
           SSL_set1_host(ssl, host) == 1;
}

static int
tls_handshake(struct mcconn *c)
{
    SSL *ssl = SSL_new(c->client->tls_ctx);
    long verify;
    int rc, err;

    if (ssl == NULL || !tls_set_peer(ssl, c->client->opts.host) ||
        SSL_set_fd(ssl, c->fd) != 1) {
        snprintf(c->error, sizeof(c->error), "%s: TLS: cannot set up the "
                 "connection", c->where);
        tls_reasons(c->error, sizeof(c->error));
        SSL_free(ssl);
        return MCCONN_ETLS;
    }
    ERR_clear_error();
    errno = 0;
    rc = SSL_connect(ssl);
    if (rc == 1) {
        c->ssl = ssl;
        return MCCONN_OK;
    }
    err = SSL_get_error(ssl, rc);
    verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
        snprintf(c->error, sizeof(c->error), "%s: TLS: certificate "
                 "verification failed: %s", c->where,
                 X509_verify_cert_error_string(verify));
    } else if (err == SSL_ERROR_SYSCALL && errno == EAGAIN) {
        snprintf(c->error, sizeof(c->error), "%s: TLS: no handshake reply "
                 "within %d s", c->where, c->client->opts.timeout_s);
    } else if (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN) {
        snprintf(c->error, sizeof(c->error), "%s: TLS: handshake failed: %s",
                 c->where, errno != 0 ? strerror(errno)
                                      : "connection closed by the server");
        ERR_clear_error();
    } else {
        snprintf(c->error, sizeof(c->error), "%s: TLS: handshake failed",
                 c->where);
        tls_reasons(c->error, sizeof(c->error));
    }
    SSL_free(ssl);
    return MCCONN_ETLS;
}

/* A failed SSL_read/SSL_write as read(2) would report it. */
static ssize_t
tls_io_error(struct mcconn *c, int rc, const char *what)
{
    int err = SSL_get_error(c->ssl, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    if (err == SSL_ERROR_ZERO_RETURN)
        return 0;
    if (err == SSL_ERROR_SYSCALL && errno != 0) {
        int saved = errno;
        ERR_clear_error();
        snprintf(c->error, sizeof(c->error), "%s", strerror(saved));
        errno = saved;
        return -1;
    }
    snprintf(c->error, sizeof(c->error), "TLS %s failed", what);
    tls_reasons(c->error, sizeof(c->error));
    errno = EPROTO;
    return -1;
}

/*
 * A TLS 1.3 server refuses a client certificate (or its absence) after the
 * handshake, with an alert, then closes: the first request may meet the
 * reset before anything is read. The alert is usually still in the socket:
 * true (c->error says it, errno EPROTO) when a read finds one.
 */
static bool
tls_alert(struct mcconn *c)
{
    char byte;
    int saved = errno, rc;
    ERR_clear_error();
    rc = SSL_read(c->ssl, &byte, 1);
    if (rc <= 0 && SSL_get_error(c->ssl, rc) == SSL_ERROR_SSL) {
        snprintf(c->error, sizeof(c->error), "TLS: refused by the server");
        tls_reasons(c->error, sizeof(c->error));
        errno = EPROTO;
        return true;
    }
    ERR_clear_error();
    errno = saved;
    return false;
}
#endif /* HAVE_TLS */

/* ---- the client ---------------------------------------------------------- */

int
mcconn_client_setup(struct mcconn_client *client,
                    const struct mcconn_opts *opts)
{
    *client = (struct mcconn_client){ .opts = *opts };
    if (opts->timeout_s <= 0)
        client->opts.timeout_s = 5;
    /* OpenSSL writes with write(2): a server that closed would kill the
     * tool with SIGPIPE instead of an error line. */
    if (opts->tls)
        signal(SIGPIPE, SIG_IGN);
    if (opts->user != NULL &&
        mcconn_sasl_setup(client->error, sizeof(client->error)) != MCCONN_OK)
        return MCCONN_EAUTH;
    if (!opts->tls) {
        if (opts->cafile != NULL || opts->cert != NULL || opts->key != NULL) {
            snprintf(client->error, sizeof(client->error),
                     "a CA file, certificate or key needs TLS");
            return MCCONN_ETLS;
        }
        return MCCONN_OK;
    }
    if (opts->key != NULL && opts->cert == NULL) {
        snprintf(client->error, sizeof(client->error),
                 "a client key needs its certificate");
        return MCCONN_ETLS;
    }
#ifdef HAVE_TLS
    return tls_ctx_create(client);
#else
    snprintf(client->error, sizeof(client->error),
             "TLS: built without OpenSSL");
    return MCCONN_ETLS;
#endif
}

void
mcconn_client_teardown(struct mcconn_client *client)
{
#ifdef HAVE_TLS
    SSL_CTX_free(client->tls_ctx);
#endif
    client->tls_ctx = NULL;
}

/* ---- connecting ---------------------------------------------------------- */

/* Connects fd (non-blocking) within the remaining time; 0 or an errno. */
static int
connect_one(int fd, const struct addrinfo *ai, double deadline)
{
    int err = 0;
    socklen_t elen = sizeof(err);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return 0;
    if (errno != EINPROGRESS)
        return errno;
    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = POLLOUT };
        double left = deadline - now_s();
        int n;
        if (left <= 0)
            return ETIMEDOUT;
        n = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        if (n == 0)
            return ETIMEDOUT;
        break;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
        return errno;
    return err;
}

/* The TCP part: c->fd blocking, with timeouts and TCP_NODELAY. */
static int
tcp_connect(struct mcconn *c)
{
    const struct mcconn_opts *o = &c->client->opts;
    struct addrinfo hints = { .ai_family = AF_UNSPEC,
                              .ai_socktype = SOCK_STREAM };
    struct addrinfo *res, *ai;
    struct timeval tv = { .tv_sec = o->timeout_s };
    double deadline = now_s() + o->timeout_s;
    int rc, err = 0, one = 1;

    rc = getaddrinfo(o->host, o->port, &hints, &res);
    if (rc != 0) {
        snprintf(c->error, sizeof(c->error), "cannot resolve %s: %s",
                 o->host, rc == EAI_SYSTEM ? strerror(errno)
                                           : gai_strerror(rc));
        return MCCONN_ECONNECT;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family,
                        ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        err = connect_one(fd, ai, deadline);
        if (err == 0) {
            c->fd = fd;
            break;
        }
        close(fd);
    }
    freeaddrinfo(res);
    if (c->fd < 0) {
        snprintf(c->error, sizeof(c->error), "cannot connect to %s: %s",
                 c->where, strerror(err));
        return MCCONN_ECONNECT;
    }
    if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) & ~O_NONBLOCK) < 0 ||
        setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
        snprintf(c->error, sizeof(c->error), "%s: %s", c->where,
                 strerror(errno));
        return MCCONN_EPROTO;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return MCCONN_OK;
}

int
mcconn_open(struct mcconn *c, const struct mcconn_client *client)
{
    const struct mcconn_opts *o = &client->opts;
    int rc;

    *c = (struct mcconn){ .client = client, .fd = -1 };
    snprintf(c->where, sizeof(c->where),
             strchr(o->host, ':') != NULL ? "[%s]:%s" : "%s:%s", o->host,
             o->port);
    rc = tcp_connect(c);
#ifdef HAVE_TLS
    if (rc == MCCONN_OK && client->tls_ctx != NULL)
        rc = tls_handshake(c);
#endif
    if (rc == MCCONN_OK && o->user != NULL)
        rc = mcconn_sasl_auth(c);
    if (rc != MCCONN_OK)
        mcconn_close(c);            /* keeps c->error */
    return rc;
}

void
mcconn_close(struct mcconn *c)
{
#ifdef HAVE_TLS
    SSL_free(c->ssl);
#endif
    c->ssl = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = c->used = 0;
}

int
mcconn_set_nonblocking(struct mcconn *c)
{
    if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) < 0) {
        snprintf(c->error, sizeof(c->error), "%s", strerror(errno));
        return MCCONN_EPROTO;
    }
    return MCCONN_OK;
}

/* ---- reads and writes ---------------------------------------------------- */

ssize_t
mcconn_read(struct mcconn *c, void *buf, size_t len)
{
    ssize_t n;
#ifdef HAVE_TLS
    if (c->ssl != NULL) {
        int rc;
        ERR_clear_error();
        errno = 0;
        rc = SSL_read(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
        return rc > 0 ? rc : tls_io_error(c, rc, "read");
    }
#endif
    do {
        n = read(c->fd, buf, len);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        snprintf(c->error, sizeof(c->error), "%s", strerror(errno));
    return n;
}

ssize_t
mcconn_write(struct mcconn *c, const void *buf, size_t len)
{
    ssize_t n;
#ifdef HAVE_TLS
    if (c->ssl != NULL) {
        int rc;
        ERR_clear_error();
        errno = 0;
        rc = SSL_write(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
        if (rc > 0)
            return rc;
        if (SSL_get_error(c->ssl, rc) == SSL_ERROR_SYSCALL &&
            (errno == ECONNRESET || errno == EPIPE) && tls_alert(c))
            return -1;
        return tls_io_error(c, rc, "write");
    }
#endif
    do {
        n = send(c->fd, buf, len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        snprintf(c->error, sizeof(c->error), "%s", strerror(errno));
    return n;
}

size_t
mcconn_pending(const struct mcconn *c)
{
#ifdef HAVE_TLS
    if (c->ssl != NULL)
        return SSL_has_pending(c->ssl) ? 1 : 0;
#endif
    (void)c;
    return 0;
}
