/*
 * config_value.c: a value of the configuration, from its text to its field
 * of struct config, by the key's type (options.h): strings (some limited to
 * a few words), booleans, sizes with k/m/g suffixes, plain numbers and octal
 * modes, each checked against the key's bounds. Used for the defaults, the
 * INI file and the command line alike.
 */
/* Angle brackets on purpose: from server/, "config.h" would find this
 * module's own server/config.h first instead of the autoconf header. */
#include <config.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/config_priv.h"
#include "util/status.h"

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

bool
config_parse_bool(const char *s, bool *out)
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
#ifdef HAVE_ROCKSDB
        return "sqlite|memory|rocksdb";
#else
        return "sqlite|memory";
#endif
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
int
config_set_value(struct config *cfg, const struct opt_desc *o, const char *text,
                 char *err, size_t errlen)
{
    uint64_t v = 0;
    const char *end = NULL;

    switch (o->type) {
    case OPT_STR: {
        const char *choices = str_choices(o->name);
        if (choices != NULL && !str_choice_ok(choices, text)) {
            config_set_err(err, errlen, "'%s' is not one of: %s", text,
                           choices);
            return MCKV_EINVAL;
        }
        char *copy = strdup(text);
        char **field = config_field_str(cfg, o);

        if (copy == NULL) {
            config_set_err(err, errlen, "out of memory");
            return MCKV_ENOMEM;
        }
        free(*field);
        *field = copy;
        return MCKV_OK;
    }
    case OPT_BOOL:
        if (!config_parse_bool(text, config_field_bool(cfg, o))) {
            config_set_err(err, errlen, "'%s' is not a boolean"
                           " (yes/no, true/false, on/off, 1/0)", text);
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
                config_set_err(err, errlen, "'%s' has a bad size suffix"
                               " (use k, m or g)", text);
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
            config_set_err(err, errlen, "'%s' is not an octal mode between"
                           " 0 and %" PRIo64, text, o->max);
            return MCKV_EINVAL;
        }
        v = strtoull(text, NULL, 8);
        if (v > o->max) {
            config_set_err(err, errlen, "'%s' is not an octal mode between"
                           " 0 and %" PRIo64, text, o->max);
            return MCKV_EINVAL;
        }
        break;
    }
    if (v < o->min || v > o->max)
        goto bad_number;
    *config_field_u64(cfg, o) = v;
    return MCKV_OK;

bad_number:
    if (o->min == o->max)
        config_set_err(err, errlen, "'%s' is not supported: must be %"
                       PRIu64, text, o->min);
    else if (o->type == OPT_SIZE)
        config_set_err(err, errlen,
                       "'%s' is not a size between %" PRIu64 " and %" PRIu64
                       " bytes", text, o->min, o->max);
    else
        config_set_err(err, errlen, "'%s' is not a number between %" PRIu64
                       " and %" PRIu64, text, o->min, o->max);
    return MCKV_EINVAL;
}
