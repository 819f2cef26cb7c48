/*
 * test_engine_rocksdb.c: the RocksDB engine (engines/rocksdb*.c). First the
 * engine contract every persistent engine passes (engine_contract.c), then
 * what is RocksDB's own: foreign paths are refused with a reason (an SQLite
 * file, a stray directory, another program's RocksDB; and the SQLite engine
 * refuses a RocksDB directory), one writer per path and process with readers
 * sharing its database, the compaction filter dropping flushed and expired
 * rows, synchronous commits, and stats.
 */
#include <config.h>

#include "tests/unit/engine_contract.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engines/kvstore.h"
#include "engines/rocksdb_priv.h"
#include "tests/unit/engine_sqlite_helpers.h"
#include "util/status.h"

/* open() must fail, leave *kv NULL and say `why` in last_error(NULL). */
static void
open_fails(const struct kvstore_ops *e, const char *path, bool read_only, const char *why)
{
    struct kvstore_options o = { .path = path, .read_only = read_only };
    struct kvstore *kv = (struct kvstore *)&o;

    assert_true(e->open(&kv, &o) < 0);
    assert_null(kv);
    if (strstr(e->last_error(NULL), why) == NULL)
        fail_msg("open %s: \"%s\" does not say \"%s\"", path, e->last_error(NULL), why);
}

static void
test_foreign_paths(void **state)
{
    char path[300], file[400];
    struct kvstore *kv;
    char *err = NULL;
    rocksdb_options_t *o;
    rocksdb_t *db;
    int fd;

    (void)state;
    /* An SQLite database where a directory is expected. */
    new_path(path, sizeof(path));
    ops = &kvstore_sqlite_ops;
    kv = open_kv(path, false);
    ops->close(kv);
    ops = &kvstore_rocksdb_ops;
    open_fails(ops, path, false, "SQLite database file");
    open_fails(ops, path, true, "SQLite database file");
    /* A directory with other things in it. */
    new_path(path, sizeof(path));
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(file, sizeof(file), "%s/notes.txt", path);
    assert_true((fd = open(file, O_CREAT | O_WRONLY, 0644)) >= 0);
    close(fd);
    open_fails(ops, path, false, "not empty");
    open_fails(ops, path, true, "no RocksDB database");
    /* An empty directory is a new database. */
    new_path(path, sizeof(path));
    assert_int_equal(mkdir(path, 0755), 0);
    kv = open_kv(path, false);
    ops->close(kv);
    /* SQLite refuses a RocksDB directory with a reason. */
    open_fails(&kvstore_sqlite_ops, path, false, "RocksDB");
    /* Somebody else's RocksDB. */
    new_path(path, sizeof(path));
    o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    db = rocksdb_open(o, path, &err);
    assert_null(err);
    rocksdb_close(db);
    rocksdb_options_destroy(o);
    open_fails(ops, path, false, "not mckv's");
    /* Nothing there for a reader. */
    new_path(path, sizeof(path));
    open_fails(ops, path, true, "open");
}

/* One writer per path in a process; readers share its database, and a
 * writer may come back once the first one closed. */
static void
test_sharing(void **state)
{
    char path[300];
    struct kvstore *w = open_kv(new_path(path, sizeof(path)), false), *r, *w2;

    (void)state;
    open_fails(ops, path, false, "already open for writing");
    r = open_kv(path, true);
    assert_ptr_equal(r->rdb, w->rdb);
    assert_int_equal(r->rdb->refs, 2);
    ops->close(w);
    w2 = open_kv(path, false);
    assert_ptr_equal(w2->rdb, r->rdb);
    assert_int_equal(ops->begin(w2), MCKV_OK);
    put(w2, "k", "v", 0, 1);
    assert_int_equal(ops->commit(w2), MCKV_OK);
    assert_int_equal(get_check(r, "k", "v", 0), MCKV_OK);
    ops->close(w2);
    ops->close(r);
    /* A reader alone opens the database read-only; a writer must wait. */
    r = open_kv(path, true);
    assert_true(r->rdb->opened_read_only);
    open_fails(ops, path, false, "read-only in this process");
    assert_int_equal(get_check(r, "k", "v", 0), MCKV_OK);
    ops->close(r);
}

static uint64_t
stat_value(struct kvstore *kv, const char *name);

/* Flushed rows and rows past their expiry leave the files at compaction. */
static void
test_compaction_filter(void **state)
{
    char path[300], key[16], value[200];
    struct kvstore *kv = open_kv(new_path(path, sizeof(path)), false);
    int64_t later = (int64_t)time(NULL) + 3600;
    struct count c = { 0 };
    char *err = NULL;

    (void)state;
    memset(value, 'x', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    assert_int_equal(ops->begin(kv), MCKV_OK);
    for (unsigned i = 1; i <= 300; i++) {
        struct kvstore_record r = make_rec(key, value, 0, i);

        snprintf(key, sizeof(key), "key%03u", i);
        r.nkey = (uint8_t)strlen(key);
        r.exptime = i <= 200 ? later : 1;    /* 201..300 have expired */
        assert_int_equal(ops->put(kv, &r), MCKV_OK);
    }
    assert_int_equal(ops->commit(kv), MCKV_OK);
    assert_int_equal(ops->begin(kv), MCKV_OK);
    assert_int_equal(ops->flush(kv, 101), MCKV_OK);     /* takes 1..100 */
    assert_int_equal(ops->commit(kv), MCKV_OK);
    /* The reads hide the flushed rows at once; expired ones are the
     * caller's business until compaction. */
    assert_int_equal(scan_all(kv, 50, &c), 200);
    assert_int_equal(stat_value(kv, "filtered_rows"), 0);
    rocksdb_compact_range_cf(kv->rdb->db, kv->rdb->cf_data, NULL, 0, NULL, 0);
    assert_int_equal(stat_value(kv, "filtered_rows"), 200);
    c.rows = 0;
    assert_int_equal(scan_all(kv, 50, &c), 100);
    (void)err;
    ops->close(kv);
}

/* synchronous_full: every commit syncs the WAL; the data is the same. */
static void
test_sync_commits(void **state)
{
    char path[300];
    struct kvstore_options o = { .path = new_path(path, sizeof(path)), .synchronous_full = true };
    struct kvstore *kv = NULL;

    (void)state;
    assert_int_equal(ops->open(&kv, &o), MCKV_OK);
    assert_int_equal(write_batch(kv, 1, 50), MCKV_OK);
    assert_int_equal(write_batch(kv, 2, 50), MCKV_OK);
    ops->close(kv);
    kv = open_kv(path, true);
    assert_true(has_key(kv, "f2-49"));
    ops->close(kv);
}

struct stat_find {
    const char *name;
    uint64_t value;
    bool found;
    unsigned n;
};

static void
stat_cb(void *ctx, const char *name, const char *value)
{
    struct stat_find *s = ctx;

    s->n++;
    if (strcmp(name, s->name) == 0) {
        s->found = true;
        s->value = strtoull(value, NULL, 10);
    }
}

static uint64_t
stat_value(struct kvstore *kv, const char *name)
{
    struct stat_find s = { .name = name };

    ops->stats(kv, stat_cb, &s);
    if (!s.found)
        fail_msg("no stat %s", name);
    return s.value;
}

static void
engine_name_cb(void *ctx, const char *name, const char *value)
{
    if (strcmp(name, "engine") == 0)
        snprintf(ctx, 16, "%s", value);
}

static void
test_stats(void **state)
{
    char path[300], engine[16] = "";
    struct kvstore *kv = open_kv(new_path(path, sizeof(path)), false);

    (void)state;
    assert_int_equal(write_batch(kv, 1, 10), MCKV_OK);
    ops->stats(kv, engine_name_cb, engine);
    assert_string_equal(engine, "rocksdb");
    assert_int_equal(stat_value(kv, "commits"), 2);   /* the schema's, ours */
    assert_true(stat_value(kv, "estimate_num_keys") >= 10);
    assert_true(stat_value(kv, "memtable_bytes") > 10 * 1024);
    (void)stat_value(kv, "sst_file_bytes");
    (void)stat_value(kv, "running_compactions");
    (void)stat_value(kv, "delayed_write_rate");
    assert_int_equal(stat_value(kv, "write_stopped"), 0);
    assert_int_equal(stat_value(kv, "l0_files"), 0);       /* all in the memtable */
    assert_ptr_equal(kvstore_find("rocksdb"), &kvstore_rocksdb_ops);
    assert_true(kvstore_rocksdb_ops.persistent);
    ops->close(kv);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_foreign_paths),
        cmocka_unit_test(test_sharing),
        cmocka_unit_test(test_compaction_filter),
        cmocka_unit_test(test_sync_commits),
        cmocka_unit_test(test_stats),
    };
    int failed;

    ops = &kvstore_rocksdb_ops;
    failed = engine_contract_run("engine contract: rocksdb");
    ops = &kvstore_rocksdb_ops;
    return failed + cmocka_run_group_tests_name("rocksdb", tests, group_setup, group_teardown);
}
