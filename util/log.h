/*
 * log.h: leveled logging to stderr or a log file, one line per event with a
 * timestamp. Safe from any thread: each line is formatted into a local buffer
 * and written with a single write(2), so lines from different threads never
 * interleave.
 *
 * Rate limits. A line that a client can cause again and again (a failed
 * fetch, a refused write, an accept error) is logged through a per-call-site
 * limiter: log_error_limited() / log_info_limited() declare a static struct
 * log_limit at the call site. The first occurrence in an interval of
 * LOG_LIMIT_INTERVAL_MS is written; later ones are only counted, and the
 * count is appended to the next line written there once the interval is
 * over ("(N more like this in the last S s)"), or written on its own by
 * log_limit_flush(), which the main thread calls once a second, so a burst
 * that stops is still accounted for (that line starts an interval too: a
 * call site writes at most one line per interval). The fast path
 * (suppressed) is a clock read and three relaxed atomic operations, no
 * lock.
 */
#ifndef MCKV_UTIL_LOG_H
#define MCKV_UTIL_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum log_level {
    LOG_LEVEL_ERROR = -1, /* always printed */
    LOG_LEVEL_INFO = 0,   /* start, stop, config changes: default verbosity */
    LOG_LEVEL_VERBOSE = 1,/* -v: connection events, warnings */
    LOG_LEVEL_DEBUG = 2,  /* -vv: per-command tracing */
};

extern atomic_int log_verbosity;

/* Opens `path` for appending (NULL or "" means stderr). Main thread, before
 * other threads start. Returns 0 or -1 with errno set. */
int log_setup(const char *path);
void log_teardown(void);

/* Sets the verbosity at run time (text `verbosity`, binary VERBOSITY, -v);
 * below 0 is 0, above LOG_LEVEL_DEBUG (2) is 2, as in memcached. */
void log_set_verbosity(int level);

void log_write(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One call site's limiter; zero-initialized (static) is ready to use. */
struct log_limit {
    _Atomic uint64_t window_end_ms;  /* 0: nothing logged yet */
    _Atomic uint64_t window_start_ms;/* when the last line was written */
    _Atomic uint64_t suppressed;     /* counted since that line */
    _Atomic bool registered;         /* on the list log_limit_flush walks */
    struct log_limit *_Atomic next;
    const char *fmt;                 /* the call site's format, for flushes */
    int level;
};

#define LOG_LIMIT_INTERVAL_MS 10000u

/* Writes the line unless `lim` wrote one less than LOG_LIMIT_INTERVAL_MS
 * ago (then it only counts it). True when the line was written. Any
 * thread. */
bool log_write_limited(struct log_limit *lim, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Main thread, once a second: for every limiter whose interval is over
 * with lines counted, writes "N more like \"FMT\" in the last S s" and
 * starts over. `all` (at exit): whether the interval is over or not.
 * Returns the number of lines written. */
unsigned log_limit_flush(bool all);

/* Lines not written by a limiter since start (`stats`: log_suppressed).
 * Any thread. */
uint64_t log_suppressed_total(void);

/* Tests: the millisecond clock of the limiters (NULL: CLOCK_MONOTONIC). */
void log_set_clock(uint64_t (*now_ms)(void));

#define log_enabled(level) ((level) <= atomic_load_explicit(&log_verbosity, memory_order_relaxed))
#define LOG(level, ...) do { if (log_enabled(level)) log_write((level), __VA_ARGS__); } while (0)
#define log_error(...) log_write(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_info(...) LOG(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_verbose(...) LOG(LOG_LEVEL_VERBOSE, __VA_ARGS__)
#define log_debug(...) LOG(LOG_LEVEL_DEBUG, __VA_ARGS__)

/* A rate-limited line: one static limiter per call site. */
#define LOG_LIMITED(level, ...) do {                                        \
        static struct log_limit log_limit_here_;                            \
        if (log_enabled(level))                                             \
            log_write_limited(&log_limit_here_, (level), __VA_ARGS__);      \
    } while (0)
#define log_error_limited(...) LOG_LIMITED(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_info_limited(...) LOG_LIMITED(LOG_LEVEL_INFO, __VA_ARGS__)

#endif
