/*
 * bench_engine.c: bulk load of N random-key rows into any engine through
 * kvstore_ops only (the flusher's calls: begin, put..., set_meta, commit),
 * no server: what the engine itself can ingest as the data grows, and its
 * longest batch (a write stall of the engine shows there).
 *
 *   bench_engine -e ENGINE -d DIR [-n rows] [-s value_bytes] [-b batch]
 *
 * Keys are 16 hex characters of a 64-bit mix of the row number (random
 * order, no repeats). Prints one line per million rows (rate of that
 * million, longest batch in it) and a final "load" line. The database
 * (DIR/bench.<engine>) is removed at the end.
 */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engines/kvstore.h"
#include "util/status.h"

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* splitmix64: a bijection, so every row has its own key. */
static uint64_t
mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

int
main(int argc, char **argv)
{
    const char *engine = "rocksdb", *dir = "/tmp";
    uint64_t rows = 1000000;
    unsigned vlen = 1024, batch = 5000;
    char path[1024], key[17], cmd[4200];
    const struct kvstore_ops *ops;
    struct kvstore *kv = NULL;
    int c, status;

    while ((c = getopt(argc, argv, "e:d:n:s:b:")) != -1) {
        switch (c) {
        case 'e': engine = optarg; break;
        case 'd': dir = optarg; break;
        case 'n': rows = strtoull(optarg, NULL, 10); break;
        case 's': vlen = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'b': batch = (unsigned)strtoul(optarg, NULL, 10); break;
        default:
            fprintf(stderr, "usage: bench_engine -e ENGINE -d DIR [-n rows] [-s value_bytes] [-b batch]\n");
            return 2;
        }
    }
    if ((ops = kvstore_find(engine)) == NULL || !ops->persistent || batch == 0) {
        fprintf(stderr, "bench_engine: no persistent engine '%s' (or -b 0)\n", engine);
        return 2;
    }
    snprintf(path, sizeof(path), "%s/bench.%s", dir, engine);
    struct kvstore_options o = { .path = path };
    if (ops->open(&kv, &o) < 0) {
        fprintf(stderr, "bench_engine: %s\n", ops->last_error(NULL));
        return 1;
    }
    char *value = malloc(vlen + 1);
    if (value == NULL)
        return 1;
    for (unsigned i = 0; i < vlen; i++)
        value[i] = (char)('a' + (i * 7) % 26);

    double t0 = now_s(), t_mark = t0, worst = 0, worst_mark = 0;
    for (uint64_t i = 0; i < rows;) {
        double tb = now_s();
        if ((status = ops->begin(kv)) < 0)
            goto fail;
        for (unsigned j = 0; j < batch && i < rows; j++, i++) {
            struct kvstore_record r = {
                .key = key, .nkey = 16, .cas = i + 1, .value = value, .vlen = vlen,
            };
            snprintf(key, sizeof(key), "%016" PRIx64, mix(i));
            if ((status = ops->put(kv, &r)) < 0)
                goto fail;
        }
        if ((status = ops->set_meta(kv, "cas_high", (int64_t)i)) < 0 ||
            (status = ops->commit(kv)) < 0)
            goto fail;
        double tb_end = now_s(), d = tb_end - tb;
        worst = d > worst ? d : worst;
        worst_mark = d > worst_mark ? d : worst_mark;
        if (i % 1000000 == 0 || i == rows) {
            uint64_t in_mark = i % 1000000 == 0 ? 1000000 : i % 1000000;
            printf("at %" PRIu64 " rows: %.0f rows/s over the last %" PRIu64
                   ", longest batch %.0f ms\n", i, (double)in_mark / (tb_end - t_mark),
                   in_mark, worst_mark * 1000);
            fflush(stdout);
            t_mark = tb_end;
            worst_mark = 0;
        }
    }
    double t = now_s() - t0;
    printf("load %s %" PRIu64 " rows x %u B in batches of %u: %.1f s = %.0f rows/s, "
           "longest batch %.0f ms\n", engine, rows, vlen, batch, t, (double)rows / t,
           worst * 1000);
    ops->close(kv);
    free(value);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s-wal' '%s-shm'", path, path, path);
    return system(cmd) == 0 ? 0 : 1;
fail:
    fprintf(stderr, "bench_engine: %s: %s\n", mckv_strerror(status), ops->last_error(kv));
    return 1;
}
