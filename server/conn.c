/*
 * conn.c: reading, request dispatch and gathered writes for one connection.
 *
 * A connection lives on one worker thread and is driven by two libevent
 * events: EV_READ while it accepts input, EV_WRITE while the socket refuses
 * output. Each wake-up reads once, runs the whole requests that are buffered
 * (pipelined requests are answered in order), and writes all queued replies
 * with one sendmsg(2) per IOV batch. See conn.h for the buffer model; the
 * queue of replies itself is conn_out.c's. A connection with a transport
 * (struct conn_io: TLS, server/conn_tls.c) reads and writes through it
 * instead, after its handshake, which waits on the events it asks for.
 *
 * A wake-up runs at most reqs_per_event requests (memcached -R, default
 * 20): a client with a deep pipeline then writes what it has, and the
 * connection yields (conn_yields) by making its read event active again,
 * so the worker's other connections run first. Until the buffered
 * requests are done no more is read: the buffer only grows for one
 * request too large for it, never for a backlog.
 */
#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "protocol/proto_text.h"
#include "server/cache.h"
#include "server/conn.h"
#include "server/conn_priv.h"
#include "server/stats.h"
#include "util/hist.h"
#include "util/log.h"

#define CONN_IOV_BATCH 256

static void conn_close(struct conn *c);

/* One request in 8 is timed for `stats timings` (per owner thread). */
static _Thread_local uint32_t timing_tick;

struct conn *
conn_create(struct conn_owner *o, int fd, uint64_t id)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        goto fail;
    c->fd = fd;
    c->id = id;
    c->owner = o;
    /* No buffer yet: each is taken when first needed (struct conn_spare).
     * The largest request: a retrieval line of many keys, or a storage
     * command with a value of item_size_max (binary: header + extras + key
     * + value). Anything announcing more is refused by the parsers. */
    c->rmax = (size_t)o->item_size_max + PROTO_TEXT_GET_LINE_MAX + 4096;
    c->peer_len = sizeof(c->peer);
    if (getpeername(fd, (struct sockaddr *)&c->peer, &c->peer_len) != 0)
        c->peer_len = 0;
    c->proto = (enum conn_proto)o->protocol;  /* -B; UNKNOWN: by 1st byte */
    c->rev = event_new(o->base, fd, EV_READ | EV_PERSIST, conn_event, c);
    c->wev = event_new(o->base, fd, EV_WRITE | EV_PERSIST, conn_event, c);
    if (c->rev == NULL || c->wev == NULL)
        goto fail;
    if (event_add(c->rev, NULL) != 0)
        goto fail;
    c->rev_on = true;
    c->last_cmd_time = cache_now();
    c->authed = !o->auth_sasl && !o->auth_ascii;
    return c;

fail:
    log_error_limited("worker %u: cannot set up a connection: out of memory", o->id);
    if (c != NULL) {
        if (c->rev != NULL)
            event_free(c->rev);
        if (c->wev != NULL)
            event_free(c->wev);
        free(c);
    }
    close(fd);
    atomic_fetch_sub(&global_stats.curr_connections, 1);
    return NULL;
}

static void
conn_free(struct conn *c)
{
    free(c->held);
    free(c->rbuf);
    free(c->wbuf);
    free(c->segs);
    free(c);
    atomic_fetch_sub(&global_stats.curr_connections, 1);
}

void
conn_destroy(struct conn **cp)
{
    struct conn *c = *cp;
    if (c == NULL)
        return;
    c->owner->ops->closed(c->owner, c);
    event_free(c->rev);
    event_free(c->wev);
    if (c->throttle_ev != NULL)
        event_free(c->throttle_ev);
    if (c->io != NULL)
        c->io->destroy(c);
    close(c->fd);
    for (unsigned i = c->seg_head; i < c->nsegs; i++)
        if (c->segs[i].it != NULL)
            cache_item_release(c->segs[i].it);
    c->nsegs = c->seg_head = 0;
    conn_release_held(c);
    *cp = NULL;
    /* A fetch still in flight finds no connection of this id when it
     * finishes: its owner releases the value. */
    conn_free(c);
}

void
conn_need_fetch(struct conn *c, const char *key, uint8_t nkey)
{
    if (c->park_state == CONN_PARK_FAIL)
        return;
    const char *why = NULL;
    if (c->fetch_rounds >= CONN_FETCH_ROUNDS_MAX) {
        why = "value evicted again before the request could use it";
    } else if (c->fetch_failed) {
        c->fetch_failed = false;
        why = "the disk read failed";
    } else if (!c->owner->ops->need_fetch(c->owner, c, key, nkey, 0)) {
        why = "the fetch queue is full";
    }
    if (why != NULL) {
        log_error_limited("connection %d: %.*s: giving up after %u fetch rounds: %s",
                          c->fd, (int)nkey, key, c->fetch_rounds, why);
        c->park_state = CONN_PARK_FAIL;
        return;
    }
    c->fetch_pending++;
    c->park_state = CONN_PARK_WAIT;
}

void
conn_resume(struct conn *c)
{
    conn_event(c->fd, 0, c);
}

void
conn_committed(struct conn *c)
{
    c->sync_waiting = false;
    c->sync_seq = 0;
    conn_resume(c);
}

static void
conn_throttle_done(int fd, short what, void *arg)
{
    struct conn *c = arg;
    (void)fd;
    (void)what;
    c->throttled = false;
    conn_resume(c);
}

bool
conn_admit_write(struct conn *c)
{
    uint32_t delay_ms = 0;
    if (!c->owner->ops->admit_write(c->owner, &delay_ms))
        return false;
    if (delay_ms > 0)
        conn_throttle(c, delay_ms);
    return true;
}

void
conn_throttle(struct conn *c, uint32_t ms)
{
    if (ms > c->throttle_ms)
        c->throttle_ms = ms;
}

static const char *
conn_state_name(int state)
{
    switch (state) {
    case CONN_STATE_READ: return "conn_read";
    case CONN_STATE_WRITE: return "conn_write";
    default: return "conn_closing";
    }
}

void
conn_stats(const struct conn *c, uint32_t now, stats_emit_fn emit, void *ctx)
{
    char name[64], value[INET6_ADDRSTRLEN + 16];
    char host[INET6_ADDRSTRLEN] = "unknown";
    unsigned port = 0;
    if (c->peer.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&c->peer;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        port = ntohs(a->sin_port);
    } else if (c->peer.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&c->peer;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        port = ntohs(a->sin6_port);
    }
    snprintf(name, sizeof(name), "%d:addr", c->fd);
    if (c->peer.ss_family == AF_UNIX) {   /* memcached -s */
        emit(ctx, name, "unix");
    } else {
        snprintf(value, sizeof(value), "tcp:%s:%u", host, port);
        emit(ctx, name, value);
    }
    snprintf(name, sizeof(name), "%d:state", c->fd);
    emit(ctx, name, conn_state_name(__atomic_load_n(&c->state, __ATOMIC_RELAXED)));
    snprintf(name, sizeof(name), "%d:secs_since_last_cmd", c->fd);
    uint32_t last = __atomic_load_n(&c->last_cmd_time, __ATOMIC_RELAXED);
    snprintf(value, sizeof(value), "%u", now >= last ? now - last : 0);
    emit(ctx, name, value);
}

/* b, if any, back to the spares when it has its initial size (`initial`),
 * else freed (it grew). Returns NULL, for the pointer that held it. */
static void *
conn_give(struct conn_spare *s, void *b, bool initial)
{
    if (b != NULL && initial)
        conn_spare_give(s, b);
    else
        free(b);
    return NULL;
}

/* The reply buffer and segment list, all written, back to the owner's
 * spares (or freed when they grew). */
static void
conn_give_wbuf(struct conn *c)
{
    c->wlen = 0;
    c->wbuf = conn_give(&c->owner->spare_w, c->wbuf, c->wsize == CONN_WBUF_INITIAL);
    c->wsize = 0;
    c->segs = conn_give(&c->owner->spare_s, c->segs, c->segs_cap == CONN_SEGS_INITIAL);
    c->segs_cap = 0;
}

/* Writes queued output. Returns 0 (all written or the socket is full) or -1
 * when the connection is broken. */
static int
conn_flush(struct conn *c)
{
    while (c->seg_head < c->nsegs) {
        struct iovec iov[CONN_IOV_BATCH];
        int niov = 0;
        for (unsigned i = c->seg_head; i < c->nsegs && niov < CONN_IOV_BATCH; i++) {
            struct out_seg *s = &c->segs[i];
            const char *base = s->it != NULL ? s->it->data : c->wbuf;
            uint32_t skip = i == c->seg_head ? c->seg_head_done : 0;
            iov[niov].iov_base = (void *)(base + s->off + skip);
            iov[niov].iov_len = s->len - skip;
            niov++;
        }
        struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)niov };
        ssize_t n = c->io != NULL ? c->io->writev(c, iov, niov)
                                  : sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -1;
        }
        STAT_ADD(c->owner->stats, bytes_written, n);
        c->out_pending -= (size_t)n;
        size_t left = (size_t)n;
        while (left > 0) {
            struct out_seg *s = &c->segs[c->seg_head];
            size_t rest = s->len - c->seg_head_done;
            if (left < rest) {
                c->seg_head_done += (uint32_t)left;
                break;
            }
            left -= rest;
            if (s->it != NULL)
                cache_item_release(s->it);
            c->seg_head++;
            c->seg_head_done = 0;
        }
    }
    c->nsegs = c->seg_head = 0;
    c->seg_head_done = 0;
    /* all written: the reply buffer goes back until the next reply */
    conn_give_wbuf(c);
    return 0;
}

/* ---- input ---- */

/* The read buffer, empty, back to the owner's spares (or freed when it
 * grew for a large request). */
static void
conn_give_rbuf(struct conn *c)
{
    c->rstart = c->rend = 0;
    c->rbuf = conn_give(&c->owner->spare_r, c->rbuf, c->rsize == CONN_RBUF_INITIAL);
    c->rsize = 0;
}

/* Reads once. Returns bytes read, 0 when nothing is available, -1 on EOF or
 * error, -2 when the buffer is full at its limit (request too large). */
static ssize_t
conn_read(struct conn *c)
{
    if (c->rstart > 0 && (c->rstart == c->rend || c->rend == c->rsize ||
                          c->rstart > c->rsize / 2)) {
        memmove(c->rbuf, c->rbuf + c->rstart, c->rend - c->rstart);
        c->rend -= c->rstart;
        c->rstart = 0;
    }
    if (c->rbuf == NULL) {
        c->rbuf = conn_spare_take(&c->owner->spare_r, CONN_RBUF_INITIAL);
        if (c->rbuf == NULL) {
            log_error_limited("worker %u: no memory for a read buffer",
                              c->owner->id);
            return -1;
        }
        c->rsize = CONN_RBUF_INITIAL;
    }
    if (c->rend == c->rsize) {
        if (c->rsize >= c->rmax)
            return -2;
        size_t size = c->rsize * 2;
        if (size > c->rmax)
            size = c->rmax;
        char *b = realloc(c->rbuf, size);
        if (b == NULL)
            return -2;
        c->rbuf = b;
        c->rsize = size;
    }
    for (;;) {
        ssize_t n = c->io != NULL
                    ? c->io->read(c, c->rbuf + c->rend, c->rsize - c->rend)
                    : read(c->fd, c->rbuf + c->rend, c->rsize - c->rend);
        if (n > 0) {
            c->rend += (size_t)n;
            STAT_ADD(c->owner->stats, bytes_read, n);
            return n;
        }
        if (n == 0)
            return -1;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        return -1;
    }
}

/* Runs the whole buffered requests while output stays under the mark, at
 * most reqs_per_event of them (all of them when the worker stops); sets
 * c->yielded when it stopped there with more bytes buffered. True when it
 * stopped at the mark with bytes still buffered: they run once the
 * output drains. */
static bool
conn_process_all(struct conn *c)
{
    uint32_t budget = c->owner->reqs_per_event;
    bool stopping = atomic_load_explicit(&c->owner->stopping,
                                         memory_order_relaxed);

    c->yielded = false;
    while (!c->close_after_write && c->out_pending < CONN_OUT_HIGH &&
           !conn_fetch_blocks(c)) {
        if (c->swallow > 0) {
            size_t avail = c->rend - c->rstart;
            size_t n = avail < c->swallow ? avail : (size_t)c->swallow;
            c->rstart += n;
            c->swallow -= n;
            if (c->swallow > 0)
                break;
        }
        if (c->rstart == c->rend)
            break;
        if (c->proto == CONN_PROTO_UNKNOWN)
            c->proto = (unsigned char)c->rbuf[c->rstart] == 0x80
                       ? CONN_PROTO_BIN : CONN_PROTO_TEXT;
        size_t need = 0;
        /* One request in 8 is timed for `stats timings`: two clock reads
         * per request would cost more than the rest of a small get. */
        bool timed = (timing_tick++ & 7) == 0;
        struct timespec t0;
        if (timed)
            clock_gettime(CLOCK_MONOTONIC, &t0);
        c->cmd_class = CMD_CLASS_OTHER;
        enum conn_req r = c->proto == CONN_PROTO_BIN
                                ? c->owner->front->bin(c, &need)
                                : c->owner->front->text(c, &need);
        if (r == CONN_REQ_NEED_MORE || r == CONN_REQ_PARKED)
            break;
        if (timed) {
            struct timespec t1;
            clock_gettime(CLOCK_MONOTONIC, &t1);
            int64_t us = (t1.tv_sec - t0.tv_sec) * 1000000 +
                         (t1.tv_nsec - t0.tv_nsec) / 1000;
            hist_record(&c->owner->timings[c->cmd_class], us > 0 ? (uint64_t)us : 0);
        }
        c->fetch_rounds = 0;
        if (c->nheld > 0)
            conn_release_held(c);
        /* durability = sync: the replies so far wait for the commit of
         * the write this request made, if it made one */
        if (c->owner->ops->write_seq != NULL) {
            uint64_t seq = c->owner->ops->write_seq(c->owner);
            if (seq != 0)
                c->sync_seq = seq;
        }
        __atomic_store_n(&c->last_cmd_time, cache_now(), __ATOMIC_RELAXED);
        if (r == CONN_REQ_CLOSE)
            c->close_after_write = true;
        if (--budget == 0 && !stopping && !c->close_after_write &&
            c->rstart < c->rend) {
            c->yielded = true;
            STAT_INCR(c->owner->stats, conn_yields);
            break;
        }
    }
    /* every byte read is consumed (a request in progress stays in the
     * buffer): the buffer goes back until the next read */
    if (c->rstart == c->rend)
        conn_give_rbuf(c);
    return c->out_pending >= CONN_OUT_HIGH && c->rstart < c->rend &&
           !c->close_after_write && !conn_fetch_blocks(c) && !c->yielded;
}

/* True while the replies wait for a sync write's commit. When they start
 * to (not while throttled: the timer decides first), the owner is asked to
 * wait for the commit, unless it happened already. */
static bool
conn_sync_held(struct conn *c)
{
    if (c->sync_seq == 0)
        return false;
    if (c->sync_waiting || c->throttled)
        return true;
    if (c->owner->ops->wait_commit(c->owner, c, c->sync_seq)) {
        c->sync_waiting = true;
        return true;
    }
    c->sync_seq = 0;   /* committed already */
    return false;
}

/* Replies are held while a sync write waits for its commit or while the
 * connection is throttled. */
static bool
conn_held(struct conn *c)
{
    return c->throttled || conn_sync_held(c);
}

static void
conn_set_events(struct conn *c)
{
    bool held = conn_held(c);
    /* While a dump or a multiget runs, its request is still first in the
     * buffer: what the client pipelines behind it waits in the socket,
     * not in rbuf. */
    bool want_read = !c->close_after_write && c->out_pending < CONN_OUT_HIGH &&
                     c->fetch_pending == 0 && !c->auth_pending && !held &&
                     c->dump.kind == 0 &&
                     !c->mget.active;
    bool want_write = (c->out_pending > 0 && !held) ||
                      (c->io_read_on_write && want_read);
    if (want_read != c->rev_on) {
        /* A yield activates rev even while it is not added (a dump or
         * a multiget in pieces runs on that activation). libevent's
         * event_add() does not insert an event that is active, so an
         * add while that activation waits, as when a fetch completes
         * first, would leave the socket unwatched for good: drop the
         * activation (conn_event() makes it again if still yielded). */
        if (want_read) {
            event_del(c->rev);
            event_add(c->rev, NULL);
        } else
            event_del(c->rev);
        c->rev_on = want_read;
    }
    if (want_write != c->wev_on) {
        if (want_write)
            event_add(c->wev, NULL);
        else
            event_del(c->wev);
        c->wev_on = want_write;
    }
    __atomic_store_n(&c->state, want_write ? CONN_STATE_WRITE : CONN_STATE_READ,
                     __ATOMIC_RELAXED);
}

static void
conn_close(struct conn *c)
{
    conn_destroy(&c);
}

/* The transport's handshake, before anything is read or written: true
 * when the event is over (closed, or waiting for the socket); false when
 * it is done and the event goes on, as a read (input may be buffered). */
static bool
conn_io_handshake(struct conn *c, short *what)
{
    /* a server stopping does not wait for a handshake: no request yet */
    int wait = atomic_load_explicit(&c->owner->stopping, memory_order_relaxed)
               ? -1 : c->io->handshake(c);
    if (wait < 0) {
        conn_close(c);
        return true;
    }
    if (wait == 0) {
        c->io_ready = true;
        if (!c->rev_on && event_add(c->rev, NULL) == 0)
            c->rev_on = true;
        *what |= EV_READ;
        return false;
    }
    bool on_read = (wait & EV_READ) != 0, on_write = (wait & EV_WRITE) != 0;
    if (on_read != c->rev_on) {
        if (on_read)
            event_add(c->rev, NULL);
        else
            event_del(c->rev);
        c->rev_on = on_read;
    }
    if (on_write != c->wev_on) {
        if (on_write)
            event_add(c->wev, NULL);
        else
            event_del(c->wev);
        c->wev_on = on_write;
    }
    return true;
}

void
conn_event(int fd, short what, void *arg)
{
    struct conn *c = arg;
    (void)fd;
    bool eof = false;

    if (c->io != NULL && !c->io_ready && conn_io_handshake(c, &what))
        return;
    if (c->io_read_on_write && (what & EV_WRITE)) {
        c->io_read_on_write = false;
        what |= EV_READ;
    }
    /* after a yield, the buffered requests first */
    if ((what & EV_READ) && c->rev_on && !c->yielded) {
        ssize_t n = conn_read(c);
        if (n == -1)
            eof = true;
        else if (n == -2) {
            log_verbose("connection %d: request larger than %zu bytes, closing",
                        c->fd, c->rmax);
            conn_close(c);
            return;
        }
    }
    bool runnable = false;
    for (int round = 0; round < 2; round++) {
        bool held_back = !conn_held(c) && conn_process_all(c);
        if (c->throttle_ms > 0) {
            /* backpressure: this batch's replies wait for the timer */
            if (c->throttle_ev == NULL)
                c->throttle_ev = evtimer_new(c->owner->base, conn_throttle_done, c);
            if (c->throttle_ev != NULL) {
                struct timeval tv = { c->throttle_ms / 1000,
                                      (c->throttle_ms % 1000) * 1000 };
                evtimer_add(c->throttle_ev, &tv);
                c->throttled = true;
            }
            c->throttle_ms = 0;
        }
        if (conn_held(c)) {
            if (eof) {
                conn_close(c);
                return;
            }
            conn_set_events(c);
            return;
        }
        if (conn_flush(c) < 0) {
            conn_close(c);
            return;
        }
        /* Output drained: requests held back by the high mark run now. */
        runnable = held_back && c->out_pending == 0;
        if (!runnable)
            break;
    }
    /* Both rounds drained their output and whole requests are still held
     * back (big replies, a fast reader): no read or write event would
     * come for them, so come back as after a yield. */
    if (runnable)
        c->yielded = true;
    if (eof || (c->close_after_write && c->out_pending == 0) ||
        atomic_load_explicit(&c->owner->stopping, memory_order_relaxed)) {
        if (c->out_pending == 0 || eof) {
            conn_close(c);
            return;
        }
        c->close_after_write = true;
    }
    conn_set_events(c);
    /* yielded: run again once the worker's other ready events have run
     * (EV_READ: the read is skipped while c->yielded holds). Input the
     * transport decrypted already brings no socket event: the same. */
    if (c->yielded || (c->rev_on && c->io != NULL && c->io->pending(c)))
        event_active(c->rev, EV_READ, 0);
}

bool
conn_idle_kick(struct conn *c, uint32_t now, uint32_t timeout)
{
    uint32_t last = __atomic_load_n(&c->last_cmd_time, __ATOMIC_RELAXED);

    if (c->peer.ss_family == AF_UNIX || last > now || now - last <= timeout)
        return false;
    if (c->out_pending > 0 || c->fetch_pending > 0 || c->mget.active ||
        c->auth_pending ||
        c->sync_waiting ||
        c->throttled || c->yielded || c->close_after_write)
        return false;
    STAT_INCR(c->owner->stats, idle_kicks);
    log_verbose("connection %d: no request for %u s, closing (idle_timeout)",
                c->fd, now - last);
    conn_close(c);
    return true;
}
