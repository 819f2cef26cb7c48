/*
 * worker.h: the front-end worker threads. Each owns one libevent event_base
 * and the connections handed to it by the listener through its ring (one
 * producer: the listener; one consumer: this worker) and notify fd.
 *
 * A worker is the only module that knows both connections and the
 * persistence threads: it is each connection's owner (struct conn_owner:
 * fetches, write admission, commit waits), numbers its connections, and
 * turns the completions persistence posts for a (worker, connection id)
 * token back into calls on that connection, if it is still open.
 */
#ifndef MCKV_SERVER_WORKER_H
#define MCKV_SERVER_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "server/conn.h"
#include "server/stats.h"
#include "util/hist.h"
#include "util/idmap.h"
#include "util/ring.h"

struct config;

struct worker {
    unsigned id;
    pthread_t thread;
    struct event_base *base;
    struct conn_owner owner;      /* what its connections see of it */
    struct ring conn_ring;        /* listener -> worker: accepted fds */
    struct event *notify_ev;
    struct thread_stats stats;    /* written by this worker only */
    struct hist timings[CMD_CLASSES]; /* sampled command times, this worker */
    struct event *stop_timer;

    pthread_mutex_t conns_lock;   /* guards the list for `stats conns` */
    struct conn *conns;
    unsigned nconns;
    uint64_t last_conn_id;        /* ids are never reused */
    struct idmap conn_ids;        /* id -> connection (worker thread) */

    /* persistence: completions (fetches done, commits) and the
     * connections whose sync writes wait for a commit */
    struct event *done_ev;
    struct conn *sync_waiters;

    /* settings copied from the config at start (read-only) */
    uint32_t item_size_max;
    uint32_t reqs_per_event;      /* requests per wake-up before yielding */
    uint32_t idle_timeout;        /* seconds without a request; 0 = never */
    uint8_t protocol;             /* enum conn_proto; UNKNOWN = auto */
    struct event *idle_ev;        /* the idle_timeout sweep, each second */
    struct event *sasl_ev;        /* -S: answers of the auth thread */
};

extern struct worker *workers;
extern unsigned nworkers;

/* Main thread: creates and starts `n` workers. 0 or mckv_status. */
int workers_start(const struct config *cfg, unsigned n);
/* Listener thread: hands an accepted fd to a worker (round robin); `tls`:
 * the worker runs it over TLS (conn_tls.c). False when that worker's ring
 * is full (the caller closes the fd). */
bool workers_dispatch(int fd, bool tls);
/* Main thread: asks every worker to finish replies in flight, close its
 * connections and exit; joins them. */
void workers_stop(void);
/* Main thread, after workers_stop(): frees them. */
void workers_free(void);

#endif
