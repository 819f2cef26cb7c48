/*
 * hotpool.h: the "hot threads" task pool that runs the fetchers.
 *
 * A fixed set of threads runs caller-owned tasks. hotpool_submit() never
 * blocks and takes no mutex, so worker threads (which must never block) can
 * hand it a disk read: it claims an idle fetcher with a compare-and-swap on
 * that fetcher's idle flag and gives the task straight to it, or, when every
 * fetcher is busy, queues the task in a bounded lock-free backlog that a
 * fetcher drains before it parks. A full backlog is refused (MCKV_EAGAIN),
 * never waited for. The wake-up protocol and why no task can be stranded is
 * explained at the top of hotpool.c.
 *
 * Each fetcher has a thread context made by thread_init() on that thread (a
 * read-only engine handle, say) and passed to every task it runs.
 */
#ifndef MCKV_UTIL_HOTPOOL_H
#define MCKV_UTIL_HOTPOOL_H

#include <stddef.h>
#include <stdint.h>

struct hotpool;

/* Embed this in your own request struct and recover the struct with
 * container_of/offsetof in run(). The pool keeps only a pointer: the task
 * must stay valid until run() is called, and the pool never touches it once
 * run() has been entered, so run() may free it. */
struct hotpool_task {
    void (*run)(struct hotpool_task *t, void *thread_ctx);
};

struct hotpool_stats {
    uint64_t submitted;     /* hotpool_submit() calls that returned 0 */
    uint64_t handed_direct; /* of those, given straight to an idle fetcher */
    uint64_t backlogged;    /* of those, queued in the backlog */
    uint64_t rejected;      /* hotpool_submit() calls refused: backlog full */
    uint64_t completed;     /* tasks whose run() has returned */
    uint64_t wakeups;       /* times a parked fetcher was woken */
};

/*
 * Starts `nthreads` fetchers (>= 1) and a backlog of room for
 * `backlog_capacity` tasks (at most UINT_MAX / 4; 0 allowed: then a submit
 * with no idle fetcher is refused). Each fetcher first calls thread_init(idx, arg) on its own thread,
 * idx in 0..nthreads-1; the result is that fetcher's thread_ctx, passed to
 * every task it runs and finally to thread_fini(thread_ctx), also on that
 * thread. thread_init returning NULL means it failed: then every fetcher
 * whose init succeeded gets its thread_fini, all threads are joined and
 * hotpool_create() returns NULL. thread_init == NULL gives every fetcher
 * `arg` as its thread_ctx; thread_fini may be NULL.
 *
 * Returns only once every fetcher has finished thread_init. Returns NULL on
 * bad arguments, allocation or thread-creation failure, or a failed
 * thread_init. Fetchers run with all signals blocked. Any thread.
 */
struct hotpool *hotpool_create(unsigned nthreads, size_t backlog_capacity,
                               void *(*thread_init)(unsigned idx, void *arg),
                               void (*thread_fini)(void *thread_ctx),
                               void *arg);

/*
 * Queues `t` to run once on some fetcher. Any thread, concurrently; never
 * blocks, takes no lock (a backlog push may spin for a moment behind another
 * submitter's push that is halfway done). Returns 0 (t now belongs to the pool
 * until its run() is called), MCKV_EAGAIN when no fetcher is idle and the
 * backlog is full (nothing was queued: retry later), MCKV_EINVAL for a NULL
 * task or run, or MCKV_ECLOSED once hotpool_destroy() has begun (best effort:
 * submitting concurrently with destroy is a caller bug).
 */
int hotpool_submit(struct hotpool *p, struct hotpool_task *t);

/*
 * Runs every task already submitted (handed or backlogged), then stops the
 * fetchers (each calls thread_fini) and joins them, frees the pool and sets
 * *p to NULL. The caller must make sure no hotpool_submit() runs during or
 * after the call. NULL or *p == NULL is a no-op. Any thread but a fetcher.
 */
void hotpool_destroy(struct hotpool **p);

/*
 * Fills `out` with counters. Each counter is exact, but they are read one by
 * one, so while tasks are in flight they need not add up; once submitters
 * have returned, handed_direct + backlogged == submitted. Any thread.
 */
void hotpool_stats(struct hotpool *p, struct hotpool_stats *out);

#endif
