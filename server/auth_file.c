/*
 * auth_file.c: the `user:password` table of -Y (see auth_file.h).
 *
 * The table is one allocation (entries, then their bytes) behind a
 * pointer guarded by a mutex: a check holds it for one walk of the table
 * (a connection checks once, when it authenticates), a reload only to
 * swap the pointer, so a reload never shows a half-read file.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/auth_file.h"

struct auth_entry {
    const char *user, *pass;
    size_t nuser, npass;
};

struct auth_table {
    size_t n;
    struct auth_entry entries[];   /* then the file's bytes */
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct auth_table *table;   /* guarded by table_lock */

/* Splits one line (without its end) into an entry; false when malformed. */
static bool
auth_parse_line(char *line, size_t len, struct auth_entry *e)
{
    char *colon = memchr(line, ':', len);
    if (colon == NULL || colon == line)
        return false;
    e->user = line;
    e->nuser = (size_t)(colon - line);
    e->pass = colon + 1;
    e->npass = len - e->nuser - 1;
    return true;
}

/* Reads the whole file; NULL with err filled. */
static char *
auth_read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (n == cap) {
            char *b = cap < ((size_t)AUTH_FILE_LINE_MAX + 2) * AUTH_FILE_MAX_ENTRIES
                      ? realloc(buf, cap * 2) : NULL;
            if (b == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    bool failed = ferror(f) != 0;
    fclose(f);
    if (buf == NULL || failed) {
        snprintf(err, errlen, "%s: cannot read: %s", path,
                 buf == NULL ? "too large" : strerror(errno));
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* Builds a table from the file's bytes; NULL with err filled. */
static struct auth_table *
auth_build(const char *path, const char *data, size_t len, char *err,
           size_t errlen)
{
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += data[i] == '\n';
    struct auth_table *t = malloc(sizeof(*t) + lines * sizeof(t->entries[0]) +
                                  len + 1);
    if (t == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    char *bytes = (char *)&t->entries[lines];
    memcpy(bytes, data, len);
    t->n = 0;
    size_t lineno = 0;
    for (size_t pos = 0; pos < len;) {
        char *line = bytes + pos;
        char *nl = memchr(line, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - line) : len - pos;
        pos += n + (nl != NULL);
        lineno++;
        if (n > 0 && line[n - 1] == '\r')
            n--;
        if (n == 0)
            continue;   /* an empty line (memcached would stop there) */
        const char *why = n > AUTH_FILE_LINE_MAX ? "longer than 256 bytes"
                          : t->n == AUTH_FILE_MAX_ENTRIES ? "more than 4096 users"
                          : !auth_parse_line(line, n, &t->entries[t->n])
                            ? "malformed entry, should be 'user:password'" : NULL;
        if (why != NULL) {
            snprintf(err, errlen, "%s:%zu: %s", path, lineno, why);
            free(t);
            return NULL;
        }
        t->n++;
    }
    return t;
}

int
auth_file_load(const char *path, char *err, size_t errlen)
{
    size_t len = 0;
    char *data = auth_read_file(path, &len, err, errlen);
    if (data == NULL)
        return -1;
    struct auth_table *t = auth_build(path, data, len, err, errlen);
    free(data);
    if (t == NULL)
        return -1;
    pthread_mutex_lock(&table_lock);
    struct auth_table *old = table;
    table = t;
    pthread_mutex_unlock(&table_lock);
    free(old);
    return 0;
}

/* Compares n bytes in a time that depends on n only. */
static bool
auth_same(const char *a, const char *b, size_t n)
{
    volatile unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

bool
auth_file_check(const char *user, size_t nuser, const char *pass, size_t npass)
{
    bool ok = false;
    pthread_mutex_lock(&table_lock);
    for (size_t i = 0; table != NULL && i < table->n; i++) {
        const struct auth_entry *e = &table->entries[i];
        /* the lengths first, as memcached does; then every entry of those
         * lengths in full, so the time does not tell which bytes or which
         * entry matched */
        if (e->nuser != nuser || e->npass != npass)
            continue;
        bool same_user = auth_same(user, e->user, nuser);
        bool same_pass = auth_same(pass, e->pass, npass);   /* both, always */
        ok |= same_user && same_pass;
    }
    pthread_mutex_unlock(&table_lock);
    return ok;
}

void
auth_file_teardown(void)
{
    pthread_mutex_lock(&table_lock);
    free(table);
    table = NULL;
    pthread_mutex_unlock(&table_lock);
}
