/*
 * engine_contract.h: the kvstore.h contract as one cmocka group that runs
 * against whichever engine the helpers' `ops` points at (the persistent
 * ones: sqlite in test_engine_sqlite.c, rocksdb in test_engine_rocksdb.c).
 * A new engine passes it before it is registered.
 */
#ifndef MCKV_TESTS_ENGINE_CONTRACT_H
#define MCKV_TESTS_ENGINE_CONTRACT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

extern const struct CMUnitTest engine_contract_tests[];
extern const size_t engine_contract_ntests;

struct kvstore;
/* Writes n rows "k00000".. (value length 100 + i % 50, flags i, CAS
 * i + 1) through the helpers' `ops`, per_batch rows per transaction. */
void engine_contract_load_numbered(struct kvstore *kv, unsigned n,
                                   unsigned per_batch);

/* Runs the group under `name` (test_dir set up and removed around it). */
int engine_contract_run(const char *name);

#endif
