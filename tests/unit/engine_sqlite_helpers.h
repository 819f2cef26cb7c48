/*
 * engine_sqlite_helpers.h: what the storage engine tests share
 * (test_engine_sqlite*.c): the engine under test, a temporary directory per
 * binary with a fresh database path per call, and rows written, read and
 * scanned with cmocka checks.
 */
#ifndef MCKV_TESTS_ENGINE_SQLITE_HELPERS_H
#define MCKV_TESTS_ENGINE_SQLITE_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engines/kvstore.h"

/* The engine under test: kvstore_sqlite_ops unless main() sets another
 * (the contract of engine_contract.c runs against any engine). */
extern const struct kvstore_ops *ops;
/* The binary's temporary directory (group_setup .. group_teardown). */
extern char test_dir[256];

/* cmocka group setup and teardown: make and remove test_dir. */
int group_setup(void **state);
int group_teardown(void **state);

/* A fresh database path per call, inside test_dir. */
const char *new_path(char *buf, size_t n);
/* Opens a handle; fails the test when it cannot. */
struct kvstore *open_kv(const char *path, bool read_only);
/* A record whose exptime is 1700000000 + cas. */
struct kvstore_record make_rec(const char *key, const char *value, uint32_t flags,
                               uint64_t cas);
/* put() inside the open transaction; fails the test on an error. */
void put(struct kvstore *kv, const char *key, const char *value, uint32_t flags,
         uint64_t cas);

/* get() target: a malloc'd buffer per call, freed by the test. */
struct got {
    char *buf;
    unsigned allocs;
    bool fail;
};

char *got_alloc(void *ctx, const struct kvstore_record *rec);
/* Returns get()'s status; on success checks the value text and flags. */
int get_check(struct kvstore *kv, const char *key, const char *value, uint32_t flags);
/* True when get() finds the key. */
bool has_key(struct kvstore *kv, const char *key);

/* scan() target: counts rows, stops once on request, and checks the rows
 * "k%05u" of load_numbered() (test_engine_sqlite_read.c). */
struct count {
    unsigned rows;
    unsigned stop_at;       /* return false on this row (1-based); 0 = never */
    unsigned char *seen;    /* per key number "k%05u" */
    unsigned nseen;
    bool dup;
};

bool count_row(void *ctx, const struct kvstore_record *rec);
/* Scans everything in chunks of `max`; returns the number of rows. */
unsigned scan_all(struct kvstore *kv, unsigned max, struct count *c);

/* Writes batches of `n` 1 KiB rows "f<batch>-<i>"; returns the first error. */
int write_batch(struct kvstore *kv, unsigned batch, unsigned n);

#endif
