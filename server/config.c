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
 * The work is split by job behind config_priv.h, which lists the files;
 * this one holds the table and the life cycle of a struct config.
 *
 * config_init(), config_deinit() and config_copy() run on the main thread
 * (start-up, SIGHUP reload); config_each() and config_key_reloadable() on
 * any.
 */
/* Angle brackets on purpose: from server/, "config.h" would find this
 * module's own server/config.h first instead of the autoconf header. */
#include <config.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/config_priv.h"
#include "util/status.h"

const struct opt_desc opt_table[] = {
#define X(name, section, type, def, min, max, shortf, reload, help)           \
    { #name, section, type, def, (uint64_t)(min), (uint64_t)(max), shortf,    \
      (reload) != 0, help, offsetof(struct config, name) },
    MCKV_OPTIONS(X)
#undef X
};

_Static_assert(sizeof(opt_table) / sizeof(opt_table[0]) == OPT_COUNT,
               "OPT_COUNT counts every key of options.h");

/* ---- small helpers ---------------------------------------------------- */

void
config_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* "max_connections" -> "max-connections". `out` holds OPT_NAME_MAX bytes. */
void
config_dashed_name(const char *name, char *out)
{
    size_t i;

    for (i = 0; name[i] != '\0' && i + 1 < OPT_NAME_MAX; i++)
        out[i] = name[i] == '_' ? '-' : name[i];
    out[i] = '\0';
}

/* Index of the key called `name` (dashes and underscores alike), or -1. */
int
config_find_key(const char *name)
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
        int rc = config_set_value(cfg, &opt_table[i], opt_table[i].def, reason,
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
            char **field = config_field_str(cfg, &opt_table[i]);

            free(*field);
            *field = NULL;
        }
    }
    free(cfg->config_file);
    cfg->config_file = NULL;
}

/* dst becomes a deep copy of src. 0 or MCKV_ENOMEM (dst then holds nothing
 * to free). */
int
config_copy(struct config *dst, const struct config *src)
{
    *dst = *src;
    for (int i = 0; i < OPT_COUNT; i++) {
        if (opt_table[i].type == OPT_STR)
            *config_field_str(dst, &opt_table[i]) = NULL;
    }
    dst->config_file = NULL;
    for (int i = 0; i < OPT_COUNT; i++) {
        const struct opt_desc *o = &opt_table[i];
        const char *s;

        if (o->type != OPT_STR)
            continue;
        s = *(char *const *)config_field_const(src, o);
        if (s != NULL && (*config_field_str(dst, o) = strdup(s)) == NULL)
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

/* ---- output ----------------------------------------------------------- */

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
        const void *field = config_field_const(cfg, o);
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
