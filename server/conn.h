/*
 * conn.h: one client connection, owned by exactly one worker thread.
 *
 * Input: a read buffer that holds at least one whole request (it grows to
 * the size the request announces, bounded by item_size_max, and shrinks back
 * when idle), plus a count of bytes to discard (`swallow`) for requests that
 * are refused without being buffered (a value over the size limit).
 *
 * Output: a list of segments, each either bytes copied into the connection's
 * write buffer or a slice of an item (the item is referenced until written,
 * so values are never copied). Replies of a whole batch of pipelined
 * requests go out in one sendmsg(2). When a client stops reading, output
 * past CONN_OUT_HIGH makes the connection stop parsing until it drains: no
 * unbounded buffering.
 *
 * Owner: a connection knows nothing of workers or persistence. What it
 * needs of the thread that runs it (its event loop, its counters, a
 * background fetch, write admission, waiting for a commit) it asks through
 * struct conn_owner and its table of functions; the owner answers with
 * conn_fetch_done() and conn_committed(). The owner names each connection
 * by an id of its own, so completions from other threads carry that id,
 * never a pointer to a connection.
 */
#ifndef MCKV_SERVER_CONN_H
#define MCKV_SERVER_CONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "server/stats.h"

struct conn;
struct conn_owner;
struct sasl_session;
struct event;
struct event_base;
struct hist;
struct item;
struct worker;

#define CONN_RBUF_INITIAL 16384   /* read buffer, taken at the first read */
#define CONN_WBUF_INITIAL 4096    /* reply buffer, at the first reply */
#define CONN_SEGS_INITIAL 32      /* reply segments, at the first reply */
#define CONN_OUT_HIGH (4u << 20)  /* stop parsing past this much output */
/* A multiget's prefetch window (struct conn_mget): values fetched ahead of
 * the key it answers, at most this many in flight or held, and no new one
 * while those held pass the byte bound. */
#define CONN_PREFETCH_MAX 8
#define CONN_PREFETCH_BYTES (4u << 20)

/* How a fetch is asked for (conn_owner_ops.need_fetch). */
enum conn_fetch_how {
    CONN_FETCH_STREAM = 1u,   /* for this reply only: see fetcher_submit() */
    CONN_FETCH_OPTIONAL = 2u, /* a prefetch: a refusal is not a failure */
};

/*
 * What a connection asks of its owner. Every function is called on the
 * owner's thread, from inside the connection's own event handling.
 */
struct conn_owner_ops {
    /* c is being destroyed: forget it (lists, id, a commit wait). */
    void (*closed)(struct conn_owner *o, struct conn *c);
    /* The current request needs key's value from disk: start a background
     * fetch and call conn_fetch_done(c, ...) once it finished. False when
     * no fetch could be started (no persistence, queue full). `how`:
     * enum conn_fetch_how bits. */
    bool (*need_fetch)(struct conn_owner *o, struct conn *c, const char *key,
                       uint8_t nkey, unsigned how);
    /* Write admission, before a write changes anything: true when the
     * write may go ahead, with *delay_ms > 0 when its reply is to be
     * delayed (backpressure); false past the hard limit. */
    bool (*admit_write)(struct conn_owner *o, uint32_t *delay_ms);
    /* Durability = sync only (NULL otherwise): the sequence number of the
     * write the request that just ran queued on this thread, 0 when it
     * queued none. */
    uint64_t (*write_seq)(struct conn_owner *o);
    /* c's replies wait until write `seq` is committed: false when it is
     * already (nothing to wait for); else true, and the owner calls
     * conn_committed(c) once it is. */
    bool (*wait_commit)(struct conn_owner *o, struct conn *c, uint64_t seq);
};

/* What a request run by a protocol front end came to. */
enum conn_req {
    CONN_REQ_OK,        /* one request handled, bytes consumed */
    CONN_REQ_NEED_MORE, /* a partial request: read more first */
    CONN_REQ_CLOSE,     /* close the connection after writing */
    CONN_REQ_PARKED,    /* waits for a background fetch (or, a multiget
                           answered in pieces, for its output to drain);
                           nothing consumed */
};

/* The protocol front ends, as a connection calls them: each handles one
 * request at c->rbuf + c->rstart (see server/front.h). The owner provides
 * them, so the connection includes no protocol code. */
struct conn_front {
    enum conn_req (*bin)(struct conn *c, size_t *need);
    enum conn_req (*text)(struct conn *c, size_t *need);
};

/* Buffers of their initial size that connections gave back, taken again
 * by the next connection to need one (the owner's thread only): a
 * connection holds a read buffer only while input is buffered, a reply
 * buffer and segment list only while output is queued, as memcached's
 * per-thread caches. An idle connection costs under 1 KB, not 21: many
 * idle clients take little memory outside memory_limit. */
#define CONN_SPARE_MAX 16
struct conn_spare {
    void *buf[CONN_SPARE_MAX];
    unsigned n;
};

/* A buffer of `size` bytes: a spare one, else malloc'ed (NULL: none). */
static inline void *
conn_spare_take(struct conn_spare *s, size_t size)
{
    return s->n > 0 ? s->buf[--s->n] : malloc(size);
}

/* Keeps b as a spare, or frees it when there are enough. */
static inline void
conn_spare_give(struct conn_spare *s, void *b)
{
    if (s->n < CONN_SPARE_MAX)
        s->buf[s->n++] = b;
    else
        free(b);
}

/* The owner as its connections see it; it outlives them. */
struct conn_owner {
    struct conn_spare spare_r;   /* CONN_RBUF_INITIAL bytes each */
    struct conn_spare spare_w;   /* CONN_WBUF_INITIAL bytes each */
    struct conn_spare spare_s;   /* CONN_SEGS_INITIAL segments each */
    const struct conn_front *front;
    const struct conn_owner_ops *ops;
    struct event_base *base;     /* where the connections' events run */
    struct thread_stats *stats;  /* the owner's counters (bytes_read, ...) */
    struct hist *timings;        /* CMD_CLASSES sampled request times */
    uint32_t item_size_max;      /* the largest value a request may carry */
    uint32_t reqs_per_event;     /* -R: requests run before yielding */
    uint8_t protocol;            /* -B: enum conn_proto, UNKNOWN = auto */
    bool auth_sasl;              /* -S: binary connections authenticate */
    bool auth_ascii;             /* -Y: text connections authenticate */
    unsigned id;                 /* names the owner in log lines */
    atomic_bool stopping;        /* set by another thread: close when idle */
};

enum conn_proto { CONN_PROTO_UNKNOWN = 0, CONN_PROTO_BIN, CONN_PROTO_TEXT };

/*
 * A request answered in several runs (lru_crawler metadump, stats
 * cachedump: server/front_dump.c), where it stands between them. While
 * `kind` is set the front end leaves the request unconsumed, so
 * conn_process_all() runs it again: at once while the output is under
 * CONN_OUT_HIGH, else once it drained. Plain data, zero when idle: a
 * connection closed midway has nothing more to free.
 */
struct conn_dump {
    uint8_t kind;             /* 0: none in progress; else the front end's */
    uint64_t cursor;          /* cache_walk_from()'s */
    uint64_t classes;         /* bit N: items of class id N are listed */
    uint32_t limit;           /* cachedump: most items listed (0: all) */
    uint32_t shown;           /* cachedump: items listed so far */
    size_t bytes;             /* cachedump: bytes written so far */
};

/*
 * A text multiget (get/gets/gat/gats) answered in pieces (server/
 * front_text.c do_get): where it stands between runs. The request stays
 * unconsumed in the read buffer until its END is queued; each run answers
 * keys from `cursor` on and stops at the first key that waits for a fetch,
 * or once the output passes CONN_OUT_HIGH, keeping what it queued. While
 * `active`, the connection reads nothing more and runs the request again
 * on every fetch completion and once its output drained. Plain data (the
 * values it fetched ahead are in the connection's hold).
 */
struct conn_mget {
    bool active;              /* the request at rstart is in progress */
    size_t cursor;            /* proto_text_next_key()'s: next key to answer */
    size_t ahead;             /* keys before this cursor were looked at
                                 for a prefetch (or fetched) */
    uint8_t tries;            /* fetches asked for the key at `cursor` */
};

/*
 * A transport other than the plain socket (TLS: server/conn_tls.c), set on
 * a connection right after conn_create(). A plain connection has none and
 * reads and writes the socket directly. Every function runs on the
 * owner's thread.
 */
struct conn_io {
    /* Before any read or write: 0 once the transport is ready (at once,
     * after a handshake); EV_READ or EV_WRITE: call again when the socket
     * is ready for that; -1: close the connection. */
    int (*handshake)(struct conn *c);
    /* As read(2): bytes, 0 at the end of the stream, -1 with errno
     * (EAGAIN: nothing now; io_read_on_write set: retry once writable). */
    ssize_t (*read)(struct conn *c, void *buf, size_t n);
    /* As sendmsg(2) over iov, returning how many leading bytes are gone;
     * -1 with errno EAGAIN when the socket is full. The bytes offered
     * after an EAGAIN start with the same bytes as before. */
    ssize_t (*writev)(struct conn *c, const struct iovec *iov, int niov);
    /* True while input sits decrypted inside the transport: no socket
     * event will come for it. */
    bool (*pending)(const struct conn *c);
    /* From conn_destroy(), before the socket closes. */
    void (*destroy)(struct conn *c);
};

struct out_seg {
    struct item *it;     /* NULL: bytes live in wbuf at `off` */
    uint32_t off;        /* offset into wbuf, or into it->data */
    uint32_t len;
};

struct conn {
    int fd;
    uint64_t id;              /* the owner's name for it (tokens) */
    struct conn_owner *owner;
    struct event *rev;        /* EV_READ, added while we accept input */
    struct event *wev;        /* EV_WRITE, added while output is blocked */
    bool rev_on, wev_on;
    const struct conn_io *io; /* NULL: the plain socket */
    void *io_state;           /* the transport's */
    bool io_ready;            /* its handshake is done */
    bool io_read_on_write;    /* a read waits for the socket to be writable */
    enum conn_proto proto;
    bool close_after_write;   /* quit, fatal error, shutdown */
    bool closing;

    /* input */
    char *rbuf;
    size_t rsize;             /* allocated */
    size_t rstart;            /* first unparsed byte */
    size_t rend;              /* one past the last byte read */
    uint64_t swallow;         /* bytes still to discard */
    size_t rmax;              /* the read buffer never grows past this */

    /* output */
    char *wbuf;
    size_t wsize, wlen;
    struct out_seg *segs;
    unsigned nsegs, segs_cap;
    unsigned seg_head;        /* first segment not fully written */
    uint32_t seg_head_done;   /* bytes of segs[seg_head] already written */
    size_t out_pending;       /* bytes queued, not yet written */
    struct conn_dump dump;    /* a dump answered over several runs */
    struct conn_mget mget;    /* a multiget answered over several runs */

    /* for `stats conns` (read by other threads with relaxed loads) */
    struct sockaddr_storage peer;
    socklen_t peer_len;
    uint32_t last_cmd_time;   /* rel_time_t */
    int state;                /* enum conn_state, relaxed atomic */

    /* the owner's bookkeeping: conn.c never touches these */
    struct conn *prev, *next;     /* the owner's list */
    struct conn *wait_next;       /* the owner's commit wait list */
    uint64_t wait_seq;            /* on that list for this seq (0: not) */

    /* the connection is parked while any of these holds */
    unsigned fetch_pending;   /* background fetches in flight */
    unsigned fetch_orphans;   /* of those, asked for by a multiget that has
                                 ended: their values are dropped */
    bool fetch_failed;        /* a fetch for this request failed on disk */
    uint8_t fetch_rounds;     /* fetches the current request waited for */
    struct item **held;       /* values fetched for the current request */
    unsigned nheld, held_cap;
    size_t held_bytes;        /* their values' bytes */
    uint8_t park_state;       /* CONN_PARK_*: set by a processor */
    uint64_t sync_seq;        /* durability=sync: reply after this commit */
    bool sync_waiting;        /* the owner calls conn_committed() */
    struct event *throttle_ev;/* backpressure: reply delayed until it fires */
    uint32_t throttle_ms;     /* delay asked by the current batch */
    bool throttled;
    uint8_t cmd_class;        /* enum cmd_class of the request just run */
    bool yielded;             /* ran reqs_per_event requests, more buffered */

    /* authentication (-S, -Y): the front ends run commands once authed
     * (true from the start when neither is configured) */
    bool authed;
    bool auth_pending;        /* a SASL step is on the auth thread: parked */
    struct sasl_session *sasl;/* NULL until the first SASL AUTH; the
                                 owner disposes of it (sasl_auth.h) */
};

enum conn_state { CONN_STATE_READ, CONN_STATE_WRITE, CONN_STATE_CLOSING };
enum conn_park { CONN_PARK_NONE, CONN_PARK_WAIT, CONN_PARK_FAIL };

/* Worker thread, from a processor: the cache needs key's value from disk.
 * Starts a background fetch (park_state WAIT: the request runs again once
 * it is in memory) or, after several rounds, a failed disk read or a full
 * fetch queue, gives up (park_state FAIL: reply temporary failure). */
void conn_need_fetch(struct conn *c, const char *key, uint8_t nkey);

/* Owner thread: wraps an accepted fd; `id` is the owner's name for it.
 * NULL when out of memory (fd closed). The owner adds it to its books;
 * conn_destroy() reports the end through ops->closed. */
struct conn *conn_create(struct conn_owner *o, int fd, uint64_t id);
/* Owner thread: closes the socket, releases every item reference, frees. */
void conn_destroy(struct conn **c);

/* Owner thread: libevent callback for the connection's fd. */
void conn_event(int fd, short what, void *arg);

/* Owner thread: a background fetch this connection asked for (through
 * ops->need_fetch) finished. `it` is the value it read (a reference the
 * connection takes over) or NULL; `failed`: the disk read failed. A
 * multiget in pieces runs again at once; a request parked whole once all
 * of its fetches are back. The value of a fetch whose multiget has ended
 * (an orphan) is dropped. */
void conn_fetch_done(struct conn *c, struct item *it, bool failed);
/* Owner thread: the SASL step this connection waited for (auth_pending)
 * is answered in c->sasl; the parked request runs again. */
void conn_auth_done(struct conn *c);
/* Owner thread: the commit this connection waited for (ops->wait_commit)
 * happened; its held replies go out and it reads again. */
void conn_committed(struct conn *c);

/* Any thread, under the owner's lock of its list: the `stats conns` lines
 * of one connection (the fields it reads are set at creation or are
 * relaxed atomics). */
void conn_stats(const struct conn *c, uint32_t now, stats_emit_fn emit,
                void *ctx);

/* Worker thread, from its idle sweep: closes a TCP connection that has
 * waited more than `timeout` seconds for a request (now: cache_now()),
 * counted as idle_kicks. One with a reply or a fetch in progress is left
 * alone, as memcached kicks only connections in its read states, and so
 * is a UNIX socket's (memcached: TCP only). True when it was closed. */
bool conn_idle_kick(struct conn *c, uint32_t now, uint32_t timeout);
/* Frees the owner's spares (when it stops). */
void conn_owner_free_spares(struct conn_owner *o);

/* Worker thread, for the processors: a value fetched for the current
 * request, when the cache has lost it again or never made it resident;
 * else NULL. The hold's reference is handed over: a value is served once,
 * and a multiget's hold shrinks as its values are queued (the queued
 * reply keeps its own reference until written). */
struct item *conn_fetched(struct conn *c, const char *key, uint8_t nkey);

/* ---- a multiget answered in pieces (struct conn_mget), worker thread ---- */

/* The key at c->mget.cursor is on disk and not held. `stream`: the value
 * is for this reply only (CONN_FETCH_STREAM); `asked`: a fetch of it was
 * started before (a prefetch). WAIT: a fetch that may bring it is in
 * flight (the request runs again when one finishes); FAIL: it cannot be
 * had (a disk read of this request failed, CONN_FETCH_ROUNDS_MAX fetches
 * of it were lost again, or the fetch queue is full while nothing of this
 * connection is in flight), logged. */
enum conn_park conn_mget_wait(struct conn *c, const char *key, uint8_t nkey,
                              bool stream, bool asked);
/* True while the prefetch window has room (CONN_PREFETCH_MAX values in
 * flight or held, CONN_PREFETCH_BYTES held). */
bool conn_prefetch_room(const struct conn *c);
/* Fetches key ahead for streaming unless it is held already; false when
 * the queue refused it (nothing was asked: try later). */
bool conn_prefetch(struct conn *c, const char *key, uint8_t nkey);
/* Drops a held value of key, if any (its key was answered otherwise). */
void conn_hold_drop(struct conn *c, const char *key, uint8_t nkey);
/* The multiget ended (its END or error line is queued): fetches of it
 * still in flight are orphans, their values dropped on arrival. */
void conn_mget_end(struct conn *c);

/* For the processors (worker thread): the output position before a
 * request, and the undo of everything queued since (a request that parks
 * for a fetch is run again from the start when it resumes). */
struct conn_out_mark {
    size_t wlen;
    unsigned nsegs;
    size_t out_pending;
};
void conn_out_mark(struct conn *c, struct conn_out_mark *m);
void conn_out_rewind(struct conn *c, const struct conn_out_mark *m);
/* Write admission (backpressure), before a write changes anything: true
 * when it may go ahead (its reply perhaps delayed: conn_throttle); false
 * past the hard limit (the caller replies temporary failure). */
bool conn_admit_write(struct conn *c);
/* For the processors, after a request: WAIT (it parked for a fetch: its
 * output is undone and it is unconsumed), FAIL (output undone: reply
 * temporary failure) or NONE. */
enum conn_park conn_park_settle(struct conn *c, const struct conn_out_mark *m,
                                size_t start);
/* Delays this connection's replies (backpressure) by at least ms. */
void conn_throttle(struct conn *c, uint32_t ms);

/* ---- output, for the protocol processors (worker thread) ---- */
/* Copies n bytes to the reply stream. False when out of memory. */
bool conn_out_copy(struct conn *c, const void *p, size_t n);
/* Reserves n bytes at the end of the reply stream and returns them to be
 * filled in (then call conn_out_commit with the bytes used). */
char *conn_out_reserve(struct conn *c, size_t n);
void conn_out_commit(struct conn *c, size_t used);
/* Queues a slice of an item; takes a new reference (the caller keeps its). */
bool conn_out_item(struct conn *c, struct item *it, const char *p, size_t n);

/* Shortcut: copies a NUL-terminated string followed by "\r\n". */
bool conn_out_line(struct conn *c, const char *line);

#endif
