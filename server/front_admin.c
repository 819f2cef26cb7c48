/*
 * front_admin.c: the text protocol's administration commands: shutdown
 * (with -A), cache_memlimit and debugtime as memcached answers them, and
 * what mckv has of lru_crawler, slabs and lru. mckv has no slab allocator
 * and no LRU crawler thread (expired items are dropped when met and from
 * the LRU tail), so their tuning commands have nothing to tune: `slabs
 * reassign` and `lru_crawler crawl` answer as memcached does with the
 * feature off, `slabs automove` is accepted with no effect, and the rest
 * answer ERROR (docs/compatibility.md lists each against memcached).
 * lru_crawler metadump works all the same (front_dump.c: it is a walk of
 * the cache, no crawler needed).
 */
#include <config.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/proto_text.h"
#include "server/cache.h"
#include "server/conn.h"
#include "server/front.h"
#include "server/tls.h"
#include "util/log.h"

static bool
word_is(const char *w, size_t n, const char *s)
{
    return n == strlen(s) && memcmp(w, s, n) == 0;
}

/* memcached's safe_strtoul: digits only, fits in 32 bits. */
static bool
word_u32(const char *w, size_t n, uint32_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 10)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (w[i] < '0' || w[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(w[i] - '0');
    }
    if (v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* Worker thread: shutdown [graceful]. The signal goes to the main thread's
 * handler, which stops the server as SIGTERM does (graceful either way:
 * queued writes always reach the disk). */
static enum conn_req
do_shutdown(struct conn *c, const char **w, const size_t *n, unsigned nw)
{
    if (!process_options()->shutdown_enabled) {
        conn_out_line(c, "ERROR: shutdown not enabled");
        return CONN_REQ_OK;
    }
    if (nw == 0) {
        log_info("shutdown command");
        raise(SIGINT);
        return CONN_REQ_CLOSE;
    }
    if (nw == 1 && word_is(w[0], n[0], "graceful")) {
        log_info("shutdown graceful command");
        raise(SIGUSR1);
        return CONN_REQ_CLOSE;
    }
    conn_out_line(c, "CLIENT_ERROR invalid shutdown mode");
    return CONN_REQ_OK;
}

static void
do_memlimit(struct conn *c, const char **w, const size_t *n, unsigned nw)
{
    bool noreply = nw == 2 && word_is(w[1], n[1], "noreply");
    uint32_t mb;
    const char *line;
    if (nw < 1 || !word_u32(w[0], n[0], &mb))
        line = "ERROR";
    else if (mb < 8)
        line = "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m";
    else if (mb > 1000000000)
        line = "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes";
    else {
        cache_set_memory_limit((size_t)mb * 1024 * 1024);
        log_info("maxbytes adjusted to %um", mb);
        line = "OK";
    }
    if (!noreply)
        conn_out_line(c, line);
}

/* memcached-debug's debugtime N|p|r, with debug_commands on: moves the
 * clock N seconds forward (p and r, pause and resume, are accepted: mckv's
 * clock is not paused). Off, it is an unknown command, as in memcached's
 * release build. */
static void
do_debugtime(struct conn *c, const char **w, const size_t *n, unsigned nw)
{
    if (!process_options()->debug_commands || nw < 1) {
        conn_out_line(c, "ERROR");
        return;
    }
    if (!word_is(w[0], n[0], "p") && !word_is(w[0], n[0], "r")) {
        int64_t v = 0;
        size_t i = 0;
        bool neg = n[0] > 0 && w[0][0] == '-';
        i = neg ? 1 : 0;
        if (i == n[0] || n[0] > 19) {
            conn_out_line(c, "ERROR");
            return;
        }
        for (; i < n[0]; i++) {
            if (w[0][i] < '0' || w[0][i] > '9') {
                conn_out_line(c, "ERROR");
                return;
            }
            v = v * 10 + (w[0][i] - '0');
        }
        cache_clock_shift(neg ? -v : v);
    }
    conn_out_line(c, "OK");
}

static enum conn_req
do_lru_crawler(struct conn *c, const char **w, const size_t *n, unsigned nw)
{
    if (nw == 2 && word_is(w[0], n[0], "metadump"))
        front_dump_metadump(c, w[1], n[1]);
    else if (nw == 2 && (word_is(w[0], n[0], "crawl") ||
                         word_is(w[0], n[0], "tocrawl") ||
                         word_is(w[0], n[0], "sleep")))
        conn_out_line(c, "CLIENT_ERROR lru crawler disabled");
    else if (nw == 1 && word_is(w[0], n[0], "enable"))
        conn_out_line(c, "ERROR failed to start lru crawler thread");
    else if (nw == 1 && word_is(w[0], n[0], "disable"))
        conn_out_line(c, "OK");
    else
        conn_out_line(c, "ERROR");
    return CONN_REQ_OK;
}

/* Worker thread: refresh_certs, memcached's: a new TLS context from the
 * configured files for connections accepted from now on (tls.h). A
 * server built without TLS does not know the command, as memcached. */
static void
do_refresh_certs(struct conn *c, const char **w, const size_t *n, unsigned nw)
{
#ifdef HAVE_TLS
    /* memcached: noreply drops the OK; its error line is written anyway */
    bool noreply = nw > 0 && word_is(w[nw - 1], n[nw - 1], "noreply");
    char err[512];
    if (tls_refresh(err, sizeof(err))) {
        if (!noreply)
            conn_out_line(c, "OK");
    } else {
        conn_out_line(c, err);
    }
#else
    (void)w;
    (void)n;
    (void)nw;
    conn_out_line(c, "ERROR");
#endif
}

enum conn_req
front_admin(struct conn *c, const struct text_req *req)
{
    const char *w[4];
    size_t n[4];
    unsigned nw = front_words(req->arg, req->arglen, w, n, 4);
    switch (req->cmd) {
    case TEXT_SHUTDOWN:
        return do_shutdown(c, w, n, nw);
    case TEXT_CACHE_MEMLIMIT:
        do_memlimit(c, w, n, nw);
        break;
    case TEXT_LRU_CRAWLER:
        return do_lru_crawler(c, w, n, nw);
    case TEXT_SLABS:
        if (nw == 3 && word_is(w[0], n[0], "reassign"))
            conn_out_line(c, "CLIENT_ERROR slab reassignment disabled");
        else if (nw >= 2 && word_is(w[0], n[0], "automove"))
            conn_out_line(c, "OK");
        else
            conn_out_line(c, "ERROR");
        break;
    case TEXT_DEBUGTIME:
        do_debugtime(c, w, n, nw);
        break;
    case TEXT_REFRESH_CERTS:
        do_refresh_certs(c, w, n, nw);
        break;
    default:   /* lru: memcached's segmented LRU tuning, none here */
        conn_out_line(c, "ERROR");
        break;
    }
    return CONN_REQ_OK;
}
