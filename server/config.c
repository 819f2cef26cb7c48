/*
 * config.c: the configuration of mckvd, from its defaults, an INI file and
 * the command line, in that order of precedence (the command line wins).
 * The command line is memcached's too: config_compat.c lists its flags and
 * -o names that are no key of options.h, and what each does here.
 *
 * Everything is generated from the MCKV_OPTIONS table of options.h: the
 * defaults, the INI keys, the long options (--key-name, and --key_name too),
 * --help and config_each() for `stats settings`. opt_table below is that list
 * with each field's offset in struct config; a key is found by name, by short
 * flag or by long-option index, and its text parsed by its type into the field.
 *
 * INI files go through inih's ini_parse_stream() with our own line reader.
 * Debian builds inih without INI_HANDLER_LINENO, so the handler gets no line
 * number: the reader counts lines itself (inih calls it once per line, and
 * the handler runs while that line is the last one read). The reader also
 * strips leading blanks, so an indented key is never taken for a multi-line
 * continuation, and refuses lines longer than inih's buffer rather than let
 * inih split them. A load goes into a copy of the config, so a bad file
 * leaves the caller's config as it was (what a SIGHUP reload needs).
 *
 * Every function here runs on the main thread (start-up, SIGHUP reload); it
 * uses getopt_long(), whose state is process-global.
 */
/* Angle brackets on purpose: from server/, "config.h" would find this
 * module's own server/config.h first instead of the autoconf header. */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "server/config.h"
#include "server/config_compat.h"
#include "util/status.h"

struct opt_desc {
    const char *name;       /* as in options.h: snake_case */
    const char *section;    /* INI section */
    enum opt_type type;
    const char *def;        /* default, as text */
    uint64_t min, max;      /* inclusive bounds of numeric values */
    int short_flag;         /* memcached's letter, or 0 */
    bool reloadable;
    const char *help;
    size_t offset;          /* of the field in struct config */
};

static const struct opt_desc opt_table[] = {
#define X(name, section, type, def, min, max, shortf, reload, help)           \
    { #name, section, type, def, (uint64_t)(min), (uint64_t)(max), shortf,    \
      (reload) != 0, help, offsetof(struct config, name) },
    MCKV_OPTIONS(X)
#undef X
};

enum { OPT_COUNT = sizeof(opt_table) / sizeof(opt_table[0]) };

/* The INI loader tracks the keys already set in a 64-bit mask. */
_Static_assert(OPT_COUNT <= 64, "too many options for the duplicate mask");

/* getopt_long() values of the long options: key i is OPTVAL_KEY + i;
 * memcached's spellings return its letters (config_compat.h). */
enum {
    OPTVAL_HELP = 'h',
    OPTVAL_VERSION = 'V',
    OPTVAL_CONFIG = 201,
    OPTVAL_KEY = 256,
};
_Static_assert(OPTVAL_CONFIG != COMPAT_LETTER_FACTOR, "distinct values");

/* Longest long option name, plus its NUL. */
#define OPT_NAME_MAX 64

/* ---- small helpers ---------------------------------------------------- */

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static char **
field_str(struct config *cfg, const struct opt_desc *o)
{
    return (char **)(void *)((char *)cfg + o->offset);
}

static uint64_t *
field_u64(struct config *cfg, const struct opt_desc *o)
{
    return (uint64_t *)(void *)((char *)cfg + o->offset);
}

static bool *
field_bool(struct config *cfg, const struct opt_desc *o)
{
    return (bool *)(void *)((char *)cfg + o->offset);
}

static const void *
field_const(const struct config *cfg, const struct opt_desc *o)
{
    return (const char *)cfg + o->offset;
}

/* "max_connections" -> "max-connections". `out` holds OPT_NAME_MAX bytes. */
static void
dashed_name(const char *name, char *out)
{
    size_t i;

    for (i = 0; name[i] != '\0' && i + 1 < OPT_NAME_MAX; i++)
        out[i] = name[i] == '_' ? '-' : name[i];
    out[i] = '\0';
}

/* Index of the key called `name` (dashes and underscores alike), or -1. */
static int
find_key(const char *name)
{
    for (int i = 0; i < OPT_COUNT; i++) {
        const char *a = opt_table[i].name;
        const char *b = name;

        while (*a != '\0' && (*a == *b || (*a == '_' && *b == '-'))) {
            a++;
            b++;
        }
        if (*a == '\0' && *b == '\0')
            return i;
    }
    return -1;
}

/* ---- parsing values --------------------------------------------------- */

/* Decimal digits only, no sign, no blanks; false on overflow. */
static bool
parse_decimal(const char *s, const char **end, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;

    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');

        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *end = p;
    *out = v;
    return true;
}

static bool
parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "yes", "true", "on", "1" };
    static const char *const no[] = { "no", "false", "off", "0" };

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* String options that take one of a few words: "a|b|c", else NULL. */
static const char *
str_choices(const char *name)
{
    if (strcmp(name, "engine") == 0)
        return "sqlite|memory";
    if (strcmp(name, "durability") == 0)
        return "async|sync";
    if (strcmp(name, "sqlite_synchronous") == 0)
        return "normal|full";
    if (strcmp(name, "protocol") == 0)
        return "auto|ascii|binary";
    return NULL;
}

static bool
str_choice_ok(const char *choices, const char *text)
{
    size_t n = strlen(text);
    for (const char *p = choices; *p != '\0';) {
        const char *bar = strchr(p, '|');
        size_t len = bar != NULL ? (size_t)(bar - p) : strlen(p);
        if (len == n && n > 0 && memcmp(p, text, n) == 0)
            return true;
        if (bar == NULL)
            break;
        p = bar + 1;
    }
    return false;
}

/*
 * Parses `text` as key `o` and stores it in cfg. 0 or MCKV_ENOMEM or
 * MCKV_EINVAL with the reason (no key name, no location) in err.
 */
static int
set_value(struct config *cfg, const struct opt_desc *o, const char *text,
          char *err, size_t errlen)
{
    uint64_t v = 0;
    const char *end = NULL;

    switch (o->type) {
    case OPT_STR: {
        const char *choices = str_choices(o->name);
        if (choices != NULL && !str_choice_ok(choices, text)) {
            set_err(err, errlen, "'%s' is not one of: %s", text, choices);
            return MCKV_EINVAL;
        }
        char *copy = strdup(text);
        char **field = field_str(cfg, o);

        if (copy == NULL) {
            set_err(err, errlen, "out of memory");
            return MCKV_ENOMEM;
        }
        free(*field);
        *field = copy;
        return MCKV_OK;
    }
    case OPT_BOOL:
        if (!parse_bool(text, field_bool(cfg, o))) {
            set_err(err, errlen,
                    "'%s' is not a boolean (yes/no, true/false, on/off, 1/0)",
                    text);
            return MCKV_EINVAL;
        }
        return MCKV_OK;
    case OPT_SIZE:
        if (!parse_decimal(text, &end, &v))
            goto bad_number;
        if (*end != '\0') {
            unsigned shift;

            switch (*end) {
            case 'k': case 'K': shift = 10; break;
            case 'm': case 'M': shift = 20; break;
            case 'g': case 'G': shift = 30; break;
            default: shift = 0; break;
            }
            if (shift == 0 || end[1] != '\0') {
                set_err(err, errlen,
                        "'%s' has a bad size suffix (use k, m or g)", text);
                return MCKV_EINVAL;
            }
            if (v > (UINT64_MAX >> shift))
                goto bad_number;
            v <<= shift;
        }
        break;
    case OPT_UINT:
    case OPT_MB:
        if (!parse_decimal(text, &end, &v) || *end != '\0')
            goto bad_number;
        break;
    case OPT_OCTAL:
        /* memcached reads -a with strtol(, 8): digits 0-7 only here */
        if (text[0] == '\0' || strspn(text, "01234567") != strlen(text) ||
            strlen(text) > 8) {
            set_err(err, errlen, "'%s' is not an octal mode between 0 and %"
                    PRIo64, text, o->max);
            return MCKV_EINVAL;
        }
        v = strtoull(text, NULL, 8);
        if (v > o->max) {
            set_err(err, errlen, "'%s' is not an octal mode between 0 and %"
                    PRIo64, text, o->max);
            return MCKV_EINVAL;
        }
        break;
    }
    if (v < o->min || v > o->max)
        goto bad_number;
    *field_u64(cfg, o) = v;
    return MCKV_OK;

bad_number:
    if (o->min == o->max)
        set_err(err, errlen, "'%s' is not supported: must be %" PRIu64, text,
                o->min);
    else if (o->type == OPT_SIZE)
        set_err(err, errlen,
                "'%s' is not a size between %" PRIu64 " and %" PRIu64
                " bytes", text, o->min, o->max);
    else
        set_err(err, errlen,
                "'%s' is not a number between %" PRIu64 " and %" PRIu64, text,
                o->min, o->max);
    return MCKV_EINVAL;
}

/* ---- life cycle ------------------------------------------------------- */

/*
 * Sets every field to its default, parsed from the table. 0, MCKV_ENOMEM, or
 * MCKV_EINVAL if a default in options.h does not parse (a bug, caught by
 * test_config). On failure cfg holds nothing to free. Main thread.
 */
int
config_init(struct config *cfg)
{
    char reason[128];

    memset(cfg, 0, sizeof(*cfg));
    for (int i = 0; i < OPT_COUNT; i++) {
        int rc = set_value(cfg, &opt_table[i], opt_table[i].def, reason,
                           sizeof(reason));
        if (rc < 0) {
            config_deinit(cfg);
            return rc;
        }
    }
    return MCKV_OK;
}

/* Frees the strings and NULLs them; cfg may be deinit'ed twice. Main thread. */
void
config_deinit(struct config *cfg)
{
    for (int i = 0; i < OPT_COUNT; i++) {
        if (opt_table[i].type == OPT_STR) {
            char **field = field_str(cfg, &opt_table[i]);

            free(*field);
            *field = NULL;
        }
    }
    free(cfg->config_file);
    cfg->config_file = NULL;
}

/* dst becomes a deep copy of src. 0 or MCKV_ENOMEM (dst then holds nothing
 * to free). */
static int
config_copy(struct config *dst, const struct config *src)
{
    *dst = *src;
    for (int i = 0; i < OPT_COUNT; i++) {
        if (opt_table[i].type == OPT_STR)
            *field_str(dst, &opt_table[i]) = NULL;
    }
    dst->config_file = NULL;
    for (int i = 0; i < OPT_COUNT; i++) {
        const struct opt_desc *o = &opt_table[i];
        const char *s;

        if (o->type != OPT_STR)
            continue;
        s = *(char *const *)field_const(src, o);
        if (s != NULL && (*field_str(dst, o) = strdup(s)) == NULL)
            goto fail;
    }
    if (src->config_file != NULL &&
        (dst->config_file = strdup(src->config_file)) == NULL)
        goto fail;
    return MCKV_OK;

fail:
    config_deinit(dst);
    return MCKV_ENOMEM;
}

/* ---- INI files -------------------------------------------------------- */

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
    i = find_key(name);
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
    rc = set_value(ld->cfg, o, value, reason, sizeof(reason));
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
        set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return MCKV_EIO;
    }
    rc = config_copy(&tmp, cfg);
    if (rc < 0) {
        fclose(ld.fp);
        set_err(err, errlen, "%s: out of memory", path);
        return rc;
    }
    ld.cfg = &tmp;
    syntax_line = ini_parse_stream(ini_read_line, &ld, ini_on_pair, &ld);
    fclose(ld.fp);

    /* inih returns the first bad line, ours or its own; a line before our
     * first recorded error (or any, if we recorded none) is a syntax error. */
    if (syntax_line > 0 && (ld.err_line == 0 || syntax_line < ld.err_line)) {
        set_err(err, errlen, "%s:%d: syntax error", path, syntax_line);
        rc = MCKV_EINVAL;
    } else if (syntax_line < 0 && ld.err_line == 0) {
        set_err(err, errlen, "%s: out of memory", path);
        rc = MCKV_ENOMEM;
    } else if (ld.err_line != 0) {
        set_err(err, errlen, "%s", ld.err);
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

/* ---- command line ----------------------------------------------------- */

/* Long options: config, help, version, each key twice (dashed and
 * underscored), memcached's own spellings, then the terminator. Names
 * point into `names` or into static tables. */
struct long_opts {
    struct option opts[3 + 2 * OPT_COUNT + 32 + 1];
    char names[OPT_COUNT][OPT_NAME_MAX];
    char shorts[16 + 2 * OPT_COUNT + 32];
};

_Static_assert(sizeof(((struct long_opts *)0)->opts) /
               sizeof(struct option) >= 3 + 2 * OPT_COUNT + 25 + 1,
               "room for memcached's long options");

/* True for a key's short flag that takes no value: -v counts, a boolean's
 * flag sets the opposite of its default. */
static bool
flag_takes_no_value(const struct opt_desc *o)
{
    return o->short_flag == 'v' || o->type == OPT_BOOL;
}

static void
long_opts_build(struct long_opts *lo)
{
    size_t n = 0, s = 0;

    lo->opts[n++] = (struct option){ "config", required_argument, NULL,
                                     OPTVAL_CONFIG };
    lo->opts[n++] = (struct option){ "help", no_argument, NULL, OPTVAL_HELP };
    lo->opts[n++] = (struct option){ "version", no_argument, NULL,
                                     OPTVAL_VERSION };
    /* '+': stop at the first non-option (leftovers are an error anyway);
     * ':': report a missing argument as ':' and print nothing ourselves.
     * f (factor or file), o (-o list), i (license), h, V: handled here. */
    memcpy(lo->shorts, "+:f:o:ihV", 9);
    s = 9;
    for (int i = 0; i < OPT_COUNT; i++) {
        const struct opt_desc *o = &opt_table[i];

        dashed_name(o->name, lo->names[i]);
        lo->opts[n++] = (struct option){ lo->names[i], required_argument,
                                         NULL, OPTVAL_KEY + i };
        if (strcmp(lo->names[i], o->name) != 0)
            lo->opts[n++] = (struct option){ o->name, required_argument, NULL,
                                             OPTVAL_KEY + i };
        if (o->short_flag != 0) {
            lo->shorts[s++] = (char)o->short_flag;
            if (!flag_takes_no_value(o))
                lo->shorts[s++] = ':';
        }
    }
    for (unsigned i = 0; i < compat_flags_count; i++) {
        lo->shorts[s++] = (char)compat_flags[i].letter;
        if (compat_flags[i].has_arg)
            lo->shorts[s++] = ':';
    }
    for (unsigned i = 0; i < compat_longs_count; i++)
        lo->opts[n++] = (struct option){ compat_longs[i].name,
                                         compat_longs[i].has_arg, NULL,
                                         compat_longs[i].letter };
    lo->opts[n] = (struct option){ NULL, 0, NULL, 0 };
    lo->shorts[s] = '\0';
}

/* Key index of short flag c, or -1. */
static int
find_short(int c)
{
    for (int i = 0; i < OPT_COUNT; i++) {
        if (opt_table[i].short_flag == c)
            return i;
    }
    return -1;
}

/* The option as the user wrote it, for messages: "-p" or "--port". */
static void
option_label(int c, int longindex, const struct long_opts *lo, char *out,
             size_t outlen)
{
    if (longindex >= 0)
        snprintf(out, outlen, "--%s", lo->opts[longindex].name);
    else
        snprintf(out, outlen, "-%c", c);
}

/* Reports getopt's '?' and ':' returns; argv[optind - 1] is the culprit. */
static void
option_error(int c, char **argv, char *err, size_t errlen)
{
    const char *arg = argv[optind - 1];

    if (arg[0] == '-' && arg[1] == '-') {
        size_t len = strcspn(arg + 2, "=");

        if (c == ':')
            set_err(err, errlen, "option %s: missing value", arg);
        else if (arg[2 + len] == '=' && len > 0 &&
                 (strncmp(arg + 2, "help", len) == 0 ||
                  strncmp(arg + 2, "version", len) == 0))
            set_err(err, errlen, "option --%.*s: takes no value", (int)len,
                    arg + 2);
        else
            set_err(err, errlen, "unknown or ambiguous option '--%.*s'",
                    (int)len, arg + 2);
    } else if (c == ':') {
        set_err(err, errlen, "option -%c: missing value", optopt);
    } else {
        set_err(err, errlen, "unknown option '-%c'", optopt);
    }
}

/* -f's value is memcached's growth factor when it looks like a number
 * (digits and dots), else mckv's configuration file. */
static bool
looks_numeric(const char *s)
{
    return s[0] != '\0' && strspn(s, "0123456789.") == strlen(s) &&
           strpbrk(s, "0123456789") != NULL;
}

/* What one parse has said already: each notice is printed once. Slot 0
 * is -f's; then compat_flags, then compat_subopts (config_compat.c). */
#define NOTE_SLOTS 128
struct notes {
    FILE *out;
    bool noted[NOTE_SLOTS];
};

static void
note(struct notes *nt, size_t slot, const char *label, const char *why)
{
    if (nt->out == NULL)
        return;
    if (slot < NOTE_SLOTS) {
        if (nt->noted[slot])
            return;
        nt->noted[slot] = true;
    }
    fprintf(nt->out, "mckvd: %s: ignored: %s\n", label, why);
}

/* Sets key `name` from text, for the compatibility tables. */
static int
set_named(struct config *cfg, const char *name, const char *text,
          const char *label, char *err, size_t errlen)
{
    char reason[192];
    int i = find_key(name);

    if (i < 0) {  /* a table names a key options.h does not have: a bug */
        set_err(err, errlen, "option %s: no key %s", label, name);
        return MCKV_EINVAL;
    }
    if (set_value(cfg, &opt_table[i], text, reason, sizeof(reason)) < 0) {
        set_err(err, errlen, "option %s: %s", label, reason);
        return MCKV_EINVAL;
    }
    return MCKV_OK;
}

/* -f NUMBER / --slab-growth-factor: checked as memcached does, ignored. */
static int
growth_factor(const char *text, const char *label, struct notes *nt,
              char *err, size_t errlen)
{
    char line[96];

    if (!looks_numeric(text) || strtod(text, NULL) <= 1.0) {
        set_err(err, errlen, "option %s: '%s': Factor must be greater than 1",
                label, text);
        return MCKV_EINVAL;
    }
    snprintf(line, sizeof(line), "%s %s", label, text);
    note(nt, 0, line,
         "slab growth factor: mckv has no slab allocator");
    return MCKV_OK;
}

/*
 * -o a,b=1,...: memcached's extended options. An unknown name fails as in
 * memcached ("Illegal suboption \"NAME\""); so does a missing value where
 * memcached requires one.
 */
static int
parse_subopts(struct config *cfg, const char *list, struct notes *nt,
              char *err, size_t errlen)
{
    const char *p = list;

    while (*p != '\0') {
        size_t len = strcspn(p, ","), name_len = strcspn(p, "=,");
        const struct compat_opt *so = compat_find_subopt(p, name_len);
        char label[OPT_NAME_MAX + 8], value[256];
        bool has_value = name_len < len;

        if (so == NULL) {
            set_err(err, errlen, "option -o: Illegal suboption \"%.*s\"",
                    (int)len, p);
            return MCKV_EINVAL;
        }
        snprintf(label, sizeof(label), "-o %s", so->name);
        if (so->has_arg && !has_value) {
            set_err(err, errlen, "option -o: Missing %s argument", so->name);
            return MCKV_EINVAL;
        }
        if (has_value) {
            size_t vlen = len - name_len - 1;
            if (vlen >= sizeof(value)) {
                set_err(err, errlen, "option %s: value too long", label);
                return MCKV_EINVAL;
            }
            memcpy(value, p + name_len + 1, vlen);
            value[vlen] = '\0';
        }
        switch (so->action) {
        case COMPAT_KEY:
            if (set_named(cfg, so->key, value, label, err, errlen) < 0)
                return MCKV_EINVAL;
            break;
        case COMPAT_SET:
            if (set_named(cfg, so->key, so->value, label, err, errlen) < 0)
                return MCKV_EINVAL;
            break;
        case COMPAT_SILENT:
            break;
        case COMPAT_NOTICE:
            note(nt, 1 + compat_flags_count + (size_t)(so - compat_subopts),
                 label, so->why);
            break;
        case COMPAT_REFUSE:
            set_err(err, errlen, "option %s: %s", label, so->why);
            return MCKV_EINVAL;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return MCKV_OK;
}

/* One of compat_flags (-L, -n, -S, ...). */
static int
apply_compat_flag(struct config *cfg, const struct compat_opt *f,
                  const char *label, struct notes *nt, char *err,
                  size_t errlen)
{
    switch (f->action) {
    case COMPAT_SET:
    case COMPAT_KEY:
        return set_named(cfg, f->key, f->value, label, err, errlen);
    case COMPAT_SILENT:
        return MCKV_OK;
    case COMPAT_NOTICE:
        note(nt, 1 + (size_t)(f - compat_flags), label, f->why);
        return MCKV_OK;
    case COMPAT_REFUSE:
        break;
    }
    set_err(err, errlen, "option %s: %s", label, f->why);
    return MCKV_EINVAL;
}

/*
 * Parses argv (see config.h). Pass 1 finds the configuration file, --help,
 * --version and --license wherever they are; the file is loaded; pass 2
 * applies every other option in order, over the file. Does not call
 * config_validate(). Main thread (getopt_long).
 */
enum config_action
config_parse_args(struct config *cfg, int argc, char **argv, FILE *out,
                  FILE *notes_out, char *err, size_t errlen)
{
    struct long_opts lo;
    struct notes nt;
    const char *file = NULL;
    bool help = false, version = false, license = false;
    uint64_t v_count = 0;
    int c, longindex;

    memset(&nt, 0, sizeof(nt));
    nt.out = notes_out;
    long_opts_build(&lo);
    opterr = 0;

    /* Pass 1: the file, -h, -V, -i. Errors are left to pass 2. */
    optind = 0;  /* glibc: full re-initialisation */
    for (;;) {
        c = getopt_long(argc, argv, lo.shorts, lo.opts, NULL);
        if (c == -1)
            break;
        if (c == OPTVAL_CONFIG || (c == 'f' && !looks_numeric(optarg))) {
            if (file != NULL) {
                set_err(err, errlen, "option %s: only one configuration file"
                        " may be given", c == 'f' ? "-f" : "--config");
                return CONFIG_EXIT_ERROR;
            }
            file = optarg;
        } else if (c == OPTVAL_HELP) {
            help = true;
        } else if (c == OPTVAL_VERSION) {
            version = true;
        } else if (c == 'i') {
            license = true;
        }
    }
    if (help) {
        config_print_help(out);
        return CONFIG_EXIT_OK;
    }
    if (version) {
        fprintf(out, "mckvd " PACKAGE_VERSION "\n");
        return CONFIG_EXIT_OK;
    }
    if (license) {
        fprintf(out, "mckvd " PACKAGE_VERSION ": its license and those of "
                "libevent, SQLite and inih come with their sources\n");
        return CONFIG_EXIT_OK;
    }
    if (file != NULL) {
        char *copy;

        if (config_load_file(cfg, file, err, errlen) < 0)
            return CONFIG_EXIT_ERROR;
        copy = strdup(file);
        if (copy == NULL) {
            set_err(err, errlen, "out of memory");
            return CONFIG_EXIT_ERROR;
        }
        free(cfg->config_file);
        cfg->config_file = copy;
    }

    /* Pass 2: everything else, in order. */
    optind = 0;
    for (;;) {
        char reason[192], label[OPT_NAME_MAX + 4];
        const struct compat_opt *cf;
        const struct opt_desc *o;
        int i;

        longindex = -1;
        c = getopt_long(argc, argv, lo.shorts, lo.opts, &longindex);
        if (c == -1)
            break;
        if (c == '?' || c == ':') {
            option_error(c, argv, err, errlen);
            return CONFIG_EXIT_ERROR;
        }
        option_label(c, longindex, &lo, label, sizeof(label));
        if (c == OPTVAL_CONFIG || c == OPTVAL_HELP || c == OPTVAL_VERSION ||
            c == 'i' || (c == 'f' && !looks_numeric(optarg)))
            continue;
        if (c == 'f' || c == COMPAT_LETTER_FACTOR) {
            if (growth_factor(optarg, label, &nt, err, errlen) < 0)
                return CONFIG_EXIT_ERROR;
            continue;
        }
        if (c == 'o') {
            if (parse_subopts(cfg, optarg, &nt, err, errlen) < 0)
                return CONFIG_EXIT_ERROR;
            continue;
        }
        if (c < OPTVAL_KEY && (cf = compat_find_flag(c)) != NULL) {
            if (apply_compat_flag(cfg, cf, label, &nt, err, errlen) < 0)
                return CONFIG_EXIT_ERROR;
            continue;
        }
        i = c >= OPTVAL_KEY ? c - OPTVAL_KEY : find_short(c);
        if (i < 0 || i >= OPT_COUNT) {
            set_err(err, errlen, "unknown option '-%c'", c);
            return CONFIG_EXIT_ERROR;
        }
        o = &opt_table[i];
        if (c == 'v') {
            /* -v, -vv, --verbose: counted from zero; saturates at the
             * maximum. */
            if (v_count < o->max)
                v_count++;
            *field_u64(cfg, o) = v_count;
            continue;
        }
        if (c < OPTVAL_KEY && o->type == OPT_BOOL) {
            /* -F, -C, -A, ...: the opposite of the default */
            bool def = false;
            (void)parse_bool(o->def, &def);
            *field_bool(cfg, o) = !def;
            continue;
        }
        if (set_value(cfg, o, optarg, reason, sizeof(reason)) < 0) {
            set_err(err, errlen, "option %s: %s", label, reason);
            return CONFIG_EXIT_ERROR;
        }
        if (o->short_flag == 'v')
            v_count = *field_u64(cfg, o);
    }
    if (optind < argc) {
        set_err(err, errlen, "unexpected argument '%s'", argv[optind]);
        return CONFIG_EXIT_ERROR;
    }
    return CONFIG_RUN;
}

/* ---- checks and output ------------------------------------------------ */

/* Cross-key rules, as memcached 1.6 enforces them. 0, or MCKV_EINVAL with
 * "key: reason" in err. Any thread that owns cfg. */
int
config_validate(const struct config *cfg, char *err, size_t errlen)
{
    /* The rules with their own words first, then the table's ranges. */
    if (cfg->udp_port != 0) {
        set_err(err, errlen, "udp_port: UDP is not supported; use 0");
        return MCKV_EINVAL;
    }
    if (cfg->item_size_max < 1024) {
        set_err(err, errlen, "item_size_max: %" PRIu64
                " is below the minimum of 1024 bytes", cfg->item_size_max);
        return MCKV_EINVAL;
    }
    for (int i = 0; i < OPT_COUNT; i++) {
        const struct opt_desc *o = &opt_table[i];
        uint64_t v;

        if (o->type == OPT_STR || o->type == OPT_BOOL)
            continue;
        v = *(const uint64_t *)field_const(cfg, o);
        if (v < o->min || v > o->max) {
            set_err(err, errlen, "%s: %" PRIu64 " is not between %" PRIu64
                    " and %" PRIu64, o->name, v, o->min, o->max);
            return MCKV_EINVAL;
        }
    }
    /* memcached: "Initial hashtable multiplier of N is too low" */
    if (cfg->hashpower_init > 0 && cfg->hashpower_init < 12) {
        set_err(err, errlen, "hashpower_init: %" PRIu64 " is too low: 12..32,"
                " or 0 to grow as needed", cfg->hashpower_init);
        return MCKV_EINVAL;
    }
    if (strlen(cfg->unix_socket) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        set_err(err, errlen, "unix_socket: %s: longer than %zu bytes",
                cfg->unix_socket,
                sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
        return MCKV_EINVAL;
    }
    /* memcached: "Cannot set item size limit higher than 1/2 of memory
     * max." */
    if (cfg->item_size_max > cfg->memory_limit * 1024 * 1024 / 2) {
        set_err(err, errlen, "item_size_max: %" PRIu64 " bytes is more than"
                " half of memory_limit (%" PRIu64 " MB)", cfg->item_size_max,
                cfg->memory_limit);
        return MCKV_EINVAL;
    }
    return MCKV_OK;
}

static const char *
type_placeholder(enum opt_type type)
{
    switch (type) {
    case OPT_STR: return "TEXT";
    case OPT_UINT: return "NUM";
    case OPT_SIZE: return "BYTES";
    case OPT_MB: return "MB";
    case OPT_BOOL: return "BOOL";
    case OPT_OCTAL: return "MODE";
    }
    return "VALUE";
}

/* Prints --help to out: every key of options.h. Main thread. */
void
config_print_help(FILE *out)
{
    fprintf(out,
            "Usage: mckvd [OPTION]...\n"
            "A memcached-compatible cache server.\n"
            "\n"
            "Values come from the defaults, then the INI file given with\n"
            "--config, then the command line (which wins). In the file, write\n"
            "each key as `key = value` in its [section] (or before any\n"
            "section). Long options accept dashes or underscores:\n"
            "--max-connections, --max_connections. Sizes take k, m or g\n"
            "suffixes (binary). Booleans: yes/no, true/false, on/off, 1/0.\n"
            "memcached's command line works too: its flags are listed with\n"
            "the keys they set, the others at the end.\n"
            "\n"
            "      --config=FILE\n"
            "        load this INI file first (-f FILE too, when FILE is not\n"
            "        a number: -f NUMBER is memcached's growth factor)\n"
            "  -h, --help\n"
            "        print this help and exit\n"
            "  -V, --version\n"
            "        print the version and exit\n");
    for (int i = 0; i < OPT_COUNT; i++) {
        const struct opt_desc *o = &opt_table[i];
        char dashed[OPT_NAME_MAX];

        dashed_name(o->name, dashed);
        if (o->short_flag == 'v')
            fprintf(out, "  -v, --%s=%s\n", dashed, type_placeholder(o->type));
        else if (o->short_flag != 0)
            fprintf(out, "  -%c, --%s=%s\n", o->short_flag, dashed,
                    type_placeholder(o->type));
        else
            fprintf(out, "      --%s=%s\n", dashed, type_placeholder(o->type));
        fprintf(out, "        %s\n", o->help);
        if (o->short_flag == 'v')
            fprintf(out, "        -v alone counts: -v = 1, -vv = 2\n");
        else if (o->short_flag != 0 && o->type == OPT_BOOL)
            fprintf(out, "        -%c alone: %s = %s\n", o->short_flag,
                    o->name, strcmp(o->def, "yes") == 0 ? "no" : "yes");
        fprintf(out, "        [%s] %s = %s", o->section, o->name, o->def);
        if (o->type == OPT_UINT || o->type == OPT_MB || o->type == OPT_SIZE)
            fprintf(out, "; range %" PRIu64 "..%" PRIu64, o->min, o->max);
        else if (o->type == OPT_OCTAL)
            fprintf(out, "; range 0..%" PRIo64, o->max);
        fprintf(out, "; %s\n",
                o->reloadable ? "reloadable (SIGHUP)" : "restart to change");
    }
    compat_print_help(out);
}

/* Calls fn for each key, in options.h order, with its value as text: sizes
 * in bytes, memory_limit in MB, booleans as yes/no. `value` lives for the
 * call only. Any thread: numbers and booleans are read with relaxed atomic
 * loads, because SIGHUP stores the reloadable ones while workers answer
 * `stats settings` (strings are never reloaded). */
void
config_each(const struct config *cfg,
            void (*fn)(void *ctx, const char *name, const char *value),
            void *ctx)
{
    for (int i = 0; i < OPT_COUNT; i++) {
        const struct opt_desc *o = &opt_table[i];
        const void *field = field_const(cfg, o);
        char buf[32];
        const char *text = buf;

        switch (o->type) {
        case OPT_STR:
            text = *(char *const *)field;
            if (text == NULL)
                text = "";
            break;
        case OPT_BOOL:
            text = __atomic_load_n((const bool *)field, __ATOMIC_RELAXED) ? "yes" : "no";
            break;
        case OPT_UINT:
        case OPT_SIZE:
        case OPT_MB:
            snprintf(buf, sizeof(buf), "%" PRIu64,
                     __atomic_load_n((const uint64_t *)field, __ATOMIC_RELAXED));
            break;
        case OPT_OCTAL:
            snprintf(buf, sizeof(buf), "%" PRIo64,
                     __atomic_load_n((const uint64_t *)field, __ATOMIC_RELAXED));
            break;
        }
        fn(ctx, o->name, text);
    }
}

/* True when `name` can change on SIGHUP without a restart. Any thread. */
bool
config_key_reloadable(const char *name)
{
    for (int i = 0; i < OPT_COUNT; i++)
        if (strcmp(opt_table[i].name, name) == 0)
            return opt_table[i].reloadable;
    return false;
}
