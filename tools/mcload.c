/*
 * mcload.c: memcached load generator (binary or text protocol) on libevent.
 *
 * Each client thread owns an event_base and --conns connections; each
 * connection keeps up to --pipeline requests in flight in a small ring (the
 * server answers in order, so the oldest slot is the one a reply belongs to).
 * Requests are claimed from one atomic counter shared by all threads, which
 * bounds --requests exactly and numbers keys for --sequential and --prefill.
 *
 * Closed loop (default): a reply immediately frees a slot for the next
 * request; latency runs from the send. Open loop (--rate): request k of
 * connection g is due at start + g/rate + k*(threads*conns)/rate; a request
 * that could not be sent on time (pipeline full) is sent late but its latency
 * still runs from the due time, so a slow server cannot hide its queueing
 * (coordinated omission).
 *
 * Latencies go to a per-thread log-linear histogram in nanoseconds (exact
 * below 128 ns, then 64 sub-buckets per power of two: < 1.6% error), merged
 * at the end. Output: an optional PREFILL line, then one RESULT line.
 * Connection failures and protocol desyncs end the run with exit status 1.
 * Only depends on libevent; no mckv code.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#define KEY_LEN 14                  /* "key:%010u" */
#define HIST_SUB_BITS 6
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) << HIST_SUB_BITS)
#define PREFILL_MIN_DEPTH 16
#define MAX_VALUE_SIZE (64u << 20)
#define MAX_TEXT_LINE 2048

struct options {
    const char *host;
    const char *port;
    unsigned threads, conns, pipeline;
    bool binary;
    uint32_t keys;
    uint32_t value_size;
    double get_ratio;
    bool prefill;
    uint64_t requests;              /* UINT64_MAX: no count limit */
    double duration;                /* seconds; 0: no time limit */
    double rate;                    /* ops/s; 0: closed loop */
    bool sequential;
    bool shuffle;           /* --sequential over a fixed permutation */
    bool retry;             /* a refused set is sent again (ingests) */
    bool tick;              /* a TICK line per second */
    uint64_t seed;
    unsigned stall_timeout;         /* seconds without any reply */
};

struct hist {
    uint64_t counts[HIST_BUCKETS];
    uint64_t total;
    uint64_t max;
};

struct slot {
    uint64_t t_ns;                  /* send (or due) time */
    bool is_get;
    uint32_t key;                   /* for --retry */
};

struct worker;

struct conn {
    struct worker *w;
    unsigned id;                    /* global index: thread * conns + i */
    int fd;
    struct event *rev, *wev, *tev;
    char *rbuf;
    size_t rcap, rlen, roff;
    char *wbuf;
    size_t wcap, wlen, woff;
    struct slot *ring;              /* ring_cap slots, head is the oldest */
    unsigned head, count;
    uint64_t next_seq;              /* open loop: next request's number */
};

struct worker {
    unsigned idx;
    pthread_t tid;
    struct event_base *base;
    struct conn *conns;
    struct event *deadline_ev, *watch_ev;
    uint64_t rng;
    struct hist hist;
    uint64_t ops, errors, misses;   /* this phase */
    uint64_t retries;               /* --retry: refused sets sent again */
    unsigned inflight;
    bool stopping;
    uint64_t watch_last_ops;
    unsigned watch_idle_s;
    /* --tick: this second's replies and longest latency, taken (exchanged
     * to 0) by the ticker thread; relaxed, they are only counters. */
    _Atomic uint64_t tick_ops, tick_max_ns;
};

static struct options opt = {
    .host = "127.0.0.1", .port = "11211", .threads = 2, .conns = 25,
    .pipeline = 1, .binary = true, .keys = 100000, .value_size = 100,
    .get_ratio = 0.9, .requests = UINT64_MAX, .seed = 1, .stall_timeout = 10,
};

/* Phase state: written by main before the threads start, read-only in them
 * (pthread_create orders the writes), except claim_next. */
static bool phase_prefill;
static unsigned phase_depth;
static uint64_t phase_limit;
static uint64_t phase_start_ns;
static double phase_interval_ns;   /* open loop: per-connection spacing */
static atomic_uint_fast64_t claim_next;

static unsigned ring_cap;
static char *value_buf;
static char text_set_tail[48];      /* " 0 0 <bytes>\r\n" */
static size_t text_set_tail_len;

static uint64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

_Noreturn static void
die_conn(const struct conn *c, const char *what)
{
    fprintf(stderr, "mcload: connection %u: %s\n", c->id, what);
    exit(1);
}

static void *
xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (p == NULL) {
        fprintf(stderr, "mcload: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

/* ---- histogram ---- */

static unsigned
hist_index(uint64_t v)
{
    if (v < (2u << HIST_SUB_BITS))
        return (unsigned)v;
    unsigned shift = 63 - (unsigned)__builtin_clzll(v) - HIST_SUB_BITS;
    return (shift << HIST_SUB_BITS) + (unsigned)(v >> shift);
}

/* Highest value that falls into bucket i. */
static uint64_t
hist_bucket_top(unsigned i)
{
    if (i < (2u << HIST_SUB_BITS))
        return i;
    unsigned shift = (i >> HIST_SUB_BITS) - 1;
    uint64_t sub = (i & ((1u << HIST_SUB_BITS) - 1)) | (1u << HIST_SUB_BITS);
    return ((sub + 1) << shift) - 1;
}

static void
hist_record(struct hist *h, uint64_t v)
{
    h->counts[hist_index(v)]++;
    h->total++;
    if (v > h->max)
        h->max = v;
}

static void
hist_merge(struct hist *into, const struct hist *from)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        into->counts[i] += from->counts[i];
    into->total += from->total;
    if (from->max > into->max)
        into->max = from->max;
}

/* Value at quantile q (0..1), as the top of its bucket, capped at max. */
static uint64_t
hist_quantile(const struct hist *h, double q)
{
    if (h->total == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->total + 0.999999);
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t top = hist_bucket_top(i);
            return top < h->max ? top : h->max;
        }
    }
    return h->max;
}

/* ---- requests ---- */

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

static void
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

static void
flush(struct conn *c)
{
    while (c->woff < c->wlen) {
        ssize_t n = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
        if (n > 0) {
            c->woff += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!event_pending(c->wev, EV_WRITE, NULL))
                event_add(c->wev, NULL);
            return;
        } else {
            die_conn(c, n < 0 ? strerror(errno) : "write returned 0");
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
static void
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

static void
on_read(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    (void)what;
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
    ssize_t n = read(fd, c->rbuf + c->rlen, c->rcap - c->rlen);
    if (n == 0)
        die_conn(c, "server closed the connection");
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        die_conn(c, strerror(errno));
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
    pump(c);
    flush(c);
}

static void
on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush(arg);
}

static void
on_due(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pump(arg);
    flush(arg);
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    worker_stop(arg);
}

/* Once a second: fail the run when replies stop coming. */
static void
on_watch(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
    if (w->ops != w->watch_last_ops || w->inflight == 0) {
        w->watch_last_ops = w->ops;
        w->watch_idle_s = 0;
        return;
    }
    if (++w->watch_idle_s >= opt.stall_timeout) {
        fprintf(stderr, "mcload: thread %u: no reply for %u s with %u "
                "requests in flight\n", w->idx, w->watch_idle_s, w->inflight);
        exit(1);
    }
}

/* ---- threads and phases ---- */

/* client thread: runs one phase on this worker's connections. */
static void *
worker_run(void *arg)
{
    struct worker *w = arg;
    w->ops = w->errors = w->misses = 0;
    w->stopping = false;
    w->watch_last_ops = 0;
    w->watch_idle_s = 0;
    if (opt.duration > 0 && !phase_prefill) {
        uint64_t end = phase_start_ns + (uint64_t)(opt.duration * 1e9);
        uint64_t now = now_ns();
        uint64_t left = end > now ? end - now : 0;
        struct timeval tv = { .tv_sec = (time_t)(left / 1000000000u),
                              .tv_usec = (suseconds_t)(left % 1000000000u / 1000) };
        evtimer_add(w->deadline_ev, &tv);
    }
    struct timeval sec = { .tv_sec = 1, .tv_usec = 0 };
    event_add(w->watch_ev, &sec);
    for (unsigned i = 0; i < opt.conns && !w->stopping; i++) {
        w->conns[i].next_seq = 0;
        pump(&w->conns[i]);
        flush(&w->conns[i]);
    }
    if (!(w->stopping && w->inflight == 0))
        event_base_dispatch(w->base);
    event_del(w->deadline_ev);
    event_del(w->watch_ev);
    for (unsigned i = 0; i < opt.conns; i++)
        event_del(w->conns[i].tev);
    return NULL;
}

struct phase_result {
    double seconds;
    uint64_t ops, errors, misses, retries;
};

/* --tick: once a second, the replies of that second and the longest of
 * their latencies, over all workers (the longest is a worker's own max,
 * which it may overwrite with a smaller one it sees later only if it raced
 * the exchange: a tick, not a histogram). Stops at phase_done. */
static _Atomic bool phase_done;

static void *
ticker_run(void *arg)
{
    struct worker *ws = arg;
    struct timespec next;
    unsigned sec = 0;

    clock_gettime(CLOCK_MONOTONIC, &next);
    while (!atomic_load(&phase_done)) {
        uint64_t ops = 0, max_ns = 0;

        next.tv_sec++;
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
            ;
        for (unsigned t = 0; t < opt.threads; t++) {
            uint64_t m = atomic_exchange_explicit(&ws[t].tick_max_ns, 0, memory_order_relaxed);
            ops += atomic_exchange_explicit(&ws[t].tick_ops, 0, memory_order_relaxed);
            max_ns = m > max_ns ? m : max_ns;
        }
        printf("TICK sec=%u ops=%" PRIu64 " max_us=%.0f\n", ++sec, ops, (double)max_ns / 1e3);
        fflush(stdout);
    }
    return NULL;
}

static struct phase_result
run_phase(struct worker *ws, bool prefill, uint64_t limit)
{
    pthread_t ticker;
    bool ticking = opt.tick && !prefill;

    phase_prefill = prefill;
    phase_limit = limit;
    phase_depth = opt.pipeline;
    phase_interval_ns = 0;
    if (prefill) {
        if (phase_depth < PREFILL_MIN_DEPTH)
            phase_depth = PREFILL_MIN_DEPTH;
    } else if (opt.rate > 0) {
        phase_interval_ns = 1e9 * opt.threads * opt.conns / opt.rate;
    }
    atomic_store(&claim_next, 0);
    phase_start_ns = now_ns();
    for (unsigned t = 0; t < opt.threads; t++) {
        int rc = pthread_create(&ws[t].tid, NULL, worker_run, &ws[t]);
        if (rc != 0) {
            fprintf(stderr, "mcload: pthread_create: %s\n", strerror(rc));
            exit(1);
        }
    }
    atomic_store(&phase_done, false);
    if (ticking && pthread_create(&ticker, NULL, ticker_run, ws) != 0)
        ticking = false;
    struct phase_result r = { 0 };
    for (unsigned t = 0; t < opt.threads; t++) {
        pthread_join(ws[t].tid, NULL);
        r.ops += ws[t].ops;
        r.errors += ws[t].errors;
        r.misses += ws[t].misses;
        r.retries += ws[t].retries;
    }
    r.seconds = (double)(now_ns() - phase_start_ns) / 1e9;
    if (ticking) {
        atomic_store(&phase_done, true);
        pthread_join(ticker, NULL);
    }
    return r;
}

static int
connect_to(const struct addrinfo *ai)
{
    for (; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
            return fd;
        }
        close(fd);
    }
    return -1;
}

static void
worker_setup(struct worker *w, unsigned idx, const struct addrinfo *ai)
{
    w->idx = idx;
    w->rng = opt.seed * 0x9E3779B97F4A7C15ULL + idx + 1;
    /* Precise timers (timerfd) so open-loop sends are not up to 1 ms late. */
    struct event_config *cfg = event_config_new();
    if (cfg != NULL)
        event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    w->base = cfg != NULL ? event_base_new_with_config(cfg) : NULL;
    if (cfg != NULL)
        event_config_free(cfg);
    if (w->base == NULL) {
        fprintf(stderr, "mcload: event_base_new failed\n");
        exit(1);
    }
    w->deadline_ev = evtimer_new(w->base, on_deadline, w);
    w->watch_ev = event_new(w->base, -1, EV_PERSIST, on_watch, w);
    w->conns = calloc(opt.conns, sizeof(*w->conns));
    if (w->conns == NULL || w->deadline_ev == NULL || w->watch_ev == NULL) {
        fprintf(stderr, "mcload: out of memory\n");
        exit(1);
    }
    for (unsigned i = 0; i < opt.conns; i++) {
        struct conn *c = &w->conns[i];
        c->w = w;
        c->id = idx * opt.conns + i;
        c->fd = connect_to(ai);
        if (c->fd < 0) {
            fprintf(stderr, "mcload: connect to %s:%s: %s\n", opt.host,
                    opt.port, strerror(errno));
            exit(1);
        }
        c->rcap = 64 * 1024;
        c->rbuf = xrealloc(NULL, c->rcap);
        c->wcap = 64 * 1024;
        c->wbuf = xrealloc(NULL, c->wcap);
        c->ring = xrealloc(NULL, ring_cap * sizeof(*c->ring));
        c->rev = event_new(w->base, c->fd, EV_READ | EV_PERSIST, on_read, c);
        c->wev = event_new(w->base, c->fd, EV_WRITE | EV_PERSIST, on_write, c);
        c->tev = evtimer_new(w->base, on_due, c);
        if (c->rev == NULL || c->wev == NULL || c->tev == NULL ||
            event_add(c->rev, NULL) != 0) {
            fprintf(stderr, "mcload: event setup failed\n");
            exit(1);
        }
    }
}

static void
worker_teardown(struct worker *w)
{
    for (unsigned i = 0; i < opt.conns; i++) {
        struct conn *c = &w->conns[i];
        event_free(c->rev);
        event_free(c->wev);
        event_free(c->tev);
        close(c->fd);
        free(c->rbuf);
        free(c->wbuf);
        free(c->ring);
    }
    free(w->conns);
    event_free(w->deadline_ev);
    event_free(w->watch_ev);
    event_base_free(w->base);
}

/* ---- options ---- */

static void
usage(FILE *f)
{
    fputs("usage: mcload [options]\n"
          "  --host H          server address (127.0.0.1)\n"
          "  --port N          server port (11211)\n"
          "  --threads T       client threads, one event_base each (2)\n"
          "  --conns C         connections per thread (25)\n"
          "  --pipeline D      requests in flight per connection (1)\n"
          "  --protocol P      binary | text (binary)\n"
          "  --keys K          key space, keys \"key:%010u\" (100000)\n"
          "  --value-size B    value bytes for sets (100)\n"
          "  --get-ratio R     fraction of gets, 0..1, rest sets (0.9)\n"
          "  --prefill         first set every key once (not measured)\n"
          "  --requests N      stop after N requests\n"
          "  --duration S      stop after S seconds (default 10 when\n"
          "                    --requests is not given)\n"
          "  --rate OPS        open loop at OPS requests/s over all\n"
          "                    connections; latency from the due time\n"
          "  --sequential      keys 0..K-1 in order instead of random\n"
          "  --shuffle         with --sequential: each key once, in a\n"
          "                    scrambled order (random keys, no repeats)\n"
          "  --retry           send a refused set again (counted as retries=,\n"
          "                    not errors=): an ingest stores every key\n"
          "  --tick            print TICK sec= ops= max_us= every second\n"
          "  --seed N          random seed (1)\n"
          "  --timeout S       fail when no reply comes for S s (10)\n"
          "Prints PREFILL (with --prefill) and a final line:\n"
          "RESULT ops= seconds= ops_per_sec= p50_us= p99_us= p999_us= "
          "max_us= errors= misses= retries=\n", f);
}

static double
parse_num(const char *name, const char *s, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi)) {
        fprintf(stderr, "mcload: --%s: '%s' is not a number in [%g, %g]\n",
                name, s, lo, hi);
        exit(2);
    }
    return v;
}

static void
parse_options(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "host", required_argument, NULL, 'h' },
        { "port", required_argument, NULL, 'p' },
        { "threads", required_argument, NULL, 't' },
        { "conns", required_argument, NULL, 'c' },
        { "pipeline", required_argument, NULL, 'd' },
        { "protocol", required_argument, NULL, 'P' },
        { "keys", required_argument, NULL, 'k' },
        { "value-size", required_argument, NULL, 'v' },
        { "get-ratio", required_argument, NULL, 'g' },
        { "prefill", no_argument, NULL, 'F' },
        { "requests", required_argument, NULL, 'n' },
        { "duration", required_argument, NULL, 'D' },
        { "rate", required_argument, NULL, 'r' },
        { "sequential", no_argument, NULL, 'S' },
        { "shuffle", no_argument, NULL, 'X' },
        { "retry", no_argument, NULL, 'Y' },
        { "tick", no_argument, NULL, 'K' },
        { "seed", required_argument, NULL, 's' },
        { "timeout", required_argument, NULL, 'T' },
        { "help", no_argument, NULL, 'H' },
        { NULL, 0, NULL, 0 },
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        const char *name = "";
        for (const struct option *o = longopts; o->name; o++)
            if (o->val == ch)
                name = o->name;
        switch (ch) {
        case 'h': opt.host = optarg; break;
        case 'p': parse_num(name, optarg, 1, 65535); opt.port = optarg; break;
        case 't': opt.threads = (unsigned)parse_num(name, optarg, 1, 256); break;
        case 'c': opt.conns = (unsigned)parse_num(name, optarg, 1, 10000); break;
        case 'd': opt.pipeline = (unsigned)parse_num(name, optarg, 1, 4096); break;
        case 'P':
            if (strcmp(optarg, "binary") != 0 && strcmp(optarg, "text") != 0) {
                fprintf(stderr, "mcload: --protocol: binary or text\n");
                exit(2);
            }
            opt.binary = strcmp(optarg, "binary") == 0;
            break;
        case 'k': opt.keys = (uint32_t)parse_num(name, optarg, 1, UINT32_MAX); break;
        case 'v': opt.value_size = (uint32_t)parse_num(name, optarg, 0, MAX_VALUE_SIZE); break;
        case 'g': opt.get_ratio = parse_num(name, optarg, 0, 1); break;
        case 'F': opt.prefill = true; break;
        case 'n': opt.requests = (uint64_t)parse_num(name, optarg, 0, 1e18); break;
        case 'D': opt.duration = parse_num(name, optarg, 0.001, 1e6); break;
        case 'r': opt.rate = parse_num(name, optarg, 1, 1e9); break;
        case 'S': opt.sequential = true; break;
        case 'X': opt.shuffle = true; break;
        case 'Y': opt.retry = true; break;
        case 'K': opt.tick = true; break;
        case 's': opt.seed = (uint64_t)parse_num(name, optarg, 0, 1e18); break;
        case 'T': opt.stall_timeout = (unsigned)parse_num(name, optarg, 1, 3600); break;
        case 'H': usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mcload: unexpected argument '%s'\n", argv[optind]);
        exit(2);
    }
    if (opt.requests == UINT64_MAX && opt.duration == 0)
        opt.duration = 10;
}

int
main(int argc, char **argv)
{
    parse_options(argc, argv);
    signal(SIGPIPE, SIG_IGN);

    value_buf = xrealloc(NULL, opt.value_size + 1);
    for (uint32_t i = 0; i < opt.value_size; i++)
        value_buf[i] = (char)('a' + i % 26);
    text_set_tail_len = (size_t)snprintf(text_set_tail, sizeof(text_set_tail),
                                         " 0 0 %u\r\n", opt.value_size);
    ring_cap = opt.pipeline > PREFILL_MIN_DEPTH ? opt.pipeline
                                                : PREFILL_MIN_DEPTH;

    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *ai;
    int rc = getaddrinfo(opt.host, opt.port, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "mcload: %s:%s: %s\n", opt.host, opt.port,
                gai_strerror(rc));
        return 1;
    }
    struct worker *ws = calloc(opt.threads, sizeof(*ws));
    if (ws == NULL) {
        fprintf(stderr, "mcload: out of memory\n");
        return 1;
    }
    for (unsigned t = 0; t < opt.threads; t++)
        worker_setup(&ws[t], t, ai);
    freeaddrinfo(ai);

    if (opt.prefill) {
        struct phase_result p = run_phase(ws, true, opt.keys);
        printf("PREFILL ops=%" PRIu64 " seconds=%.3f ops_per_sec=%.0f "
               "errors=%" PRIu64 "\n", p.ops, p.seconds,
               p.seconds > 0 ? (double)p.ops / p.seconds : 0.0, p.errors);
        fflush(stdout);
    }
    struct phase_result r = { 0 };
    struct hist *all = calloc(1, sizeof(*all));
    if (all == NULL) {
        fprintf(stderr, "mcload: out of memory\n");
        return 1;
    }
    if (opt.requests > 0) {
        for (unsigned t = 0; t < opt.threads; t++)
            memset(&ws[t].hist, 0, sizeof(ws[t].hist));
        r = run_phase(ws, false, opt.requests);
        for (unsigned t = 0; t < opt.threads; t++)
            hist_merge(all, &ws[t].hist);
    }
    printf("RESULT ops=%" PRIu64 " seconds=%.3f ops_per_sec=%.0f "
           "p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f "
           "errors=%" PRIu64 " misses=%" PRIu64 " retries=%" PRIu64 "\n",
           r.ops, r.seconds, r.seconds > 0 ? (double)r.ops / r.seconds : 0.0,
           (double)hist_quantile(all, 0.50) / 1e3,
           (double)hist_quantile(all, 0.99) / 1e3,
           (double)hist_quantile(all, 0.999) / 1e3,
           (double)all->max / 1e3, r.errors, r.misses, r.retries);
    for (unsigned t = 0; t < opt.threads; t++)
        worker_teardown(&ws[t]);
    free(ws);
    free(all);
    free(value_buf);
    return 0;
}
