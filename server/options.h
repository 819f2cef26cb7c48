/*
 * options.h: every configuration key, declared once.
 *
 * The X-macro below generates the config struct, the INI parser's key table,
 * the long options (--key-name, underscores as dashes), `--help` and
 * `stats settings`. Add a key here and it appears everywhere.
 *
 * X(name, section, type, default, min, max, short_flag, reloadable, help)
 *   type: OPT_STR, OPT_UINT (decimal), OPT_SIZE (bytes; k/m/g suffixes),
 *         OPT_MB (megabytes, like memcached -m), OPT_BOOL (yes/no/true/false/1/0),
 *         OPT_OCTAL (a mode, like memcached -a);
 *         OPT_ENUM is expressed as OPT_STR + a check in config_value.c.
 *   min/max bound numeric values (inclusive).
 *   short_flag: memcached's one-letter flag, or 0. On a boolean it takes no
 *     value and sets the opposite of the default, as memcached's do
 *     (-F: flush_enabled = no, -A: shutdown_enabled = yes, -X: dump_enabled
 *     = no).
 *   reloadable: can change on SIGHUP without a restart.
 *
 * memcached's flags and -o names that are no key here (-f FACTOR, -n, -L,
 * -o slab_reassign, ...) are handled by config_compat.c's tables.
 * Where a key means what a memcached `stats settings` name means, it has
 * that name (item_size_max, reqs_per_event, idle_timeout, flush_enabled,
 * dump_enabled, evictions, hashpower_init), so that stat is printed once.
 */
#ifndef MCKV_SERVER_OPTIONS_H
#define MCKV_SERVER_OPTIONS_H

#define MCKV_OPTIONS(X)                                                        \
    X(listen, "server", OPT_STR, "127.0.0.1", 0, 0, 'l', 0,                    \
      "address to listen on (IPv4 or IPv6 literal, or a host name); a "       \
      "list as memcached -l: [notls:]HOST[:PORT],...")                        \
    X(port, "server", OPT_UINT, "11211", 1, 65535, 'p', 0,                     \
      "TCP port to listen on")                                                 \
    X(udp_port, "server", OPT_UINT, "0", 0, 0, 'U', 0,                         \
      "UDP port (UDP is not supported: must be 0)")                            \
    X(threads, "server", OPT_UINT, "4", 1, 256, 't', 0,                        \
      "number of worker threads")                                              \
    X(max_connections, "server", OPT_UINT, "1024", 1, 1048576, 'c', 0,         \
      "maximum simultaneous client connections")                               \
    X(backlog, "server", OPT_UINT, "1024", 1, 65535, 'b', 0,                   \
      "listen(2) backlog")                                                     \
    X(unix_socket, "server", OPT_STR, "", 0, 0, 's', 0,                        \
      "UNIX domain socket to listen on instead of TCP (empty: TCP)")          \
    X(unix_mask, "server", OPT_OCTAL, "700", 0, 0777, 'a', 0,                  \
      "access mode of the UNIX socket, octal like chmod")                     \
    X(protocol, "server", OPT_STR, "auto", 0, 0, 'B', 0,                       \
      "protocol accepted: auto (by the first byte), ascii or binary")         \
    X(reqs_per_event, "server", OPT_UINT, "20", 1, 1000000, 'R', 0,            \
      "requests one connection runs before the others get a turn")            \
    X(idle_timeout, "server", OPT_UINT, "0", 0, 31536000, 0, 0,                \
      "close TCP connections idle this many seconds (0: never; "             \
      "memcached -o idle_timeout)")                                           \
    X(flush_enabled, "server", OPT_BOOL, "yes", 0, 1, 'F', 0,                  \
      "allow flush_all (-F turns it off)")                                   \
    X(shutdown_enabled, "server", OPT_BOOL, "no", 0, 1, 'A', 0,                \
      "allow the shutdown command (-A turns it on)")                         \
    X(debug_commands, "server", OPT_BOOL, "no", 0, 1, 0, 0,                   \
      "accept memcached-debug's test commands (debugtime: moves the "       \
      "clock); for test suites only")                                       \
    X(dump_enabled, "server", OPT_BOOL, "yes", 0, 1, 'X', 0,                   \
      "allow stats cachedump and lru_crawler metadump (-X turns them off)")  \
    X(sasl, "server", OPT_BOOL, "no", 0, 1, 'S', 0,                           \
      "binary connections authenticate with SASL first (cyrus-sasl, "      \
      "application memcached; -S, --enable-sasl)")                         \
    X(auth_file, "server", OPT_STR, "", 0, 0, 'Y', 0,                         \
      "text connections authenticate first with a user:password line of "  \
      "this file, reread on SIGHUP (empty: none; -Y)")                      \
    X(memory_limit, "cache", OPT_MB, "64", 1, 1048576, 'm', 1,                 \
      "item memory in megabytes")                                              \
    X(item_size_max, "cache", OPT_SIZE, "1m", 1024, 1073741824, 'I', 0,        \
      "largest item (key + value + header) in bytes; k/m suffixes allowed")   \
    X(cas, "cache", OPT_BOOL, "yes", 0, 1, 'C', 0,                             \
      "keep CAS unique values (-C turns this off)")                           \
    X(evictions, "cache", OPT_BOOL, "yes", 0, 1, 'M', 0,                       \
      "evict when memory is full; no: a store fails with out of memory "     \
      "instead (-M)")                                                         \
    X(hashpower_init, "cache", OPT_UINT, "0", 0, 32, 0, 0,                     \
      "size the hash tables for 2^N items at start, 12..32 "                 \
      "(0: grow as needed; memcached -o hashpower)")                         \
    X(large_pages, "cache", OPT_BOOL, "yes", 0, 1, 0, 0,                       \
      "back the item heap with transparent huge pages (glibc.malloc.hugetlb)") \
    X(engine, "persistence", OPT_STR, "sqlite", 0, 0, 0, 0,                   \
      "storage engine: sqlite (persistent), rocksdb (persistent, an LSM "     \
      "for data far larger than memory; when built) or memory (a plain cache)") \
    X(db_path, "persistence", OPT_STR, "data/mckv.db", 0, 0, 0, 0,             \
      "database file (sqlite) or directory (rocksdb); its parent is created") \
    X(durability, "persistence", OPT_STR, "async", 0, 0, 0, 0,                 \
      "async: reply once queued; sync: reply after the commit holding it")    \
    X(flush_interval_ms, "persistence", OPT_UINT, "100", 1, 60000, 0, 1,       \
      "the oldest an unpersisted write may get in async mode (ms)")           \
    X(batch_max_items, "persistence", OPT_UINT, "100000", 1, 1000000, 0, 0,    \
      "most keys committed in one transaction")                               \
    X(sqlite_synchronous, "persistence", OPT_STR, "normal", 0, 0, 0, 0,        \
      "SQLite synchronous pragma: normal or full")                            \
    X(sqlite_cache_mb, "persistence", OPT_UINT, "0", 0, 1048576, 0, 0,         \
      "the flusher's SQLite page cache in MB; 0: memory_limit / 8, "          \
      "at least 32 (each fetcher has 8 MB); rocksdb: the block cache"         \
      ", shared by all")                                                      \
    X(fetchers, "persistence", OPT_UINT, "2", 1, 64, 0, 0,                     \
      "threads reading from disk (background fetches and warmup)")            \
    X(dirty_soft_limit_mb, "persistence", OPT_UINT, "128", 1, 1048576, 0, 1,   \
      "unpersisted MB past which write replies are slowed down "              \
      "(at most half the hard limit)")              \
    X(dirty_hard_limit_mb, "persistence", OPT_UINT, "256", 1, 1048576, 0, 1,   \
      "unpersisted MB past which writes get a temporary failure "             \
      "(at most half of memory_limit)")             \
    X(engine_delay_us, "persistence", OPT_UINT, "0", 0, 1000000, 0, 0,         \
      "testing: delay every engine write by this many microseconds")          \
    X(verbosity, "logging", OPT_UINT, "0", 0, 2, 'v', 1,                       \
      "0 = start/stop/errors, 1 = also connections, 2 = every command")       \
    X(log_file, "logging", OPT_STR, "", 0, 0, 0, 0,                            \
      "log file (empty: standard error)")                                    \
    X(daemonize, "process", OPT_BOOL, "no", 0, 1, 'd', 0,                      \
      "run in the background (stays in the start directory)")               \
    X(user, "process", OPT_STR, "", 0, 0, 'u', 0,                              \
      "started as root: become this user once the port is bound")           \
    X(pid_file, "process", OPT_STR, "", 0, 0, 'P', 0,                          \
      "write the pid to this file (removed at a clean exit)")               \
    X(memory_lock, "process", OPT_BOOL, "no", 0, 1, 'k', 0,                    \
      "lock every page in memory with mlockall(2)")                          \
    X(core_dumps, "process", OPT_BOOL, "no", 0, 1, 'r', 0,                     \
      "raise the core file size limit to its maximum")                      \
    MCKV_OPTIONS_TLS(X)

/* TLS keys (memcached -Z and its -o ssl_* names), only in a TLS build, so
 * that `-h` mentions enable-ssl (what memcached's t/ looks for) only when
 * the server has it. Names and units are memcached's `stats settings`. */
#ifdef HAVE_TLS
#define MCKV_OPTIONS_TLS(X)                                                    \
    X(ssl_enabled, "tls", OPT_BOOL, "no", 0, 1, 'Z', 0,                        \
      "TLS on every listener except notls: ones (-Z, --enable-ssl)")         \
    X(ssl_chain_cert, "tls", OPT_STR, "", 0, 0, 0, 0,                          \
      "server certificate chain, PEM (-o ssl_chain_cert)")                   \
    X(ssl_key, "tls", OPT_STR, "", 0, 0, 0, 0,                                 \
      "server private key (empty: in ssl_chain_cert; -o ssl_key)")           \
    X(ssl_keyformat, "tls", OPT_UINT, "1", 1, 2, 0, 0,                         \
      "private key format: 1 PEM, 2 DER (-o ssl_keyformat)")                 \
    X(ssl_verify_mode, "tls", OPT_UINT, "0", 0, 3, 0, 0,                       \
      "client certificates: 0 none, 1 request, 2 require, 3 once "           \
      "(-o ssl_verify_mode)")                                                \
    X(ssl_ciphers, "tls", OPT_STR, "", 0, 0, 0, 0,                             \
      "OpenSSL cipher list for TLS 1.2 and below (empty: OpenSSL's "         \
      "default; -o ssl_ciphers)")                                            \
    X(ssl_ca_cert, "tls", OPT_STR, "", 0, 0, 0, 0,                             \
      "PEM file of the CAs client certificates are checked against "         \
      "(-o ssl_ca_cert)")                                                    \
    X(ssl_wbuf_size, "tls", OPT_SIZE, "16k", 1024, 16777216, 0, 0,             \
      "per-connection TLS output buffer in bytes (-o ssl_wbuf_size takes "   \
      "kilobytes, as memcached)")                                            \
    X(ssl_session_cache, "tls", OPT_BOOL, "no", 0, 1, 0, 0,                    \
      "server-side session cache for resumption (-o ssl_session_cache)")     \
    X(ssl_min_version, "tls", OPT_UINT, "2", 0, 3, 0, 0,                       \
      "oldest protocol accepted: 0 TLS 1.0, 1 TLS 1.1, 2 TLS 1.2, "          \
      "3 TLS 1.3 (-o ssl_min_version)")
#else
#define MCKV_OPTIONS_TLS(X)
#endif

enum opt_type { OPT_STR, OPT_UINT, OPT_SIZE, OPT_MB, OPT_BOOL, OPT_OCTAL };

#endif
