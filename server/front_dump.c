/*
 * front_dump.c: lru_crawler metadump and stats cachedump, answered as
 * memcached 1.6.18 answers them, over the cache walk (cache_walk_from()
 * in server/cache.h).
 *
 * A dump can be far larger than a connection may buffer: metadump lists
 * every key the server holds. So each run writes one piece: it walks at
 * most DUMP_PIECE items from the cursor kept in c->dump and returns. While
 * c->dump.kind is set the text front end leaves the request unconsumed and
 * conn_process_all() runs it again, at once while the connection's output
 * is under CONN_OUT_HIGH, else once the client has read it down. Output
 * thus stays under the mark plus one piece whatever the cache holds, a
 * piece counts as one request against reqs_per_event (the worker's other
 * connections get their turns), requests pipelined after the dump run
 * after its END, and a connection closed midway leaves nothing behind:
 * the walk holds no lock or memory between pieces.
 *
 * Where mckv differs: memcached refuses a metadump while another one runs
 * (BUSY) or while earlier pipelined replies are pending, and its crawler
 * wedges after `metadump ,`; none of that happens here. Class ids are
 * mckv's size classes (stats items: id = size_class + 1). cachedump lists
 * every live item of the class, not only its cold LRU, and no expired
 * ones. A key whose value is on disk only (a stub) is listed with what
 * memory holds of it (0 value bytes), as memcached's extstore lists its
 * item headers.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/cache.h"
#include "server/conn.h"
#include "server/front.h"
#include "server/process.h"
#include "util/log.h"
#include "util/status.h"

#define DUMP_PIECE 1000                 /* items walked per run */
#define CACHEDUMP_MAX (2u * 1024 * 1024) /* memcached's item_cachedump() */
#define CLASS_ID_MAX 63                 /* MAX_NUMBER_OF_SLAB_CLASSES - 1 */
/* the class ids mckv's size classes have */
#define CLASSES_MCKV ((((uint64_t)1 << CACHE_SIZE_CLASSES) - 1) << 1)

enum dump_kind { DUMP_NONE = 0, DUMP_METADUMP, DUMP_CACHEDUMP };

/* "key=" + the key URI-encoded + the rest of memcached's line */
#define METADUMP_LINE_MAX (4 + 3 * 255 + 160)
#define CACHEDUMP_LINE_MAX (5 + 255 + 40)

/* memcached's safe_strtoul() on a word (not NUL-terminated): strtoul's
 * syntax, any 32 low bits of an unsigned long, a minus sign only when
 * the result does not look negative. */
static bool
mc_strtoul(const char *w, size_t n, uint32_t *out)
{
    char *s = strndup(w, n);
    if (s == NULL)
        return false;
    char *end;
    errno = 0;
    unsigned long l = strtoul(s, &end, 10);
    bool ok = errno != ERANGE && end != s &&
              (*end == ' ' || (*end >= '\t' && *end <= '\r') || *end == '\0');
    if (ok && (long)l < 0 && strchr(s, '-') != NULL)
        ok = false;
    free(s);
    if (ok)
        *out = (uint32_t)l;
    return ok;
}

/* The URI encoding of memcached's uriencode(): alphanumerics and "-._~"
 * as they are, every other byte as %XX. Returns the length written. */
static size_t
uriencode(const char *src, size_t n, char *dst)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t d = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)src[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
            (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' ||
            ch == '~') {
            dst[d++] = (char)ch;
        } else {
            dst[d++] = '%';
            dst[d++] = hex[ch >> 4];
            dst[d++] = hex[ch & 15];
        }
    }
    return d;
}

static unsigned
class_id(const struct cache_walk_entry *e)
{
    return e->size_class + 1;
}

/* What a piece's callbacks share. */
struct piece {
    struct conn *c;
    bool failed;   /* no memory for the output */
};

/* Ends the dump: END, or a server error when the output failed. */
static void
dump_finish(struct conn *c, bool failed)
{
    c->dump = (struct conn_dump){ .kind = DUMP_NONE };
    if (failed) {
        log_error_limited("connection %d: dump: out of memory writing the reply",
                          c->fd);
        conn_out_line(c, "SERVER_ERROR out of memory writing dump");
        return;
    }
    conn_out_copy(c, "END\r\n", 5);
}

/* Walks one piece; finishes the dump when the walk is over. */
static void
dump_piece(struct conn *c, cache_walk_fn fn)
{
    struct piece p = { .c = c };
    int rc = cache_walk_from(&c->dump.cursor, fn, &p, DUMP_PIECE);
    if (rc != MCKV_OK)
        p.failed = true;
    if (c->dump.cursor == CACHE_WALK_END || p.failed)
        dump_finish(c, p.failed);
}

/* ---- lru_crawler metadump ---- */

/* crawler_metadump_eval()'s line. */
static bool
metadump_entry(const struct cache_walk_entry *e, void *ctx)
{
    struct piece *p = ctx;
    struct conn *c = p->c;
    if ((c->dump.classes & ((uint64_t)1 << class_id(e))) == 0)
        return true;
    char *out = conn_out_reserve(c, METADUMP_LINE_MAX);
    if (out == NULL) {
        p->failed = true;
        return false;
    }
    memcpy(out, "key=", 4);
    size_t n = 4 + uriencode(e->key, e->nkey, out + 4);
    n += (size_t)snprintf(out + n, METADUMP_LINE_MAX - n,
                          " exp=%ld la=%llu cas=%llu fetch=%s cls=%u size=%lu\n",
                          e->exptime == 0 ? -1L : (long)e->exptime,
                          (unsigned long long)e->last_access,
                          (unsigned long long)e->cas,
                          e->fetched ? "yes" : "no", class_id(e),
                          (unsigned long)e->total_size);
    conn_out_commit(c, n);
    return true;
}

/* lru_crawler_crawl()'s argument: "all", "hash", or class ids joined by
 * commas (empty ones skipped, as strtok_r does). 1: *classes is set; 0:
 * no id at all (NOTSTARTED); -1: a bad id (BADCLASS). */
static int
metadump_classes(const char *arg, size_t len, uint64_t *classes)
{
    if ((len == 3 && memcmp(arg, "all", 3) == 0) ||
        (len == 4 && memcmp(arg, "hash", 4) == 0)) {
        *classes = UINT64_MAX;
        return 1;
    }
    *classes = 0;
    size_t i = 0;
    while (i < len) {
        size_t start = i;
        while (i < len && arg[i] != ',')
            i++;
        uint32_t id;
        if (i > start) {
            if (!mc_strtoul(arg + start, i - start, &id) || id < 1 ||
                id > CLASS_ID_MAX)
                return -1;
            *classes |= (uint64_t)1 << id;
        }
        i++;   /* past the comma */
    }
    return *classes != 0 ? 1 : 0;
}

void
front_dump_metadump(struct conn *c, const char *arg, size_t len)
{
    if (c->dump.kind == DUMP_METADUMP) {
        dump_piece(c, metadump_entry);
        return;
    }
    if (!process_options()->dump_enabled) {
        conn_out_line(c, "ERROR metadump not allowed");
        return;
    }
    uint64_t classes;
    switch (metadump_classes(arg, len, &classes)) {
    case -1:
        conn_out_line(c, "BADCLASS invalid class id");
        return;
    case 0:
        conn_out_line(c, "NOTSTARTED no items to crawl");
        return;
    default:
        break;
    }
    c->dump = (struct conn_dump){
        .kind = DUMP_METADUMP, .cursor = CACHE_WALK_START, .classes = classes,
    };
    if ((classes & CLASSES_MCKV) == 0)
        dump_finish(c, false);   /* no item can be in those classes */
    else
        dump_piece(c, metadump_entry);
}

/* ---- stats cachedump ---- */

/* item_cachedump()'s line, within its 2 MB. */
static bool
cachedump_entry(const struct cache_walk_entry *e, void *ctx)
{
    struct piece *p = ctx;
    struct conn *c = p->c;
    struct conn_dump *d = &c->dump;
    /* memcached leaves binary keys out */
    if ((d->classes & ((uint64_t)1 << class_id(e))) == 0 || e->key_binary)
        return true;
    char line[CACHEDUMP_LINE_MAX];
    /* the key as %s prints it: up to a NUL (a binary protocol key) */
    const char *nul = memchr(e->key, '\0', e->nkey);
    int nkey = nul != NULL ? (int)(nul - e->key) : e->nkey;
    int n = snprintf(line, sizeof(line), "ITEM %.*s [%u b; %llu s]\r\n",
                     nkey, e->key, e->nbytes,
                     (unsigned long long)(e->exptime == 0 ? 0 : e->exptime));
    if (d->bytes + (size_t)n + 6 > CACHEDUMP_MAX)   /* 6: END\r\n\0 */
        return false;
    if (!conn_out_copy(c, line, (size_t)n)) {
        p->failed = true;
        return false;
    }
    d->bytes += (size_t)n;
    d->shown++;
    return d->limit == 0 || d->shown < d->limit;
}

void
front_dump_cachedump(struct conn *c, const char *arg, size_t len)
{
    if (c->dump.kind == DUMP_CACHEDUMP) {
        dump_piece(c, cachedump_entry);
        return;
    }
    const char *w[3];
    size_t n[3];
    unsigned nw = front_words(arg, len, w, n, 3);
    uint32_t id, limit;
    if (!process_options()->dump_enabled) {
        conn_out_line(c, "CLIENT_ERROR stats cachedump not allowed");
        return;
    }
    if (nw < 3) {
        conn_out_line(c, "CLIENT_ERROR bad command line");
        return;
    }
    if (!mc_strtoul(w[1], n[1], &id) || !mc_strtoul(w[2], n[2], &limit)) {
        conn_out_line(c, "CLIENT_ERROR bad command line format");
        return;
    }
    if (id > CLASS_ID_MAX) {
        conn_out_line(c, "CLIENT_ERROR Illegal slab id");
        return;
    }
    c->dump = (struct conn_dump){
        .kind = DUMP_CACHEDUMP, .cursor = CACHE_WALK_START,
        .classes = (uint64_t)1 << id, .limit = limit,
    };
    if ((c->dump.classes & CLASSES_MCKV) == 0)
        dump_finish(c, false);   /* class 0 and the ids past mckv's */
    else
        dump_piece(c, cachedump_entry);
}
