/*
 * worker.c: worker threads. Each runs its own event_base; the listener hands
 * it accepted sockets through an SPSC ring (util/ring.h) whose eventfd is
 * one of the events of that base. A worker never blocks: all its sockets are
 * non-blocking, and the cache's shard locks are held for short sections.
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
#include "server/persist.h"
#include "server/worker.h"
#include "util/log.h"
#include "util/status.h"

#define WORKER_RING_SIZE 4096
#define WORKER_SHUTDOWN_SENTINEL ((void *)(intptr_t)-1)
#define WORKER_DRAIN_TIMEOUT_MS 2000

const char *const cmd_class_names[CMD_CLASSES] = {
    "get", "set", "delete", "incr_decr", "touch", "other",
};

struct worker *workers;
unsigned nworkers;
static unsigned next_worker;   /* listener thread only */

void
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

void
worker_conn_remove(struct worker *w, struct conn *c)
{
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

void
worker_sync_wait(struct worker *w, struct conn *c)
{
    c->sync_waiting = true;
    c->sync_next = w->sync_waiters;
    w->sync_waiters = c;
}

void
worker_sync_forget(struct worker *w, struct conn *c)
{
    for (struct conn **p = &w->sync_waiters; *p != NULL; p = &(*p)->sync_next) {
        if (*p == c) {
            *p = c->sync_next;
            break;
        }
    }
    c->sync_waiting = false;
}

void
worker_sync_committed(struct worker *w)
{
    uint64_t committed = persist_committed_seq(w->id);
    struct conn *ready = NULL;
    for (struct conn **p = &w->sync_waiters; *p != NULL;) {
        struct conn *c = *p;
        if (c->sync_seq <= committed) {
            *p = c->sync_next;
            c->sync_waiting = false;
            c->sync_next = ready;
            ready = c;
        } else {
            p = &c->sync_next;
        }
    }
    while (ready != NULL) {
        struct conn *c = ready;
        ready = c->sync_next;
        conn_resume(c);
    }
}

/* worker thread: fetches finished, commits happened */
static void
worker_done(int fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    persist_completions(arg);
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
            int cfd = (int)(intptr_t)entry;
            if (atomic_load_explicit(&w->stopping, memory_order_relaxed)) {
                close(cfd);
                atomic_fetch_sub(&global_stats.curr_connections, 1);
                continue;
            }
            conn_create(w, cfd);
        }
        if (ring_empty_fenced(&w->conn_ring))
            break;
    }
    if (atomic_load_explicit(&w->stopping, memory_order_relaxed))
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

int
workers_start(const struct config *cfg, unsigned n)
{
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
        w->protocol = strcmp(cfg->protocol, "ascii") == 0 ? CONN_PROTO_TEXT
                      : strcmp(cfg->protocol, "binary") == 0 ? CONN_PROTO_BIN
                      : CONN_PROTO_UNKNOWN;
        w->flush_enabled = cfg->flush_enabled;
        w->shutdown_enabled = cfg->shutdown_enabled;
        pthread_mutex_init(&w->conns_lock, NULL);
        atomic_init(&w->stopping, false);
        struct event_config *ec = event_config_new();
        if (ec == NULL)
            return MCKV_ENOMEM;
        event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
        w->base = event_base_new_with_config(ec);
        event_config_free(ec);
        if (w->base == NULL)
            return MCKV_ENOMEM;
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
workers_dispatch(int fd)
{
    for (unsigned tries = 0; tries < nworkers; tries++) {
        struct worker *w = &workers[next_worker];
        next_worker = (next_worker + 1) % nworkers;
        if (ring_push(&w->conn_ring, (void *)(intptr_t)fd))
            return true;
    }
    return false;
}

void
workers_stop(void)
{
    for (unsigned i = 0; i < nworkers; i++) {
        struct worker *w = &workers[i];
        atomic_store(&w->stopping, true);
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
        if (w->stop_timer != NULL)
            event_free(w->stop_timer);
        if (w->notify_ev != NULL)
            event_free(w->notify_ev);
        if (w->done_ev != NULL)
            event_free(w->done_ev);
        if (w->idle_ev != NULL)
            event_free(w->idle_ev);
        ring_deinit(&w->conn_ring);
        if (w->base != NULL)
            event_base_free(w->base);
        pthread_mutex_destroy(&w->conns_lock);
    }
    free(workers);
    workers = NULL;
    nworkers = 0;
}
