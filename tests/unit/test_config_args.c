/*
 * test_config_args.c: mckv's command line (config_parse_args): precedence
 * over the file, -f anywhere, -v counting, long options with dashes or
 * underscores, --help, --version, bad values, unknown options, leftovers.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/config.h"
#include "tests/unit/config_helpers.h"
#include "util/status.h"

static void
test_command_line_overrides_file(void **state)
{
    struct fixture *f = *state;

    write_file(f->path, "[server]\nport = 2000\nthreads = 3\n");
    {
        char *argv[] = { "mckvd", "-f", f->path, "-p", "3000", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
        assert_int_equal(f->cfg.port, 3000);
        assert_int_equal(f->cfg.threads, 3);
        assert_string_equal(f->cfg.config_file, f->path);
    }
    {
        /* -f after the option it would otherwise override */
        char *argv[] = { "mckvd", "-p", "3000", "-f", f->path, NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
        assert_int_equal(f->cfg.port, 3000);
        assert_int_equal(f->cfg.threads, 3);
    }
    {
        char opt[200];
        snprintf(opt, sizeof(opt), "--config=%s", f->path);
        char *argv[] = { "mckvd", "--port=3001", opt, NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
        assert_int_equal(f->cfg.port, 3001);
        assert_int_equal(f->cfg.threads, 3);
    }
    {
        /* an error in the file is reported as such */
        write_file(f->path, "[server]\nport = none\n");
        char *argv[] = { "mckvd", "-p", "3000", "-f", f->path, NULL };
        char want[512];
        snprintf(want, sizeof(want),
                 "%s:2: port: 'none' is not a number between 1 and 65535",
                 f->path);
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, want);
    }
    {
        char *argv[] = { "mckvd", "-f", f->path, "-f", f->path, NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err,
            "option -f: only one configuration file may be given");
    }
    {
        char *argv[] = { "mckvd", "-f", "/nonexistent/mckv.ini", NULL };
        char want[256];
        snprintf(want, sizeof(want), "/nonexistent/mckv.ini: cannot open: %s",
                 strerror(ENOENT));
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, want);
    }
}

static void
test_short_flags(void **state)
{
    struct fixture *f = *state;
    char *argv[] = { "mckvd", "-p", "1234", "-l", "0.0.0.0", "-t", "2",
                     "-c", "99", "-m", "512", "-I", "4m", "-U", "0",
                     "-b", "10", NULL };

    assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
    assert_int_equal(f->cfg.port, 1234);
    assert_string_equal(f->cfg.listen, "0.0.0.0");
    assert_int_equal(f->cfg.threads, 2);
    assert_int_equal(f->cfg.max_connections, 99);
    assert_int_equal(f->cfg.memory_limit, 512);
    assert_int_equal(f->cfg.item_size_max, 4 << 20);
    assert_int_equal(f->cfg.udp_port, 0);
    assert_int_equal(f->cfg.backlog, 10);
    assert_int_equal(config_validate(&f->cfg, f->err, sizeof(f->err)), 0);
    {
        char *argv2[] = { "mckvd", "-p1235", NULL };  /* attached value */
        assert_int_equal(parse(f, ARGC(argv2), argv2, NULL), CONFIG_RUN);
        assert_int_equal(f->cfg.port, 1235);
    }
}

static void
test_verbose_counts(void **state)
{
    struct fixture *f = *state;
    {
        char *argv[] = { "mckvd", "-v", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
        assert_int_equal(f->cfg.verbosity, 1);
    }
    {
        char *argv[] = { "mckvd", "-vv", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
        assert_int_equal(f->cfg.verbosity, 2);
    }
    {
        char *argv[] = { "mckvd", "-v", "-p", "1", "-v", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
        assert_int_equal(f->cfg.verbosity, 2);
        assert_int_equal(f->cfg.port, 1);
    }
    {
        char *argv[] = { "mckvd", "-vvv", NULL };  /* saturates */
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
        assert_int_equal(f->cfg.verbosity, 2);
    }
    {
        char *argv[] = { "mckvd", "-vp", "7", NULL };  /* clustered */
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
        assert_int_equal(f->cfg.verbosity, 1);
        assert_int_equal(f->cfg.port, 7);
    }
    {
        char *argv[] = { "mckvd", "--verbosity=1", "-v", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
        assert_int_equal(f->cfg.verbosity, 2);
    }
    {
        /* -v on the command line replaces the file's level */
        write_file(f->path, "[logging]\nverbosity = 2\n");
        char *argv[] = { "mckvd", "-v", "-f", f->path, NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
        assert_int_equal(f->cfg.verbosity, 1);
    }
    {
        char *argv[] = { "mckvd", "--verbosity", "3", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, "option --verbosity: '3' is not a number"
                            " between 0 and 2");
    }
}

static void
test_long_options(void **state)
{
    struct fixture *f = *state;
    {
        char *argv[] = { "mckvd", "--max-connections=10", "--item-size-max",
                         "2k", "--backlog", "60", "--cas=no",
                         "--listen", "::1", "--log-file=/tmp/x.log",
                         "--memory-limit", "8", "--udp-port=0", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
        assert_int_equal(f->cfg.max_connections, 10);
        assert_int_equal(f->cfg.item_size_max, 2048);
        assert_int_equal(f->cfg.backlog, 60);
        assert_false(f->cfg.cas);
        assert_string_equal(f->cfg.listen, "::1");
        assert_string_equal(f->cfg.log_file, "/tmp/x.log");
        assert_int_equal(f->cfg.memory_limit, 8);
    }
    {
        char *argv[] = { "mckvd", "--max_connections", "20",
                         "--item_size_max=3k", "--cas", "yes", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
        assert_int_equal(f->cfg.max_connections, 20);
        assert_int_equal(f->cfg.item_size_max, 3072);
        assert_true(f->cfg.cas);
    }
    {
        /* later options win */
        char *argv[] = { "mckvd", "--port=1", "-p", "2", "--port", "3", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
        assert_int_equal(f->cfg.port, 3);
    }
}

static void
test_bad_option_values(void **state)
{
    struct fixture *f = *state;
    {
        char *argv[] = { "mckvd", "--port=abc", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, "option --port: 'abc' is not a number"
                            " between 1 and 65535");
    }
    {
        char *argv[] = { "mckvd", "-p", "abc", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, "option -p: 'abc' is not a number"
                            " between 1 and 65535");
    }
    {
        char *argv[] = { "mckvd", "--max_connections=0", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, "option --max_connections: '0' is not a"
                            " number between 1 and 1048576");
    }
    {
        char *argv[] = { "mckvd", "-I", "1q", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, "option -I: '1q' has a bad size suffix"
                            " (use k, m or g)");
    }
    {
        char *argv[] = { "mckvd", "--cas=perhaps", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, "option --cas: 'perhaps' is not a boolean"
                            " (yes/no, true/false, on/off, 1/0)");
    }
    {
        char *argv[] = { "mckvd", "-U", "11211", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err,
                            "option -U: '11211' is not supported: must be 0");
    }
    {
        char *argv[] = { "mckvd", "-p", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, "option -p: missing value");
    }
    {
        char *argv[] = { "mckvd", "--port", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, "option --port: missing value");
    }
}

static void
test_unknown_option(void **state)
{
    struct fixture *f = *state;
    {
        char *argv[] = { "mckvd", "--bogus", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, "unknown or ambiguous option '--bogus'");
    }
    {
        char *argv[] = { "mckvd", "--bogus=1", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, "unknown or ambiguous option '--bogus'");
    }
    {
        char *argv[] = { "mckvd", "-x", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, "unknown option '-x'");
    }
    {
        /* "--m" could be --max-connections or --memory-limit */
        char *argv[] = { "mckvd", "--m=1", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, "unknown or ambiguous option '--m'");
    }
    {
        char *argv[] = { "mckvd", "--version=2", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, "option --version: takes no value");
    }
}

static void
test_leftover_argument(void **state)
{
    struct fixture *f = *state;
    {
        char *argv[] = { "mckvd", "-p", "1", "extra", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, "unexpected argument 'extra'");
    }
    {
        char *argv[] = { "mckvd", "extra", "-p", "1", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, "unexpected argument 'extra'");
    }
}

struct help_key {
    const char *name, *section, *def, *help;
    int short_flag;
};

static void
test_help_lists_every_key(void **state)
{
    struct fixture *f = *state;
    static const struct help_key keys[] = {
#define X(name, section, type, def, min, max, shortf, reload, help) \
        { #name, section, def, help, shortf },
        MCKV_OPTIONS(X)
#undef X
    };
    char *argv[] = { "mckvd", "-p", "1", "--help", NULL };
    char *text = NULL;

    assert_int_equal(parse(f, ARGC(argv), argv, &text), CONFIG_EXIT_OK);
    assert_non_null(text);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char needle[256], dashed[64];
        size_t j;

        for (j = 0; keys[i].name[j] != '\0'; j++)
            dashed[j] = keys[i].name[j] == '_' ? '-' : keys[i].name[j];
        dashed[j] = '\0';
        snprintf(needle, sizeof(needle), "--%s=", dashed);
        assert_non_null(strstr(text, needle));
        snprintf(needle, sizeof(needle), "[%s] %s = %s;", keys[i].section,
                 keys[i].name, keys[i].def);
        assert_non_null(strstr(text, needle));
        assert_non_null(strstr(text, keys[i].help));
        if (keys[i].short_flag != 0) {
            snprintf(needle, sizeof(needle), "-%c, --%s=",
                     keys[i].short_flag, dashed);
            assert_non_null(strstr(text, needle));
        }
    }
    assert_non_null(strstr(text, "      --config=FILE"));
    /* a boolean's flag says what it sets */
    assert_non_null(strstr(text, "-F alone: flush_enabled = no"));
    assert_non_null(strstr(text, "-A alone: shutdown_enabled = yes"));
    /* memcached's other flags and its -o names */
    assert_non_null(strstr(text, "  -L, --enable-largepages\n"
                                 "        sets large_pages = yes\n"));
    assert_non_null(strstr(text, "  -o idle_timeout=VALUE\n"
                                 "        sets idle_timeout\n"));
    /* memcached's test harness greps -h for these to decide what to test:
     * SASL is supported (t/binary-sasl.t runs), none of the others is
     * (t/lib/MemcachedTest.pm) */
    assert_non_null(strcasestr(text, "sasl"));
    assert_null(strcasestr(text, "ext_path"));
    assert_null(strcasestr(text, "proxy_config"));
#ifdef HAVE_TLS
    assert_non_null(strcasestr(text, "enable-ssl"));   /* -Z, TLS build */
#else
    assert_null(strcasestr(text, "enable-ssl"));
#endif
    assert_null(strcasestr(text, "no_drop_privileges"));
    /* and this one is */
    assert_non_null(strstr(text, "unix-socket"));
    assert_non_null(strstr(text, "reloadable"));
    assert_non_null(strstr(text, "restart to change"));
    free(text);

    /* -h too, and --help wins over a bad option */
    char *argv2[] = { "mckvd", "--port=abc", "-h", NULL };
    assert_int_equal(parse(f, ARGC(argv2), argv2, &text), CONFIG_EXIT_OK);
    assert_non_null(strstr(text, "Usage: mckvd"));
    free(text);
}

static void
test_version(void **state)
{
    struct fixture *f = *state;
    char *text = NULL;
    {
        char *argv[] = { "mckvd", "--version", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, &text), CONFIG_EXIT_OK);
        assert_string_equal(text, "mckvd " PACKAGE_VERSION "\n");
        free(text);
    }
    {
        char *argv[] = { "mckvd", "-V", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, &text), CONFIG_EXIT_OK);
        assert_string_equal(text, "mckvd " PACKAGE_VERSION "\n");
        free(text);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_command_line_overrides_file),
        T(test_short_flags),
        T(test_verbose_counts),
        T(test_long_options),
        T(test_bad_option_values),
        T(test_unknown_option),
        T(test_leftover_argument),
        T(test_help_lists_every_key),
        T(test_version),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
