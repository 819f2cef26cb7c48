/*
 * fuzz_request_disk.c: the fake persistence of fuzz_request.c (contract
 * in fuzz_request_disk.h). What it stands for: server/persist.c's hook
 * and flusher (a change is queued with the hook's reference and written
 * at the next commit, if its item is still the linked version) and
 * server/fetcher.c's fetch_run (the same choices of allocation and
 * install, and cache_install_absent for a key the disk does not have).
 * Commits and fetch completions happen between the connection's events,
 * so requests meet dirty items, stubs and parked fetches.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/cache.h"
#include "server/conn.h"
#include "tests/fuzz/fuzz_request_disk.h"
#include "tests/fuzz/fuzz_check.h"

#define ROWS_MAX 1024
#define CHANGES_MAX 4096
#define FETCHES_MAX 12           /* the pool's queue, small */
#define FETCHES_MAX_FAILING 4

struct row {
    char key[256];
    uint8_t nkey;
    uint32_t flags;
    rel_time_t exptime;
    uint64_t cas;
    char *value;
    uint32_t vlen;
};

struct change {
    enum cache_change_kind kind;
    struct item *it;         /* PUT: the hook's reference */
    char key[256];           /* DEL */
    uint8_t nkey;
    uint64_t cas_below;      /* FLUSH */
};

struct fetch {
    char key[256];
    uint8_t nkey;
    bool stream;
};

static struct {
    enum fake_disk_mode mode;
    struct row rows[ROWS_MAX];
    unsigned nrows;
    struct change changes[CHANGES_MAX];
    unsigned nchanges;
    struct fetch fetches[FETCHES_MAX];
    unsigned nfetches;
    unsigned fetch_count;    /* FAILING: every third one fails */
} D;

void
fake_disk_setup(enum fake_disk_mode mode)
{
    fake_disk_teardown();
    D.mode = mode;
}

void
fake_disk_started(void)
{
    if (D.mode == FAKE_DISK_OFF)
        return;
    if (D.mode == FAKE_DISK_WARM) {
        cache_filter_set_ready();
        cache_set_complete(true);
    } else {
        cache_set_complete(false);
    }
}

static struct row *
row_find(const char *key, uint8_t nkey)
{
    for (unsigned i = 0; i < D.nrows; i++)
        if (D.rows[i].nkey == nkey && memcmp(D.rows[i].key, key, nkey) == 0)
            return &D.rows[i];
    return NULL;
}

static void
row_drop(struct row *r)
{
    free(r->value);
    *r = D.rows[--D.nrows];
}

void
fake_disk_on_change(const struct cache_change *ch)
{
    CHECK(D.nchanges < CHANGES_MAX);
    struct change *c = &D.changes[D.nchanges++];
    c->kind = ch->kind;
    c->it = ch->item;
    c->nkey = ch->nkey;
    if (ch->kind == CACHE_CHANGE_DEL)
        memcpy(c->key, ch->key, ch->nkey);
    c->cas_below = ch->cas_below;
}

bool
fake_disk_need_fetch(const char *key, uint8_t nkey, unsigned how)
{
    unsigned cap = D.mode == FAKE_DISK_FAILING ? FETCHES_MAX_FAILING : FETCHES_MAX;
    if (D.mode == FAKE_DISK_OFF || D.nfetches >= cap)
        return false;
    struct fetch *f = &D.fetches[D.nfetches++];
    memcpy(f->key, key, nkey);
    f->nkey = nkey;
    f->stream = (how & CONN_FETCH_STREAM) != 0;
    return true;
}

/* The flusher's write of one item, if it is still the linked version. */
static void
commit_put(struct item *it)
{
    if (cache_item_is_current(it)) {
        struct row *r = row_find(item_key(it), it->nkey);
        if (r == NULL) {
            CHECK(D.nrows < ROWS_MAX);
            r = &D.rows[D.nrows++];
            memset(r, 0, sizeof(*r));
            memcpy(r->key, item_key(it), it->nkey);
            r->nkey = it->nkey;
        }
        free(r->value);
        r->value = malloc(it->nbytes + 1);
        CHECK(r->value != NULL);
        memcpy(r->value, item_value(it), it->nbytes);
        r->vlen = it->nbytes;
        r->flags = it->flags;
        r->exptime = atomic_load(&it->exptime);
        r->cas = it->cas;
    }
    cache_item_clean(it);
    cache_item_release(it);
}

static void
commit(void)
{
    for (unsigned i = 0; i < D.nchanges; i++) {
        struct change *c = &D.changes[i];
        if (c->kind == CACHE_CHANGE_PUT) {
            commit_put(c->it);
        } else if (c->kind == CACHE_CHANGE_DEL) {
            struct row *r = row_find(c->key, c->nkey);
            if (r != NULL)
                row_drop(r);
        } else {
            for (unsigned k = 0; k < D.nrows;)
                if (D.rows[k].cas < c->cas_below)
                    row_drop(&D.rows[k]);
                else
                    k++;
        }
    }
    D.nchanges = 0;
}

/* fetcher.c's fetch_run against the rows: the value (a reference), or
 * NULL; *failed for a read error. */
static struct item *
fetch_one(const struct fetch *f, bool *failed)
{
    *failed = D.mode == FAKE_DISK_FAILING && ++D.fetch_count % 3 == 0;
    if (*failed)
        return NULL;
    const struct row *r = row_find(f->key, f->nkey);
    if (r == NULL) {
        cache_install_absent(f->key, f->nkey);
        return NULL;
    }
    bool too_large = false, outside = false;
    struct item *it;
    if (!f->stream) {
        it = cache_item_alloc(r->key, r->nkey, r->flags, r->exptime, r->vlen,
                              &too_large);
    } else {
        it = cache_item_alloc_noevict(r->key, r->nkey, r->flags, r->exptime,
                                      r->vlen);
        if (it == NULL) {
            it = cache_item_alloc_outside(r->key, r->nkey, r->flags,
                                          r->exptime, r->vlen);
            outside = it != NULL;
        }
    }
    if (it == NULL) {
        *failed = true;   /* the fetcher's MCKV_ENOMEM */
        return NULL;
    }
    memcpy(item_value(it), r->value, r->vlen);
    it->cas = r->cas;
    if (outside) {
        if (!cache_item_is_expired(it))
            return it;
        cache_item_release(it);
        cache_install_absent(f->key, f->nkey);
        return NULL;
    }
    enum cache_result cr = cache_install(it);
    if (cr == CACHE_STORED)
        return it;
    cache_item_release(it);
    if (cr == CACHE_NOT_FOUND)
        cache_install_absent(f->key, f->nkey);
    return NULL;
}

bool
fake_disk_run(struct conn *const *cp)
{
    bool any = D.nchanges > 0 || D.nfetches > 0;
    commit();
    /* The completions of this round; a fetch a completion starts waits
     * for the next one, as on the worker's ring. */
    struct fetch done[FETCHES_MAX];
    unsigned n = D.nfetches;
    memcpy(done, D.fetches, n * sizeof(done[0]));
    D.nfetches = 0;
    for (unsigned i = 0; i < n; i++) {
        bool failed;
        struct item *it = fetch_one(&done[i], &failed);
        if (*cp != NULL)
            conn_fetch_done(*cp, it, failed);
        else if (it != NULL)
            cache_item_release(it);   /* the worker finds no connection */
    }
    return any;
}

bool
fake_disk_idle(void)
{
    return D.nchanges == 0 && D.nfetches == 0;
}

void
fake_disk_teardown(void)
{
    for (unsigned i = 0; i < D.nchanges; i++)
        if (D.changes[i].kind == CACHE_CHANGE_PUT)
            cache_item_release(D.changes[i].it);
    D.nchanges = 0;
    D.nfetches = 0;
    for (unsigned i = 0; i < D.nrows; i++)
        free(D.rows[i].value);
    D.nrows = 0;
    D.fetch_count = 0;
}
