/*
 * replay.c: runs a libFuzzer target over its seed corpus without libFuzzer,
 * so `make` builds every fuzz target with any compiler and `make check`
 * replays the corpus as a regression test (under ASan+UBSan in the
 * sanitizer build). scripts/test still runs the real fuzzers with clang.
 *
 * Usage: replay_<target> [FILE|DIR]...; with no argument it reads
 * $TOP_SRCDIR/tests/fuzz/corpus/FUZZ_CORPUS. Each input is also fed cut at
 * a few points, as a fuzzer's mutations would. Exit 0 when every input ran
 * (a broken invariant abort()s in the target), 1 when nothing was read.
 */
#include <config.h>

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned inputs;

static void
run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return;
    }
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *nb = realloc(buf, cap);
            if (nb == NULL)
                abort();
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        if (n == 0)
            break;
        len += n;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, len);
    for (size_t cut = 1; cut < len; cut += len / 7 + 1)
        LLVMFuzzerTestOneInput(buf, cut);
    free(buf);
    inputs++;
}

static void
run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        perror(path);
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        run_file(path);
        return;
    }
    DIR *d = opendir(path);
    if (d == NULL) {
        perror(path);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char child[4096];
        snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
        run_path(child);
    }
    closedir(d);
}

int
main(int argc, char **argv)
{
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            run_path(argv[i]);
    } else {
        const char *top = getenv("TOP_SRCDIR");
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s",
                 top != NULL ? top : ".", FUZZ_CORPUS);
        run_path(dir);
    }
    printf("%u inputs replayed\n", inputs);
    return inputs > 0 ? 0 : 1;
}
