/*
 * conn_out.c: a connection's reply stream (see conn.h): bytes copied into
 * the write buffer and slices of items, as a list of segments that
 * conn.c's flush writes out, and the mark and rewind of a request that
 * parks. Adjacent copied bytes merge into one segment.
 */
#include <config.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "server/cache.h"
#include "server/conn.h"

static void
spare_free(struct conn_spare *s)
{
    while (s->n > 0)
        free(s->buf[--s->n]);
}

void
conn_owner_free_spares(struct conn_owner *o)
{
    spare_free(&o->spare_r);
    spare_free(&o->spare_w);
    spare_free(&o->spare_s);
}

void
conn_out_mark(struct conn *c, struct conn_out_mark *m)
{
    m->wlen = c->wlen;
    m->nsegs = c->nsegs;
    m->out_pending = c->out_pending;
}

void
conn_out_rewind(struct conn *c, const struct conn_out_mark *m)
{
    for (unsigned i = m->nsegs; i < c->nsegs; i++)
        if (c->segs[i].it != NULL)
            cache_item_release(c->segs[i].it);
    c->nsegs = m->nsegs;
    c->wlen = m->wlen;
    c->out_pending = m->out_pending;
    /* a merged trailing segment may have grown past the mark */
    if (c->nsegs > c->seg_head) {
        struct out_seg *last = &c->segs[c->nsegs - 1];
        if (last->it == NULL && last->off + last->len > c->wlen)
            last->len = (uint32_t)(c->wlen - last->off);
    }
}

static bool
conn_seg_push(struct conn *c, struct item *it, uint32_t off, uint32_t len)
{
    if (len == 0)
        return true;
    if (it == NULL && c->nsegs > c->seg_head) {
        struct out_seg *last = &c->segs[c->nsegs - 1];
        if (last->it == NULL && last->off + last->len == off) {
            last->len += len;
            c->out_pending += len;
            return true;
        }
    }
    if (c->segs == NULL) {
        c->segs = conn_spare_take(&c->owner->spare_s,
                                  CONN_SEGS_INITIAL * sizeof(*c->segs));
        if (c->segs == NULL)
            return false;
        c->segs_cap = CONN_SEGS_INITIAL;
    }
    if (c->nsegs == c->segs_cap) {
        unsigned cap = c->segs_cap * 2;
        struct out_seg *s = realloc(c->segs, cap * sizeof(*s));
        if (s == NULL)
            return false;
        c->segs = s;
        c->segs_cap = cap;
    }
    c->segs[c->nsegs++] = (struct out_seg){ .it = it, .off = off, .len = len };
    c->out_pending += len;
    return true;
}

char *
conn_out_reserve(struct conn *c, size_t n)
{
    if (c->wbuf == NULL && n <= CONN_WBUF_INITIAL) {
        c->wbuf = conn_spare_take(&c->owner->spare_w, CONN_WBUF_INITIAL);
        if (c->wbuf == NULL)
            return NULL;
        c->wsize = CONN_WBUF_INITIAL;
    }
    if (c->wlen + n > c->wsize) {
        size_t size = c->wsize > 0 ? c->wsize : CONN_WBUF_INITIAL;
        while (size < c->wlen + n)
            size *= 2;
        char *b = realloc(c->wbuf, size);
        if (b == NULL)
            return NULL;
        c->wbuf = b;
        c->wsize = size;
    }
    return c->wbuf + c->wlen;
}

void
conn_out_commit(struct conn *c, size_t used)
{
    if (conn_seg_push(c, NULL, (uint32_t)c->wlen, (uint32_t)used))
        c->wlen += used;
}

bool
conn_out_copy(struct conn *c, const void *p, size_t n)
{
    char *dst = conn_out_reserve(c, n);
    if (dst == NULL)
        return false;
    memcpy(dst, p, n);
    size_t before = c->wlen;
    conn_out_commit(c, n);
    return c->wlen == before + n;
}

bool
conn_out_line(struct conn *c, const char *line)
{
    size_t n = strlen(line);
    char *dst = conn_out_reserve(c, n + 2);
    if (dst == NULL)
        return false;
    memcpy(dst, line, n);
    dst[n] = '\r';
    dst[n + 1] = '\n';
    size_t before = c->wlen;
    conn_out_commit(c, n + 2);
    return c->wlen == before + n + 2;
}

bool
conn_out_item(struct conn *c, struct item *it, const char *p, size_t n)
{
    uint32_t off = (uint32_t)(p - it->data);
    atomic_fetch_add_explicit(&it->refcount, 1, memory_order_relaxed);
    if (!conn_seg_push(c, it, off, (uint32_t)n)) {
        cache_item_release(it);
        return false;
    }
    return true;
}

