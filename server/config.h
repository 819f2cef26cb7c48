/*
 * config.h: loading the configuration from defaults, an INI file
 * (--config=FILE, parsed with inih) and the command line, in that order of
 * precedence (command line wins).
 *
 * Every key of options.h is a field of struct config. Numeric options are
 * stored as uint64_t, booleans as bool, strings as heap copies.
 */
#ifndef MCKV_SERVER_CONFIG_H
#define MCKV_SERVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "server/options.h"

#define CONFIG_FIELD_OPT_STR char *
#define CONFIG_FIELD_OPT_UINT uint64_t
#define CONFIG_FIELD_OPT_SIZE uint64_t
#define CONFIG_FIELD_OPT_MB uint64_t
#define CONFIG_FIELD_OPT_BOOL bool
#define CONFIG_FIELD_OPT_OCTAL uint64_t

struct config {
#define X(name, section, type, def, min, max, shortf, reload, help) \
    CONFIG_FIELD_##type name;
    MCKV_OPTIONS(X)
#undef X
    char *config_file;   /* --config=FILE (or -f FILE), or NULL */
};

/* Sets every field to its default. 0, or MCKV_ENOMEM. */
int config_init(struct config *cfg);
/* Frees the strings. */
void config_deinit(struct config *cfg);

enum config_action { CONFIG_RUN, CONFIG_EXIT_OK, CONFIG_EXIT_ERROR };

/*
 * Parses argv: the INI file of --config=FILE (or of -f FILE, see below) is
 * loaded first, then every other option overrides it. memcached 1.6.18's
 * command line is accepted: its flags that are keys' short flags in
 * options.h mean what they mean there (-vv counts), the others and its -o
 * names are handled as config_compat.c says (mapped to a key, accepted
 * with one notice line each on `notes`, or refused). -f is memcached's
 * slab growth factor when its value is a number (ignored, with a notice),
 * else an INI file. --help and --version print to `out` and return
 * CONFIG_EXIT_OK. On an error, one line is written into err
 * ("FILE:LINE: key: reason", or "option --x: reason") and
 * CONFIG_EXIT_ERROR is returned. Main thread.
 */
enum config_action config_parse_args(struct config *cfg, int argc, char **argv,
                                     FILE *out, FILE *notes, char *err,
                                     size_t errlen);

/* Loads an INI file into cfg. 0, or -1 with err holding "FILE:LINE: key:
 * reason" (or "FILE: reason" when it cannot be read). */
int config_load_file(struct config *cfg, const char *path, char *err,
                     size_t errlen);

/* Checks cross-key rules (e.g. udp_port must be 0). 0 or -1 with err set. */
int config_validate(const struct config *cfg, char *err, size_t errlen);
/* The protocol connections speak: protocol, except that auto means binary
 * under sasl alone and ascii under auth_file alone (memcached's default
 * there); with both, auto stays auto (each connection authenticates as
 * its protocol does). Any thread. */
const char *config_protocol(const struct config *cfg);

/* True when the key can change on SIGHUP without a restart. */
bool config_key_reloadable(const char *name);

/* Prints --help: every key, its short flag, default and help. */
void config_print_help(FILE *out);

/* Calls fn(name, value) for each key with its current value as text, in
 * options.h order (for `stats settings`). */
void config_each(const struct config *cfg,
                 void (*fn)(void *ctx, const char *name, const char *value),
                 void *ctx);

#endif
