/*
 * log.h: leveled logging to stderr or a log file, one line per event with a
 * timestamp. Safe from any thread: each line is formatted into a local buffer
 * and written with a single write(2), so lines from different threads never
 * interleave.
 */
#ifndef MCKV_UTIL_LOG_H
#define MCKV_UTIL_LOG_H

#include <stdatomic.h>

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

#define log_enabled(level) ((level) <= atomic_load_explicit(&log_verbosity, memory_order_relaxed))
#define LOG(level, ...) do { if (log_enabled(level)) log_write((level), __VA_ARGS__); } while (0)
#define log_error(...) log_write(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_info(...) LOG(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_verbose(...) LOG(LOG_LEVEL_VERBOSE, __VA_ARGS__)
#define log_debug(...) LOG(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
