/*
 * test_config.c: unit tests of server/config*.c: the defaults (checked
 * against options.h through the same X-macro), config_validate() and
 * config_each().
 *
 * The other topics have their own binaries: test_config_ini.c (INI files),
 * test_config_args.c (mckv's command line, --help, --version) and
 * test_config_compat.c (memcached's command line); config_helpers.c holds
 * their fixture.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/config.h"
#include "tests/unit/config_helpers.h"
#include "util/status.h"

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
        "sasl=no", "auth_file=",
        "memory_limit=16", "item_size_max=65536", "cas=no", "evictions=yes",
        "hashpower_init=0", "large_pages=yes",
        "engine=memory", "db_path=data/mckv.db", "durability=sync",
        "flush_interval_ms=100", "batch_max_items=100000",
        "sqlite_synchronous=normal", "sqlite_cache_mb=0", "fetchers=2", "dirty_soft_limit_mb=128",
        "dirty_hard_limit_mb=256", "engine_delay_us=0", "verbosity=1",
        "log_file=", "daemonize=no", "user=", "pid_file=", "memory_lock=no",
        "core_dumps=no",
#ifdef HAVE_TLS
        "ssl_enabled=no", "ssl_chain_cert=", "ssl_key=", "ssl_keyformat=1",
        "ssl_verify_mode=0", "ssl_ciphers=", "ssl_ca_cert=",
        "ssl_wbuf_size=16384", "ssl_session_cache=no", "ssl_min_version=2",
#endif
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_defaults_equal_table),
        T(test_deinit_twice),
        T(test_validate),
        T(test_each_renders_all_keys),
        T(test_word_choices),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
