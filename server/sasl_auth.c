/*
 * sasl_auth.c: the auth thread and its cyrus-sasl calls (see sasl_auth.h
 * for the ownership of a session).
 *
 * Queue in: a FIFO of sessions under a mutex, with a condition the thread
 * waits on; a session embeds its link, so a submit (or a dispose) never
 * allocates and never fails for room. FIFO order is what makes a dispose
 * safe: it is queued behind any exchange of the same session.
 *
 * Queue out: one SPSC ring per worker (the auth thread is the only
 * producer, that worker the only consumer) with its eventfd. A worker
 * counts the sessions it has in flight and submits no more than its ring
 * holds, so the auth thread's push cannot fail and it never waits for a
 * worker.
 */
#include <config.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/sasl_auth.h"
#include "util/log.h"
#include "util/ring.h"

#ifdef HAVE_SASL
#include <sasl/sasl.h>
#endif

#define SASL_RING_SIZE 1024
/* At stop, how long the auth thread may take to finish its queue: a call
 * to a saslauthd stuck on its backend may never return. */
#define SASL_STOP_WAIT_S 3
#define SASL_APP_NAME "memcached"   /* memcached.conf, saslpasswd2 -a */

enum sasl_job { SASL_JOB_NONE, SASL_JOB_START, SASL_JOB_STEP, SASL_JOB_DISPOSE };

struct sasl_session {
    struct sasl_session *next;   /* the auth queue */
    unsigned worker;
    uint64_t conn_id;
    uint8_t job;                 /* enum sasl_job: what the thread is to do */
    bool started;                /* a START succeeded or continues: STEP ok */
    bool replied;                /* an answer waits for the worker */
    enum sasl_outcome outcome;
    char mech[SASL_MECH_MAX + 1];
    char *in;                    /* the client's data (a copy) */
    size_t nin;
    char *out;                   /* the server's data (a copy) */
    size_t nout;
#ifdef HAVE_SASL
    sasl_conn_t *sc;             /* auth thread only; created lazily */
#endif
};

struct sasl_worker_ring {
    struct ring ring;
    unsigned inflight;           /* that worker's thread only */
};

static struct {
    bool enabled;
    char mechs[512];
    pthread_t thread;
    pthread_mutex_t lock;        /* guards head, tail, stop */
    pthread_cond_t wake;
    struct sasl_session *head, *tail;
    bool stop;
    struct sasl_worker_ring *rings;
    unsigned nrings;
} sa = { .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER };

bool
sasl_auth_enabled(void)
{
    return sa.enabled;
}

const char *
sasl_auth_mechs(void)
{
    return sa.mechs;
}

int
sasl_auth_completion_fd(unsigned worker)
{
    return sa.rings[worker].ring.notify_fd;
}

/* worker thread */
void
sasl_auth_completions(unsigned worker,
                      void (*done)(void *ctx, uint64_t conn_id,
                                   struct sasl_session *s),
                      void *ctx)
{
    struct sasl_worker_ring *wr = &sa.rings[worker];
    void *entry;
    ring_consume_notify(&wr->ring);
    for (;;) {
        while (ring_pop(&wr->ring, &entry)) {
            struct sasl_session *s = entry;
            wr->inflight--;
            done(ctx, s->conn_id, s);
        }
        if (ring_empty_fenced(&wr->ring))
            break;
    }
}

struct sasl_session *
sasl_session_create(unsigned worker, uint64_t conn_id)
{
    struct sasl_session *s = calloc(1, sizeof(*s));
    if (s != NULL) {
        s->worker = worker;
        s->conn_id = conn_id;
    }
    return s;
}

/* any thread: hands s to the auth thread */
static void
sasl_queue(struct sasl_session *s)
{
    pthread_mutex_lock(&sa.lock);
    s->next = NULL;
    if (sa.tail != NULL)
        sa.tail->next = s;
    else
        sa.head = s;
    sa.tail = s;
    pthread_cond_signal(&sa.wake);
    pthread_mutex_unlock(&sa.lock);
}

static void
sasl_session_free(struct sasl_session *s)
{
    free(s->in);
    free(s->out);
    free(s);
}

void
sasl_session_destroy(struct sasl_session **sp)
{
    struct sasl_session *s = *sp;
    *sp = NULL;
    if (s == NULL)
        return;
    if (!sa.enabled) {
        sasl_session_free(s);
        return;
    }
    s->job = SASL_JOB_DISPOSE;
    sasl_queue(s);
}

bool
sasl_session_submit(struct sasl_session *s, bool step, const char *mech,
                    size_t nmech, const char *data, size_t ndata)
{
    struct sasl_worker_ring *wr = &sa.rings[s->worker];
    if (!sa.enabled || nmech > SASL_MECH_MAX ||
        wr->inflight + 1 >= wr->ring.capacity)
        return false;
    char *in = malloc(ndata > 0 ? ndata : 1);
    if (in == NULL)
        return false;
    memcpy(in, data, ndata);
    free(s->in);
    free(s->out);
    s->out = NULL;
    s->nout = 0;
    s->in = in;
    s->nin = ndata;
    memcpy(s->mech, mech, nmech);
    s->mech[nmech] = '\0';
    s->job = step ? SASL_JOB_STEP : SASL_JOB_START;
    s->replied = false;
    wr->inflight++;
    sasl_queue(s);
    return true;
}

bool
sasl_session_reply(struct sasl_session *s, enum sasl_outcome *outcome,
                   const char **out, size_t *nout)
{
    if (!s->replied)
        return false;
    s->replied = false;
    *outcome = s->outcome;
    *out = s->out;
    *nout = s->nout;
    return true;
}

#ifdef HAVE_SASL

/* SASL_CB_GETCONFPATH: where memcached.conf is, as memcached looks. */
static int
sasl_getconfpath(void *context, const char **path)
{
    static const char *const dirs[] = { "/etc/sasl", "/etc/sasl2" };
    static const char *const files[] = { "/etc/sasl/memcached.conf",
                                         "/etc/sasl2/memcached.conf" };
    (void)context;
    *path = getenv("SASL_CONF_PATH");
    for (unsigned i = 0; *path == NULL && i < 2; i++)
        if (access(files[i], F_OK) == 0)
            *path = dirs[i];
    return *path != NULL ? SASL_OK : SASL_FAIL;
}

/* SASL_CB_LOG: cyrus's messages at mckv's verbosity; auth thread or main. */
static int
sasl_log_cb(void *context, int level, const char *message)
{
    (void)context;
    if (level == SASL_LOG_ERR)
        log_error_limited("SASL: %s", message);
    else if (level == SASL_LOG_WARN || level == SASL_LOG_FAIL)
        log_verbose("SASL: %s", message);
    else if (level != SASL_LOG_NONE)
        log_debug("SASL: %s", message);
    return SASL_OK;
}

typedef int (*sasl_cb_fn)(void);
static sasl_callback_t sasl_callbacks[] = {
    { SASL_CB_LOG, (sasl_cb_fn)(void (*)(void))sasl_log_cb, NULL },
    { SASL_CB_GETCONFPATH, (sasl_cb_fn)(void (*)(void))sasl_getconfpath, NULL },
    { SASL_CB_LIST_END, NULL, NULL },
};

/* A server connection that offers no anonymous mechanism: cyrus's
 * defaults (no memcached.conf found) include ANONYMOUS, which would let
 * anyone in. Main or auth thread. */
static int
sasl_conn_new(sasl_conn_t **sc)
{
    int rc = sasl_server_new(SASL_APP_NAME, NULL, NULL, NULL, NULL, NULL, 0, sc);
    if (rc != SASL_OK)
        return rc;
    sasl_security_properties_t props = {
        .max_ssf = 0, .maxbufsize = 0,
        .security_flags = SASL_SEC_NOANONYMOUS,
    };
    rc = sasl_setprop(*sc, SASL_SEC_PROPS, &props);
    if (rc != SASL_OK)
        sasl_dispose(sc);
    return rc;
}

/* auth thread: one START or STEP; fills the session's answer */
static void
sasl_run(struct sasl_session *s)
{
    const char *out = NULL;
    unsigned nout = 0;
    int rc = SASL_FAIL;

    if (s->sc == NULL && sasl_conn_new(&s->sc) != SASL_OK) {
        log_error_limited("SASL: cannot create a server connection");
        s->sc = NULL;
    }
    if (s->sc != NULL && s->job == SASL_JOB_START) {
        rc = sasl_server_start(s->sc, s->mech, s->nin > 0 ? s->in : NULL,
                               (unsigned)s->nin, &out, &nout);
        s->started = rc == SASL_OK || rc == SASL_CONTINUE;
    } else if (s->sc != NULL && s->started) {
        rc = sasl_server_step(s->sc, s->nin > 0 ? s->in : NULL,
                              (unsigned)s->nin, &out, &nout);
    }
    s->outcome = rc == SASL_OK ? SASL_OUTCOME_OK
                 : rc == SASL_CONTINUE ? SASL_OUTCOME_CONTINUE
                 : SASL_OUTCOME_FAIL;
    /* the name is the client's: only printable bytes reach the log */
    char mech[SASL_MECH_MAX + 1];
    size_t n = 0;
    for (; s->mech[n] != '\0'; n++)
        mech[n] = s->mech[n] > ' ' && s->mech[n] < 0x7f ? s->mech[n] : '?';
    mech[n] = '\0';
    log_verbose("SASL: connection %llu, mechanism %s: %s",
                (unsigned long long)s->conn_id, mech,
                rc == SASL_OK ? "authenticated" : sasl_errstring(rc, NULL, NULL));
    /* the copy: out belongs to s->sc, and only this thread may use it */
    if (s->outcome == SASL_OUTCOME_CONTINUE && nout > 0) {
        s->out = malloc(nout);
        if (s->out != NULL) {
            memcpy(s->out, out, nout);
            s->nout = nout;
        } else {
            s->outcome = SASL_OUTCOME_FAIL;
        }
    }
    free(s->in);
    s->in = NULL;
    s->nin = 0;
    s->replied = true;
}

static void *
sasl_thread_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&sa.lock);
    for (;;) {
        while (sa.head == NULL && !sa.stop)
            pthread_cond_wait(&sa.wake, &sa.lock);
        if (sa.head == NULL)
            break;   /* stop, and every queued job done */
        struct sasl_session *s = sa.head;
        sa.head = s->next;
        if (sa.head == NULL)
            sa.tail = NULL;
        pthread_mutex_unlock(&sa.lock);
        if (s->job == SASL_JOB_DISPOSE) {
            if (s->sc != NULL)
                sasl_dispose(&s->sc);
            sasl_session_free(s);
        } else {
            sasl_run(s);
            /* the ring has room: the worker submits no more than it holds
             * (its release orders the answer before the worker's pop) */
            if (!ring_push(&sa.rings[s->worker].ring, s))
                log_error("SASL: completion ring of worker %u full", s->worker);
        }
        pthread_mutex_lock(&sa.lock);
    }
    pthread_mutex_unlock(&sa.lock);
    return NULL;
}

/* main thread: the mechanism list, once (it does not change while running) */
static int
sasl_list_mechs(char *err, size_t errlen)
{
    sasl_conn_t *sc = NULL;
    const char *list = NULL;
    unsigned n = 0;
    int rc = sasl_conn_new(&sc);
    if (rc == SASL_OK)
        rc = sasl_listmech(sc, NULL, "", " ", "", &list, &n, NULL);
    if (rc != SASL_OK || n == 0) {
        snprintf(err, errlen, "sasl: no SASL mechanism available (%s); "
                 "check SASL_CONF_PATH and its memcached.conf (mech_list)",
                 sasl_errstring(rc, NULL, NULL));
        if (sc != NULL)
            sasl_dispose(&sc);
        return -1;
    }
    snprintf(sa.mechs, sizeof(sa.mechs), "%.*s", (int)n, list);
    sasl_dispose(&sc);
    return 0;
}

int
sasl_auth_setup(unsigned nworkers, char *err, size_t errlen)
{
    const char *conf;
    if (sasl_getconfpath(NULL, &conf) != SASL_OK) {
        snprintf(err, errlen, "sasl: no SASL configuration: set SASL_CONF_PATH "
                 "to the directory of memcached.conf (or create "
                 "/etc/sasl2/memcached.conf)");
        return -1;
    }
    int rc = sasl_server_init(sasl_callbacks, SASL_APP_NAME);
    if (rc != SASL_OK) {
        snprintf(err, errlen, "sasl: sasl_server_init failed: %s",
                 sasl_errstring(rc, NULL, NULL));
        return -1;
    }
    if (sasl_list_mechs(err, errlen) != 0)
        goto fail;
    sa.rings = calloc(nworkers, sizeof(*sa.rings));
    if (sa.rings == NULL)
        goto oom;
    sa.nrings = nworkers;
    for (unsigned i = 0; i < nworkers; i++)
        if (ring_init(&sa.rings[i].ring, SASL_RING_SIZE) != 0)
            goto oom;
    sa.stop = false;
    if (pthread_create(&sa.thread, NULL, sasl_thread_main, NULL) != 0)
        goto oom;
    pthread_setname_np(sa.thread, "mckv-sasl");
    sa.enabled = true;
    log_info("SASL enabled, mechanisms: %s", sa.mechs);
    return 0;
oom:
    snprintf(err, errlen, "sasl: cannot start the auth thread");
fail:
    for (unsigned i = 0; sa.rings != NULL && i < sa.nrings; i++)
        if (sa.rings[i].ring.slots != NULL)
            ring_deinit(&sa.rings[i].ring);
    free(sa.rings);
    sa.rings = NULL;
    sa.nrings = 0;
    sasl_done();
    return -1;
}

void
sasl_auth_teardown(void)
{
    if (!sa.enabled)
        return;
    pthread_mutex_lock(&sa.lock);
    sa.stop = true;
    pthread_cond_signal(&sa.wake);
    pthread_mutex_unlock(&sa.lock);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += SASL_STOP_WAIT_S;
    if (pthread_timedjoin_np(sa.thread, NULL, &deadline) != 0) {
        /* It still uses cyrus, its queue and the rings: leave them all to
         * the process's exit rather than wait for ever. */
        log_error("SASL: the auth thread is stuck in a SASL call (saslauthd "
                  "not answering?); stopping without it");
        pthread_detach(sa.thread);
        return;
    }
    /* Answers nobody drained (the workers are gone): their sessions. */
    for (unsigned i = 0; i < sa.nrings; i++) {
        void *entry;
        while (ring_pop(&sa.rings[i].ring, &entry)) {
            struct sasl_session *s = entry;
            if (s->sc != NULL)
                sasl_dispose(&s->sc);
            sasl_session_free(s);
        }
        ring_deinit(&sa.rings[i].ring);
    }
    free(sa.rings);
    sa.rings = NULL;
    sa.nrings = 0;
    sa.enabled = false;
    sasl_done();
}

#else /* !HAVE_SASL */

int
sasl_auth_setup(unsigned nworkers, char *err, size_t errlen)
{
    (void)nworkers;
    snprintf(err, errlen, "sasl: this mckvd was built without SASL "
             "(configure found no libsasl2-dev)");
    return -1;
}

void
sasl_auth_teardown(void)
{
}

#endif
