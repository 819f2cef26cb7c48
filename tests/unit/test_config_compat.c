/*
 * test_config_compat.c: memcached 1.6.18's command line (config_compat.c's
 * tables, applied by config_args.c): its flags that are keys' short flags,
 * its long spellings, its other letters, -f as a growth factor or a file,
 * -o suboptions, and the flags mckv notes, ignores or refuses.
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
#include "server/config_compat.h"
#include "tests/unit/config_helpers.h"
#include "util/status.h"

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
                 !so->has_arg ? "" : so->action == COMPAT_KEY &&
                 strncmp(so->name, "ssl_", 4) != 0 ? "=12" : "=1");
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
        /* -S and -Y are keys now (sasl, auth_file) */
        char *argv[] = { "mckvd", "-S", "--enable-sasl", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
        assert_true(f->cfg.sasl);
    }
#ifdef HAVE_TLS
    {
        /* memcached's TLS command line sets the TLS keys */
        char *argv[] = { "mckvd", "--enable-ssl", "-o",
                         "ssl_chain_cert=/c.pem,ssl_key=/k.pem,ssl_verify_mode=2,"
                         "ssl_wbuf_size=32,ssl_session_cache,ssl_min_version=3,"
                         "ssl_ca_cert=/ca.pem,ssl_kernel_tls", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
        assert_true(f->cfg.ssl_enabled);
        assert_string_equal(f->cfg.ssl_chain_cert, "/c.pem");
        assert_string_equal(f->cfg.ssl_key, "/k.pem");
        assert_string_equal(f->cfg.ssl_ca_cert, "/ca.pem");
        assert_int_equal(f->cfg.ssl_verify_mode, 2);
        assert_int_equal(f->cfg.ssl_wbuf_size, 32768);
        assert_true(f->cfg.ssl_session_cache);
        assert_int_equal(f->cfg.ssl_min_version, 3);
    }
#else
    {
        char *argv[] = { "mckvd", "--enable-ssl", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_EXIT_ERROR);
        assert_string_equal(f->err, "option --enable-ssl: TLS is not"
                            " supported");
    }
#endif
    {
        char *argv[] = { "mckvd", "-Y", "/etc/auth", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
        assert_string_equal(f->cfg.auth_file, "/etc/auth");
    }
    {
        char *argv[] = { "mckvd", "--auth-file", "/etc/auth2", NULL };
        assert_int_equal(parse(f, ARGC(argv), argv, NULL), CONFIG_RUN);
        assert_string_equal(f->cfg.auth_file, "/etc/auth2");
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
        T(test_memcached_key_flags),
        T(test_memcached_long_options),
        T(test_memcached_letters),
        T(test_growth_factor_or_file),
        T(test_suboptions),
        T(test_memcached_other_flags),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
