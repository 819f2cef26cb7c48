/*
 * mcload.c: memcached load generator (binary or text protocol) on libevent,
 * over TCP or TLS.
 *
 * Each client thread owns an event_base and --conns connections (their
 * requests and replies: mcload_io.c). Connections are opened, and with --tls
 * their handshake done, before the first phase starts, so a TLS run
 * measures the cost of encryption, not of handshakes.
 *
 * Closed loop (default): a reply immediately frees a slot for the next
 * request; latency runs from the send. Open loop (--rate): request k of
 * connection g is due at start + g/rate + k*(threads*conns)/rate; a request
 * that could not be sent on time (pipeline full) is sent late but its latency
 * still runs from the due time, so a slow server cannot hide its queueing
 * (coordinated omission).
 *
 * Latencies go to a per-thread histogram (mcload_hist.c), merged at the
 * end. Output: an optional PREFILL line, then one RESULT line. Connection
 * failures and protocol desyncs end the run with exit status 1. Depends on
 * libevent, OpenSSL and libsasl2 (through tools/mcconn) and
 * protocol/proto_bin for SASL.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/mcload.h"

bool phase_prefill;
unsigned phase_depth;
uint64_t phase_limit;
uint64_t phase_start_ns;
double phase_interval_ns;   /* open loop: per-connection spacing */
atomic_uint_fast64_t claim_next;

unsigned ring_cap;
char *value_buf;
char text_set_tail[48];      /* " 0 0 <bytes>\r\n" */
size_t text_set_tail_len;

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

static void
worker_setup(struct worker *w, unsigned idx, const struct mcconn_client *client)
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
        if (mcconn_open(&c->mc, client) != MCCONN_OK ||
            mcconn_set_nonblocking(&c->mc) != MCCONN_OK) {
            fprintf(stderr, "mcload: connection %u: %s\n", c->id,
                    c->mc.error);
            exit(1);
        }
        c->rcap = 64 * 1024;
        c->rbuf = xrealloc(NULL, c->rcap);
        c->wcap = 64 * 1024;
        c->wbuf = xrealloc(NULL, c->wcap);
        c->ring = xrealloc(NULL, ring_cap * sizeof(*c->ring));
        c->rev = event_new(w->base, c->mc.fd, EV_READ | EV_PERSIST, on_read, c);
        c->wev = event_new(w->base, c->mc.fd, EV_WRITE | EV_PERSIST, on_write, c);
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
        mcconn_close(&c->mc);
        free(c->rbuf);
        free(c->wbuf);
        free(c->ring);
    }
    free(w->conns);
    event_free(w->deadline_ev);
    event_free(w->watch_ev);
    event_base_free(w->base);
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

    struct mcconn_client client;
    if (mcconn_client_setup(&client, &(struct mcconn_opts){
            .host = opt.host, .port = opt.port, .tls = opt.tls,
            .cafile = opt.cafile, .cert = opt.cert, .key = opt.key,
            .user = opt.sasl_user, .password = opt.sasl_password,
            .timeout_s = (int)opt.stall_timeout }) != MCCONN_OK) {
        fprintf(stderr, "mcload: %s\n", client.error);
        return 1;
    }
    struct worker *ws = calloc(opt.threads, sizeof(*ws));
    if (ws == NULL) {
        fprintf(stderr, "mcload: out of memory\n");
        return 1;
    }
    for (unsigned t = 0; t < opt.threads; t++)
        worker_setup(&ws[t], t, &client);

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
    mcconn_client_teardown(&client);
    free(ws);
    free(all);
    free(value_buf);
    return 0;
}

