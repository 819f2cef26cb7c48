/*
 * test_worker.c: unit tests of server/worker.c, a worker thread as the
 * owner of its connections, with the persistence it talks to replaced
 * by fakes defined here (the persist_* functions worker.c calls; persist.c
 * is not linked). The worker runs for real: its thread, its event_base,
 * its ring from the "listener" (the test calls workers_dispatch()), the
 * real front ends and the cache. The test plays the listener, the clients
 * (socketpairs), the fetchers and the flusher: a completion is a record
 * the test queues, announced on the eventfd the worker watches.
 *
 * Checked: a dispatched socket becomes a served connection (and shows in
 * `stats conns`); a fetch carries the (worker, connection id) token and
 * its completion finds the connection by that id, resumes the parked
 * request and answers it; a completion for a connection that is gone
 * releases the value; durability = sync holds a reply until a commit
 * covers its write; a graceful stop answers what is buffered and closes
 * every connection.
 *
 * Waiting: for the worker's side effects on condition variables, for
 * replies with poll(2); each bounded by a guard that turns a hang into a
 * failure. The one wait for an absence (a held reply) is 50 ms.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/cache.h"
#include "server/config.h"
#include "server/fetcher.h"
#include "server/persist.h"
#include "server/process.h"
#include "server/stats.h"
#include "server/stats_prefix.h"
#include "server/worker.h"

#define MB ((size_t)1024 * 1024)
#define GUARD_MS 10000
#define QUEUE_MAX 8

/* ------------------------------------------------- fake persistence */

static pthread_mutex_t fk_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fk_cond = PTHREAD_COND_INITIALIZER;
static struct {
    int done_fd;                      /* the completion ring's notify fd */
    bool sync;                        /* durability = sync */
    struct fetch_result queue[QUEUE_MAX];
    unsigned nqueue;
    bool commit_advanced;             /* reported by the next drain */
    uint64_t committed;               /* the worker's committed seq */
    unsigned fetch_calls;
    unsigned fetch_worker;
    uint64_t fetch_conn_id;
    char fetch_key[64];
    uint64_t done_ids[32];            /* results the worker has taken */
    unsigned ndone;
    unsigned bound;                   /* persist_worker_bind calls */
} fk;
static _Thread_local uint64_t write_seq_pending;   /* the worker's thread */
static _Atomic uint64_t write_seq_next;

bool
persist_enabled(void)
{
    return true;
}

bool
persist_durability_sync(void)
{
    return fk.sync;   /* read at workers_start, before the thread */
}

void
persist_worker_bind(unsigned id)
{
    (void)id;
    pthread_mutex_lock(&fk_lock);
    fk.bound++;
    pthread_mutex_unlock(&fk_lock);
}

int
persist_completion_fd(unsigned worker)
{
    (void)worker;
    return fk.done_fd;
}

bool
persist_completions(unsigned worker, persist_fetched_fn fetched, void *ctx)
{
    (void)worker;
    uint64_t v;
    ssize_t n = read(fk.done_fd, &v, sizeof(v));
    (void)n;
    struct fetch_result q[QUEUE_MAX];
    pthread_mutex_lock(&fk_lock);
    unsigned nq = fk.nqueue;
    memcpy(q, fk.queue, nq * sizeof(q[0]));
    fk.nqueue = 0;
    bool advanced = fk.commit_advanced;
    fk.commit_advanced = false;
    pthread_mutex_unlock(&fk_lock);
    for (unsigned i = 0; i < nq; i++) {
        fetched(ctx, &q[i]);
        pthread_mutex_lock(&fk_lock);
        if (fk.ndone < 32)
            fk.done_ids[fk.ndone++] = q[i].conn_id;
        pthread_cond_broadcast(&fk_cond);
        pthread_mutex_unlock(&fk_lock);
    }
    return advanced;
}

enum persist_admit
persist_admit_write(uint32_t *delay_ms)
{
    (void)delay_ms;
    return PERSIST_ADMIT_OK;
}

uint64_t
persist_take_write_seq(void)
{
    uint64_t seq = write_seq_pending;
    write_seq_pending = 0;
    return seq;
}

uint64_t
persist_committed_seq(unsigned worker)
{
    (void)worker;
    pthread_mutex_lock(&fk_lock);
    uint64_t c = fk.committed;
    pthread_mutex_unlock(&fk_lock);
    return c;
}

bool
persist_fetch(unsigned worker, uint64_t conn_id, const char *key, uint8_t nkey,
              bool stream, bool optional)
{
    (void)stream;
    (void)optional;
    pthread_mutex_lock(&fk_lock);
    fk.fetch_calls++;
    fk.fetch_worker = worker;
    fk.fetch_conn_id = conn_id;
    snprintf(fk.fetch_key, sizeof(fk.fetch_key), "%.*s", (int)nkey, key);
    pthread_cond_broadcast(&fk_cond);
    pthread_mutex_unlock(&fk_lock);
    return true;
}

/* The cache's hook as persist_cache_hook would be: a put is "queued"
 * (its seq recorded on the writing thread) and, with no flusher, done. */
static void
on_change(const struct cache_change *ch)
{
    if (ch->kind != CACHE_CHANGE_PUT)
        return;
    write_seq_pending = atomic_fetch_add(&write_seq_next, 1) + 1;
    cache_item_clean(ch->item);
    cache_item_release(ch->item);
}

/* The test as a fetcher or the flusher: queues a completion. */
static void
post(const struct fetch_result *r, bool commit_advanced)
{
    pthread_mutex_lock(&fk_lock);
    if (r != NULL)
        fk.queue[fk.nqueue++] = *r;
    if (commit_advanced)
        fk.commit_advanced = true;
    pthread_mutex_unlock(&fk_lock);
    uint64_t one = 1;
    assert_int_equal(write(fk.done_fd, &one, sizeof(one)), sizeof(one));
}

/* Waits until *counter (guarded by fk_lock) reaches want. */
static void
wait_count(const unsigned *counter, unsigned want)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += GUARD_MS / 1000;
    pthread_mutex_lock(&fk_lock);
    int rc = 0;
    while (*counter < want && rc == 0)
        rc = pthread_cond_timedwait(&fk_cond, &fk_lock, &until);
    unsigned got = *counter;
    pthread_mutex_unlock(&fk_lock);
    assert_true(got >= want);
}

/* Waits until the worker has taken a result for connection id. */
static void
wait_done_id(uint64_t id)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += GUARD_MS / 1000;
    pthread_mutex_lock(&fk_lock);
    bool found = false;
    for (int rc = 0; !found && rc == 0;) {
        for (unsigned i = 0; i < fk.ndone && !found; i++)
            found = fk.done_ids[i] == id;
        if (!found)
            rc = pthread_cond_timedwait(&fk_cond, &fk_lock, &until);
    }
    pthread_mutex_unlock(&fk_lock);
    assert_true(found);
}

/* ------------------------------------------------------------ harness */

static struct config cfg;
static bool running;

static int
start_server(bool sync)
{
    struct cache_options co = {
        .memory_limit = 64 * MB, .item_size_max = MB, .cas_enabled = true,
        .persistent = true, .on_change = on_change,
    };
    if (cache_setup(&co) != 0 || config_init(&cfg) != 0)
        return -1;
    struct process_options po = { .flush_enabled = true, .cas_visible = true };
    process_setup(&po);
    stats_setup(&cfg);
    memset(&fk, 0, sizeof(fk));
    fk.sync = sync;
    fk.done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fk.done_fd < 0)
        return -1;
    cfg.threads = 1;
    if (workers_start(&cfg, 1) != 0)
        return -1;
    running = true;
    return 0;
}

static void
stop_server(void)
{
    if (!running)
        return;
    workers_stop();
    workers_free();
    running = false;
    close(fk.done_fd);
    config_deinit(&cfg);
    cache_teardown();
}

static int
group_setup_async(void **state)
{
    (void)state;
    return start_server(false);
}

static int
group_setup_sync(void **state)
{
    (void)state;
    return start_server(true);
}

static int
group_teardown(void **state)
{
    (void)state;
    stop_server();
    return 0;
}

/* A client: the listener's part (counted, handed to a worker). */
static int
client(void)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);   /* accept4's */
    atomic_fetch_add(&global_stats.curr_connections, 1);
    assert_true(workers_dispatch(sv[0], false));
    return sv[1];
}

static void
say(int fd, const char *s)
{
    assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* Reads until the replies end with `end` (or EOF, or the guard). */
static const char *
read_until(int fd, const char *end)
{
    static char buf[8192];
    size_t got = 0, elen = strlen(end);
    buf[0] = '\0';
    while (got < sizeof(buf) - 1) {
        if (got >= elen && memcmp(buf + got - elen, end, elen) == 0)
            break;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, GUARD_MS) != 1)
            break;
        ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = '\0';
    }
    return buf;
}

static bool
nothing_within_ms(int fd, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return poll(&p, 1, ms) == 0;
}

/* ---------------------------------------------------------------- tests */

static void
test_serves_connection(void **state)
{
    (void)state;
    int c = client();
    say(c, "set a 0 0 1\r\n1\r\nget a\r\n");
    assert_string_equal(read_until(c, "END\r\n"),
                        "STORED\r\nVALUE a 0 1\r\n1\r\nEND\r\n");
    say(c, "stats conns\r\n");
    const char *s = read_until(c, "END\r\n");
    assert_non_null(strstr(s, ":addr unix\r\n"));
    assert_non_null(strstr(s, ":state conn_"));
    pthread_mutex_lock(&workers[0].conns_lock);   /* the stats reader's lock */
    unsigned nconns = workers[0].nconns;
    pthread_mutex_unlock(&workers[0].conns_lock);
    assert_int_equal(nconns, 1);
    wait_count(&fk.bound, 1);   /* the thread bound itself to worker 0 */
    close(c);
}

/* A get of a key that may be on disk parks with the token (worker 0,
 * this connection's id); the completion, naming only that id, resumes
 * the request. */
static void
test_fetch_token(void **state)
{
    (void)state;
    cache_set_complete(false);   /* missing keys may be on disk */
    int c = client();
    say(c, "get k\r\nget after\r\n");
    wait_count(&fk.fetch_calls, 1);
    pthread_mutex_lock(&fk_lock);
    unsigned worker = fk.fetch_worker;
    uint64_t id = fk.fetch_conn_id;
    char key[64];
    snprintf(key, sizeof(key), "%s", fk.fetch_key);
    pthread_mutex_unlock(&fk_lock);
    assert_int_equal(worker, 0);
    assert_string_equal(key, "k");
    assert_true(id > 0);

    /* the fetcher: installs what it read, posts a reference */
    bool too_large;
    struct item *it = cache_item_alloc("k", 1, 3, 0, 4, &too_large);
    assert_non_null(it);
    memcpy(item_value(it), "disk", 4);
    it->cas = 77;
    assert_int_equal(cache_install(it), CACHE_STORED);
    struct fetch_result r = { .worker = 0, .conn_id = id, .item = it, .nkey = 1 };
    memcpy(r.key, "k", 1);
    /* "after" is missing too: its fetch finds nothing on disk */
    post(&r, false);
    wait_count(&fk.fetch_calls, 2);
    cache_install_absent("after", 5);
    struct fetch_result r2 = { .worker = 0, .conn_id = id, .nkey = 5 };
    memcpy(r2.key, "after", 5);
    post(&r2, false);
    assert_string_equal(read_until(c, "END\r\nEND\r\n"),
                        "VALUE k 3 4\r\ndisk\r\nEND\r\nEND\r\n");
    cache_set_complete(true);
    close(c);
}

/* A completion for an id the worker no longer (or never) has: the value's
 * reference is released, nothing else happens. */
static void
test_completion_for_closed_connection(void **state)
{
    (void)state;
    bool too_large;
    struct item *it = cache_item_alloc("gone", 4, 0, 0, 1, &too_large);
    assert_non_null(it);
    atomic_fetch_add(&it->refcount, 1);   /* ours, to watch the worker's */
    struct fetch_result r = { .worker = 0, .conn_id = 1u << 30, .item = it,
                              .nkey = 4 };
    memcpy(r.key, "gone", 4);
    post(&r, false);
    wait_done_id(1u << 30);
    assert_int_equal(atomic_load(&it->refcount), 1);
    cache_item_release(it);
}

/* Graceful stop: buffered requests are answered, then every connection
 * is closed and the worker exits. */
static void
test_graceful_stop(void **state)
{
    (void)state;
    int c1 = client();
    int c2 = client();
    say(c1, "set s 0 0 1\r\nx\r\n");
    assert_string_equal(read_until(c1, "STORED\r\n"), "STORED\r\n");
    say(c2, "get s\r\n");
    assert_string_equal(read_until(c2, "END\r\n"), "VALUE s 0 1\r\nx\r\nEND\r\n");
    stop_server();
    assert_string_equal(read_until(c1, "never"), "");   /* EOF */
    assert_string_equal(read_until(c2, "never"), "");
    assert_int_equal(atomic_load(&global_stats.curr_connections), 0);
    close(c1);
    close(c2);
}

/* durability = sync: the reply to a write waits until a commit covers
 * the write's seq; other connections are served meanwhile. */
static void
test_sync_reply_waits_for_commit(void **state)
{
    (void)state;
    int c = client();
    say(c, "set a 0 0 1\r\n1\r\n");
    assert_true(nothing_within_ms(c, 50));
    int other = client();
    say(other, "get zz\r\n");
    assert_string_equal(read_until(other, "END\r\n"), "END\r\n");
    /* a commit that does not reach the write: still held */
    pthread_mutex_lock(&fk_lock);
    fk.committed = 0;
    pthread_mutex_unlock(&fk_lock);
    post(NULL, true);
    assert_true(nothing_within_ms(c, 50));
    pthread_mutex_lock(&fk_lock);
    fk.committed = atomic_load(&write_seq_next);
    pthread_mutex_unlock(&fk_lock);
    post(NULL, true);
    assert_string_equal(read_until(c, "STORED\r\n"), "STORED\r\n");
    /* a read needs no commit */
    say(c, "get a\r\n");
    assert_string_equal(read_until(c, "END\r\n"), "VALUE a 0 1\r\n1\r\nEND\r\n");
    close(c);
    close(other);
}

int
main(void)
{
    const struct CMUnitTest async_tests[] = {
        cmocka_unit_test(test_serves_connection),
        cmocka_unit_test(test_fetch_token),
        cmocka_unit_test(test_completion_for_closed_connection),
        cmocka_unit_test(test_graceful_stop),
    };
    const struct CMUnitTest sync_tests[] = {
        cmocka_unit_test(test_sync_reply_waits_for_commit),
    };
    int failed = cmocka_run_group_tests_name("async", async_tests,
                                             group_setup_async, group_teardown);
    failed += cmocka_run_group_tests_name("sync", sync_tests, group_setup_sync,
                                          group_teardown);
    return failed;
}
