/* log.c: see log.h. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
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

void
log_write(int level, const char *fmt, ...)
{
    static const char *const names[] = { "error", "info", "verbose", "debug" };
    char line[1024];
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
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += m;
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t w;
    do {
        w = write(log_fd, line, (size_t)n);
    } while (w < 0 && errno == EINTR);
}
