/*
 * rocksdb_data.c: the records of the RocksDB engine: their layout, the
 * writer's batch (kvstore_ops begin .. rollback, flusher thread only), the
 * reads (get, get_meta, scan; any handle) and the compaction filter.
 *
 * The flush mark. flush(cas_below) must remove every row stored before it
 * whose cas is below cas_below; deleting them one by one would be O(rows)
 * on the flusher thread (millions of tombstones), and a DeleteRange cannot
 * select by cas. Instead every row carries the flush epoch it was written
 * in (the number of flushes before it in the write order), and the meta
 * table holds the current epoch and the highest cas_below of the flushes.
 * A flush bumps the epoch and raises the mark, in the same batch as the
 * writes around it, so it is atomic with them; a row is flushed when
 *     row.epoch < flush_epoch  &&  row.cas < flush_below.
 * get and scan treat flushed rows as absent, and the compaction filter drops
 * them (and rows whose expiry has passed) whenever RocksDB rewrites their
 * files, which it does anyway as data arrives. Exact as long as cas_below
 * never decreases from one flush to the next, which holds because CAS only
 * grows (a smaller one would be treated as the larger: more is flushed, not
 * less). RocksDB turns a filtered row into a deletion marker above older
 * versions of the key, so no older version comes back.
 */
#include <config.h>

#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "engines/rocksdb_priv.h"
#include "util/status.h"

static void
put_le(char *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (char)(uint8_t)(v >> (8 * i));
}

static uint64_t
get_le(const char *p, unsigned n)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)(uint8_t)p[i] << (8 * i);
    return v;
}

struct rocks_hdr {
    uint32_t flags;
    int64_t exptime;
    uint64_t cas;
    uint64_t epoch;
};

/* False for a value too short or of another format (corrupt). */
static bool
rocks_decode(const char *v, size_t n, struct rocks_hdr *h)
{
    if (n < ROCKS_REC_HEADER || (uint8_t)v[0] != ROCKS_REC_FORMAT)
        return false;
    h->flags = (uint32_t)get_le(v + 1, 4);
    h->exptime = (int64_t)get_le(v + 5, 8);
    h->cas = get_le(v + 13, 8);
    h->epoch = get_le(v + 21, 8);
    return true;
}

/* Flushed by a flush() committed since the row was written. Any thread:
 * the epoch is read first (acquire) so its mark is at least as new. */
static bool
rocks_flushed(struct rocks_db *rdb, const struct rocks_hdr *h)
{
    uint64_t epoch = atomic_load_explicit(&rdb->flush_epoch, memory_order_acquire);
    uint64_t below = atomic_load_explicit(&rdb->flush_below, memory_order_acquire);

    return h->epoch < epoch && h->cas < below;
}

/* ---------------------------------------------------- compaction filter */

/* RocksDB compaction thread. Nonzero: drop the row. A row that does not
 * decode is kept: the reads report it. */
static unsigned char
rocks_filter(void *state, int level, const char *key, size_t nkey, const char *value,
             size_t nvalue, char **new_value, size_t *new_nvalue, unsigned char *changed)
{
    struct rocks_db *rdb = state;
    struct rocks_hdr h;

    (void)level; (void)key; (void)nkey; (void)new_value; (void)new_nvalue;
    *changed = 0;
    if (!rocks_decode(value, nvalue, &h))
        return 0;
    if (rocks_flushed(rdb, &h) || (h.exptime != 0 && h.exptime < (int64_t)time(NULL))) {
        atomic_fetch_add_explicit(&rdb->filtered_rows, 1, memory_order_relaxed);
        return 1;
    }
    return 0;
}

static const char *
rocks_filter_name(void *state)
{
    (void)state;
    return "mckv.flushed_or_expired";
}

/* The C API calls it unconditionally; rdb frees itself (rocksdb.c) once the
 * DB, and so every compaction, is closed. */
static void
rocks_filter_destroy(void *state)
{
    (void)state;
}

rocksdb_compactionfilter_t *
rocks_filter_create(struct rocks_db *rdb)
{
    return rocksdb_compactionfilter_create(rdb, rocks_filter_destroy, rocks_filter,
                                           rocks_filter_name);
}

/* ------------------------------------------------------------- the batch */

static int
rocks_check_write(struct kvstore *kv)
{
    if (kv->read_only)
        return rocks_fail(kv, MCKV_EINVAL, "write on a read-only handle", NULL);
    if (!kv->in_txn)
        return rocks_fail(kv, MCKV_EINVAL, "write outside a transaction", NULL);
    return MCKV_OK;
}

int
rocks_load_mark(struct kvstore *kv)
{
    int64_t epoch = 0, below = 0;
    int status;

    if ((status = rocks_get_meta(kv, ROCKS_META_EPOCH, &epoch)) < 0 && status != MCKV_ENOTFOUND)
        return status;
    if ((status = rocks_get_meta(kv, ROCKS_META_BELOW, &below)) < 0 && status != MCKV_ENOTFOUND)
        return status;
    atomic_store_explicit(&kv->rdb->flush_below, (uint64_t)below, memory_order_release);
    atomic_store_explicit(&kv->rdb->flush_epoch, (uint64_t)epoch, memory_order_release);
    return MCKV_OK;
}

int
rocks_begin(struct kvstore *kv)
{
    if (kv->read_only)
        return rocks_fail(kv, MCKV_EINVAL, "write on a read-only handle", NULL);
    if (kv->in_txn)
        return rocks_fail(kv, MCKV_EINVAL, "begin: a transaction is already open", NULL);
    rocksdb_writebatch_clear(kv->batch);
    kv->in_txn = true;
    kv->batch_flushed = false;
    /* Only this thread moves the mark, so the published one is current. */
    kv->batch_epoch = atomic_load_explicit(&kv->rdb->flush_epoch, memory_order_relaxed);
    kv->batch_below = atomic_load_explicit(&kv->rdb->flush_below, memory_order_relaxed);
    return MCKV_OK;
}

/* The value is passed as two slices (header, bytes): no copy here, the
 * batch copies once. */
int
rocks_put(struct kvstore *kv, const struct kvstore_record *rec)
{
    char hdr[ROCKS_REC_HEADER];
    const char *parts[2] = { hdr, rec->value != NULL ? rec->value : "" };
    size_t sizes[2] = { sizeof(hdr), rec->vlen };
    const char *key = rec->key;
    size_t nkey = rec->nkey;
    int status = rocks_check_write(kv);

    if (status < 0)
        return status;
    hdr[0] = ROCKS_REC_FORMAT;
    put_le(hdr + 1, rec->flags, 4);
    put_le(hdr + 5, (uint64_t)rec->exptime, 8);
    put_le(hdr + 13, rec->cas, 8);
    put_le(hdr + 21, kv->batch_epoch, 8);
    rocksdb_writebatch_putv_cf(kv->batch, kv->rdb->cf_data, 1, &key, &nkey, 2, parts, sizes);
    return MCKV_OK;
}

/* Deleting an absent key is not an error (a tombstone either way). */
int
rocks_del(struct kvstore *kv, const char *key, uint8_t nkey)
{
    int status = rocks_check_write(kv);

    if (status < 0)
        return status;
    rocksdb_writebatch_delete_cf(kv->batch, kv->rdb->cf_data, key, nkey);
    return MCKV_OK;
}

static void
rocks_batch_meta(struct kvstore *kv, const char *name, int64_t value)
{
    char v[8];

    put_le(v, (uint64_t)value, 8);
    rocksdb_writebatch_put_cf(kv->batch, kv->rdb->cf_meta, name, strlen(name), v, sizeof(v));
}

/* O(1): moves the flush mark (the file's comment); rows written later in
 * this batch carry the new epoch and are not flushed by it. */
int
rocks_flush(struct kvstore *kv, uint64_t cas_below)
{
    int status = rocks_check_write(kv);

    if (status < 0)
        return status;
    kv->batch_epoch++;
    if (cas_below > kv->batch_below)
        kv->batch_below = cas_below;
    kv->batch_flushed = true;
    rocks_batch_meta(kv, ROCKS_META_EPOCH, (int64_t)kv->batch_epoch);
    rocks_batch_meta(kv, ROCKS_META_BELOW, (int64_t)kv->batch_below);
    return MCKV_OK;
}

int
rocks_set_meta(struct kvstore *kv, const char *name, int64_t value)
{
    int status = rocks_check_write(kv);

    if (status < 0)
        return status;
    rocks_batch_meta(kv, name, value);
    return MCKV_OK;
}

static uint64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* One rocksdb_write(): the batch is atomic. On failure the batch stays open
 * for the caller's rollback(). */
int
rocks_commit(struct kvstore *kv)
{
    char *err = NULL;
    uint64_t t0, us;

    if (kv->read_only)
        return rocks_fail(kv, MCKV_EINVAL, "write on a read-only handle", NULL);
    if (!kv->in_txn)
        return rocks_fail(kv, MCKV_EINVAL, "commit: no open transaction", NULL);
    t0 = now_us();
    rocksdb_write(kv->rdb->db, kv->wopts, kv->batch, &err);
    us = now_us() - t0;
    kv->write_us += us;
    if (us > kv->write_max_us)
        kv->write_max_us = us;
    if (err != NULL)
        return rocks_fail(kv, MCKV_EIO, "commit", err);
    if (kv->batch_flushed) {
        /* Release: the mark first, then the epoch that makes it apply, so
         * a reader that sees the new epoch sees the new mark. */
        atomic_store_explicit(&kv->rdb->flush_below, kv->batch_below, memory_order_release);
        atomic_store_explicit(&kv->rdb->flush_epoch, kv->batch_epoch, memory_order_release);
    }
    rocksdb_writebatch_clear(kv->batch);
    kv->in_txn = false;
    kv->commits++;
    return MCKV_OK;
}

int
rocks_rollback(struct kvstore *kv)
{
    if (kv->read_only)
        return rocks_fail(kv, MCKV_EINVAL, "write on a read-only handle", NULL);
    kv->rollbacks++;
    rocksdb_writebatch_clear(kv->batch);
    kv->in_txn = false;
    return MCKV_OK;
}

/* ----------------------------------------------------------------- reads */

int
rocks_get_meta(struct kvstore *kv, const char *name, int64_t *value)
{
    char *err = NULL, *v;
    size_t n = 0;

    v = rocksdb_get_cf(kv->rdb->db, kv->ropts, kv->rdb->cf_meta, name, strlen(name), &n, &err);
    if (err != NULL)
        return rocks_fail(kv, MCKV_EIO, "get_meta", err);
    if (v == NULL)
        return MCKV_ENOTFOUND;
    if (n != 8) {
        rocksdb_free(v);
        return rocks_fail(kv, MCKV_EIO, "get_meta: corrupt value", NULL);
    }
    *value = (int64_t)get_le(v, 8);
    rocksdb_free(v);
    return MCKV_OK;
}

/* A pinned read: the value is copied once, from RocksDB's block straight
 * into the caller's buffer. */
int
rocks_get(struct kvstore *kv, const char *key, uint8_t nkey,
          kvstore_alloc_fn alloc, void *ctx, struct kvstore_record *rec)
{
    rocksdb_pinnableslice_t *ps;
    struct rocks_hdr h;
    const char *v;
    char *err = NULL, *dst;
    size_t n = 0;
    int status = MCKV_OK;

    ps = rocksdb_get_pinned_cf(kv->rdb->db, kv->ropts, kv->rdb->cf_data, key, nkey, &err);
    if (err != NULL)
        return rocks_fail(kv, MCKV_EIO, "get", err);
    if (ps == NULL)
        return MCKV_ENOTFOUND;
    v = rocksdb_pinnableslice_value(ps, &n);
    if (!rocks_decode(v, n, &h)) {
        status = rocks_fail(kv, MCKV_EIO, "get: corrupt record", NULL);
        goto out;
    }
    if (rocks_flushed(kv->rdb, &h)) {
        status = MCKV_ENOTFOUND;
        goto out;
    }
    rec->key = key;
    rec->nkey = nkey;
    rec->flags = h.flags;
    rec->exptime = h.exptime;
    rec->cas = h.cas;
    rec->value = NULL;
    rec->vlen = (uint32_t)(n - ROCKS_REC_HEADER);
    if ((dst = alloc(ctx, rec)) == NULL) {
        status = rocks_fail(kv, MCKV_ENOMEM, "get: alloc callback returned NULL", NULL);
        goto out;
    }
    memcpy(dst, v + ROCKS_REC_HEADER, rec->vlen);
    rec->value = dst;
out:
    rocksdb_pinnableslice_destroy(ps);
    return status;
}

/* Key order, with a row count as the cursor and the last key visited kept
 * in the handle (as SQLite's keyed layout): each call is one iterator (one
 * implicit snapshot) over at most `max` rows, so a long warmup pins no
 * memtable or file for long. Flushed rows are skipped and not counted. */
int
rocks_scan(struct kvstore *kv, uint64_t *cursor, unsigned max,
           kvstore_scan_fn fn, void *ctx)
{
    uint64_t pos = *cursor;
    rocksdb_iterator_t *it;
    unsigned visited = 0;
    bool stopped = false;
    char *err = NULL;
    int status = MCKV_OK;

    if (max == 0)
        return rocks_fail(kv, MCKV_EINVAL, "scan: max is 0", NULL);
    if (pos != 0 && pos != kv->scan_rows)
        return rocks_fail(kv, MCKV_EINVAL, "scan: cursor not from this handle", NULL);
    if ((it = rocksdb_create_iterator_cf(kv->rdb->db, kv->ropts, kv->rdb->cf_data)) == NULL)
        return rocks_fail(kv, MCKV_ENOMEM, "scan: out of memory", NULL);
    if (pos == 0) {
        rocksdb_iter_seek_to_first(it);
    } else {
        size_t n = 0;
        const char *k;

        rocksdb_iter_seek(it, kv->scan_key, kv->scan_nkey);
        if (rocksdb_iter_valid(it) && (k = rocksdb_iter_key(it, &n)) != NULL &&
            n == kv->scan_nkey && memcmp(k, kv->scan_key, n) == 0)
            rocksdb_iter_next(it);
    }
    for (; visited < max && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        struct kvstore_record rec;
        struct rocks_hdr h;
        size_t nkey = 0, nval = 0;
        const char *k = rocksdb_iter_key(it, &nkey);
        const char *v = rocksdb_iter_value(it, &nval);

        if (nkey > 255 || !rocks_decode(v, nval, &h)) {
            status = rocks_fail(kv, MCKV_EIO, "scan: corrupt record", NULL);
            break;
        }
        if (rocks_flushed(kv->rdb, &h))
            continue;
        rec.key = k;
        rec.nkey = (uint8_t)nkey;
        rec.flags = h.flags;
        rec.exptime = h.exptime;
        rec.cas = h.cas;
        rec.value = v + ROCKS_REC_HEADER;
        rec.vlen = (uint32_t)(nval - ROCKS_REC_HEADER);
        if (!fn(ctx, &rec)) {
            stopped = true;
            break;
        }
        visited++;
        memcpy(kv->scan_key, k, nkey);
        kv->scan_nkey = (uint8_t)nkey;
        pos = kv->scan_rows = pos + 1;
    }
    if (status == MCKV_OK) {
        rocksdb_iter_get_error(it, &err);
        if (err != NULL)
            status = rocks_fail(kv, MCKV_EIO, "scan", err);
    }
    rocksdb_iter_destroy(it);
    if (status < 0)
        return status;
    *cursor = pos;
    return visited == 0 && !stopped ? MCKV_ENOTFOUND : MCKV_OK;
}
