/*
 * config_args.c: the command line (config_parse_args). The long options are
 * generated from the key table (--key-name, and --key_name too), with
 * memcached's own spellings (config_compat.c); a key is found by short flag
 * or by long-option index, and its text parsed by its type into its field.
 * memcached's flags and -o names that are no key are applied as the
 * compatibility tables say: mapped to a key, accepted with one notice each,
 * or refused.
 *
 * Main thread: it uses getopt_long(), whose state is process-global.
 */
/* Angle brackets on purpose: from server/, "config.h" would find this
 * module's own server/config.h first instead of the autoconf header. */
#include <config.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/config_compat.h"
#include "server/config_priv.h"
#include "util/status.h"

/* getopt_long() values of the long options: key i is OPTVAL_KEY + i;
 * memcached's spellings return its letters (config_compat.h). */
enum {
    OPTVAL_HELP = 'h',
    OPTVAL_VERSION = 'V',
    OPTVAL_CONFIG = 201,
    OPTVAL_KEY = 256,
};
_Static_assert(OPTVAL_CONFIG != COMPAT_LETTER_FACTOR, "distinct values");

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

        config_dashed_name(o->name, lo->names[i]);
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
            config_set_err(err, errlen, "option %s: missing value", arg);
        else if (arg[2 + len] == '=' && len > 0 &&
                 (strncmp(arg + 2, "help", len) == 0 ||
                  strncmp(arg + 2, "version", len) == 0))
            config_set_err(err, errlen, "option --%.*s: takes no value",
                           (int)len, arg + 2);
        else
            config_set_err(err, errlen, "unknown or ambiguous option '--%.*s'",
                           (int)len, arg + 2);
    } else if (c == ':') {
        config_set_err(err, errlen, "option -%c: missing value", optopt);
    } else {
        config_set_err(err, errlen, "unknown option '-%c'", optopt);
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
    int i = config_find_key(name);

    if (i < 0) {  /* a table names a key options.h does not have: a bug */
        config_set_err(err, errlen, "option %s: no key %s", label, name);
        return MCKV_EINVAL;
    }
    if (config_set_value(cfg, &opt_table[i], text, reason,
                         sizeof(reason)) < 0) {
        config_set_err(err, errlen, "option %s: %s", label, reason);
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
        config_set_err(err, errlen,
                       "option %s: '%s': Factor must be greater than 1",
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
            config_set_err(err, errlen, "option -o: Illegal suboption \"%.*s\"",
                           (int)len, p);
            return MCKV_EINVAL;
        }
        snprintf(label, sizeof(label), "-o %s", so->name);
        if (so->has_arg && !has_value) {
            config_set_err(err, errlen, "option -o: Missing %s argument",
                           so->name);
            return MCKV_EINVAL;
        }
        if (has_value) {
            size_t vlen = len - name_len - 1;
            if (vlen >= sizeof(value)) {
                config_set_err(err, errlen, "option %s: value too long", label);
                return MCKV_EINVAL;
            }
            memcpy(value, p + name_len + 1, vlen);
            value[vlen] = '\0';
        }
        switch (so->action) {
        case COMPAT_KEY:
            /* a unit suffix: memcached's number means kilobytes */
            if (so->value != NULL &&
                strlen(value) + strlen(so->value) < sizeof(value))
                strcat(value, so->value);
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
            config_set_err(err, errlen, "option %s: %s", label, so->why);
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
    config_set_err(err, errlen, "option %s: %s", label, f->why);
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
                config_set_err(err, errlen, "option %s: only one"
                               " configuration file may be given",
                               c == 'f' ? "-f" : "--config");
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
            config_set_err(err, errlen, "out of memory");
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
            config_set_err(err, errlen, "unknown option '-%c'", c);
            return CONFIG_EXIT_ERROR;
        }
        o = &opt_table[i];
        if (c == 'v') {
            /* -v, -vv, --verbose: counted from zero; saturates at the
             * maximum. */
            if (v_count < o->max)
                v_count++;
            *config_field_u64(cfg, o) = v_count;
            continue;
        }
        if (c < OPTVAL_KEY && o->type == OPT_BOOL) {
            /* -F, -C, -A, ...: the opposite of the default */
            bool def = false;
            (void)config_parse_bool(o->def, &def);
            *config_field_bool(cfg, o) = !def;
            continue;
        }
        if (config_set_value(cfg, o, optarg, reason, sizeof(reason)) < 0) {
            config_set_err(err, errlen, "option %s: %s", label, reason);
            return CONFIG_EXIT_ERROR;
        }
        if (o->short_flag == 'v')
            v_count = *config_field_u64(cfg, o);
    }
    if (optind < argc) {
        config_set_err(err, errlen, "unexpected argument '%s'", argv[optind]);
        return CONFIG_EXIT_ERROR;
    }
    return CONFIG_RUN;
}
