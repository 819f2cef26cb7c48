/*
 * process.h: the protocol processors. Each consumes whole requests from a
 * connection's read buffer, runs them against the cache and queues replies.
 * They are the only code that knows both a protocol and the cache.
 */
#ifndef MCKV_SERVER_PROCESS_H
#define MCKV_SERVER_PROCESS_H

#include <stdbool.h>
#include <stddef.h>

struct conn;

enum process_result {
    PROCESS_OK,        /* one request handled, bytes consumed */
    PROCESS_NEED_MORE, /* a partial request: read more first */
    PROCESS_CLOSE,     /* close the connection after writing */
    PROCESS_PARKED,    /* waits for a background fetch; nothing consumed */
};

/* Worker thread: handles one request at c->rbuf + c->rstart. On PROCESS_OK
 * c->rstart moves past it (and c->swallow may be set). On PROCESS_NEED_MORE
 * *need holds the total bytes the request needs when known (else 0). */
enum process_result process_bin(struct conn *c, size_t *need);
enum process_result process_text(struct conn *c, size_t *need);

/* The version string both protocols report. */
extern const char process_version[];

#endif
