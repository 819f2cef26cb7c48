/*
 * config_ini.c: loading an INI file over a struct config (config_load_file).
 *
 * INI files go through inih's ini_parse_stream() with our own line reader.
 * Debian builds inih without INI_HANDLER_LINENO, so the handler gets no line
 * number: the reader counts lines itself (inih calls it once per line, and
 * the handler runs while that line is the last one read). The reader also
 * strips leading blanks, so an indented key is never taken for a multi-line
 * continuation, and refuses lines longer than inih's buffer rather than let
 * inih split them. A load goes into a copy of the config, so a bad file
 * leaves the caller's config as it was (what a SIGHUP reload needs).
 * Main thread (start-up, SIGHUP reload).
 */
/* Angle brackets on purpose: from server/, "config.h" would find this
 * module's own server/config.h first instead of the autoconf header. */
#include <config.h>

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "server/config_priv.h"
#include "util/status.h"

/* The INI loader tracks the keys already set in a 64-bit mask. */
_Static_assert(OPT_COUNT <= 64, "too many options for the duplicate mask");

struct ini_load {
    struct config *cfg;
    const char *path;
    FILE *fp;
    int lineno;              /* lines handed to inih so far */
    uint64_t seen;           /* bit i: key i already set by this file */
    int seen_line[OPT_COUNT];
    int err_line;            /* line of the first error, 0 if none */
    int err_rc;              /* its status */
    char err[256];           /* its text, complete: "FILE:LINE: ..." */
};

static void
ini_error(struct ini_load *ld, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the first error only: inih carries on after a handler error. */
static void
ini_error(struct ini_load *ld, int rc, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (ld->err_line != 0)
        return;
    ld->err_line = ld->lineno;
    ld->err_rc = rc;
    n = snprintf(ld->err, sizeof(ld->err), "%s:%d: ", ld->path, ld->lineno);
    if (n < 0 || (size_t)n >= sizeof(ld->err))
        return;
    va_start(ap, fmt);
    vsnprintf(ld->err + n, sizeof(ld->err) - (size_t)n, fmt, ap);
    va_end(ap);
}

/* inih's reader: one line per call, counted, leading blanks removed. */
static char *
ini_read_line(char *str, int num, void *stream)
{
    struct ini_load *ld = stream;
    size_t len, skip;

    if (ld->err_line != 0)
        return NULL;  /* an error is already recorded: stop reading */
    if (fgets(str, num, ld->fp) == NULL) {
        if (ferror(ld->fp)) {
            ld->lineno++;
            ini_error(ld, MCKV_EIO, "read error: %s", strerror(errno));
        }
        return NULL;
    }
    ld->lineno++;
    len = strlen(str);
    if (len > 0 && str[len - 1] != '\n' && !feof(ld->fp)) {
        ini_error(ld, MCKV_EINVAL, "line too long (over %d bytes)", num - 2);
        return NULL;
    }
    skip = strspn(str, " \t");
    if (skip > 0)
        memmove(str, str + skip, len - skip + 1);
    return str;
}

/* inih's handler: returns nonzero on success. */
static int
ini_on_pair(void *user, const char *section, const char *name,
            const char *value)
{
    struct ini_load *ld = user;
    const struct opt_desc *o;
    char reason[192];
    int i, rc;

    if (ld->err_line != 0)
        return 0;
    i = config_find_key(name);
    if (i < 0) {
        ini_error(ld, MCKV_EINVAL, "%s: unknown key", name);
        return 0;
    }
    o = &opt_table[i];
    if (section[0] != '\0' && strcmp(section, o->section) != 0) {
        bool known = false;

        for (int j = 0; j < OPT_COUNT && !known; j++)
            known = strcmp(section, opt_table[j].section) == 0;
        if (known)
            ini_error(ld, MCKV_EINVAL,
                      "%s: belongs in section [%s], not [%s]", name,
                      o->section, section);
        else
            ini_error(ld, MCKV_EINVAL, "%s: unknown section [%s]", name,
                      section);
        return 0;
    }
    if (ld->seen & (UINT64_C(1) << i)) {
        ini_error(ld, MCKV_EINVAL, "%s: duplicate key (first set on line %d)",
                  name, ld->seen_line[i]);
        return 0;
    }
    rc = config_set_value(ld->cfg, o, value, reason, sizeof(reason));
    if (rc < 0) {
        ini_error(ld, rc, "%s: %s", name, reason);
        return 0;
    }
    ld->seen |= UINT64_C(1) << i;
    ld->seen_line[i] = ld->lineno;
    return 1;
}

/*
 * Loads the INI file at `path` over cfg. 0, or a negative mckv_status with
 * one line in err: "FILE:LINE: key: reason", "FILE:LINE: syntax error" or
 * "FILE: cannot open: ...". On failure cfg is unchanged. Main thread.
 */
int
config_load_file(struct config *cfg, const char *path, char *err,
                 size_t errlen)
{
    struct ini_load ld;
    struct config tmp;
    int rc, syntax_line;

    memset(&ld, 0, sizeof(ld));
    ld.path = path;
    ld.fp = fopen(path, "r");
    if (ld.fp == NULL) {
        config_set_err(err, errlen, "%s: cannot open: %s", path,
                       strerror(errno));
        return MCKV_EIO;
    }
    rc = config_copy(&tmp, cfg);
    if (rc < 0) {
        fclose(ld.fp);
        config_set_err(err, errlen, "%s: out of memory", path);
        return rc;
    }
    ld.cfg = &tmp;
    syntax_line = ini_parse_stream(ini_read_line, &ld, ini_on_pair, &ld);
    fclose(ld.fp);

    /* inih returns the first bad line, ours or its own; a line before our
     * first recorded error (or any, if we recorded none) is a syntax error. */
    if (syntax_line > 0 && (ld.err_line == 0 || syntax_line < ld.err_line)) {
        config_set_err(err, errlen, "%s:%d: syntax error", path, syntax_line);
        rc = MCKV_EINVAL;
    } else if (syntax_line < 0 && ld.err_line == 0) {
        config_set_err(err, errlen, "%s: out of memory", path);
        rc = MCKV_ENOMEM;
    } else if (ld.err_line != 0) {
        config_set_err(err, errlen, "%s", ld.err);
        rc = ld.err_rc < 0 ? ld.err_rc : MCKV_EINVAL;
    } else {
        rc = MCKV_OK;
    }
    if (rc < 0) {
        config_deinit(&tmp);
        return rc;
    }
    config_deinit(cfg);
    *cfg = tmp;
    return MCKV_OK;
}
