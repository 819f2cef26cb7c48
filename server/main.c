/*
 * main.c: mckvd start-up and shutdown.
 *
 * Order: configuration (a bad one stops here with one line and exit 1),
 * logging, core file limit and -d (fork before any thread exists), memory
 * locking (not inherited across fork), the event loop and its signals, the
 * listening sockets (so an unusable port fails before any thread starts),
 * -u (root is dropped once a TCP port is bound, or before a UNIX socket is
 * made, and before the database is opened, so the socket and the database
 * files belong to that user), cache, persistence, workers,
 * the pid file, then the main thread's event loop: the listener, the
 * one-second clock tick and the signals.
 *
 * Signals, as memcached 1.6.18 where it has them: SIGTERM, SIGINT and
 * SIGUSR1 (memcached's graceful stop) all stop accepting, let the workers
 * finish replies in flight, write every queued change to disk and exit 0.
 * SIGHUP reloads the configuration file (memcached reloads only its -Y
 * auth file, and ignores SIGHUP under -d; mckv reloads under -d too).
 * SIGUSR2 keeps its default action, as in memcached: it ends the process
 * at once, without the drain.
 */
#include <config.h>

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "server/auth_file.h"
#include "server/cache.h"
#include "server/config.h"
#include "server/conn_tls.h"
#include "server/daemon.h"
#include "server/listener.h"
#include "server/persist.h"
#include "server/process.h"
#include "server/sasl_auth.h"
#include "server/stats.h"
#include "server/tls.h"
#include "server/worker.h"
#include "util/log.h"

static void
on_clock(int fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    cache_clock_tick();
    /* the counts of rate-limited log lines whose burst has stopped */
    log_limit_flush(false);
}

static void
on_stop_signal(int sig, short what, void *arg)
{
    struct event_base *base = arg;
    (void)what;
    log_info("signal %d (%s): stopping", sig, strsignal(sig));
    listener_close();
    event_base_loopexit(base, NULL);
}

struct reload_ctx {
    int argc;
    char **argv;
    struct config *cfg;
};

struct kv_list {
    char names[64][32];
    char values[64][256];
    int n;
};

static void
collect_kv(void *ctx, const char *name, const char *value)
{
    struct kv_list *l = ctx;
    if (l->n >= 64)
        return;
    snprintf(l->names[l->n], sizeof(l->names[0]), "%s", name);
    snprintf(l->values[l->n], sizeof(l->values[0]), "%s", value);
    l->n++;
}

/*
 * SIGHUP: reads the configuration again (the file, then the command line
 * over it, as at start). Keys that can change live take their new values;
 * other changed keys are reported as needing a restart; a bad file is
 * rejected whole and the running configuration kept. Main thread.
 */
static void
on_reload_signal(int sig, short what, void *arg)
{
    struct reload_ctx *r = arg;
    struct config *cfg = r->cfg;
    struct config fresh;
    char err[512] = "";
    (void)sig;
    (void)what;

    /* -Y: the file is read again (memcached's only reload); a bad one
     * leaves the users in force */
    if (cfg->auth_file[0] != '\0') {
        if (auth_file_load(cfg->auth_file, err, sizeof(err)) == 0)
            log_info("SIGHUP: %s reloaded", cfg->auth_file);
        else
            log_error("SIGHUP: auth_file rejected, the running one is kept: %s",
                      err);
    }
    if (cfg->config_file == NULL) {
        log_info("SIGHUP: no configuration file (--config) to reload");
        return;
    }
    if (config_init(&fresh) != 0)
        return;
    FILE *devnull = fopen("/dev/null", "w");
    /* quiet: --help and the notices were printed at start */
    enum config_action a = config_parse_args(&fresh, r->argc, r->argv,
                                             devnull != NULL ? devnull : stderr,
                                             NULL, err, sizeof(err));
    if (devnull != NULL)
        fclose(devnull);
    if (a != CONFIG_RUN || config_validate(&fresh, err, sizeof(err)) != 0) {
        log_error("SIGHUP: configuration rejected, the running one is kept: %s",
                  err);
        config_deinit(&fresh);
        return;
    }
    static struct kv_list old, now;
    old.n = now.n = 0;
    config_each(cfg, collect_kv, &old);
    config_each(&fresh, collect_kv, &now);
    unsigned changed = 0;
    for (int i = 0; i < old.n && i < now.n; i++) {
        if (strcmp(old.values[i], now.values[i]) == 0)
            continue;
        changed++;
        if (!config_key_reloadable(old.names[i])) {
            log_info("SIGHUP: %s changed (%s -> %s): needs a restart; the "
                     "running value is kept", old.names[i], old.values[i],
                     now.values[i]);
            continue;
        }
        log_info("SIGHUP: %s: %s -> %s", old.names[i], old.values[i],
                 now.values[i]);
    }
    /* the keys options.h marks reloadable; stats readers load them with
     * relaxed atomics */
    __atomic_store_n(&cfg->verbosity, fresh.verbosity, __ATOMIC_RELAXED);
    __atomic_store_n(&cfg->memory_limit, fresh.memory_limit, __ATOMIC_RELAXED);
    __atomic_store_n(&cfg->flush_interval_ms, fresh.flush_interval_ms, __ATOMIC_RELAXED);
    __atomic_store_n(&cfg->dirty_soft_limit_mb, fresh.dirty_soft_limit_mb, __ATOMIC_RELAXED);
    __atomic_store_n(&cfg->dirty_hard_limit_mb, fresh.dirty_hard_limit_mb, __ATOMIC_RELAXED);
    log_set_verbosity((int)fresh.verbosity);
    cache_set_memory_limit((size_t)fresh.memory_limit * 1024 * 1024);
    persist_set_limits(fresh.dirty_soft_limit_mb, fresh.dirty_hard_limit_mb,
                       fresh.memory_limit, (uint32_t)fresh.flush_interval_ms);
    log_info("SIGHUP: %s reloaded, %u key%s changed", cfg->config_file, changed,
             changed == 1 ? "" : "s");
    config_deinit(&fresh);
}

/* -u USER when root: 0, or -1 after printing why. Main thread. */
static int
become_user(const struct config *cfg)
{
    char err[256];

    if (cfg->user[0] == '\0')
        return 0;
    if (daemon_become_user(cfg->user, err, sizeof(err)) != 0) {
        fprintf(stderr, "mckvd: %s\n", err);
        return -1;
    }
    log_verbose("user %s: running as uid %u", cfg->user, (unsigned)getuid());
    return 0;
}

/* Makes room for max_connections descriptors when the hard limit allows. */
static void
raise_fd_limit(uint64_t max_connections)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)max_connections + 64;
    if (rl.rlim_cur >= want)
        return;
    rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
        log_error("file descriptor limit %lu is below max_connections %lu + 64",
                  (unsigned long)rl.rlim_cur, (unsigned long)max_connections);
}

/* Notices of the command line parse, kept in memory until printed. */
struct held_notes {
    FILE *out;      /* stderr when memory could not be had */
    char *buf;
    size_t len;
};

static void
notes_hold(struct held_notes *n)
{
    n->buf = NULL;
    n->len = 0;
    n->out = open_memstream(&n->buf, &n->len);
    if (n->out == NULL)
        n->out = stderr;
}

/* Prints what was held to stderr; idempotent. */
static void
notes_release(struct held_notes *n)
{
    if (n->out != stderr && n->out != NULL) {
        fclose(n->out);
        if (n->len > 0)
            fwrite(n->buf, 1, n->len, stderr);
        free(n->buf);
        n->buf = NULL;
    }
    n->out = NULL;
}

/*
 * large_pages: glibc backs its malloc heap with transparent huge pages when
 * the tunable glibc.malloc.hugetlb=1 is set (it then madvises each heap
 * extension), and it reads tunables once, at exec. So mckvd executes
 * itself again, once, with the tunable added: same pid, same arguments,
 * nothing opened yet. Fewer page faults and TLB misses: the warmup of 1M
 * 1 KiB items took 0.8 s instead of 1.3-1.9 s; RSS of 1M small items
 * moved by 0.5% (docs/benchmarks.md). The kernel decides in the end
 * (/sys/kernel/mm/transparent_hugepage/enabled must not be "never"). A
 * GLIBC_TUNABLES that names the tunable already is left as it is, and
 * nothing is done under valgrind (its preload library is in LD_PRELOAD).
 */
static void
large_pages_reexec(char **argv)
{
    const char *t = getenv("GLIBC_TUNABLES");
    if (t != NULL && strstr(t, "glibc.malloc.hugetlb") != NULL)
        return;
    /* valgrind would not follow the exec: the server would leave it */
    const char *pre = getenv("LD_PRELOAD");
    if (pre != NULL && strstr(pre, "vgpreload") != NULL)
        return;
    bool had = t != NULL;
    size_t oldlen = had ? strlen(t) : 0;
    char *v = NULL;
    if (asprintf(&v, "%s%sglibc.malloc.hugetlb=1", t != NULL ? t : "",
                 t != NULL && *t != '\0' ? ":" : "") < 0)
        return;
    /* the file itself, not /proc/self/exe: the process name comes from it */
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0 && setenv("GLIBC_TUNABLES", v, 1) == 0) {
        self[n] = '\0';
        execv(self, argv);
    }
    fprintf(stderr, "mckvd: large_pages: cannot execute myself again (%s); "
            "going on with normal pages\n", strerror(errno));
    if (had) {   /* as it was: v begins with the old value */
        v[oldlen] = '\0';
        setenv("GLIBC_TUNABLES", v, 1);
    } else {
        unsetenv("GLIBC_TUNABLES");
    }
    free(v);
}

int
main(int argc, char **argv)
{
    struct config cfg;
    char err[512] = "";
    int status = EXIT_FAILURE;

    if (config_init(&cfg) != 0) {
        fprintf(stderr, "mckvd: out of memory\n");
        return EXIT_FAILURE;
    }
    /* The notices (-f 1.25: ignored: ...) are held back until it is known
     * that large_pages does not execute mckvd again, which would print
     * them a second time. */
    struct held_notes notes;
    notes_hold(&notes);
    switch (config_parse_args(&cfg, argc, argv, stdout, notes.out, err,
                              sizeof(err))) {
    case CONFIG_RUN:
        if (config_validate(&cfg, err, sizeof(err)) == 0)
            break;
        notes_release(&notes);
        fprintf(stderr, "mckvd: %s\n", err);
        config_deinit(&cfg);
        return EXIT_FAILURE;
    case CONFIG_EXIT_OK:
        notes_release(&notes);
        config_deinit(&cfg);
        return EXIT_SUCCESS;
    case CONFIG_EXIT_ERROR:
        notes_release(&notes);
        fprintf(stderr, "mckvd: %s\n", err);
        config_deinit(&cfg);
        return EXIT_FAILURE;
    }
    if (cfg.large_pages)
        large_pages_reexec(argv);   /* returns only when it did not exec */
    notes_release(&notes);
    if (log_setup(cfg.log_file) != 0) {
        fprintf(stderr, "mckvd: log_file %s: %s\n", cfg.log_file, strerror(errno));
        config_deinit(&cfg);
        return EXIT_FAILURE;
    }
    log_set_verbosity((int)cfg.verbosity);
    if ((cfg.core_dumps && daemon_allow_core_files(err, sizeof(err)) != 0) ||
        (cfg.daemonize && daemon_detach(err, sizeof(err)) != 0)) {
        fprintf(stderr, "mckvd: %s\n", err);
        log_teardown();
        config_deinit(&cfg);
        return EXIT_FAILURE;
    }
    /* memcached warns and goes on */
    if (cfg.memory_lock && daemon_lock_memory(err, sizeof(err)) != 0)
        log_error("%s; going on without", err);
    signal(SIGPIPE, SIG_IGN);
    /* One malloc arena. Items are allocated on one thread (a worker, a
     * fetcher) and freed on another (eviction, the flusher's release), and
     * glibc's per-thread arenas then hold freed memory the limit no longer
     * counts: with 1 GiB of data through -m 256, peak RSS was 578 MB with
     * the default arenas and 329 MB with one; throughput did not move
     * (binary, pipeline 16, 1 KiB: 1.12M vs 1.25M ops/s, within noise).
     * MALLOC_ARENA_MAX in the environment still wins. */
    if (getenv("MALLOC_ARENA_MAX") == NULL)
        mallopt(M_ARENA_MAX, 1);
    raise_fd_limit(cfg.max_connections);
    evthread_use_pthreads();

    struct cache_options copts = {
        .memory_limit = (size_t)cfg.memory_limit * 1024 * 1024,
        .item_size_max = (uint32_t)cfg.item_size_max,
        /* -C hides CAS from clients (process.c); inside, every item
         * keeps one: it orders flushes and writes, on disk too */
        .cas_enabled = true,
        .flush_by_second = !cfg.cas,
        .evict_disabled = !cfg.evictions,
        .persistent = strcmp(cfg.engine, "memory") != 0,
        .on_change = persist_cache_hook,
    };
    struct event_base *base = NULL;
    struct event *clock_ev = NULL, *sigterm_ev = NULL, *sigint_ev = NULL;
    struct event *sighup_ev = NULL, *sigusr1_ev = NULL;
    struct reload_ctx reload = { argc, argv, &cfg };
    bool workers_started = false;
    bool persist_ready = false;
    bool pid_file_written = false;

    base = event_base_new();
    if (base == NULL) {
        fprintf(stderr, "mckvd: cannot create the event loop\n");
        goto out;
    }
    /* Signals first: a SIGTERM that arrives as soon as the port accepts
     * must already mean a graceful stop (libevent records it until the
     * loop runs). */
    sigterm_ev = evsignal_new(base, SIGTERM, on_stop_signal, base);
    sigint_ev = evsignal_new(base, SIGINT, on_stop_signal, base);
    sigusr1_ev = evsignal_new(base, SIGUSR1, on_stop_signal, base);
    sighup_ev = evsignal_new(base, SIGHUP, on_reload_signal, &reload);
    if (sigterm_ev == NULL || sigint_ev == NULL || sigusr1_ev == NULL ||
        sighup_ev == NULL || event_add(sigterm_ev, NULL) != 0 ||
        event_add(sigint_ev, NULL) != 0 || event_add(sigusr1_ev, NULL) != 0 ||
        event_add(sighup_ev, NULL) != 0) {
        fprintf(stderr, "mckvd: cannot install signal handlers\n");
        goto out;
    }
    /* -Z: the certificate and key are read now, as the starting user
     * (often the only one that may read the key); a bad one stops here */
    if (tls_setup(&cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "mckvd: %s\n", err);
        goto out;
    }
#ifdef HAVE_TLS
    conn_tls_setup(cfg.ssl_wbuf_size);
#endif
    /* Authentication before the port: a client must never find it open
     * while a bad auth file or SASL setup is about to stop the start. */
    if (cfg.auth_file[0] != '\0' &&
        auth_file_load(cfg.auth_file, err, sizeof(err)) != 0) {
        fprintf(stderr, "mckvd: auth_file: %s\n", err);
        goto out;
    }
    if (cfg.sasl && sasl_auth_setup((unsigned)cfg.threads, err, sizeof(err)) != 0) {
        fprintf(stderr, "mckvd: %s\n", err);
        goto out;
    }
    /* -u: a TCP port may need root to be bound, so root goes after it; a
     * UNIX socket does not, and is made by the user so that it owns it
     * (memcached's order too) */
    bool unix_socket = cfg.unix_socket[0] != '\0';
    err[0] = '\0';
    if ((unix_socket && become_user(&cfg) != 0) ||
        listener_setup(base, &cfg, err, sizeof(err)) != 0 ||
        (!unix_socket && become_user(&cfg) != 0)) {
        if (err[0] != '\0')
            fprintf(stderr, "mckvd: %s\n", err);
        goto out;
    }
    if (cache_setup(&copts) != 0) {
        fprintf(stderr, "mckvd: cannot set up the cache: out of memory\n");
        goto out;
    }
    struct process_options popts = {
        .flush_enabled = cfg.flush_enabled,
        .shutdown_enabled = cfg.shutdown_enabled,
        .dump_enabled = cfg.dump_enabled,
        .debug_commands = cfg.debug_commands,
        .cas_visible = cfg.cas,
        .on_delayed_flush = persist_schedule_flush,
    };
    process_setup(&popts);
    /* memcached -o hashpower=N: room for 2^N items without a resize */
    if (cfg.hashpower_init > 0)
        cache_reserve(UINT64_C(1) << cfg.hashpower_init);
    if (persist_setup(&cfg, (unsigned)cfg.threads, err, sizeof(err)) != 0) {
        fprintf(stderr, "mckvd: %s\n", err);
        goto out;
    }
    persist_ready = true;
    stats_setup(&cfg);
    if (workers_start(&cfg, (unsigned)cfg.threads) != 0) {
        fprintf(stderr, "mckvd: cannot start %u worker threads\n",
                (unsigned)cfg.threads);
        goto out;
    }
    workers_started = true;
    if (persist_start(err, sizeof(err)) != 0) {
        fprintf(stderr, "mckvd: %s\n", err);
        goto out;
    }

    clock_ev = event_new(base, -1, EV_PERSIST, on_clock, NULL);
    struct timeval second = { 1, 0 };
    event_add(clock_ev, &second);

    if (cfg.pid_file[0] != '\0') {
        if (daemon_pid_file_write(cfg.pid_file, err, sizeof(err)) != 0) {
            fprintf(stderr, "mckvd: %s\n", err);
            goto out;
        }
        pid_file_written = true;
    }
    if (cfg.unix_socket[0] != '\0')
        log_info("mckvd %s started: listening on %s, %u threads, %lu MB, "
                 "item_size_max %lu", PACKAGE_VERSION, cfg.unix_socket,
                 (unsigned)cfg.threads, (unsigned long)cfg.memory_limit,
                 (unsigned long)cfg.item_size_max);
    else
        /* a -l list gives its own ports: -p is their default */
        log_info("mckvd %s started: listening on %s%s%u%s%s, %u threads, "
                 "%lu MB, item_size_max %lu", PACKAGE_VERSION, cfg.listen,
                 strchr(cfg.listen, ',') != NULL ? " (port " : ":",
                 (unsigned)cfg.port,
                 strchr(cfg.listen, ',') != NULL ? ")" : "",
                 tls_enabled() ? ", TLS" : "", (unsigned)cfg.threads,
                 (unsigned long)cfg.memory_limit,
                 (unsigned long)cfg.item_size_max);
    /* -d: the parent exits 0 now; stdio goes to /dev/null unless -v */
    daemon_ready(cfg.verbosity > 0);
    event_base_dispatch(base);
    status = EXIT_SUCCESS;

out:
    if (workers_started)
        workers_stop();
    /* after the workers: every change they queued gets to disk */
    if (persist_ready)
        persist_stop();
    workers_free();
    /* after the workers: the sessions of their connections are disposed of */
    sasl_auth_teardown();
    auth_file_teardown();
    listener_close();
    tls_teardown();   /* after the workers: no connection uses it now */
    if (clock_ev != NULL)
        event_free(clock_ev);
    if (sigterm_ev != NULL)
        event_free(sigterm_ev);
    if (sigint_ev != NULL)
        event_free(sigint_ev);
    if (sighup_ev != NULL)
        event_free(sighup_ev);
    if (sigusr1_ev != NULL)
        event_free(sigusr1_ev);
    if (base != NULL)
        event_base_free(base);
    cache_teardown();
    if (pid_file_written)
        daemon_pid_file_remove(cfg.pid_file);
    log_limit_flush(true);   /* what the limits left out, counted */
    if (status == EXIT_SUCCESS)
        log_info("mckvd stopped");
    log_teardown();
    config_deinit(&cfg);
    return status;
}
