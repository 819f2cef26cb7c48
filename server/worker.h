/*
 * worker.h: the front-end worker threads. Each owns one libevent event_base
 * and the connections handed to it by the listener through its ring (one
 * producer: the listener; one consumer: this worker) and notify fd.
 */
#ifndef MCKV_SERVER_WORKER_H
#define MCKV_SERVER_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "server/stats.h"
#include "util/hist.h"
#include "util/ring.h"

struct event_base;
struct event;
struct conn;
struct config;

/* What `stats timings` groups commands by. */
enum cmd_class {
    CMD_CLASS_GET, CMD_CLASS_SET, CMD_CLASS_DELETE, CMD_CLASS_DELTA,
    CMD_CLASS_TOUCH, CMD_CLASS_OTHER, CMD_CLASSES
};
extern const char *const cmd_class_names[CMD_CLASSES];

struct worker {
    unsigned id;
    pthread_t thread;
    struct event_base *base;
    struct ring conn_ring;        /* listener -> worker: accepted fds */
    struct event *notify_ev;
    struct thread_stats stats;    /* written by this worker only */
    struct hist timings[CMD_CLASSES]; /* sampled command times, this worker */
    uint32_t timing_tick;
    atomic_bool stopping;
    struct event *stop_timer;

    pthread_mutex_t conns_lock;   /* guards the list for `stats conns` */
    struct conn *conns;
    unsigned nconns;

    /* persistence: completions (fetches done, commits) and the
     * connections whose sync writes wait for a commit */
    struct event *done_ev;
    struct conn *sync_waiters;

    /* settings copied from the config at start (read-only) */
    uint32_t item_size_max;
    uint32_t reqs_per_event;      /* requests per wake-up before yielding */
    uint32_t idle_timeout;        /* seconds without a request; 0 = never */
    uint8_t protocol;             /* enum conn_proto; UNKNOWN = auto */
    bool flush_enabled;           /* flush_all allowed (memcached -F: no) */
    bool shutdown_enabled;        /* shutdown command allowed (-A) */
    struct event *idle_ev;        /* the idle_timeout sweep, each second */
};

extern struct worker *workers;
extern unsigned nworkers;

/* Main thread: creates and starts `n` workers. 0 or mckv_status. */
int workers_start(const struct config *cfg, unsigned n);
/* Listener thread: hands an accepted fd to a worker (round robin). False
 * when that worker's ring is full (the caller closes the fd). */
bool workers_dispatch(int fd);
/* Main thread: asks every worker to finish replies in flight, close its
 * connections and exit; joins them. */
void workers_stop(void);
/* Main thread, after workers_stop(): frees them. */
void workers_free(void);

/* Worker thread: the sync wait list (durability = sync). */
void worker_sync_wait(struct worker *w, struct conn *c);
void worker_sync_forget(struct worker *w, struct conn *c);
/* Worker thread: a commit advanced: resumes the connections it covers. */
void worker_sync_committed(struct worker *w);

/* Worker thread: unlinks a closed connection from its worker's list. */
void worker_conn_add(struct worker *w, struct conn *c);
void worker_conn_remove(struct worker *w, struct conn *c);

#endif
