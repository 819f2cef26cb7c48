/*
 * tls.c: the TLS context (see tls.h), as memcached 1.6's tls.c sets it up:
 * TLS_server_method, the minimum version, the chain and key files checked
 * against each other, the client CA list and verify mode, the cipher list,
 * the optional session cache, renegotiation off and idle buffers released.
 *
 * Unlike memcached, refresh_certs does not reload files into the context
 * connections are using: it builds a complete new one and swaps the
 * pointer under a mutex, so a half-loaded context (a new certificate with
 * the old key) is never seen and a failed refresh changes nothing.
 * SSL_new() takes its own reference to the context, so the old one is
 * freed when its last connection closes.
 */
#include <config.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/config.h"
#include "server/stats.h"
#include "server/tls.h"

#ifdef HAVE_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>

/* server-side session caching scopes sessions to this id, as memcached */
#define TLS_SESSION_ID_CONTEXT "memcached"

/* What a context is built from: copies of the keys, which a reload of the
 * configuration may free (they are not reloadable). */
struct tls_settings {
    char *chain_cert, *key, *ca_cert, *ciphers;
    int keyformat;
    int verify_mode;     /* SSL_VERIFY_* bits */
    int min_version;     /* TLS1_*_VERSION */
    bool session_cache;
};

static struct {
    pthread_mutex_t lock;       /* guards ctx (the pointer, not the object) */
    SSL_CTX *ctx;               /* current; NULL: TLS off */
    struct tls_settings set;
    atomic_uint_fast64_t handshake_errors;
    atomic_uint_fast64_t new_sessions;
    atomic_llong refreshed_at;  /* CLOCK_MONOTONIC seconds of the last load */
} tls = { .lock = PTHREAD_MUTEX_INITIALIZER };

static long long
tls_mono_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec;
}

/* OpenSSL's reason for the last failure: the earliest of its queue, the
 * one memcached prints ("error:0480006C:PEM routines::no start line"),
 * the queue emptied. */
static void
tls_reason(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();

    if (e != 0)
        ERR_error_string_n(e, buf, len);
    else
        snprintf(buf, len, "unknown error");
    ERR_clear_error();
}

static int
tls_new_session(SSL *ssl, SSL_SESSION *sess)
{
    (void)ssl;
    (void)sess;
    atomic_fetch_add_explicit(&tls.new_sessions, 1, memory_order_relaxed);
    return 0;   /* the cache keeps its own reference */
}

/* Loads the files into ctx. True, or false with memcached's line in err. */
static bool
tls_load_files(SSL_CTX *ctx, const struct tls_settings *s, char *err,
               size_t errlen)
{
    char why[256];
    const char *key = s->key[0] != '\0' ? s->key : s->chain_cert;

    if (SSL_CTX_use_certificate_chain_file(ctx, s->chain_cert) != 1) {
        tls_reason(why, sizeof(why));
        snprintf(err, errlen, "Error loading the certificate chain: %s : %s",
                 s->chain_cert, why);
        return false;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, s->keyformat) != 1) {
        tls_reason(why, sizeof(why));
        snprintf(err, errlen, "Error loading the key: %s : %s", key, why);
        return false;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        tls_reason(why, sizeof(why));
        snprintf(err, errlen, "Error validating the certificate: %s", why);
        return false;
    }
    if (s->ca_cert[0] != '\0') {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(s->ca_cert);
        if (names == NULL ||
            SSL_CTX_load_verify_locations(ctx, s->ca_cert, NULL) != 1) {
            tls_reason(why, sizeof(why));
            snprintf(err, errlen, "Error loading the CA certificate: %s : %s",
                     s->ca_cert, why);
            if (names != NULL)
                sk_X509_NAME_pop_free(names, X509_NAME_free);
            return false;
        }
        SSL_CTX_set_client_CA_list(ctx, names);   /* takes names */
    }
    return true;
}

/* A complete context from s, or NULL with the reason in err. */
static SSL_CTX *
tls_ctx_build(const struct tls_settings *s, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "Error creating the TLS context: out of memory");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, s->min_version);
    if (!tls_load_files(ctx, s, err, errlen))
        goto fail;
    SSL_CTX_set_verify(ctx, s->verify_mode, NULL);
    if (s->ciphers[0] != '\0' && SSL_CTX_set_cipher_list(ctx, s->ciphers) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "Error setting the provided cipher(s): %s",
                 s->ciphers);
        goto fail;
    }
    if (s->session_cache) {
        SSL_CTX_sess_set_new_cb(ctx, tls_new_session);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        SSL_CTX_set_session_id_context(ctx,
            (const unsigned char *)TLS_SESSION_ID_CONTEXT,
            sizeof(TLS_SESSION_ID_CONTEXT) - 1);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_num_tickets(ctx, 0);   /* no TLS 1.3 tickets to send */
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    /* Idle connections give their record buffers back (~34 KiB each).
     * A write that must be retried may be retried from another buffer
     * holding the same bytes (conn_tls.c keeps them). */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* one read(2) takes what the socket has, not a record header and
     * then its body (conn_tls.c asks SSL_has_pending, not SSL_pending) */
    SSL_CTX_set_read_ahead(ctx, 1);
    return ctx;

fail:
    SSL_CTX_free(ctx);
    return NULL;
}

static void
tls_stats(stats_emit_fn emit, void *ctx)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)
             atomic_load_explicit(&tls.handshake_errors, memory_order_relaxed));
    emit(ctx, "ssl_handshake_errors", buf);
    if (tls.set.session_cache) {
        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)
                 atomic_load_explicit(&tls.new_sessions, memory_order_relaxed));
        emit(ctx, "ssl_new_sessions", buf);
    }
    long long age = tls_mono_seconds() -
                    atomic_load_explicit(&tls.refreshed_at, memory_order_relaxed);
    snprintf(buf, sizeof(buf), "%lld", age > 0 ? age : 0);
    emit(ctx, "time_since_server_cert_refresh", buf);
}

static const int tls_versions[] = {
    TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION, TLS1_3_VERSION,
};
static const int tls_verify_modes[] = {
    SSL_VERIFY_NONE,
    SSL_VERIFY_PEER,
    SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
    SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT | SSL_VERIFY_CLIENT_ONCE,
};

static void
tls_settings_free(struct tls_settings *s)
{
    free(s->chain_cert);
    free(s->key);
    free(s->ca_cert);
    free(s->ciphers);
    memset(s, 0, sizeof(*s));
}

int
tls_setup(const struct config *cfg, char *err, size_t errlen)
{
    struct tls_settings *s = &tls.set;

    if (!cfg->ssl_enabled)
        return 0;
    OPENSSL_init_ssl(0, NULL);
    s->chain_cert = strdup(cfg->ssl_chain_cert);
    s->key = strdup(cfg->ssl_key);
    s->ca_cert = strdup(cfg->ssl_ca_cert);
    s->ciphers = strdup(cfg->ssl_ciphers);
    if (s->chain_cert == NULL || s->key == NULL || s->ca_cert == NULL ||
        s->ciphers == NULL) {
        snprintf(err, errlen, "tls: out of memory");
        tls_settings_free(s);
        return -1;
    }
    s->keyformat = cfg->ssl_keyformat == 2 ? SSL_FILETYPE_ASN1 : SSL_FILETYPE_PEM;
    s->verify_mode = tls_verify_modes[cfg->ssl_verify_mode & 3];
    s->min_version = tls_versions[cfg->ssl_min_version & 3];
    s->session_cache = cfg->ssl_session_cache;
    tls.ctx = tls_ctx_build(s, err, errlen);
    if (tls.ctx == NULL) {
        tls_settings_free(s);
        return -1;
    }
    atomic_store(&tls.refreshed_at, tls_mono_seconds());
    stats_register_group("", tls_stats);
    return 0;
}

void
tls_teardown(void)
{
    pthread_mutex_lock(&tls.lock);
    SSL_CTX *ctx = tls.ctx;
    tls.ctx = NULL;
    pthread_mutex_unlock(&tls.lock);
    SSL_CTX_free(ctx);
    tls_settings_free(&tls.set);
}

bool
tls_enabled(void)
{
    pthread_mutex_lock(&tls.lock);
    bool on = tls.ctx != NULL;
    pthread_mutex_unlock(&tls.lock);
    return on;
}

void *
tls_ssl_new(void)
{
    SSL *ssl = NULL;
    /* SSL_new takes a reference to the context while the lock keeps
     * tls_refresh from freeing it in between */
    pthread_mutex_lock(&tls.lock);
    if (tls.ctx != NULL)
        ssl = SSL_new(tls.ctx);
    pthread_mutex_unlock(&tls.lock);
    if (ssl == NULL)
        ERR_clear_error();
    return ssl;
}

bool
tls_refresh(char *err, size_t errlen)
{
    if (!tls_enabled()) {
        snprintf(err, errlen, "Error TLS not enabled");
        return false;
    }
    /* The settings are written once, by tls_setup, before any worker runs
     * (the thread start orders that write before these reads). */
    SSL_CTX *fresh = tls_ctx_build(&tls.set, err, errlen);
    if (fresh == NULL)
        return false;
    pthread_mutex_lock(&tls.lock);
    SSL_CTX *old = tls.ctx;
    tls.ctx = fresh;
    pthread_mutex_unlock(&tls.lock);
    SSL_CTX_free(old);   /* connections made from it hold their own refs */
    atomic_store(&tls.refreshed_at, tls_mono_seconds());
    return true;
}

void
tls_count_handshake_error(void)
{
    atomic_fetch_add_explicit(&tls.handshake_errors, 1, memory_order_relaxed);
}

#else /* !HAVE_TLS */

int
tls_setup(const struct config *cfg, char *err, size_t errlen)
{
    (void)cfg;
    (void)err;
    (void)errlen;
    return 0;
}

void tls_teardown(void) {}
bool tls_enabled(void) { return false; }
void *tls_ssl_new(void) { return NULL; }
void tls_count_handshake_error(void) {}

bool
tls_refresh(char *err, size_t errlen)
{
    snprintf(err, errlen, "Error TLS not enabled");
    return false;
}

#endif
