/*
 * server_helpers.h: what the integration tests of the running server share
 * (test_server*.c): the group fixture that starts and stops the server
 * under test (harness.h), byte-exact checks, and clients of the text and
 * binary protocols over raw sockets. Unlike harness.h these use cmocka: a
 * helper that does not get what it expects fails the test, naming the line
 * of the caller where it can.
 */
#ifndef MCKV_TESTS_INTEG_SERVER_HELPERS_H
#define MCKV_TESTS_INTEG_SERVER_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/proto_bin.h"
#include "tests/integ/harness.h"

#define TMO HARNESS_TIMEOUT_MS
/* Sleep that lets a second-granularity clock move at least 2 ticks. */
#define EXPIRY_SLEEP_US (2500 * 1000)
#define VALUE_TOO_LARGE (1024 * 1024 + 1)   /* over -I 1m */

/* The server's arguments: -t 4 -m 64 -I 1m. */
extern const char *const k_server_args[];
/* The server of the running group. */
extern struct server *g_srv;
/* Groups whose server did not stop cleanly (exit status != 0). */
extern int g_bad_stops;

/* cmocka group setup and teardown: start g_srv, stop it (counting an
 * unclean exit in g_bad_stops). */
int group_setup(void **state);
int group_teardown(void **state);
/* cmocka setup of each test of a group: flush_server(). */
int text_group_test_setup(void **state);

/* ---- bytes ---- */

/* Prints n bytes of p to stderr, escaped, after label. */
void dump_bytes(const char *label, const void *p, size_t n);
/* True when equal; else dumps both. */
bool bytes_equal(const void *got, size_t got_len, const void *want, size_t want_len);

#define assert_bytes(got, got_len, want, want_len)                          \
    do {                                                                    \
        if (!bytes_equal((got), (got_len), (want), (want_len)))             \
            fail_msg("bytes differ");                                       \
    } while (0)

/* A growable output buffer for building requests. */
struct obuf {
    char *p;
    size_t len;
    size_t cap;
};

void ob_put(struct obuf *b, const void *data, size_t n);
void ob_printf(struct obuf *b, const char *fmt, ...);
void ob_free(struct obuf *b);
/* Fills out[0..n) with a value that depends on seed (printable bytes). */
void fill_pattern(char *out, size_t n, unsigned seed);

/* ---- the text protocol ---- */

/* A connection to g_srv. */
int tconn(void);
/* Sends out and requires exactly want back (bounded wait). */
void text_rt(int line, int fd, const void *out, size_t out_len, const char *want,
             size_t want_len);
#define TEXT(fd, out, want)                                                 \
    text_rt(__LINE__, (fd), (out), strlen(out), (want), strlen(want))
#define TEXTN(fd, out, out_len, want)                                       \
    text_rt(__LINE__, (fd), (out), (out_len), (want), strlen(want))
/* Sends "version" and requires the next line to be "VERSION ...": proves no
 * stray bytes were sent before it (e.g. by a noreply command). */
void text_sync_at(int line, int fd);
#define text_sync(fd) text_sync_at(__LINE__, (fd))
/* The server closes fd (bounded wait). */
void expect_closed_at(int line, int fd);
#define expect_closed(fd) expect_closed_at(__LINE__, (fd))
/* Reads "VALUE key flags bytes cas\r\n" and returns cas. */
uint64_t read_gets_header(int fd, const char *key, unsigned flags, unsigned bytes);
/* Sends "stats[ group]" and returns the number of STAT lines before END;
 * stores the value of stat `name` (if seen) into value. */
int text_stats(int fd, const char *group, const char *name, char *value,
               size_t value_cap);
/* Flushes the server through a fresh text connection. */
void flush_server(void);

/* ---- the binary protocol ---- */

struct bmsg {
    uint8_t magic;
    uint8_t opcode;
    uint8_t extlen;
    uint8_t datatype;
    uint16_t keylen;
    uint16_t status;
    uint32_t bodylen;
    uint32_t opaque;
    uint64_t cas;
    unsigned char *body;   /* bodylen bytes (malloc'd, NUL-terminated) */
};

/* A connection to g_srv for binary requests. */
int bconn(void);
const unsigned char *bm_key(const struct bmsg *m);
const unsigned char *bm_val(const struct bmsg *m);
uint32_t bm_vlen(const struct bmsg *m);
void bm_free(struct bmsg *m);
/* The flags of a get response (4 bytes of extras). */
uint32_t bm_flags(const struct bmsg *m);
/* The value of an incr/decr response (8 bytes of body). */
uint64_t counter_value(const struct bmsg *m);

void put16(char *p, uint16_t v);
void ob_hdr(struct obuf *b, uint8_t magic, uint8_t opcode, uint16_t keylen,
            uint8_t extlen, uint32_t bodylen, uint32_t opaque, uint64_t cas);
/* Appends one request; key is klen bytes (klen may exceed strlen). */
void ob_req(struct obuf *b, uint8_t opcode, const char *key, size_t klen,
            const void *ext, uint8_t extlen, const void *val, size_t vlen,
            uint32_t opaque, uint64_t cas);
void breq_simple(struct obuf *b, uint8_t opcode, uint32_t opaque);
void breq_key(struct obuf *b, uint8_t opcode, const char *key, uint32_t opaque,
              uint64_t cas);
void breq_store(struct obuf *b, uint8_t opcode, const char *key, uint32_t flags,
                uint32_t exptime, const void *val, size_t vlen, uint32_t opaque,
                uint64_t cas);
void breq_concat(struct obuf *b, uint8_t opcode, const char *key, const char *val,
                 uint32_t opaque, uint64_t cas);
void breq_arith(struct obuf *b, uint8_t opcode, const char *key, uint64_t delta,
                uint64_t initial, uint32_t exptime, uint32_t opaque, uint64_t cas);
void breq_exp(struct obuf *b, uint8_t opcode, const char *key, uint32_t exptime,
              uint32_t opaque);
/* Sends b and empties it. */
void ob_send(int fd, struct obuf *b);
/* Reads one response. 0: ok; 1: nothing (EOF or timeout before a byte);
 * -1: a partial or impossible packet. */
int bread(int fd, struct bmsg *m, int timeout_ms);
/* Reads one response and checks opcode, status and opaque. */
void bexpect_at(int line, int fd, struct bmsg *m, uint8_t opcode, uint16_t status,
                uint32_t opaque);
#define bexpect(fd, m, op, st, opq) bexpect_at(__LINE__, (fd), (m), (op), (st), (opq))
/* Checks that m carries extlen extras, keylen key and exactly the text
 * `value`. */
void check_value_at(int line, const struct bmsg *m, uint8_t extlen, uint16_t keylen,
                    const char *value);
#define check_value(m, el, kl, v) check_value_at(__LINE__, (m), (el), (kl), (v))

/* A status-only error reply: no extras, no key, body = memcached's text. */
#define bexpect_err(fd, m, op, st, opq, text)                               \
    do {                                                                    \
        bexpect((fd), (m), (op), (st), (opq));                              \
        check_value((m), 0, 0, (text));                                     \
        assert_true((m)->cas == 0);                                         \
        bm_free(m);                                                         \
    } while (0)

#define bexpect_ok_empty(fd, m, op, opq)                                    \
    do {                                                                    \
        bexpect((fd), (m), (op), BIN_STATUS_SUCCESS, (opq));                \
        assert_int_equal((m)->bodylen, 0);                                  \
        bm_free(m);                                                         \
    } while (0)

/* Sends NOOP and requires the next response to be that NOOP: proves no
 * other response was pending. */
void bsync_at(int line, int fd);
#define bsync(fd) bsync_at(__LINE__, (fd))

#endif
