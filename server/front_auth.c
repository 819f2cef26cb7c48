/*
 * front_auth.c: a text (or meta) connection's requests before it has
 * authenticated with the -Y file, answered byte for byte as memcached
 * 1.6.18's try_read_command_asciiauth: the only command is
 *
 *     set <any key> <any flags> <any exptime> <n>\r\n<user> <password>\r\n
 *
 * answered STORED (the connection then runs commands) or CLIENT_ERROR
 * authentication failure; every other line gets CLIENT_ERROR
 * unauthenticated and touches nothing. The check is in memory
 * (auth_file.c), so it runs here on the worker.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "server/auth_file.h"
#include "server/conn.h"
#include "server/front.h"
#include "server/stats.h"

/* memcached 1.6.18 waits for a token of any size; later versions refuse
 * one past this (MAX_AUTH_REQ_LEN), as mckv does: nothing unauthenticated
 * makes the read buffer grow. */
#define AUTH_REQ_MAX 16384
#define AUTH_JUNK_MAX 2048       /* no newline in this much: close */

/* The <n> of a `set` line, or -1 when the line is no such set. */
static long
auth_set_size(const char *line, size_t len)
{
    const char *w[8];
    size_t n[8];
    unsigned nw = front_words(line, len, w, n, 8);
    if (nw < 5 || n[0] != 3 || memcmp(w[0], "set", 3) != 0 || n[4] == 0 ||
        n[4] > 10)
        return -1;
    unsigned long v = 0;
    size_t i = 0;
    /* memcached reads it with strtoul: one leading + is allowed */
    if (w[4][0] == '+' && n[4] > 1)
        i = 1;
    for (; i < n[4]; i++) {
        if (w[4][i] < '0' || w[4][i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(w[4][i] - '0');
    }
    return v > 0xffffffffUL ? -1 : (long)v;
}

/* The token "user password\r\n" of size n + 2 checked against the file. */
static void
auth_check_token(struct conn *c, const char *tok, size_t n)
{
    if (tok[n] != '\r' || tok[n + 1] != '\n') {
        conn_out_line(c, "CLIENT_ERROR bad command line termination");
        return;
    }
    /* memcached 1.6.18 splits it with its tokenizer: the first two
     * words are the user and the password */
    const char *w[3];
    size_t nw[3];
    if (front_words(tok, n, w, nw, 3) < 2) {
        conn_out_line(c, "CLIENT_ERROR bad authentication token format");
        return;
    }
    STAT_INCR(c->owner->stats, auth_cmds);
    if (c->owner->auth_ascii && auth_file_check(w[0], nw[0], w[1], nw[1])) {
        c->authed = true;
        conn_out_line(c, "STORED");
    } else {
        STAT_INCR(c->owner->stats, auth_errors);
        conn_out_line(c, "CLIENT_ERROR authentication failure");
    }
}

enum conn_req
front_text_auth(struct conn *c, size_t *need)
{
    const char *buf = c->rbuf + c->rstart;
    size_t len = c->rend - c->rstart;

    *need = 0;
    if (len < 2)
        return CONN_REQ_NEED_MORE;
    /* The newline is looked for in the first AUTH_JUNK_MAX + 1 bytes
     * only: a longer line closes the connection however its bytes came
     * in (looking further would keep it open when it came in one read
     * and close it when it came in pieces). */
    const char *nl = memchr(buf, '\n', len < AUTH_JUNK_MAX + 1 ? len
                                                               : AUTH_JUNK_MAX + 1);
    if (nl == NULL) {
        if (len <= AUTH_JUNK_MAX)
            return CONN_REQ_NEED_MORE;
        c->rstart = c->rend;
        return CONN_REQ_CLOSE;
    }
    size_t linelen = (size_t)(nl - buf);
    size_t words_len = linelen > 0 && buf[linelen - 1] == '\r' ? linelen - 1
                                                                : linelen;
    long size = auth_set_size(buf, words_len);
    if (size < 0 || size > AUTH_REQ_MAX) {
        c->rstart += linelen + 1;
        conn_out_line(c, size < 0 ? "CLIENT_ERROR unauthenticated"
                                  : "CLIENT_ERROR auth token too long");
        return CONN_REQ_OK;
    }
    size_t total = linelen + 1 + (size_t)size + 2;
    if (len < total) {
        *need = total;
        return CONN_REQ_NEED_MORE;
    }
    c->rstart += total;
    auth_check_token(c, nl + 1, (size_t)size);
    return CONN_REQ_OK;
}
