/* log.c: see log.h. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

atomic_int log_verbosity = LOG_LEVEL_INFO;
static int log_fd = STDERR_FILENO;

int
log_setup(const char *path)
{
    if (path == NULL || path[0] == '\0') {
        log_fd = STDERR_FILENO;
        return 0;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    log_fd = fd;
    return 0;
}

void
log_teardown(void)
{
    if (log_fd != STDERR_FILENO)
        close(log_fd);
    log_fd = STDERR_FILENO;
}

void
log_set_verbosity(int level)
{
    if (level < 0)
        level = 0;
    /* memcached caps the verbosity command at its MAX_VERBOSITY_LEVEL (2),
     * which `stats settings` then shows */
    if (level > LOG_LEVEL_DEBUG)
        level = LOG_LEVEL_DEBUG;
    atomic_store_explicit(&log_verbosity, level, memory_order_relaxed);
}

/* Formats one line (timestamp, pid, level, message, then `suffix`) and
 * writes it with one write(2). */
static void
log_vwrite(int level, const char *suffix, const char *fmt, va_list ap)
{
    static const char *const names[] = { "error", "info", "verbose", "debug" };
    char line[2048];   /* the damaged-database line is long */
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    int idx = level + 1;
    if (idx < 0)
        idx = 0;
    if (idx > 3)
        idx = 3;
    n += snprintf(line + n, sizeof(line) - (size_t)n, ".%03ldZ mckvd[%d] %s: ",
                  ts.tv_nsec / 1000000, (int)getpid(), names[idx]);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    if (m < 0)
        m = 0;
    n += m;
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    if (suffix != NULL && suffix[0] != '\0') {
        /* the count goes at the end even when the message was cut */
        size_t slen = strlen(suffix);
        if (slen > sizeof(line) - 2)
            slen = sizeof(line) - 2;
        if ((size_t)n + slen > sizeof(line) - 2)
            n = (int)(sizeof(line) - 2 - slen);
        memcpy(line + n, suffix, slen);
        n += (int)slen;
    }
    line[n++] = '\n';
    ssize_t w;
    do {
        w = write(log_fd, line, (size_t)n);
    } while (w < 0 && errno == EINTR);
}

void
log_write(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, NULL, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- limits */

static uint64_t (*limit_clock)(void);
static _Atomic uint64_t suppressed_total;
/* Every limiter that has been used, newest first; only pushed to. */
static struct log_limit *_Atomic limits;

void
log_set_clock(uint64_t (*now_ms)(void))
{
    limit_clock = now_ms;
}

static uint64_t
limit_now_ms(void)
{
    if (limit_clock != NULL)
        return limit_clock();
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t
log_suppressed_total(void)
{
    return atomic_load_explicit(&suppressed_total, memory_order_relaxed);
}

/* Puts lim on the list log_limit_flush() walks, once. */
static void
limit_register(struct log_limit *lim, int level, const char *fmt)
{
    if (atomic_load_explicit(&lim->registered, memory_order_relaxed) ||
        atomic_exchange_explicit(&lim->registered, true, memory_order_relaxed))
        return;
    lim->fmt = fmt;
    lim->level = level;
    struct log_limit *head = atomic_load_explicit(&limits, memory_order_relaxed);
    do {
        atomic_store_explicit(&lim->next, head, memory_order_relaxed);
        /* release: fmt, level and next are visible to the flusher that
         * finds lim through the head (acquire in log_limit_flush) */
    } while (!atomic_compare_exchange_weak_explicit(&limits, &head, lim,
                                                    memory_order_release,
                                                    memory_order_relaxed));
}

/* Claims the interval that ended at or before now (any interval when
 * `force`): true for the one thread that moved window_end (it writes the
 * line). */
static bool
limit_claim(struct log_limit *lim, uint64_t now, bool force, uint64_t *since_ms,
            uint64_t *count)
{
    uint64_t end = atomic_load_explicit(&lim->window_end_ms, memory_order_relaxed);
    if ((!force && now < end) || !atomic_compare_exchange_strong_explicit(
                         &lim->window_end_ms, &end, now + LOG_LIMIT_INTERVAL_MS,
                         memory_order_relaxed, memory_order_relaxed))
        return false;
    uint64_t start = atomic_exchange_explicit(&lim->window_start_ms, now,
                                              memory_order_relaxed);
    *since_ms = end != 0 ? now - start : 0;
    *count = atomic_exchange_explicit(&lim->suppressed, 0, memory_order_relaxed);
    return true;
}

/* "in the last S s": to the nearest second, never "0 s" */
static unsigned
limit_seconds(uint64_t ms)
{
    return ms < 1500 ? 1u : (unsigned)((ms + 500) / 1000);
}

bool
log_write_limited(struct log_limit *lim, int level, const char *fmt, ...)
{
    uint64_t now = limit_now_ms(), since_ms = 0, count = 0;
    limit_register(lim, level, fmt);
    if (!limit_claim(lim, now, false, &since_ms, &count)) {
        atomic_fetch_add_explicit(&lim->suppressed, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&suppressed_total, 1, memory_order_relaxed);
        return false;
    }
    char suffix[96] = "";
    if (count > 0)
        snprintf(suffix, sizeof(suffix), " (%" PRIu64 " more like this in the "
                 "last %u s)", count, limit_seconds(since_ms));
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, suffix, fmt, ap);
    va_end(ap);
    return true;
}

unsigned
log_limit_flush(bool all)
{
    uint64_t now = limit_now_ms();
    unsigned lines = 0;
    /* acquire: pairs with the release in limit_register */
    for (struct log_limit *lim = atomic_load_explicit(&limits, memory_order_acquire);
         lim != NULL; lim = atomic_load_explicit(&lim->next, memory_order_relaxed)) {
        if (atomic_load_explicit(&lim->suppressed, memory_order_relaxed) == 0)
            continue;
        uint64_t since_ms, count;
        if (!limit_claim(lim, now, all, &since_ms, &count) || count == 0)
            continue;
        log_write(lim->level, "%" PRIu64 " more like \"%.160s\" in the last %u s",
                  count, lim->fmt, limit_seconds(since_ms));
        lines++;
    }
    return lines;
}
