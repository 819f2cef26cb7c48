/*
 * test_config.c: unit tests of server/config.c.
 *
 * Covers the defaults (checked against options.h through the same X-macro),
 * INI files written to a temporary directory (every type, sections, keys
 * before any section, and each kind of error with its exact
 * "FILE:LINE: key: reason" line), the command line (precedence over the
 * file, -f anywhere, -v counting, long options with dashes or underscores,
 * --help, --version, unknown options, leftovers), config_validate() and
 * config_each().
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
#include <unistd.h>

#include "server/config.h"
#include "server/config_compat.h"
#include "util/status.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])) - 1)

struct fixture {
    char dir[64];          /* temporary directory of the INI files */
    char path[128];        /* the current INI file */
    struct config cfg;
    char err[512];
    char *notes;           /* what the last parse() printed as notices */
};

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    strcpy(f->dir, "/tmp/mckv-test-config-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/mckv.ini", f->dir);
    if (config_init(&f->cfg) != 0) {
        rmdir(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;

    config_deinit(&f->cfg);
    unlink(f->path);
    rmdir(f->dir);
    free(f->notes);
    free(f);
    return 0;
}

static void
write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

/* Writes `text` to the fixture's file and loads it; returns the status. */
static int
load_text(struct fixture *f, const char *text)
{
    write_file(f->path, text);
    f->err[0] = '\0';
    return config_load_file(&f->cfg, f->path, f->err, sizeof(f->err));
}

/* Loads `text`, expects failure with "PATH:<rest>" in err. */
static void
expect_load_error(struct fixture *f, const char *text, const char *rest)
{
    char want[512];

    snprintf(want, sizeof(want), "%s:%s", f->path, rest);
    assert_true(load_text(f, text) < 0);
    assert_string_equal(f->err, want);
}

/* Parses argv with a fresh default config. */
static enum config_action
parse(struct fixture *f, int argc, char **argv, char **out_text)
{
    char *buf = NULL;
    size_t len = 0, nlen = 0;
    FILE *out = open_memstream(&buf, &len);
    FILE *notes;
    enum config_action act;

    assert_non_null(out);
    free(f->notes);
    f->notes = NULL;
    notes = open_memstream(&f->notes, &nlen);
    assert_non_null(notes);
    config_deinit(&f->cfg);
    assert_int_equal(config_init(&f->cfg), 0);
    f->err[0] = '\0';
    act = config_parse_args(&f->cfg, argc, argv, out, notes, f->err,
                            sizeof(f->err));
    assert_int_equal(fclose(out), 0);
    assert_int_equal(fclose(notes), 0);
    if (out_text != NULL)
        *out_text = buf;
    else
        free(buf);
    return act;
}

/* The number a table default denotes, computed independently of config.c. */
static uint64_t
default_number(const char *def)
{
    char *end;
    uint64_t v = strtoull(def, &end, 10);

    switch (*end) {
    case 'k': return v << 10;
    case 'm': return v << 20;
    case 'g': return v << 30;
    default: return v;
    }
}

/* ---- defaults --------------------------------------------------------- */

static void
count_key(void *ctx, const char *name, const char *value)
{
    (void)name;
    (void)value;
    ++*(int *)ctx;
}

static void
test_defaults_equal_table(void **state)
{
    struct fixture *f = *state;
    struct config *c = &f->cfg;
    int keys = 0, counted = 0;

#define CHECK_OPT_STR(name, def) assert_string_equal(c->name, def)
#define CHECK_OPT_UINT(name, def) assert_int_equal(c->name, default_number(def))
#define CHECK_OPT_SIZE(name, def) assert_int_equal(c->name, default_number(def))
#define CHECK_OPT_MB(name, def) assert_int_equal(c->name, default_number(def))
#define CHECK_OPT_OCTAL(name, def) \
    assert_int_equal(c->name, strtoull(def, NULL, 8))
#define CHECK_OPT_BOOL(name, def) \
    assert_int_equal(c->name, strcmp(def, "yes") == 0 || strcmp(def, "1") == 0)
#define X(name, section, type, def, min, max, shortf, reload, help) \
    CHECK_##type(name, def);                                         \
    keys++;
    MCKV_OPTIONS(X)
#undef X
    assert_true(keys > 0);
    config_each(c, count_key, &counted);
    assert_int_equal(counted, keys);
    /* A few spelled out, so a wrong table cannot agree with itself. */
    assert_string_equal(c->listen, "127.0.0.1");
    assert_int_equal(c->port, 11211);
    assert_int_equal(c->udp_port, 0);
    assert_int_equal(c->memory_limit, 64);
    assert_int_equal(c->item_size_max, 1048576);
    assert_true(c->cas);
    assert_int_equal(c->verbosity, 0);
    assert_string_equal(c->log_file, "");
    assert_null(c->config_file);
    assert_int_equal(config_validate(c, f->err, sizeof(f->err)), 0);
}

static void
test_deinit_twice(void **state)
{
    struct fixture *f = *state;

    config_deinit(&f->cfg);
    config_deinit(&f->cfg);
    assert_null(f->cfg.listen);
    assert_int_equal(config_init(&f->cfg), 0);
}

/* ---- INI files -------------------------------------------------------- */

static void
test_good_file(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(load_text(f,
        "; comment\n"
        "# another comment\n"
        "threads = 8\n"                 /* before any section */
        "\n"
        "[server]\n"
        "listen = ::1\n"
        "port=12345\n"
        "  backlog = 77   ; inline comment, indented key\n"
        "max-connections = 78\n"       /* dashes accepted... */
        "[cache]\n"
        "memory_limit = 128\n"
        "item_size_max = 2K\n"
        "cas = off\n"
        "[logging]\n"
        "verbosity = 2\n"
        "log_file = /tmp/mckv.log\n"), 0);
    assert_string_equal(f->cfg.listen, "::1");
    assert_int_equal(f->cfg.port, 12345);
    assert_int_equal(f->cfg.threads, 8);
    assert_int_equal(f->cfg.backlog, 77);
    assert_int_equal(f->cfg.max_connections, 78);
    assert_int_equal(f->cfg.memory_limit, 128);   /* MB, as given */
    assert_int_equal(f->cfg.item_size_max, 2048);
    assert_false(f->cfg.cas);
    assert_int_equal(f->cfg.verbosity, 2);
    assert_string_equal(f->cfg.log_file, "/tmp/mckv.log");
    /* untouched keys keep their defaults */
    assert_int_equal(f->cfg.udp_port, 0);
}

static void
test_sizes_and_bools(void **state)
{
    struct fixture *f = *state;
    static const struct { const char *text; uint64_t bytes; } sizes[] = {
        { "1024", 1024 }, { "1k", 1024 }, { "3K", 3072 },
        { "1m", 1048576 }, { "5M", 5242880 }, { "1g", 1073741824 },
        { "1G", 1073741824 },
    };
    static const struct { const char *text; bool value; } bools[] = {
        { "yes", true }, { "no", false }, { "true", true },
        { "false", false }, { "on", true }, { "off", false },
        { "1", true }, { "0", false }, { "YES", true }, { "Off", false },
    };
    char text[128];

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        snprintf(text, sizeof(text), "[cache]\nitem_size_max = %s\n",
                 sizes[i].text);
        assert_int_equal(load_text(f, text), 0);
        assert_int_equal(f->cfg.item_size_max, sizes[i].bytes);
    }
    for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
        snprintf(text, sizeof(text), "cas = %s\n", bools[i].text);
        assert_int_equal(load_text(f, text), 0);
        assert_int_equal(f->cfg.cas, bools[i].value);
    }
    /* an empty string value is a value */
    assert_int_equal(load_text(f, "[logging]\nlog_file = x\n"), 0);
    assert_int_equal(load_text(f, "[logging]\nlog_file =\n"), 0);
    assert_string_equal(f->cfg.log_file, "");
}

static void
test_bad_files(void **state)
{
    struct fixture *f = *state;

    expect_load_error(f, "[server]\nport = 1\nprot = 2\n",
                      "3: prot: unknown key");
    expect_load_error(f, "[cache]\nport = 1\n",
                      "2: port: belongs in section [server], not [cache]");
    expect_load_error(f, "[sever]\nport = 1\n",
                      "2: port: unknown section [sever]");
    expect_load_error(f, "port = abc\n",
                      "1: port: 'abc' is not a number between 1 and 65535");
    expect_load_error(f, "port = -1\n",
                      "1: port: '-1' is not a number between 1 and 65535");
    expect_load_error(f, "port = 0x10\n",
                      "1: port: '0x10' is not a number between 1 and 65535");
    expect_load_error(f, "\n\nport = 70000\n",
                      "3: port: '70000' is not a number between 1 and 65535");
    expect_load_error(f, "[server]\nthreads = 0\n",
                      "2: threads: '0' is not a number between 1 and 256");
    expect_load_error(f, "port = 99999999999999999999999\n",
                      "1: port: '99999999999999999999999' is not a number"
                      " between 1 and 65535");
    expect_load_error(f, "[server]\nudp_port = 11211\n",
                      "2: udp_port: '11211' is not supported: must be 0");
    expect_load_error(f, "[cache]\ncas = maybe\n",
                      "2: cas: 'maybe' is not a boolean"
                      " (yes/no, true/false, on/off, 1/0)");
    expect_load_error(f, "[cache]\nitem_size_max = 2x\n",
                      "2: item_size_max: '2x' has a bad size suffix"
                      " (use k, m or g)");
    expect_load_error(f, "[cache]\nitem_size_max = 2kb\n",
                      "2: item_size_max: '2kb' has a bad size suffix"
                      " (use k, m or g)");
    expect_load_error(f, "[cache]\nitem_size_max = 512\n",
                      "2: item_size_max: '512' is not a size between 1024"
                      " and 1073741824 bytes");
    expect_load_error(f, "[cache]\nitem_size_max = 2g\n",
                      "2: item_size_max: '2g' is not a size between 1024"
                      " and 1073741824 bytes");
    expect_load_error(f, "[cache]\nmemory_limit = 64m\n",
                      "2: memory_limit: '64m' is not a number between 1"
                      " and 1048576");
    expect_load_error(f, "[server]\nport = 1\n\nport = 2\n",
                      "4: port: duplicate key (first set on line 2)");
    expect_load_error(f, "port = 1\n[server]\nport = 2\n",
                      "3: port: duplicate key (first set on line 1)");
    expect_load_error(f, "[server]\nthis is not a pair\n",
                      "2: syntax error");
    expect_load_error(f, "port = 1\n[server\n", "2: syntax error");
}

static void
test_first_error_wins(void **state)
{
    struct fixture *f = *state;

    /* two handler errors */
    expect_load_error(f, "port = abc\nthreads = 0\n",
                      "1: port: 'abc' is not a number between 1 and 65535");
    /* a syntax error before a handler error */
    expect_load_error(f, "port = 1\nnonsense\nthreads = 0\n",
                      "2: syntax error");
    /* a handler error before a syntax error */
    expect_load_error(f, "port = 1\nthreads = 0\nnonsense\n",
                      "2: threads: '0' is not a number between 1 and 256");
}

static void
test_long_line(void **state)
{
    struct fixture *f = *state;
    char text[1024];

    memset(text, 'x', sizeof(text));
    memcpy(text, "port = 1\nlog_file = ", 20);
    strcpy(text + 600, "\nport = 2\n");
    write_file(f->path, text);
    assert_true(config_load_file(&f->cfg, f->path, f->err,
                                 sizeof(f->err)) < 0);
    /* the exact limit is inih's; the line number is ours */
    char want[256];
    snprintf(want, sizeof(want), "%s:2: line too long", f->path);
    assert_memory_equal(f->err, want, strlen(want));
}

static void
test_missing_file(void **state)
{
    struct fixture *f = *state;
    char path[256], want[512];

    snprintf(path, sizeof(path), "%s/does-not-exist.ini", f->dir);
    snprintf(want, sizeof(want), "%s: cannot open: %s", path,
             strerror(ENOENT));
    assert_true(config_load_file(&f->cfg, path, f->err, sizeof(f->err)) < 0);
    assert_string_equal(f->err, want);
}

static void
test_failed_load_changes_nothing(void **state)
{
    struct fixture *f = *state;

    assert_true(load_text(f, "listen = 10.0.0.1\nport = 99\nthreads = 0\n")
                < 0);
    assert_string_equal(f->cfg.listen, "127.0.0.1");
    assert_int_equal(f->cfg.port, 11211);
}

static void
test_strings_replaced(void **state)
{
    struct fixture *f = *state;

    /* ASan/LSan would report the old strings if they leaked. */
    assert_int_equal(load_text(f, "listen = a\nlog_file = b\n"), 0);
    assert_int_equal(load_text(f, "listen = c\nlog_file = d\n"), 0);
    assert_string_equal(f->cfg.listen, "c");
    assert_string_equal(f->cfg.log_file, "d");
}

/* ---- command line ----------------------------------------------------- */

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
     * none of them is supported (t/lib/MemcachedTest.pm) */
    assert_null(strcasestr(text, "sasl"));
    assert_null(strcasestr(text, "ext_path"));
    assert_null(strcasestr(text, "proxy_config"));
    assert_null(strcasestr(text, "enable-ssl"));
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

/* ---- validate and each ------------------------------------------------ */

static void
test_validate(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(config_validate(&f->cfg, f->err, sizeof(f->err)), 0);

    f->cfg.udp_port = 11211;
    assert_true(config_validate(&f->cfg, f->err, sizeof(f->err)) < 0);
    assert_string_equal(f->err, "udp_port: UDP is not supported; use 0");
    f->cfg.udp_port = 0;

    f->cfg.memory_limit = 1;
    f->cfg.item_size_max = 1048576;
    assert_true(config_validate(&f->cfg, f->err, sizeof(f->err)) < 0);
    assert_string_equal(f->err, "item_size_max: 1048576 bytes is more than"
                        " half of memory_limit (1 MB)");
    f->cfg.item_size_max = 512 * 1024;     /* exactly half: allowed */
    assert_int_equal(config_validate(&f->cfg, f->err, sizeof(f->err)), 0);
    f->cfg.memory_limit = 2;
    f->cfg.item_size_max = 1048576;
    assert_int_equal(config_validate(&f->cfg, f->err, sizeof(f->err)), 0);

    f->cfg.item_size_max = 512;
    assert_true(config_validate(&f->cfg, f->err, sizeof(f->err)) < 0);
    assert_string_equal(f->err, "item_size_max: 512 is below the minimum of"
                        " 1024 bytes");
    f->cfg.item_size_max = 1024;
    f->cfg.threads = 0;
    assert_true(config_validate(&f->cfg, f->err, sizeof(f->err)) < 0);
    assert_string_equal(f->err, "threads: 0 is not between 1 and 256");
}

struct each_ctx {
    int count;
    char lines[64][128];
};

static void
each_collect(void *ctx, const char *name, const char *value)
{
    struct each_ctx *e = ctx;

    assert_true(e->count < 64);
    snprintf(e->lines[e->count++], sizeof(e->lines[0]), "%s=%s", name, value);
}

/* Word-valued keys accept their words only, with the usual error line. */
static void
test_word_choices(void **state)
{
    struct fixture *f = *state;
    char *ok[] = { "mckvd", "--engine=memory", "--durability=sync",
                   "--sqlite-synchronous=full", NULL };
    char *bad[] = { "mckvd", "--engine=rocks", NULL };

    assert_int_equal(parse(f, ARGC(ok), ok, NULL), CONFIG_RUN);
    assert_string_equal(f->cfg.engine, "memory");
    assert_string_equal(f->cfg.durability, "sync");
    assert_string_equal(f->cfg.sqlite_synchronous, "full");
    assert_int_equal(parse(f, ARGC(bad), bad, NULL), CONFIG_EXIT_ERROR);
    assert_non_null(strstr(f->err, "'rocks' is not one of: sqlite|memory"));
}

static void
test_each_renders_all_keys(void **state)
{
    struct fixture *f = *state;
    static const char *const names[] = {
#define X(name, section, type, def, min, max, shortf, reload, help) #name,
        MCKV_OPTIONS(X)
#undef X
    };
    static const char *const want[] = {
        "listen=::1", "port=2222", "udp_port=0", "threads=4",
        "max_connections=1024", "backlog=1024", "unix_socket=",
        "unix_mask=755", "protocol=auto", "reqs_per_event=20",
        "idle_timeout=0", "flush_enabled=no", "shutdown_enabled=no",
        "debug_commands=no",
        "dump_enabled=yes",
        "memory_limit=16", "item_size_max=65536", "cas=no", "evictions=yes",
        "hashpower_init=0", "large_pages=yes",
        "engine=memory", "db_path=data/mckv.db", "durability=sync",
        "flush_interval_ms=100", "batch_max_items=10000",
        "sqlite_synchronous=normal", "sqlite_cache_mb=32", "fetchers=2", "dirty_soft_limit_mb=64",
        "dirty_hard_limit_mb=256", "engine_delay_us=0", "verbosity=1",
        "log_file=", "daemonize=no", "user=", "pid_file=", "memory_lock=no",
        "core_dumps=no",
    };
    struct each_ctx e = { 0 };
    char *argv[] = { "mckvd", "-l", "::1", "-p", "2222", "-m", "16",
                     "-I", "64k", "--cas=0", "-v", "--engine=memory",
                     "--durability", "sync", "-F", "-a", "0755", NULL };

    assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
    config_each(&f->cfg, each_collect, &e);
    assert_int_equal(e.count, (int)(sizeof(names) / sizeof(names[0])));
    /* options.h order, every key */
    for (int i = 0; i < e.count; i++) {
        size_t n = strlen(names[i]);
        assert_memory_equal(e.lines[i], names[i], n);
        assert_int_equal(e.lines[i][n], '=');
    }
    /* the values, as long as options.h holds the keys this test knows */
    if (e.count == (int)(sizeof(want) / sizeof(want[0]))) {
        for (int i = 0; i < e.count; i++)
            assert_string_equal(e.lines[i], want[i]);
    } else {
        fail_msg("options.h changed: update want[] in test_each_renders_all_keys");
    }
}

/* ---- memcached's command line ------------------------------------------ */

/* The flags of keys: booleans take no value and flip their default. */
static void
test_memcached_key_flags(void **state)
{
    struct fixture *f = *state;
    {
        char *argv[] = { "mckvd", "-F", "-C", "-A", "-M", "-d", "-k", "-r",
                         "-X", "-p", "1", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
        assert_false(f->cfg.flush_enabled);
        assert_false(f->cfg.dump_enabled);
        assert_false(f->cfg.cas);
        assert_true(f->cfg.shutdown_enabled);
        assert_false(f->cfg.evictions);
        assert_true(f->cfg.daemonize);
        assert_true(f->cfg.memory_lock);
        assert_true(f->cfg.core_dumps);
        assert_int_equal(f->cfg.port, 1);   /* -r took no value */
        assert_string_equal(f->notes, "");
    }
    {
        char *argv[] = { "mckvd", "-FCA", "-s", "/tmp/mc.sock", "-a", "0666",
                         "-B", "binary", "-R", "5", "-u", "nobody", "-P",
                         "/tmp/mc.pid", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
        assert_false(f->cfg.flush_enabled);
        assert_true(f->cfg.shutdown_enabled);
        assert_string_equal(f->cfg.unix_socket, "/tmp/mc.sock");
        assert_int_equal(f->cfg.unix_mask, 0666);
        assert_string_equal(f->cfg.protocol, "binary");
        assert_int_equal(f->cfg.reqs_per_event, 5);
        assert_string_equal(f->cfg.user, "nobody");
        assert_string_equal(f->cfg.pid_file, "/tmp/mc.pid");
        assert_int_equal(config_validate(&f->cfg, f->err, sizeof(f->err)), 0);
    }
    {
        /* the long forms still take values */
        char *argv[] = { "mckvd", "--flush-enabled=no", "--shutdown-enabled",
                         "yes", "--evictions=off", "--unix-mask=700", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
        assert_false(f->cfg.flush_enabled);
        assert_true(f->cfg.shutdown_enabled);
        assert_false(f->cfg.evictions);
        assert_int_equal(f->cfg.unix_mask, 0700);
    }
    {
        char *argv[] = { "mckvd", "-a", "0778", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, "option -a: '0778' is not an octal mode"
                            " between 0 and 777");
    }
    {
        char *argv[] = { "mckvd", "-a", "1777", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, "option -a: '1777' is not an octal mode"
                            " between 0 and 777");
    }
    {
        char *argv[] = { "mckvd", "-B", "http", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, "option -B: 'http' is not one of:"
                            " auto|ascii|binary");
    }
    {
        char *argv[] = { "mckvd", "-R", "0", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, "option -R: '0' is not a number between 1"
                            " and 1000000");
    }
}

/* memcached's long options, each as memcached spells it. */
static void
test_memcached_long_options(void **state)
{
    struct fixture *f = *state;
    char *argv[] = { "mckvd", "--enable-shutdown", "--disable-evictions",
                     "--conn-limit=5", "--lock-memory", "--enable-coredumps",
                     "--verbose", "--daemon", "--pidfile=/tmp/p",
                     "--max-reqs-per-event=3", "--disable-cas",
                     "--listen-backlog=7", "--max-item-size=2m",
                     "--disable-flush-all", "--enable-largepages",
                     "--extended=idle_timeout=4", "--protocol=ascii",
                     "--unix-socket=/tmp/s", "--unix-mask=750",
                     "--memory-limit=8", "--port=9", "--listen=::1",
                     "--threads=2", "--udp-port=0", "--user=root",
                     "--slab-min-size=48", "--slab-growth-factor=1.5",
                     "--disable-dumping", "--disable-watch",
                     "--memory-file=/dev/shm/x", "--napi-ids=1", NULL };

    assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
    assert_true(f->cfg.shutdown_enabled);
    assert_false(f->cfg.evictions);
    assert_int_equal(f->cfg.max_connections, 5);
    assert_true(f->cfg.memory_lock);
    assert_true(f->cfg.core_dumps);
    assert_int_equal(f->cfg.verbosity, 1);
    assert_true(f->cfg.daemonize);
    assert_string_equal(f->cfg.pid_file, "/tmp/p");
    assert_int_equal(f->cfg.reqs_per_event, 3);
    assert_false(f->cfg.cas);
    assert_int_equal(f->cfg.backlog, 7);
    assert_int_equal(f->cfg.item_size_max, 2 << 20);
    assert_false(f->cfg.flush_enabled);
    assert_false(f->cfg.dump_enabled);
    assert_true(f->cfg.large_pages);
    assert_int_equal(f->cfg.idle_timeout, 4);
    assert_string_equal(f->cfg.protocol, "ascii");
    assert_string_equal(f->cfg.unix_socket, "/tmp/s");
    assert_int_equal(f->cfg.unix_mask, 0750);
    assert_int_equal(f->cfg.memory_limit, 8);
    assert_int_equal(f->cfg.port, 9);
    assert_string_equal(f->cfg.listen, "::1");
    assert_int_equal(f->cfg.threads, 2);
    assert_string_equal(f->cfg.user, "root");
    assert_string_equal(f->notes,
        "mckvd: --slab-min-size: ignored: mckv has no slab allocator (an item"
        " is one malloc block)\n"
        "mckvd: --slab-growth-factor 1.5: ignored: slab growth factor: mckv"
        " has no slab allocator\n"
        "mckvd: --disable-watch: ignored: mckv has no watch command to"
        " disable\n"
        "mckvd: --memory-file: ignored: mckv keeps its data in its engine"
        " (db_path), not a memory file\n"
        "mckvd: --napi-ids: ignored: connections go to the workers round"
        " robin\n");
}

/* Every letter memcached 1.6.18 takes is handled, each by one table. */
static void
test_memcached_letters(void **state)
{
    static const char memcached_letters[] =
        "aAZpsUmMckhiVrvdluPfntDLRCbBIoSFXWYeN";
    static const char own[] = "fohVi";
    static const int keys[] = {
#define X(name, section, type, def, min, max, shortf, reload, help) shortf,
        MCKV_OPTIONS(X)
#undef X
    };
    (void)state;
    for (const char *p = memcached_letters; *p != '\0'; p++) {
        int owners = strchr(own, *p) != NULL;
        owners += compat_find_flag(*p) != NULL;
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
            owners += keys[i] == *p;
        if (owners != 1)
            fail_msg("memcached's -%c is handled %d times", *p, owners);
    }
    /* every -o name memcached 1.6.18 knows (memcached.c, storage.c) */
    static const char *const subopts[] = {
        "maxconns_fast", "hashpower", "no_hashexpand", "slab_reassign",
        "slab_automove", "slab_automove_ratio", "slab_automove_window",
        "tail_repair_time", "hash_algorithm", "lru_crawler",
        "lru_crawler_sleep", "lru_crawler_tocrawl", "lru_maintainer",
        "hot_lru_pct", "warm_lru_pct", "hot_max_factor", "warm_max_factor",
        "temporary_ttl", "idle_timeout", "watcher_logbuf_size",
        "worker_logbuf_size", "slab_sizes", "slab_chunk_max", "track_sizes",
        "no_inline_ascii_resp", "modern", "no_modern", "no_chunked_items",
        "no_slab_reassign", "no_slab_automove", "no_maxconns_fast",
        "inline_ascii_resp", "no_lru_crawler", "no_lru_maintainer",
        "no_drop_privileges", "drop_privileges", "resp_obj_mem_limit",
        "read_buf_mem_limit", "ssl_chain_cert", "ssl_key", "ssl_verify_mode",
        "ssl_keyformat", "ssl_ciphers", "ssl_ca_cert", "ssl_wbuf_size",
        "ssl_session_cache", "ssl_kernel_tls", "ssl_min_version",
        "proxy_config", "proxy_uring", "relaxed_privileges", "sock_cookie_id",
        "ext_page_size", "ext_wbuf_size", "ext_threads", "ext_io_depth",
        "ext_path", "ext_item_size", "ext_item_age", "ext_low_ttl",
        "ext_recache_rate", "ext_compact_under", "ext_drop_under",
        "ext_max_sleep", "ext_max_frag", "ext_drop_unread",
        "slab_automove_freeratio",
    };
    assert_int_equal(compat_subopts_count, sizeof(subopts) / sizeof(subopts[0]));
    for (size_t i = 0; i < sizeof(subopts) / sizeof(subopts[0]); i++)
        if (compat_find_subopt(subopts[i], strlen(subopts[i])) == NULL)
            fail_msg("-o %s is not handled", subopts[i]);
}

/* -f NUMBER is the growth factor; -f FILE and --config=FILE the file. */
static void
test_growth_factor_or_file(void **state)
{
    struct fixture *f = *state;

    write_file(f->path, "[server]\nport = 2000\n");
    {
        char *argv[] = { "mckvd", "-f", "1.25", "-f", "2", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
        assert_null(f->cfg.config_file);
        assert_int_equal(f->cfg.port, 11211);
        /* said once */
        assert_string_equal(f->notes, "mckvd: -f 1.25: ignored: slab growth"
                            " factor: mckv has no slab allocator\n");
    }
    {
        char *argv[] = { "mckvd", "-f", "1.0", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, "option -f: '1.0': Factor must be greater"
                            " than 1");
    }
    {
        char *argv[] = { "mckvd", "--slab-growth-factor=big", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, "option --slab-growth-factor: 'big':"
                            " Factor must be greater than 1");
    }
    {
        char *argv[] = { "mckvd", "-f", f->path, "-f", "1.08", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
        assert_string_equal(f->cfg.config_file, f->path);
        assert_int_equal(f->cfg.port, 2000);
    }
    {
        char opt[200];
        snprintf(opt, sizeof(opt), "--config=%s", f->path);
        char *argv[] = { "mckvd", opt, "-f", f->path, NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err,
            "option -f: only one configuration file may be given");
    }
}

/* -o: memcached's names, mapped, accepted or refused; unknown ones fail. */
static void
test_suboptions(void **state)
{
    struct fixture *f = *state;
    {
        char *argv[] = { "mckvd", "-o", "idle_timeout=5,hashpower=16",
                         "-o", "maxconns_fast,relaxed_privileges", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
        assert_int_equal(f->cfg.idle_timeout, 5);
        assert_int_equal(f->cfg.hashpower_init, 16);
        assert_string_equal(f->notes, "");
        assert_int_equal(config_validate(&f->cfg, f->err, sizeof(f->err)), 0);
    }
    {
        /* one line per name, once */
        char *argv[] = { "mckvd", "-o", "slab_reassign,lru_crawler",
                         "-o", "slab_reassign,ext_path=/x:1G", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
        assert_string_equal(f->notes,
            "mckvd: -o slab_reassign: ignored: mckv has no slab allocator (an"
            " item is one malloc block)\n"
            "mckvd: -o lru_crawler: ignored: mckv has no LRU crawler\n"
            "mckvd: -o ext_path: ignored: mckv has no extstore: values past"
            " memory_limit stay in its own engine (db_path)\n");
    }
    {
        char *argv[] = { "mckvd", "-o", "idle_timeout=1,bogus=3", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, "option -o: Illegal suboption \"bogus=3\"");
    }
    {
        char *argv[] = { "mckvd", "-o", "idle_timeout", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, "option -o: Missing idle_timeout argument");
    }
    {
        char *argv[] = { "mckvd", "-o", "idle_timeout=soon", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, "option -o idle_timeout: 'soon' is not a"
                            " number between 0 and 31536000");
    }
    {
        char *argv[] = { "mckvd", "-o", "hashpower=11", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
        assert_true(config_validate(&f->cfg, f->err, sizeof(f->err)) < 0);
        assert_string_equal(f->err, "hashpower_init: 11 is too low: 12..32, or"
                            " 0 to grow as needed");
    }
    {
        char *argv[] = { "mckvd", "-o", "proxy_config=/etc/p.lua", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, "option -o proxy_config: mckv is not a"
                            " proxy");
    }
    /* every name, with a value where memcached needs one */
    for (unsigned i = 0; i < compat_subopts_count; i++) {
        const struct compat_opt *so = &compat_subopts[i];
        char opt[96];
        snprintf(opt, sizeof(opt), "%s%s", so->name,
                 !so->has_arg ? "" : so->action == COMPAT_KEY ? "=12" : "=1");
        char *argv[] = { "mckvd", "-o", opt, NULL };
        enum config_action want = so->action == COMPAT_REFUSE
                                  ? CONFIG_EXIT_ERROR : CONFIG_RUN;
        if (parse(f, ARGC(argv), argv, NULL) != want)
            fail_msg("-o %s: %s", opt, f->err);
        assert_int_equal(strlen(f->notes) > 0, so->action == COMPAT_NOTICE);
    }
}

/* memcached's flags with no key: set, noted or refused. */
static void
test_memcached_other_flags(void **state)
{
    struct fixture *f = *state;
    {
        char *argv[] = { "mckvd", "-L", "--large-pages=no", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
        assert_false(f->cfg.large_pages);
        char *argv2[] = { "mckvd", "--large-pages=no", "-L", NULL };
        assert_int_equal(parse(f, ARGC(argv2), argv2, NULL), CONFIG_RUN);
        assert_true(f->cfg.large_pages);
    }
    {
        char *argv[] = { "mckvd", "-n", "48", "-D", ":", "-W", "-N",
                         "2", "-e", "/dev/shm/m", "-n", "64", "-p", "3", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
        assert_int_equal(f->cfg.port, 3);
        assert_string_equal(f->notes,
            "mckvd: -n: ignored: mckv has no slab allocator (an item is one"
            " malloc block)\n"
            "mckvd: -D: ignored: mckv keeps no per-prefix stats (stats"
            " detail)\n"
            "mckvd: -W: ignored: mckv has no watch command to disable\n"
            "mckvd: -N: ignored: connections go to the workers round robin\n"
            "mckvd: -e: ignored: mckv keeps its data in its engine (db_path),"
            " not a memory file\n");
    }
    {
        char *argv[] = { "mckvd", "-S", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, "option -S: SASL authentication is not"
                            " supported");
    }
    {
        char *argv[] = { "mckvd", "--enable-ssl", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, "option --enable-ssl: TLS is not"
                            " supported");
    }
    {
        char *argv[] = { "mckvd", "-Y", "/etc/auth", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, "option -Y: ASCII authentication is not"
                            " supported");
    }
    {
        char *text = NULL;
        char *argv[] = { "mckvd", "-i", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, &text), CONFIG_EXIT_OK);
        assert_non_null(strstr(text, "license"));
        free(text);
    }
    {
        /* memcached's test harness, as root */
        char *argv[] = { "mckvd", "-u", "root", "-o", "relaxed_privileges",
                         "-s", "/tmp/memcachetest.1.0", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
        assert_string_equal(f->notes, "");
        assert_int_equal(config_validate(&f->cfg, f->err, sizeof(f->err)), 0);
    }
    {
        char path[200];
        memset(path, 'a', sizeof(path) - 1);
        path[0] = '/';
        path[sizeof(path) - 1] = '\0';
        char *argv[] = { "mckvd", "-s", path, NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
        assert_true(config_validate(&f->cfg, f->err, sizeof(f->err)) < 0);
        assert_non_null(strstr(f->err, ": longer than 107 bytes"));
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_defaults_equal_table),
        T(test_deinit_twice),
        T(test_good_file),
        T(test_sizes_and_bools),
        T(test_bad_files),
        T(test_first_error_wins),
        T(test_long_line),
        T(test_missing_file),
        T(test_failed_load_changes_nothing),
        T(test_strings_replaced),
        T(test_command_line_overrides_file),
        T(test_short_flags),
        T(test_verbose_counts),
        T(test_long_options),
        T(test_bad_option_values),
        T(test_unknown_option),
        T(test_leftover_argument),
        T(test_help_lists_every_key),
        T(test_version),
        T(test_validate),
        T(test_each_renders_all_keys),
        T(test_memcached_key_flags),
        T(test_memcached_long_options),
        T(test_memcached_letters),
        T(test_growth_factor_or_file),
        T(test_suboptions),
        T(test_memcached_other_flags),
        T(test_word_choices),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
