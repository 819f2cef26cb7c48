/*
 * mcload.h: what the pieces of mcload share (private to mcload).
 *
 * mcload.c: threads, phases, connections' setup, the RESULT line;
 * mcload_io.c: requests and replies on one connection (the event
 * callbacks); mcload_hist.c: the latency histogram; mcload_opts.c: the
 * command line.
 */
#ifndef MCKV_TOOLS_MCLOAD_H
#define MCKV_TOOLS_MCLOAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>

#include "tools/mcconn.h"

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
    bool tls;                       /* --tls: handshake at connect */
    const char *cafile, *cert, *key;
    const char *sasl_user, *sasl_password;  /* binary protocol only */
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
    struct event *rev, *wev, *tev;
    char *rbuf;
    size_t rcap, rlen, roff;
    char *wbuf;
    size_t wcap, wlen, woff;
    struct slot *ring;              /* ring_cap slots, head is the oldest */
    unsigned head, count;
    uint64_t next_seq;              /* open loop: next request's number */
    struct mcconn mc;               /* socket, TLS (last: 1.3 KB, cold) */
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

/* The command line (mcload_opts.c); read-only once the threads run. */
extern struct options opt;

/* Phase state (mcload.c): written by main before the threads start,
 * read-only in them (pthread_create orders the writes), except claim_next. */
extern bool phase_prefill;
extern unsigned phase_depth;
extern uint64_t phase_limit;
extern uint64_t phase_start_ns;
extern double phase_interval_ns;   /* open loop: per-connection spacing */
extern atomic_uint_fast64_t claim_next;

/* Fixed at start-up (mcload.c). */
extern unsigned ring_cap;           /* slots per connection */
extern char *value_buf;             /* value_size bytes for sets */
extern char text_set_tail[48];      /* " 0 0 <bytes>\r\n" */
extern size_t text_set_tail_len;

static inline uint64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Exit 1 with "mcload: connection N: what". */
_Noreturn void die_conn(const struct conn *c, const char *what);
/* realloc, or exit 1. */
void *xrealloc(void *p, size_t n);

/* Histogram (any thread, one histogram per thread). */
void hist_record(struct hist *h, uint64_t v);
void hist_merge(struct hist *into, const struct hist *from);
uint64_t hist_quantile(const struct hist *h, double q);

/* Connection I/O (client thread of the connection's worker). */
void worker_stop(struct worker *w);
void pump(struct conn *c);
void flush(struct conn *c);
void on_read(evutil_socket_t fd, short what, void *arg);
void on_write(evutil_socket_t fd, short what, void *arg);
void on_due(evutil_socket_t fd, short what, void *arg);

/* Parses argv into opt; exits 0 (--help) or 2 (bad usage). */
void parse_options(int argc, char **argv);

#endif
