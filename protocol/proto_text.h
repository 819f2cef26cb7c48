/*
 * proto_text.h: the memcached text protocol (classic and meta commands),
 * parse and compose.
 *
 * The parser mirrors memcached 1.6's proto_text.c in what it accepts and in
 * the error line it picks, so clients see the same bytes. It is a pure
 * function over a buffer: pointers in the request point into that buffer.
 */
#ifndef MCKV_PROTOCOL_PROTO_TEXT_H
#define MCKV_PROTOCOL_PROTO_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/proto.h"
#include "protocol/proto_meta.h"

/* Longest command line accepted, except retrieval lines (get/gets/gat/gats),
 * which may carry many keys up to PROTO_TEXT_GET_LINE_MAX. As in memcached, a
 * longer line without a newline closes the connection. */
#define PROTO_TEXT_LINE_MAX 2048
#define PROTO_TEXT_GET_LINE_MAX (256 * 1024)

enum text_cmd {
    TEXT_UNKNOWN = 0,
    TEXT_GET, TEXT_GETS, TEXT_GAT, TEXT_GATS,
    TEXT_SET, TEXT_ADD, TEXT_REPLACE, TEXT_APPEND, TEXT_PREPEND, TEXT_CAS,
    TEXT_DELETE, TEXT_INCR, TEXT_DECR, TEXT_TOUCH,
    TEXT_FLUSH_ALL, TEXT_STATS, TEXT_VERSION, TEXT_VERBOSITY, TEXT_QUIT,
    /* administration: req->arg holds the arguments, as for stats */
    TEXT_SHUTDOWN, TEXT_CACHE_MEMLIMIT, TEXT_LRU_CRAWLER, TEXT_SLABS, TEXT_LRU,
    TEXT_DEBUGTIME, TEXT_REFRESH_CERTS,
    /* meta commands */
    TEXT_MG, TEXT_MS, TEXT_MD, TEXT_MA, TEXT_MN, TEXT_ME,
};


struct text_req {
    enum text_cmd cmd;

    /* Single-key commands, and the first key of a retrieval command. Meta
     * commands: meta.key (so a base64 key points into meta.key_buf). */
    const char *key;
    uint8_t nkey;

    /* Retrieval commands: the keys as a span of the line, separated by
     * spaces; walk them with proto_text_next_key(). nkeys counts them. */
    const char *keys;
    size_t keys_len;
    unsigned nkeys;

    uint32_t flags;        /* storage: client flags */
    int64_t exptime;       /* storage, touch, gat (as sent: may be negative) */
    uint32_t vlen;         /* storage: value bytes (without the \r\n) */
    uint64_t cas_unique;   /* cas */
    uint64_t delta;        /* incr/decr */
    bool noreply;          /* meta: meta.quiet */

    const char *value;     /* storage, ms: vlen bytes followed by "\r\n" */

    /* flush_all: delay (has_delay false when absent); verbosity: level */
    int64_t delay;
    bool has_delay;
    uint32_t level;

    /* stats and the administration commands: the arguments after the
     * command word, trailing spaces removed; may be empty */
    const char *arg;
    size_t arglen;

    /* Meta commands (TEXT_MG..TEXT_ME): the request, parsed into typed
     * fields by proto_meta_parse_req(); see protocol/proto_meta.h. Zero
     * for other commands (meta.cmd is META_NONE). It points into itself
     * for a base64 key: use it in place. */
    struct meta_req meta;
};

/*
 * Parses one request from buf[0..len).
 *
 * PARSE_OK: *req filled; *consumed = bytes of the line (+ value + "\r\n" for
 *   storage commands, ms).
 * PARSE_EUNFIN: need more bytes; nothing consumed.
 * PARSE_EOVERSIZE: a storage command whose value is over max_value:
 *   *consumed = the line; req->vlen holds the announced length; the caller
 *   skips vlen + 2 more bytes and replies *errmsg when it is not NULL (ms:
 *   a flag error memcached reports first), else "SERVER_ERROR object too
 *   large for cache".
 * PARSE_EINVALID: *errmsg is the reply line without "\r\n" (e.g. "ERROR",
 *   "CLIENT_ERROR bad command line format", "CLIENT_ERROR bad data chunk");
 *   *consumed = what to drop so the stream continues as memcached's would.
 * PARSE_EFATAL: *errmsg is a line to send before closing (e.g.
 *   "CLIENT_ERROR line too long"); close the connection.
 */
proto_parse proto_text_parse_req(struct text_req *req, const char *buf,
                                 size_t len, uint32_t max_value,
                                 size_t *consumed, const char **errmsg);

/*
 * Retrieval keys: iterates the keys of req->keys. *cursor starts at 0. On
 * each call sets *key and *nkey to the next key and returns true; false when
 * done. Keys were validated (length <= 250) by the parser.
 */
bool proto_text_next_key(const struct text_req *req, size_t *cursor,
                         const char **key, uint8_t *nkey);

/*
 * Composes "VALUE <key> <flags> <bytes>[ <cas>]\r\n" into out (at least
 * PROTO_TEXT_VALUE_HDR_MAX bytes). Returns the length written.
 */
#define PROTO_TEXT_VALUE_HDR_MAX (6 + PROTO_KEY_MAX + 3 * 21 + 8)
size_t proto_text_compose_value_hdr(char *out, const char *key, uint8_t nkey,
                                    uint32_t flags, uint32_t vlen,
                                    bool with_cas, uint64_t cas);

/* Writes "STAT <name> <value>\r\n" into out (size outlen). Returns the
 * length written, or 0 when it does not fit. */
size_t proto_text_compose_stat(char *out, size_t outlen, const char *name,
                               const char *value);

/* Writes the decimal digits of v into out (>= 21 bytes); returns length. */
size_t proto_text_u64toa(uint64_t v, char *out);

#endif
