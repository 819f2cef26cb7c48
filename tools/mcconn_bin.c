/*
 * mcconn_bin.c: blocking binary protocol requests on a tool's connection,
 * and SASL authentication with them (see mcconn.h).
 *
 * SASL is cyrus libsasl2's client: the tool asks the server for its
 * mechanisms (SASL_LIST_MECHS), libsasl2 picks the best one it has a plugin
 * for and produces each message; this file only carries them in SASL_AUTH
 * and SASL_STEP requests (key = mechanism) until the server says success or
 * AUTH_ERROR. The user and password reach libsasl2 through its callbacks.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_SASL
#include <sasl/sasl.h>
#endif

#include "tools/mcconn.h"

#define MAX_REPLY_BODY (16u << 20)
#define SASL_MAX_STEPS 8           /* PLAIN takes one, CRAM-MD5 two */
#define SASL_CB_FN(f) ((int (*)(void))(void (*)(void))(f))

static int
io_error(struct mcconn *c, const char *what, ssize_t n)
{
    /* A TLS alert after the handshake (TLS 1.3 servers refuse a missing
     * client certificate only then) is a TLS failure, not a bad reply. */
    int status = n < 0 && errno == EPROTO && c->ssl != NULL ? MCCONN_ETLS
                                                            : MCCONN_EPROTO;
    if (n == 0)
        snprintf(c->error, sizeof(c->error), "%s: connection closed by the "
                 "server while %s", c->where, what);
    else if (errno == EAGAIN || errno == EWOULDBLOCK)
        snprintf(c->error, sizeof(c->error), "%s: no reply within %d s "
                 "while %s", c->where, c->client->opts.timeout_s, what);
    else {
        char reason[sizeof(c->error)];
        memcpy(reason, c->error, sizeof(reason));
        snprintf(c->error, sizeof(c->error), "%s: %.200s while %s", c->where,
                 reason, what);
    }
    return status;
}

int
mcconn_bin_send(struct mcconn *c, uint8_t opcode, const char *key,
                size_t keylen, const char *value, size_t vlen)
{
    size_t len = PROTO_BIN_HDR_LEN + keylen + vlen, off = 0;
    char *pkt;

    if (keylen > PROTO_KEY_MAX || vlen > MAX_REPLY_BODY)
        abort();    /* callers bound both */
    pkt = malloc(len);
    if (pkt == NULL) {
        snprintf(c->error, sizeof(c->error), "out of memory");
        return MCCONN_EPROTO;
    }
    proto_bin_compose_req_hdr(pkt, opcode, 0, (uint16_t)keylen,
                              (uint32_t)(keylen + vlen), ++c->opaque, 0);
    if (keylen > 0)
        memcpy(pkt + PROTO_BIN_HDR_LEN, key, keylen);
    if (vlen > 0)
        memcpy(pkt + PROTO_BIN_HDR_LEN + keylen, value, vlen);
    while (off < len) {
        ssize_t n = mcconn_write(c, pkt + off, len - off);
        if (n <= 0) {
            memset(pkt, 0, len);            /* it may hold a password */
            free(pkt);
            return io_error(c, "sending", n < 0 ? -1 : 1);
        }
        off += (size_t)n;
    }
    memset(pkt, 0, len);
    free(pkt);
    return MCCONN_OK;
}

int
mcconn_bin_recv(struct mcconn *c, uint8_t opcode, struct bin_rsp *rsp)
{
    if (c->used > 0) {
        memmove(c->buf, c->buf + c->used, c->len - c->used);
        c->len -= c->used;
        c->used = 0;
    }
    for (;;) {
        size_t consumed, need;
        ssize_t n;
        proto_parse pr = proto_bin_parse_rsp(rsp, c->buf, c->len,
                                             MAX_REPLY_BODY, &consumed);
        if (pr == PARSE_OK) {
            c->used = consumed;
            if (rsp->opcode == opcode && rsp->opaque == c->opaque)
                return MCCONN_OK;
            snprintf(c->error, sizeof(c->error), "%s: reply to opcode "
                     "0x%02x (opaque %" PRIu32 ") where 0x%02x (opaque %"
                     PRIu32 ") was expected", c->where, rsp->opcode,
                     rsp->opaque, opcode, c->opaque);
            return MCCONN_EPROTO;
        }
        if (pr != PARSE_EUNFIN) {
            snprintf(c->error, sizeof(c->error), "%s: malformed reply (%s)",
                     c->where, pr == PARSE_EOVERSIZE
                                   ? "body over 16 MB"
                                   : "not a binary protocol reply");
            return MCCONN_EPROTO;
        }
        need = c->len < PROTO_BIN_HDR_LEN ? PROTO_BIN_HDR_LEN
                                          : PROTO_BIN_HDR_LEN + rsp->bodylen;
        if (need < c->len + 4096)
            need = c->len + 4096;
        if (need > c->cap) {
            char *bigger = realloc(c->buf, need);
            if (bigger == NULL) {
                snprintf(c->error, sizeof(c->error), "out of memory");
                return MCCONN_EPROTO;
            }
            c->buf = bigger;
            c->cap = need;
        }
        n = mcconn_read(c, c->buf + c->len, c->cap - c->len);
        if (n <= 0)
            return io_error(c, "waiting for a reply", n);
        c->len += (size_t)n;
    }
}

/* ---- SASL ---------------------------------------------------------------- */

#ifdef HAVE_SASL
static bool sasl_ready;

int
mcconn_sasl_setup(char *error, size_t size)
{
    int rc;
    if (sasl_ready)
        return MCCONN_OK;
    rc = sasl_client_init(NULL);
    if (rc != SASL_OK) {
        snprintf(error, size, "SASL: cannot initialise libsasl2: %s",
                 sasl_errstring(rc, NULL, NULL));
        return MCCONN_EAUTH;
    }
    sasl_ready = true;
    return MCCONN_OK;
}

/* SASL_CB_AUTHNAME: the user; SASL_CB_USER (the identity to act as): none,
 * which means the same. */
static int
sasl_get_name(void *context, int id, const char **result, unsigned *len)
{
    const struct mcconn_opts *o = context;
    if (id != SASL_CB_AUTHNAME && id != SASL_CB_USER)
        return SASL_BADPARAM;
    *result = id == SASL_CB_AUTHNAME ? o->user : "";
    if (len != NULL)
        *len = (unsigned)strlen(*result);
    return SASL_OK;
}

static int
sasl_get_password(sasl_conn_t *conn, void *context, int id,
                  sasl_secret_t **psecret)
{
    (void)conn;
    if (id != SASL_CB_PASS)
        return SASL_BADPARAM;
    *psecret = context;
    return SASL_OK;
}

/* Says why a status in reply to a SASL request is not success. */
static int
sasl_refused(struct mcconn *c, uint16_t status)
{
    switch (status) {
    case BIN_STATUS_UNKNOWN_COMMAND:
    case BIN_STATUS_NOT_SUPPORTED:
        snprintf(c->error, sizeof(c->error), "%s: the server has no SASL "
                 "authentication (-u given)", c->where);
        return MCCONN_EAUTH;
    case BIN_STATUS_AUTH_ERROR:
        snprintf(c->error, sizeof(c->error), "%s: authentication failed "
                 "for user '%.100s'", c->where, c->client->opts.user);
        return MCCONN_EAUTH;
    default:
        snprintf(c->error, sizeof(c->error), "%s: SASL: unexpected status "
                 "0x%02x", c->where, status);
        return MCCONN_EPROTO;
    }
}

/* The server's mechanism list, as a string libsasl2 can read. */
static int
sasl_list_mechs(struct mcconn *c, char *mechs, size_t size)
{
    struct bin_rsp rsp;
    int rc = mcconn_bin_send(c, BIN_OP_SASL_LIST_MECHS, NULL, 0, NULL, 0);
    if (rc == MCCONN_OK)
        rc = mcconn_bin_recv(c, BIN_OP_SASL_LIST_MECHS, &rsp);
    if (rc != MCCONN_OK)
        return rc;
    if (rsp.status != BIN_STATUS_SUCCESS)
        return sasl_refused(c, rsp.status);
    if (rsp.vlen == 0 || rsp.vlen >= size) {
        snprintf(c->error, sizeof(c->error), "%s: SASL: the server lists "
                 "%s mechanisms", c->where, rsp.vlen == 0 ? "no" : "too many");
        return MCCONN_EAUTH;
    }
    memcpy(mechs, rsp.value, rsp.vlen);
    mechs[rsp.vlen] = '\0';
    return MCCONN_OK;
}

/* Runs the exchange libsasl2 started with `out` until the server decides. */
static int
sasl_exchange(struct mcconn *c, sasl_conn_t *sasl, const char *mech,
              const char *out, unsigned outlen)
{
    uint8_t opcode = BIN_OP_SASL_AUTH;
    for (int step = 0; step < SASL_MAX_STEPS; step++) {
        struct bin_rsp rsp;
        int rc = mcconn_bin_send(c, opcode, mech, strlen(mech), out, outlen);
        if (rc == MCCONN_OK)
            rc = mcconn_bin_recv(c, opcode, &rsp);
        if (rc != MCCONN_OK)
            return rc;
        if (rsp.status == BIN_STATUS_SUCCESS)
            return MCCONN_OK;
        if (rsp.status != BIN_STATUS_AUTH_CONTINUE)
            return sasl_refused(c, rsp.status);
        rc = sasl_client_step(sasl, rsp.value, rsp.vlen, NULL, &out, &outlen);
        if (rc != SASL_OK && rc != SASL_CONTINUE) {
            snprintf(c->error, sizeof(c->error), "%s: SASL %s: %s",
                     c->where, mech, sasl_errdetail(sasl));
            return MCCONN_EAUTH;
        }
        opcode = BIN_OP_SASL_STEP;
    }
    snprintf(c->error, sizeof(c->error), "%s: SASL %s: no decision after %d "
             "steps", c->where, mech, SASL_MAX_STEPS);
    return MCCONN_EAUTH;
}

int
mcconn_sasl_auth(struct mcconn *c)
{
    const struct mcconn_opts *o = &c->client->opts;
    size_t plen = strlen(o->password);
    sasl_secret_t *secret = calloc(1, sizeof(*secret) + plen + 1);
    sasl_conn_t *sasl = NULL;
    const char *out, *mech;
    unsigned outlen;
    char mechs[1024];
    int rc;

    if (secret == NULL) {
        snprintf(c->error, sizeof(c->error), "out of memory");
        return MCCONN_EAUTH;
    }
    secret->len = plen;
    memcpy(secret->data, o->password, plen);
    /* libsasl2 stores every callback as int (*)(void) and calls it with
     * its real type; void (*)(void) in between says the cast is meant. */
    sasl_callback_t callbacks[] = {
        { SASL_CB_AUTHNAME, SASL_CB_FN(sasl_get_name), (void *)o },
        { SASL_CB_USER, SASL_CB_FN(sasl_get_name), (void *)o },
        { SASL_CB_PASS, SASL_CB_FN(sasl_get_password), secret },
        { SASL_CB_LIST_END, NULL, NULL },
    };

    rc = sasl_list_mechs(c, mechs, sizeof(mechs));
    if (rc != MCCONN_OK)
        goto out;
    rc = sasl_client_new("memcached", o->host, NULL, NULL, callbacks, 0,
                         &sasl);
    if (rc == SASL_OK)
        rc = sasl_client_start(sasl, mechs, NULL, &out, &outlen, &mech);
    if (rc != SASL_OK && rc != SASL_CONTINUE) {
        snprintf(c->error, sizeof(c->error), "%s: SASL: no mechanism of "
                 "the server's '%.200s' works here: %s", c->where, mechs,
                 sasl != NULL ? sasl_errdetail(sasl)
                              : sasl_errstring(rc, NULL, NULL));
        rc = MCCONN_EAUTH;
        goto out;
    }
    rc = sasl_exchange(c, sasl, mech, out, outlen);

out:
    sasl_dispose(&sasl);
    memset(secret->data, 0, plen);
    free(secret);
    return rc;
}

#else /* !HAVE_SASL */

int
mcconn_sasl_setup(char *error, size_t size)
{
    snprintf(error, size, "SASL: built without libsasl2");
    return MCCONN_EAUTH;
}

int
mcconn_sasl_auth(struct mcconn *c)
{
    snprintf(c->error, sizeof(c->error), "SASL: built without libsasl2");
    return MCCONN_EAUTH;
}

#endif /* HAVE_SASL */
