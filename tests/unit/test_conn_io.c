/*
 * test_conn_io.c: server/conn.c over a transport (struct conn_io), as TLS
 * uses it (server/conn_tls.c), with a fake transport on a socketpair so
 * what is checked is conn.c's side of the contract:
 * - the handshake runs before anything is read and waits on the event it
 *   asks for (EV_WRITE, then EV_READ); requests sent during it are run
 *   once it is done;
 * - input the transport holds (pending) is read without a socket event;
 * - a write refused with EAGAIN is offered again starting with the same
 *   bytes, and replies of pipelined requests go out in one write;
 * - a handshake failure closes the connection; destroy is called once;
 * - a stopping owner closes a connection still in its handshake.
 * The fake front end answers each "\n"-terminated line X with "R:X\r\n".
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/event.h>

#include "server/cache.h"
#include "server/conn.h"
#include "server/stats.h"
#include "util/hist.h"
#include "tests/unit/owner_stub.h"

#define MB ((size_t)1024 * 1024)

/* conn.c counts connections in stats.c's counters; not linked here */
struct global_stats global_stats;

static struct {
    struct conn_owner o;
    struct thread_stats ts;
    struct hist timings[CMD_CLASSES];
    struct conn *c;
    int peer;
    unsigned closed;

    /* the fake transport */
    int hs_steps;            /* handshake: 2 = wants write, 1 = wants read */
    bool hs_fail;
    unsigned destroyed;
    char held[65536];        /* input read from the socket, not handed out */
    size_t held_len;
    size_t read_chunk;       /* the most one read hands out */
    unsigned writes;         /* writev calls that wrote */
    bool refuse_next_write;
    char refused[256];       /* the leading bytes of the refused offer */
    size_t refused_len;
    bool reoffer_ok;         /* the next offer started with them */
} F;

static struct event_base *base;

static void owner_closed(struct conn_owner *o, struct conn *c)
{
    (void)o;
    (void)c;
    F.closed++;
    F.c = NULL;
}

static const struct conn_owner_ops ops = {
    .closed = owner_closed, .need_fetch = owner_stub_need_fetch,
    .admit_write = owner_stub_admit_write, .write_seq = NULL,
    .wait_commit = owner_stub_wait_commit,
};

static enum conn_req
front_lines(struct conn *c, size_t *need)
{
    (void)need;
    const char *p = c->rbuf + c->rstart;
    const char *nl = memchr(p, '\n', c->rend - c->rstart);
    if (nl == NULL)
        return CONN_REQ_NEED_MORE;
    char reply[64];
    snprintf(reply, sizeof(reply), "R:%.*s", (int)(nl - p), p);
    conn_out_line(c, reply);
    c->rstart += (size_t)(nl - p) + 1;
    return CONN_REQ_OK;
}

static const struct conn_front fronts = { front_lines, front_lines };

/* ---- the fake transport ---- */

static int
io_handshake(struct conn *c)
{
    (void)c;
    if (F.hs_fail)
        return -1;
    if (F.hs_steps > 2) {    /* a client that stalls: still waiting */
        F.hs_steps--;
        return EV_READ;
    }
    if (F.hs_steps == 2) {
        F.hs_steps = 1;
        return EV_WRITE;
    }
    if (F.hs_steps == 1) {
        F.hs_steps = 0;
        return EV_READ;
    }
    return 0;
}

static ssize_t
io_read(struct conn *c, void *buf, size_t n)
{
    /* everything the socket has goes inside; at most read_chunk comes out */
    ssize_t got = read(c->fd, F.held + F.held_len, sizeof(F.held) - F.held_len);
    if (got == 0 && F.held_len == 0)
        return 0;
    if (got > 0)
        F.held_len += (size_t)got;
    if (F.held_len == 0) {
        errno = EAGAIN;
        return -1;
    }
    size_t out = F.held_len < n ? F.held_len : n;
    if (F.read_chunk > 0 && out > F.read_chunk)
        out = F.read_chunk;
    memcpy(buf, F.held, out);
    memmove(F.held, F.held + out, F.held_len - out);
    F.held_len -= out;
    return (ssize_t)out;
}

static ssize_t
io_writev(struct conn *c, const struct iovec *iov, int niov)
{
    char lead[256];
    size_t len = 0;
    for (int i = 0; i < niov && len < sizeof(lead); i++) {
        size_t take = iov[i].iov_len < sizeof(lead) - len
                      ? iov[i].iov_len : sizeof(lead) - len;
        memcpy(lead + len, iov[i].iov_base, take);
        len += take;
    }
    if (F.refuse_next_write) {
        F.refuse_next_write = false;
        memcpy(F.refused, lead, len);
        F.refused_len = len;
        errno = EAGAIN;
        return -1;
    }
    if (F.refused_len > 0) {
        F.reoffer_ok = len >= F.refused_len &&
                       memcmp(lead, F.refused, F.refused_len) == 0;
        F.refused_len = 0;
    }
    F.writes++;
    return writev(c->fd, iov, niov);
}

static bool
io_pending(const struct conn *c)
{
    (void)c;
    return F.held_len > 0;
}

static void
io_destroy(struct conn *c)
{
    (void)c;
    F.destroyed++;
}

static const struct conn_io fake_io = {
    .handshake = io_handshake, .read = io_read, .writev = io_writev,
    .pending = io_pending, .destroy = io_destroy,
};

/* ---- helpers ---- */

static int
setup(void **state)
{
    (void)state;
    struct cache_options co = { .memory_limit = 64 * MB,
                                .item_size_max = 64 * 1024 };
    if (cache_setup(&co) != 0)
        return -1;
    memset(&F, 0, sizeof(F));
    base = event_base_new();
    F.o = (struct conn_owner){
        .front = &fronts, .ops = &ops, .base = base, .stats = &F.ts,
        .timings = F.timings, .item_size_max = 64 * 1024,
        .reqs_per_event = 20, .protocol = CONN_PROTO_TEXT,
    };
    atomic_init(&F.o.stopping, false);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
        return -1;
    atomic_fetch_add(&global_stats.curr_connections, 1);
    F.c = conn_create(&F.o, sv[0], 1);
    F.peer = sv[1];
    if (F.c == NULL)
        return -1;
    F.c->io = &fake_io;
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    if (F.c != NULL)
        conn_destroy(&F.c);
    conn_owner_free_spares(&F.o);
    close(F.peer);
    event_base_free(base);
    cache_teardown();
    return 0;
}

static void
pump(void)
{
    for (int i = 0; i < 8; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
}

/* One round of ready callbacks only. */
static void
step(void)
{
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
}

static void
say(const char *s)
{
    assert_int_equal(send(F.peer, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

static void
expect(const char *want)
{
    char buf[8192];
    size_t got = 0;
    for (int i = 0; i < 100 && got < strlen(want); i++) {
        ssize_t n = recv(F.peer, buf + got, sizeof(buf) - 1 - got, MSG_DONTWAIT);
        if (n > 0)
            got += (size_t)n;
        else
            pump();
    }
    buf[got] = '\0';
    assert_string_equal(buf, want);
}

/* ---- tests ---- */

static void
test_handshake_waits_then_runs(void **state)
{
    (void)state;
    F.hs_steps = 2;
    say("a\nb\n");            /* sent while the handshake runs */
    step();
    /* first it wanted the socket writable: the write event, no reading */
    assert_false(F.c->io_ready);
    assert_int_equal(F.hs_steps, 1);
    assert_true(F.c->wev_on);
    assert_false(F.c->rev_on);
    step();                   /* writable: now it wants to read */
    assert_int_equal(F.hs_steps, 0);
    assert_true(F.c->rev_on);
    assert_false(F.c->wev_on);
    step();                   /* readable (a and b are there): done */
    assert_true(F.c->io_ready);
    expect("R:a\r\nR:b\r\n");
    assert_int_equal(F.writes, 1);   /* both replies in one write */
}

static void
test_pending_input_runs_without_event(void **state)
{
    (void)state;
    F.read_chunk = 4;         /* the transport hands out 4 bytes a read */
    say("x1\ny2\nz3\nw4\n");
    pump();
    expect("R:x1\r\nR:y2\r\nR:z3\r\nR:w4\r\n");
    assert_int_equal(F.held_len, 0);
}

static void
test_refused_write_offered_again(void **state)
{
    (void)state;
    F.refuse_next_write = true;
    say("one\ntwo\n");
    pump();
    expect("R:one\r\nR:two\r\n");
    assert_true(F.reoffer_ok);
    assert_int_equal(F.writes, 1);
}

static void
test_handshake_failure_closes(void **state)
{
    (void)state;
    F.hs_fail = true;
    say("a\n");
    pump();
    assert_null(F.c);
    assert_int_equal(F.closed, 1);
    assert_int_equal(F.destroyed, 1);
    assert_int_equal(atomic_load(&global_stats.curr_connections), 0);
}

/* A stopping owner closes a connection still in its handshake at once. */
static void
test_stopping_closes_handshake(void **state)
{
    (void)state;
    F.hs_steps = 10;          /* waits for input that never comes */
    conn_event(F.c->fd, 0, F.c);
    assert_non_null(F.c);
    assert_false(F.c->io_ready);
    atomic_store(&F.o.stopping, true);
    conn_event(F.c->fd, 0, F.c);   /* what the worker's stop does */
    assert_null(F.c);
    assert_int_equal(F.destroyed, 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_handshake_waits_then_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_input_runs_without_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_write_offered_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_failure_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stopping_closes_handshake, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
