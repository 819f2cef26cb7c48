/*
 * owner_stub.h: the answers of a connection owner with no persistence
 * (struct conn_owner_ops in server/conn.h): every write is admitted at
 * once, no commit is ever waited for, and nothing is on disk to fetch.
 * Tests and fuzz targets that drive a real connection take these for
 * what they do not test.
 */
#ifndef MCKV_TESTS_UNIT_OWNER_STUB_H
#define MCKV_TESTS_UNIT_OWNER_STUB_H

#include <stdbool.h>
#include <stdint.h>

#include "server/conn.h"

static inline bool
owner_stub_admit_write(struct conn_owner *o, uint32_t *delay_ms)
{
    (void)o;
    *delay_ms = 0;
    return true;
}

static inline bool
owner_stub_wait_commit(struct conn_owner *o, struct conn *c, uint64_t seq)
{
    (void)o, (void)c, (void)seq;
    return false;
}

static inline bool
owner_stub_need_fetch(struct conn_owner *o, struct conn *c, const char *key,
                      uint8_t nkey, unsigned how)
{
    (void)o, (void)c, (void)key, (void)nkey, (void)how;
    return false;
}

#endif
