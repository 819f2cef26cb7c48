/*
 * mcstat_watch.c: mcstat's watch mode (-w).
 *
 * Keeps one connection, samples the general group (and kvstore when the
 * server has it) every interval on a drift-free schedule, and prints
 * per-second rates of the counters. SIGINT and SIGTERM are blocked except
 * while it sleeps in ppoll(), so a signal never interrupts a request half
 * way and is never lost between the check and the sleep.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tools/mcstat.h"

static volatile sig_atomic_t stop_requested;

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One watched quantity: the sum of one or two stats; a counter is shown as
 * a rate per second, a gauge as its current value. */
struct watch_field {
    const char *label;          /* plain and terminal output */
    const char *json_name;
    const char *stat_a, *stat_b;
    bool gauge, kvstore;
};

static const struct watch_field watch_fields[] = {
    { "get/s", "cmd_get_per_s", "cmd_get", NULL, false, false },
    { "set/s", "cmd_set_per_s", "cmd_set", NULL, false, false },
    { "touch/s", "cmd_touch_per_s", "cmd_touch", NULL, false, false },
    { "flush/s", "cmd_flush_per_s", "cmd_flush", NULL, false, false },
    { "delete/s", "delete_per_s", "delete_hits", "delete_misses", false,
      false },
    { "incr/s", "incr_per_s", "incr_hits", "incr_misses", false, false },
    { "decr/s", "decr_per_s", "decr_hits", "decr_misses", false, false },
    { "hits/s", "get_hits_per_s", "get_hits", NULL, false, false },
    { "misses/s", "get_misses_per_s", "get_misses", NULL, false, false },
    { "read_B/s", "bytes_read_per_s", "bytes_read", NULL, false, false },
    { "written_B/s", "bytes_written_per_s", "bytes_written", NULL, false,
      false },
    { "persisted/s", "items_persisted_per_s", "items_persisted", NULL, false,
      true },
    { "queue_depth", "queue_depth", "queue_depth", NULL, true, true },
    { "bg_fetches/s", "bg_fetches_per_s", "bg_fetches", NULL, false, true },
    { "conns", "curr_connections", "curr_connections", NULL, true, false },
    { "items", "curr_items", "curr_items", NULL, true, false },
    { "dirty_items", "dirty_items", "dirty_items", NULL, true, true },
};
#define WATCH_NFIELDS (sizeof(watch_fields) / sizeof(watch_fields[0]))

struct watch_sample {
    double t;
    bool have[WATCH_NFIELDS];
    uint64_t v[WATCH_NFIELDS];
};

static bool
stat_u64(const struct stat_group *g, const char *name, uint64_t *out)
{
    for (size_t i = 0; i < g->n; i++) {
        char *end;
        if (strcmp(g->pairs[i].name, name) != 0)
            continue;
        if (g->pairs[i].value[0] < '0' || g->pairs[i].value[0] > '9')
            return false;
        errno = 0;
        *out = strtoull(g->pairs[i].value, &end, 10);
        return errno == 0 && *end == '\0';
    }
    return false;
}

static int
watch_sample_take(struct mcconn *c, struct stat_group *general,
                  struct stat_group *kvstore, bool *has_kvstore,
                  struct watch_sample *s)
{
    int rc;
    s->t = now_s();
    rc = mcstat_fetch_group(c, general);
    if (rc == MCSTAT_EXIT_GROUP) {
        fprintf(stderr, "mcstat: %s: no general stats\n", c->where);
        return MCSTAT_EXIT_PROTO;
    }
    if (rc == MCSTAT_EXIT_OK && *has_kvstore) {
        rc = mcstat_fetch_group(c, kvstore);
        if (rc == MCSTAT_EXIT_GROUP) {       /* memcached, or no persistence */
            *has_kvstore = false;
            mcstat_group_clear(kvstore);
            rc = MCSTAT_EXIT_OK;
        }
    }
    for (size_t i = 0; i < WATCH_NFIELDS && rc == MCSTAT_EXIT_OK; i++) {
        const struct watch_field *f = &watch_fields[i];
        const struct stat_group *g = f->kvstore ? kvstore : general;
        uint64_t a = 0, b = 0;
        s->have[i] = stat_u64(g, f->stat_a, &a) &&
                     (f->stat_b == NULL || stat_u64(g, f->stat_b, &b));
        s->v[i] = a + b;
    }
    return rc;
}

/* Formats field i of cur (a rate against prev for counters) into buf;
 * false when it is unknown. */
static bool
watch_format(char *buf, size_t size, size_t i, const struct watch_sample *prev,
             const struct watch_sample *cur)
{
    uint64_t delta;
    if (!cur->have[i])
        return false;
    if (watch_fields[i].gauge) {
        snprintf(buf, size, "%" PRIu64, cur->v[i]);
        return true;
    }
    if (!prev->have[i])
        return false;
    /* A counter that went down was reset (stats reset, restart): count from
     * zero. */
    delta = cur->v[i] >= prev->v[i] ? cur->v[i] - prev->v[i] : cur->v[i];
    snprintf(buf, size, "%.1f", (double)delta / (cur->t - prev->t));
    return true;
}

static void
watch_print(FILE *out, const struct options *o, const struct mcconn *c,
            bool tty, const struct watch_sample *prev,
            const struct watch_sample *cur)
{
    char stamp[32], val[64];
    time_t now = time(NULL);
    struct tm tm;

    localtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    if (o->json) {
        fprintf(out, "{\"time\": \"%s\", \"interval_s\": %.3f", stamp,
                cur->t - prev->t);
        for (size_t i = 0; i < WATCH_NFIELDS; i++) {
            bool known = watch_format(val, sizeof(val), i, prev, cur);
            fprintf(out, ", \"%s\": %s", watch_fields[i].json_name,
                    known ? val : "null");
        }
        fputs("}\n", out);
    } else if (tty) {
        fprintf(out, "\033[H\033[2Jmcstat %s  every %g s  %s\n\n",
                c->where, o->watch_s, stamp);
        for (size_t i = 0; i < WATCH_NFIELDS; i++) {
            bool known = watch_format(val, sizeof(val), i, prev, cur);
            fprintf(out, "%-14s %16s\n", watch_fields[i].label,
                    known ? val : "-");
        }
    } else {
        fputs(stamp, out);
        for (size_t i = 0; i < WATCH_NFIELDS; i++) {
            bool known = watch_format(val, sizeof(val), i, prev, cur);
            fprintf(out, " %s=%s", watch_fields[i].label, known ? val : "-");
        }
        fputc('\n', out);
    }
    fflush(out);
}

static void
on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

int
mcstat_watch(struct mcconn *c, const struct options *o)
{
    struct stat_group general = { .title = "general", .key = "" };
    struct stat_group kvstore = { .title = "kvstore", .key = "kvstore" };
    struct watch_sample samples[2];
    struct sigaction sa = { .sa_handler = on_stop_signal };
    sigset_t block, sleep_mask;
    bool has_kvstore = true, tty = isatty(STDOUT_FILENO);
    unsigned long printed = 0;
    double next;
    int rc, cur = 0;

    /* Signals are only delivered inside ppoll(): a request always finishes
     * (within its 5 s timeout) and a signal cannot slip in between the
     * stop_requested check and the sleep. */
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &sleep_mask);
    sigdelset(&sleep_mask, SIGINT);
    sigdelset(&sleep_mask, SIGTERM);
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    rc = watch_sample_take(c, &general, &kvstore, &has_kvstore, &samples[0]);
    if (rc == MCSTAT_EXIT_OK && tty && !o->json) {
        printf("\033[H\033[2Jmcstat %s  every %g s: first sample taken\n",
               c->where, o->watch_s);
        fflush(stdout);
    }
    next = samples[0].t + o->watch_s;
    while (rc == MCSTAT_EXIT_OK && !stop_requested) {
        double left = next - now_s();
        if (left > 0) {
            struct timespec ts = { .tv_sec = (time_t)left };
            ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
            if (ppoll(NULL, 0, &ts, &sleep_mask) < 0 && errno != EINTR) {
                perror("mcstat: ppoll");
                rc = MCSTAT_EXIT_PROTO;
            }
            continue;           /* re-check the flag and the time */
        }
        while (next <= now_s())
            next += o->watch_s;  /* a slow reply skips ticks, no catch-up */
        rc = watch_sample_take(c, &general, &kvstore, &has_kvstore,
                               &samples[1 - cur]);
        if (rc != MCSTAT_EXIT_OK)
            break;
        cur = 1 - cur;
        watch_print(stdout, o, c, tty, &samples[1 - cur], &samples[cur]);
        if (o->count != 0 && ++printed >= o->count)
            break;
    }
    mcstat_group_clear(&general);
    mcstat_group_clear(&kvstore);
    free(general.pairs);
    free(kvstore.pairs);
    return rc;
}
