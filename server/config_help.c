/*
 * config_help.c: --help (config_print_help): every key of options.h with its
 * short flag, placeholder, help, section, default, range and whether SIGHUP
 * reloads it, then memcached's other flags (config_compat.c).
 * scripts/test checks that every key printed here is in
 * etc/mckv.conf.example.
 */
/* Angle brackets on purpose: from server/, "config.h" would find this
 * module's own server/config.h first instead of the autoconf header. */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "server/config_compat.h"
#include "server/config_priv.h"

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

        config_dashed_name(o->name, dashed);
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
