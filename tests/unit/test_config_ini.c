/*
 * test_config_ini.c: INI files (config_load_file), written to a temporary
 * directory: every type, sections, keys before any section, and each kind
 * of error with its exact "FILE:LINE: key: reason" line; a failed load
 * changes nothing.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "server/config.h"
#include "tests/unit/config_helpers.h"
#include "util/status.h"

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

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_good_file),
        T(test_sizes_and_bools),
        T(test_bad_files),
        T(test_first_error_wins),
        T(test_long_line),
        T(test_missing_file),
        T(test_failed_load_changes_nothing),
        T(test_strings_replaced),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
