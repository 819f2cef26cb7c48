/*
 * main.c: mckvd start-up and shutdown.
 *
 * Order: configuration (a bad one stops here with one line and exit 1),
 * logging, cache, listening sockets (so an unusable port fails before any
 * thread starts), workers, then the main thread's event loop: the listener,
 * the one-second clock tick and the signals. SIGTERM/SIGINT stop accepting,
 * let the workers finish replies in flight, and exit 0.
 */
#include <config.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "server/cache.h"
#include "server/config.h"
#include "server/listener.h"
#include "server/persist.h"
#include "server/process.h"
#include "server/stats.h"
#include "server/worker.h"
#include "util/log.h"

static void
on_clock(int fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    cache_clock_tick();
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
    switch (config_parse_args(&cfg, argc, argv, stdout, err, sizeof(err))) {
    case CONFIG_RUN:
        if (config_validate(&cfg, err, sizeof(err)) == 0)
            break;
        fprintf(stderr, "mckvd: %s\n", err);
        config_deinit(&cfg);
        return EXIT_FAILURE;
    case CONFIG_EXIT_OK:
        config_deinit(&cfg);
        return EXIT_SUCCESS;
    case CONFIG_EXIT_ERROR:
        fprintf(stderr, "mckvd: %s\n", err);
        config_deinit(&cfg);
        return EXIT_FAILURE;
    }
    if (log_setup(cfg.log_file) != 0) {
        fprintf(stderr, "mckvd: log_file %s: %s\n", cfg.log_file, strerror(errno));
        config_deinit(&cfg);
        return EXIT_FAILURE;
    }
    log_set_verbosity((int)cfg.verbosity);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(cfg.max_connections);
    evthread_use_pthreads();

    struct cache_options copts = {
        .memory_limit = (size_t)cfg.memory_limit * 1024 * 1024,
        .item_size_max = (uint32_t)cfg.item_size_max,
        .cas_enabled = cfg.cas,
        .persistent = strcmp(cfg.engine, "memory") != 0,
        .on_change = persist_cache_hook,
    };
    struct event_base *base = NULL;
    struct event *clock_ev = NULL, *sigterm_ev = NULL, *sigint_ev = NULL;
    bool workers_started = false;
    bool persist_ready = false;

    if (cache_setup(&copts) != 0) {
        fprintf(stderr, "mckvd: cannot set up the cache: out of memory\n");
        goto out;
    }
    if (persist_setup(&cfg, (unsigned)cfg.threads, err, sizeof(err)) != 0) {
        fprintf(stderr, "mckvd: %s\n", err);
        goto out;
    }
    persist_ready = true;
    stats_setup(&cfg);
    base = event_base_new();
    if (base == NULL) {
        fprintf(stderr, "mckvd: cannot create the event loop\n");
        goto out;
    }
    /* Signals first: a SIGTERM that arrives as soon as the port accepts
     * must already mean a graceful stop. */
    sigterm_ev = evsignal_new(base, SIGTERM, on_stop_signal, base);
    sigint_ev = evsignal_new(base, SIGINT, on_stop_signal, base);
    if (sigterm_ev == NULL || sigint_ev == NULL ||
        event_add(sigterm_ev, NULL) != 0 || event_add(sigint_ev, NULL) != 0) {
        fprintf(stderr, "mckvd: cannot install signal handlers\n");
        goto out;
    }
    if (listener_setup(base, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "mckvd: %s\n", err);
        goto out;
    }
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

    log_info("mckvd %s started: listening on %s:%u, %u threads, %lu MB, "
             "item_size_max %lu", PACKAGE_VERSION, cfg.listen,
             (unsigned)cfg.port, (unsigned)cfg.threads,
             (unsigned long)cfg.memory_limit, (unsigned long)cfg.item_size_max);
    event_base_dispatch(base);
    status = EXIT_SUCCESS;

out:
    if (workers_started)
        workers_stop();
    /* after the workers: every change they queued gets to disk */
    if (persist_ready)
        persist_stop();
    workers_free();
    listener_close();
    if (clock_ev != NULL)
        event_free(clock_ev);
    if (sigterm_ev != NULL)
        event_free(sigterm_ev);
    if (sigint_ev != NULL)
        event_free(sigint_ev);
    if (base != NULL)
        event_base_free(base);
    cache_teardown();
    if (status == EXIT_SUCCESS)
        log_info("mckvd stopped");
    log_teardown();
    config_deinit(&cfg);
    return status;
}
