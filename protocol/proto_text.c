/*
 * proto_text.c: the memcached text protocol (classic and meta commands) as
 * pure functions over a byte buffer, plus the few reply composers the hot path
 * needs (VALUE header, STAT line, integer to decimal).
 *
 * The parser mirrors memcached 1.6.18 (proto_text.c + util.c) in what it
 * accepts and in the error line it picks: the same whitespace tokenizer (only
 * ' ' separates tokens, a NUL ends the line, at most 24 tokens are looked at),
 * the same token-count checks per command ("ERROR" when wrong), the same
 * safe_strto*() number rules (leading whitespace, a sign and trailing
 * whitespace are accepted) and the same order of checks. Meta commands are
 * parsed by proto_meta.c into text_req.meta. Deliberate differences, all on
 * input no real client sends, are listed in the comments where they happen
 * (search "memcached would").
 *
 * Nothing here allocates or writes to the input: pointers in struct text_req
 * point into the caller's buffer, which must stay put while they are used.
 */
#include <config.h>

#include <limits.h>
#include <stddef.h>
#include <string.h>

#include "protocol/proto_lex.h"
#include "protocol/proto_text.h"

/* memcached tokenizes 23 tokens and keeps the rest of the line as one more;
 * looking at 24 is enough to take every decision it takes. */
#define TOKENS_MAX 24
/* memcached only lets a long line grow when the "get " follows at most this
 * many leading spaces. */
#define GET_LEADING_SPACES_MAX 100

static const char err_error[] = "ERROR";
static const char err_format[] = "CLIENT_ERROR bad command line format";
static const char err_delete[] =
    "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]";
static const char err_delta[] = "CLIENT_ERROR invalid numeric delta argument";
static const char err_exptime[] = "CLIENT_ERROR invalid exptime argument";
static const char err_chunk[] = "CLIENT_ERROR bad data chunk";
static const char err_line_too_long[] = "CLIENT_ERROR line too long";
/* memcached closes an HTTP request without a word. */
static const char err_silent_close[] = "";

/* One request line, split the way memcached's tokenize_command() does. */
struct line {
    const char *p;      /* start of the line */
    size_t n;           /* content length: no "\r\n", cut at the first NUL */
    size_t consumed;    /* bytes up to and including the '\n' */
    struct proto_token tok[TOKENS_MAX];
    unsigned ntok;      /* tokens found, at most TOKENS_MAX */
};

/* memcached's safe_strtoul(), except that a value over 2^32-1 is refused:
 * memcached would silently keep its low 32 bits (flags 4294967296 -> 0). */
static bool
parse_u32(const struct proto_token *t, uint32_t *out)
{
    uint64_t v;

    if (!proto_lex_u64(t, &v) || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* Splits line->p[0..n) on ' ' into at most TOKENS_MAX tokens. */
static void
tokenize(struct line *ln)
{
    ln->ntok = proto_lex_tokenize(ln->p, ln->n, ln->tok, TOKENS_MAX);
}

/* memcached's set_noreply_maybe(): the last token decides. */
static bool
last_is_noreply(const struct line *ln)
{
    return ln->ntok > 0 && proto_lex_is(&ln->tok[ln->ntok - 1], "noreply");
}

/* Whether a line that has no newline yet may grow past PROTO_TEXT_LINE_MAX. */
static bool
is_retrieval_line(const char *buf, size_t len)
{
    size_t i = 0;

    while (i < len && buf[i] == ' ')
        i++;
    if (i > GET_LEADING_SPACES_MAX)
        return false;
    buf += i;
    len -= i;
    return (len >= 4 && memcmp(buf, "get ", 4) == 0) ||
           (len >= 5 && memcmp(buf, "gets ", 5) == 0) ||
           (len >= 4 && memcmp(buf, "gat ", 4) == 0) ||
           (len >= 5 && memcmp(buf, "gats ", 5) == 0);
}

/*
 * The value block of a storage command once the line parsed.
 * *consumed and the return value follow proto_text_parse_req()'s contract.
 */
static proto_parse
read_value(struct text_req *req, const char *buf, size_t len,
           const struct line *ln, uint32_t max_value, size_t *consumed,
           const char **errmsg)
{
    if (req->vlen > max_value) {
        *consumed = ln->consumed;
        return PARSE_EOVERSIZE;
    }
    size_t need = ln->consumed + (size_t)req->vlen + 2;
    if (len < need)
        return PARSE_EUNFIN;
    req->value = buf + ln->consumed;
    *consumed = need;
    /* memcached reads vlen + 2 bytes into the item, then checks the last two;
     * whatever they were, those bytes are gone. */
    if (buf[need - 2] != '\r' || buf[need - 1] != '\n') {
        *errmsg = err_chunk;
        return PARSE_EINVALID;
    }
    return PARSE_OK;
}

/* get/gets/gat/gats/bget: keys after the command (and exptime) token. */
static proto_parse
parse_retrieval(struct text_req *req, const struct line *ln, bool touch,
                const char **errmsg)
{
    const struct proto_token *after = &ln->tok[0];

    if (touch) {
        if (!proto_lex_i64(&ln->tok[1], &req->exptime)) {
            *errmsg = err_exptime;
            return PARSE_EINVALID;
        }
        after = &ln->tok[1];
    }

    /* Walk the rest of the line: there may be more keys than tokens. */
    const char *end = ln->p + ln->n;
    const char *s = after->p + after->n;
    const char *first = NULL;
    const char *last_end = NULL;
    unsigned nkeys = 0;

    while (s < end) {
        while (s < end && *s == ' ')
            s++;
        if (s == end)
            break;
        const char *k = s;
        while (s < end && *s != ' ')
            s++;
        if ((size_t)(s - k) > PROTO_KEY_MAX) {
            *errmsg = err_format;
            return PARSE_EINVALID;
        }
        if (first == NULL) {
            first = k;
            req->key = k;
            req->nkey = (uint8_t)(s - k);
        }
        last_end = s;
        nkeys++;
    }
    /* "gat 10" with no key is valid in memcached: it answers "END". */
    req->keys = first;
    req->keys_len = first != NULL ? (size_t)(last_end - first) : 0;
    req->nkeys = nkeys;
    return PARSE_OK;
}

/* set/add/replace/append/prepend/cas: <key> <flags> <exptime> <bytes>
 * [<cas unique>] [noreply], then the value. */
static proto_parse
parse_storage(struct text_req *req, const char *buf, size_t len,
              const struct line *ln, uint32_t max_value, size_t *consumed,
              const char **errmsg)
{
    bool is_cas = req->cmd == TEXT_CAS;
    unsigned want = is_cas ? 6 : 5;
    int64_t vlen;

    if (ln->ntok != want && ln->ntok != want + 1) {
        *errmsg = err_error;
        return PARSE_EINVALID;
    }
    req->noreply = last_is_noreply(ln);
    if (ln->tok[1].n > PROTO_KEY_MAX) {
        *errmsg = err_format;
        return PARSE_EINVALID;
    }
    req->key = ln->tok[1].p;
    req->nkey = (uint8_t)ln->tok[1].n;
    if (!parse_u32(&ln->tok[2], &req->flags) ||
        !proto_lex_i64(&ln->tok[3], &req->exptime) ||
        !proto_lex_i64(&ln->tok[4], &vlen) ||
        (is_cas && !proto_lex_u64(&ln->tok[5], &req->cas_unique))) {
        *errmsg = err_format;
        return PARSE_EINVALID;
    }
    /* memcached would wrap a length of 2^32 or more to 32 bits. */
    if (vlen < 0 || vlen > INT_MAX - 2) {
        *errmsg = err_format;
        return PARSE_EINVALID;
    }
    req->vlen = (uint32_t)vlen;
    return read_value(req, buf, len, ln, max_value, consumed, errmsg);
}

static proto_parse
parse_delete(struct text_req *req, const struct line *ln, const char **errmsg)
{
    if (ln->ntok < 2 || ln->ntok > 4) {
        *errmsg = err_error;
        return PARSE_EINVALID;
    }
    if (ln->ntok > 2) {
        /* Only the legacy hold time "0" and noreply are allowed. */
        bool hold_is_zero = proto_lex_is(&ln->tok[2], "0");
        bool noreply = last_is_noreply(ln);
        bool valid = (ln->ntok == 3 && (hold_is_zero || noreply)) ||
                     (ln->ntok == 4 && hold_is_zero && noreply);
        req->noreply = noreply;
        if (!valid) {
            *errmsg = err_delete;
            return PARSE_EINVALID;
        }
    }
    if (ln->tok[1].n > PROTO_KEY_MAX) {
        *errmsg = err_format;
        return PARSE_EINVALID;
    }
    req->key = ln->tok[1].p;
    req->nkey = (uint8_t)ln->tok[1].n;
    return PARSE_OK;
}

/* incr/decr <key> <delta> and touch <key> <exptime>, each [noreply]. */
static proto_parse
parse_key_number(struct text_req *req, const struct line *ln,
                 const char **errmsg)
{
    if (ln->ntok != 3 && ln->ntok != 4) {
        *errmsg = err_error;
        return PARSE_EINVALID;
    }
    req->noreply = last_is_noreply(ln);
    if (ln->tok[1].n > PROTO_KEY_MAX) {
        *errmsg = err_format;
        return PARSE_EINVALID;
    }
    req->key = ln->tok[1].p;
    req->nkey = (uint8_t)ln->tok[1].n;
    if (req->cmd == TEXT_TOUCH) {
        if (!proto_lex_i64(&ln->tok[2], &req->exptime)) {
            *errmsg = err_exptime;
            return PARSE_EINVALID;
        }
    } else if (!proto_lex_u64(&ln->tok[2], &req->delta)) {
        *errmsg = err_delta;
        return PARSE_EINVALID;
    }
    return PARSE_OK;
}

static proto_parse
parse_flush_all(struct text_req *req, const struct line *ln,
                const char **errmsg)
{
    if (ln->ntok > 3) {
        *errmsg = err_error;
        return PARSE_EINVALID;
    }
    req->noreply = last_is_noreply(ln);
    /* As memcached: the delay is the first argument unless the only argument
     * is noreply; a third token is ignored. */
    if (ln->ntok != (req->noreply ? 2u : 1u)) {
        if (!proto_lex_i64(&ln->tok[1], &req->delay)) {
            *errmsg = err_exptime;
            return PARSE_EINVALID;
        }
        req->has_delay = true;
    }
    return PARSE_OK;
}

static proto_parse
parse_verbosity(struct text_req *req, const struct line *ln,
                const char **errmsg)
{
    if (ln->ntok != 2 && ln->ntok != 3) {
        *errmsg = err_error;
        return PARSE_EINVALID;
    }
    req->noreply = last_is_noreply(ln);
    /* memcached keeps the low 32 bits here too; harmless for a level the
     * server clamps anyway, so it is mirrored rather than refused. */
    uint64_t level;
    if (!proto_lex_u64(&ln->tok[1], &level)) {
        *errmsg = err_format;
        return PARSE_EINVALID;
    }
    req->level = (uint32_t)level;
    return PARSE_OK;
}

static void
parse_stats(struct text_req *req, const struct line *ln)
{
    if (ln->ntok < 2)
        return;
    /* From the first argument to the end of the last one, however many. */
    const char *end = ln->p + ln->n;
    while (end > ln->tok[1].p && end[-1] == ' ')
        end--;
    req->arg = ln->tok[1].p;
    req->arglen = (size_t)(end - ln->tok[1].p);
}

/*
 * mg/ms/md/ma/mn/me: proto_meta.c parses the request into req->meta, under
 * the same contract as ours; the fields a caller of the classic commands
 * reads (cmd, key, noreply, vlen, value) are copied from it.
 */
static proto_parse
parse_meta(struct text_req *req, const char *buf, size_t len,
           const struct line *ln, uint32_t max_value, size_t *consumed,
           const char **errmsg)
{
    static const enum text_cmd cmds[] = {
        [META_NONE] = TEXT_UNKNOWN, [META_MG] = TEXT_MG, [META_MS] = TEXT_MS,
        [META_MD] = TEXT_MD, [META_MA] = TEXT_MA, [META_MN] = TEXT_MN,
        [META_ME] = TEXT_ME,
    };
    struct meta_req *meta = &req->meta;
    proto_parse rc = proto_meta_parse_req(meta, buf, len, max_value,
                                          consumed, errmsg);

    req->cmd = cmds[meta->cmd];
    req->key = meta->key;
    req->nkey = meta->nkey;
    req->noreply = meta->quiet;
    req->vlen = meta->vlen;
    req->value = meta->value;

    return rc;
}

/* Finds the end of the request line, or says why there is none yet. */
static proto_parse
find_line(struct line *ln, const char *buf, size_t len, const char **errmsg)
{
    size_t scan = len < PROTO_TEXT_LINE_MAX + 1 ? len : PROTO_TEXT_LINE_MAX + 1;
    const char *nl = memchr(buf, '\n', scan);

    /* A line longer than the limit is refused whether or not its newline has
     * arrived; memcached would still run it when the newline came in the same
     * read, which makes its answer depend on packet boundaries. */
    if (nl == NULL && len > PROTO_TEXT_LINE_MAX) {
        if (!is_retrieval_line(buf, len)) {
            *errmsg = err_line_too_long;
            return PARSE_EFATAL;
        }
        scan = len < PROTO_TEXT_GET_LINE_MAX + 1 ? len
                                                 : PROTO_TEXT_GET_LINE_MAX + 1;
        nl = memchr(buf + PROTO_TEXT_LINE_MAX + 1, '\n',
                    scan - (PROTO_TEXT_LINE_MAX + 1));
        if (nl == NULL && len > PROTO_TEXT_GET_LINE_MAX) {
            *errmsg = err_line_too_long;
            return PARSE_EFATAL;
        }
    }
    if (nl == NULL)
        return PARSE_EUNFIN;

    ln->p = buf;
    ln->n = (size_t)(nl - buf);
    ln->consumed = ln->n + 1;
    if (ln->n > 0 && buf[ln->n - 1] == '\r')
        ln->n--;
    /* memcached handles the line as a C string. */
    const char *nul = memchr(buf, '\0', ln->n);
    if (nul != NULL)
        ln->n = (size_t)(nul - buf);
    return PARSE_OK;
}

proto_parse
proto_text_parse_req(struct text_req *req, const char *buf, size_t len,
                     uint32_t max_value, size_t *consumed, const char **errmsg)
{
    struct line ln;
    proto_parse rc;

    memset(req, 0, offsetof(struct text_req, meta));
    /* cmd META_NONE, no pointers: cheap, and nothing stale to misread */
    memset(&req->meta, 0, offsetof(struct meta_req, key_buf));
    *consumed = 0;
    *errmsg = NULL;

    if (len == 0)
        return PARSE_EUNFIN;
    rc = find_line(&ln, buf, len, errmsg);
    if (rc != PARSE_OK)
        return rc;
    tokenize(&ln);

    rc = PARSE_EINVALID;
    *errmsg = err_error;
    const struct proto_token *cmd = &ln.tok[0];

    /* The dispatch follows memcached's process_command_ascii(), branch by
     * branch, so a near-miss gets the same answer ("ERROR"). */
    if (ln.ntok == 0 || cmd->n < 2) {
        /* ERROR */
    } else if (cmd->p[0] == 'm' && cmd->n == 2) {
        return parse_meta(req, buf, len, &ln, max_value, consumed, errmsg);
    } else if (cmd->p[0] == 'g') {
        if (ln.ntok < 2) {
            /* ERROR */
        } else if (proto_lex_is(cmd, "get")) {
            req->cmd = TEXT_GET;
        } else if (proto_lex_is(cmd, "gets")) {
            req->cmd = TEXT_GETS;
        } else if (proto_lex_is(cmd, "gat")) {
            req->cmd = TEXT_GAT;
        } else if (proto_lex_is(cmd, "gats")) {
            req->cmd = TEXT_GATS;
        }
        if (req->cmd != TEXT_UNKNOWN) {
            *errmsg = NULL;
            rc = parse_retrieval(req, &ln,
                                 req->cmd == TEXT_GAT || req->cmd == TEXT_GATS,
                                 errmsg);
        }
    } else if (cmd->p[0] == 's') {
        if (proto_lex_is(cmd, "set")) {
            req->cmd = TEXT_SET;
        } else if (proto_lex_is(cmd, "stats")) {
            req->cmd = TEXT_STATS;
            parse_stats(req, &ln);
            rc = PARSE_OK;
        } else if (proto_lex_is(cmd, "shutdown") || proto_lex_is(cmd, "slabs")) {
            req->cmd = cmd->n == 5 ? TEXT_SLABS : TEXT_SHUTDOWN;
            parse_stats(req, &ln);
            rc = PARSE_OK;
        }
    } else if (cmd->p[0] == 'a') {
        if (proto_lex_is(cmd, "add"))
            req->cmd = TEXT_ADD;
        else if (proto_lex_is(cmd, "append"))
            req->cmd = TEXT_APPEND;
    } else if (cmd->p[0] == 'c') {
        if (proto_lex_is(cmd, "cas")) {
            req->cmd = TEXT_CAS;
        } else if (proto_lex_is(cmd, "cache_memlimit")) {
            req->cmd = TEXT_CACHE_MEMLIMIT;
            parse_stats(req, &ln);
            rc = PARSE_OK;
        }
    } else if (cmd->p[0] == 'i') {
        if (proto_lex_is(cmd, "incr")) {
            req->cmd = TEXT_INCR;
            *errmsg = NULL;
            rc = parse_key_number(req, &ln, errmsg);
        }
    } else if (cmd->p[0] == 'd') {
        if (proto_lex_is(cmd, "delete")) {
            req->cmd = TEXT_DELETE;
            *errmsg = NULL;
            rc = parse_delete(req, &ln, errmsg);
        } else if (proto_lex_is(cmd, "decr")) {
            req->cmd = TEXT_DECR;
            *errmsg = NULL;
            rc = parse_key_number(req, &ln, errmsg);
        } else if (proto_lex_is(cmd, "debugtime")) {
            req->cmd = TEXT_DEBUGTIME;
            parse_stats(req, &ln);
            rc = PARSE_OK;
        }
    } else if (cmd->p[0] == 't') {
        if (proto_lex_is(cmd, "touch")) {
            req->cmd = TEXT_TOUCH;
            *errmsg = NULL;
            rc = parse_key_number(req, &ln, errmsg);
        }
    } else if (proto_lex_is(cmd, "replace")) {
        req->cmd = TEXT_REPLACE;
    } else if (proto_lex_is(cmd, "refresh_certs")) {
        req->cmd = TEXT_REFRESH_CERTS;
        parse_stats(req, &ln);
        rc = PARSE_OK;
    } else if (proto_lex_is(cmd, "prepend")) {
        req->cmd = TEXT_PREPEND;
    } else if (proto_lex_is(cmd, "bget")) {
        /* memcached still takes the ancient "bget" as a get. */
        if (ln.ntok >= 2) {
            req->cmd = TEXT_GET;
            *errmsg = NULL;
            rc = parse_retrieval(req, &ln, false, errmsg);
        }
    } else if (proto_lex_is(cmd, "flush_all")) {
        req->cmd = TEXT_FLUSH_ALL;
        *errmsg = NULL;
        rc = parse_flush_all(req, &ln, errmsg);
    } else if (proto_lex_is(cmd, "version")) {
        req->cmd = TEXT_VERSION;
        rc = PARSE_OK;
    } else if (proto_lex_is(cmd, "quit")) {
        req->cmd = TEXT_QUIT;
        rc = PARSE_OK;
    } else if (proto_lex_is(cmd, "lru_crawler") || proto_lex_is(cmd, "lru")) {
        req->cmd = cmd->n == 3 ? TEXT_LRU : TEXT_LRU_CRAWLER;
        parse_stats(req, &ln);
        rc = PARSE_OK;
    } else if (proto_lex_is(cmd, "verbosity")) {
        req->cmd = TEXT_VERBOSITY;
        *errmsg = NULL;
        rc = parse_verbosity(req, &ln, errmsg);
    } else {
        /* An unknown command whose last (23rd at most) token starts with
         * "HTTP/" is a web request: memcached drops it without a reply. */
        const struct proto_token *last =
            &ln.tok[(ln.ntok < TOKENS_MAX ? ln.ntok : TOKENS_MAX - 1) - 1];
        if (last->n >= 5 && memcmp(last->p, "HTTP/", 5) == 0) {
            *errmsg = err_silent_close;
            rc = PARSE_EFATAL;
        }
    }

    switch (req->cmd) {
    case TEXT_SET: case TEXT_ADD: case TEXT_REPLACE: case TEXT_APPEND:
    case TEXT_PREPEND: case TEXT_CAS:
        *errmsg = NULL;
        rc = parse_storage(req, buf, len, &ln, max_value, consumed, errmsg);
        break;
    default:
        break;
    }

    switch (rc) {
    case PARSE_OK:
        *errmsg = NULL;
        if (*consumed == 0)
            *consumed = ln.consumed;
        break;
    case PARSE_EINVALID:
        if (*consumed == 0)
            *consumed = ln.consumed;
        break;
    case PARSE_EUNFIN:
        *consumed = 0;
        break;
    case PARSE_EOVERSIZE:
        *errmsg = NULL;
        break;
    case PARSE_EFATAL:
        *consumed = 0;
        break;
    }
    return rc;
}

bool
proto_text_next_key(const struct text_req *req, size_t *cursor,
                     const char **key, uint8_t *nkey)
{
    size_t i = *cursor;

    if (req->keys == NULL)
        return false;
    while (i < req->keys_len && req->keys[i] == ' ')
        i++;
    if (i >= req->keys_len) {
        *cursor = req->keys_len;
        return false;
    }
    size_t start = i;
    while (i < req->keys_len && req->keys[i] != ' ')
        i++;
    *key = req->keys + start;
    *nkey = (uint8_t)(i - start);
    *cursor = i;
    return true;
}

static const char digit_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536"
    "37383940414243444546474849505152535455565758596061626364656667686970717273"
    "7475767778798081828384858687888990919293949596979899";

size_t
proto_text_u64toa(uint64_t v, char *out)
{
    char tmp[20];
    char *p = tmp + sizeof(tmp);

    /* Two digits per division, from the right. */
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        p -= 2;
        memcpy(p, digit_pairs + 2 * r, 2);
    }
    if (v >= 10) {
        p -= 2;
        memcpy(p, digit_pairs + 2 * v, 2);
    } else {
        *--p = (char)('0' + v);
    }
    size_t n = (size_t)(tmp + sizeof(tmp) - p);
    memcpy(out, p, n);
    return n;
}

size_t
proto_text_compose_value_hdr(char *out, const char *key, uint8_t nkey,
                             uint32_t flags, uint32_t vlen, bool with_cas,
                             uint64_t cas)
{
    char *p = out;

    memcpy(p, "VALUE ", 6);
    p += 6;
    memcpy(p, key, nkey);
    p += nkey;
    *p++ = ' ';
    p += proto_text_u64toa(flags, p);
    *p++ = ' ';
    p += proto_text_u64toa(vlen, p);
    if (with_cas) {
        *p++ = ' ';
        p += proto_text_u64toa(cas, p);
    }
    *p++ = '\r';
    *p++ = '\n';
    return (size_t)(p - out);
}

size_t
proto_text_compose_stat(char *out, size_t outlen, const char *name,
                        const char *value)
{
    size_t nname = strlen(name);
    size_t nvalue = strlen(value);
    size_t total = 5 + nname + 1 + nvalue + 2;

    if (total > outlen)
        return 0;
    memcpy(out, "STAT ", 5);
    memcpy(out + 5, name, nname);
    out[5 + nname] = ' ';
    memcpy(out + 6 + nname, value, nvalue);
    memcpy(out + 6 + nname + nvalue, "\r\n", 2);
    return total;
}
