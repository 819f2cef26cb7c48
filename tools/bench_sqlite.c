/*
 * bench_sqlite.c: load benchmark of the SQLite engine, one schema/pragma
 * variant per run (scripts/bench-sqlite runs the comparison table of
 * docs/sqlite-tuning.md).
 *
 * It loads N rows of V-byte values under random 16-30 byte keys (random
 * order, as a cache sees them) through the engine API, B rows per
 * transaction as the flusher batches them (begin, put..., commit), then
 * reads everything back cold (the file dropped from the OS page cache with
 * posix_fadvise; twice, alternating, best kept) and warm: through scan() in
 * chunks (what warmup does) and through one plain sequential SELECT (the
 * ceiling), and finally runs random get()s. The last line is one
 * machine-readable RESULT line.
 *
 * It reaches sqlite_open_tuned(), the struct sqlite_tuning variants and the
 * handle's counters through engines/sqlite_priv.h; it links the engine's
 * files, util/ and libsqlite3, nothing of the server.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "engines/sqlite_priv.h"
#include "util/status.h"

/* The variants of the comparison, each the engine's own tuning with a change. */
static const char *const bench_variant_names[] = {
    "tuned", "naive", "keyed", "replace", "rowid-wal", "mmap", "writer-ckpt",
};

static bool
bench_variant(const char *name, struct sqlite_tuning *t)
{
    *t = sqlite_tuned;
    t->name = name;
    if (strcmp(name, "naive") == 0) {
        /* WITHOUT ROWID table, SQLite's (and Debian's) defaults throughout. */
        *t = (struct sqlite_tuning){ .name = name, .keyed = true, .replace = true,
                                     .sqlite_sync = true, .sqlite_secure_delete = true };
    } else if (strcmp(name, "keyed") == 0) {
        t->keyed = true;              /* only the layout differs from tuned */
    } else if (strcmp(name, "replace") == 0) {
        t->replace = true;            /* INSERT OR REPLACE instead of upsert */
    } else if (strcmp(name, "rowid-wal") == 0) {
        /* The tuned layout in WAL mode, other pragmas at SQLite's defaults. */
        *t = (struct sqlite_tuning){ .name = name, .wal = true, .sqlite_secure_delete = true };
    } else if (strcmp(name, "mmap") == 0) {
        t->mmap_bytes = 2000LL << 20;
    } else if (strcmp(name, "writer-ckpt") == 0) {
        t->ckpt_in_writer = true;     /* no checkpointer thread: commit() copies */
    } else if (strcmp(name, "tuned") != 0) {
        return false;
    }
    return true;
}

struct bench_args {
    uint64_t rows;
    unsigned batch;
    unsigned vlen;
    unsigned chunk;         /* rows per scan() call */
    uint64_t gets;
    const char *dir;
    bool sync_full;
    bool keep;
    bool update;            /* a second pass rewrites every key */
    struct sqlite_tuning tuning;
};

static double
bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU seconds (user + system) of this process so far. */
static double
bench_cpu(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static uint64_t
bench_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Key number i: 16-30 random characters, the same on every call. */
static uint8_t
bench_key(uint64_t i, char *key)
{
    static const char alphabet[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
    uint64_t h = bench_mix(i * 2 + 1), state = h;
    uint8_t n = (uint8_t)(16 + (h >> 60) % 15);

    for (uint8_t k = 0; k < n; k++) {
        if (k % 10 == 0)
            state = bench_mix(state);
        key[k] = alphabet[(state >> (6 * (k % 10))) & 63];
    }
    return n;
}

static void
bench_fail(struct kvstore *kv, int status, const char *what)
{
    fprintf(stderr, "bench_sqlite: %s failed (%d): %s\n", what, status, sqlite_last_error(kv));
    exit(1);
}

static void
bench_remove(const char *path)
{
    static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
    char name[4096];

    for (size_t i = 0; i < 4; i++) {
        if (snprintf(name, sizeof(name), "%s%s", path, suffix[i]) >= (int)sizeof(name))
            continue;
        if (unlink(name) < 0 && errno != ENOENT)
            fprintf(stderr, "bench_sqlite: unlink %s: %s\n", name, strerror(errno));
    }
}

/* Drops the file's pages from the OS page cache (it is clean after close). */
static void
bench_drop_cache(const char *path)
{
    int fd = open(path, O_RDONLY);

    if (fd < 0)
        return;
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
}

static int
bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

struct bench_sink {
    char *buf;          /* values are copied here, as warmup copies them */
    uint64_t rows;
    uint64_t bytes;
};

static bool
bench_scan_row(void *ctx, const struct kvstore_record *rec)
{
    struct bench_sink *sink = ctx;

    memcpy(sink->buf, rec->value, rec->vlen);
    sink->rows++;
    sink->bytes += rec->vlen + rec->nkey;
    return true;
}

static char *
bench_alloc(void *ctx, const struct kvstore_record *rec)
{
    (void)rec;
    return ctx;
}

/* Reads every row through scan() in chunks; returns seconds. */
static double
bench_scan(struct kvstore *kv, unsigned chunk, struct bench_sink *sink)
{
    uint64_t cursor = 0;
    double t0 = bench_now();
    int status;

    sink->rows = sink->bytes = 0;
    while ((status = sqlite_scan(kv, &cursor, chunk, bench_scan_row, sink)) == MCKV_OK)
        ;
    if (status != MCKV_ENOTFOUND)
        bench_fail(kv, status, "scan");
    return bench_now() - t0;
}

/* Reads every row with one plain SELECT; returns seconds. */
static double
bench_select(struct kvstore *kv, struct bench_sink *sink)
{
    sqlite3_stmt *st;
    double t0 = bench_now();
    int rc;

    sink->rows = sink->bytes = 0;
    rc = sqlite3_prepare_v2(kv->db, "SELECT key, flags, exptime, cas, value FROM kv", -1,
                            &st, NULL);
    if (rc != SQLITE_OK)
        bench_fail(kv, sqlite_fail(kv, rc, "select"), "select");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const void *v = sqlite3_column_blob(st, 4);
        int n = sqlite3_column_bytes(st, 4);

        memcpy(sink->buf, v, (size_t)n);
        sink->rows++;
        sink->bytes += (uint64_t)n + (uint64_t)sqlite3_column_bytes(st, 0);
    }
    if (rc != SQLITE_DONE)
        bench_fail(kv, sqlite_fail(kv, rc, "select"), "select");
    sqlite3_finalize(st);
    return bench_now() - t0;
}

static const char *
bench_sync_name(const struct bench_args *a)
{
    if (a->sync_full)
        return "full";
    return a->tuning.sqlite_sync ? "default(full)" : "normal";
}

static uint64_t
bench_gcd(uint64_t x, uint64_t y)
{
    while (y != 0) {
        uint64_t r = x % y;

        x = y;
        y = r;
    }
    return x;
}

/* Rewrites every row (new value and CAS) in a permuted order, batch by
 * batch as the load did; returns seconds. */
static double
bench_update(struct kvstore *kv, const struct bench_args *a, const char *pool,
             size_t pool_size)
{
    struct kvstore_record rec = { .vlen = a->vlen };
    uint64_t step = 1000003;
    char key[32];
    double t0 = bench_now();
    int status;

    while (bench_gcd(step, a->rows) != 1)
        step += 2;
    for (uint64_t j = 0; j < a->rows; j++) {
        uint64_t i = (j * step) % a->rows;

        if (j % a->batch == 0 && (status = sqlite_begin(kv)) < 0)
            bench_fail(kv, status, "begin");
        rec.nkey = bench_key(i, key);
        rec.key = key;
        rec.flags = (uint32_t)i;
        rec.cas = a->rows + j + 1;
        rec.value = pool + (i * 104729) % pool_size;
        if ((status = sqlite_put(kv, &rec)) < 0)
            bench_fail(kv, status, "put");
        if (((j + 1) % a->batch == 0 || j + 1 == a->rows) && (status = sqlite_commit(kv)) < 0)
            bench_fail(kv, status, "commit");
    }
    return bench_now() - t0;
}

static void
bench_usage(void)
{
    fprintf(stderr,
            "usage: bench_sqlite [-n rows] [-b batch] [-s value_bytes] [-S scan_chunk] [-g gets]\n"
            "                    [-d dir] [-v variant] [-P page_size] [-C cache_kb] [-W wal_mb]\n"
            "                    [-M mmap_mb] [-F finish_div] [-X cap_mul] [-f] [-k] [-u]\n"
            "  -f synchronous=FULL (default NORMAL), -k keep the database,\n"
            "  -u then update every row once more, in another random order\n"
            "  -W: checkpoint past this much WAL, 0 = SQLite's autocheckpoint (1000 pages)\n"
            "  -F: after a round the writer copies a tail of at most WAL/F itself (else another round)\n"
            "  -X: past W*X MiB of WAL the writer waits and checkpoints itself\n"
            "  variants:");
    for (size_t i = 0; i < sizeof(bench_variant_names) / sizeof(bench_variant_names[0]); i++)
        fprintf(stderr, " %s", bench_variant_names[i]);
    fprintf(stderr, "\n");
    exit(2);
}

static void
bench_parse(int argc, char **argv, struct bench_args *a)
{
    const char *variant = "tuned";
    int64_t page = -1, cache = -1, ckpt = -1, mmap_mb = -1, finish = -1, cap = -1;
    int c;

    *a = (struct bench_args){ .rows = 1000000, .batch = 1000, .vlen = 1024, .chunk = 1000, .gets = 100000,
                              .dir = "/tmp" };
    while ((c = getopt(argc, argv, "n:b:s:S:g:d:v:P:C:W:M:F:X:fkuh")) != -1) {
        switch (c) {
        case 'n': a->rows = strtoull(optarg, NULL, 10); break;
        case 'b': a->batch = (unsigned)strtoul(optarg, NULL, 10); break;
        case 's': a->vlen = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'S': a->chunk = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'g': a->gets = strtoull(optarg, NULL, 10); break;
        case 'd': a->dir = optarg; break;
        case 'v': variant = optarg; break;
        case 'P': page = strtoll(optarg, NULL, 10); break;
        case 'C': cache = strtoll(optarg, NULL, 10); break;
        case 'W': ckpt = strtoll(optarg, NULL, 10); break;
        case 'M': mmap_mb = strtoll(optarg, NULL, 10); break;
        case 'F': finish = strtoll(optarg, NULL, 10); break;
        case 'X': cap = strtoll(optarg, NULL, 10); break;
        case 'f': a->sync_full = true; break;
        case 'k': a->keep = true; break;
        case 'u': a->update = true; break;
        default: bench_usage();
        }
    }
    if (a->rows == 0 || a->batch == 0 || a->chunk == 0 || a->vlen > (1u << 20))
        bench_usage();
    if (!bench_variant(variant, &a->tuning))
        bench_usage();
    if (page >= 0) a->tuning.page_size = (unsigned)page;
    if (cache >= 0) a->tuning.cache_kb = cache;
    if (ckpt >= 0) a->tuning.ckpt_bytes = ckpt << 20;
    if (mmap_mb >= 0) a->tuning.mmap_bytes = mmap_mb << 20;
    if (finish > 0) a->tuning.ckpt_finish_div = (unsigned)finish;
    if (cap > 0) a->tuning.ckpt_cap_mul = (unsigned)cap;
}

int
main(int argc, char **argv)
{
    struct bench_args a;
    struct kvstore_options opts = { 0 };
    struct kvstore_record rec = { 0 };
    struct kvstore *kv;
    struct bench_sink sink;
    char path[4096], key[32], *pool;
    size_t pool_size = 1 << 20;
    uint64_t nbatches, b = 0;
    double *commit_s, t0, tb = 0, tmark, load_s, close_s, scan_cold, scan_warm, sel_cold, sel_warm;
    double gets_s = 0, update_s = 0, ckpt_s, ckpt_max_ms, cpu0, load_cpu_s;
    uint64_t ckpt_n, ckpt_capped, ckpt_waits, bg_n = 0, wal_restarts;
    double bg_s = 0, bg_max_ms = 0;
    uint64_t db_bytes, wal_peak = 0, found = 0;
    int status;

    bench_parse(argc, argv, &a);
    snprintf(path, sizeof(path), "%s/bench-sqlite-%d.db", a.dir, (int)getpid());
    bench_remove(path);
    nbatches = (a.rows + a.batch - 1) / a.batch;
    pool = malloc(pool_size + a.vlen);
    sink.buf = malloc(a.vlen + 1);
    commit_s = calloc(nbatches, sizeof(*commit_s));
    if (pool == NULL || sink.buf == NULL || commit_s == NULL)
        return 1;
    for (size_t i = 0; i < pool_size + a.vlen; i++)
        pool[i] = (char)bench_mix(i);

    opts.path = path;
    opts.synchronous_full = a.sync_full;
    if ((status = sqlite_open_tuned(&kv, &opts, &a.tuning)) < 0)
        bench_fail(NULL, status, "open");
    printf("variant %s: %" PRIu64 " rows of %u bytes, batch %u, sync %s, page %u, cache %" PRId64
           " KiB, checkpoint at %" PRId64 " MiB of WAL (%s), mmap %" PRId64 " MiB, %s, %s\n",
           a.tuning.name, a.rows, a.vlen, a.batch, bench_sync_name(&a),
           a.tuning.page_size, a.tuning.cache_kb, a.tuning.ckpt_bytes >> 20,
           a.tuning.ckpt_in_writer ? "by the writer" : "in a thread",
           a.tuning.mmap_bytes >> 20, a.tuning.keyed ? "WITHOUT ROWID" : "rowid+index",
           a.tuning.wal ? "WAL" : "rollback journal");
    fflush(stdout);

    cpu0 = bench_cpu();
    t0 = tmark = bench_now();
    rec.vlen = a.vlen;
    for (uint64_t i = 0; i < a.rows; i++) {
        if (i % a.batch == 0) {
            tb = bench_now();
            if ((status = sqlite_begin(kv)) < 0)
                bench_fail(kv, status, "begin");
        }
        rec.nkey = bench_key(i, key);
        rec.key = key;
        rec.flags = (uint32_t)i;
        rec.cas = i + 1;
        rec.value = pool + (i * 7919) % pool_size;
        if ((status = sqlite_put(kv, &rec)) < 0)
            bench_fail(kv, status, "put");
        if ((i + 1) % a.batch == 0 || i + 1 == a.rows) {
            if ((status = sqlite_set_meta(kv, "cas", (int64_t)i + 1)) < 0 ||
                (status = sqlite_commit(kv)) < 0)
                bench_fail(kv, status, "commit");
            commit_s[b++] = bench_now() - tb;
            uint64_t wal = sqlite_file_size(path, "-wal");
            if (wal > wal_peak)
                wal_peak = wal;
        }
        if ((i + 1) % (a.rows / 10 ? a.rows / 10 : 1) == 0) {
            double now = bench_now();

            printf("  %8" PRIu64 " rows  %7.1f s  last 10%%: %8.0f rows/s\n", i + 1, now - t0,
                   (double)(a.rows / 10 ? a.rows / 10 : 1) / (now - tmark));
            fflush(stdout);
            tmark = now;
        }
    }
    load_s = bench_now() - t0;
    load_cpu_s = bench_cpu() - cpu0;
    ckpt_n = kv->checkpoints;
    ckpt_capped = kv->checkpoints_capped;
    ckpt_waits = kv->checkpoint_waits;
    wal_restarts = kv->wal_gen;
    if (kv->ckptr != NULL) {
        pthread_mutex_lock(&kv->ckptr->lock);
        bg_n = kv->ckptr->rounds;
        bg_s = (double)kv->ckptr->us * 1e-6;
        bg_max_ms = (double)kv->ckptr->max_us * 1e-3;
        if (kv->ckptr->errors > 0)
            fprintf(stderr, "bench_sqlite: %" PRIu64 " failed checkpoints in the thread, the last: %s\n",
                    kv->ckptr->errors, kv->ckptr->errmsg);
        pthread_mutex_unlock(&kv->ckptr->lock);
    }
    ckpt_s = (double)kv->checkpoint_us * 1e-6;
    ckpt_max_ms = (double)kv->checkpoint_max_us * 1e-3;
    if (a.update)
        update_s = bench_update(kv, &a, pool, pool_size);
    t0 = bench_now();
    sqlite_close(kv);  /* the last connection checkpoints and removes the WAL */
    close_s = bench_now() - t0;
    db_bytes = sqlite_file_size(path, "");
    qsort(commit_s, b, sizeof(*commit_s), bench_cmp_double);

    opts.read_only = true;
    if ((status = sqlite_open_tuned(&kv, &opts, &a.tuning)) < 0)
        bench_fail(NULL, status, "open read-only");
    /* Cold reads twice each, alternating, keeping the faster: the first read
     * after a load is slowed by writeback below the VM whichever comes first. */
    scan_cold = sel_cold = 1e9;
    for (int round = 0; round < 2; round++) {
        bench_drop_cache(path);
        double t = bench_select(kv, &sink);
        sel_cold = t < sel_cold ? t : sel_cold;
        bench_drop_cache(path);
        t = bench_scan(kv, a.chunk, &sink);
        scan_cold = t < scan_cold ? t : scan_cold;
    }
    scan_warm = bench_scan(kv, a.chunk, &sink);
    if (sink.rows != a.rows)
        fprintf(stderr, "bench_sqlite: scan saw %" PRIu64 " rows, expected %" PRIu64 "\n",
                sink.rows, a.rows);
    sel_warm = bench_select(kv, &sink);
    if (sink.rows != a.rows)
        fprintf(stderr, "bench_sqlite: select saw %" PRIu64 " rows\n", sink.rows);
    if (a.gets > 0) {
        t0 = bench_now();
        for (uint64_t i = 0; i < a.gets; i++) {
            struct kvstore_record got;
            uint8_t nkey = bench_key(bench_mix(i ^ 0x5555) % a.rows, key);

            status = sqlite_get(kv, key, nkey, bench_alloc, sink.buf, &got);
            if (status == MCKV_OK)
                found++;
            else if (status != MCKV_ENOTFOUND)
                bench_fail(kv, status, "get");
        }
        gets_s = bench_now() - t0;
        if (found != a.gets)
            fprintf(stderr, "bench_sqlite: %" PRIu64 " of %" PRIu64 " gets missed\n",
                    a.gets - found, a.gets);
    }
    sqlite_close(kv);
    if (!a.keep)
        bench_remove(path);

    printf("load %.1f s (CPU %.1f s) = %.0f rows/s (close/final checkpoint %.1f s); commit p50 %.1f ms, "
           "p99 %.1f ms, max %.1f ms; WAL peak %.0f MiB; db %.0f MiB\n",
           load_s, load_cpu_s, (double)a.rows / load_s, close_s, commit_s[b / 2] * 1e3,
           commit_s[b * 99 / 100] * 1e3, commit_s[b - 1] * 1e3, (double)wal_peak / 1048576,
           (double)db_bytes / 1048576);
    if (a.update)
        printf("update pass: %.1f s = %.0f rows/s\n", update_s, (double)a.rows / update_s);
    printf("checkpoints during the load: %" PRIu64 " in commit() taking %.1f s in all, max %.0f ms"
           " (%" PRIu64 " at the cap, %" PRIu64 " waits); %" PRIu64 " in the thread taking %.1f s,"
           " max %.0f ms; WAL restarted %" PRIu64 " times\n",
           ckpt_n, ckpt_s, ckpt_max_ms, ckpt_capped, ckpt_waits, bg_n, bg_s, bg_max_ms,
           wal_restarts);
    printf("read all: scan() cold %.2f s, warm %.2f s; SELECT cold %.2f s, warm %.2f s; "
           "%" PRIu64 " random gets %.0f/s\n", scan_cold, scan_warm, sel_cold, sel_warm,
           a.gets, gets_s > 0 ? (double)a.gets / gets_s : 0.0);
    printf("RESULT variant=%s rows=%" PRIu64 " batch=%u sync=%s load_s=%.1f load_cpu_s=%.1f "
           "rows_per_s=%.0f "
           "close_s=%.1f ckpt_s=%.1f commit_p99_ms=%.1f commit_max_ms=%.1f wal_peak_mb=%.0f db_mb=%.0f "
           "scan_cold_s=%.2f scan_warm_s=%.2f select_cold_s=%.2f select_warm_s=%.2f "
           "gets_per_s=%.0f update_rows_per_s=%.0f ckpt_max_ms=%.0f bg_ckpt_s=%.1f "
           "ckpt_capped=%" PRIu64 " wal_restarts=%" PRIu64 "\n",
           a.tuning.name, a.rows, a.batch, bench_sync_name(&a), load_s, load_cpu_s,
           (double)a.rows / load_s, close_s, ckpt_s, commit_s[b * 99 / 100] * 1e3,
           commit_s[b - 1] * 1e3,
           (double)wal_peak / 1048576, (double)db_bytes / 1048576, scan_cold, scan_warm,
           sel_cold, sel_warm, gets_s > 0 ? (double)a.gets / gets_s : 0.0,
           update_s > 0 ? (double)a.rows / update_s : 0.0, ckpt_max_ms, bg_s, ckpt_capped,
           wal_restarts);
    free(commit_s);
    free(sink.buf);
    free(pool);
    return 0;
}
