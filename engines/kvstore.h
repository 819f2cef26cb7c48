/*
 * kvstore.h: the pluggable storage engine interface (persistence, issue 3).
 *
 * An engine is a versioned table of function pointers. Only the flusher
 * thread writes through it and only fetcher threads read through it; an
 * engine knows nothing of connections or protocols. Defined here so the
 * server's module layout is in place; no engine is wired in yet.
 */
#ifndef MCKV_ENGINES_KVSTORE_H
#define MCKV_ENGINES_KVSTORE_H

#include <stddef.h>
#include <stdint.h>

#define KVSTORE_API_VERSION 1

struct kvstore;   /* an engine's private handle */

struct kvstore_record {
    const char *key;
    uint8_t nkey;
    uint32_t flags;
    int64_t exptime;        /* absolute unix time, 0 = never */
    uint64_t cas;
    const char *value;
    uint32_t vlen;
};

struct kvstore_ops {
    unsigned api_version;   /* KVSTORE_API_VERSION */
    const char *name;
    int (*open)(struct kvstore **kv, const char *path, int read_only);
    void (*close)(struct kvstore *kv);
    int (*begin)(struct kvstore *kv);
    int (*put)(struct kvstore *kv, const struct kvstore_record *rec);
    int (*del)(struct kvstore *kv, const char *key, uint8_t nkey);
    int (*commit)(struct kvstore *kv);
};

#endif
