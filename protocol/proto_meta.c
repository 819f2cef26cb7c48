/*
 * proto_meta.c: memcached's meta commands, parsed: one pass turns a request
 * into a struct meta_req. Also memcached's base64 flavour, for b keys. The
 * reply lines are composed in proto_meta_rsp.c.
 *
 * The parse retraces memcached 1.6.18's process_m*_command() and
 * _meta_flag_preparse() check by check, because the first check that fails
 * names the error line: token count, key length, flag count, (ms) the length,
 * then each flag in order (a duplicate or unknown letter stops at once; a
 * bad token is remembered and a later bad token overrides it), then the mode,
 * then the opaque length. Numbers follow memcached's safe_strto*() with a
 * 64-bit long, down to the low-32-bit truncation of T/N/R, F and the ms
 * length. Deliberate differences are marked "memcached would".
 *
 * The line and number scanning repeat proto_text.c's on purpose: meta
 * numbers keep memcached's truncations, which the classic parser refuses,
 * and this file must parse on its own (tests, fuzzing).
 */
#include <config.h>

#include <limits.h>
#include <stddef.h>
#include <string.h>

#include "protocol/proto_lex.h"
#include "protocol/proto_meta.h"

/* Looking at one token more than allowed is enough to refuse the line. */
#define TOKENS_MAX (PROTO_META_TOKENS_MAX + 1)

static const char err_error[] = "ERROR";
static const char err_format[] = "CLIENT_ERROR bad command line format";
static const char err_line_too_long[] = "CLIENT_ERROR line too long";
static const char err_chunk[] = "CLIENT_ERROR bad data chunk";
static const char err_dup[] = "CLIENT_ERROR duplicate flag";
static const char err_invalid[] = "CLIENT_ERROR invalid flag";
static const char err_token[] =
    "CLIENT_ERROR bad token in command line format";
static const char err_b64[] = "CLIENT_ERROR error decoding key";
static const char err_mlen[] = "CLIENT_ERROR incorrect length for M token";
static const char err_initial[] = "CLIENT_ERROR invalid numeric initial value";
static const char err_delta[] = "CLIENT_ERROR invalid numeric delta value";
static const char err_too_many_mg[] =
    "CLIENT_ERROR options flags are too long";
static const char err_too_many[] = "CLIENT_ERROR options flags too long";
static const char err_dup_or_invalid[] =
    "CLIENT_ERROR invalid or duplicate flag";
static const char err_opaque[] = "CLIENT_ERROR opaque token too long";
static const char err_ms_mode[] = "CLIENT_ERROR invalid mode for ms M token";
static const char err_ma_mode[] = "CLIENT_ERROR invalid mode for ma M token";

struct line {
    const char *p;
    size_t n;           /* content: no "\r\n", cut at the first NUL */
    size_t consumed;    /* bytes up to and including the '\n' */
    struct proto_token tok[TOKENS_MAX];
    unsigned ntok;      /* at most TOKENS_MAX */
};

/* ---- lexing ---- */

/* Finds the request line as memcached's try_read_command_ascii() does. */
static proto_parse
find_line(struct line *ln, const char *buf, size_t len)
{
    size_t scan = len < PROTO_META_LINE_MAX + 1 ? len
                                                : PROTO_META_LINE_MAX + 1;
    const char *nl = memchr(buf, '\n', scan);

    if (nl == NULL)
        return len > PROTO_META_LINE_MAX ? PARSE_EFATAL : PARSE_EUNFIN;
    ln->p = buf;
    ln->n = (size_t)(nl - buf);
    ln->consumed = ln->n + 1;
    if (ln->n > 0 && buf[ln->n - 1] == '\r')
        ln->n--;
    /* memcached handles the line as a C string */
    const char *nul = memchr(buf, '\0', ln->n);
    if (nul != NULL)
        ln->n = (size_t)(nul - buf);
    return PARSE_OK;
}

/* memcached's tokenize_command(): only ' ' separates tokens. */
static void
tokenize(struct line *ln)
{
    ln->ntok = proto_lex_tokenize(ln->p, ln->n, ln->tok, TOKENS_MAX);
}

/* safe_strtoul() with a 64-bit long: safe_strtoull(), then the low 32 bits
 * (F4294967296 is F0). */
static bool
parse_u32(const struct proto_token *t, uint32_t *out)
{
    uint64_t v;

    if (!proto_lex_u64(t, &v))
        return false;
    *out = (uint32_t)v;
    return true;
}

/* safe_strtol() with a 64-bit long: strtol()'s int64 range, then the low 32
 * bits read as signed (T4294967296 is T0, T4294967295 is T-1). */
static bool
parse_i32(const struct proto_token *t, int32_t *out)
{
    int64_t v;

    if (!proto_lex_i64(t, &v))
        return false;
    *out = (int32_t)(uint32_t)(uint64_t)v;
    return true;
}

/* ---- base64 ---- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The 6-bit value of c, 0 for '=', -1 outside the alphabet. */
static int
b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    if (c == '=')
        return 0;
    return -1;
}

size_t
proto_meta_base64_decode(const char *src, size_t len, char *out,
                         size_t outlen)
{
    size_t count = 0;

    for (size_t i = 0; i < len; i++)
        count += b64_value((unsigned char)src[i]) >= 0;
    if (count == 0 || count % 4 != 0 || count / 4 * 3 > outlen)
        return 0;

    unsigned char block[4];
    unsigned nblock = 0;
    unsigned pad = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)src[i]);
        if (v < 0)
            continue;
        if (src[i] == '=')
            pad++;
        block[nblock++] = (unsigned char)v;
        if (nblock < 4)
            continue;
        out[n++] = (char)(block[0] << 2 | block[1] >> 4);
        out[n++] = (char)(block[1] << 4 | block[2] >> 2);
        out[n++] = (char)(block[2] << 6 | block[3]);
        nblock = 0;
        if (pad > 0) {
            /* memcached counts '=' anywhere in the group and stops here */
            if (pad > 2)
                return 0;
            n -= pad;
            break;
        }
    }
    return n;
}

size_t
proto_meta_base64_encode(const char *src, size_t len, char *out,
                         size_t outlen)
{
    const unsigned char *in = (const unsigned char *)src;
    size_t n = 0;

    if (PROTO_META_B64_LEN(len) > outlen)
        return 0;
    for (; len >= 3; in += 3, len -= 3) {
        out[n++] = b64_alphabet[in[0] >> 2];
        out[n++] = b64_alphabet[(in[0] & 0x03) << 4 | in[1] >> 4];
        out[n++] = b64_alphabet[(in[1] & 0x0f) << 2 | in[2] >> 6];
        out[n++] = b64_alphabet[in[2] & 0x3f];
    }
    if (len > 0) {
        out[n++] = b64_alphabet[in[0] >> 2];
        if (len == 1) {
            out[n++] = b64_alphabet[(in[0] & 0x03) << 4];
            out[n++] = '=';
        } else {
            out[n++] = b64_alphabet[(in[0] & 0x03) << 4 | in[1] >> 4];
            out[n++] = b64_alphabet[(in[1] & 0x0f) << 2];
        }
        out[n++] = '=';
    }
    return n;
}

/* ---- parsing ---- */

static void
order_add(struct meta_req *req, char flag)
{
    req->ret_order[req->nret_order++] = flag;
}

/*
 * _meta_flag_preparse() over tokens [first, ntok): fills the typed fields.
 * Returns NULL when every flag is good, else memcached's error line.
 * *opaque_len is the O token's length, checked later as memcached does.
 */
static const char *
parse_flags(struct meta_req *req, const struct line *ln, unsigned first,
            size_t *opaque_len)
{
    bool seen[128] = { false };
    const char *err = err_format;
    bool has_error = false;

    for (unsigned i = first; i < ln->ntok; i++) {
        const struct proto_token *t = &ln->tok[i];
        unsigned char flag = (unsigned char)t->p[0];
        struct proto_token val = { t->p + 1, t->n - 1 };

        if (flag >= 127 || seen[flag])
            return err_dup;
        seen[flag] = true;

        switch (flag) {
        case 'b': {
            size_t n = proto_meta_base64_decode(ln->tok[1].p, ln->tok[1].n,
                                                req->key_buf,
                                                sizeof(req->key_buf));
            req->key_binary = true;
            if (n == 0) {
                err = err_b64;
                has_error = true;
            } else {
                req->key = req->key_buf;
                req->nkey = (uint8_t)n;
            }
            break;
        }
        case 'N':
            req->has_vivify = true;
            order_add(req, 'N');
            if (!parse_i32(&val, &req->vivify_ttl)) {
                err = err_token;
                has_error = true;
            }
            break;
        case 'T':
            req->has_ttl = true;
            order_add(req, 'T');
            if (!parse_i32(&val, &req->ttl)) {
                err = err_token;
                has_error = true;
            }
            break;
        case 'R':
            req->has_recache = true;
            order_add(req, 'R');
            if (!parse_i32(&val, &req->recache_ttl)) {
                err = err_token;
                has_error = true;
            }
            break;
        case 'O':
            req->has_opaque = true;
            order_add(req, 'O');
            *opaque_len = val.n;
            req->opaque = val.p;
            req->nopaque = (uint8_t)(val.n <= PROTO_META_OPAQUE_MAX ? val.n
                                                                    : 0);
            break;
        case 'P':
            req->has_proxy_p = true;
            break;
        case 'L':
            req->has_proxy_l = true;
            break;
        case 'c':
            req->ret_cas = true;
            order_add(req, 'c');
            break;
        case 'f':
            req->ret_flags = true;
            order_add(req, 'f');
            break;
        case 'h':
            req->ret_hit = true;
            order_add(req, 'h');
            break;
        case 'k':
            req->ret_key = true;
            order_add(req, 'k');
            break;
        case 'l':
            req->ret_last_access = true;
            order_add(req, 'l');
            break;
        case 's':
            req->ret_size = true;
            order_add(req, 's');
            break;
        case 't':
            req->ret_ttl = true;
            order_add(req, 't');
            break;
        case 'v':
            req->ret_value = true;
            break;
        case 'q':
            req->quiet = true;
            break;
        case 'u':
            req->no_lru_bump = true;
            break;
        case 'I':
            req->invalidate = true;
            break;
        case 'F':
            req->has_client_flags = true;
            /* memcached keeps the message it had for a bad F */
            if (!parse_u32(&val, &req->client_flags))
                has_error = true;
            break;
        case 'C':
            req->has_compare_cas = true;
            if (!proto_lex_u64(&val, &req->compare_cas)) {
                err = err_token;
                has_error = true;
            }
            break;
        case 'M':
            if (val.n != 1) {
                err = err_mlen;
                has_error = true;
            } else {
                req->mode_char = val.p[0];
            }
            break;
        case 'J':
            req->has_initial = true;
            if (!proto_lex_u64(&val, &req->initial)) {
                err = err_initial;
                has_error = true;
            }
            break;
        case 'D':
            req->has_delta = true;
            if (!proto_lex_u64(&val, &req->delta)) {
                err = err_delta;
                has_error = true;
            }
            break;
        default:
            return err_invalid;
        }
    }
    return has_error ? err : NULL;
}

/* mg, md, ma: <key> <flag>* */
static proto_parse
parse_keyed(struct meta_req *req, const struct line *ln, const char **errmsg)
{
    size_t opaque_len = 0;

    if (ln->ntok < 2) {
        *errmsg = err_error;
        return PARSE_EINVALID;
    }
    if (ln->tok[1].n > PROTO_KEY_MAX) {
        *errmsg = err_format;
        return PARSE_EINVALID;
    }
    if (ln->ntok > PROTO_META_TOKENS_MAX) {
        *errmsg = req->cmd == META_MG ? err_too_many_mg : err_too_many;
        return PARSE_EINVALID;
    }
    req->key = ln->tok[1].p;
    req->nkey = (uint8_t)ln->tok[1].n;
    const char *err = parse_flags(req, ln, 2, &opaque_len);
    if (err != NULL) {
        /* md and ma do not pass the preparse's message on */
        *errmsg = req->cmd == META_MG ? err : err_dup_or_invalid;
        return PARSE_EINVALID;
    }
    if (req->cmd == META_MA) {
        switch (req->mode_char) {
        case 0: case 'I': case '+':
            break;
        case 'D': case '-':
            req->decr = true;
            break;
        default:
            *errmsg = err_ma_mode;
            return PARSE_EINVALID;
        }
    }
    /* memcached would find a long opaque while writing the reply, after mg
     * applied T/N or ma the delta; refused here before anything happens. */
    if (opaque_len > PROTO_META_OPAQUE_MAX) {
        *errmsg = err_opaque;
        return PARSE_EINVALID;
    }
    return PARSE_OK;
}

/* ms <key> <datalen> <flag>*, then the value. */
static proto_parse
parse_set(struct meta_req *req, const char *buf, size_t len,
          const struct line *ln, uint32_t max_value, size_t *consumed,
          const char **errmsg)
{
    size_t opaque_len = 0;
    int32_t vlen;

    if (ln->ntok < 2) {
        *errmsg = err_error;
        return PARSE_EINVALID;
    }
    if (ln->tok[1].n > PROTO_KEY_MAX || ln->ntok == 2) {
        *errmsg = err_format;
        return PARSE_EINVALID;
    }
    if (ln->ntok > PROTO_META_TOKENS_MAX) {
        *errmsg = err_too_many;
        return PARSE_EINVALID;
    }
    if (!parse_i32(&ln->tok[2], &vlen) || vlen < 0 || vlen > INT_MAX - 2) {
        *errmsg = err_format;
        return PARSE_EINVALID;
    }
    req->vlen = (uint32_t)vlen;
    req->key = ln->tok[1].p;
    req->nkey = (uint8_t)ln->tok[1].n;

    /* From here on memcached swallows the value after an error. */
    const char *err = parse_flags(req, ln, 3, &opaque_len);
    if (err == NULL) {
        switch (req->mode_char) {
        case 0: case 'S':
            req->set_mode = META_SET_SET;
            break;
        case 'E':
            req->set_mode = META_SET_ADD;
            break;
        case 'A':
            req->set_mode = META_SET_APPEND;
            break;
        case 'P':
            req->set_mode = META_SET_PREPEND;
            break;
        case 'R':
            req->set_mode = META_SET_REPLACE;
            break;
        default:
            /* reported over a long opaque, as in memcached */
            err = err_ms_mode;
            break;
        }
        if (err == NULL && opaque_len > PROTO_META_OPAQUE_MAX)
            err = err_opaque;
    }

    if (req->vlen > max_value) {
        /* memcached would send err and swallow vlen + 2 bytes; the caller's
         * skip does the swallowing. */
        *consumed = ln->consumed;
        *errmsg = err;
        return PARSE_EOVERSIZE;
    }
    size_t need = ln->consumed + (size_t)req->vlen + 2;
    if (len < need)
        return PARSE_EUNFIN;
    *consumed = need;
    if (err != NULL) {
        /* swallowed unread: the bytes need not end in "\r\n" */
        *errmsg = err;
        return PARSE_EINVALID;
    }
    /* memcached reads vlen + 2 bytes into the item, then checks the last
     * two; whatever they were, those bytes are gone. */
    if (buf[need - 2] != '\r' || buf[need - 1] != '\n') {
        *errmsg = err_chunk;
        return PARSE_EINVALID;
    }
    req->value = buf + ln->consumed;
    return PARSE_OK;
}

/* me <key> [b]: memcached looks only at a 'b' right after the key. */
static proto_parse
parse_debug(struct meta_req *req, const struct line *ln, const char **errmsg)
{
    if (ln->ntok < 2 || ln->tok[1].n > PROTO_KEY_MAX) {
        *errmsg = err_format;
        return PARSE_EINVALID;
    }
    req->key = ln->tok[1].p;
    req->nkey = (uint8_t)ln->tok[1].n;
    if (ln->ntok >= 3 && proto_lex_is(&ln->tok[2], "b")) {
        size_t n = proto_meta_base64_decode(req->key, req->nkey, req->key_buf,
                                            sizeof(req->key_buf));
        if (n == 0) {
            *errmsg = err_format;
            return PARSE_EINVALID;
        }
        req->key_binary = true;
        req->key = req->key_buf;
        req->nkey = (uint8_t)n;
    }
    return PARSE_OK;
}

proto_parse
proto_meta_parse_req(struct meta_req *req, const char *buf, size_t len,
                     uint32_t max_value, size_t *consumed, const char **errmsg)
{
    struct line ln;
    proto_parse rc;

    memset(req, 0, offsetof(struct meta_req, key_buf));
    req->delta = 1;
    *consumed = 0;
    *errmsg = NULL;

    if (len == 0)
        return PARSE_EUNFIN;
    rc = find_line(&ln, buf, len);
    if (rc == PARSE_EUNFIN)
        return rc;
    if (rc == PARSE_EFATAL) {
        *errmsg = err_line_too_long;
        return rc;
    }
    tokenize(&ln);

    const struct proto_token *cmd = &ln.tok[0];
    rc = PARSE_EINVALID;
    *errmsg = err_error;
    if (ln.ntok > 0 && cmd->n == 2 && cmd->p[0] == 'm') {
        *errmsg = NULL;
        switch (cmd->p[1]) {
        case 'g':
            req->cmd = META_MG;
            rc = parse_keyed(req, &ln, errmsg);
            break;
        case 's':
            req->cmd = META_MS;
            rc = parse_set(req, buf, len, &ln, max_value, consumed, errmsg);
            break;
        case 'd':
            req->cmd = META_MD;
            rc = parse_keyed(req, &ln, errmsg);
            break;
        case 'a':
            req->cmd = META_MA;
            rc = parse_keyed(req, &ln, errmsg);
            break;
        case 'n':
            /* memcached answers "MN" whatever follows */
            req->cmd = META_MN;
            rc = PARSE_OK;
            break;
        case 'e':
            req->cmd = META_ME;
            rc = parse_debug(req, &ln, errmsg);
            break;
        default:
            *errmsg = err_error;
            break;
        }
    }

    switch (rc) {
    case PARSE_OK:
        if (*consumed == 0)
            *consumed = ln.consumed;
        break;
    case PARSE_EINVALID:
        /* memcached's out_errstring(): errors are sent, q or not */
        req->quiet = false;
        if (*consumed == 0)
            *consumed = ln.consumed;
        break;
    case PARSE_EOVERSIZE:
        req->quiet = false;
        break;
    case PARSE_EUNFIN:
    case PARSE_EFATAL:
        *consumed = 0;
        *errmsg = NULL;
        break;
    }
    return rc;
}
