/*
 * proto.h: what every parser in protocol/ returns.
 *
 * Parsers are pure functions over a byte buffer (no sockets, threads or
 * cache). They never consume bytes unless they return PARSE_OK or report how
 * many bytes a rejected request spans, so the caller can feed the same buffer
 * again after more bytes arrive.
 */
#ifndef MCKV_PROTOCOL_PROTO_H
#define MCKV_PROTOCOL_PROTO_H

#define PROTO_KEY_MAX 250

typedef enum proto_parse {
    PARSE_OK = 0,        /* a whole request was parsed */
    PARSE_EUNFIN = 1,    /* need more bytes; nothing consumed */
    PARSE_EOVERSIZE = -1,/* request (or its value) is over the limit */
    PARSE_EINVALID = -2, /* malformed request */
    PARSE_EFATAL = -3,   /* stream cannot be resynchronised: close it */
} proto_parse;

#endif
