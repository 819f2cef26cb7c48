/*
 * test_flusher.c: unit tests of server/flusher.c, the single writer.
 *
 * The flusher runs for real (its thread, its rings) against the real cache
 * (server/cache.c, whose on_change hook is flusher_queue_change) and a stub
 * engine defined here: a table of kvstore_ops that records every put,
 * delete, flush and commit, and can be told to fail the next commits (a
 * full or read-only disk). The test thread plays worker 0. A commit is
 * waited for through the flusher's `committed` callback (sync durability)
 * and a condition variable; flusher_stop() is the other barrier (it writes
 * everything queued before it returns).
 *
 * Checked: writes reach the engine and the committed sequence catches up
 * with the queued one; a request's write seq is handed out once; the
 * newest version of a key wins within a batch; a delete is written only
 * while no newer value exists; flush_all becomes a flush(mark); items are
 * clean after their commit; a failing commit is rolled back and retried
 * with its records kept and its items dirty, until the disk takes them;
 * a commit that finds the engine damaged (MCKV_ECORRUPT) is not retried
 * and nothing more is written; async durability writes everything by the
 * stop; a version overwritten
 * before the flusher wrote it is released before the commit of its batch;
 * a worker writes no eventfd while the flusher is awake, and one that
 * sleeps is woken by a write (its idle wait is made longer than the test's
 * guard). write() is wrapped to count the test thread's calls.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engines/kvstore.h"
#include "server/cache.h"
#include "server/engine_health.h"
#include "server/flusher.h"
#include "server/persist_priv.h"
#include "server/throttle.h"
#include "util/status.h"
#include <unistd.h>

#define MB ((size_t)1024 * 1024)
#define MAX_ROWS 64
#define WAIT_GUARD_S 60   /* a hang becomes a failure; not a timing */

/* On the flusher's thread cmocka's asserts must not be used (they jump
 * back into the test's thread): a broken expectation there aborts. */
#define THREAD_CHECK(cond) \
    do { if (!(cond)) { fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, \
                                #cond); abort(); } } while (0)

/* ------------------------------------------------------- the stub engine */

struct row {
    char key[64];
    char value[64];
    bool deleted;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct row rows[MAX_ROWS];   /* committed state */
    unsigned nrows;
    struct row txn[MAX_ROWS];    /* the open transaction's puts and dels */
    unsigned ntxn;
    uint64_t txn_flush;          /* flush mark of the open transaction */
    uint64_t flushed_below;      /* last committed flush mark */
    bool in_txn;
    unsigned commits, rollbacks, puts;
    unsigned fail_commits;       /* fail this many commits from now */
    int fail_status;             /* with this (0: MCKV_EIO) */
    bool gate;                   /* commits wait while true ... */
    unsigned gate_passes;        /* ... unless passes are left */
    unsigned commits_entered;    /* commit() calls so far */
    uint64_t committed_seq;      /* as the committed callback saw it */
} E = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static int stub_open(struct kvstore **kv, const struct kvstore_options *o)
{ (void)o; *kv = (struct kvstore *)&E; return MCKV_OK; }
static void stub_close(struct kvstore *kv) { (void)kv; }

static int
stub_begin(struct kvstore *kv)
{
    (void)kv;
    pthread_mutex_lock(&E.lock);
    E.in_txn = true;
    E.ntxn = 0;
    E.txn_flush = 0;
    pthread_mutex_unlock(&E.lock);
    return MCKV_OK;
}

static int
txn_add(const char *key, uint8_t nkey, const char *value, uint32_t vlen,
        bool deleted)
{
    pthread_mutex_lock(&E.lock);
    THREAD_CHECK(E.in_txn);
    THREAD_CHECK(E.ntxn < MAX_ROWS);
    struct row *r = &E.txn[E.ntxn++];
    memset(r, 0, sizeof(*r));
    memcpy(r->key, key, nkey < 63 ? nkey : 63);
    if (value != NULL)
        memcpy(r->value, value, vlen < 63 ? vlen : 63);
    r->deleted = deleted;
    pthread_mutex_unlock(&E.lock);
    return MCKV_OK;
}

static int
stub_put(struct kvstore *kv, const struct kvstore_record *rec)
{
    (void)kv;
    return txn_add(rec->key, rec->nkey, rec->value, rec->vlen, false);
}

static int
stub_del(struct kvstore *kv, const char *key, uint8_t nkey)
{
    (void)kv;
    return txn_add(key, nkey, NULL, 0, true);
}

static int
stub_flush(struct kvstore *kv, uint64_t cas_below)
{
    (void)kv;
    pthread_mutex_lock(&E.lock);
    E.txn_flush = cas_below;
    pthread_mutex_unlock(&E.lock);
    return MCKV_OK;
}

static int stub_set_meta(struct kvstore *kv, const char *n, int64_t v)
{ (void)kv; (void)n; (void)v; return MCKV_OK; }

static struct row *
find_row(const char *key)
{
    for (unsigned i = 0; i < E.nrows; i++)
        if (strcmp(E.rows[i].key, key) == 0)
            return &E.rows[i];
    return NULL;
}

static int
stub_commit(struct kvstore *kv)
{
    (void)kv;
    pthread_mutex_lock(&E.lock);
    E.commits_entered++;
    pthread_cond_broadcast(&E.cond);
    while (E.gate && E.gate_passes == 0)
        pthread_cond_wait(&E.cond, &E.lock);
    if (E.gate)
        E.gate_passes--;
    if (E.fail_commits > 0) {
        E.fail_commits--;
        int status = E.fail_status != 0 ? E.fail_status : MCKV_EIO;
        pthread_mutex_unlock(&E.lock);
        return status;
    }
    if (E.txn_flush != 0) {
        E.flushed_below = E.txn_flush;
        E.nrows = 0;   /* every stored row is older than the mark here */
    }
    for (unsigned i = 0; i < E.ntxn; i++) {
        struct row *r = find_row(E.txn[i].key);
        if (r == NULL) {
            THREAD_CHECK(E.nrows < MAX_ROWS);
            r = &E.rows[E.nrows++];
        }
        *r = E.txn[i];
        if (!r->deleted)
            E.puts++;
    }
    E.in_txn = false;
    E.commits++;
    pthread_cond_broadcast(&E.cond);
    pthread_mutex_unlock(&E.lock);
    return MCKV_OK;
}

static int
stub_rollback(struct kvstore *kv)
{
    (void)kv;
    pthread_mutex_lock(&E.lock);
    E.in_txn = false;
    E.ntxn = 0;
    E.rollbacks++;
    pthread_cond_broadcast(&E.cond);
    pthread_mutex_unlock(&E.lock);
    return MCKV_OK;
}

static const char *stub_last_error(struct kvstore *kv)
{ (void)kv; return "stub: failing on purpose"; }

static const struct kvstore_ops stub_ops = {
    .api_version = KVSTORE_API_VERSION, .name = "stub", .persistent = true,
    .open = stub_open, .close = stub_close, .begin = stub_begin,
    .put = stub_put, .del = stub_del, .flush = stub_flush,
    .set_meta = stub_set_meta, .commit = stub_commit,
    .rollback = stub_rollback, .last_error = stub_last_error,
};

static const struct persist_engine engine = {
    .ops = &stub_ops, .path = "(stub)",
};

/* ------------------------------------------------------------ helpers */

/* flusher thread (sync durability): worker 0's committed seq advanced */
static void
on_committed(void *ctx, unsigned worker)
{
    (void)ctx;
    THREAD_CHECK(worker == 0);
    pthread_mutex_lock(&E.lock);
    E.committed_seq = flusher_committed_seq(0);
    pthread_cond_broadcast(&E.cond);
    pthread_mutex_unlock(&E.lock);
}

/* Waits until the committed callback has reported `seq`. */
static void
wait_committed(uint64_t seq)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WAIT_GUARD_S;
    pthread_mutex_lock(&E.lock);
    while (E.committed_seq < seq)
        assert_int_equal(pthread_cond_timedwait(&E.cond, &E.lock, &deadline), 0);
    pthread_mutex_unlock(&E.lock);
}

/* Waits until the stub has rolled back `n` transactions in all. */
static void
wait_rollbacks(unsigned n)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WAIT_GUARD_S;
    pthread_mutex_lock(&E.lock);
    while (E.rollbacks < n)
        assert_int_equal(pthread_cond_timedwait(&E.cond, &E.lock, &deadline), 0);
    pthread_mutex_unlock(&E.lock);
}

/* write() as the test thread (a worker) calls it: the eventfd wake-ups */
static _Thread_local unsigned my_writes;
ssize_t __real_write(int fd, const void *buf, size_t n);
ssize_t __wrap_write(int fd, const void *buf, size_t n);
ssize_t
__wrap_write(int fd, const void *buf, size_t n)
{
    my_writes++;
    return __real_write(fd, buf, n);
}

/* Waits until the stub's commit() has been entered `n` times in all. */
static void
wait_commits_entered(unsigned n)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WAIT_GUARD_S;
    pthread_mutex_lock(&E.lock);
    while (E.commits_entered < n)
        assert_int_equal(pthread_cond_timedwait(&E.cond, &E.lock, &deadline), 0);
    pthread_mutex_unlock(&E.lock);
}

/* Commits wait (closed) or go (open); `passes` lets that many through. */
static void
gate(bool closed, unsigned passes)
{
    pthread_mutex_lock(&E.lock);
    E.gate = closed;
    E.gate_passes = passes;
    pthread_cond_broadcast(&E.cond);
    pthread_mutex_unlock(&E.lock);
}

static void
start_with(bool sync, uint32_t flush_interval_ms)
{
    pthread_mutex_lock(&E.lock);
    E.nrows = E.ntxn = 0;
    E.gate = false;
    E.gate_passes = E.commits_entered = 0;
    E.commits = E.rollbacks = E.puts = E.fail_commits = 0;
    E.fail_status = 0;
    E.committed_seq = 0;
    E.flushed_below = 0;
    pthread_mutex_unlock(&E.lock);
    struct cache_options co = {
        .memory_limit = 64 * MB, .item_size_max = MB, .cas_enabled = true,
        .persistent = true, .on_change = flusher_queue_change,
    };
    assert_int_equal(cache_setup(&co), 0);
    engine_health_setup("(stub)", NULL);   /* not damaged */
    struct flusher_options fo = {
        .engine = &engine, .kv = (struct kvstore *)&E, .nworkers = 1,
        .batch_max = 1000, .sync = sync, .flush_interval_ms = flush_interval_ms,
        .soft_bytes = 16 * MB, .hard_bytes = 32 * MB,
        .committed = on_committed,
    };
    char err[128];
    assert_int_equal(flusher_setup(&fo, err, sizeof(err)), 0);
    flusher_bind_worker(0);
}

static void
start(bool sync)
{
    start_with(sync, 20);
}

static void
run(void)
{
    char err[128];
    assert_int_equal(flusher_start(err, sizeof(err)), 0);
}

static void
stop(void)
{
    flusher_stop();
    flusher_teardown();
    cache_teardown();
}

static void
set(const char *key, const char *value)
{
    bool too_large;
    struct item *it = cache_item_alloc(key, (uint8_t)strlen(key), 0, 0,
                                       (uint32_t)strlen(value), &too_large);
    assert_non_null(it);
    memcpy(item_value(it), value, strlen(value));
    uint64_t cas;
    assert_int_equal(cache_store(it, CACHE_SET, 0, &cas), CACHE_STORED);
    cache_item_release(it);
}

/* The committed row of key, NULL when none (or deleted: *deleted). */
static const char *
row_value(const char *key, bool *deleted)
{
    pthread_mutex_lock(&E.lock);
    struct row *r = find_row(key);
    pthread_mutex_unlock(&E.lock);
    if (deleted != NULL)
        *deleted = r != NULL && r->deleted;
    return r != NULL && !r->deleted ? r->value : NULL;
}

static uint16_t
dirty_of(const char *key)
{
    enum cache_miss why;
    struct item *it = cache_get(key, (uint8_t)strlen(key), &why);
    assert_non_null(it);
    uint16_t d = it->dirty;   /* the flusher is idle: no race */
    cache_item_release(it);
    return d;
}

/* ------------------------------------------------------------ the tests */

static void
test_writes_commit_and_seq_advances(void **state)
{
    (void)state;
    start(true);
    run();
    set("a", "1");
    assert_int_equal(flusher_take_write_seq(), 1);
    assert_int_equal(flusher_take_write_seq(), 0);   /* taken once */
    set("b", "2");
    set("c", "3");
    uint64_t seq = flusher_take_write_seq();
    assert_int_equal(seq, 3);
    assert_int_equal(flusher_queued_seq(0), 3);
    wait_committed(seq);
    assert_true(flusher_committed_seq(0) >= seq);
    assert_string_equal(row_value("a", NULL), "1");
    assert_string_equal(row_value("b", NULL), "2");
    assert_string_equal(row_value("c", NULL), "3");
    assert_int_equal(dirty_of("a"), 0);
    struct flusher_counters fc;
    flusher_counters(&fc);
    assert_int_equal(fc.items_persisted, 3);   /* the first test */
    assert_int_equal(fc.dirty_items, 0);
    assert_int_equal(fc.dirty_bytes, 0);
    assert_int_equal(fc.queue_depth, 0);
    assert_true(fc.commits >= 1);
    stop();
}

static void
test_newest_version_wins(void **state)
{
    (void)state;
    start(true);
    /* queued before the thread runs: one batch holds both versions */
    set("k", "old");
    set("k", "new");
    set("gone", "x");
    assert_int_equal(cache_delete("gone", 4, 0), CACHE_DELETED);
    set("back", "x");
    assert_int_equal(cache_delete("back", 4, 0), CACHE_DELETED);
    set("back", "again");   /* a newer value: the delete is not written */
    uint64_t seq = flusher_take_write_seq();
    run();
    wait_committed(seq);
    pthread_mutex_lock(&E.lock);
    unsigned puts = E.puts;
    pthread_mutex_unlock(&E.lock);
    assert_string_equal(row_value("k", NULL), "new");
    assert_string_equal(row_value("back", NULL), "again");
    bool deleted = false;
    assert_null(row_value("gone", &deleted));
    /* "old" and the first "x" of each key were replaced: not written */
    assert_int_equal(puts, 2);
    stop();
}

static void
test_flush_all_becomes_a_mark(void **state)
{
    (void)state;
    start(true);
    run();
    set("a", "1");
    wait_committed(flusher_take_write_seq());
    uint64_t mark = cache_cas_high() + 1;
    cache_flush(cache_now());
    set("b", "2");   /* after the flush: kept */
    wait_committed(flusher_take_write_seq());
    pthread_mutex_lock(&E.lock);
    uint64_t below = E.flushed_below;
    pthread_mutex_unlock(&E.lock);
    assert_true(below >= mark - 1 && below <= mark);
    assert_null(row_value("a", NULL));
    assert_string_equal(row_value("b", NULL), "2");
    stop();
}

static void
test_failed_commit_is_retried(void **state)
{
    (void)state;
    start(true);
    struct flusher_counters fc;
    flusher_counters(&fc);
    uint64_t errors_before = fc.engine_errors;   /* counters live on */
    pthread_mutex_lock(&E.lock);
    E.fail_commits = 2;
    pthread_mutex_unlock(&E.lock);
    run();
    set("a", "1");
    uint64_t seq = flusher_take_write_seq();
    wait_rollbacks(1);
    /* not on disk yet: still dirty, still counted, not committed */
    flusher_counters(&fc);
    assert_int_equal(fc.dirty_items, 1);
    assert_true(fc.engine_errors >= errors_before + 1);
    assert_true(flusher_committed_seq(0) < seq);
    wait_committed(seq);   /* the third attempt (50 + 100 ms later) */
    flusher_counters(&fc);
    assert_int_equal(fc.engine_errors, errors_before + 2);
    assert_int_equal(fc.dirty_items, 0);
    assert_string_equal(row_value("a", NULL), "1");
    assert_int_equal(dirty_of("a"), 0);
    stop();
}

static void
test_damaged_engine_is_not_written(void **state)
{
    (void)state;
    start(true);
    pthread_mutex_lock(&E.lock);
    E.fail_commits = 1;
    E.fail_status = MCKV_ECORRUPT;
    pthread_mutex_unlock(&E.lock);
    run();
    set("a", "1");
    uint64_t seq = flusher_take_write_seq();
    wait_rollbacks(1);
    /* the flusher reports the status after write_batch() rolled back */
    for (int i = 0; i < WAIT_GUARD_S * 1000 && !engine_health_damaged(); i++) {
        struct timespec ms = { 0, 1000000 };
        nanosleep(&ms, NULL);
    }
    assert_true(engine_health_damaged());
    struct engine_health_counters h;
    engine_health_counters(&h);
    assert_int_equal(h.corrupt_errors, 1);
    /* held, not retried: the stub would take the next commit */
    set("b", "2");
    struct flusher_counters fc;
    flusher_counters(&fc);
    assert_int_equal(fc.dirty_items, 2);
    assert_int_equal(dirty_of("a"), 1);
    assert_true(flusher_committed_seq(0) < seq);
    /* the stop gives the held writes up at once, with no retry */
    flusher_stop();
    pthread_mutex_lock(&E.lock);
    unsigned commits = E.commits, rollbacks = E.rollbacks;
    pthread_mutex_unlock(&E.lock);
    assert_int_equal(commits, 0);
    assert_int_equal(rollbacks, 1);
    assert_null(row_value("a", NULL));
    assert_null(row_value("b", NULL));
    flusher_teardown();
    cache_teardown();
    engine_health_setup("(stub)", NULL);
}

static void
test_async_written_by_stop(void **state)
{
    (void)state;
    start(false);
    run();
    char key[16], value[16];
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "key%d", i);
        snprintf(value, sizeof(value), "v%d", i);
        set(key, value);
    }
    flusher_stop();   /* writes what is queued, then returns */
    pthread_mutex_lock(&E.lock);
    uint64_t reported = E.committed_seq;
    pthread_mutex_unlock(&E.lock);
    assert_int_equal(reported, 0);   /* async: no commit notices */
    assert_int_equal(flusher_committed_seq(0), 40);
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "key%d", i);
        snprintf(value, sizeof(value), "v%d", i);
        assert_string_equal(row_value(key, NULL), value);
    }
    flusher_teardown();
    cache_teardown();
}

static void
test_throttle_input(void **state)
{
    (void)state;
    start(true);
    set("a", "1");   /* the thread is not running: it stays queued */
    struct throttle_input in;
    flusher_throttle_input(&in);
    assert_int_equal(in.queue_len, 1);
    assert_true(in.queue_capacity > 1000);
    assert_true(in.dirty_bytes > 0);
    assert_int_equal(in.soft_bytes, 16 * MB);
    assert_int_equal(in.hard_bytes, 32 * MB);
    flusher_set_limits(MB, 2 * MB, 20);
    flusher_throttle_input(&in);
    assert_int_equal(in.soft_bytes, MB);
    run();
    stop();
}

/* A version overwritten before the flusher wrote it is dropped when the
 * flusher pops its successor: clean and released before the commit of
 * the batch they met in (it used to wait for that commit). */
static void
test_superseded_released_before_commit(void **state)
{
    (void)state;
    start(false);
    gate(true, 0);
    run();
    set("a", "1");
    wait_commits_entered(1);   /* the flusher is in the commit of [a] */
    set("x", "v0");
    enum cache_miss why;
    struct item *v0 = cache_get("x", 1, &why);
    assert_non_null(v0);
    set("x", "v1");
    gate(true, 1);             /* [a] commits; the next batch holds x */
    wait_commits_entered(2);
    /* the flusher wrote v0's state before it entered commit() (E.lock
     * orders it before our read) */
    assert_int_equal(v0->dirty, 0);
    struct flusher_counters fc;
    flusher_counters(&fc);
    assert_int_equal(fc.dirty_items, 1);   /* v1 alone */
    assert_true(fc.items_superseded >= 1);
    pthread_mutex_lock(&E.lock);
    assert_int_equal(E.ntxn, 1);           /* one put of x */
    assert_string_equal(E.txn[0].value, "v1");
    pthread_mutex_unlock(&E.lock);
    gate(false, 0);
    flusher_stop();
    assert_string_equal(row_value("x", NULL), "v1");
    cache_item_release(v0);
    flusher_teardown();
    cache_teardown();
}

/* While the flusher is awake (here: in a commit) a write costs the worker
 * no system call: the flusher looks at the rings by itself. */
static void
test_awake_flusher_costs_no_wakeup(void **state)
{
    (void)state;
    start(false);
    gate(true, 0);
    run();
    set("a", "1");
    wait_commits_entered(1);
    unsigned before = my_writes;
    set("b", "2");
    set("c", "3");
    assert_int_equal(my_writes - before, 0);
    gate(false, 0);
    flusher_stop();
    assert_string_equal(row_value("b", NULL), "2");
    assert_string_equal(row_value("c", NULL), "3");
    flusher_teardown();
    cache_teardown();
}

/* A sleeping flusher is woken by the write itself, not by its timeout:
 * its idle wait here is ten minutes, past the test's guard. */
static void
test_sleeping_flusher_is_woken(void **state)
{
    (void)state;
    start_with(true, 600000);
    run();
    for (int i = 0; i < 3; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", i);
        set(key, "v");
        wait_committed(flusher_take_write_seq());
    }
    assert_string_equal(row_value("k2", NULL), "v");
    stop();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writes_commit_and_seq_advances),
        cmocka_unit_test(test_newest_version_wins),
        cmocka_unit_test(test_flush_all_becomes_a_mark),
        cmocka_unit_test(test_failed_commit_is_retried),
        cmocka_unit_test(test_async_written_by_stop),
        cmocka_unit_test(test_damaged_engine_is_not_written),
        cmocka_unit_test(test_throttle_input),
        cmocka_unit_test(test_superseded_released_before_commit),
        cmocka_unit_test(test_awake_flusher_costs_no_wakeup),
        cmocka_unit_test(test_sleeping_flusher_is_woken),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
