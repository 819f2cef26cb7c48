/*
 * sqlite_schema.c: what a new handle of the SQLite engine sets up before its
 * first statement: the writer's pragmas (page size and WAL mode for a new
 * file; synchronous, secure_delete, the WAL hook per connection), and the
 * tables, created in an empty file or checked in an existing one. A reader
 * only checks the version: the writer created the file first.
 */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "engines/sqlite_priv.h"
#include "util/status.h"

/* Bumped whenever the rowid layout changes; other layouts (benchmark only)
 * store their own numbers so a handle never reads a layout it does not know. */
#define SQLITE_KV_SCHEMA_VERSION 1
#define SQLITE_KV_KEYED_SCHEMA_VERSION 1001

static const char sqlite_create_rowid[] =
    "CREATE TABLE kv(id INTEGER PRIMARY KEY, key BLOB NOT NULL,"
    " flags INTEGER NOT NULL, exptime INTEGER NOT NULL, cas INTEGER NOT NULL,"
    " value BLOB NOT NULL);"
    "CREATE UNIQUE INDEX kv_key ON kv(key);";
static const char sqlite_create_keyed[] =
    "CREATE TABLE kv(key BLOB PRIMARY KEY, flags INTEGER NOT NULL,"
    " exptime INTEGER NOT NULL, cas INTEGER NOT NULL, value BLOB NOT NULL)"
    " WITHOUT ROWID;";
static const char sqlite_create_meta[] =
    "CREATE TABLE meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL);";

/* Writer: pragmas that only take effect on a new file, then per-connection
 * ones. */
int
sqlite_setup_writer(struct kvstore *kv, const struct kvstore_options *opts)
{
    const struct sqlite_tuning *t = kv->tuning;
    char mode[16];
    int status;

    if (t->page_size != 0 && (status = sqlite_pragma(kv, "page_size", t->page_size)) < 0)
        return status;
    if (t->wal) {
        if ((status = sqlite_query(kv, "PRAGMA journal_mode = WAL", NULL, mode,
                                   sizeof(mode))) < 0)
            return status;
        if (strcmp(mode, "wal") != 0)
            return sqlite_fail_msg(kv, MCKV_EIO, "journal_mode=WAL refused");
        if (t->ckpt_bytes != 0) {
            /* The WAL file shrinks back to this size when it restarts. That
             * truncation runs in the commit that restarts it, and takes
             * 50-100 ms for a few hundred MiB: with a checkpointer the limit
             * is the cap, which the WAL rarely passes. */
            if ((status = sqlite_pragma(kv, "journal_size_limit",
                                        sqlite_wal_limit_bytes(t))) < 0)
                return status;
            sqlite3_wal_hook(kv->db, sqlite_on_wal, kv);  /* replaces autocheckpoint */
        }
    }
    if ((opts->synchronous_full || !t->sqlite_sync) &&
        (status = sqlite_pragma(kv, "synchronous", opts->synchronous_full ? 2 : 1)) < 0)
        return status;
    /* FAST: zero deleted content only where that costs no extra I/O. */
    if (!t->sqlite_secure_delete)
        return sqlite_exec_sql(kv, "PRAGMA secure_delete = FAST");
    return MCKV_OK;
}

static int64_t
sqlite_schema_version(const struct kvstore *kv)
{
    return kv->tuning->keyed ? SQLITE_KV_KEYED_SCHEMA_VERSION : SQLITE_KV_SCHEMA_VERSION;
}

/* Reads the root and the two edge paths of each B-tree of kv (min/max of
 * the rowid and of the key index: a few pages, whatever the size): a file
 * whose header and schema are sound but whose table or index root is
 * garbage then fails at open() with SQLITE_CORRUPT, instead of at the
 * first request that reaches it. Damage deeper in the file is found by the
 * reads that meet it (server/engine_health.h). */
static int
sqlite_probe_trees(struct kvstore *kv)
{
    static const char rowid_sql[] =
        "SELECT (SELECT min(id) FROM kv), (SELECT max(id) FROM kv),"
        " (SELECT min(key) FROM kv), (SELECT max(key) FROM kv)";
    static const char keyed_sql[] =
        "SELECT (SELECT min(key) FROM kv), (SELECT max(key) FROM kv)";
    int64_t ignored;
    int status = sqlite_query(kv, kv->tuning->keyed ? keyed_sql : rowid_sql,
                              &ignored, NULL, 0);

    /* the same reason, said shorter than the SQL */
    if (status < 0 && kv->last_rc != 0)
        status = sqlite_fail(kv, kv->last_rc, "reading the roots of kv and its index");
    return status;
}

/* The file must be an mckv database of the version this code reads (a
 * reader opens only that; the writer also creates one in an empty file). */
int
sqlite_check_version(struct kvstore *kv)
{
    int64_t version = 0;
    int status = sqlite_query(kv, "SELECT value FROM meta WHERE name = 'schema_version'",
                              &version, NULL, 0);

    if (status == MCKV_ENOTFOUND)
        return sqlite_fail_msg(kv, MCKV_EINVAL, "meta table has no schema_version");
    if (status == MCKV_OK && version != sqlite_schema_version(kv)) {
        snprintf(kv->errmsg, sizeof(kv->errmsg), "schema_version is %" PRId64
                 ", this mckv reads %" PRId64, version, sqlite_schema_version(kv));
        return MCKV_EINVAL;
    }
    if (status == MCKV_OK)
        status = sqlite_probe_trees(kv);
    return status;
}

/* Writer: creates the tables in a new file or checks the version of an
 * existing one, in one transaction. */
int
sqlite_setup_schema(struct kvstore *kv)
{
    int64_t ntables = 0, nours = 0;
    char sql[128];
    int status;

    if ((status = sqlite_exec_sql(kv, "BEGIN IMMEDIATE")) < 0)
        return status;
    status = sqlite_query(kv, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
                          &ntables, NULL, 0);
    if (status == MCKV_OK)
        status = sqlite_query(kv, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
                              " AND name IN ('kv', 'meta')", &nours, NULL, 0);
    if (status < 0)
        goto out;
    if (ntables == 0) {
        snprintf(sql, sizeof(sql), "INSERT INTO meta VALUES('schema_version', %" PRId64 ")",
                 sqlite_schema_version(kv));
        if ((status = sqlite_exec_sql(kv, sqlite_create_meta)) < 0 ||
            (status = sqlite_exec_sql(kv, kv->tuning->keyed ? sqlite_create_keyed
                                                             : sqlite_create_rowid)) < 0 ||
            (status = sqlite_exec_sql(kv, sql)) < 0)
            goto out;
        goto commit;
    }
    if (nours != 2) {
        status = sqlite_fail_msg(kv, MCKV_EINVAL, "not an mckv database (no kv/meta tables)");
        goto out;
    }
    if ((status = sqlite_check_version(kv)) < 0)
        goto out;
commit:
    if ((status = sqlite_exec_sql(kv, "COMMIT")) == MCKV_OK)
        return MCKV_OK;
out:
    sqlite3_exec(kv->db, "ROLLBACK", NULL, NULL, NULL);
    return status;
}
