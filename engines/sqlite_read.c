/*
 * sqlite_read.c: reads of the SQLite engine (kvstore_ops get_meta, get,
 * scan, scan_end, scan_range), on any handle. Each call is its own short
 * read transaction (the statement's reset ends it), so a reader never pins
 * a WAL snapshot for long and the checkpoints get past it.
 */
#include <config.h>

#include <string.h>

#include "engines/sqlite_priv.h"
#include "util/status.h"

int
sqlite_get_meta(struct kvstore *kv, const char *name, int64_t *value)
{
    sqlite3_stmt *st = NULL;
    int status = sqlite_stmt(kv, STMT_GET_META, &st);
    int rc;

    if (status < 0)
        return status;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *value = sqlite3_column_int64(st, 0);
    else if (rc == SQLITE_DONE)
        status = MCKV_ENOTFOUND;
    else
        status = sqlite_fail(kv, rc, "get_meta");
    sqlite3_reset(st);
    return status;
}

int
sqlite_get(struct kvstore *kv, const char *key, uint8_t nkey,
           kvstore_alloc_fn alloc, void *ctx, struct kvstore_record *rec)
{
    sqlite3_stmt *st = NULL;
    const void *value;
    char *dst;
    int status = sqlite_stmt(kv, STMT_GET, &st);
    int rc, n;

    if (status < 0)
        return status;
    sqlite_bind_bytes(st, 1, key, nkey);
    if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
        status = rc == SQLITE_DONE ? MCKV_ENOTFOUND : sqlite_fail(kv, rc, "get");
        goto out;
    }
    value = sqlite3_column_blob(st, 3);
    if ((n = sqlite3_column_bytes(st, 3)) > 0 && value == NULL) {
        status = sqlite_fail(kv, SQLITE_NOMEM, "get: value");
        goto out;
    }
    rec->key = key;
    rec->nkey = nkey;
    rec->flags = (uint32_t)sqlite3_column_int64(st, 0);
    rec->exptime = sqlite3_column_int64(st, 1);
    rec->cas = (uint64_t)sqlite3_column_int64(st, 2);
    rec->value = NULL;
    rec->vlen = (uint32_t)n;
    if ((dst = alloc(ctx, rec)) == NULL) {
        status = sqlite_fail_msg(kv, MCKV_ENOMEM, "get: alloc callback returned NULL");
        goto out;
    }
    if (n > 0)
        memcpy(dst, value, (size_t)n);
    rec->value = dst;
out:
    sqlite3_reset(st);  /* ends the read transaction */
    return status;
}

/* Each call is one read transaction of at most `max` rows, so a warmup in
 * chunks never pins a WAL snapshot for long. A row for which fn returns false
 * is not counted as visited: the next call starts with it. */
int
sqlite_scan_range(struct kvstore *kv, uint64_t *cursor, uint64_t end,
                  unsigned max, kvstore_scan_fn fn, void *ctx)
{
    bool keyed = kv->tuning->keyed;
    uint64_t pos = *cursor;
    struct kvstore_record rec;
    sqlite3_stmt *st = NULL;
    unsigned visited = 0;
    bool stopped = false;
    int status, rc = SQLITE_DONE;

    if (max == 0)
        return sqlite_fail_msg(kv, MCKV_EINVAL, "scan: max is 0");
    if (keyed && pos != 0 && pos != kv->scan_rows)
        return sqlite_fail_msg(kv, MCKV_EINVAL, "scan: cursor not from this handle");
    if (!keyed && pos > (uint64_t)INT64_MAX)
        return MCKV_ENOTFOUND;
    if ((status = sqlite_stmt(kv, STMT_SCAN, &st)) < 0)
        return status;
    if (keyed && end != UINT64_MAX)
        return sqlite_fail_msg(kv, MCKV_EINVAL, "scan: no ranges in this layout");
    if (!keyed) {
        rc = sqlite3_bind_int64(st, 1, (int64_t)pos);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(st, 3, end > (uint64_t)INT64_MAX ? INT64_MAX
                                                                      : (int64_t)end);
    } else if (pos == 0)
        rc = sqlite3_bind_zeroblob(st, 1, 0);  /* every key sorts after X'' */
    else
        rc = sqlite3_bind_blob(st, 1, kv->scan_key, kv->scan_nkey, SQLITE_STATIC);
    if (rc != SQLITE_OK || sqlite3_bind_int64(st, 2, max) != SQLITE_OK)
        return sqlite_fail(kv, sqlite3_errcode(kv->db), "scan: bind");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int nkey, vlen;

        rec.key = sqlite3_column_blob(st, 1);
        nkey = sqlite3_column_bytes(st, 1);
        rec.value = sqlite3_column_blob(st, 5);
        vlen = sqlite3_column_bytes(st, 5);
        if (nkey > 255 || (rec.key == NULL && nkey > 0) || (rec.value == NULL && vlen > 0)) {
            rc = (rec.key == NULL || rec.value == NULL) ? SQLITE_NOMEM : SQLITE_CORRUPT;
            break;
        }
        rec.nkey = (uint8_t)nkey;
        rec.flags = (uint32_t)sqlite3_column_int64(st, 2);
        rec.exptime = sqlite3_column_int64(st, 3);
        rec.cas = (uint64_t)sqlite3_column_int64(st, 4);
        rec.vlen = (uint32_t)vlen;
        if (!fn(ctx, &rec)) {
            stopped = true;
            break;
        }
        visited++;
        if (keyed) {
            memcpy(kv->scan_key, rec.key, rec.nkey);
            kv->scan_nkey = rec.nkey;
            pos = kv->scan_rows = pos + 1;
        } else {
            pos = (uint64_t)sqlite3_column_int64(st, 0);
        }
    }
    if (!stopped && rc != SQLITE_DONE)
        status = sqlite_fail(kv, rc, "scan");
    sqlite3_reset(st);
    if (status < 0)
        return status;
    *cursor = pos;
    return visited == 0 && !stopped ? MCKV_ENOTFOUND : MCKV_OK;
}

int
sqlite_scan(struct kvstore *kv, uint64_t *cursor, unsigned max,
            kvstore_scan_fn fn, void *ctx)
{
    return sqlite_scan_range(kv, cursor, UINT64_MAX, max, fn, ctx);
}

/* The rowid layout's cursor is the id: max(id) is one B-tree descent. */
int
sqlite_scan_end(struct kvstore *kv, uint64_t *end)
{
    sqlite3_stmt *st = NULL;
    int status, rc;

    if (kv->tuning->keyed)
        return sqlite_fail_msg(kv, MCKV_EINVAL, "scan_end: no ranges in this layout");
    if ((status = sqlite_stmt(kv, STMT_SCAN_END, &st)) < 0)
        return status;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int64_t v = sqlite3_column_int64(st, 0);   /* NULL (empty) reads 0 */
        *end = v > 0 ? (uint64_t)v : 0;
        rc = SQLITE_DONE;
    }
    status = rc == SQLITE_DONE ? MCKV_OK : sqlite_fail(kv, rc, "scan_end");
    sqlite3_reset(st);
    return status;
}
