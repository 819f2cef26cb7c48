/*
 * test_engine_sqlite_fault.c: what the SQLite engine refuses and how it
 * fails: foreign or newer files, a missing directory, a write-protected
 * file (opened as nobody in a child), and a disk that fills up in the middle
 * of a transaction (RLIMIT_FSIZE in a child process) after which rollback()
 * and a retry work. Damage is MCKV_ECORRUPT: a file that is not a database
 * or is truncated, or whose table or index root is garbage, fails open()
 * (with the result code's name and advice); leaf pages overwritten in the
 * middle of the file open fine and fail the reads that reach them.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "engines/kvstore.h"
#include "tests/unit/engine_sqlite_helpers.h"
#include "util/status.h"

static void
raw_sql(const char *path, const char *sql)
{
    sqlite3 *db;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void
test_foreign_files(void **state)
{
    char path[300];
    struct kvstore_options o = { .path = path };
    struct kvstore *kv = (struct kvstore *)&o;
    FILE *f;

    (void)state;
    raw_sql(new_path(path, sizeof(path)), "CREATE TABLE other(x)");
    assert_int_equal(ops->open(&kv, &o), MCKV_EINVAL);
    assert_null(kv);
    assert_non_null(strstr(ops->last_error(NULL), "not an mckv database"));

    kv = open_kv(new_path(path, sizeof(path)), false);
    ops->close(kv);
    raw_sql(path, "UPDATE meta SET value = 99 WHERE name = 'schema_version'");
    assert_int_equal(ops->open(&kv, &o), MCKV_EINVAL);
    assert_non_null(strstr(ops->last_error(NULL), "schema_version is 99"));
    o.read_only = true;
    assert_int_equal(ops->open(&kv, &o), MCKV_EINVAL);
    o.read_only = false;

    f = fopen(new_path(path, sizeof(path)), "w");
    assert_non_null(f);
    for (int i = 0; i < 200; i++)
        fputs("this is not a database file. ", f);
    fclose(f);
    assert_int_equal(ops->open(&kv, &o), MCKV_ECORRUPT);
    assert_null(kv);
    assert_non_null(strstr(ops->last_error(NULL), "not an SQLite database"));
    assert_non_null(strstr(ops->last_error(NULL), "SQLITE_NOTADB"));

    /* truncated to half: SQLite sees the header's page count */
    kv = open_kv(new_path(path, sizeof(path)), false);
    assert_int_equal(write_batch(kv, 1, 500), MCKV_OK);
    ops->close(kv);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(truncate(path, sb.st_size / 2), 0);
    assert_int_equal(ops->open(&kv, &o), MCKV_ECORRUPT);
    assert_non_null(strstr(ops->last_error(NULL), "damaged"));
    assert_non_null(strstr(ops->last_error(NULL), "SQLITE_CORRUPT"));
    o.read_only = true;
    assert_int_equal(ops->open(&kv, &o), MCKV_ECORRUPT);
    o.read_only = false;
}

/* Overwrites page `pgno` (1-based) of the file with 0xff bytes. */
static void
overwrite_page(const char *path, int pgno, int page_size)
{
    char junk[65536];
    FILE *f = fopen(path, "r+b");

    assert_non_null(f);
    assert_true(page_size <= (int)sizeof(junk));
    memset(junk, 0xff, sizeof(junk));
    assert_int_equal(fseek(f, (long)(pgno - 1) * page_size, SEEK_SET), 0);
    assert_int_equal(fwrite(junk, 1, (size_t)page_size, f), (size_t)page_size);
    fclose(f);
}

/* The first column of one row of sql on path (opened immutable). */
static int
query_int(const char *path, const char *sql)
{
    char uri[400];
    sqlite3 *db;
    sqlite3_stmt *st;
    int v;

    snprintf(uri, sizeof(uri), "file:%s?immutable=1", path);
    assert_int_equal(sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI,
                                     NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* A garbled root page of the table or of its key index: the header and
 * the schema are sound, but open() reads both roots and fails. */
static void
test_damaged_roots(void **state)
{
    static const char *const trees[] = { "kv", "kv_key" };
    char path[300];
    struct kvstore_options o = { .path = path };
    struct kvstore *kv;

    (void)state;
    for (unsigned i = 0; i < 2; i++) {
        char sql[96];
        kv = open_kv(new_path(path, sizeof(path)), false);
        assert_int_equal(write_batch(kv, 1, 500), MCKV_OK);
        ops->close(kv);
        snprintf(sql, sizeof(sql), "SELECT rootpage FROM sqlite_schema WHERE name = '%s'",
                 trees[i]);
        overwrite_page(path, query_int(path, sql), query_int(path, "PRAGMA page_size"));
        o.read_only = false;
        assert_int_equal(ops->open(&kv, &o), MCKV_ECORRUPT);
        assert_non_null(strstr(ops->last_error(NULL), "SQLITE_CORRUPT"));
        o.read_only = true;
        assert_int_equal(ops->open(&kv, &o), MCKV_ECORRUPT);
    }
}

/* Overwrites n leaf pages of table kv from the middle of the file. */
static void
damage_leaves(const char *path, unsigned n)
{
    char uri[400];
    sqlite3 *db;
    sqlite3_stmt *st;
    int pages[4096], npages = 0, page_size;

    snprintf(uri, sizeof(uri), "file:%s?immutable=1", path);
    assert_int_equal(sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI,
                                     NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    page_size = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT pageno FROM dbstat WHERE name = 'kv'"
                                        " AND pagetype = 'leaf' ORDER BY pageno", -1,
                                        &st, NULL), SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW && npages < 4096)
        pages[npages++] = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_true(npages > (int)n * 4);

    FILE *f = fopen(path, "r+b");
    char junk[65536];
    assert_non_null(f);
    assert_true(page_size <= (int)sizeof(junk));
    memset(junk, 0xff, sizeof(junk));
    for (unsigned i = 0; i < n; i++) {
        assert_int_equal(fseek(f, (long)(pages[npages / 2 + (int)i] - 1) * page_size,
                               SEEK_SET), 0);
        assert_int_equal(fwrite(junk, 1, (size_t)page_size, f), (size_t)page_size);
    }
    fclose(f);
}

static bool
stop_never(void *ctx, const struct kvstore_record *rec)
{
    (void)rec;
    (*(unsigned *)ctx)++;
    return true;
}

static void
test_damaged_pages(void **state)
{
    char path[300], key[32];
    struct kvstore *kv = open_kv(new_path(path, sizeof(path)), false);
    unsigned found = 0, corrupt = 0, rows = 0;
    uint64_t cursor = 0;
    int rc;

    (void)state;
    assert_int_equal(write_batch(kv, 1, 2000), MCKV_OK);
    ops->close(kv);
    damage_leaves(path, 5);
    /* the header and the schema are intact: open() cannot tell */
    kv = open_kv(path, true);
    for (unsigned i = 0; i < 2000; i++) {
        struct got g = { 0 };
        struct kvstore_record rec;
        snprintf(key, sizeof(key), "f1-%u", i);
        rc = ops->get(kv, key, (uint8_t)strlen(key), got_alloc, &g, &rec);
        free(g.buf);
        if (rc == MCKV_OK)
            found++;
        else if (rc == MCKV_ECORRUPT)
            corrupt++;
        if (rc == MCKV_ECORRUPT && corrupt == 1)
            assert_non_null(strstr(ops->last_error(kv), "SQLITE_CORRUPT"));
    }
    assert_true(corrupt > 0);
    assert_int_equal(found + corrupt, 2000);
    /* a scan stops at the damage with the same status */
    while ((rc = ops->scan(kv, &cursor, 100, stop_never, &rows)) == MCKV_OK)
        ;
    assert_int_equal(rc, MCKV_ECORRUPT);
    assert_true(rows < 2000);
    ops->close(kv);
}

static void
test_bad_paths(void **state)
{
    char path[300];
    struct kvstore_options o = { .path = path };
    struct kvstore *kv;

    (void)state;
    snprintf(path, sizeof(path), "%s/no/such/dir/x.db", test_dir);
    assert_int_equal(ops->open(&kv, &o), MCKV_EIO);
    assert_null(kv);
    /* the caller names the file; the engine says what to check */
    assert_non_null(strstr(ops->last_error(NULL), "cannot open or create"));
    assert_non_null(strstr(ops->last_error(NULL), "no/such/dir exists"));
    /* A reader never creates the file. */
    o.read_only = true;
    assert_int_equal(ops->open(&kv, &o), MCKV_EIO);
    new_path(path, sizeof(path));
    assert_int_equal(ops->open(&kv, &o), MCKV_EIO);
    assert_int_equal(access(path, F_OK), -1);
    o.path = NULL;
    assert_int_equal(ops->open(&kv, &o), MCKV_EINVAL);
}

/* Child-process checks: a failed check exits with its line number. */
#define CHILD_CHECK(cond) do { \
        if (!(cond)) { fprintf(stderr, "child check failed line %d: %s (%s)\n", \
                               __LINE__, #cond, ops->last_error(kv)); _exit(1); } \
    } while (0)

static int
wait_child(pid_t pid)
{
    int status;

    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* root ignores file modes, so the open runs as nobody in a child. */
static void
test_read_only_file(void **state)
{
    char path[300];
    struct kvstore *kv = open_kv(new_path(path, sizeof(path)), false);
    pid_t pid;

    (void)state;
    ops->close(kv);
    assert_int_equal(chmod(path, 0444), 0);
    assert_int_equal(chmod(test_dir, 0755), 0);
    pid = fork();
    if (pid == 0) {
        struct kvstore_options o = { .path = path };

        kv = NULL;
        if (geteuid() == 0 && setuid(65534) != 0)
            _exit(2);
        CHILD_CHECK(ops->open(&kv, &o) == MCKV_EIO);
        CHILD_CHECK(kv == NULL);
        CHILD_CHECK(strstr(ops->last_error(NULL), "read-only") != NULL);
        _exit(0);
    }
    assert_int_equal(wait_child(pid), 0);
    assert_int_equal(chmod(test_dir, 0700), 0);
}

/* The file size limit makes the next WAL write fail (EFBIG, an I/O error to
 * SQLite) in the middle of a transaction: at commit with a big page cache,
 * at a put (cache spill) with a small one. */
static void
disk_full_child(const char *path, uint64_t cache_kb)
{
    struct kvstore_options o = { .path = path, .cache_kb = cache_kb };
    struct kvstore *kv = NULL;
    struct stat sb;
    struct rlimit lim;
    int rc;

    signal(SIGXFSZ, SIG_IGN);
    CHILD_CHECK(ops->open(&kv, &o) == MCKV_OK);
    CHILD_CHECK(write_batch(kv, 1, 100) == MCKV_OK);
    CHILD_CHECK(stat(path, &sb) == 0);
    char wal[320];
    struct stat wb;
    snprintf(wal, sizeof(wal), "%s-wal", path);
    CHILD_CHECK(stat(wal, &wb) == 0);
    CHILD_CHECK(getrlimit(RLIMIT_FSIZE, &lim) == 0);
    lim.rlim_cur = (rlim_t)(wb.st_size > sb.st_size ? wb.st_size : sb.st_size) + 65536;
    CHILD_CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);

    rc = write_batch(kv, 2, 2000);
    CHILD_CHECK(rc == MCKV_EIO);
    CHILD_CHECK(strlen(ops->last_error(kv)) > 0);
    CHILD_CHECK(ops->rollback(kv) == MCKV_OK);
    /* Still "full": the retry fails the same way and rolls back again. */
    CHILD_CHECK(write_batch(kv, 2, 2000) == MCKV_EIO);
    CHILD_CHECK(ops->rollback(kv) == MCKV_OK);
    CHILD_CHECK(has_key(kv, "f1-99"));
    CHILD_CHECK(!has_key(kv, "f2-0"));

    lim.rlim_cur = lim.rlim_max;
    CHILD_CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    CHILD_CHECK(write_batch(kv, 2, 2000) == MCKV_OK);
    CHILD_CHECK(has_key(kv, "f2-1999"));
    ops->close(kv);

    kv = NULL;
    CHILD_CHECK(ops->open(&kv, &o) == MCKV_OK);
    CHILD_CHECK(has_key(kv, "f1-0") && has_key(kv, "f2-0") && has_key(kv, "f2-1999"));
    ops->close(kv);
    _exit(0);
}

static void
test_disk_full(void **state)
{
    char path[300];
    pid_t pid;

    (void)state;
    new_path(path, sizeof(path));
    if ((pid = fork()) == 0)
        disk_full_child(path, 0);           /* fails at commit */
    assert_int_equal(wait_child(pid), 0);
    new_path(path, sizeof(path));
    if ((pid = fork()) == 0)
        disk_full_child(path, 64);          /* fails at a put: cache spill */
    assert_int_equal(wait_child(pid), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_foreign_files),
        cmocka_unit_test(test_bad_paths),
        cmocka_unit_test(test_damaged_roots),
        cmocka_unit_test(test_damaged_pages),
        cmocka_unit_test(test_read_only_file),
        cmocka_unit_test(test_disk_full),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
