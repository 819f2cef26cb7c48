/*
 * worker.c: worker threads. Each runs its own event_base; the listener hands
 * it accepted sockets through an SPSC ring (util/ring.h) whose eventfd is
 * one of the events of that base. A worker never blocks: all its sockets are
 * non-blocking, and the cache's shard locks are held for short sections.
 *
 * Owner of its connections (struct conn_owner, conn.h): it numbers them
 * (an id in an idmap), starts their background fetches with the token
 * (worker id, connection id), and when a fetch result comes back on its
 * completion ring it looks the id up: a connection closed meanwhile is not
 * found and the value's reference is dropped. Sync writes: a connection
 * that waits for the commit of write S is put on the worker's wait list;
 * each commit the flusher reports resumes those it covers.
 *
 * Shutdown: the main thread sets `stopping` and pushes a sentinel through the
 * ring; the worker then runs what each connection has buffered, lets pending
 * replies drain (bounded by a timer) and closes everything.
 *
 * idle_timeout (memcached -o idle_timeout): a timer sweeps the worker's
 * connections once a second and closes those idle longer (conn.c decides
 * which are idle); memcached's dedicated thread does the same pass.
 */
#include <config.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <unistd.h>

#include <event2/event.h>

#include "server/cache.h"
#include "server/config.h"
#include "server/conn.h"
#include "server/conn_tls.h"
#include "server/fetcher.h"
#include "server/front.h"
#include "server/persist.h"
#include "server/sasl_auth.h"
#include "server/worker.h"
#include "util/idmap.h"
#include "util/log.h"
#include "util/status.h"

#define WORKER_RING_SIZE 4096
#define WORKER_SHUTDOWN_SENTINEL ((void *)(intptr_t)-1)
#define WORKER_DRAIN_TIMEOUT_MS 2000

struct worker *workers;
unsigned nworkers;
static unsigned next_worker;   /* listener thread only */

static struct worker *
owner_worker(struct conn_owner *o)
{
    return (struct worker *)((char *)o - offsetof(struct worker, owner));
}

/* ---- the books: every connection by list (stats) and by id (tokens) ---- */

static void
worker_conn_add(struct worker *w, struct conn *c)
{
    pthread_mutex_lock(&w->conns_lock);
    c->prev = NULL;
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    pthread_mutex_unlock(&w->conns_lock);
}

static void
worker_sync_forget(struct worker *w, struct conn *c)
{
    for (struct conn **p = &w->sync_waiters; *p != NULL; p = &(*p)->wait_next) {
        if (*p == c) {
            *p = c->wait_next;
            break;
        }
    }
    c->wait_seq = 0;
}

/* owner op, worker thread: the connection is being destroyed */
static void
worker_conn_closed(struct conn_owner *o, struct conn *c)
{
    struct worker *w = owner_worker(o);
    if (c->wait_seq != 0)
        worker_sync_forget(w, c);
    /* a session in flight comes back to worker_sasl_done, which finds no
     * connection of this id and disposes of it */
    if (c->sasl != NULL && !c->auth_pending)
        sasl_session_destroy(&c->sasl);
    idmap_remove(&w->conn_ids, c->id);
    pthread_mutex_lock(&w->conns_lock);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    w->nconns--;
    pthread_mutex_unlock(&w->conns_lock);
}

/* worker thread: a connection for an accepted fd */
static void
worker_accept(struct worker *w, int fd, bool tls)
{
    uint64_t id = ++w->last_conn_id;
    struct conn *c = conn_create(&w->owner, fd, id);
    if (c == NULL)
        return;
    worker_conn_add(w, c);
    if (idmap_put(&w->conn_ids, id, c) != MCKV_OK) {
        log_error_limited("worker %u: cannot set up a connection: out of memory", w->id);
        conn_destroy(&c);
        return;
    }
    if (tls && conn_tls_start(c) != 0) {
        log_error_limited("worker %u: cannot set up a TLS connection", w->id);
        conn_destroy(&c);
    }
}

/* ---- persistence, for the connections ---- */

/* owner op: a background fetch, with the token (worker, connection id) */
static bool
worker_need_fetch(struct conn_owner *o, struct conn *c, const char *key,
                  uint8_t nkey, unsigned how)
{
    return persist_fetch(owner_worker(o)->id, c->id, key, nkey,
                         (how & CONN_FETCH_STREAM) != 0,
                         (how & CONN_FETCH_OPTIONAL) != 0);
}

/* owner op: write admission */
static bool
worker_admit_write(struct conn_owner *o, uint32_t *delay_ms)
{
    (void)o;
    return persist_admit_write(delay_ms) != PERSIST_ADMIT_REFUSE;
}

/* owner op (sync durability): the write seq of the request just run */
static uint64_t
worker_write_seq(struct conn_owner *o)
{
    (void)o;
    return persist_take_write_seq();
}

/* owner op (sync durability): c waits for the commit of write `seq` */
static bool
worker_wait_commit(struct conn_owner *o, struct conn *c, uint64_t seq)
{
    struct worker *w = owner_worker(o);
    if (seq <= persist_committed_seq(w->id))
        return false;
    if (c->wait_seq == 0) {
        c->wait_next = w->sync_waiters;
        w->sync_waiters = c;
    }
    c->wait_seq = seq;
    return true;
}

/* The protocol front ends the worker's connections run. */
static const struct conn_front fronts = { front_bin, front_text };

static const struct conn_owner_ops worker_ops_async = {
    .closed = worker_conn_closed,
    .need_fetch = worker_need_fetch,
    .admit_write = worker_admit_write,
    .write_seq = NULL,
    .wait_commit = worker_wait_commit,
};

static const struct conn_owner_ops worker_ops_sync = {
    .closed = worker_conn_closed,
    .need_fetch = worker_need_fetch,
    .admit_write = worker_admit_write,
    .write_seq = worker_write_seq,
    .wait_commit = worker_wait_commit,
};

/* worker thread: a commit advanced: resumes the connections it covers */
static void
worker_sync_committed(struct worker *w)
{
    uint64_t committed = persist_committed_seq(w->id);
    struct conn *ready = NULL;
    for (struct conn **p = &w->sync_waiters; *p != NULL;) {
        struct conn *c = *p;
        if (c->wait_seq <= committed) {
            *p = c->wait_next;
            c->wait_seq = 0;
            c->wait_next = ready;
            ready = c;
        } else {
            p = &c->wait_next;
        }
    }
    while (ready != NULL) {
        struct conn *c = ready;
        ready = c->wait_next;
        conn_committed(c);
    }
}

/* worker thread: a fetch finished for connection r->conn_id */
static void
worker_fetched(void *ctx, const struct fetch_result *r)
{
    struct worker *w = ctx;
    struct conn *c = idmap_get(&w->conn_ids, r->conn_id);
    if (c == NULL) {   /* closed meanwhile */
        if (r->item != NULL)
            cache_item_release(r->item);
        return;
    }
    conn_fetch_done(c, r->item, r->failed);
}

/* worker thread: the auth thread answered connection conn_id's SASL step */
static void
worker_sasl_done(void *ctx, uint64_t conn_id, struct sasl_session *s)
{
    struct worker *w = ctx;
    struct conn *c = idmap_get(&w->conn_ids, conn_id);
    if (c == NULL || c->sasl != s) {   /* closed meanwhile */
        sasl_session_destroy(&s);
        return;
    }
    conn_auth_done(c);
}

/* worker thread: SASL answers on its ring */
static void
worker_sasl(int fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
    sasl_auth_completions(w->id, worker_sasl_done, w);
}

/* worker thread: fetches finished, commits happened */
static void
worker_done(int fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
    if (persist_completions(w->id, worker_fetched, w))
        worker_sync_committed(w);
}

static void
worker_check_drained(struct worker *w)
{
    if (w->nconns == 0)
        event_base_loopexit(w->base, NULL);
}

/* worker thread: the drain deadline passed; close whatever is left. */
static void
worker_stop_timeout(int fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
    while (w->conns != NULL) {
        struct conn *c = w->conns;
        conn_destroy(&c);
    }
    event_base_loopexit(w->base, NULL);
}

/* worker thread: begin a graceful stop. */
static void
worker_begin_stop(struct worker *w)
{
    struct conn *c = w->conns;
    while (c != NULL) {
        struct conn *next = c->next;
        /* Runs buffered requests, flushes, and closes the connection now
         * when nothing is left to write (stopping is set). */
        conn_event(c->fd, 0, c);
        c = next;
    }
    struct timeval tv = { WORKER_DRAIN_TIMEOUT_MS / 1000,
                          (WORKER_DRAIN_TIMEOUT_MS % 1000) * 1000 };
    w->stop_timer = evtimer_new(w->base, worker_stop_timeout, w);
    if (w->stop_timer != NULL)
        evtimer_add(w->stop_timer, &tv);
    worker_check_drained(w);
}

/* worker thread, each second while idle_timeout is set */
static void
worker_idle_sweep(int fd, short what, void *arg)
{
    struct worker *w = arg;
    uint32_t now = cache_now();
    (void)fd;
    (void)what;
    /* only this thread changes the list: no lock to walk it */
    for (struct conn *c = w->conns, *next; c != NULL; c = next) {
        next = c->next;
        (void)conn_idle_kick(c, now, w->idle_timeout);
    }
}

/* worker thread: new connections (or the stop sentinel) in the ring. */
static void
worker_notify(int fd, short what, void *arg)
{
    struct worker *w = arg;
    void *entry;
    (void)fd;
    (void)what;
    ring_consume_notify(&w->conn_ring);
    for (;;) {
        while (ring_pop(&w->conn_ring, &entry)) {
            if (entry == WORKER_SHUTDOWN_SENTINEL) {
                worker_begin_stop(w);
                continue;
            }
            /* the listener's (fd << 1 | tls) */
            int cfd = (int)((intptr_t)entry >> 1);
            bool tls = ((intptr_t)entry & 1) != 0;
            if (atomic_load_explicit(&w->owner.stopping, memory_order_relaxed)) {
                close(cfd);
                atomic_fetch_sub(&global_stats.curr_connections, 1);
                continue;
            }
            worker_accept(w, cfd, tls);
        }
        if (ring_empty_fenced(&w->conn_ring))
            break;
    }
    if (atomic_load_explicit(&w->owner.stopping, memory_order_relaxed))
        worker_check_drained(w);
}

static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    persist_worker_bind(w->id);
    event_base_dispatch(w->base);
    return NULL;
}

/* ---- statistics ---- */

/* any thread: the workers' counters, for stats */
static void
workers_sum_stats(struct thread_stats *out)
{
    for (unsigned i = 0; i < nworkers; i++) {
        const struct thread_stats *ts = &workers[i].stats;
#define X(name) out->name += __atomic_load_n(&ts->name, __ATOMIC_RELAXED);
        THREAD_STATS(X)
#undef X
    }
}

/* any thread: the workers' command timings of class k, for stats */
static void
workers_timings(enum cmd_class k, struct hist *out)
{
    for (unsigned i = 0; i < nworkers; i++)
        hist_merge(out, &workers[i].timings[k]);
}

/* any thread: `stats conns` */
static void
workers_stats_conns(stats_emit_fn emit, void *ctx)
{
    rel_time_t now = cache_now();
    for (unsigned i = 0; i < nworkers; i++) {
        struct worker *w = &workers[i];
        pthread_mutex_lock(&w->conns_lock);
        for (struct conn *c = w->conns; c != NULL; c = c->next)
            conn_stats(c, now, emit, ctx);
        pthread_mutex_unlock(&w->conns_lock);
    }
}

int
workers_start(const struct config *cfg, unsigned n)
{
    stats_register_threads(&(struct stats_threads){
        .nthreads = n, .sum = workers_sum_stats, .timings = workers_timings,
    });
    stats_register_group("conns", workers_stats_conns);

    workers = calloc(n, sizeof(*workers));
    if (workers == NULL)
        return MCKV_ENOMEM;
    nworkers = n;
    for (unsigned i = 0; i < n; i++) {
        struct worker *w = &workers[i];
        w->id = i;
        w->item_size_max = (uint32_t)cfg->item_size_max;
        w->reqs_per_event = (uint32_t)cfg->reqs_per_event;
        w->idle_timeout = (uint32_t)cfg->idle_timeout;
        const char *proto = config_protocol(cfg);
        w->protocol = strcmp(proto, "ascii") == 0 ? CONN_PROTO_TEXT
                      : strcmp(proto, "binary") == 0 ? CONN_PROTO_BIN
                      : CONN_PROTO_UNKNOWN;
        pthread_mutex_init(&w->conns_lock, NULL);
        idmap_init(&w->conn_ids);
        struct event_config *ec = event_config_new();
        if (ec == NULL)
            return MCKV_ENOMEM;
        event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
        w->base = event_base_new_with_config(ec);
        event_config_free(ec);
        if (w->base == NULL)
            return MCKV_ENOMEM;
        w->owner = (struct conn_owner){
            .ops = persist_durability_sync() ? &worker_ops_sync : &worker_ops_async,
            .base = w->base, .stats = &w->stats, .timings = w->timings,
            .item_size_max = w->item_size_max, .id = i, .front = &fronts,
            .reqs_per_event = w->reqs_per_event, .protocol = w->protocol,
            .auth_sasl = cfg->sasl, .auth_ascii = cfg->auth_file[0] != '\0',
        };
        atomic_init(&w->owner.stopping, false);
        int rc = ring_init(&w->conn_ring, WORKER_RING_SIZE);
        if (rc < 0)
            return rc;
        w->notify_ev = event_new(w->base, w->conn_ring.notify_fd,
                                 EV_READ | EV_PERSIST, worker_notify, w);
        if (w->notify_ev == NULL || event_add(w->notify_ev, NULL) != 0)
            return MCKV_ENOMEM;
        if (w->idle_timeout > 0) {
            struct timeval second = { 1, 0 };
            w->idle_ev = event_new(w->base, -1, EV_PERSIST, worker_idle_sweep,
                                   w);
            if (w->idle_ev == NULL || event_add(w->idle_ev, &second) != 0)
                return MCKV_ENOMEM;
        }
        if (cfg->sasl) {
            w->sasl_ev = event_new(w->base, sasl_auth_completion_fd(i),
                                   EV_READ | EV_PERSIST, worker_sasl, w);
            if (w->sasl_ev == NULL || event_add(w->sasl_ev, NULL) != 0)
                return MCKV_ENOMEM;
        }
        if (persist_enabled()) {
            w->done_ev = event_new(w->base, persist_completion_fd(i),
                                   EV_READ | EV_PERSIST, worker_done, w);
            if (w->done_ev == NULL || event_add(w->done_ev, NULL) != 0)
                return MCKV_ENOMEM;
        }
    }
    for (unsigned i = 0; i < n; i++) {
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0)
            return MCKV_EIO;
        char name[16];
        snprintf(name, sizeof(name), "mckv-worker%u", i % 1000u);
        pthread_setname_np(workers[i].thread, name);   /* for top -H, perf */
    }
    return MCKV_OK;
}

bool
workers_dispatch(int fd, bool tls)
{
    void *entry = (void *)(((intptr_t)fd << 1) | (tls ? 1 : 0));
    for (unsigned tries = 0; tries < nworkers; tries++) {
        struct worker *w = &workers[next_worker];
        next_worker = (next_worker + 1) % nworkers;
        if (ring_push(&w->conn_ring, entry))
            return true;
    }
    return false;
}

void
workers_stop(void)
{
    for (unsigned i = 0; i < nworkers; i++) {
        struct worker *w = &workers[i];
        atomic_store(&w->owner.stopping, true);
        /* The ring may be full in theory; the stop flag alone still ends
         * the loop after the timer, so keep pushing until it fits. */
        while (!ring_push(&w->conn_ring, WORKER_SHUTDOWN_SENTINEL))
            sched_yield();
    }
    for (unsigned i = 0; i < nworkers; i++)
        pthread_join(workers[i].thread, NULL);
}

void
workers_free(void)
{
    for (unsigned i = 0; i < nworkers; i++) {
        struct worker *w = &workers[i];
        while (w->conns != NULL) {
            struct conn *c = w->conns;
            conn_destroy(&c);
        }
        conn_owner_free_spares(&w->owner);
        if (w->stop_timer != NULL)
            event_free(w->stop_timer);
        if (w->notify_ev != NULL)
            event_free(w->notify_ev);
        if (w->done_ev != NULL)
            event_free(w->done_ev);
        if (w->idle_ev != NULL)
            event_free(w->idle_ev);
        if (w->sasl_ev != NULL)
            event_free(w->sasl_ev);
        ring_deinit(&w->conn_ring);
        idmap_deinit(&w->conn_ids);
        if (w->base != NULL)
            event_base_free(w->base);
        pthread_mutex_destroy(&w->conns_lock);
    }
    free(workers);
    workers = NULL;
    nworkers = 0;
}
