/*
 * config_compat.h: memcached 1.6.18's command line, as data. Private to
 * config_args.c and config_help.c (and their unit test).
 *
 * Three tables: memcached's one-letter flags that are no key's short flag
 * in options.h (-L, -n, -S, ...), its long options whose names differ from
 * mckv's (--conn-limit is -c, --disable-flush-all is -F), and its -o names
 * (memcached.c's subopts_tokens with its TLS, proxy and debug entries, and
 * storage.c's ext_* list). Each entry says what mckv does with it;
 * config_args.c does it.
 */
#ifndef MCKV_SERVER_CONFIG_COMPAT_H
#define MCKV_SERVER_CONFIG_COMPAT_H

#include <stdbool.h>
#include <stdio.h>

enum compat_action {
    COMPAT_SET,     /* sets `key` to `value` */
    COMPAT_KEY,     /* -o name=VALUE: VALUE goes to `key` */
    COMPAT_SILENT,  /* accepted: it is what mckv does anyway */
    COMPAT_NOTICE,  /* accepted, no meaning in mckv: one line on stderr */
    COMPAT_REFUSE,  /* a feature mckv lacks and must not pretend to have */
};

/* A flag (-L) or an -o name (slab_reassign). */
struct compat_opt {
    const char *name;          /* -o name; NULL for a flag */
    int letter;                /* flags only: the letter; -o names: 0 */
    bool has_arg;              /* flag: takes an argument; -o: must have =V */
    enum compat_action action;
    const char *key;           /* COMPAT_SET, COMPAT_KEY */
    const char *value;         /* COMPAT_SET; COMPAT_KEY: a unit suffix */
    const char *why;           /* COMPAT_SILENT, _NOTICE, _REFUSE */
};

/* A memcached long option that is spelled differently from mckv's and
 * means memcached's short flag `letter`. */
struct compat_long {
    const char *name;
    int has_arg;               /* getopt's no_argument, required_argument... */
    int letter;                /* COMPAT_LETTER_FACTOR: -f as a number only */
};

/* --slab-growth-factor: -f, but never a file. */
#define COMPAT_LETTER_FACTOR 200

extern const struct compat_opt compat_flags[];
extern const unsigned compat_flags_count;
extern const struct compat_opt compat_subopts[];
extern const unsigned compat_subopts_count;
extern const struct compat_long compat_longs[];
extern const unsigned compat_longs_count;

/* The flag of `letter`, or NULL. */
const struct compat_opt *compat_find_flag(int letter);
/* The -o entry called name[0..len), or NULL. */
const struct compat_opt *compat_find_subopt(const char *name, size_t len);

/* Appends memcached's other flags and the -o names to --help. */
void compat_print_help(FILE *out);

#endif
