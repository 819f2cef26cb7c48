/*
 * fuzz_request.c: libFuzzer target for the whole request path: one real
 * connection (server/conn.c) running the real front ends (front_bin.c,
 * front_text.c, front_meta.c, front_admin.c, front_dump.c), the command
 * core (process.c) and the in-memory cache, with a fake owner as in
 * tests/unit/test_front.c (writes admitted, durability async) and no
 * server, listener or worker thread. Persistence is either off (fetches
 * refused: engine = memory) or a fake (fuzz_request_disk.c: the rows in
 * memory, a flusher that commits between events, a fetcher that answers
 * between them), so stubs, parked requests and streamed multigets run.
 *
 * The connection's fd is one end of an AF_UNIX socketpair and the target
 * is its client: conn.c runs unchanged on its plain-socket transport
 * (read(2), dispatch, the yield after reqs_per_event, sendmsg(2)), driven
 * through its own event callbacks by event_base_loop(EVLOOP_ONCE |
 * EVLOOP_NONBLOCK), one round at a time, with the fake disk's commits and
 * fetch completions between rounds. The TLS transport is not run.
 *
 * Input: a 4-byte header, then the client's bytes.
 *   byte 0  bits 0-1: protocol (1: -B binary, 2: -B ascii, else by the
 *           first byte); bits 2-4: memory_limit (64 KiB of hash tables
 *           plus 2 KiB << n, so eviction runs with a few stored values;
 *           with the fake disk, above the Bloom filters' first layers);
 *           bits 5-7: item_size_max (512 << n bytes, so oversize paths run)
 *   byte 1  bits 0-4: reqs_per_event - 1; bit 5: -M (no eviction);
 *           bit 6: -C (no CAS); bit 7: flush_all disabled (-F)
 *   byte 2  bits 0-5: the longest chunk (0: the stream in one write);
 *           bits 6-7: persistence (enum fake_disk_mode: off, warm, cold,
 *           cold with failing reads)
 *   byte 3  bits 0-6: the seed of the chunk lengths (1 .. byte 2);
 *           bit 7: -Y (text connections authenticate, as user "fz"
 *           password "pw" of the auth file the target writes)
 * tests/fuzz/make_request_seeds.py writes the hand-made seeds. The stream
 * is sent chunk by chunk, the connection running after each chunk as it
 * would after a read; then the client half-closes and the connection must
 * close.
 *
 * abort()s (CHECK) on: memory accounted past the largest memory_limit in
 * force (with the fake disk, plus the CONN_PREFETCH_MAX + 1 values a
 * multiget may stream outside it); a read buffer past its bound (rmax, or
 * the initial size) or output past CONN_OUT_HIGH plus one reply; a
 * connection that stops with requests unread and nothing to wait for (no
 * event would ever come for them); a connection that does not close at
 * EOF; after the close, an item dirty or with a reference other than the
 * table's, or memory accounted that no linked item or table explains (a
 * reference or an accounting leak); text replies that do not end in
 * "\r\n", binary replies that are not whole frames of magic 0x81; and
 * replies that differ when the same bytes are sent in one write (run
 * again on a fresh cache: the CAS counter and the clock start over, time(2)
 * and clock_gettime(2) are fixed, and only `stats` values, which count
 * yields and rusage, are left out; not when memory ran out, as what was
 * evicted then depends on what replies not yet written pinned).
 *
 * Commands that would reach outside the process are off: shutdown (not
 * enabled) raises no signal; debugtime (debug_commands on) moves only the
 * cache's clock, which each run resets; verbosity is reset each run.
 *
 * Build: `make` builds tests/fuzz/replay_request (any compiler), which
 * `make check` runs over tests/fuzz/corpus/request; `make fuzz` in a clang
 * build with -fsanitize=fuzzer-no-link builds the libFuzzer binary
 * (scripts/test makes one; docs/architecture.md, "Fuzz targets", says how).
 */
#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "server/cache.h"
#include "server/cache_priv.h"
#include "server/config.h"
#include "server/conn.h"
#include "server/front.h"
#include "server/process.h"
#include "server/stats.h"
#include "server/stats_prefix.h"
#include "server/auth_file.h"
#include "util/hist.h"
#include "util/log.h"
#include "tests/fuzz/fuzz_request_disk.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/unit/owner_stub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEADER 4
#define TABLES_BYTES ((size_t)CACHE_SHARDS << HASH_INITIAL_POWER) * sizeof(void *)
#define PUMP_ROUNDS 10000        /* event loop rounds before "stalled" */
#define REPLY_SLACK (64 * 1024)  /* one reply past the mark besides a value */
#define FIXED_TIME 1700000000    /* time(2), so absolute exptimes agree */

/* time(2) for every object of this binary (-Wl,--wrap=time): the cache's
 * start time, hence every absolute expiry and metadump's exp=, is the
 * same in both runs of an input. */
time_t __wrap_time(time_t *t);
time_t
__wrap_time(time_t *t)
{
    if (t != NULL)
        *t = FIXED_TIME;
    return FIXED_TIME;
}

/* The cache's reservation under the limit (-Wl,--wrap=mem_try_reserve,
 * for the calls of cache_alloc.c and cache_evict.c): a refusal means
 * memory ran out, so evictions, or failures under -M, follow, and those
 * depend on what replies still pin when the request runs, which is
 * where the stream was split. Such runs are not compared. */
bool __real_mem_try_reserve(size_t bytes);
bool __wrap_mem_try_reserve(size_t bytes);
static bool memory_ran_out;
bool
__wrap_mem_try_reserve(size_t bytes)
{
    bool ok = __real_mem_try_reserve(bytes);
    if (!ok)
        memory_ran_out = true;
    return ok;
}

/* The target's own code needs no coverage feedback: its loops only slow
 * each run down (clang only). */
#if defined(__clang__)
#define NO_COVERAGE __attribute__((no_sanitize("coverage")))
#else
#define NO_COVERAGE
#endif

/* clock_gettime(2) likewise (-Wl,--wrap=clock_gettime): debugtime moves
 * the cache's clock from the monotonic seconds, which must not tick
 * between the two runs; request timings read 0. */
int __real_clock_gettime(clockid_t id, struct timespec *ts);
int __wrap_clock_gettime(clockid_t id, struct timespec *ts);
int
__wrap_clock_gettime(clockid_t id, struct timespec *ts)
{
    if (id != CLOCK_MONOTONIC && id != CLOCK_REALTIME)
        return __real_clock_gettime(id, ts);
    ts->tv_sec = FIXED_TIME;
    ts->tv_nsec = 0;
    return 0;
}

struct setup {
    uint8_t protocol;
    size_t memory_limit;
    uint32_t item_size_max;
    uint32_t reqs_per_event;
    bool evict_disabled, cas_off, flush_off, auth_ascii;
    enum fake_disk_mode disk;
    unsigned max_chunk;
    uint32_t seed;
};

struct out {
    char *p;
    size_t n, cap;
};

static struct {
    struct conn_owner o;
    struct thread_stats ts;
    struct hist timings[CMD_CLASSES];
    struct event_base *base;
    struct config cfg;
    struct conn *c;          /* NULL once closed */
    int peer;                /* the client's end */
    enum conn_proto proto;   /* what the connection chose */
    size_t limit_max;        /* the largest memory_limit in force */
    size_t limit_slack;      /* what may be counted past it (streaming) */
    uint32_t item_size_max;
    bool show;               /* FUZZ_REQUEST_SHOW: print the replies */
} H;

/* ------------------------------------------------------------- the owner */

static void
owner_closed(struct conn_owner *o, struct conn *c)
{
    (void)o;
    CHECK(c == H.c);
    H.proto = c->proto;
    H.c = NULL;
}

static bool
owner_need_fetch(struct conn_owner *o, struct conn *c, const char *key,
                 uint8_t nkey, unsigned how)
{
    (void)o, (void)c;
    return fake_disk_need_fetch(key, nkey, how);   /* false when off */
}

static const struct conn_owner_ops ops = {
    .closed = owner_closed, .need_fetch = owner_need_fetch,
    .admit_write = owner_stub_admit_write, .write_seq = NULL,
    .wait_commit = owner_stub_wait_commit,
};

static const struct conn_front fronts = { front_bin, front_text };

static void
sum_threads(struct thread_stats *out)
{
#define X(name) out->name += H.ts.name;
    THREAD_STATS(X)
#undef X
}

static void
init_once(void)
{
    static bool ready;
    if (ready)
        return;
    ready = true;
    CHECK(config_init(&H.cfg) == 0);
    stats_setup(&H.cfg);
    stats_register_threads(&(struct stats_threads){ .nthreads = 1,
                                                   .sum = sum_threads });
    H.base = event_base_new();
    CHECK(H.base != NULL);
    H.peer = -1;
    /* -Y's table: one user, from a file that lives only while loading */
    char path[] = "/tmp/fuzz_request_auth.XXXXXX", err[256];
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, "fz:pw\n", 6) == 6);
    close(fd);
    CHECK(auth_file_load(path, err, sizeof(err)) == 0);
    unlink(path);
    /* the server's log lines (cache_memlimit's, -vv tracing) cost time and
     * say nothing here; FUZZ_REQUEST_SHOW=1 prints each input's replies */
    H.show = getenv("FUZZ_REQUEST_SHOW") != NULL;
    if (!H.show)
        CHECK(log_setup("/dev/null") == 0);
}

/* --------------------------------------------------------- the invariants */

/* While the connection runs: memory, buffers, output. */
NO_COVERAGE static void
check_bounds(void)
{
    size_t limit = mem_limit_now();
    if (limit > H.limit_max)
        H.limit_max = limit;   /* cache_memlimit raised it */
    CHECK(mem_used_now() <= H.limit_max + H.limit_slack);
    const struct conn *c = H.c;
    if (c == NULL)
        return;
    size_t rbound = c->rmax > CONN_RBUF_INITIAL ? c->rmax : CONN_RBUF_INITIAL;
    CHECK(c->rsize <= rbound);
    CHECK(c->rstart <= c->rend && c->rend <= c->rsize);
    CHECK(c->out_pending <= CONN_OUT_HIGH + H.item_size_max + REPLY_SLACK);
    CHECK(c->seg_head <= c->nsegs && c->nsegs <= c->segs_cap);
    CHECK(c->wlen <= c->wsize);
}

/* One LRU list of a shard: every item linked, referenced by the table
 * only; returns their bytes and counts them. */
NO_COVERAGE static size_t
check_list(const struct item *head, bool key_list, size_t *count)
{
    size_t bytes = 0;
    for (const struct item *it = head; it != NULL; it = it->lru_next) {
        CHECK(it->iflags & ITEM_LINKED);
        CHECK(atomic_load(&it->refcount) == 1);
        CHECK(it->dirty == 0);
        bool key_only = (it->iflags & (ITEM_STUB | ITEM_TOMBSTONE)) != 0;
        CHECK(key_only == key_list);
        bytes += item_usable(it);
        (*count)++;
    }
    return bytes;
}

/* After the connection closed: nothing holds an item but the table, and
 * the memory count is exactly the linked items and the tables. */
NO_COVERAGE static void
check_cache(void)
{
    size_t bytes = 0;
    for (unsigned i = 0; i < CACHE_SHARDS; i++) {
        struct shard *s = &cache_shards[i];
        pthread_mutex_lock(&s->lock);
        size_t listed = 0, chained = 0;
        bytes += check_list(s->lru_head, false, &listed);
        bytes += check_list(s->key_head, true, &listed);
        bytes += s->table_bytes + bloom_bytes(&s->filter);
        for (size_t b = 0; b < ((size_t)1 << s->hashpower); b++)
            for (const struct item *it = s->buckets[b]; it != NULL; it = it->h_next)
                chained++;
        if (s->old_buckets != NULL)
            for (size_t b = s->migrate_pos; b < ((size_t)1 << s->old_hashpower); b++)
                for (const struct item *it = s->old_buckets[b]; it != NULL;
                     it = it->h_next)
                    chained++;
        CHECK(listed == chained);
        CHECK(s->st.curr_items <= listed);
        pthread_mutex_unlock(&s->lock);
    }
    if (bytes != mem_used_now())
        fprintf(stderr, "accounted %zu, linked %zu\n", mem_used_now(), bytes);
    CHECK(bytes == mem_used_now());
}

/* The replies as a whole: whole lines (text) or whole frames (binary). */
NO_COVERAGE static void
check_replies(const struct out *o)
{
    if (o->n == 0)
        return;
    if (H.proto == CONN_PROTO_TEXT) {
        CHECK(o->n >= 2 && memcmp(o->p + o->n - 2, "\r\n", 2) == 0);
        return;
    }
    size_t at = 0;
    while (at < o->n) {
        CHECK(o->n - at >= 24);
        CHECK((uint8_t)o->p[at] == 0x81);
        const uint8_t *h = (const uint8_t *)o->p + at;
        uint32_t body = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 |
                        (uint32_t)h[10] << 8 | h[11];
        CHECK(body <= o->n - at - 24);
        at += 24 + body;
    }
}

/* -------------------------------------------------------- the client side */

NO_COVERAGE static void
out_add(struct out *o, const char *p, size_t n)
{
    if (n == 0)
        return;
    if (o->n + n > o->cap) {
        size_t cap = o->cap ? o->cap : 65536;
        while (cap < o->n + n)
            cap *= 2;
        o->p = realloc(o->p, cap);
        CHECK(o->p != NULL);
        o->cap = cap;
    }
    memcpy(o->p + o->n, p, n);
    o->n += n;
}

/* Reads what the connection wrote; true when there was something. */
NO_COVERAGE static bool
drain(struct out *o)
{
    static char buf[65536];   /* static: ASan poisons a stack array per call */
    bool any = false;
    for (;;) {
        ssize_t n = recv(H.peer, buf, sizeof(buf), MSG_DONTWAIT);
        if (n <= 0)
            return any;
        out_add(o, buf, (size_t)n);
        any = true;
    }
}

NO_COVERAGE static int
unread(int fd)
{
    int n = 0;
    CHECK(ioctl(fd, FIONREAD, &n) == 0);
    return n;
}

/* Nothing more will happen without the client: every byte sent was read
 * and every reply written, and no request runs in pieces. */
NO_COVERAGE static bool
settled(void)
{
    const struct conn *c = H.c;
    return unread(c->fd) == 0 && c->out_pending == 0 && !c->yielded &&
           c->dump.kind == 0 && !c->mget.active && c->fetch_pending == 0 &&
           fake_disk_idle();
}

/* Runs the connection's events until it settles or closes. */
NO_COVERAGE static void
pump(struct out *o)
{
    for (int round = 0; round < PUMP_ROUNDS; round++) {
        drain(o);
        if (H.c == NULL || settled())
            return;
        fake_disk_run(&H.c);   /* commits and fetch completions */
        if (H.c != NULL)
            event_base_loop(H.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        check_bounds();
    }
    const struct conn *c = H.c;
    fprintf(stderr, "stalled: unread %d rstart %zu rend %zu out %zu yielded %d "
            "dump %d mget %d fetches %u held %u rev %d wev %d disk idle %d\n",
            unread(c->fd), c->rstart, c->rend, c->out_pending, c->yielded,
            c->dump.kind, c->mget.active, c->fetch_pending, c->nheld,
            c->rev_on, c->wev_on, fake_disk_idle());
    fprintf(stderr, "libevent: rev pending %d\n",
            event_pending(c->rev, EV_READ, NULL));
    CHECK(!"the connection stalled with requests unread");
}

/* Sends n bytes as the client would, running the connection while the
 * socket is full. False once the connection is gone. */
NO_COVERAGE static bool
send_chunk(const uint8_t *p, size_t n, struct out *o)
{
    while (n > 0 && H.c != NULL) {
        ssize_t k = send(H.peer, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k < 0) {
            CHECK(errno == EAGAIN || errno == EWOULDBLOCK || errno == EPIPE ||
                  errno == ECONNRESET);
            if (errno == EPIPE || errno == ECONNRESET)
                return false;
            k = 0;
        }
        p += k;
        n -= (size_t)k;
        pump(o);
    }
    return H.c != NULL;
}

/* ------------------------------------------------------------ one run */

/* Persistent: each shard's Bloom filter takes its first layer (8 KiB)
 * with its first key, charged past the limit by design; taking them all
 * now leaves `items` bytes for items, as without persistence. */
NO_COVERAGE static void
prime_filters(size_t items)
{
    uint64_t seen = 0;
    char key[16];
    for (unsigned i = 0; i < 4096 && seen != UINT64_MAX; i++) {
        int n = snprintf(key, sizeof(key), "\x01prime%u", i);
        unsigned shard = shard_index(cache_hash(key, (uint8_t)n));
        if (!(seen & (1ull << shard)))
            cache_filter_add(key, (uint8_t)n);
        seen |= 1ull << shard;
    }
    cache_set_memory_limit(mem_used_now() + items);
}

static void
server_start(const struct setup *s)
{
    struct cache_options co = {
        .memory_limit = s->memory_limit, .item_size_max = s->item_size_max,
        /* -C as mckvd sets it (main.c): the counter still orders writes
         * and flushes, clients see 0, a flush cuts by the second */
        .cas_enabled = true, .evict_disabled = s->evict_disabled,
        .flush_by_second = s->cas_off,
        .persistent = s->disk != FAKE_DISK_OFF, .on_change = fake_disk_on_change,
    };
    fake_disk_setup(s->disk);
    CHECK(cache_setup(&co) == 0);
    fake_disk_started();
    if (s->disk != FAKE_DISK_OFF)
        prime_filters(s->memory_limit - TABLES_BYTES);
    struct process_options po = {
        .flush_enabled = !s->flush_off, .dump_enabled = true,
        .cas_visible = !s->cas_off, .debug_commands = true,
    };
    process_setup(&po);
    stats_prefix_setup(':');
    log_set_verbosity(0);
    memset(&H.ts, 0, sizeof(H.ts));
    memset(H.timings, 0, sizeof(H.timings));
    conn_owner_free_spares(&H.o);   /* the last input's */
    H.o = (struct conn_owner){
        .front = &fronts, .ops = &ops, .base = H.base, .stats = &H.ts,
        .timings = H.timings, .item_size_max = s->item_size_max,
        .reqs_per_event = s->reqs_per_event, .protocol = s->protocol,
        .auth_ascii = s->auth_ascii,
    };
    atomic_init(&H.o.stopping, false);
    H.limit_max = mem_limit_now();
    H.limit_slack = s->disk == FAKE_DISK_OFF ? 0
        : (CONN_PREFETCH_MAX + 1) * ((size_t)s->item_size_max * 5 / 4 + 512);
    H.item_size_max = s->item_size_max;
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    atomic_fetch_add(&global_stats.curr_connections, 1);
    H.c = conn_create(&H.o, sv[0], 1);
    CHECK(H.c != NULL);
    H.peer = sv[1];
    H.proto = CONN_PROTO_UNKNOWN;
}

static void
server_stop(void)
{
    close(H.peer);
    H.peer = -1;
    stats_prefix_enable(false);
    stats_prefix_teardown();
    cache_teardown();
    fake_disk_teardown();
    log_set_verbosity(0);
}

static uint32_t
next_rand(uint32_t *x)
{
    /* xorshift32: any seed but 0 */
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* Sends the stream in chunks (whole when !split), half-closes, and checks
 * what the connection left behind. The replies go to *o. */
NO_COVERAGE static void
run(const struct setup *s, const uint8_t *p, size_t n, bool split, struct out *o)
{
    server_start(s);
    uint32_t x = s->seed * 2654435761u + 1;
    size_t at = 0;
    while (at < n && H.c != NULL) {
        size_t len = n - at;
        if (split && s->max_chunk > 0) {
            size_t want = 1 + next_rand(&x) % s->max_chunk;
            len = want < len ? want : len;
        }
        send_chunk(p + at, len, o);
        at += len;
    }
    if (H.c != NULL) {
        shutdown(H.peer, SHUT_WR);
        for (int round = 0; round < PUMP_ROUNDS && H.c != NULL; round++) {
            fake_disk_run(&H.c);
            if (H.c != NULL)
                event_base_loop(H.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
            drain(o);
        }
        CHECK(H.c == NULL);   /* EOF closes it */
    }
    /* fetches still out find no connection; the last writes commit */
    for (int round = 0; round < PUMP_ROUNDS && !fake_disk_idle(); round++)
        fake_disk_run(&H.c);
    CHECK(fake_disk_idle());
    drain(o);
    check_bounds();
    check_cache();
    check_replies(o);
    server_stop();
}

/* ------------------------------------------------ comparing two runs */

/* The replies without what may differ between runs: the values of
 * `stats` (text "STAT name value" lines, binary STAT frames), which count
 * yields, reads and rusage. */
NO_COVERAGE static void
normalise(const struct out *in, struct out *o)
{
    o->n = 0;
    if (H.proto == CONN_PROTO_BIN) {
        size_t at = 0;
        while (at + 24 <= in->n) {
            const uint8_t *h = (const uint8_t *)in->p + at;
            uint32_t body = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 |
                            (uint32_t)h[10] << 8 | h[11];
            if (body > in->n - at - 24)
                break;
            size_t keyext = (size_t)((h[2] << 8) | h[3]) + h[4];
            if (h[1] == 0x10 && keyext <= body) {
                /* the header without its body length, then the key */
                uint8_t head[24];
                memcpy(head, h, 24);
                memset(head + 8, 0, 4);
                out_add(o, (const char *)head, 24);
                out_add(o, in->p + at + 24, keyext);
            } else {
                out_add(o, in->p + at, 24 + body);
            }
            at += 24 + body;
        }
        if (at < in->n)
            out_add(o, in->p + at, in->n - at);
        return;
    }
    size_t at = 0;
    while (at < in->n) {
        const char *eol = memchr(in->p + at, '\n', in->n - at);
        size_t end = eol != NULL ? (size_t)(eol - in->p) + 1 : in->n;
        const char *line = in->p + at;
        if (end - at > 5 && memcmp(line, "STAT ", 5) == 0) {
            const char *sp = memchr(line + 5, ' ', end - at - 5);
            size_t keep = sp != NULL ? (size_t)(sp - line) : end - at;
            out_add(o, line, keep);
        } else {
            out_add(o, line, end - at);
        }
        at = end;
    }
}

NO_COVERAGE static void
compare(const struct out *a, const struct out *b)
{
    static struct out na, nb;
    normalise(a, &na);
    normalise(b, &nb);
    if (na.n == nb.n && (na.n == 0 || memcmp(na.p, nb.p, na.n) == 0))
        return;
    size_t i = 0;
    while (i < na.n && i < nb.n && na.p[i] == nb.p[i])
        i++;
    fprintf(stderr, "split replies (%zu bytes) differ from whole (%zu) at %zu:\n"
            "split: %.*s\nwhole: %.*s\n", na.n, nb.n, i,
            (int)(na.n - i < 80 ? na.n - i : 80), na.n > 0 ? na.p + i : "",
            (int)(nb.n - i < 80 ? nb.n - i : 80), nb.n > 0 ? nb.p + i : "");
    CHECK(!"replies depend on where the stream was split");
}

static void
parse_setup(const uint8_t *h, struct setup *s)
{
    static const uint8_t protos[4] = {
        CONN_PROTO_UNKNOWN, CONN_PROTO_BIN, CONN_PROTO_TEXT, CONN_PROTO_UNKNOWN,
    };
    s->protocol = protos[h[0] & 3];
    s->memory_limit = TABLES_BYTES + ((size_t)2048 << ((h[0] >> 2) & 7));
    s->item_size_max = 512u << ((h[0] >> 5) & 7);
    s->reqs_per_event = 1 + (h[1] & 31);
    s->evict_disabled = (h[1] & 0x20) != 0;
    s->cas_off = (h[1] & 0x40) != 0;
    s->flush_off = (h[1] & 0x80) != 0;
    s->max_chunk = h[2] & 63;
    s->disk = (enum fake_disk_mode)(h[2] >> 6);
    s->seed = h[3] & 127;
    s->auth_ascii = (h[3] & 128) != 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct out split, whole;
    if (size < HEADER)
        return 0;
    init_once();
    struct setup s;
    parse_setup(data, &s);
    split.n = whole.n = 0;
    memory_ran_out = false;
    run(&s, data + HEADER, size - HEADER, true, &split);
    if (H.show)
        fprintf(stderr, "--- %zu bytes in, %zu out:\n%.*s\n", size - HEADER,
                split.n, (int)split.n, split.p);
    if (s.max_chunk > 0 && s.max_chunk < size - HEADER && !memory_ran_out) {
        run(&s, data + HEADER, size - HEADER, false, &whole);
        if (!memory_ran_out)
            compare(&split, &whole);
    }
    return 0;
}
