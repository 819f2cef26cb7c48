/*
 * config_compat.c: what mckv does with each part of memcached 1.6.18's
 * command line that is not one of its own keys (see config_compat.h).
 *
 * The rule: a memcached command line must start mckvd. A flag or -o name
 * with a meaning in mckv maps to its key; one whose job mckv does anyway is
 * accepted silently; one with no meaning (slabs, LRU tuning, extstore) is
 * accepted with a one-line notice; one that would promise what mckv lacks
 * (TLS, proxy mode) fails start-up, since running without
 * it would be open where the operator asked for protection. memcached's own
 * checks of ignored values are not repeated, except that an -o name
 * memcached requires a value for still requires one.
 */
#include <config.h>

#include <getopt.h>
#include <string.h>

#include "server/config_compat.h"

#define WHY_SLABS "mckv has no slab allocator (an item is one malloc block)"
#define WHY_LRU "mckv has one LRU per shard, not memcached's segmented LRU"
#define WHY_CRAWLER "mckv has no LRU crawler"
#define WHY_LOGGER "mckv has no watch command or its log buffers"
#define WHY_TLS "mckv has no TLS (-Z is refused)"
#define WHY_EXT "mckv has no extstore: values past memory_limit stay in " \
                "its own engine (db_path)"
#define WHY_PROXY "mckv is not a proxy"
#define WHY_SANDBOX "mckv has no seccomp sandbox"

/* memcached's one-letter flags that are no key's short flag in options.h.
 * -f, -o, -h, -V and -i are config.c's own. */
const struct compat_opt compat_flags[] = {
    { NULL, 'L', false, COMPAT_SET, "large_pages", "yes",
      NULL },
    { NULL, 'n', true, COMPAT_NOTICE, NULL, NULL, WHY_SLABS },
    { NULL, 'D', true, COMPAT_NOTICE, NULL, NULL,
      "mckv keeps no per-prefix stats (stats detail)" },
    { NULL, 'W', false, COMPAT_NOTICE, NULL, NULL,
      "mckv has no watch command to disable" },
    { NULL, 'N', true, COMPAT_NOTICE, NULL, NULL,
      "connections go to the workers round robin" },
    { NULL, 'e', true, COMPAT_NOTICE, NULL, NULL,
      "mckv keeps its data in its engine (db_path), not a memory file" },
#ifndef HAVE_TLS
    { NULL, 'Z', false, COMPAT_REFUSE, NULL, NULL,
      "TLS is not supported" },
#endif
};
const unsigned compat_flags_count =
    sizeof(compat_flags) / sizeof(compat_flags[0]);

/* memcached's long options whose names are not mckv's (--port, --listen,
 * --threads, --udp-port, --memory-limit, --unix-socket, --unix-mask,
 * --user, --protocol, --help and --version are the same in both). */
const struct compat_long compat_longs[] = {
    { "enable-shutdown", no_argument, 'A' },
    { "enable-ssl", no_argument, 'Z' },
    { "disable-evictions", no_argument, 'M' },
    { "conn-limit", required_argument, 'c' },
    { "lock-memory", no_argument, 'k' },
    { "license", no_argument, 'i' },
    { "enable-coredumps", no_argument, 'r' },
    { "verbose", optional_argument, 'v' },
    { "daemon", no_argument, 'd' },
    { "pidfile", required_argument, 'P' },
    { "slab-growth-factor", required_argument, COMPAT_LETTER_FACTOR },
    { "slab-min-size", required_argument, 'n' },
    { "enable-largepages", no_argument, 'L' },
    { "max-reqs-per-event", required_argument, 'R' },
    { "disable-cas", no_argument, 'C' },
    { "listen-backlog", required_argument, 'b' },
    { "max-item-size", required_argument, 'I' },
    { "enable-sasl", no_argument, 'S' },
    { "disable-flush-all", no_argument, 'F' },
    { "disable-dumping", no_argument, 'X' },
    { "disable-watch", no_argument, 'W' },
    { "memory-file", required_argument, 'e' },
    { "extended", required_argument, 'o' },
    { "napi-ids", required_argument, 'N' },
};
const unsigned compat_longs_count =
    sizeof(compat_longs) / sizeof(compat_longs[0]);

#define SUB(name, needs, action, key, why) \
    { name, 0, needs, action, key, NULL, why }

/* memcached 1.6.18's -o names, in memcached.c's order, then storage.c's. */
const struct compat_opt compat_subopts[] = {
    SUB("maxconns_fast", false, COMPAT_SILENT, NULL,
        "mckv always answers ERROR Too many open connections past "
        "max_connections"),
    SUB("hashpower", true, COMPAT_KEY, "hashpower_init", NULL),
    SUB("no_hashexpand", false, COMPAT_NOTICE, NULL,
        "mckv's hash tables always grow, a few buckets per operation"),
    SUB("slab_reassign", false, COMPAT_NOTICE, NULL, WHY_SLABS),
    SUB("slab_automove", false, COMPAT_NOTICE, NULL, WHY_SLABS),
    SUB("slab_automove_ratio", true, COMPAT_NOTICE, NULL, WHY_SLABS),
    SUB("slab_automove_window", true, COMPAT_NOTICE, NULL, WHY_SLABS),
    SUB("tail_repair_time", true, COMPAT_NOTICE, NULL,
        "mckv never frees an item in use: no LRU tail to repair"),
    SUB("hash_algorithm", true, COMPAT_NOTICE, NULL,
        "mckv has its own hash function"),
    SUB("lru_crawler", false, COMPAT_NOTICE, NULL, WHY_CRAWLER),
    SUB("lru_crawler_sleep", true, COMPAT_NOTICE, NULL, WHY_CRAWLER),
    SUB("lru_crawler_tocrawl", true, COMPAT_NOTICE, NULL, WHY_CRAWLER),
    SUB("lru_maintainer", false, COMPAT_NOTICE, NULL, WHY_LRU),
    SUB("hot_lru_pct", true, COMPAT_NOTICE, NULL, WHY_LRU),
    SUB("warm_lru_pct", true, COMPAT_NOTICE, NULL, WHY_LRU),
    SUB("hot_max_factor", true, COMPAT_NOTICE, NULL, WHY_LRU),
    SUB("warm_max_factor", true, COMPAT_NOTICE, NULL, WHY_LRU),
    SUB("temporary_ttl", true, COMPAT_NOTICE, NULL, WHY_LRU),
    SUB("idle_timeout", true, COMPAT_KEY, "idle_timeout", NULL),
    SUB("watcher_logbuf_size", true, COMPAT_NOTICE, NULL, WHY_LOGGER),
    SUB("worker_logbuf_size", true, COMPAT_NOTICE, NULL, WHY_LOGGER),
    SUB("slab_sizes", true, COMPAT_NOTICE, NULL, WHY_SLABS),
    SUB("slab_chunk_max", false, COMPAT_NOTICE, NULL, WHY_SLABS),
    SUB("track_sizes", false, COMPAT_NOTICE, NULL,
        "mckv has no stats sizes"),
    SUB("no_inline_ascii_resp", false, COMPAT_NOTICE, NULL,
        "memcached 1.6 ignores it too"),
    SUB("modern", false, COMPAT_NOTICE, NULL,
        "memcached 1.6.18 changes no default with it either"),
    SUB("no_modern", false, COMPAT_NOTICE, NULL,
        "mckv has no memcached 1.4 defaults to go back to"),
    SUB("no_chunked_items", false, COMPAT_NOTICE, NULL, WHY_SLABS),
    SUB("no_slab_reassign", false, COMPAT_NOTICE, NULL, WHY_SLABS),
    SUB("no_slab_automove", false, COMPAT_NOTICE, NULL, WHY_SLABS),
    SUB("no_maxconns_fast", false, COMPAT_NOTICE, NULL,
        "mckv always answers ERROR Too many open connections past "
        "max_connections"),
    SUB("inline_ascii_resp", false, COMPAT_NOTICE, NULL,
        "memcached 1.6 ignores it too"),
    SUB("no_lru_crawler", false, COMPAT_NOTICE, NULL, WHY_CRAWLER),
    SUB("no_lru_maintainer", false, COMPAT_NOTICE, NULL, WHY_LRU),
    SUB("no_drop_privileges", false, COMPAT_SILENT, NULL, WHY_SANDBOX),
    SUB("drop_privileges", false, COMPAT_NOTICE, NULL,
        WHY_SANDBOX " (-u still changes the user)"),
    SUB("resp_obj_mem_limit", false, COMPAT_NOTICE, NULL,
        "memcached 1.6 no longer uses it either"),
    SUB("read_buf_mem_limit", true, COMPAT_NOTICE, NULL,
        "mckv bounds each connection's buffers by item_size_max instead"),
#ifdef HAVE_TLS
    /* the keys of options.h's TLS section; memcached's ssl_wbuf_size is
     * in kilobytes (the `value` of a COMPAT_KEY is a suffix) */
    SUB("ssl_chain_cert", true, COMPAT_KEY, "ssl_chain_cert", NULL),
    SUB("ssl_key", true, COMPAT_KEY, "ssl_key", NULL),
    SUB("ssl_verify_mode", true, COMPAT_KEY, "ssl_verify_mode", NULL),
    SUB("ssl_keyformat", true, COMPAT_KEY, "ssl_keyformat", NULL),
    SUB("ssl_ciphers", true, COMPAT_KEY, "ssl_ciphers", NULL),
    SUB("ssl_ca_cert", true, COMPAT_KEY, "ssl_ca_cert", NULL),
    { "ssl_wbuf_size", 0, true, COMPAT_KEY, "ssl_wbuf_size", "k", NULL },
    { "ssl_session_cache", 0, false, COMPAT_SET, "ssl_session_cache", "yes",
      NULL },
    SUB("ssl_kernel_tls", false, COMPAT_NOTICE, NULL,
        "mckv does not hand TLS records to the kernel"),
    SUB("ssl_min_version", true, COMPAT_KEY, "ssl_min_version", NULL),
#else
    SUB("ssl_chain_cert", true, COMPAT_NOTICE, NULL, WHY_TLS),
    SUB("ssl_key", true, COMPAT_NOTICE, NULL, WHY_TLS),
    SUB("ssl_verify_mode", true, COMPAT_NOTICE, NULL, WHY_TLS),
    SUB("ssl_keyformat", true, COMPAT_NOTICE, NULL, WHY_TLS),
    SUB("ssl_ciphers", true, COMPAT_NOTICE, NULL, WHY_TLS),
    SUB("ssl_ca_cert", true, COMPAT_NOTICE, NULL, WHY_TLS),
    SUB("ssl_wbuf_size", true, COMPAT_NOTICE, NULL, WHY_TLS),
    SUB("ssl_session_cache", false, COMPAT_NOTICE, NULL, WHY_TLS),
    SUB("ssl_kernel_tls", false, COMPAT_NOTICE, NULL, WHY_TLS),
    SUB("ssl_min_version", true, COMPAT_NOTICE, NULL, WHY_TLS),
#endif
    SUB("proxy_config", true, COMPAT_REFUSE, NULL, WHY_PROXY),
    SUB("proxy_uring", false, COMPAT_NOTICE, NULL, WHY_PROXY),
    /* memcached's test harness adds it to every start */
    SUB("relaxed_privileges", false, COMPAT_SILENT, NULL, WHY_SANDBOX),
    SUB("sock_cookie_id", true, COMPAT_NOTICE, NULL,
        "mckv sets no socket cookie (SO_MARK)"),
    /* storage.c (extstore) */
    SUB("ext_page_size", true, COMPAT_NOTICE, NULL, WHY_EXT),
    SUB("ext_wbuf_size", true, COMPAT_NOTICE, NULL, WHY_EXT),
    SUB("ext_threads", true, COMPAT_NOTICE, NULL, WHY_EXT),
    SUB("ext_io_depth", true, COMPAT_NOTICE, NULL, WHY_EXT),
    SUB("ext_path", true, COMPAT_NOTICE, NULL, WHY_EXT),
    SUB("ext_item_size", true, COMPAT_NOTICE, NULL, WHY_EXT),
    SUB("ext_item_age", true, COMPAT_NOTICE, NULL, WHY_EXT),
    SUB("ext_low_ttl", true, COMPAT_NOTICE, NULL, WHY_EXT),
    SUB("ext_recache_rate", true, COMPAT_NOTICE, NULL, WHY_EXT),
    SUB("ext_compact_under", true, COMPAT_NOTICE, NULL, WHY_EXT),
    SUB("ext_drop_under", true, COMPAT_NOTICE, NULL, WHY_EXT),
    SUB("ext_max_sleep", true, COMPAT_NOTICE, NULL, WHY_EXT),
    SUB("ext_max_frag", true, COMPAT_NOTICE, NULL, WHY_EXT),
    SUB("ext_drop_unread", false, COMPAT_NOTICE, NULL, WHY_EXT),
    SUB("slab_automove_freeratio", true, COMPAT_NOTICE, NULL, WHY_SLABS),
};
const unsigned compat_subopts_count =
    sizeof(compat_subopts) / sizeof(compat_subopts[0]);

const struct compat_opt *
compat_find_flag(int letter)
{
    for (unsigned i = 0; i < compat_flags_count; i++)
        if (compat_flags[i].letter == letter)
            return &compat_flags[i];
    return NULL;
}

const struct compat_opt *
compat_find_subopt(const char *name, size_t len)
{
    for (unsigned i = 0; i < compat_subopts_count; i++) {
        const char *n = compat_subopts[i].name;
        if (strlen(n) == len && memcmp(n, name, len) == 0)
            return &compat_subopts[i];
    }
    return NULL;
}

/*
 * Only what does something is listed. memcached's test harness reads
 * `-h` to decide what to test (t/lib/MemcachedTest.pm: /sasl/i,
 * /ext_path/i, /proxy_config/i, /enable-ssl/i, /no_drop_privileges/i mean
 * "supported"), so the names of what mckv ignores or refuses stay out of
 * it; mckvd(8) has the whole table.
 */
void
compat_print_help(FILE *out)
{
    fprintf(out,
            "\n"
            "memcached's other flags (the keys above carry the rest):\n"
            "  -f NUMBER, --slab-growth-factor=NUMBER\n"
            "        ignored with a notice: %s\n"
            "  -f FILE\n"
            "        a value that is not a number: as --config=FILE\n"
            "  -o NAME[=VALUE],..., --extended=...\n"
            "        memcached's extended options, below\n"
            "  -i, --license\n"
            "        say where the licenses are and exit\n", WHY_SLABS);
    for (unsigned i = 0; i < compat_flags_count; i++) {
        const struct compat_opt *o = &compat_flags[i];
        const char *lname = NULL;
        if (o->action != COMPAT_SET)
            continue;
        for (unsigned j = 0; j < compat_longs_count && lname == NULL; j++)
            if (compat_longs[j].letter == o->letter)
                lname = compat_longs[j].name;
        fprintf(out, "  -%c%s", o->letter, o->has_arg ? " VALUE" : "");
        if (lname != NULL)
            fprintf(out, ", --%s%s", lname, o->has_arg ? "=VALUE" : "");
        fprintf(out, "\n        sets %s = %s\n", o->key, o->value);
    }
    for (unsigned i = 0; i < compat_subopts_count; i++) {
        const struct compat_opt *o = &compat_subopts[i];
        if (o->action != COMPAT_KEY)
            continue;
        fprintf(out, "  -o %s%s\n        sets %s\n", o->name,
                o->has_arg ? "=VALUE" : "", o->key);
    }
    fprintf(out,
            "  -o maxconns_fast\n"
            "        accepted: what mckv does anyway\n"
            "Every other flag and -o name of memcached 1.6.18 is accepted\n"
            "with a one-line notice when it has no meaning here (slab, LRU,\n"
            "crawler, external storage and encryption tuning), or refused\n"
            "when it asks for what mckv lacks (encryption,\n"
            "proxying); an unknown -o name fails as in memcached. mckvd(8)\n"
            "lists them all.\n");
}
