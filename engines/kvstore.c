/*
 * kvstore.c: the registry of storage engines (see kvstore.h). The config
 * names an engine; kvstore_find() turns the name into its table of
 * functions.
 */
#include <config.h>

#include <string.h>

#include "engines/kvstore.h"

static const struct kvstore_ops *const kvstore_engines[] = {
    &kvstore_sqlite_ops,
    &kvstore_memory_ops,
#ifdef HAVE_ROCKSDB
    &kvstore_rocksdb_ops,
#endif
};

const struct kvstore_ops *
kvstore_find(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(kvstore_engines) / sizeof(kvstore_engines[0]); i++)
        if (kvstore_engines[i]->api_version == KVSTORE_API_VERSION &&
            strcmp(kvstore_engines[i]->name, name) == 0)
            return kvstore_engines[i];
    return NULL;
}
