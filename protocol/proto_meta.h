/*
 * proto_meta.h: memcached's meta commands (mg, ms, md, ma, mn, me), parsed
 * once into typed fields, and the reply lines composed from those fields.
 *
 * The accepted flags, their validation and the error line for every bad
 * request are memcached 1.6.18's (proto_text.c: _meta_flag_preparse() and
 * process_m*_command()). 1.6.18 checks every flag in one shared list, so each
 * of mg/ms/md/ma accepts the same letters and ignores those it has no use
 * for:  b c f h k l O P L q s t u v N R T C F M J D I.  Any other letter
 * (E, x, S, ...) is "invalid flag", as in 1.6.18; later memcached versions
 * added E (explicit CAS) and x (md: drop the value, keep the item).
 *
 * Like protocol/proto_text.h, everything here is a pure function over
 * buffers: nothing allocates, nothing writes to the input.
 */
#ifndef MCKV_PROTOCOL_PROTO_META_H
#define MCKV_PROTOCOL_PROTO_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/proto.h"

/* Tokens on a meta line, command and key included: memcached refuses more
 * (its "ntokens > 20" counts a terminal token). */
#define PROTO_META_TOKENS_MAX 19
/* Opaque bytes after the 'O' that memcached echoes; one more is an error. */
#define PROTO_META_OPAQUE_MAX 31
/* A request whose first PROTO_META_LINE_MAX + 1 bytes hold no '\n' is
 * refused (PARSE_EFATAL), as proto_text.c does for classic commands. */
#define PROTO_META_LINE_MAX 2048
/* base64 length of n bytes, padding included. */
#define PROTO_META_B64_LEN(n) ((((size_t)(n) + 2) / 3) * 4)

enum meta_cmd {
    META_NONE = 0,
    META_MG,    /* get */
    META_MS,    /* set */
    META_MD,    /* delete */
    META_MA,    /* arithmetic */
    META_MN,    /* no-op: reply "MN" */
    META_ME,    /* debug dump of one item */
};

/* ms's M token. memcached also turns SET and REPLACE into a CAS store when a
 * C token is given, and lets I (invalidate) act only in that CAS store. */
enum meta_set_mode {
    META_SET_SET = 0,       /* no M, or MS */
    META_SET_ADD,           /* ME */
    META_SET_APPEND,        /* MA */
    META_SET_PREPEND,       /* MP */
    META_SET_REPLACE,       /* MR */
};

/*
 * One meta request. Fields are meaningful for the command that was parsed;
 * every flag that was not given is false / 0 (delta is 1).
 *
 * key points into the input buffer, or into key_buf when the key was base64
 * (b): then the struct points into itself, so keep it where the parser wrote
 * it and pass pointers (a copy must re-point key at its own key_buf).
 */
struct meta_req {
    enum meta_cmd cmd;

    const char *key;        /* mg ms md ma me: the key, decoded when b */
    uint8_t nkey;
    bool key_binary;        /* b: key was base64; k echoes it encoded */

    /* flags without a token */
    bool ret_cas;           /* c */
    bool ret_flags;         /* f */
    bool ret_hit;           /* h: hit before */
    bool ret_key;           /* k */
    bool ret_last_access;   /* l */
    bool ret_size;          /* s */
    bool ret_ttl;           /* t */
    bool ret_value;         /* v */
    /* q: memcached drops only the nominal reply: mg's EN, ms's and md's
     * HD, ma's HD or VA for an existing item (not one N just created).
     * Errors are always sent: the parser clears quiet on any error. */
    bool quiet;
    bool no_lru_bump;       /* u */
    /* I: md marks the item stale (and applies T) instead of deleting it;
     * ms honours it only in a CAS store; mg ignores it. */
    bool invalidate;

    /* Flags with a token: has_x tells that it was given. TTL tokens are kept
     * as memcached keeps them: a 64-bit number cut to its low 32 bits, then
     * read as signed (T4294967296 is T0); the server still applies
     * memcached's realtime() rules (negative: expired at once). */
    bool has_ttl;           /* T: new TTL */
    bool has_vivify;        /* N: create on miss, with this TTL */
    bool has_recache;       /* R: win the recache token below this TTL */
    bool has_compare_cas;   /* C */
    bool has_client_flags;  /* F */
    bool has_initial;       /* J */
    bool has_delta;         /* D */
    bool has_opaque;        /* O */
    bool has_proxy_p;       /* P: a proxy hint, ignored */
    bool has_proxy_l;       /* L: a proxy hint, ignored */
    int32_t ttl;
    int32_t vivify_ttl;
    int32_t recache_ttl;
    uint32_t client_flags;  /* F: low 32 bits, as memcached's safe_strtoul */
    uint64_t compare_cas;
    uint64_t initial;       /* ma: value created by N (default 0) */
    uint64_t delta;         /* ma: 1 unless D was given */
    const char *opaque;     /* the bytes after 'O', echoed verbatim */
    uint8_t nopaque;        /* <= PROTO_META_OPAQUE_MAX */

    /* M: mode_char is the letter given (0: none). mg and md ignore it; for
     * ms and ma it was checked and decoded. */
    char mode_char;
    enum meta_set_mode set_mode;    /* ms */
    bool decr;                      /* ma: MD or M- */

    /* ms: the value, vlen bytes followed by "\r\n" */
    uint32_t vlen;
    const char *value;

    /* The flags that shape a reply line, in request order: s t c f l h O k
     * write a return flag, T and N mark where the TTL changes (a t after
     * them shows the new one), R where the recache test is made (after a
     * T before it: it judges the new TTL). proto_meta_compose_rsp() walks
     * this. */
    uint8_t nret_order;
    char ret_order[PROTO_META_TOKENS_MAX];

    /* Decoded b key; last, so parsing does not clear it. */
    char key_buf[PROTO_KEY_MAX];
};

/*
 * Parses one meta request from buf[0..len), which starts at its line (leading
 * spaces allowed). Same contract as proto_text_parse_req(); any thread.
 *
 * PARSE_OK: *req filled; *consumed = the line (+ value + "\r\n" for ms).
 * PARSE_EUNFIN: need more bytes; nothing consumed.
 * PARSE_EOVERSIZE (ms): vlen > max_value. *consumed = the line; req->vlen
 *   holds the announced length: the caller skips vlen + 2 more bytes and
 *   replies *errmsg when it is not NULL (a flag error, which memcached sends
 *   before it looks at the size), else "SERVER_ERROR object too large for
 *   cache".
 * PARSE_EINVALID: *errmsg is the reply line without "\r\n", always sent (q
 *   or not); *consumed = the line, plus the value when memcached swallows it
 *   (ms flag errors) or read it (ms "bad data chunk").
 * PARSE_EFATAL: no newline within PROTO_META_LINE_MAX + 1 bytes: *errmsg =
 *   "CLIENT_ERROR line too long"; close the connection.
 * A line that is not a meta command is PARSE_EINVALID "ERROR".
 */
proto_parse proto_meta_parse_req(struct meta_req *req, const char *buf,
                                 size_t len, uint32_t max_value,
                                 size_t *consumed, const char **errmsg);

/* ---- replies (proto_meta_rsp.c) ---- */

enum meta_status {
    META_RSP_VA,    /* "VA <vlen>": value follows (mg v, ma v) */
    META_RSP_HD,    /* stored / found / deleted / done */
    META_RSP_NF,    /* not found (md, ma; ms with C on a missing key) */
    META_RSP_NS,    /* not stored (ms ME on a hit, MR/MA/MP on a miss) */
    META_RSP_EX,    /* CAS mismatch */
    META_RSP_EN,    /* mg miss; also me's miss */
    META_RSP_MN,    /* mn */
};

/*
 * What the processor found, for the return flags. The composer writes only
 * the flags the request asked for and that memcached writes for that command
 * and status:
 *   mg VA/HD: s t c f l h O k in request order, then Z, X, W.
 *   mg EN:    O k.
 *   ms any:   O k c (c is 0 unless stored, as in memcached).
 *   md any:   O k.
 *   ma VA/HD: c t O k.   ma NF/NS/EX: O k.
 */
struct meta_rsp {
    uint32_t vlen;          /* VA <vlen> and s (ma: digits of the number) */
    uint64_t cas;           /* c */
    uint32_t client_flags;  /* f */
    /* t: seconds left, -1 for no expiry. memcached changes the TTL at the
     * T (and, for a vivified item, the N) token and writes t where it comes,
     * so "T30 t" shows 30 and "t T30" the old TTL. */
    int64_t ttl;            /* before this request (a vivified item: -1) */
    int64_t ttl_after_set;  /* after T */
    int64_t ttl_after_vivify;   /* after N, when vivified */
    uint32_t last_access;   /* l: seconds since the previous access */
    bool hit_before;        /* h */
    bool vivified;          /* N created the item */
    bool won;               /* W: this client won the recache token */
    bool stale;             /* X: the item was invalidated */
    bool won_by_other;      /* Z: a token was already handed out */
    /* k: the key to echo. NULL: the request's key and b. memcached echoes
     * the item's own key and "binary" mark for an mg hit and for ms. */
    const char *key;
    uint8_t nkey;
    bool key_binary;
};

/* Longest line proto_meta_compose_rsp() writes, "\r\n" included. */
#define PROTO_META_RSP_MAX 512

/*
 * Writes the reply line for req with status into out (at least
 * PROTO_META_RSP_MAX bytes): the code, " <vlen>" for VA, the return flags,
 * "\r\n". rsp may be NULL when there is no item (EN, NF, ...): the flags
 * that need one are then not written. The value block of a VA is the
 * caller's. Returns the length written. Any thread.
 */
size_t proto_meta_compose_rsp(char *out, const struct meta_req *req,
                              enum meta_status status,
                              const struct meta_rsp *rsp);

/* me's item dump. */
struct meta_debug {
    int64_t exp;        /* -1: no expiry; else as memcached 1.6.18 prints
                           it: now - exptime, so minus the seconds left */
    uint64_t last_access;   /* la: seconds since the last access */
    uint64_t cas;
    bool fetched;       /* fetch=yes|no */
    unsigned slab_class;    /* cls */
    uint64_t total_size;    /* size: item header + key + value */
};

/* Longest line proto_meta_compose_debug() writes. */
#define PROTO_META_DEBUG_MAX (3 + PROTO_META_B64_LEN(PROTO_KEY_MAX) + 160)

/*
 * Writes "ME <key> exp=.. la=.. cas=.. fetch=yes|no cls=.. size=..\r\n"
 * into out (at least PROTO_META_DEBUG_MAX bytes); the key base64-encoded
 * when key_binary (me <key> b). Returns the length written. A miss is
 * proto_meta_compose_rsp(out, req, META_RSP_EN, NULL): "EN\r\n". Any thread.
 */
size_t proto_meta_compose_debug(char *out, const char *key, uint8_t nkey,
                                bool key_binary, const struct meta_debug *d);

/* ---- base64 (memcached's flavour) ---- */

/*
 * Decodes src[0..len) as memcached's base64_decode() does: bytes outside the
 * alphabet are skipped, the rest must come in groups of four, and decoding
 * stops after the first group with padding. Returns the decoded length, 0
 * when the input is invalid or outlen is under 3 bytes per group of 4
 * (padding included, as memcached checks it; a 250-byte key needs 186).
 */
size_t proto_meta_base64_decode(const char *src, size_t len, char *out,
                                size_t outlen);

/* Encodes src[0..len) with '=' padding, no line breaks. Returns the encoded
 * length (PROTO_META_B64_LEN(len)), or 0 when it would exceed outlen. */
size_t proto_meta_base64_encode(const char *src, size_t len, char *out,
                                size_t outlen);

#endif
