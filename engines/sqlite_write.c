/*
 * sqlite_write.c: the writer's side of the SQLite engine (kvstore_ops
 * begin .. rollback), flusher thread only. Writes run inside one explicit
 * transaction (BEGIN IMMEDIATE .. COMMIT) with cached statements; a read-only
 * handle or a write outside a transaction is MCKV_EINVAL. After each COMMIT
 * the writer looks at the WAL (sqlite_maybe_checkpoint, sqlite_ckpt.c).
 */
#include <config.h>

#include "engines/sqlite_priv.h"
#include "util/status.h"

static int
sqlite_check_writer(struct kvstore *kv)
{
    if (kv->read_only)
        return sqlite_fail_msg(kv, MCKV_EINVAL, "write on a read-only handle");
    return MCKV_OK;
}

/* The statement for a write inside the open transaction (kvstore.h: writes
 * happen between begin() and commit() only). */
static int
sqlite_write_stmt(struct kvstore *kv, enum sqlite_stmt id, sqlite3_stmt **st)
{
    int status = sqlite_check_writer(kv);

    if (status < 0)
        return status;
    if (sqlite3_get_autocommit(kv->db))
        return sqlite_fail_msg(kv, MCKV_EINVAL, "write outside a transaction");
    return sqlite_stmt(kv, id, st);
}

int
sqlite_begin(struct kvstore *kv)
{
    int status = sqlite_check_writer(kv);

    if (status < 0)
        return status;
    if (!sqlite3_get_autocommit(kv->db))
        return sqlite_fail_msg(kv, MCKV_EINVAL, "begin: a transaction is already open");
    return sqlite_exec_id(kv, STMT_BEGIN, "begin");
}

int
sqlite_put(struct kvstore *kv, const struct kvstore_record *rec)
{
    sqlite3_stmt *st = NULL;
    int status = sqlite_write_stmt(kv, STMT_PUT, &st);

    if (status < 0)
        return status;
    if (sqlite_bind_bytes(st, 1, rec->key, rec->nkey) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, rec->flags) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, rec->exptime) != SQLITE_OK ||
        sqlite3_bind_int64(st, 4, (int64_t)rec->cas) != SQLITE_OK ||
        sqlite_bind_bytes(st, 5, rec->value, (int)rec->vlen) != SQLITE_OK)
        return sqlite_fail(kv, sqlite3_errcode(kv->db), "put: bind");
    return sqlite_run(kv, st, "put");
}

/* Deleting an absent key is not an error. */
int
sqlite_del(struct kvstore *kv, const char *key, uint8_t nkey)
{
    sqlite3_stmt *st = NULL;
    int status = sqlite_write_stmt(kv, STMT_DEL, &st);

    if (status < 0)
        return status;
    sqlite_bind_bytes(st, 1, key, nkey);
    return sqlite_run(kv, st, "del");
}

/* CAS values are stored as signed 64-bit integers: a cas_below past INT64_MAX
 * means every row (a WHERE-less DELETE, which SQLite does without a scan). */
int
sqlite_flush(struct kvstore *kv, uint64_t cas_below)
{
    bool all = cas_below > (uint64_t)INT64_MAX;
    sqlite3_stmt *st = NULL;
    int status = sqlite_write_stmt(kv, all ? STMT_FLUSH_ALL : STMT_FLUSH, &st);

    if (status < 0)
        return status;
    if (!all)
        sqlite3_bind_int64(st, 1, (int64_t)cas_below);
    return sqlite_run(kv, st, "flush");
}

int
sqlite_set_meta(struct kvstore *kv, const char *name, int64_t value)
{
    sqlite3_stmt *st = NULL;
    int status = sqlite_write_stmt(kv, STMT_SET_META, &st);

    if (status < 0)
        return status;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, value);
    return sqlite_run(kv, st, "set_meta");
}

int
sqlite_commit(struct kvstore *kv)
{
    int status = sqlite_check_writer(kv);

    if (status < 0)
        return status;
    if (sqlite3_get_autocommit(kv->db))
        return sqlite_fail_msg(kv, MCKV_EINVAL, "commit: no open transaction");
    /* On failure the transaction may still be open (BUSY) or already rolled
     * back by SQLite (I/O error, disk full): the caller calls rollback(). */
    if ((status = sqlite_exec_id(kv, STMT_COMMIT, "commit")) < 0)
        return status;
    kv->commits++;
    sqlite_maybe_checkpoint(kv);
    return MCKV_OK;
}

/* Succeeds when no transaction is open: SQLite rolls back by itself after
 * some errors (disk full, I/O error during commit). */
int
sqlite_rollback(struct kvstore *kv)
{
    int status = sqlite_check_writer(kv);

    if (status < 0)
        return status;
    kv->rollbacks++;
    if (sqlite3_get_autocommit(kv->db))
        return MCKV_OK;
    return sqlite_exec_id(kv, STMT_ROLLBACK, "rollback");
}
