/*
 * mcload_io.c: requests and replies on one mcload connection.
 *
 * Each connection keeps up to --pipeline requests in flight in a small ring
 * (the server answers in order, so the oldest slot is the one a reply
 * belongs to). Requests are claimed from one atomic counter shared by all
 * threads, which bounds --requests exactly and numbers keys for
 * --sequential and --prefill. Bytes go through tools/mcconn, so the same
 * code runs over TCP and TLS. Every function runs in the client thread that
 * owns the connection.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/mcload.h"

_Noreturn void
die_conn(const struct conn *c, const char *what)
{
    fprintf(stderr, "mcload: connection %u: %s\n", c->id, what);
    exit(1);
}

void *
xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (p == NULL) {
        fprintf(stderr, "mcload: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}


static uint64_t
rng_next(uint64_t *s)
{
    /* xorshift64* */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void
put_key(char *p, uint32_t k)
{
    memcpy(p, "key:", 4);
    for (int i = 13; i >= 4; i--) {
        p[i] = (char)('0' + k % 10);
        k /= 10;
    }
}

static void
put_be(char *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--) {
        p[i] = (char)(v & 0xff);
        v >>= 8;
    }
}

static uint64_t
get_be(const char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = (v << 8) | (unsigned char)p[i];
    return v;
}

static char *
wbuf_reserve(struct conn *c, size_t n)
{
    if (c->woff > 0 && c->woff == c->wlen)
        c->woff = c->wlen = 0;
    if (c->wlen + n > c->wcap) {
        if (c->woff > 0) {
            memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
            c->wlen -= c->woff;
            c->woff = 0;
        }
        while (c->wlen + n > c->wcap)
            c->wcap *= 2;
        c->wbuf = xrealloc(c->wbuf, c->wcap);
    }
    char *p = c->wbuf + c->wlen;
    c->wlen += n;
    return p;
}

/* Appends one request to the output buffer and its slot to the ring. */
static void
issue(struct conn *c, uint64_t t_ns, bool is_get, uint32_t key)
{
    uint32_t vs = opt.value_size;
    char *p;
    if (opt.binary) {
        uint8_t extlen = is_get ? 0 : 8;
        uint32_t body = extlen + KEY_LEN + (is_get ? 0 : vs);
        p = wbuf_reserve(c, 24 + (size_t)body);
        memset(p, 0, 24 + extlen);
        p[0] = (char)0x80;
        p[1] = is_get ? 0x00 : 0x01;          /* GET / SET */
        put_be(p + 2, KEY_LEN, 2);
        p[4] = (char)extlen;
        put_be(p + 8, body, 4);
        put_key(p + 24 + extlen, key);
        if (!is_get)
            memcpy(p + 24 + extlen + KEY_LEN, value_buf, vs);
    } else if (is_get) {
        p = wbuf_reserve(c, 4 + KEY_LEN + 2);
        memcpy(p, "get ", 4);
        put_key(p + 4, key);
        memcpy(p + 4 + KEY_LEN, "\r\n", 2);
    } else {
        p = wbuf_reserve(c, 4 + KEY_LEN + text_set_tail_len + vs + 2);
        memcpy(p, "set ", 4);
        put_key(p + 4, key);
        p += 4 + KEY_LEN;
        memcpy(p, text_set_tail, text_set_tail_len);
        p += text_set_tail_len;
        memcpy(p, value_buf, vs);
        memcpy(p + vs, "\r\n", 2);
    }
    struct slot *s = &c->ring[(c->head + c->count) % ring_cap];
    s->t_ns = t_ns;
    s->is_get = is_get;
    s->key = key;
    c->count++;
    c->w->inflight++;
}

void
worker_stop(struct worker *w)
{
    w->stopping = true;
    if (w->inflight == 0)
        event_base_loopbreak(w->base);
}

/* Claims the next request number of this phase; false when the phase's
 * count is used up (then the worker stops issuing). */
static bool
claim(struct worker *w, uint64_t *idx)
{
    if (w->stopping)
        return false;
    uint64_t i = atomic_fetch_add_explicit(&claim_next, 1,
                                           memory_order_relaxed);
    if (i >= phase_limit) {
        worker_stop(w);
        return false;
    }
    *idx = i;
    return true;
}

static void
issue_next(struct conn *c, uint64_t t_ns, uint64_t idx)
{
    struct worker *w = c->w;
    if (phase_prefill) {
        issue(c, t_ns, false, (uint32_t)idx);
        return;
    }
    bool is_get = (double)(rng_next(&w->rng) >> 11) * 0x1.0p-53 <
                  opt.get_ratio;
    uint32_t key;
    if (opt.sequential && opt.shuffle)   /* a prime multiplier: a bijection */
        key = (uint32_t)((idx % opt.keys) * 2654435761u % opt.keys);
    else if (opt.sequential)
        key = (uint32_t)(idx % opt.keys);
    else
        key = (uint32_t)(((unsigned __int128)rng_next(&w->rng) * opt.keys)
                         >> 64);
    issue(c, t_ns, is_get, key);
}

void
flush(struct conn *c)
{
    while (c->woff < c->wlen) {
        ssize_t n = mcconn_write(&c->mc, c->wbuf + c->woff,
                                 c->wlen - c->woff);
        if (n > 0) {
            c->woff += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!event_pending(c->wev, EV_WRITE, NULL))
                event_add(c->wev, NULL);
            return;
        } else {
            die_conn(c, n < 0 ? c->mc.error : "write returned 0");
        }
    }
    c->woff = c->wlen = 0;
    if (event_pending(c->wev, EV_WRITE, NULL))
        event_del(c->wev);
}

static uint64_t
due_ns(const struct conn *c, uint64_t seq)
{
    return phase_start_ns +
           (uint64_t)(((double)c->id / (opt.threads * opt.conns) + (double)seq) *
                      phase_interval_ns);
}

/* Fills the connection's pipeline as far as the mode allows. */
void
pump(struct conn *c)
{
    struct worker *w = c->w;
    uint64_t idx, now = now_ns();
    if (phase_interval_ns == 0) {
        while (c->count < phase_depth && claim(w, &idx))
            issue_next(c, now, idx);
        return;
    }
    while (c->count < phase_depth && !w->stopping) {
        uint64_t due = due_ns(c, c->next_seq);
        if (due > now) {
            if (!evtimer_pending(c->tev, NULL)) {
                struct timeval tv = {
                    .tv_sec = (time_t)((due - now) / 1000000000u),
                    .tv_usec = (suseconds_t)((due - now) % 1000000000u / 1000),
                };
                evtimer_add(c->tev, &tv);
            }
            return;
        }
        if (!claim(w, &idx))
            return;
        issue_next(c, due, idx);
        c->next_seq++;
    }
}

/* ---- replies ---- */

enum outcome { OUT_OK, OUT_MISS, OUT_ERROR };

/* Prints the first error reply of the run (stderr), to say what failed. */
static void
note_error(const struct conn *c, const char *what, const char *text, size_t n)
{
    static atomic_bool printed;
    if (atomic_exchange(&printed, true))
        return;
    fprintf(stderr, "mcload: connection %u: first error: %s%.*s\n", c->id,
            what, (int)(n < 200 ? n : 200), text);
}

static void
complete(struct conn *c, enum outcome out)
{
    struct worker *w = c->w;
    if (c->count == 0)
        die_conn(c, "reply without a request in flight");
    struct slot *s = &c->ring[c->head];
    struct slot done = *s;
    c->head = (c->head + 1) % ring_cap;
    c->count--;
    w->inflight--;
    w->ops++;
    /* (after --requests ran out too: every key is to be stored; not
     * after --duration ended) */
    if (out == OUT_ERROR && opt.retry && !done.is_get &&
        !(w->stopping && opt.duration > 0)) {
        /* refused (backpressure): the same key again, at the end of the
         * pipeline, so an ingest stores every key; its latency counts
         * from the first send */
        w->retries++;
        issue(c, done.t_ns, false, done.key);
        return;
    }
    if (out == OUT_MISS)
        w->misses++;
    else if (out == OUT_ERROR)
        w->errors++;
    if (!phase_prefill) {
        uint64_t now = now_ns();
        uint64_t lat = now > s->t_ns ? now - s->t_ns : 0;
        hist_record(&w->hist, lat);
        if (opt.tick) {
            atomic_fetch_add_explicit(&w->tick_ops, 1, memory_order_relaxed);
            if (lat > atomic_load_explicit(&w->tick_max_ns, memory_order_relaxed))
                atomic_store_explicit(&w->tick_max_ns, lat, memory_order_relaxed);
        }
    }
    if (w->stopping && w->inflight == 0)
        event_base_loopbreak(w->base);
}

static const struct slot *
oldest(struct conn *c)
{
    if (c->count == 0)
        die_conn(c, "reply without a request in flight");
    return &c->ring[c->head];
}

/* Parses one binary reply; returns the bytes used, 0 if incomplete. */
static size_t
parse_bin(struct conn *c, const char *p, size_t len)
{
    if (len < 24)
        return 0;
    if ((unsigned char)p[0] != 0x81)
        die_conn(c, "bad magic in binary reply");
    uint32_t body = (uint32_t)get_be(p + 8, 4);
    if (body > MAX_VALUE_SIZE + 1024)
        die_conn(c, "binary reply body too large");
    if (len < 24 + (size_t)body)
        return 0;
    const struct slot *s = oldest(c);
    uint8_t opcode = (uint8_t)p[1];
    uint16_t status = (uint16_t)get_be(p + 6, 2);
    if (opcode != (s->is_get ? 0x00 : 0x01))
        die_conn(c, "binary reply opcode does not match the request");
    enum outcome out = OUT_OK;
    if (s->is_get && status == 0x01) {
        out = OUT_MISS;
    } else if (status != 0) {
        char msg[64];
        snprintf(msg, sizeof(msg), "binary status 0x%02x to %s ", status,
                 s->is_get ? "get" : "set");
        note_error(c, msg, p + 24, body);
        out = OUT_ERROR;
    } else if (s->is_get) {
        uint32_t hdr = (uint8_t)p[4] + (uint32_t)get_be(p + 2, 2);
        if (hdr > body || body - hdr != opt.value_size) {
            note_error(c, "get returned a value of the wrong length", "", 0);
            out = OUT_ERROR;
        }
    }
    complete(c, out);
    return 24 + (size_t)body;
}

static bool
line_is(const char *line, size_t n, const char *word)
{
    size_t wl = strlen(word);
    return n >= wl && memcmp(line, word, wl) == 0 &&
           (n == wl || line[wl] == ' ');
}

/* Parses one text reply; returns the bytes used, 0 if incomplete. */
static size_t
parse_text(struct conn *c, const char *p, size_t len)
{
    const char *nl = memchr(p, '\n', len < MAX_TEXT_LINE ? len : MAX_TEXT_LINE);
    if (nl == NULL) {
        if (len >= MAX_TEXT_LINE)
            die_conn(c, "text reply line too long");
        return 0;
    }
    size_t used = (size_t)(nl - p) + 1;
    size_t n = used - 1;
    if (n == 0 || p[n - 1] != '\r')
        die_conn(c, "text reply line does not end in \\r\\n");
    n--;
    const struct slot *s = oldest(c);
    enum outcome out;
    if (line_is(p, n, "SERVER_ERROR") || line_is(p, n, "CLIENT_ERROR") ||
        line_is(p, n, "ERROR")) {
        note_error(c, s->is_get ? "get: " : "set: ", p, n);
        out = OUT_ERROR;
    } else if (!s->is_get) {
        if (line_is(p, n, "STORED"))
            out = OUT_OK;
        else if (line_is(p, n, "NOT_STORED") || line_is(p, n, "EXISTS") ||
                 line_is(p, n, "NOT_FOUND")) {
            note_error(c, "set: ", p, n);
            out = OUT_ERROR;
        }
        else
            die_conn(c, "unexpected text reply to set");
    } else if (line_is(p, n, "END")) {
        out = OUT_MISS;
    } else if (line_is(p, n, "VALUE")) {
        /* VALUE <key> <flags> <bytes>[ <cas>] */
        const char *f[4];
        unsigned nf = 0;
        for (size_t i = 6; i < n && nf < 4; i++)
            if (p[i - 1] == ' ' && p[i] != ' ')
                f[nf++] = p + i;
        if (nf < 3)
            die_conn(c, "malformed VALUE line");
        uint64_t bytes = 0;
        for (const char *q = f[2]; q < p + n && *q != ' '; q++) {
            if (*q < '0' || *q > '9' || bytes > MAX_VALUE_SIZE)
                die_conn(c, "malformed VALUE length");
            bytes = bytes * 10 + (uint64_t)(*q - '0');
        }
        if (len < used + bytes + 7)
            return 0;
        if (memcmp(p + used + bytes, "\r\nEND\r\n", 7) != 0)
            die_conn(c, "VALUE data not followed by \\r\\nEND\\r\\n");
        used += (size_t)bytes + 7;
        out = OUT_OK;
        if (bytes != opt.value_size) {
            note_error(c, "get returned a value of the wrong length", "", 0);
            out = OUT_ERROR;
        }
    } else {
        die_conn(c, "unexpected text reply to get");
    }
    complete(c, out);
    return used;
}

/* Reads once into rbuf and consumes every whole reply; false when there
 * was nothing to read. */
static bool
read_some(struct conn *c)
{
    if (c->rlen == c->rcap) {
        if (c->roff > 0) {
            memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
            c->rlen -= c->roff;
            c->roff = 0;
        } else {
            c->rcap *= 2;
            c->rbuf = xrealloc(c->rbuf, c->rcap);
        }
    }
    ssize_t n = mcconn_read(&c->mc, c->rbuf + c->rlen, c->rcap - c->rlen);
    if (n == 0)
        die_conn(c, "server closed the connection");
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return false;
        die_conn(c, c->mc.error);
    }
    c->rlen += (size_t)n;
    for (;;) {
        size_t avail = c->rlen - c->roff, used;
        if (avail == 0)
            break;
        if (opt.binary)
            used = parse_bin(c, c->rbuf + c->roff, avail);
        else
            used = parse_text(c, c->rbuf + c->roff, avail);
        if (used == 0)
            break;
        c->roff += used;
    }
    if (c->roff == c->rlen)
        c->roff = c->rlen = 0;
    return true;
}

void
on_read(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    bool got = false;
    (void)fd;
    (void)what;
    /* TLS may hold decrypted bytes the socket will not signal again. */
    do {
        if (!read_some(c))
            break;
        got = true;
    } while (mcconn_pending(&c->mc) > 0);
    if (!got)
        return;
    pump(c);
    flush(c);
}

void
on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush(arg);
}

void
on_due(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pump(arg);
    flush(arg);
}
