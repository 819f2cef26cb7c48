/*
 * sqlite_sql.c: the SQL of the SQLite engine's statements and the handle's
 * statement cache (each prepared once, SQLITE_PREPARE_PERSISTENT, on first
 * use), and the helpers for one-off SQL (pragmas, the schema) that is not
 * cached. Which text a statement gets depends on the handle's tuning: the
 * keyed layout scans by key, the `replace` variant writes with INSERT OR
 * REPLACE.
 */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>

#include "engines/sqlite_priv.h"
#include "util/status.h"

/* [0]: the rowid layout and upsert; [1]: the variant (tuning->keyed for
 * STMT_SCAN, tuning->replace for STMT_PUT); NULL: same as [0]. */
static const char *const sqlite_sql[2][STMT_COUNT] = { {
    [STMT_PUT] = "INSERT INTO kv(key, flags, exptime, cas, value)"
                 " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(key) DO UPDATE SET"
                 " flags = excluded.flags, exptime = excluded.exptime,"
                 " cas = excluded.cas, value = excluded.value",
    [STMT_SCAN] = "SELECT id, key, flags, exptime, cas, value FROM kv"
                  " WHERE id > ?1 AND id <= ?3 ORDER BY id LIMIT ?2",
    [STMT_SCAN_END] = "SELECT max(id) FROM kv",
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_DEL] = "DELETE FROM kv WHERE key = ?1",
    [STMT_FLUSH] = "DELETE FROM kv WHERE cas < ?1",
    [STMT_FLUSH_ALL] = "DELETE FROM kv",
    [STMT_SET_META] = "INSERT INTO meta(name, value) VALUES(?1, ?2)"
                      " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
    [STMT_GET_META] = "SELECT value FROM meta WHERE name = ?1",
    [STMT_GET] = "SELECT flags, exptime, cas, value FROM kv WHERE key = ?1",
}, {
    [STMT_PUT] = "INSERT OR REPLACE INTO kv(key, flags, exptime, cas, value)"
                 " VALUES(?1, ?2, ?3, ?4, ?5)",
    [STMT_SCAN] = "SELECT 0, key, flags, exptime, cas, value FROM kv"
                  " WHERE key > ?1 ORDER BY key LIMIT ?2",
} };

/* Returns the handle's cached statement `id`, preparing it on first use. */
int
sqlite_stmt(struct kvstore *kv, enum sqlite_stmt id, sqlite3_stmt **out)
{
    bool variant = id == STMT_SCAN ? kv->tuning->keyed : kv->tuning->replace;
    const char *sql;
    int rc;

    if (kv->stmt[id] == NULL) {
        sql = variant && sqlite_sql[1][id] != NULL ? sqlite_sql[1][id] : sqlite_sql[0][id];
        rc = sqlite3_prepare_v3(kv->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                &kv->stmt[id], NULL);
        if (rc != SQLITE_OK)
            return sqlite_fail(kv, rc, "prepare");
    }
    *out = kv->stmt[id];
    return MCKV_OK;
}

/* Steps a statement that returns no rows, then resets it. */
int
sqlite_run(struct kvstore *kv, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    int status = rc == SQLITE_DONE || rc == SQLITE_ROW ? MCKV_OK : sqlite_fail(kv, rc, what);

    sqlite3_reset(st);
    return status;
}

int
sqlite_exec_id(struct kvstore *kv, enum sqlite_stmt id, const char *what)
{
    sqlite3_stmt *st = NULL;
    int status = sqlite_stmt(kv, id, &st);

    return status < 0 ? status : sqlite_run(kv, st, what);
}

/* One-off SQL (pragmas, schema): not cached. */
int
sqlite_exec_sql(struct kvstore *kv, const char *sql)
{
    int rc = sqlite3_exec(kv->db, sql, NULL, NULL, NULL);

    return rc == SQLITE_OK ? MCKV_OK : sqlite_fail(kv, rc, sql);
}

/* Runs one-off SQL that yields one row; its first column goes to *value
 * (MCKV_ENOTFOUND for no row). `text` (may be NULL) receives it as text. */
int
sqlite_query(struct kvstore *kv, const char *sql, int64_t *value, char *text, size_t ntext)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(kv->db, sql, -1, &st, NULL);
    int status;

    if (rc != SQLITE_OK)
        return sqlite_fail(kv, rc, sql);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (value != NULL)
            *value = sqlite3_column_int64(st, 0);
        if (text != NULL) {
            const unsigned char *s = sqlite3_column_text(st, 0);
            snprintf(text, ntext, "%s", s != NULL ? (const char *)s : "");
        }
        status = MCKV_OK;
    } else if (rc == SQLITE_DONE) {
        status = MCKV_ENOTFOUND;
    } else {
        status = sqlite_fail(kv, rc, sql);
    }
    sqlite3_finalize(st);
    return status;
}

int
sqlite_pragma(struct kvstore *kv, const char *name, int64_t value)
{
    char sql[96];

    snprintf(sql, sizeof(sql), "PRAGMA %s = %" PRId64, name, value);
    return sqlite_exec_sql(kv, sql);
}

/* Binds a blob that may be empty (a NULL pointer would bind SQL NULL). */
int
sqlite_bind_bytes(sqlite3_stmt *st, int col, const char *p, int n)
{
    if (n == 0)
        return sqlite3_bind_zeroblob(st, col, 0);
    return sqlite3_bind_blob(st, col, p, n, SQLITE_STATIC);
}
