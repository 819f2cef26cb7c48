/*
 * hotpool.c: the "hot threads" task pool behind the fetchers (hotpool.h).
 *
 * Pieces
 *   - one struct fetcher per thread, on its own cache line: `state` (IDLE or
 *     BUSY), `slot` (the task handed straight to it) and a semaphore `wake`.
 *   - the backlog: a Concurrency Kit ck_ring in its MPMC flavour (lock-free
 *     for consumers; a producer may spin behind another producer that has
 *     reserved the slot before it and not yet published), plus two C11
 *     counters:
 *       backlog_reserved  tasks counted against backlog_capacity; taken by
 *                         CAS before the ring push, given back after the pop.
 *                         It makes the capacity exact and, being a C11 RMW
 *                         chain, makes "push happens before pop" visible to
 *                         the C11 model and to TSan (ck orders its ring with
 *                         inline asm neither can see).
 *       backlog_ready     published entries no consumer has claimed. Raised
 *                         after a push; a consumer takes one unit by CAS
 *                         before it pops, so a pop after a taken unit always
 *                         finds an entry. This is the counter the wake-up
 *                         protocol reads.
 *
 * Submit (any thread, no mutex)
 *   1. claim: for each fetcher, CAS state IDLE -> BUSY. The winner is the only
 *      thread that may write that fetcher's slot and post its semaphore; it
 *      stores the task in the slot and posts.
 *   2. no fetcher idle: push to the backlog (MCKV_EAGAIN when full), raise
 *      backlog_ready; FULL FENCE; claim again. A fetcher claimed now is
 *      posted with an empty slot ("look at the backlog").
 *
 * Fetcher loop
 *   run backlog tasks while a backlog_ready unit can be taken; then park:
 *   state = IDLE; FULL FENCE; read backlog_ready and stopping. If either is
 *   set, CAS state IDLE -> BUSY: success means we un-idled ourselves and go
 *   back to work (or exit when stopping and the backlog is empty); failure
 *   means somebody claimed us and is posting. Otherwise sem_wait(); then run
 *   the slot's task if any, and loop.
 *
 * Why no task is stranded (no lost wake-up)
 *   The race is "fetcher F finds the backlog empty and goes idle" against
 *   "submitter S finds no idle fetcher and pushes". The two full fences form
 *   a Dekker pair:
 *       F: store state=IDLE ; fence ; load backlog_ready
 *       S: raise backlog_ready ; fence ; load state (claim CAS)
 *   The fences are totally ordered (C11 seq_cst fences): whichever comes
 *   second, its load sees the other side's write (or a later value). Take S
 *   after its fence:
 *     (a) S's second claim wins some fetcher: S posts it, it wakes with an
 *         empty slot and drains the backlog.
 *     (b) S's claim read BUSY (pre-check or failed CAS) for every fetcher
 *         F. Then F's next IDLE store is later in the order of F's `state`
 *         than what S read, so S's fence precedes the fence of F's next park
 *         check, and that check sees S's unit (unless a consumer already
 *         took it, which is fine). This holds whether F is running a task,
 *         un-idled itself or was claimed by another submitter: a fetcher
 *         parks only through the check. When the check sees a unit, F
 *         un-idles itself by CAS and drains, or its CAS fails because some
 *         claimer won, which posts F.
 *   Either way some fetcher takes S's task or someone else already did.
 *   A claim that wins is always followed by exactly one post, and a fetcher
 *   that stored IDLE either wins its own un-idle CAS or calls sem_wait() once,
 *   so posts and waits pair up one to one. destroy uses the same pair with
 *   `stopping` in place of backlog_ready.
 *
 * Why a semaphore, not a raw futex
 *   A parked fetcher needs "sleep until posted, and do not miss a post that
 *   came before the sleep": that is exactly a counting semaphore, and the
 *   claim CAS already guarantees one post per park. glibc's sem_post() and
 *   sem_wait() are futex-based and make no system call when no thread is
 *   blocked (a post that lands before the wait costs one atomic), so a
 *   hand-rolled futex would save nothing and would add a word to manage,
 *   spurious wake-up loops and Linux-only code. sem_post/sem_wait are also
 *   understood by TSan as a release/acquire pair, so the slot hand-off is
 *   checked rather than assumed.
 *
 * Nobody sleep-polls: fetchers block in sem_wait(); the only spins are inside
 * the ring (ck_pr_stall while a reserving producer publishes).
 */
#include <config.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ck_pr.h>
#include <ck_ring.h>

#include "util/hotpool.h"
#include "util/status.h"

#define HOTPOOL_CACHELINE 64
/* Keeps the ring size (a power of two, >= capacity + 2) in an unsigned. */
#define HOTPOOL_MAX_BACKLOG (UINT_MAX / 4)

enum { FETCHER_BUSY = 0, FETCHER_IDLE = 1 };

struct fetcher {
    /* Written by the fetcher (IDLE) and by whoever claims it (BUSY). */
    _Alignas(HOTPOOL_CACHELINE) atomic_int state;
    /* Direct hand-off: written by the claimer before its post, cleared by
     * the fetcher after its wait. NULL means "look at the backlog". */
    _Atomic(struct hotpool_task *) slot;
    sem_t wake;                          /* one post per successful claim */
    atomic_uint_fast64_t handed_direct;  /* by claimers, one at a time */
    atomic_uint_fast64_t completed;      /* by this fetcher only */
    atomic_uint_fast64_t wakeups;        /* by this fetcher only */
    struct hotpool *pool;
    unsigned idx;
    void *ctx;                           /* this fetcher's thread_ctx */
    bool init_ok;                        /* published by sem_post(started) */
    bool thread_started;                 /* creating thread only */
    pthread_t thread;
};

struct hotpool {
    /* Set before the threads start, read-only afterwards. */
    struct fetcher *fetchers;
    unsigned nthreads;
    unsigned backlog_capacity;
    ck_ring_buffer_t *backlog_slots;
    void *(*thread_init)(unsigned idx, void *arg);
    void (*thread_fini)(void *thread_ctx);
    void *arg;
    sem_t started;                       /* posted once per fetcher, after init */
    atomic_bool stopping;

    /* ck_ring_t pads its producer and consumer halves internally. */
    _Alignas(HOTPOOL_CACHELINE) ck_ring_t backlog;
    _Alignas(HOTPOOL_CACHELINE) atomic_uint backlog_reserved;
    atomic_uint backlog_ready;

    _Alignas(HOTPOOL_CACHELINE) atomic_uint_fast64_t submitted;
    atomic_uint_fast64_t backlogged;
    atomic_uint_fast64_t rejected;
};

static size_t
round_up_cacheline(size_t n)
{
    return (n + HOTPOOL_CACHELINE - 1) & ~(size_t)(HOTPOOL_CACHELINE - 1);
}

/* Finds an idle fetcher and makes it BUSY on our behalf; NULL when none.
 * Scanning from fetcher 0 keeps the lowest-numbered threads hot under light
 * load and leaves the others parked. Any thread. */
static struct fetcher *
claim_idle(struct hotpool *p)
{
    for (unsigned i = 0; i < p->nthreads; i++) {
        struct fetcher *f = &p->fetchers[i];
        int expected = FETCHER_IDLE;

        /* Plain read first so busy fetchers' lines are not written. */
        if (atomic_load_explicit(&f->state, memory_order_relaxed) != FETCHER_IDLE)
            continue;
        /* Acquire: the fetcher's last exchange of its slot (before its IDLE
         * store) happens before our slot write in hand_over(). */
        if (atomic_compare_exchange_strong_explicit(&f->state, &expected,
                FETCHER_BUSY, memory_order_acquire, memory_order_relaxed))
            return f;
    }
    return NULL;
}

/* Caller has claimed `f`: gives it `t` (NULL: drain the backlog) and wakes
 * it. The release store and sem_post() publish *t to the fetcher. */
static void
hand_over(struct fetcher *f, struct hotpool_task *t)
{
    atomic_store_explicit(&f->slot, t, memory_order_release);
    /* Cannot overflow: one post per claim, and a claimed fetcher waits once. */
    (void)sem_post(&f->wake);
}

/* Any thread. Returns 0, or MCKV_EAGAIN when the backlog is full. */
static int
backlog_push(struct hotpool *p, struct hotpool_task *t)
{
    unsigned n = atomic_load_explicit(&p->backlog_reserved, memory_order_relaxed);

    /* Reserve room. Release: our writes to *t happen before the consumer's
     * acq_rel give-back in backlog_take(), which reads this chain. Acquire:
     * an earlier consumer's read of a slot happens before our write to it. */
    do {
        if (n >= p->backlog_capacity)
            return MCKV_EAGAIN;
    } while (!atomic_compare_exchange_weak_explicit(&p->backlog_reserved, &n,
                 n + 1, memory_order_acq_rel, memory_order_relaxed));

    if (!ck_ring_enqueue_mpmc(&p->backlog, p->backlog_slots, t)) {
        /* Unreachable: the ring holds at least capacity + 1 entries and
         * every entry in it is covered by a reservation. Defensive. */
        atomic_fetch_sub_explicit(&p->backlog_reserved, 1, memory_order_release);
        return MCKV_EAGAIN;
    }
    /* Publish one unit for consumers. seq_cst, and followed by the fence in
     * hotpool_submit(): this is S's write in the Dekker pair. */
    atomic_fetch_add_explicit(&p->backlog_ready, 1, memory_order_seq_cst);
    return MCKV_OK;
}

/* Any fetcher. Takes one backlog task into *out; false when none is ready. */
static bool
backlog_take(struct hotpool *p, struct hotpool_task **out)
{
    unsigned n = atomic_load_explicit(&p->backlog_ready, memory_order_relaxed);
    void *entry;

    do {
        if (n == 0)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&p->backlog_ready, &n,
                 n - 1, memory_order_acquire, memory_order_relaxed));

    /* We hold a unit, so an entry is published that no other consumer can
     * take: every consumer pops only after taking a unit, and units are
     * raised only after a push completes. The loop never turns in practice;
     * it only states that a unit holder must get an entry. */
    while (!ck_ring_dequeue_mpmc(&p->backlog, p->backlog_slots, &entry))
        ck_pr_stall();

    /* Give the room back. Acquire: the submitter reserved before it pushed
     * and we popped what it pushed, so its reservation is earlier in this
     * chain; its writes to the task now happen before our run() in C11 and
     * TSan terms. Release: our slot read happens before a later producer's
     * reservation of this room. */
    atomic_fetch_sub_explicit(&p->backlog_reserved, 1, memory_order_acq_rel);
    *out = entry;
    return true;
}

/* Fetcher thread. The pool never touches `t` once run() is entered. */
static void
run_task(struct fetcher *f, struct hotpool_task *t)
{
    t->run(t, f->ctx);
    atomic_fetch_add_explicit(&f->completed, 1, memory_order_relaxed);
}

static void
wait_sem(sem_t *s)
{
    while (sem_wait(s) != 0 && errno == EINTR)
        ;
}

/* Fetcher thread body; see the header comment for the park protocol. */
static void *
fetcher_main(void *arg)
{
    struct fetcher *f = arg;
    struct hotpool *p = f->pool;
    struct hotpool_task *t;

    if (p->thread_init != NULL) {
        f->ctx = p->thread_init(f->idx, p->arg);
        f->init_ok = f->ctx != NULL;
    } else {
        f->ctx = p->arg;
        f->init_ok = true;
    }
    /* sem_post orders ctx/init_ok before hotpool_create() reads them. */
    (void)sem_post(&p->started);
    if (!f->init_ok)
        return NULL;

    for (;;) {
        while (backlog_take(p, &t))
            run_task(f, t);

        atomic_store_explicit(&f->state, FETCHER_IDLE, memory_order_seq_cst);
        /* Orders our IDLE store before our reads of backlog_ready and
         * stopping. Pairs with the fence in hotpool_submit() (after the
         * backlog push) and in stop_fetchers() (after setting stopping):
         * either we see their write here, or they see us IDLE and claim us. */
        atomic_thread_fence(memory_order_seq_cst);
        bool work = atomic_load_explicit(&p->backlog_ready, memory_order_relaxed) > 0;
        bool stop = atomic_load_explicit(&p->stopping, memory_order_relaxed);

        if (work || stop) {
            int expected = FETCHER_IDLE;

            if (atomic_compare_exchange_strong_explicit(&f->state, &expected,
                    FETCHER_BUSY, memory_order_relaxed, memory_order_relaxed)) {
                if (work)
                    continue;
                /* Stopping and the backlog is empty; nobody may submit any
                 * more, so it stays empty. Nobody claimed us: no post is
                 * pending on our semaphore. */
                break;
            }
            /* A claimer beat us to it and is posting: take its hand-off. */
        }

        wait_sem(&f->wake);
        atomic_fetch_add_explicit(&f->wakeups, 1, memory_order_relaxed);
        t = atomic_exchange_explicit(&f->slot, NULL, memory_order_acquire);
        if (t != NULL)
            run_task(f, t);
    }

    if (p->thread_fini != NULL)
        p->thread_fini(f->ctx);
    return NULL;
}

/* Creating/destroying thread. Tells every running fetcher to finish the
 * backlog and exit, and joins them all. */
static void
stop_fetchers(struct hotpool *p)
{
    atomic_store_explicit(&p->stopping, true, memory_order_seq_cst);
    /* Orders the stopping store before our reads of the fetchers' states;
     * pairs with the fence in fetcher_main(): a parking fetcher either sees
     * stopping or is seen IDLE here and woken. */
    atomic_thread_fence(memory_order_seq_cst);
    for (unsigned i = 0; i < p->nthreads; i++) {
        struct fetcher *f = &p->fetchers[i];
        int expected = FETCHER_IDLE;

        if (!f->thread_started)
            continue;
        if (atomic_compare_exchange_strong_explicit(&f->state, &expected,
                FETCHER_BUSY, memory_order_acquire, memory_order_relaxed))
            hand_over(f, NULL);
        /* Else it is BUSY: it will see stopping when it next parks. */
    }
    for (unsigned i = 0; i < p->nthreads; i++) {
        if (p->fetchers[i].thread_started)
            pthread_join(p->fetchers[i].thread, NULL);
    }
}

static void
free_pool(struct hotpool *p)
{
    if (p->fetchers != NULL) {
        for (unsigned i = 0; i < p->nthreads; i++)
            sem_destroy(&p->fetchers[i].wake);
        free(p->fetchers);
    }
    sem_destroy(&p->started);
    free(p->backlog_slots);
    free(p);
}

struct hotpool *
hotpool_create(unsigned nthreads, size_t backlog_capacity,
               void *(*thread_init)(unsigned idx, void *arg),
               void (*thread_fini)(void *thread_ctx), void *arg)
{
    struct hotpool *p;
    unsigned ring_size = 4;
    unsigned nstarted = 0;
    size_t fetchers_size;
    bool failed = false;
    sigset_t all, old;

    if (nthreads == 0 || backlog_capacity > HOTPOOL_MAX_BACKLOG
        || __builtin_mul_overflow(nthreads, sizeof(struct fetcher), &fetchers_size))
        return NULL;

    p = aligned_alloc(HOTPOOL_CACHELINE, round_up_cacheline(sizeof(*p)));
    if (p == NULL)
        return NULL;
    memset(p, 0, sizeof(*p));
    if (sem_init(&p->started, 0, 0) != 0) {
        free(p);
        return NULL;
    }
    p->nthreads = nthreads;
    p->backlog_capacity = (unsigned)backlog_capacity;
    p->thread_init = thread_init;
    p->thread_fini = thread_fini;
    p->arg = arg;
    atomic_init(&p->stopping, false);
    atomic_init(&p->backlog_reserved, 0);
    atomic_init(&p->backlog_ready, 0);
    atomic_init(&p->submitted, 0);
    atomic_init(&p->backlogged, 0);
    atomic_init(&p->rejected, 0);

    /* ck_ring holds size - 1 entries and its producers fail at
     * size - 1 in flight; + 2 keeps a reservation-covered push from ever
     * seeing the ring full (see backlog_push()). */
    while (ring_size < p->backlog_capacity + 2)
        ring_size <<= 1;
    p->backlog_slots = calloc(ring_size, sizeof(*p->backlog_slots));
    if (p->backlog_slots == NULL)
        goto fail;
    ck_ring_init(&p->backlog, ring_size);

    /* sizeof(struct fetcher) is a multiple of the cache line (_Alignas). */
    p->fetchers = aligned_alloc(HOTPOOL_CACHELINE, fetchers_size);
    if (p->fetchers == NULL)
        goto fail;
    memset(p->fetchers, 0, fetchers_size);
    for (unsigned i = 0; i < nthreads; i++) {
        struct fetcher *f = &p->fetchers[i];

        atomic_init(&f->state, FETCHER_BUSY);
        atomic_init(&f->slot, NULL);
        atomic_init(&f->handed_direct, 0);
        atomic_init(&f->completed, 0);
        atomic_init(&f->wakeups, 0);
        f->pool = p;
        f->idx = i;
        if (sem_init(&f->wake, 0, 0) != 0) {
            /* Destroy only the semaphores made so far. */
            for (unsigned j = 0; j < i; j++)
                sem_destroy(&p->fetchers[j].wake);
            free(p->fetchers);
            p->fetchers = NULL;
            goto fail;
        }
    }

    /* Fetchers never handle signals: they start with all of them blocked so
     * process-directed signals reach the threads that do. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (unsigned i = 0; i < nthreads; i++) {
        struct fetcher *f = &p->fetchers[i];

        if (pthread_create(&f->thread, NULL, fetcher_main, f) != 0) {
            failed = true;
            break;
        }
        f->thread_started = true;
        char name[16];
        snprintf(name, sizeof(name), "mckv-fetch%u", i % 1000u);
        pthread_setname_np(f->thread, name);   /* for top -H, perf */
        nstarted++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    for (unsigned i = 0; i < nstarted; i++)
        wait_sem(&p->started);
    for (unsigned i = 0; i < nstarted; i++)
        failed |= !p->fetchers[i].init_ok;
    if (failed) {
        stop_fetchers(p);
        free_pool(p);
        return NULL;
    }
    return p;

fail:
    free_pool(p);
    return NULL;
}

int
hotpool_submit(struct hotpool *p, struct hotpool_task *t)
{
    struct fetcher *f;
    int rc;

    if (t == NULL || t->run == NULL)
        return MCKV_EINVAL;
    if (atomic_load_explicit(&p->stopping, memory_order_relaxed))
        return MCKV_ECLOSED;

    f = claim_idle(p);
    if (f != NULL) {
        /* Counted before the hand-off so the task cannot complete first. */
        atomic_fetch_add_explicit(&f->handed_direct, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&p->submitted, 1, memory_order_relaxed);
        hand_over(f, t);
        return MCKV_OK;
    }

    rc = backlog_push(p, t);
    if (rc < 0) {
        atomic_fetch_add_explicit(&p->rejected, 1, memory_order_relaxed);
        return rc;
    }
    /* After the push (it may be refused), so a fetcher may complete the task
     * before these are counted; hotpool_stats() says so. */
    atomic_fetch_add_explicit(&p->submitted, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->backlogged, 1, memory_order_relaxed);
    /* Orders the backlog_ready raise in backlog_push() before our reads of
     * the fetchers' states in claim_idle(); pairs with the fence in
     * fetcher_main(): a fetcher that went IDLE without seeing our task is
     * seen IDLE here and woken. */
    atomic_thread_fence(memory_order_seq_cst);
    f = claim_idle(p);
    if (f != NULL)
        hand_over(f, NULL);
    return MCKV_OK;
}

void
hotpool_destroy(struct hotpool **pp)
{
    if (pp == NULL || *pp == NULL)
        return;
    stop_fetchers(*pp);
    free_pool(*pp);
    *pp = NULL;
}

void
hotpool_stats(struct hotpool *p, struct hotpool_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < p->nthreads; i++) {
        struct fetcher *f = &p->fetchers[i];

        out->handed_direct += atomic_load_explicit(&f->handed_direct, memory_order_relaxed);
        out->completed += atomic_load_explicit(&f->completed, memory_order_relaxed);
        out->wakeups += atomic_load_explicit(&f->wakeups, memory_order_relaxed);
    }
    out->submitted = atomic_load_explicit(&p->submitted, memory_order_relaxed);
    out->backlogged = atomic_load_explicit(&p->backlogged, memory_order_relaxed);
    out->rejected = atomic_load_explicit(&p->rejected, memory_order_relaxed);
}
