/*
 * test_hotpool.c: unit tests of util/hotpool.c, the fetchers' "hot threads"
 * task pool.
 *
 * Deterministic cases use "gate" tasks that hold a fetcher inside run() until
 * the test releases it, so the pool's state is known: with every fetcher held,
 * submits must go to the backlog, the (capacity + 1)-th must be refused with
 * MCKV_EAGAIN and must never run, and hotpool_destroy() must still run
 * everything queued. A zero-capacity backlog forces the direct hand-off path.
 * thread_init/thread_fini are checked to run once per fetcher, on that
 * fetcher, with the context every task on it receives; a failing thread_init
 * fails hotpool_create() cleanly.
 *
 * Stress: 4 submitter threads push 200k tasks of mixed duration (most empty,
 * some spinning, a few yielding the CPU) at a pool with a small backlog,
 * retrying on MCKV_EAGAIN; every task must run exactly once and the stats must
 * add up. A lost wake-up strands a task and hangs the test, so a watchdog
 * thread turns any test that outlives its wall-clock guard into a failure
 * (exit status 1) instead of a hang. Not a timing assertion: the guard is far
 * beyond any sane run, even under TSan on a loaded machine.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/hotpool.h"
#include "util/status.h"

#ifndef GUARD_S
#define GUARD_S 300 /* seconds; -DGUARD_S=n to shorten */
#endif
#define CTX_MAGIC 0x686f7470u
#define MAX_FETCHERS 8

/* ---- watchdog: a hang fails the binary instead of blocking forever ---- */

static pthread_mutex_t guard_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t guard_cond;
static bool guard_armed;
static struct timespec guard_deadline;
static const char *guard_what;

static void *
guard_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&guard_lock);
    for (;;) {
        if (!guard_armed) {
            pthread_cond_wait(&guard_cond, &guard_lock);
            continue;
        }
        int rc = pthread_cond_timedwait(&guard_cond, &guard_lock, &guard_deadline);
        if (rc == ETIMEDOUT && guard_armed) {
            fflush(stdout);     /* keep cmocka's "[ RUN ]" line */
            fprintf(stderr, "test_hotpool: %s still running after %d s "
                    "(lost wake-up or hang); failing\n", guard_what, GUARD_S);
            _exit(1);
        }
    }
    return NULL;
}

static void
guard_start(void)
{
    pthread_condattr_t attr;
    pthread_t thread;

    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&guard_cond, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&thread, NULL, guard_main, NULL) != 0) {
        fprintf(stderr, "test_hotpool: cannot start the watchdog\n");
        exit(1);
    }
    pthread_detach(thread);
}

static void
guard_arm(const char *what)
{
    pthread_mutex_lock(&guard_lock);
    clock_gettime(CLOCK_MONOTONIC, &guard_deadline);
    guard_deadline.tv_sec += GUARD_S;
    guard_what = what;
    guard_armed = true;
    pthread_cond_signal(&guard_cond);
    pthread_mutex_unlock(&guard_lock);
}

static void
guard_disarm(void)
{
    pthread_mutex_lock(&guard_lock);
    guard_armed = false;
    pthread_cond_signal(&guard_cond);
    pthread_mutex_unlock(&guard_lock);
}

static int
setup_guard(void **state)
{
    (void)state;
    guard_arm("a test");
    return 0;
}

static int
teardown_guard(void **state)
{
    (void)state;
    guard_disarm();
    return 0;
}

static void
wait_sem(sem_t *s)
{
    while (sem_wait(s) != 0)
        assert_int_equal(errno, EINTR);
}

/* ---- thread contexts ---- */

struct fetch_ctx {
    unsigned magic;
    unsigned idx;
    pthread_t thread;   /* the fetcher that ran thread_init */
    void *arg_seen;
    unsigned init_calls;
    unsigned fini_calls;
    bool fini_on_own_thread;
    uint64_t tasks_run; /* written by its fetcher only; read after destroy */
};

struct ctx_set {
    struct fetch_ctx ctx[MAX_FETCHERS];
    unsigned fail_idx;  /* thread_init returns NULL for this idx */
    atomic_uint init_total;
    atomic_uint fini_total;
};

static void *
ctx_init(unsigned idx, void *arg)
{
    struct ctx_set *set = arg;

    atomic_fetch_add(&set->init_total, 1);
    if (idx >= MAX_FETCHERS || idx == set->fail_idx)
        return NULL;
    struct fetch_ctx *c = &set->ctx[idx];
    c->magic = CTX_MAGIC;
    c->idx = idx;
    c->thread = pthread_self();
    c->arg_seen = arg;
    c->init_calls++;
    return c;
}

static void
ctx_fini(void *thread_ctx)
{
    struct fetch_ctx *c = thread_ctx;
    struct ctx_set *set = c->arg_seen;

    c->fini_calls++;
    c->fini_on_own_thread = pthread_equal(c->thread, pthread_self());
    atomic_fetch_add(&set->fini_total, 1);
}

static void
ctx_set_init(struct ctx_set *set)
{
    memset(set, 0, sizeof(*set));
    set->fail_idx = UINT32_MAX;
    atomic_init(&set->init_total, 0);
    atomic_init(&set->fini_total, 0);
}

/* After destroy: every fetcher initialised and finalised once, on itself. */
static void
check_ctx_lifecycle(struct ctx_set *set, unsigned nthreads)
{
    assert_int_equal(atomic_load(&set->init_total), nthreads);
    assert_int_equal(atomic_load(&set->fini_total), nthreads);
    for (unsigned i = 0; i < nthreads; i++) {
        struct fetch_ctx *c = &set->ctx[i];

        assert_int_equal(c->magic, CTX_MAGIC);
        assert_int_equal(c->idx, i);
        assert_ptr_equal(c->arg_seen, set);
        assert_int_equal(c->init_calls, 1);
        assert_int_equal(c->fini_calls, 1);
        assert_true(c->fini_on_own_thread);
    }
}

/* ---- counting tasks ---- */

struct count_task {
    struct hotpool_task base;
    atomic_uint runs;
    unsigned spin;          /* busy iterations inside run() */
    bool yield;             /* give up the CPU once inside run() */
    struct run_log *log;
};

/* Shared by the tasks of one test; everything a fetcher notices goes here
 * (cmocka asserts only work on the test's own thread). */
struct run_log {
    atomic_uint done;
    unsigned expected;      /* posts `all_done` when done reaches this */
    sem_t all_done;
    atomic_uint bad_ctx;    /* run() got a context not made on its thread */
    atomic_uint double_run;
};

static void
run_log_init(struct run_log *log, unsigned expected)
{
    atomic_init(&log->done, 0);
    log->expected = expected;
    assert_int_equal(sem_init(&log->all_done, 0, 0), 0);
    atomic_init(&log->bad_ctx, 0);
    atomic_init(&log->double_run, 0);
}

static void
count_run(struct hotpool_task *t, void *thread_ctx)
{
    struct count_task *ct = (struct count_task *)((char *)t - offsetof(struct count_task, base));
    struct run_log *log = ct->log;
    struct fetch_ctx *c = thread_ctx;

    if (c == NULL || c->magic != CTX_MAGIC || !pthread_equal(c->thread, pthread_self()))
        atomic_fetch_add(&log->bad_ctx, 1);
    else
        c->tasks_run++;
    if (atomic_fetch_add(&ct->runs, 1) != 0)
        atomic_fetch_add(&log->double_run, 1);
    for (volatile unsigned i = 0; i < ct->spin; i++)
        ;
    if (ct->yield)
        sched_yield();
    /* Last use of ct: the test may reuse it once `done` says so. */
    if (atomic_fetch_add(&log->done, 1) + 1 == log->expected)
        sem_post(&log->all_done);
}

static void
count_task_init(struct count_task *ct, struct run_log *log, unsigned spin, bool yield)
{
    ct->base.run = count_run;
    atomic_init(&ct->runs, 0);
    ct->spin = spin;
    ct->yield = yield;
    ct->log = log;
}

/* ---- gate tasks: hold a fetcher inside run() until released ---- */

struct gate_task {
    struct hotpool_task base;
    sem_t entered;
    sem_t release;
    atomic_uint runs;
};

static void
gate_run(struct hotpool_task *t, void *thread_ctx)
{
    struct gate_task *g = (struct gate_task *)((char *)t - offsetof(struct gate_task, base));

    (void)thread_ctx;
    atomic_fetch_add(&g->runs, 1);
    sem_post(&g->entered);
    while (sem_wait(&g->release) != 0 && errno == EINTR)
        ;
}

static void
gate_init(struct gate_task *g)
{
    g->base.run = gate_run;
    assert_int_equal(sem_init(&g->entered, 0, 0), 0);
    assert_int_equal(sem_init(&g->release, 0, 0), 0);
    atomic_init(&g->runs, 0);
}

static void
gate_deinit(struct gate_task *g)
{
    sem_destroy(&g->entered);
    sem_destroy(&g->release);
}

/* Submits `g` and returns once a fetcher is inside it. */
static void
gate_close(struct hotpool *p, struct gate_task *g)
{
    assert_int_equal(hotpool_submit(p, &g->base), 0);
    wait_sem(&g->entered);
}

/* Waits until every accepted task has returned from run() and been counted.
 * The task's own "done" is its last action, so the counter lags by at most
 * the few instructions after run() returns: a bounded yield loop. */
static void
wait_completed(struct hotpool *p, uint64_t n)
{
    struct hotpool_stats st;

    for (;;) {
        hotpool_stats(p, &st);
        assert_true(st.completed <= n);
        if (st.completed == n)
            return;
        sched_yield();
    }
}

static void
assert_stats_add_up(const struct hotpool_stats *st)
{
    assert_int_equal(st->handed_direct + st->backlogged, st->submitted);
}

/* ---- tests ---- */

static void
test_bad_arguments(void **state)
{
    (void)state;
    struct ctx_set set;
    struct hotpool *p;
    struct hotpool_task no_run = { .run = NULL };

    ctx_set_init(&set);
    assert_null(hotpool_create(0, 16, ctx_init, ctx_fini, &set));
    assert_null(hotpool_create(1, SIZE_MAX, ctx_init, ctx_fini, &set));
    assert_int_equal(atomic_load(&set.init_total), 0);

    p = hotpool_create(1, 16, ctx_init, ctx_fini, &set);
    assert_non_null(p);
    assert_int_equal(hotpool_submit(p, NULL), MCKV_EINVAL);
    assert_int_equal(hotpool_submit(p, &no_run), MCKV_EINVAL);

    struct hotpool_stats st;
    hotpool_stats(p, &st);
    assert_int_equal(st.submitted, 0);
    assert_int_equal(st.rejected, 0);
    hotpool_destroy(&p);
    assert_null(p);
    hotpool_destroy(&p);    /* *p == NULL: no-op */
    hotpool_destroy(NULL);
    check_ctx_lifecycle(&set, 1);
}

/* Each fetcher's init/fini run once, on that fetcher, and every task runs
 * with the context made on the thread running it. */
static void
test_thread_init_fini(void **state)
{
    (void)state;
    enum { NTHREADS = 4, NTASKS = 2000 };
    struct ctx_set set;
    struct run_log log;
    static struct count_task tasks[NTASKS];
    struct hotpool *p;

    ctx_set_init(&set);
    run_log_init(&log, NTASKS);
    p = hotpool_create(NTHREADS, 64, ctx_init, ctx_fini, &set);
    assert_non_null(p);
    /* create returns only after every init. */
    assert_int_equal(atomic_load(&set.init_total), NTHREADS);
    assert_int_equal(atomic_load(&set.fini_total), 0);

    for (unsigned i = 0; i < NTASKS; i++) {
        count_task_init(&tasks[i], &log, (i % 7) * 200, false);
        while (hotpool_submit(p, &tasks[i].base) == MCKV_EAGAIN)
            sched_yield();
    }
    wait_sem(&log.all_done);
    hotpool_destroy(&p);

    check_ctx_lifecycle(&set, NTHREADS);
    assert_int_equal(atomic_load(&log.bad_ctx), 0);
    assert_int_equal(atomic_load(&log.double_run), 0);
    uint64_t sum = 0;
    for (unsigned i = 0; i < NTHREADS; i++)
        sum += set.ctx[i].tasks_run;
    assert_int_equal(sum, NTASKS);
    sem_destroy(&log.all_done);
}

/* A failing thread_init fails create; the fetchers that did initialise are
 * finalised, the failed one is not. */
static void
test_thread_init_failure(void **state)
{
    (void)state;
    struct ctx_set set;

    ctx_set_init(&set);
    set.fail_idx = 2;
    assert_null(hotpool_create(4, 16, ctx_init, ctx_fini, &set));
    assert_int_equal(atomic_load(&set.init_total), 4);
    assert_int_equal(atomic_load(&set.fini_total), 3);
    for (unsigned i = 0; i < 4; i++) {
        if (i == 2) {
            assert_int_equal(set.ctx[i].init_calls, 0);
            assert_int_equal(set.ctx[i].fini_calls, 0);
            continue;
        }
        assert_int_equal(set.ctx[i].init_calls, 1);
        assert_int_equal(set.ctx[i].fini_calls, 1);
        assert_true(set.ctx[i].fini_on_own_thread);
    }
}

static void
arg_run(struct hotpool_task *t, void *thread_ctx)
{
    struct count_task *ct = (struct count_task *)((char *)t - offsetof(struct count_task, base));

    if (thread_ctx != ct->log)
        atomic_fetch_add(&ct->log->bad_ctx, 1);
    atomic_fetch_add(&ct->runs, 1);
    if (atomic_fetch_add(&ct->log->done, 1) + 1 == ct->log->expected)
        sem_post(&ct->log->all_done);
}

/* thread_init == NULL: every task gets `arg` as its context. */
static void
test_no_thread_init(void **state)
{
    (void)state;
    enum { NTASKS = 100 };
    struct run_log log;
    static struct count_task tasks[NTASKS];
    struct hotpool *p;

    run_log_init(&log, NTASKS);
    p = hotpool_create(2, 8, NULL, NULL, &log);
    assert_non_null(p);
    for (unsigned i = 0; i < NTASKS; i++) {
        count_task_init(&tasks[i], &log, 0, false);
        tasks[i].base.run = arg_run;
        while (hotpool_submit(p, &tasks[i].base) == MCKV_EAGAIN)
            sched_yield();
    }
    wait_sem(&log.all_done);
    hotpool_destroy(&p);
    assert_int_equal(atomic_load(&log.bad_ctx), 0);
    for (unsigned i = 0; i < NTASKS; i++)
        assert_int_equal(atomic_load(&tasks[i].runs), 1);
    sem_destroy(&log.all_done);
}

/* One fetcher held in a gate: the backlog takes exactly its capacity, the
 * next submit is refused, the refused task never runs, and once the gate
 * opens everything accepted runs once and the refused task can be resubmitted. */
static void
test_backlog_full(void **state)
{
    (void)state;
    enum { CAP = 4 };
    struct ctx_set set;
    struct run_log log;
    struct count_task tasks[CAP + 1];
    struct gate_task gate;
    struct hotpool_stats st;
    struct hotpool *p;

    ctx_set_init(&set);
    run_log_init(&log, CAP);
    gate_init(&gate);
    p = hotpool_create(1, CAP, ctx_init, ctx_fini, &set);
    assert_non_null(p);

    gate_close(p, &gate);
    for (unsigned i = 0; i < CAP + 1; i++)
        count_task_init(&tasks[i], &log, 0, false);
    for (unsigned i = 0; i < CAP; i++)
        assert_int_equal(hotpool_submit(p, &tasks[i].base), 0);
    assert_int_equal(hotpool_submit(p, &tasks[CAP].base), MCKV_EAGAIN);
    assert_int_equal(hotpool_submit(p, &tasks[CAP].base), MCKV_EAGAIN);

    hotpool_stats(p, &st);
    assert_int_equal(st.submitted, CAP + 1);    /* the gate and CAP tasks */
    assert_int_equal(st.rejected, 2);
    assert_true(st.backlogged >= CAP);
    assert_stats_add_up(&st);
    for (unsigned i = 0; i < CAP + 1; i++)
        assert_int_equal(atomic_load(&tasks[i].runs), 0);

    sem_post(&gate.release);
    wait_sem(&log.all_done);
    for (unsigned i = 0; i < CAP; i++)
        assert_int_equal(atomic_load(&tasks[i].runs), 1);
    assert_int_equal(atomic_load(&tasks[CAP].runs), 0);

    /* Every backlog task gave its room back before it ran. */
    log.expected = CAP + 1;
    assert_int_equal(hotpool_submit(p, &tasks[CAP].base), 0);
    wait_sem(&log.all_done);
    assert_int_equal(atomic_load(&tasks[CAP].runs), 1);
    wait_completed(p, CAP + 2);
    hotpool_stats(p, &st);
    assert_int_equal(st.submitted, CAP + 2);
    assert_int_equal(st.rejected, 2);
    assert_stats_add_up(&st);

    hotpool_destroy(&p);
    check_ctx_lifecycle(&set, 1);
    assert_int_equal(atomic_load(&gate.runs), 1);
    assert_int_equal(atomic_load(&log.bad_ctx), 0);
    assert_int_equal(atomic_load(&log.double_run), 0);
    gate_deinit(&gate);
    sem_destroy(&log.all_done);
}

/* No backlog at all: a submit succeeds only by claiming an idle fetcher, so
 * every accepted task is a direct hand-off. */
static void
test_zero_backlog_direct_only(void **state)
{
    (void)state;
    enum { NTASKS = 500 };
    struct ctx_set set;
    struct run_log log;
    static struct count_task tasks[NTASKS];
    struct gate_task gate;
    struct hotpool_stats st;
    struct hotpool *p;
    uint64_t refused = 0;

    ctx_set_init(&set);
    run_log_init(&log, NTASKS);
    gate_init(&gate);
    p = hotpool_create(2, 0, ctx_init, ctx_fini, &set);
    assert_non_null(p);

    /* The gate itself can only be accepted directly: retry until then. */
    int rc;
    while ((rc = hotpool_submit(p, &gate.base)) == MCKV_EAGAIN) {
        refused++;
        sched_yield();
    }
    assert_int_equal(rc, 0);
    wait_sem(&gate.entered);

    for (unsigned i = 0; i < NTASKS; i++) {
        count_task_init(&tasks[i], &log, (i % 3) * 300, false);
        while ((rc = hotpool_submit(p, &tasks[i].base)) == MCKV_EAGAIN) {
            refused++;
            sched_yield();
        }
        assert_int_equal(rc, 0);
    }
    wait_sem(&log.all_done);
    hotpool_stats(p, &st);
    assert_int_equal(st.submitted, NTASKS + 1);
    assert_int_equal(st.backlogged, 0);
    assert_int_equal(st.handed_direct, NTASKS + 1);
    assert_int_equal(st.rejected, refused);
    /* Every direct hand-off is one wake-up of a parked fetcher. */
    assert_true(st.wakeups >= st.handed_direct);

    sem_post(&gate.release);
    hotpool_destroy(&p);
    check_ctx_lifecycle(&set, 2);
    for (unsigned i = 0; i < NTASKS; i++)
        assert_int_equal(atomic_load(&tasks[i].runs), 1);
    assert_int_equal(atomic_load(&log.bad_ctx), 0);
    gate_deinit(&gate);
    sem_destroy(&log.all_done);
}

struct destroyer {
    struct hotpool *pool;
    sem_t calling;
};

static void *
destroyer_main(void *arg)
{
    struct destroyer *d = arg;

    sem_post(&d->calling);
    hotpool_destroy(&d->pool);
    return NULL;
}

/* Both fetchers held, the backlog full: destroy, called while all of it is
 * still pending, runs every accepted task exactly once before returning. */
static void
test_destroy_runs_pending(void **state)
{
    (void)state;
    enum { CAP = 256, NTHREADS = 2 };
    struct ctx_set set;
    struct run_log log;
    static struct count_task tasks[CAP + 1];
    struct gate_task gates[NTHREADS];
    struct destroyer d;
    pthread_t thread;

    ctx_set_init(&set);
    run_log_init(&log, CAP);
    d.pool = hotpool_create(NTHREADS, CAP, ctx_init, ctx_fini, &set);
    assert_non_null(d.pool);
    assert_int_equal(sem_init(&d.calling, 0, 0), 0);

    for (unsigned i = 0; i < NTHREADS; i++) {
        gate_init(&gates[i]);
        gate_close(d.pool, &gates[i]);
    }
    for (unsigned i = 0; i < CAP + 1; i++)
        count_task_init(&tasks[i], &log, (i % 4) * 500, i % 64 == 0);
    for (unsigned i = 0; i < CAP; i++)
        assert_int_equal(hotpool_submit(d.pool, &tasks[i].base), 0);
    assert_int_equal(hotpool_submit(d.pool, &tasks[CAP].base), MCKV_EAGAIN);

    /* Destroy starts while both fetchers are held and nothing has run; the
     * gates open only once it is (about to be) running. */
    assert_int_equal(pthread_create(&thread, NULL, destroyer_main, &d), 0);
    wait_sem(&d.calling);
    for (unsigned i = 0; i < NTHREADS; i++)
        sem_post(&gates[i].release);
    pthread_join(thread, NULL);

    assert_null(d.pool);
    check_ctx_lifecycle(&set, NTHREADS);
    assert_int_equal(atomic_load(&log.done), CAP);
    for (unsigned i = 0; i < CAP; i++)
        assert_int_equal(atomic_load(&tasks[i].runs), 1);
    assert_int_equal(atomic_load(&tasks[CAP].runs), 0);
    for (unsigned i = 0; i < NTHREADS; i++) {
        assert_int_equal(atomic_load(&gates[i].runs), 1);
        gate_deinit(&gates[i]);
    }
    assert_int_equal(atomic_load(&log.bad_ctx), 0);
    assert_int_equal(atomic_load(&log.double_run), 0);
    sem_destroy(&d.calling);
    sem_destroy(&log.all_done);
}

/* ---- stress: 4 concurrent submitters ---- */

struct stress {
    struct hotpool *pool;
    struct count_task *tasks;
    unsigned ntasks;
    unsigned nsubmitters;
    unsigned pause_every;   /* a submitter yields after this many submits */
    pthread_barrier_t go;
};

struct submitter {
    struct stress *s;
    unsigned idx;
    uint64_t refused;   /* MCKV_EAGAIN seen; read after join */
    unsigned other_errors;
};

static void *
submitter_main(void *arg)
{
    struct submitter *sub = arg;
    struct stress *s = sub->s;

    unsigned n = 0;

    pthread_barrier_wait(&s->go);
    /* Interleaved ids so the four submitters race on neighbouring tasks. */
    for (unsigned i = sub->idx; i < s->ntasks; i += s->nsubmitters) {
        int rc;

        while ((rc = hotpool_submit(s->pool, &s->tasks[i].base)) == MCKV_EAGAIN) {
            sub->refused++;
            sched_yield();
        }
        if (rc != 0)
            sub->other_errors++;
        /* Now and then pause, so fetchers run dry and park often: the
         * park/submit race is what this test is after. */
        if (++n % s->pause_every == 0)
            sched_yield();
    }
    return NULL;
}

/* `spin_one_in`: one task in that many spins briefly (0: none spin). */
static void
run_stress(unsigned nfetchers, size_t backlog, unsigned ntasks,
           unsigned spin_one_in, unsigned pause_every)
{
    enum { NSUBMITTERS = 4 };
    struct ctx_set set;
    struct run_log log;
    struct stress s;
    struct submitter subs[NSUBMITTERS];
    pthread_t threads[NSUBMITTERS];
    struct hotpool_stats st;
    uint64_t refused = 0;

    assert_true(nfetchers <= MAX_FETCHERS);
    ctx_set_init(&set);
    run_log_init(&log, ntasks);
    s.tasks = calloc(ntasks, sizeof(*s.tasks));
    assert_non_null(s.tasks);
    s.ntasks = ntasks;
    s.nsubmitters = NSUBMITTERS;
    s.pause_every = pause_every;
    /* Mostly empty tasks; some spin briefly, one in 1000 yields the CPU (a
     * fetcher descheduled mid-task). */
    for (unsigned i = 0; i < ntasks; i++) {
        bool spin = spin_one_in != 0 && i % spin_one_in == 0;

        count_task_init(&s.tasks[i], &log, spin ? 1000 + (i % 5) * 1000 : 0,
                        i % 1000 == 0);
    }
    s.pool = hotpool_create(nfetchers, backlog, ctx_init, ctx_fini, &set);
    assert_non_null(s.pool);
    assert_int_equal(pthread_barrier_init(&s.go, NULL, NSUBMITTERS), 0);

    for (unsigned i = 0; i < NSUBMITTERS; i++) {
        subs[i] = (struct submitter){ .s = &s, .idx = i };
        assert_int_equal(pthread_create(&threads[i], NULL, submitter_main, &subs[i]), 0);
    }
    for (unsigned i = 0; i < NSUBMITTERS; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(subs[i].other_errors, 0);
        refused += subs[i].refused;
    }
    /* A stranded task never completes: the watchdog fails us then. */
    wait_sem(&log.all_done);
    wait_completed(s.pool, ntasks);

    hotpool_stats(s.pool, &st);
    assert_int_equal(st.submitted, ntasks);
    assert_stats_add_up(&st);
    assert_int_equal(st.rejected, refused);
    assert_int_equal(st.completed, ntasks);
    print_message("  %u fetcher(s), backlog %zu: %llu direct, %llu backlogged, "
                  "%llu refused, %llu wake-ups\n", nfetchers, backlog,
                  (unsigned long long)st.handed_direct,
                  (unsigned long long)st.backlogged,
                  (unsigned long long)st.rejected,
                  (unsigned long long)st.wakeups);
    hotpool_destroy(&s.pool);

    check_ctx_lifecycle(&set, nfetchers);
    assert_int_equal(atomic_load(&log.bad_ctx), 0);
    assert_int_equal(atomic_load(&log.double_run), 0);
    unsigned not_once = 0;
    for (unsigned i = 0; i < ntasks; i++)
        not_once += atomic_load(&s.tasks[i].runs) != 1;
    assert_int_equal(not_once, 0);
    uint64_t sum = 0;
    for (unsigned i = 0; i < nfetchers; i++)
        sum += set.ctx[i].tasks_run;
    assert_int_equal(sum, ntasks);

    pthread_barrier_destroy(&s.go);
    sem_destroy(&log.all_done);
    free(s.tasks);
}

/* Small backlog: refusals, direct hand-offs and backlog wake-ups all mixed. */
static void
test_stress_four_submitters(void **state)
{
    (void)state;
    run_stress(3, 64, 200000, 8, 1024);
}

/* One fetcher, empty tasks, submitters that pause every few tasks: the one
 * consumer keeps running dry, so nearly every short burst meets its
 * drain-then-park check, the tightest form of the race. */
static void
test_stress_one_fetcher(void **state)
{
    (void)state;
    run_stress(1, 4096, 50000, 0, 4);
}

/* ---- ping-pong: every task is somebody's last ---- */

struct pong_task {
    struct hotpool_task base;
    sem_t done;
    atomic_uint runs;
    unsigned spin;          /* set by the submitter before each submit */
};

static void
pong_run(struct hotpool_task *t, void *thread_ctx)
{
    struct pong_task *pt = (struct pong_task *)((char *)t - offsetof(struct pong_task, base));
    unsigned spin = pt->spin;

    (void)thread_ctx;
    atomic_fetch_add(&pt->runs, 1);
    /* After this post the submitter may resubmit pt: not touched again. The
     * spin keeps this fetcher busy for a varying while after the submitter
     * is released, so its next submit lands at every point of the fetcher's
     * way back to parking. */
    sem_post(&pt->done);
    for (volatile unsigned i = 0; i < spin; i++)
        ;
}

struct ponger {
    struct hotpool *pool;
    pthread_barrier_t *go;
    unsigned rounds;
    struct pong_task task;
    unsigned bad;           /* rounds where the task did not run exactly once */
};

static void *
ponger_main(void *arg)
{
    struct ponger *pg = arg;

    pthread_barrier_wait(pg->go);
    for (unsigned r = 0; r < pg->rounds; r++) {
        pg->task.spin = (r * 37u) % 3000u;
        while (hotpool_submit(pg->pool, &pg->task.base) == MCKV_EAGAIN)
            sched_yield();
        /* Nothing else is queued by this thread until this task has run,
         * so a stranded task is never rescued by our own next submit. */
        while (sem_wait(&pg->task.done) != 0 && errno == EINTR)
            ;
        pg->bad += atomic_load(&pg->task.runs) != r + 1;
    }
    return NULL;
}

/* `npongers` threads each submit one task and wait for it before the next,
 * so the pool keeps going idle right as tasks arrive. A lost wake-up strands
 * a task whose submitter then waits forever; once every submitter is stuck or
 * done nothing rescues it, and the watchdog fails the test. */
static void
run_ping_pong(unsigned nfetchers, unsigned npongers, unsigned rounds)
{
    enum { MAX_PONGERS = 4 };
    struct ponger pongers[MAX_PONGERS];
    pthread_t threads[MAX_PONGERS];
    pthread_barrier_t go;
    struct hotpool_stats st;
    struct hotpool *p;

    assert_true(npongers <= MAX_PONGERS);
    p = hotpool_create(nfetchers, 16, NULL, NULL, NULL);
    assert_non_null(p);
    assert_int_equal(pthread_barrier_init(&go, NULL, npongers), 0);
    for (unsigned i = 0; i < npongers; i++) {
        pongers[i] = (struct ponger){ .pool = p, .go = &go, .rounds = rounds };
        pongers[i].task.base.run = pong_run;
        atomic_init(&pongers[i].task.runs, 0);
        assert_int_equal(sem_init(&pongers[i].task.done, 0, 0), 0);
        assert_int_equal(pthread_create(&threads[i], NULL, ponger_main, &pongers[i]), 0);
    }
    for (unsigned i = 0; i < npongers; i++)
        pthread_join(threads[i], NULL);
    wait_completed(p, (uint64_t)npongers * rounds);
    hotpool_stats(p, &st);
    assert_int_equal(st.submitted, (uint64_t)npongers * rounds);
    assert_stats_add_up(&st);
    print_message("  ping-pong %u fetcher(s), %u submitter(s): %llu direct, "
                  "%llu backlogged, %llu wake-ups\n", nfetchers, npongers,
                  (unsigned long long)st.handed_direct,
                  (unsigned long long)st.backlogged,
                  (unsigned long long)st.wakeups);
    hotpool_destroy(&p);
    for (unsigned i = 0; i < npongers; i++) {
        assert_int_equal(pongers[i].bad, 0);
        assert_int_equal(atomic_load(&pongers[i].task.runs), rounds);
        sem_destroy(&pongers[i].task.done);
    }
    pthread_barrier_destroy(&go);
}

/* One submitter, one fetcher: any stranded task hangs at once. */
static void
test_ping_pong_single(void **state)
{
    (void)state;
    run_ping_pong(1, 1, 20000);
}

static void
test_ping_pong_four(void **state)
{
    (void)state;
    run_ping_pong(2, 4, 5000);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup_guard, teardown_guard),
        cmocka_unit_test_setup_teardown(test_thread_init_fini, setup_guard, teardown_guard),
        cmocka_unit_test_setup_teardown(test_thread_init_failure, setup_guard, teardown_guard),
        cmocka_unit_test_setup_teardown(test_no_thread_init, setup_guard, teardown_guard),
        cmocka_unit_test_setup_teardown(test_backlog_full, setup_guard, teardown_guard),
        cmocka_unit_test_setup_teardown(test_zero_backlog_direct_only, setup_guard, teardown_guard),
        cmocka_unit_test_setup_teardown(test_destroy_runs_pending, setup_guard, teardown_guard),
        cmocka_unit_test_setup_teardown(test_stress_four_submitters, setup_guard, teardown_guard),
        cmocka_unit_test_setup_teardown(test_stress_one_fetcher, setup_guard, teardown_guard),
        cmocka_unit_test_setup_teardown(test_ping_pong_single, setup_guard, teardown_guard),
        cmocka_unit_test_setup_teardown(test_ping_pong_four, setup_guard, teardown_guard),
    };

    guard_start();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
