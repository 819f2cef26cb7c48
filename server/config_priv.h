/*
 * config_priv.h: what the files of the configuration share. Private to
 * server/config*.c (and their unit tests); the rest of the server sees
 * config.h only.
 *
 * The configuration, one job per file:
 *   config.c           the key table (opt_table), init/deinit/copy,
 *                      config_each() and config_key_reloadable()
 *   config_value.c     a value's text parsed by its key's type into its field
 *   config_ini.c       INI files (config_load_file)
 *   config_args.c      the command line, memcached's included
 *                      (config_parse_args)
 *   config_help.c      --help (config_print_help)
 *   config_validate.c  the cross-key rules (config_validate)
 *   config_compat.c    memcached's flags and -o names, as data
 * Every function here runs on the main thread (start-up, SIGHUP reload)
 * unless its comment says otherwise.
 */
#ifndef MCKV_SERVER_CONFIG_PRIV_H
#define MCKV_SERVER_CONFIG_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/config.h"

/* One key of options.h, with the offset of its field in struct config. */
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

#define OPT_COUNT_ONE(name, section, type, def, min, max, shortf, reload, help) + 1
enum { OPT_COUNT = 0 MCKV_OPTIONS(OPT_COUNT_ONE) };

/* Every key, in options.h order (config.c). */
extern const struct opt_desc opt_table[OPT_COUNT];

/* Longest long option name, plus its NUL. */
#define OPT_NAME_MAX 64

/* The field of key `o` in cfg. */
static inline char **
config_field_str(struct config *cfg, const struct opt_desc *o)
{
    return (char **)(void *)((char *)cfg + o->offset);
}

static inline uint64_t *
config_field_u64(struct config *cfg, const struct opt_desc *o)
{
    return (uint64_t *)(void *)((char *)cfg + o->offset);
}

static inline bool *
config_field_bool(struct config *cfg, const struct opt_desc *o)
{
    return (bool *)(void *)((char *)cfg + o->offset);
}

static inline const void *
config_field_const(const struct config *cfg, const struct opt_desc *o)
{
    return (const char *)cfg + o->offset;
}

/* printf into err (nothing when err is NULL or errlen 0). */
void config_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "max_connections" -> "max-connections". `out` holds OPT_NAME_MAX bytes. */
void config_dashed_name(const char *name, char *out);

/* Index of the key called `name` (dashes and underscores alike), or -1. */
int config_find_key(const char *name);

/* dst becomes a deep copy of src. 0 or MCKV_ENOMEM (dst then holds nothing
 * to free). */
int config_copy(struct config *dst, const struct config *src);

/* yes/no, true/false, on/off, 1/0 (any case); false for anything else. */
bool config_parse_bool(const char *s, bool *out);

/* Parses `text` as key `o` and stores it in cfg (config_value.c). 0 or
 * MCKV_ENOMEM or MCKV_EINVAL with the reason (no key name, no location) in
 * err. */
int config_set_value(struct config *cfg, const struct opt_desc *o, const char *text,
                     char *err, size_t errlen);

#endif
