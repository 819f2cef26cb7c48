/*
 * server_helpers.c: the integration tests' group fixture and protocol
 * clients (server_helpers.h).
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/integ/server_helpers.h"

const char *const k_server_args[] = {
    "-t", "4", "-m", "64", "-I", "1m", NULL
};

/* The server of the running group. */
struct server *g_srv;
/* Groups whose server did not stop cleanly (exit status != 0). */
int g_bad_stops;

int
group_setup(void **state)
{
    (void)state;
    g_srv = server_start(k_server_args);
    return g_srv != NULL ? 0 : -1;
}

int
group_teardown(void **state)
{
    int rc;

    (void)state;
    rc = server_stop(g_srv);
    g_srv = NULL;
    if (rc != 0) {
        fprintf(stderr, "server did not exit cleanly: %d\n", rc);
        g_bad_stops++;
        return -1;
    }
    return 0;
}

/* Each test of a group starts from an empty cache. */
int
text_group_test_setup(void **state)
{
    (void)state;
    flush_server();
    return 0;
}

/* ------------------------------------------------------------------ */
/* byte helpers                                                        */

void
dump_bytes(const char *label, const void *p, size_t n)
{
    const unsigned char *u = p;
    size_t shown = n < 600 ? n : 600;

    fprintf(stderr, "  %s (%zu bytes): \"", label, n);
    for (size_t i = 0; i < shown; i++) {
        if (u[i] == '\r')
            fputs("\\r", stderr);
        else if (u[i] == '\n')
            fputs("\\n", stderr);
        else if (u[i] == '"' || u[i] == '\\')
            fprintf(stderr, "\\%c", u[i]);
        else if (u[i] >= 0x20 && u[i] < 0x7f)
            fputc(u[i], stderr);
        else
            fprintf(stderr, "\\x%02x", u[i]);
    }
    fprintf(stderr, "%s\"\n", n > shown ? "..." : "");
}

bool
bytes_equal(const void *got, size_t got_len, const void *want,
            size_t want_len)
{
    if (got_len == want_len && memcmp(got, want, want_len) == 0)
        return true;
    dump_bytes("expected", want, want_len);
    dump_bytes("got", got, got_len);
    return false;
}

void
ob_put(struct obuf *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;

        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        assert_non_null(b->p);
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->p + b->len, data, n);
    b->len += n;
}

void
ob_printf(struct obuf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof(tmp));
    ob_put(b, tmp, (size_t)n);
}

void
ob_free(struct obuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* Fills out[0..n) with a value that depends on seed (printable bytes). */
void
fill_pattern(char *out, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (char)('a' + (seed * 31u + i * 7u) % 26u);
}

/* ------------------------------------------------------------------ */
/* text protocol helpers                                               */

int
tconn(void)
{
    int fd = harness_connect(server_port(g_srv));

    assert_true(fd >= 0);
    return fd;
}

/* Sends out and requires exactly want back (bounded wait). */
void
text_rt(int line, int fd, const void *out, size_t out_len, const char *want,
        size_t want_len)
{
    char *got = malloc(want_len + 1);
    ssize_t n;

    assert_non_null(got);
    if (out_len > 0 && harness_send_all(fd, out, out_len) != 0) {
        free(got);
        fail_msg("line %d: send failed", line);
    }
    n = harness_read_exact(fd, got, want_len, TMO);
    if (n < 0)
        n = 0;
    if (!bytes_equal(got, (size_t)n, want, want_len)) {
        free(got);
        fail_msg("line %d: reply differs%s", line,
                 (size_t)n < want_len ? " (short: timeout or close)" : "");
    }
    free(got);
}

/*
 * Sends "version" and requires the next line to be "VERSION ...": proves no
 * stray bytes were sent before it (e.g. by a noreply command).
 */
void
text_sync_at(int line, int fd)
{
    char buf[256];
    ssize_t n;

    if (harness_send_str(fd, "version\r\n") != 0)
        fail_msg("line %d: send failed", line);
    n = harness_read_line(fd, buf, sizeof(buf), TMO);
    if (n <= 0 || strncmp(buf, "VERSION ", 8) != 0 ||
        strcmp(buf + n - 2, "\r\n") != 0) {
        dump_bytes("got", buf, n > 0 ? (size_t)n : 0);
        fail_msg("line %d: expected a VERSION line", line);
    }
}

void
expect_closed_at(int line, int fd)
{
    unsigned char first = 0;
    int r = harness_wait_closed(fd, TMO, &first);

    if (r != 1)
        fail_msg("line %d: expected the server to close the connection "
                 "(%s, first byte 0x%02x)", line,
                 r == 0 ? "timeout" : "bytes arrived", first);
}

/* Reads "VALUE key flags bytes cas\r\n" and returns cas. */
uint64_t
read_gets_header(int fd, const char *key, unsigned flags, unsigned bytes)
{
    char line[512], want[400];
    unsigned long long cas = 0;
    int prefix;

    assert_true(harness_read_line(fd, line, sizeof(line), TMO) > 0);
    prefix = snprintf(want, sizeof(want), "VALUE %s %u %u ", key, flags,
                      bytes);
    if (strncmp(line, want, (size_t)prefix) != 0 ||
        sscanf(line + prefix, "%llu", &cas) != 1) {
        dump_bytes("got", line, strlen(line));
        fail_msg("expected a gets header for %s", key);
    }
    return (uint64_t)cas;
}

/* Sends "stats[ group]" and returns the number of STAT lines before END;
 * stores the value of stat `name` (if seen) into value. */
int
text_stats(int fd, const char *group, const char *name, char *value,
           size_t value_cap)
{
    char line[4096], cmd[128];
    int count = 0;

    if (group != NULL)
        snprintf(cmd, sizeof(cmd), "stats %s\r\n", group);
    else
        snprintf(cmd, sizeof(cmd), "stats\r\n");
    assert_int_equal(harness_send_str(fd, cmd), 0);
    for (;;) {
        ssize_t n = harness_read_line(fd, line, sizeof(line), TMO);

        if (n <= 0)
            fail_msg("stats reply ended without END");
        if (strcmp(line, "END\r\n") == 0)
            return count;
        if (strncmp(line, "STAT ", 5) != 0 || line[n - 2] != '\r') {
            dump_bytes("line", line, (size_t)n);
            fail_msg("bad stats line");
        }
        count++;
        if (name != NULL && value != NULL) {
            size_t nl = strlen(name);

            if (strncmp(line + 5, name, nl) == 0 && line[5 + nl] == ' ') {
                snprintf(value, value_cap, "%.*s", (int)(n - 5 - nl - 1 - 2),
                         line + 5 + nl + 1);
            }
        }
    }
}

/* Flushes the server through a fresh text connection. */
void
flush_server(void)
{
    int fd = tconn();

    TEXT(fd, "flush_all\r\n", "OK\r\n");
    close(fd);
}

/* ------------------------------------------------------------------ */
/* binary protocol helpers                                             */

int
bconn(void)
{
    return tconn();
}

const unsigned char *
bm_key(const struct bmsg *m)
{
    return m->body + m->extlen;
}

const unsigned char *
bm_val(const struct bmsg *m)
{
    return m->body + m->extlen + m->keylen;
}

uint32_t
bm_vlen(const struct bmsg *m)
{
    return m->bodylen - m->extlen - m->keylen;
}

void
bm_free(struct bmsg *m)
{
    free(m->body);
    m->body = NULL;
}

uint32_t
bm_flags(const struct bmsg *m)
{
    assert_int_equal(m->extlen, 4);
    return proto_bin_get32((const char *)m->body);
}

uint64_t
counter_value(const struct bmsg *m)
{
    assert_int_equal(m->extlen, 0);
    assert_int_equal(m->keylen, 0);
    assert_int_equal(m->bodylen, 8);
    return proto_bin_get64((const char *)m->body);
}

void
put16(char *p, uint16_t v)
{
    p[0] = (char)(v >> 8);
    p[1] = (char)v;
}

void
ob_hdr(struct obuf *b, uint8_t magic, uint8_t opcode, uint16_t keylen,
       uint8_t extlen, uint32_t bodylen, uint32_t opaque, uint64_t cas)
{
    char h[PROTO_BIN_HDR_LEN];

    h[0] = (char)magic;
    h[1] = (char)opcode;
    put16(h + 2, keylen);
    h[4] = (char)extlen;
    h[5] = 0;            /* datatype */
    put16(h + 6, 0);     /* vbucket */
    proto_bin_put32(h + 8, bodylen);
    proto_bin_put32(h + 12, opaque);
    proto_bin_put64(h + 16, cas);
    ob_put(b, h, sizeof(h));
}

/* Appends one request; key is klen bytes (klen may exceed strlen). */
void
ob_req(struct obuf *b, uint8_t opcode, const char *key, size_t klen,
       const void *ext, uint8_t extlen, const void *val, size_t vlen,
       uint32_t opaque, uint64_t cas)
{
    ob_hdr(b, PROTO_BIN_REQ_MAGIC, opcode, (uint16_t)klen, extlen,
           (uint32_t)(extlen + klen + vlen), opaque, cas);
    ob_put(b, ext, extlen);
    ob_put(b, key, klen);
    ob_put(b, val, vlen);
}

void
breq_simple(struct obuf *b, uint8_t opcode, uint32_t opaque)
{
    ob_req(b, opcode, "", 0, NULL, 0, NULL, 0, opaque, 0);
}

void
breq_key(struct obuf *b, uint8_t opcode, const char *key, uint32_t opaque,
         uint64_t cas)
{
    ob_req(b, opcode, key, strlen(key), NULL, 0, NULL, 0, opaque, cas);
}

void
breq_store(struct obuf *b, uint8_t opcode, const char *key, uint32_t flags,
           uint32_t exptime, const void *val, size_t vlen, uint32_t opaque,
           uint64_t cas)
{
    char ext[8];

    proto_bin_put32(ext, flags);
    proto_bin_put32(ext + 4, exptime);
    ob_req(b, opcode, key, strlen(key), ext, 8, val, vlen, opaque, cas);
}

void
breq_concat(struct obuf *b, uint8_t opcode, const char *key, const char *val,
            uint32_t opaque, uint64_t cas)
{
    ob_req(b, opcode, key, strlen(key), NULL, 0, val, strlen(val), opaque,
           cas);
}

void
breq_arith(struct obuf *b, uint8_t opcode, const char *key, uint64_t delta,
           uint64_t initial, uint32_t exptime, uint32_t opaque, uint64_t cas)
{
    char ext[20];

    proto_bin_put64(ext, delta);
    proto_bin_put64(ext + 8, initial);
    proto_bin_put32(ext + 16, exptime);
    ob_req(b, opcode, key, strlen(key), ext, 20, NULL, 0, opaque, cas);
}

void
breq_exp(struct obuf *b, uint8_t opcode, const char *key, uint32_t exptime,
         uint32_t opaque)
{
    char ext[4];

    proto_bin_put32(ext, exptime);
    ob_req(b, opcode, key, strlen(key), ext, 4, NULL, 0, opaque, 0);
}

void
ob_send(int fd, struct obuf *b)
{
    assert_int_equal(harness_send_all(fd, b->p, b->len), 0);
    b->len = 0;
}

/*
 * Reads one response. 0: ok; 1: nothing (EOF or timeout before a byte);
 * -1: a partial or impossible packet.
 */
int
bread(int fd, struct bmsg *m, int timeout_ms)
{
    char h[PROTO_BIN_HDR_LEN];
    ssize_t n = harness_read_exact(fd, h, sizeof(h), timeout_ms);

    memset(m, 0, sizeof(*m));
    if (n == 0)
        return 1;
    if (n != (ssize_t)sizeof(h)) {
        dump_bytes("partial header", h, n > 0 ? (size_t)n : 0);
        return -1;
    }
    m->magic = (uint8_t)h[0];
    m->opcode = (uint8_t)h[1];
    m->keylen = (uint16_t)(((uint8_t)h[2] << 8) | (uint8_t)h[3]);
    m->extlen = (uint8_t)h[4];
    m->datatype = (uint8_t)h[5];
    m->status = (uint16_t)(((uint8_t)h[6] << 8) | (uint8_t)h[7]);
    m->bodylen = proto_bin_get32(h + 8);
    m->opaque = proto_bin_get32(h + 12);
    m->cas = proto_bin_get64(h + 16);
    if (m->bodylen > 8u * 1024 * 1024 ||
        (uint32_t)m->extlen + m->keylen > m->bodylen) {
        dump_bytes("header", h, sizeof(h));
        return -1;
    }
    m->body = malloc(m->bodylen + 1);
    assert_non_null(m->body);
    m->body[m->bodylen] = 0;
    if (harness_read_exact(fd, m->body, m->bodylen, timeout_ms) !=
        (ssize_t)m->bodylen) {
        bm_free(m);
        return -1;
    }
    return 0;
}

/* Reads one response and checks opcode, status and opaque. */
void
bexpect_at(int line, int fd, struct bmsg *m, uint8_t opcode, uint16_t status,
           uint32_t opaque)
{
    int r = bread(fd, m, TMO);

    if (r != 0)
        fail_msg("line %d: expected a response (opcode 0x%02x status 0x%02x "
                 "opaque %u), got %s", line, opcode, status, opaque,
                 r == 1 ? "nothing" : "a broken packet");
    if (m->magic != PROTO_BIN_RES_MAGIC || m->opcode != opcode ||
        m->status != status || m->opaque != opaque) {
        fprintf(stderr, "  got magic 0x%02x opcode 0x%02x status 0x%02x "
                "opaque %u\n", m->magic, m->opcode, m->status, m->opaque);
        dump_bytes("body", m->body, m->bodylen);
        bm_free(m);
        fail_msg("line %d: expected opcode 0x%02x status 0x%02x opaque %u",
                 line, opcode, status, opaque);
    }
}

/* Checks that m carries no extras/key and exactly the text `value`. */
void
check_value_at(int line, const struct bmsg *m, uint8_t extlen, uint16_t keylen,
               const char *value)
{
    size_t vlen = strlen(value);

    if (m->extlen != extlen || m->keylen != keylen ||
        !bytes_equal(bm_val(m), bm_vlen(m), value, vlen))
        fail_msg("line %d: extlen %u (want %u) keylen %u (want %u) or "
                 "value differs", line, m->extlen, extlen, m->keylen, keylen);
}

/* Sends NOOP and requires the next response to be that NOOP: proves no
 * other response was pending. */
void
bsync_at(int line, int fd)
{
    struct obuf b = { 0 };
    struct bmsg m;

    breq_simple(&b, BIN_OP_NOOP, 0x5eed);
    ob_send(fd, &b);
    ob_free(&b);
    bexpect_at(line, fd, &m, BIN_OP_NOOP, BIN_STATUS_SUCCESS, 0x5eed);
    assert_int_equal(m.bodylen, 0);
    bm_free(&m);
}
