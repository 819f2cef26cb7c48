/*
 * mcstat.h: what mcstat.c (options, one-shot stats, output) and
 * mcstat_watch.c (-w) share. Private to mcstat.
 */
#ifndef MCKV_TOOLS_MCSTAT_H
#define MCKV_TOOLS_MCSTAT_H

#include <stdbool.h>
#include <stddef.h>

#include "tools/mcconn.h"

enum mcstat_exit {
    MCSTAT_EXIT_OK = 0,
    MCSTAT_EXIT_USAGE = 1,
    MCSTAT_EXIT_CONNECT = 2,    /* resolution failed, refused, unreachable */
    MCSTAT_EXIT_AUTH = 3,       /* SASL refused, or the server has none */
    MCSTAT_EXIT_GROUP = 4,      /* the server does not know a group */
    MCSTAT_EXIT_PROTO = 5,      /* bad reply, closed connection, timeout */
    MCSTAT_EXIT_TLS = 6,        /* TLS handshake or certificate check */
};

struct options {
    char *host;                 /* without brackets or port */
    char *port;
    const char *user;
    const char *password;
    bool tls;
    const char *cafile, *cert, *key;
    bool json;
    double watch_s;             /* 0: no watch mode */
    unsigned long count;        /* watch intervals; 0: until a signal */
    char **groups;
    int ngroups;
};

struct stat_pair {
    char *name, *value;
    size_t name_len, value_len;
};

struct stat_group {
    const char *title;          /* "general" for the empty key */
    const char *key;
    struct stat_pair *pairs;
    size_t n, cap;
};

/* Frees the pairs' strings (not the array) and empties g. */
void mcstat_group_clear(struct stat_group *g);

/* Fetches one group into g (cleared first). Prints its own error line
 * except for MCSTAT_EXIT_GROUP (the caller says which group, or ignores
 * it). Returns an enum mcstat_exit. */
int mcstat_fetch_group(struct mcconn *c, struct stat_group *g);

/* -w: samples and prints until o->count intervals or SIGINT/SIGTERM;
 * returns an enum mcstat_exit. */
int mcstat_watch(struct mcconn *c, const struct options *o);

#endif
