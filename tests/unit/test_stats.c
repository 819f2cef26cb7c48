/*
 * test_stats.c: unit tests of server/stats.c, the `stats` renderer, with
 * the modules that feed it replaced by fakes: a fake thread table (the
 * workers' counter sums and timings, stats_register_threads) and fake
 * groups registered as the workers and persistence register theirs
 * (stats_register_group). The config and the cache are the real ones.
 *
 * Checked: the general group's lines and where each number comes from;
 * group lookup (built-in, registered, several functions for one group in
 * registration order, a registered addition to a built-in group, unknown
 * names and prefixes of names refused with nothing emitted); `stats
 * settings` (memcached's names first and in its order, each printed once,
 * then mckv's own keys; values from the config); `stats reset` (a
 * baseline, counters stay single-writer); items and slabs; timings.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/cache.h"
#include "server/config.h"
#include "server/stats.h"
#include "server/stats_prefix.h"
#include "util/hist.h"
#include "util/version.h"

#define MB ((size_t)1024 * 1024)
#define LINES_MAX 512

struct lines {
    char name[LINES_MAX][64];
    char value[LINES_MAX][128];
    unsigned n;
};

static struct lines out;
static struct config cfg;

static void
collect(void *ctx, const char *name, const char *value)
{
    struct lines *l = ctx;
    assert_true(l->n < LINES_MAX);
    snprintf(l->name[l->n], sizeof(l->name[0]), "%s", name);
    snprintf(l->value[l->n], sizeof(l->value[0]), "%s", value);
    l->n++;
}

/* The index of name's line, -1 when absent. */
static int
find(const char *name)
{
    for (unsigned i = 0; i < out.n; i++)
        if (strcmp(out.name[i], name) == 0)
            return (int)i;
    return -1;
}

static const char *
value_of(const char *name)
{
    int i = find(name);
    if (i < 0)
        fail_msg("no stat %s", name);
    return out.value[i];
}

static unsigned
count_of(const char *name)
{
    unsigned n = 0;
    for (unsigned i = 0; i < out.n; i++)
        n += strcmp(out.name[i], name) == 0;
    return n;
}

static bool
run(const char *group)
{
    memset(&out, 0, sizeof(out));
    return stats_group(group, strlen(group), collect, &out);
}

/* ------------------------------------------------ fake threads, groups */

static struct thread_stats fake_ts;   /* "every worker", summed */
static struct hist fake_get_timings;
static unsigned sum_calls;

static void
fake_sum(struct thread_stats *o)
{
    sum_calls++;
#define X(name) o->name += fake_ts.name;
    THREAD_STATS(X)
#undef X
}

static void
fake_timings(enum cmd_class k, struct hist *o)
{
    if (k == CMD_CLASS_GET)
        hist_merge(o, &fake_get_timings);
}

static void
group_conns(stats_emit_fn emit, void *ctx)
{
    emit(ctx, "7:addr", "tcp:127.0.0.1:5555");
}

static void
group_engine_first(stats_emit_fn emit, void *ctx)
{
    emit(ctx, "engine_first", "1");
}

static void
group_engine_second(stats_emit_fn emit, void *ctx)
{
    emit(ctx, "engine_second", "2");
}

static void
group_timings_extra(stats_emit_fn emit, void *ctx)
{
    emit(ctx, "flusher_commit_count", "3");
}

/* Registration is for the life of the process (main thread, before the
 * workers): once for the whole group of tests. */
static int
group_setup(void **state)
{
    (void)state;
    stats_register_threads(&(struct stats_threads){
        .nthreads = 3, .sum = fake_sum, .timings = fake_timings,
    });
    if (!stats_register_group("conns", group_conns) ||
        !stats_register_group("engine", group_engine_first) ||
        !stats_register_group("engine", group_engine_second) ||
        !stats_register_group("timings", group_timings_extra))
        return -1;
    return 0;
}

static int
setup(void **state)
{
    (void)state;
    struct cache_options co = {
        .memory_limit = 64 * MB, .item_size_max = MB, .cas_enabled = true,
    };
    if (cache_setup(&co) != 0 || config_init(&cfg) != 0)
        return -1;
    stats_setup(&cfg);
    memset(&fake_ts, 0, sizeof(fake_ts));
    memset(&fake_get_timings, 0, sizeof(fake_get_timings));
    stats_group("reset", 5, collect, &out);   /* a zero baseline */
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    config_deinit(&cfg);
    cache_teardown();
    return 0;
}

static void
store(const char *key, size_t vlen)
{
    bool too_large = false;
    struct item *it = cache_item_alloc(key, (uint8_t)strlen(key), 0, 0,
                                       (uint32_t)vlen, &too_large);
    assert_non_null(it);
    memset(item_value(it), 'v', vlen);
    uint64_t cas;
    assert_int_equal(cache_store(it, CACHE_SET, 0, &cas), CACHE_STORED);
    cache_item_release(it);
}

/* ---------------------------------------------------------------- tests */

static void
test_general(void **state)
{
    (void)state;
    fake_ts.cmd_get = 11;
    fake_ts.get_hits = 7;
    fake_ts.bytes_written = 12345;
    atomic_store(&global_stats.curr_connections, 4);
    atomic_store(&global_stats.total_connections, 9);
    store("a", 10);
    store("b", 1000);
    assert_true(run(""));
    char pid[32];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    assert_string_equal(out.name[0], "pid");
    assert_string_equal(value_of("pid"), pid);
    assert_string_equal(value_of("version"), mckv_version);
    assert_string_equal(value_of("max_connections"), "1024");
    assert_string_equal(value_of("curr_connections"), "4");
    assert_string_equal(value_of("total_connections"), "9");
    assert_string_equal(value_of("cmd_get"), "11");
    assert_string_equal(value_of("get_hits"), "7");
    assert_string_equal(value_of("get_misses"), "0");
    assert_string_equal(value_of("bytes_written"), "12345");
    assert_string_equal(value_of("threads"), "3");
    assert_string_equal(value_of("curr_items"), "2");
    assert_string_equal(value_of("total_items"), "2");
    char limit[32];
    snprintf(limit, sizeof(limit), "%zu", 64 * MB);
    assert_string_equal(value_of("limit_maxbytes"), limit);
    assert_true(strtoull(value_of("bytes"), NULL, 10) > 1010);
    assert_non_null(strchr(value_of("rusage_user"), '.'));
    /* every counter of THREAD_STATS, once */
#define X(name) assert_int_equal(count_of(#name), 1);
    THREAD_STATS(X)
#undef X
    /* no registered group adds to the general one */
    assert_int_equal(find("7:addr"), -1);
    /* memcached 1.6.18's `stats`, less the names mckv does not have: in
     * this order, mckv's own names after them */
    static const char *const mc_order[] = {
        "pid", "uptime", "time", "version", "libevent", "pointer_size",
        "rusage_user", "rusage_system", "max_connections", "curr_connections",
        "total_connections", "rejected_connections", "cmd_get", "cmd_set",
        "cmd_flush", "cmd_touch", "cmd_meta", "get_hits", "get_misses",
        "get_expired", "get_flushed", "delete_misses", "delete_hits",
        "incr_misses", "incr_hits", "decr_misses", "decr_hits", "cas_misses",
        "cas_hits", "cas_badval", "touch_hits", "touch_misses",
        "store_too_large", "store_no_memory", "auth_cmds", "auth_errors",
        "bytes_read", "bytes_written", "limit_maxbytes", "accepting_conns",
        "threads", "conn_yields", "hash_bytes", "hash_is_expanding", "bytes",
        "curr_items", "total_items", "expired_unfetched", "evicted_unfetched",
        "evictions", "reclaimed", "hash_buckets", "protocol_errors",
        "idle_kicks", "log_suppressed",
    };
    for (size_t i = 1; i < sizeof(mc_order) / sizeof(mc_order[0]); i++) {
        if (find(mc_order[i - 1]) >= find(mc_order[i]))
            fail_msg("%s is not before %s", mc_order[i - 1], mc_order[i]);
    }
}

static void
test_group_lookup(void **state)
{
    (void)state;
    /* registered: the workers' "conns" */
    assert_true(run("conns"));
    assert_int_equal(out.n, 1);
    assert_string_equal(out.name[0], "7:addr");
    /* two functions for one group, in registration order */
    assert_true(run("engine"));
    assert_int_equal(out.n, 2);
    assert_string_equal(out.name[0], "engine_first");
    assert_string_equal(out.name[1], "engine_second");
    /* an addition to a built-in group comes after its own lines */
    assert_true(run("timings"));
    assert_string_equal(out.name[0], "cmd_get_count");
    assert_string_equal(out.name[out.n - 1], "flusher_commit_count");
    /* sizes: memcached's answer without -o track_sizes */
    assert_true(run("sizes"));
    assert_int_equal(out.n, 1);
    assert_string_equal(out.name[0], "sizes_status");
    assert_string_equal(out.value[0], "disabled");
    /* unknown names, prefixes and extensions of names: false, silent */
    static const char *const unknown[] = {
        "nosuch", "conn", "connsx", "engin", "setting", "settings2", "Items",
    };
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        assert_false(run(unknown[i]));
        assert_int_equal(out.n, 0);
    }
    /* a length, not a NUL, ends the name */
    memset(&out, 0, sizeof(out));
    assert_true(stats_group("conns and more", 5, collect, &out));
    assert_int_equal(out.n, 1);
}

static void
test_settings(void **state)
{
    (void)state;
    cfg.max_connections = 123;
    cfg.evictions = false;
    cfg.reqs_per_event = 7;
    assert_true(run("settings"));
    /* memcached's names first, in its order */
    assert_string_equal(out.name[0], "maxbytes");
    assert_string_equal(out.name[1], "maxconns");
    assert_string_equal(value_of("maxbytes"), "67108864");
    assert_string_equal(value_of("maxconns"), "123");
    assert_string_equal(value_of("evictions"), "off");
    assert_string_equal(value_of("cas_enabled"), "yes");
    assert_string_equal(value_of("flush_enabled"), "yes");
    assert_string_equal(value_of("domain_socket"), "NULL");
    assert_string_equal(value_of("inter"), "127.0.0.1");
    assert_string_equal(value_of("tcpport"), "11211");
    assert_string_equal(value_of("binding_protocol"), "auto-negotiate");
    assert_string_equal(value_of("num_threads"), "3");
    assert_string_equal(value_of("reqs_per_event"), "7");
    assert_string_equal(value_of("item_size_max"), "1048576");
    assert_string_equal(value_of("umask"), "700");
    assert_string_equal(value_of("shutdown_command"), "no");
    assert_string_equal(value_of("detail_enabled"), "no");
    assert_string_equal(value_of("hash_algorithm"), "murmur3");
    assert_true(find("maxconns") < find("evictions"));
    assert_true(find("evictions") < find("cas_enabled"));
    assert_true(find("cas_enabled") < find("flush_enabled"));
    assert_true(find("flush_enabled") < find("idle_timeout"));
    /* a key named as memcached names it is printed once, there */
    static const char *const once[] = {
        "item_size_max", "reqs_per_event", "idle_timeout", "flush_enabled",
        "evictions", "hashpower_init", "verbosity",
    };
    for (size_t i = 0; i < sizeof(once) / sizeof(once[0]); i++)
        assert_int_equal(count_of(once[i]), 1);
    /* then mckv's own keys, after memcached's last name */
    int last_mc = find("memory_file");
    assert_true(last_mc > 0);
    assert_true(find("engine") > last_mc);
    assert_true(find("max_connections") > last_mc);
    assert_string_equal(value_of("max_connections"), "123");
    assert_true(find("durability") > last_mc);

    /* values follow the config: a UNIX socket, binary only, -F, -C */
    free(cfg.unix_socket);
    cfg.unix_socket = strdup("/tmp/mckv.sock");
    free(cfg.protocol);
    cfg.protocol = strdup("binary");
    cfg.flush_enabled = false;
    cfg.cas = false;
    assert_true(run("settings"));
    assert_string_equal(value_of("domain_socket"), "/tmp/mckv.sock");
    assert_string_equal(value_of("binding_protocol"), "binary");
    assert_string_equal(value_of("flush_enabled"), "no");
    assert_string_equal(value_of("cas_enabled"), "no");
    stats_prefix_enable(true);
    assert_true(run("settings"));
    assert_string_equal(value_of("detail_enabled"), "yes");
    stats_prefix_enable(false);
}

static void
test_reset(void **state)
{
    (void)state;
    fake_ts.cmd_get = 100;
    fake_ts.cmd_set = 5;
    atomic_store(&global_stats.curr_connections, 2);
    atomic_store(&global_stats.total_connections, 50);
    atomic_store(&global_stats.rejected_connections, 3);
    assert_true(run(""));
    assert_string_equal(value_of("cmd_get"), "100");

    unsigned before = sum_calls;
    assert_true(run("reset"));
    assert_int_equal(out.n, 0);          /* the front end answers RESET */
    assert_true(sum_calls > before);     /* the baseline is a sum */
    /* the workers' counters are not written: later sums subtract */
    assert_int_equal(fake_ts.cmd_get, 100);
    assert_true(run(""));
    assert_string_equal(value_of("cmd_get"), "0");
    assert_string_equal(value_of("cmd_set"), "0");
    assert_string_equal(value_of("total_connections"), "0");
    assert_string_equal(value_of("rejected_connections"), "0");
    assert_string_equal(value_of("curr_connections"), "2");   /* a level */
    fake_ts.cmd_get += 4;
    assert_true(run(""));
    assert_string_equal(value_of("cmd_get"), "4");
    struct thread_stats sum;
    stats_sum_threads(&sum);
    assert_int_equal(sum.cmd_get, 4);
}

static void
test_items_and_slabs(void **state)
{
    (void)state;
    assert_true(run("items"));
    assert_int_equal(out.n, 0);   /* no items, no classes */
    assert_true(run("slabs"));
    assert_string_equal(value_of("active_slabs"), "0");
    store("small", 1);
    store("small2", 2);
    store("big", 5000);
    assert_true(run("items"));
    unsigned classes = 0, items = 0;
    for (unsigned i = 0; i < out.n; i++) {
        unsigned cls;
        char field[32];
        assert_int_equal(sscanf(out.name[i], "items:%u:%31s", &cls, field), 2);
        if (strcmp(field, "number") == 0) {
            classes++;
            items += (unsigned)strtoul(out.value[i], NULL, 10);
        }
    }
    assert_int_equal(classes, 2);
    assert_int_equal(items, 3);
    assert_true(run("slabs"));
    assert_string_equal(value_of("active_slabs"), "2");
    assert_true(strtoull(value_of("total_malloced"), NULL, 10) > 5000);
}

static void
test_timings(void **state)
{
    (void)state;
    hist_record(&fake_get_timings, 3);
    hist_record(&fake_get_timings, 100);
    assert_true(run("timings"));
    assert_string_equal(value_of("cmd_get_count"), "2");
    assert_string_equal(value_of("cmd_get_max_us"), "100");
    assert_string_equal(value_of("cmd_set_count"), "0");
    static const char *const names[] = {
        "cmd_get", "cmd_set", "cmd_delete", "cmd_incr_decr", "cmd_touch",
        "cmd_other",
    };
    char name[64];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(name, sizeof(name), "%s_p99_us", names[i]);
        assert_int_equal(count_of(name), 1);
    }
    /* count, p50, p99, p999, max per class, then the registered line */
    assert_int_equal(out.n, CMD_CLASSES * 5 + 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_general, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_items_and_slabs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timings, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
