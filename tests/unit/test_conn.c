/*
 * test_conn.c: unit tests of server/conn.c alone: one connection over a
 * socketpair, its own event_base, a fake owner and a fake table of front
 * ends, so what is checked is the connection's buffering, ordering and
 * flow control, not any protocol.
 *
 * The fake owner (struct conn_owner_ops) records every call: closed,
 * need_fetch (with the connection id as the token, as the worker does),
 * admit_write (admit, refuse or delay), write_seq and wait_commit. The
 * fake text front end speaks a line protocol of its own ("\n"-terminated
 * commands, see fake_text()) whose commands exercise one conn.c service
 * each; the fake binary front end answers 4-byte requests starting 0x80.
 * sendmsg(2) is wrapped at link time (-Wl,--wrap=sendmsg) to count the
 * write batches and, when asked, to accept only a few bytes per call and
 * refuse the next one (EAGAIN), which forces partial writes.
 *
 * The event loop is driven by hand: event_base_loop(EVLOOP_NONBLOCK) runs
 * callbacks until none is active, EVLOOP_ONCE | EVLOOP_NONBLOCK one round
 * of them, and EVLOOP_ONCE (which blocks) only where a timer must fire.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
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

#define MB ((size_t)1024 * 1024)
#define ITEM_SIZE_MAX (64 * 1024)
#define LOG_MAX 64

/* conn.c counts connections in stats.c's process-wide counters; this
 * test links conn.c without the stats renderer, so it owns them. */
struct global_stats global_stats;

/* ---------------------------------------------------------- the fakes */

enum admit_mode { ADMIT_YES, ADMIT_REFUSE, ADMIT_DELAY };

struct fake {
    struct conn_owner o;
    struct thread_stats ts;
    struct hist timings[CMD_CLASSES];
    struct conn *c;           /* the connection under test; NULL once closed */
    int peer;                 /* the client's end of the socketpair */

    unsigned closed_calls;
    struct conn *closed_last;

    unsigned fetch_calls;
    bool fetch_refuse;        /* need_fetch: the queue is full */
    uint64_t fetch_token;     /* the id the last fetch was asked for */
    char fetch_key[64];
    unsigned fetch_how;       /* the last fetch's enum conn_fetch_how */
    char asked[32][16];       /* every key asked for, in order */
    unsigned nasked;
    unsigned window_max;      /* most fetches in flight + held seen */

    enum admit_mode admit;
    uint32_t delay_ms;
    unsigned admit_calls;

    uint64_t seq_next;        /* write_seq hands out the seq of a write */
    uint64_t seq_pending;     /* set by a "write" request, taken by write_seq */
    unsigned wait_calls;
    uint64_t wait_seq;
    bool committed_already;   /* wait_commit: nothing to wait for */

    unsigned front_calls;     /* every call of a front end */
    unsigned nlog;            /* requests completed, in order */
    char log[LOG_MAX][32];
    size_t max_rsize;         /* the largest read buffer a front end saw */

    unsigned sendmsg_calls;
    size_t send_chunk;        /* > 0: accept this much, then refuse once */
    bool send_refuse_next;
};

static struct fake F;
static struct event_base *base;

ssize_t __real_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t __wrap_sendmsg(int fd, const struct msghdr *msg, int flags);

ssize_t
__wrap_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    F.sendmsg_calls++;
    if (F.send_chunk == 0)
        return __real_sendmsg(fd, msg, flags);
    if (F.send_refuse_next) {
        F.send_refuse_next = false;
        errno = EAGAIN;
        return -1;
    }
    F.send_refuse_next = true;
    /* the first send_chunk bytes of the message, possibly mid-iovec */
    struct iovec iov[8];
    struct msghdr m = { .msg_iov = iov };
    size_t left = F.send_chunk;
    for (size_t i = 0; i < msg->msg_iovlen && left > 0 && m.msg_iovlen < 8; i++) {
        size_t n = msg->msg_iov[i].iov_len < left ? msg->msg_iov[i].iov_len : left;
        iov[m.msg_iovlen].iov_base = msg->msg_iov[i].iov_base;
        iov[m.msg_iovlen].iov_len = n;
        m.msg_iovlen++;
        left -= n;
    }
    return __real_sendmsg(fd, &m, flags);
}

static struct fake *
fake_of(struct conn_owner *o)
{
    return (struct fake *)((char *)o - offsetof(struct fake, o));
}

static void
owner_closed(struct conn_owner *o, struct conn *c)
{
    struct fake *f = fake_of(o);
    f->closed_calls++;
    f->closed_last = c;
    if (f->c == c)
        f->c = NULL;
}

static bool
owner_need_fetch(struct conn_owner *o, struct conn *c, const char *key,
                 uint8_t nkey, unsigned how)
{
    struct fake *f = fake_of(o);
    f->fetch_calls++;
    if (f->fetch_refuse)
        return false;
    f->fetch_token = c->id;
    f->fetch_how = how;
    snprintf(f->fetch_key, sizeof(f->fetch_key), "%.*s", (int)nkey, key);
    if (f->nasked < 32)
        snprintf(f->asked[f->nasked++], sizeof(f->asked[0]), "%.*s",
                 (int)nkey, key);
    /* this fetch is counted by the caller after we return */
    if (c->fetch_pending + 1 + c->nheld > f->window_max)
        f->window_max = c->fetch_pending + 1 + c->nheld;
    return true;
}

static bool
owner_admit_write(struct conn_owner *o, uint32_t *delay_ms)
{
    struct fake *f = fake_of(o);
    f->admit_calls++;
    if (f->admit == ADMIT_REFUSE)
        return false;
    if (f->admit == ADMIT_DELAY)
        *delay_ms = f->delay_ms;
    return true;
}

static uint64_t
owner_write_seq(struct conn_owner *o)
{
    struct fake *f = fake_of(o);
    uint64_t seq = f->seq_pending;
    f->seq_pending = 0;
    return seq;
}

static bool
owner_wait_commit(struct conn_owner *o, struct conn *c, uint64_t seq)
{
    struct fake *f = fake_of(o);
    (void)c;
    f->wait_calls++;
    f->wait_seq = seq;
    return !f->committed_already;
}

static const struct conn_owner_ops ops_async = {
    .closed = owner_closed, .need_fetch = owner_need_fetch,
    .admit_write = owner_admit_write, .write_seq = NULL,
    .wait_commit = owner_wait_commit,
};

static const struct conn_owner_ops ops_sync = {
    .closed = owner_closed, .need_fetch = owner_need_fetch,
    .admit_write = owner_admit_write, .write_seq = owner_write_seq,
    .wait_commit = owner_wait_commit,
};

static void
log_req(struct conn *c, const char *what, size_t n)
{
    if (F.nlog < LOG_MAX)
        snprintf(F.log[F.nlog++], sizeof(F.log[0]), "%llu:%.*s",
                 (unsigned long long)c->id, (int)n, what);
}

static bool
word_is(const char *line, size_t n, const char *w)
{
    size_t wl = strlen(w);
    return n >= wl && memcmp(line, w, wl) == 0 && (n == wl || line[wl] == ' ');
}

static unsigned long
arg_num(const char *line, size_t n)
{
    const char *sp = memchr(line, ' ', n);
    return sp != NULL ? strtoul(sp + 1, NULL, 10) : 0;
}

/* The value of key k as this test stores it. */
static struct item *
make_item(const char *key, const char *value)
{
    bool too_large = false;
    struct item *it = cache_item_alloc(key, (uint8_t)strlen(key), 0, 0,
                                       (uint32_t)strlen(value), &too_large);
    assert_non_null(it);
    memcpy(item_value(it), value, strlen(value));
    return it;
}

/* "park K1 [K2]": asks for each key conn_fetched() cannot give yet; the
 * partial output it writes first must vanish when it parks. */
static enum conn_req
fake_park(struct conn *c, const char *line, size_t n, size_t start)
{
    struct conn_out_mark mark;
    conn_out_mark(c, &mark);
    conn_out_line(c, "PARTIAL");
    char keys[2][16];
    int nk = sscanf(line, "park %15s %15s", keys[0], keys[1]);
    char reply[64] = "VALUE";
    for (int i = 0; i < nk; i++) {
        struct item *it = conn_fetched(c, keys[i], (uint8_t)strlen(keys[i]));
        if (it == NULL) {
            conn_need_fetch(c, keys[i], (uint8_t)strlen(keys[i]));
            continue;
        }
        size_t len = strlen(reply);
        snprintf(reply + len, sizeof(reply) - len, " %.*s", (int)it->nbytes,
                 item_value(it));
        cache_item_release(it);
    }
    switch (conn_park_settle(c, &mark, start)) {
    case CONN_PARK_WAIT:
        return CONN_REQ_PARKED;
    case CONN_PARK_FAIL:
        conn_out_line(c, "FAIL");
        break;
    case CONN_PARK_NONE:
        conn_out_rewind(c, &mark);   /* the fake's own undo of PARTIAL */
        conn_out_line(c, reply);
        break;
    }
    log_req(c, line, n);
    return CONN_REQ_OK;
}

/*
 * "mget K...": a multiget in pieces, run as front_text.c's do_get runs
 * one: keys that start with 'd' are on disk (served only from
 * conn_fetched()), keys that start with 'B' have a value of 1 MiB of 'b'
 * queued as bytes, the others answer at once. Each key's reply is
 * "V:<key>[=<value>]", and "END" ends it (or "FAIL" when a key cannot be
 * had). Queued output is never undone.
 */
static enum conn_req
fake_mget(struct conn *c, const char *line, size_t n, size_t start)
{
    char keys[24][16];
    unsigned nk = 0;
    const char *p = line + 5, *end = line + n;
    while (p < end && nk < 24) {
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        size_t len = sp != NULL ? (size_t)(sp - p) : (size_t)(end - p);
        snprintf(keys[nk++], sizeof(keys[0]), "%.*s", (int)len, p);
        p += len + 1;
    }
    struct conn_mget *m = &c->mget;
    size_t i = m->active ? m->cursor : 0;
    char reply[64];
    for (; i < nk; i++) {
        const char *k = keys[i];
        uint8_t nkey = (uint8_t)strlen(k);
        if (c->out_pending >= CONN_OUT_HIGH)
            goto pause;
        if (k[0] == 'd') {
            struct item *it = conn_fetched(c, k, nkey);
            if (it == NULL) {
                if (conn_mget_wait(c, k, nkey, true, i < m->ahead)
                    != CONN_PARK_WAIT) {
                    conn_out_line(c, "FAIL");
                    conn_mget_end(c);
                    log_req(c, line, n);
                    return CONN_REQ_OK;
                }
                if (m->ahead < i + 1)
                    m->ahead = i + 1;
                goto pause;
            }
            snprintf(reply, sizeof(reply), "V:%s=%.*s", k, (int)it->nbytes,
                     item_value(it));
            cache_item_release(it);
        } else {
            conn_hold_drop(c, k, nkey);
            snprintf(reply, sizeof(reply), "V:%s", k);
            if (k[0] == 'B') {
                char *b = conn_out_reserve(c, MB);
                assert_non_null(b);
                memset(b, 'b', MB);
                conn_out_commit(c, MB);
            }
        }
        m->tries = 0;
        conn_out_line(c, reply);
    }
    conn_out_line(c, "END");
    conn_mget_end(c);
    log_req(c, line, n);
    return CONN_REQ_OK;

pause:
    m->active = true;
    m->cursor = i;
    for (size_t j = m->ahead > i ? m->ahead : i; j < nk; j++) {
        if (!conn_prefetch_room(c))
            break;
        if (keys[j][0] == 'd' &&
            !conn_prefetch(c, keys[j], (uint8_t)strlen(keys[j])))
            break;
        m->ahead = j + 1;
    }
    c->rstart = start;
    return CONN_REQ_PARKED;
}

/*
 * The fake text protocol, one "\n"-terminated command per request:
 *   data N      the line is followed by N bytes and "\n" (NEED_MORE until
 *               all are buffered): "DATA N"
 *   big N       a reply of N bytes 'b'
 *   item K      the value of K from the cache, as an item segment
 *   swallow N   the next N bytes are to be discarded: "SWALLOW"
 *   write       asks for write admission (and is a sync write): "STORED"
 *               or "REFUSED"
 *   park K...   see fake_park()
 *   mget K...   see fake_mget()
 *   quit        "BYE", then close
 *   other       echoed back as "R:<line>"
 */
static enum conn_req
fake_text(struct conn *c, size_t *need)
{
    const char *buf = c->rbuf + c->rstart;
    size_t len = c->rend - c->rstart;
    F.front_calls++;
    if (c->rsize > F.max_rsize)
        F.max_rsize = c->rsize;
    *need = 0;
    const char *nl = memchr(buf, '\n', len);
    if (nl == NULL)
        return CONN_REQ_NEED_MORE;
    size_t n = (size_t)(nl - buf);
    size_t start = c->rstart;
    char line[128];
    snprintf(line, sizeof(line), "%.*s", (int)(n < 127 ? n : 127), buf);

    if (word_is(buf, n, "data")) {
        size_t total = n + 1 + arg_num(buf, n) + 1;
        if (len < total) {
            *need = total;
            return CONN_REQ_NEED_MORE;
        }
        c->rstart += total;
        char reply[32];
        snprintf(reply, sizeof(reply), "DATA %lu", arg_num(buf, n));
        conn_out_line(c, reply);
        log_req(c, "data", 4);
        return CONN_REQ_OK;
    }
    if (word_is(buf, n, "park"))
        return c->rstart += n + 1, fake_park(c, line, n, start);
    if (word_is(buf, n, "mget"))
        return c->rstart += n + 1, fake_mget(c, line, n, start);
    c->rstart += n + 1;
    log_req(c, line, n);
    if (word_is(buf, n, "big")) {
        size_t size = arg_num(line, n);
        char *p = conn_out_reserve(c, size);
        assert_non_null(p);
        memset(p, 'b', size);
        conn_out_commit(c, size);
    } else if (word_is(buf, n, "item")) {
        enum cache_miss why;
        struct item *it = cache_get(line + 5, (uint8_t)strlen(line + 5), &why);
        assert_non_null(it);
        conn_out_item(c, it, item_value(it), (size_t)it->nbytes + 2);
        cache_item_release(it);
    } else if (word_is(buf, n, "swallow")) {
        c->swallow = arg_num(line, n);
        conn_out_line(c, "SWALLOW");
    } else if (word_is(buf, n, "write")) {
        if (conn_admit_write(c)) {
            F.seq_pending = ++F.seq_next;
            conn_out_line(c, "STORED");
        } else {
            conn_out_line(c, "REFUSED");
        }
    } else if (word_is(buf, n, "quit")) {
        conn_out_line(c, "BYE");
        return CONN_REQ_CLOSE;
    } else {
        char reply[140];
        snprintf(reply, sizeof(reply), "R:%s", line);
        conn_out_line(c, reply);
    }
    return CONN_REQ_OK;
}

static enum conn_req
fake_bin(struct conn *c, size_t *need)
{
    F.front_calls++;
    *need = 4;
    if (c->rend - c->rstart < 4)
        return CONN_REQ_NEED_MORE;
    c->rstart += 4;
    log_req(c, "bin", 3);
    conn_out_line(c, "BIN");
    return CONN_REQ_OK;
}

static const struct conn_front fronts = { fake_bin, fake_text };

/* ---------------------------------------------------------- helpers */

static int
setup(void **state)
{
    (void)state;
    struct cache_options co = {
        .memory_limit = 64 * MB, .item_size_max = ITEM_SIZE_MAX,
        .cas_enabled = true,
    };
    if (cache_setup(&co) != 0)
        return -1;
    memset(&F, 0, sizeof(F));
    F.peer = -1;
    base = event_base_new();
    if (base == NULL)
        return -1;
    F.o = (struct conn_owner){
        .front = &fronts, .ops = &ops_async, .base = base, .stats = &F.ts,
        .timings = F.timings, .item_size_max = ITEM_SIZE_MAX,
        .reqs_per_event = 20, .protocol = CONN_PROTO_UNKNOWN,
    };
    atomic_init(&F.o.stopping, false);
    atomic_store(&global_stats.curr_connections, 0);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    if (F.c != NULL)
        conn_destroy(&F.c);
    conn_owner_free_spares(&F.o);
    if (F.peer >= 0)
        close(F.peer);
    event_base_free(base);
    base = NULL;
    cache_teardown();
    return 0;
}

/* A connection as the listener and a worker would make it: counted, then
 * created on a non-blocking socket. Returns the client's end. */
static struct conn *
open_conn_id(uint64_t id, int *peer)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    atomic_fetch_add(&global_stats.curr_connections, 1);
    struct conn *c = conn_create(&F.o, sv[0], id);
    assert_non_null(c);
    *peer = sv[1];
    return c;
}

static void
open_conn(void)
{
    F.c = open_conn_id(1, &F.peer);
}

static void
peer_send(int fd, const void *p, size_t n)
{
    assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void
say(const char *s)
{
    peer_send(F.peer, s, strlen(s));
}

/* Runs whatever is ready, until nothing is (EVLOOP_NONBLOCK loops while
 * callbacks are active: a yield or a resume makes more ready). */
static void
pump(void)
{
    for (int i = 0; i < 4; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
}

/* One round of ready callbacks only. */
static void
step(void)
{
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
}

/* Everything the peer can read now (NUL-terminated in buf); -1 at EOF
 * with nothing read. */
static ssize_t
peer_read(int fd, char *buf, size_t size)
{
    size_t got = 0;
    for (;;) {
        ssize_t n = recv(fd, buf + got, size - 1 - got, MSG_DONTWAIT);
        if (n > 0) {
            got += (size_t)n;
            if (got == size - 1)
                break;
            continue;
        }
        if (n == 0 && got == 0) {
            buf[0] = '\0';
            return -1;
        }
        break;
    }
    buf[got] = '\0';
    return (ssize_t)got;
}

static void
expect_reply(const char *want)
{
    char buf[4096];
    ssize_t n = peer_read(F.peer, buf, sizeof(buf));
    assert_true(n >= 0);
    assert_string_equal(buf, want);
}

/* The other end closed (a close with unread input resets). */
static bool
peer_at_eof(int fd)
{
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

/* ---------------------------------------------------------- tests */

/* Pipelined requests are answered in order, all in one sendmsg. */
static void
test_pipeline_one_batch(void **state)
{
    (void)state;
    open_conn();
    say("a\nb\nc\n");
    pump();
    assert_int_equal(F.sendmsg_calls, 1);
    expect_reply("R:a\r\nR:b\r\nR:c\r\n");
    assert_int_equal(F.nlog, 3);
    assert_int_equal(F.ts.bytes_read, 6);
    assert_int_equal(F.ts.bytes_written, 15);
    assert_int_equal(F.c->state, CONN_STATE_READ);
}

/* A request split across reads runs once it is whole; a partial line
 * after whole ones waits in the buffer. */
static void
test_split_request(void **state)
{
    (void)state;
    open_conn();
    say("ec");
    pump();
    assert_int_equal(F.nlog, 0);
    expect_reply("");
    say("ho 1\nec");
    pump();
    expect_reply("R:echo 1\r\n");
    say("ho 2\n");
    pump();
    expect_reply("R:echo 2\r\n");
    /* a data request announcing its length, fed a byte at a time */
    const char *req = "data 5\nabcde\n";
    for (size_t i = 0; req[i] != '\0'; i++) {
        peer_send(F.peer, req + i, 1);
        pump();
        if (req[i + 1] != '\0')
            expect_reply("");
    }
    expect_reply("DATA 5\r\n");
    assert_int_equal(F.nlog, 3);
}

/* A connection holds its read buffer only while a request is in it, its
 * reply buffer and segment list while a reply is: they go back to the
 * owner's spares and the next request (or connection) takes them. Half a
 * request keeps the read buffer. */
static void
test_buffers_given_back(void **state)
{
    (void)state;
    open_conn();
    assert_null(F.c->rbuf);
    assert_null(F.c->wbuf);
    say("one\n");
    pump();
    expect_reply("R:one\r\n");
    assert_null(F.c->rbuf);
    assert_null(F.c->wbuf);
    assert_int_equal(F.o.spare_r.n, 1);
    assert_int_equal(F.o.spare_w.n, 1);
    say("two\n");
    pump();
    expect_reply("R:two\r\n");
    assert_int_equal(F.o.spare_r.n, 1);   /* taken and given back */
    /* half a request buffered: its buffer is kept */
    say("thr");
    pump();
    assert_non_null(F.c->rbuf);
    assert_int_equal(F.o.spare_r.n, 0);
    say("ee\n");
    pump();
    expect_reply("R:three\r\n");
    assert_null(F.c->rbuf);
    assert_null(F.c->segs);
    assert_int_equal(F.o.spare_s.n, 1);
    say("four\n");
    pump();
    expect_reply("R:four\r\n");
}

/* The read buffer grows to hold one large request and is freed once that
 * request is done. */
static void
test_rbuf_grows_and_shrinks(void **state)
{
    (void)state;
    open_conn();
    assert_null(F.c->rbuf);     /* taken at the first read */
    size_t size = 50000;
    char *req = malloc(size + 32);
    assert_non_null(req);
    int h = snprintf(req, 32, "data %zu\n", size);
    memset(req + h, 'x', size);
    req[h + size] = '\n';
    size_t total = (size_t)h + size + 1;
    size_t sent = 0;
    while (sent < total) {
        size_t n = total - sent < 8192 ? total - sent : 8192;
        peer_send(F.peer, req + sent, n);
        sent += n;
        pump();
    }
    free(req);
    expect_reply("DATA 50000\r\n");
    assert_true(F.max_rsize >= total);
    assert_true(F.max_rsize <= F.c->rmax);
    assert_null(F.c->rbuf);   /* the grown buffer is freed, not kept */
    assert_int_equal(F.o.spare_r.n, 0);
    /* and it still works */
    say("after\n");
    pump();
    expect_reply("R:after\r\n");
}

/* A request that would not fit in rmax closes the connection (once). */
static void
test_request_over_rmax_closes(void **state)
{
    (void)state;
    open_conn();
    size_t rmax = F.c->rmax;
    char chunk[8192];
    memset(chunk, 'y', sizeof(chunk));
    say("data 1000000\n");
    size_t sent = 0;
    for (int i = 0; i < 1000 && F.c != NULL; i++) {
        ssize_t n = send(F.peer, chunk, sizeof(chunk), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0)
            sent += (size_t)n;
        pump();
    }
    assert_null(F.c);
    assert_int_equal(F.closed_calls, 1);
    assert_true(sent >= rmax - 64);
    assert_true(peer_at_eof(F.peer));
    assert_int_equal(atomic_load(&global_stats.curr_connections), 0);
}

/* Past CONN_OUT_HIGH of pending output (a peer that does not read) the
 * connection stops running requests; once the peer drains, the rest run
 * and every reply arrives, in order. */
static void
test_out_high_stops_parsing(void **state)
{
    (void)state;
    open_conn();
    int big = 1 << 20;
    char req[64];
    for (int i = 0; i < 6; i++) {
        snprintf(req, sizeof(req), "big %d\n", big);
        say(req);
    }
    say("tail\n");
    pump();
    /* four replies of 1 MiB reach the mark: the rest wait unread */
    assert_int_equal(F.nlog, 4);
    assert_true(F.c->out_pending >= CONN_OUT_HIGH - (size_t)big);
    assert_int_equal(F.c->state, CONN_STATE_WRITE);
    pump();
    assert_int_equal(F.nlog, 4);

    size_t want = 6 * (size_t)big + strlen("R:tail\r\n");
    size_t got = 0;
    char *buf = malloc(1 << 16);
    assert_non_null(buf);
    char last[16] = "";
    for (int i = 0; i < 100000 && got < want; i++) {
        ssize_t n = recv(F.peer, buf, 1 << 16, MSG_DONTWAIT);
        if (n > 0) {
            /* every byte before the tail is the big replies' */
            for (ssize_t j = 0; j < n && got + (size_t)j < 6 * (size_t)big; j++)
                assert_int_equal(buf[j], 'b');
            if (got + (size_t)n > 6 * (size_t)big) {
                size_t off = 6 * (size_t)big > got ? 6 * (size_t)big - got : 0;
                size_t tn = (size_t)n - off;
                size_t have = strlen(last);
                memcpy(last + have, buf + off, tn < sizeof(last) - 1 - have
                       ? tn : sizeof(last) - 1 - have);
            }
            got += (size_t)n;
        }
        pump();
    }
    free(buf);
    assert_int_equal(got, want);
    assert_string_equal(last, "R:tail\r\n");
    assert_int_equal(F.nlog, 7);
    assert_int_equal(F.c->out_pending, 0);
    assert_int_equal(F.c->state, CONN_STATE_READ);
}

/* Bytes a front end refused (swallow) are discarded as they arrive,
 * across reads, without growing the buffer; what follows them runs. */
static void
test_swallow(void **state)
{
    (void)state;
    open_conn();
    say("swallow 40000\n");
    char junk[10000];
    memset(junk, 'j', sizeof(junk));
    for (int i = 0; i < 4; i++) {
        peer_send(F.peer, junk, i < 3 ? sizeof(junk) : sizeof(junk) - 5);
        pump();
    }
    expect_reply("SWALLOW\r\n");
    assert_int_equal(F.c->swallow, 5);
    /* the last 5 discarded bytes and a request in one read */
    say("jjjjjnext\n");
    pump();
    expect_reply("R:next\r\n");
    assert_int_equal(F.nlog, 2);
    assert_int_equal(F.max_rsize, CONN_RBUF_INITIAL);
    assert_int_equal(F.c->swallow, 0);
}

/* quit: its reply goes out, later pipelined requests do not run, the
 * connection closes and the owner hears of it once. */
static void
test_close_after_write(void **state)
{
    (void)state;
    open_conn();
    say("a\nquit\nb\n");
    pump();
    assert_null(F.c);
    assert_int_equal(F.closed_calls, 1);
    expect_reply("R:a\r\nBYE\r\n");
    assert_true(peer_at_eof(F.peer));
    assert_int_equal(F.nlog, 2);
    assert_int_equal(atomic_load(&global_stats.curr_connections), 0);
}

/* quit while the peer does not read: the connection stays until its
 * reply is written, then closes. */
static void
test_close_after_write_waits_for_output(void **state)
{
    (void)state;
    open_conn();
    F.send_chunk = 3;   /* 3 bytes, then EAGAIN, alternately */
    say("hello\nquit\n");
    pump();
    size_t got = 0;
    char buf[64];
    for (int i = 0; i < 100 && F.c != NULL; i++) {
        assert_true(F.c == NULL || F.c->close_after_write);
        pump();
    }
    assert_null(F.c);
    assert_int_equal(F.closed_calls, 1);
    got = (size_t)peer_read(F.peer, buf, sizeof(buf));
    assert_int_equal(got, strlen("R:hello\r\nBYE\r\n"));
    assert_string_equal(buf, "R:hello\r\nBYE\r\n");
    assert_true(F.sendmsg_calls > 4);
}

/* The peer hangs up: the buffered requests run, then the connection
 * closes and the owner is told once. */
static void
test_peer_eof(void **state)
{
    (void)state;
    open_conn();
    say("x\n");
    shutdown(F.peer, SHUT_WR);
    pump();
    assert_null(F.c);
    assert_int_equal(F.closed_calls, 1);
    expect_reply("R:x\r\n");
}

/* The owner destroys it (shutdown timeout) and once stopping is set the
 * connection closes when idle; either way closed is called once, and
 * conn_destroy NULLs the pointer. */
static void
test_owner_destroy_and_stopping(void **state)
{
    (void)state;
    open_conn();
    struct conn *c = F.c;
    conn_destroy(&F.c);
    assert_null(F.c);
    assert_int_equal(F.closed_calls, 1);
    assert_ptr_equal(F.closed_last, c);
    conn_destroy(&F.c);   /* NULL: nothing */
    assert_int_equal(F.closed_calls, 1);
    close(F.peer);

    open_conn();
    say("last\n");
    pump();
    expect_reply("R:last\r\n");
    atomic_store(&F.o.stopping, true);
    conn_event(F.c->fd, 0, F.c);
    assert_null(F.c);
    assert_int_equal(F.closed_calls, 2);
    assert_true(peer_at_eof(F.peer));
}

/* Partial writes (a few bytes per sendmsg, EAGAIN in between) resume in
 * the middle of a segment, for copied bytes and item slices alike. */
static void
test_partial_writes(void **state)
{
    (void)state;
    struct item *it = make_item("k", "0123456789");
    uint64_t cas;
    assert_int_equal(cache_store(it, CACHE_SET, 0, &cas), CACHE_STORED);
    open_conn();
    F.send_chunk = 4;
    say("one\nitem k\ntwo\n");
    for (int i = 0; i < 100; i++)
        pump();
    expect_reply("R:one\r\n0123456789\r\nR:two\r\n");
    assert_int_equal(F.c->out_pending, 0);
    assert_int_equal(atomic_load(&it->refcount), 2);   /* table + ours */
    cache_item_release(it);
}

/* An item slice is referenced until written; destroying the connection
 * with it unwritten releases it. */
static void
test_item_reference_until_written(void **state)
{
    (void)state;
    struct item *it = make_item("k", "value");
    uint64_t cas;
    assert_int_equal(cache_store(it, CACHE_SET, 0, &cas), CACHE_STORED);
    open_conn();
    F.send_chunk = 2;
    say("item k\n");
    step();
    assert_true(F.c->out_pending > 0);
    assert_int_equal(atomic_load(&it->refcount), 3);   /* table, ours, reply */
    conn_destroy(&F.c);
    assert_int_equal(atomic_load(&it->refcount), 2);
    cache_item_release(it);
}

/* Write admission: a refusal is the front end's to answer; a delay
 * holds the batch's replies (and further reads) until the timer fires. */
static void
test_admit_refuse_and_delay(void **state)
{
    (void)state;
    open_conn();
    F.admit = ADMIT_REFUSE;
    say("write\n");
    pump();
    expect_reply("REFUSED\r\n");

    F.admit = ADMIT_DELAY;
    F.delay_ms = 20;
    say("a\nwrite\nb\n");
    pump();
    assert_true(F.c->throttled);
    expect_reply("");   /* the whole batch waits */
    unsigned ran = F.nlog;
    say("c\n");
    pump();
    assert_int_equal(F.nlog, ran);   /* no reading while throttled */
    expect_reply("");
    for (int i = 0; i < 10 && F.c->throttled; i++)
        event_base_loop(base, EVLOOP_ONCE);
    assert_false(F.c->throttled);
    pump();
    expect_reply("R:a\r\nSTORED\r\nR:b\r\nR:c\r\n");
    assert_int_equal(F.admit_calls, 2);
}

/* durability = sync: the replies of a batch with writes wait for the
 * commit of its last write; the owner is asked once and resumes it with
 * conn_committed(). An already committed write holds nothing. */
static void
test_sync_wait_commit(void **state)
{
    (void)state;
    F.o.ops = &ops_sync;
    open_conn();
    say("write\nwrite\nr\n");
    pump();
    expect_reply("");
    assert_int_equal(F.wait_calls, 1);
    assert_int_equal(F.wait_seq, 2);
    assert_true(F.c->sync_waiting);
    say("after\n");
    pump();
    expect_reply("");
    assert_int_equal(F.nlog, 3);
    assert_int_equal(F.wait_calls, 1);
    conn_committed(F.c);
    pump();
    expect_reply("STORED\r\nSTORED\r\nR:r\r\nR:after\r\n");
    assert_false(F.c->sync_waiting);

    /* a batch without writes asks nothing */
    say("plain\n");
    pump();
    expect_reply("R:plain\r\n");
    assert_int_equal(F.wait_calls, 1);

    F.committed_already = true;
    say("write\n");
    pump();
    expect_reply("STORED\r\n");
    assert_int_equal(F.wait_calls, 2);
    assert_int_equal(F.c->sync_seq, 0);
}

/* A throttled sync write: the timer decides first, the commit wait is
 * asked for only once it fired. */
static void
test_throttle_then_sync(void **state)
{
    (void)state;
    F.o.ops = &ops_sync;
    F.admit = ADMIT_DELAY;
    F.delay_ms = 10;
    open_conn();
    say("write\n");
    pump();
    assert_true(F.c->throttled);
    assert_int_equal(F.wait_calls, 0);
    for (int i = 0; i < 10 && F.c->throttled; i++)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(F.wait_calls, 1);
    expect_reply("");
    conn_committed(F.c);
    expect_reply("STORED\r\n");
}

/* -R: after reqs_per_event requests the connection yields to the other
 * connections of its owner, and each one's replies stay in order. */
static void
test_yield_keeps_order(void **state)
{
    (void)state;
    F.o.reqs_per_event = 2;
    int pa, pb;
    struct conn *a = open_conn_id(1, &pa);
    struct conn *b = open_conn_id(2, &pb);
    peer_send(pa, "a1\na2\na3\na4\na5\n", 15);
    peer_send(pb, "b1\nb2\nb3\n", 9);
    pump();
    char buf[256];
    assert_true(peer_read(pa, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "R:a1\r\nR:a2\r\nR:a3\r\nR:a4\r\nR:a5\r\n");
    assert_true(peer_read(pb, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "R:b1\r\nR:b2\r\nR:b3\r\n");
    assert_int_equal(F.ts.conn_yields, 3);
    assert_int_equal(F.nlog, 8);
    /* the two connections took turns: neither ran all of its requests
     * before the other started */
    int first_b = -1, last_a = -1;
    for (unsigned i = 0; i < F.nlog; i++) {
        if (F.log[i][0] == '2' && first_b < 0)
            first_b = (int)i;
        if (F.log[i][0] == '1')
            last_a = (int)i;
    }
    assert_true(first_b < last_a);
    conn_destroy(&a);
    conn_destroy(&b);
    close(pa);
    close(pb);
    assert_int_equal(F.closed_calls, 2);
}

/* A request that needs a value from disk parks: its partial output is
 * undone, nothing after it runs; the owner, holding only the token (the
 * connection id), finds the connection and hands the value over with
 * conn_fetch_done(); the request runs again and the rest follow. */
static void
test_fetch_park_and_resume(void **state)
{
    (void)state;
    open_conn();
    F.c->id = 77;
    say("park k\nafter\n");
    pump();
    expect_reply("");
    assert_int_equal(F.fetch_calls, 1);
    assert_int_equal(F.fetch_token, 77);
    assert_string_equal(F.fetch_key, "k");
    assert_int_equal(F.c->fetch_pending, 1);
    assert_int_equal(F.nlog, 0);
    say("later\n");
    pump();
    assert_int_equal(F.nlog, 0);   /* parked: no reading either */

    /* the owner's completion: the token names the connection */
    struct conn *c = F.c->id == F.fetch_token ? F.c : NULL;
    assert_non_null(c);
    conn_fetch_done(c, make_item("k", "disk"), false);
    pump();
    expect_reply("VALUE disk\r\nR:after\r\nR:later\r\n");
    assert_int_equal(F.c->nheld, 0);   /* released once the request ran */
    assert_int_equal(F.fetch_calls, 1);
}

/* Two keys of one request fetched at once: it resumes after the last. */
static void
test_fetch_two_keys(void **state)
{
    (void)state;
    open_conn();
    say("park k1 k2\n");
    pump();
    assert_int_equal(F.fetch_calls, 2);
    assert_int_equal(F.c->fetch_pending, 2);
    conn_fetch_done(F.c, make_item("k1", "one"), false);
    pump();
    expect_reply("");
    conn_fetch_done(F.c, make_item("k2", "two"), false);
    pump();
    expect_reply("VALUE one two\r\n");
}

/* Giving up: a failed disk read, a full fetch queue, or a value lost
 * again CONN_FETCH_ROUNDS_MAX (4) times: the request answers FAIL. */
static void
test_fetch_give_up(void **state)
{
    (void)state;
    open_conn();
    say("park k\n");
    pump();
    conn_fetch_done(F.c, NULL, true);
    pump();
    expect_reply("FAIL\r\n");
    assert_int_equal(F.fetch_calls, 1);

    F.fetch_refuse = true;
    say("park k\n");
    pump();
    expect_reply("FAIL\r\n");
    assert_int_equal(F.fetch_calls, 2);

    F.fetch_refuse = false;
    say("park k\n");
    pump();
    for (int i = 0; i < 10 && F.c->fetch_pending > 0; i++) {
        conn_fetch_done(F.c, NULL, false);   /* found nothing usable */
        pump();
    }
    expect_reply("FAIL\r\n");
    assert_int_equal(F.fetch_calls, 2 + 4);
    say("ok\n");
    pump();
    expect_reply("R:ok\r\n");
}

/* The index of key in F.asked, or -1. */
static int
asked_at(const char *key)
{
    for (unsigned i = 0; i < F.nasked; i++)
        if (strcmp(F.asked[i], key) == 0)
            return (int)i;
    return -1;
}

/* A multiget in pieces: what it queued before the first key on disk goes
 * out while it waits (not undone); it fetches a window of the keys after
 * it (streaming, prefetches optional), never more than CONN_PREFETCH_MAX
 * in flight or held; completions in any order resume it, the replies stay
 * in key order, and the request behind it runs after its END. */
static void
test_mget_streams_in_order(void **state)
{
    (void)state;
    open_conn();
    say("mget a d1 b d2 d3 d4 d5 d6 d7 d8 d9 d10 d11 d12 c\nafter\n");
    pump();
    expect_reply("V:a\r\n");
    assert_true(F.c->mget.active);
    assert_int_equal(F.fetch_calls, CONN_PREFETCH_MAX);
    assert_string_equal(F.asked[0], "d1");
    assert_string_equal(F.asked[1], "d2");
    assert_int_equal(F.fetch_how, CONN_FETCH_STREAM | CONN_FETCH_OPTIONAL);

    /* d3 first: d1 still waits, nothing is sent, no new fetch (full) */
    conn_fetch_done(F.c, make_item("d3", "three"), false);
    pump();
    expect_reply("");
    assert_int_equal(F.fetch_calls, CONN_PREFETCH_MAX);
    assert_int_equal(F.c->nheld, 1);

    conn_fetch_done(F.c, make_item("d1", "one"), false);
    pump();
    expect_reply("V:d1=one\r\nV:b\r\n");
    /* d2 is next; one slot freed (d1 was queued): d9 is fetched ahead */
    assert_int_equal(asked_at("d9"), CONN_PREFETCH_MAX);
    assert_int_equal(F.nlog, 0);

    /* the rest, in the order they were asked for */
    const char *vals = "x";
    for (int round = 0; round < 40 && F.c->mget.active; round++) {
        for (unsigned i = 0; i < F.nasked; i++) {
            if (strcmp(F.asked[i], "d1") == 0 || strcmp(F.asked[i], "d3") == 0 ||
                F.asked[i][0] == '\0')
                continue;
            conn_fetch_done(F.c, make_item(F.asked[i], vals), false);
            F.asked[i][0] = '\0';   /* delivered */
            pump();
            break;
        }
    }
    char buf[4096];
    assert_true(peer_read(F.peer, buf, sizeof(buf)) > 0);
    assert_string_equal(buf,
        "V:d2=x\r\nV:d3=three\r\nV:d4=x\r\nV:d5=x\r\nV:d6=x\r\n"
        "V:d7=x\r\nV:d8=x\r\nV:d9=x\r\nV:d10=x\r\nV:d11=x\r\n"
        "V:d12=x\r\nV:c\r\nEND\r\nR:after\r\n");
    assert_false(F.c->mget.active);
    assert_int_equal(F.fetch_calls, 12);   /* each key once */
    assert_true(F.window_max <= CONN_PREFETCH_MAX);
    assert_int_equal(F.c->nheld, 0);
    assert_int_equal(F.c->held_bytes, 0);
    assert_int_equal(F.c->fetch_pending, 0);
}

/* A key that cannot be had ends the multiget after the values already
 * queued; fetches of it still in flight are dropped when they arrive,
 * and the next request waits for them, then runs. */
static void
test_mget_fail_keeps_values_before(void **state)
{
    (void)state;
    open_conn();
    say("mget a d1 d2\nafter\n");
    pump();
    expect_reply("V:a\r\n");
    assert_int_equal(F.fetch_calls, 2);
    conn_fetch_done(F.c, NULL, true);   /* d1: the disk read failed */
    pump();
    expect_reply("FAIL\r\n");
    assert_false(F.c->mget.active);
    assert_int_equal(F.c->fetch_orphans, 1);
    assert_int_equal(F.nlog, 1);        /* "after" waits for d2's fetch */
    conn_fetch_done(F.c, make_item("d2", "late"), false);
    pump();
    expect_reply("R:after\r\n");
    assert_int_equal(F.c->nheld, 0);    /* the orphan's value was dropped */
    assert_int_equal(F.c->fetch_orphans, 0);

    /* a value lost again CONN_FETCH_ROUNDS_MAX times */
    F.fetch_calls = 0;
    say("mget b d3\n");
    pump();
    expect_reply("V:b\r\n");
    for (int i = 0; i < 10 && F.c->fetch_pending > 0; i++) {
        conn_fetch_done(F.c, NULL, false);
        pump();
    }
    expect_reply("FAIL\r\n");
    assert_int_equal(F.fetch_calls, 4);

    /* a full queue: a prefetch refused is only not made; the key waited
     * for fails only when nothing of ours is in flight */
    F.fetch_refuse = true;
    say("mget d4 d5\n");
    pump();
    expect_reply("FAIL\r\n");
    F.fetch_refuse = false;
    say("mget d6 d7 d8\n");
    pump();
    assert_int_equal(F.c->fetch_pending, 3);
    F.fetch_refuse = true;
    conn_fetch_done(F.c, NULL, false);   /* d6 lost: asked again, refused */
    pump();
    assert_true(F.c->mget.active);       /* d7, d8 in flight: it waits */
    F.fetch_refuse = false;
    conn_fetch_done(F.c, make_item("d7", "7"), false);
    conn_fetch_done(F.c, make_item("d8", "8"), false);
    pump();
    conn_fetch_done(F.c, make_item("d6", "6"), false);
    pump();
    expect_reply("V:d6=6\r\nV:d7=7\r\nV:d8=8\r\nEND\r\n");
}

/* -R 1: a multiget that fails with a prefetch still in flight yields
 * (the next request is buffered) while it may not read; when that orphan
 * completes before the yield's activation has run, the request behind
 * runs at once and the connection must watch its socket again (libevent
 * does not insert an active event on event_add: found by fuzz_request). */
static void
test_yield_then_fetch_reads_again(void **state)
{
    (void)state;
    F.o.reqs_per_event = 1;
    open_conn();
    say("mget d1 d2\nA\n");
    pump();
    assert_int_equal(F.c->fetch_pending, 2);
    conn_fetch_done(F.c, NULL, true);    /* d1: the disk read failed */
    assert_true(F.c->yielded);
    conn_fetch_done(F.c, NULL, false);   /* d2, now an orphan, first */
    pump();
    expect_reply("FAIL\r\nR:A\r\n");
    say("B\n");
    pump();
    expect_reply("R:B\r\n");
}

/* A multiget whose values pass the output mark stops at it and goes on
 * once the client read: what it queues stays bounded by CONN_OUT_HIGH
 * plus one value, whatever the number of keys. */
static void
test_mget_waits_for_output(void **state)
{
    (void)state;
    open_conn();
    say("mget B1 B2 B3 B4 B5 B6 B7 B8 B9 B10\nafter\n");
    pump();
    /* stopped at the mark (the socket took some of it): the peer has
     * read nothing, and most keys are not answered yet */
    assert_true(F.c->mget.active);
    assert_true(F.c->mget.cursor < 7);   /* the fake counts keys */
    assert_true(F.c->out_pending >= CONN_OUT_HIGH - MB);
    assert_true(F.c->out_pending < CONN_OUT_HIGH + MB + 4096);
    pump();
    assert_true(F.c->out_pending < CONN_OUT_HIGH + MB + 4096);

    size_t want = 10 * (MB + strlen("V:Bn\r\n")) + 1 + strlen("END\r\nR:after\r\n");
    size_t got = 0, high = 0;
    char *buf = malloc(1 << 16);
    assert_non_null(buf);
    char tail[32] = "";
    for (int i = 0; i < 100000 && got < want; i++) {
        ssize_t r = recv(F.peer, buf, 1 << 16, MSG_DONTWAIT);
        if (r > 0) {
            got += (size_t)r;
            size_t keep = (size_t)r < sizeof(tail) - 1 ? (size_t)r : sizeof(tail) - 1;
            size_t have = strlen(tail);
            if (have + keep > sizeof(tail) - 1) {
                memmove(tail, tail + have + keep - (sizeof(tail) - 1),
                        sizeof(tail) - 1 - keep);
                have = sizeof(tail) - 1 - keep;
            }
            memcpy(tail + have, buf + r - keep, keep);
            tail[have + keep] = '\0';
        }
        pump();
        if (F.c->out_pending > high)
            high = F.c->out_pending;
    }
    free(buf);
    assert_int_equal(got, want);
    assert_true(high < CONN_OUT_HIGH + MB + 4096);
    assert_non_null(strstr(tail, "V:B10\r\nEND\r\nR:after\r\n"));
    assert_false(F.c->mget.active);
}

/* A connection closed while a fetch is in flight: the owner is told,
 * and its completion finds no connection by the token. */
static void
test_fetch_then_close(void **state)
{
    (void)state;
    open_conn();
    F.c->id = 5;
    say("park k\n");
    pump();
    assert_int_equal(F.c->fetch_pending, 1);
    close(F.peer);
    F.peer = -1;
    pump();
    /* parked: not reading, so the hang-up is not seen yet; the owner's
     * shutdown destroys it */
    if (F.c != NULL)
        conn_destroy(&F.c);
    assert_int_equal(F.closed_calls, 1);
    struct conn *found = F.c != NULL && F.c->id == F.fetch_token ? F.c : NULL;
    assert_null(found);
}

/* The first byte picks the front end (0x80: binary), unless the owner
 * forces one (-B). */
static void
test_protocol_by_first_byte(void **state)
{
    (void)state;
    open_conn();
    peer_send(F.peer, "\x80xyz\x80xyz", 8);
    pump();
    expect_reply("BIN\r\nBIN\r\n");
    assert_int_equal(F.c->proto, CONN_PROTO_BIN);
    conn_destroy(&F.c);
    close(F.peer);

    F.o.protocol = CONN_PROTO_TEXT;
    open_conn();
    peer_send(F.peer, "\x80z\n", 3);
    pump();
    expect_reply("R:\x80z\r\n");
}

struct stat_lines {
    char lines[8][96];
    unsigned n;
};

static void
stat_emit(void *ctx, const char *name, const char *value)
{
    struct stat_lines *s = ctx;
    if (s->n < 8)
        snprintf(s->lines[s->n++], sizeof(s->lines[0]), "%s %s", name, value);
}

/* `stats conns` lines; idle kicks spare UNIX sockets and busy TCP
 * connections, and close idle TCP ones. */
static void
test_stats_and_idle_kick(void **state)
{
    (void)state;
    open_conn();
    struct stat_lines s = { 0 };
    conn_stats(F.c, cache_now(), stat_emit, &s);
    assert_int_equal(s.n, 3);
    char want[96];
    snprintf(want, sizeof(want), "%d:addr unix", F.c->fd);
    assert_string_equal(s.lines[0], want);
    snprintf(want, sizeof(want), "%d:state conn_read", F.c->fd);
    assert_string_equal(s.lines[1], want);
    snprintf(want, sizeof(want), "%d:secs_since_last_cmd 0", F.c->fd);
    assert_string_equal(s.lines[2], want);
    assert_false(conn_idle_kick(F.c, cache_now() + 100, 10));
    conn_destroy(&F.c);
    close(F.peer);

    /* a TCP connection over loopback */
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0);
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
    F.peer = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(F.peer, (struct sockaddr *)&sa, sizeof(sa)), 0);
    int fd = accept4(l, NULL, NULL, SOCK_NONBLOCK);
    assert_true(fd >= 0);
    close(l);
    atomic_fetch_add(&global_stats.curr_connections, 1);
    F.c = conn_create(&F.o, fd, 9);
    assert_non_null(F.c);
    s.n = 0;
    conn_stats(F.c, cache_now(), stat_emit, &s);
    assert_int_equal(strncmp(strchr(s.lines[0], ' '), " tcp:127.0.0.1:", 15), 0);

    uint32_t now = cache_now();
    assert_false(conn_idle_kick(F.c, now + 5, 10));   /* not idle long enough */
    F.send_chunk = 1;
    say("busy\n");
    step();   /* a reply in flight */
    assert_true(F.c->out_pending > 0);
    assert_false(conn_idle_kick(F.c, now + 100, 10));
    F.send_chunk = 0;
    pump();
    assert_int_equal(F.c->out_pending, 0);
    assert_true(conn_idle_kick(F.c, cache_now() + 100, 10));
    assert_null(F.c);
    assert_int_equal(F.closed_calls, 2);
    assert_int_equal(F.ts.idle_kicks, 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pipeline_one_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rbuf_grows_and_shrinks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_buffers_given_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_over_rmax_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_high_stops_parsing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swallow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_after_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_after_write_waits_for_output, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_eof, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owner_destroy_and_stopping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_item_reference_until_written, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admit_refuse_and_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_wait_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_then_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yield_keeps_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_park_and_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_two_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_give_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_then_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mget_streams_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mget_fail_keeps_values_before, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mget_waits_for_output, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yield_then_fetch_reads_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_protocol_by_first_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_and_idle_kick, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
