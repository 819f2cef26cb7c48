/*
 * stats_prefix.h: memcached's per-prefix statistics (`stats detail on`,
 * `stats detail dump`): for each key prefix (the key up to the first
 * delimiter, ':' by default; keys without one are not counted) the gets,
 * hits, sets and deletes seen while detail is on.
 *
 * Off by default and free when off (one relaxed load per command). When
 * on, a mutex guards the table, as memcached's STATS_LOCK does: this is a
 * debugging aid, not a hot-path counter. Unlike memcached the table is
 * bounded (STATS_PREFIX_MAX prefixes; later new prefixes are counted in
 * `dropped` only), so a client inventing prefixes cannot grow memory.
 */
#ifndef MCKV_SERVER_STATS_PREFIX_H
#define MCKV_SERVER_STATS_PREFIX_H

#include <stdbool.h>
#include <stddef.h>

#define STATS_PREFIX_MAX 4096

/* Main thread, at start: the delimiter (memcached -D). */
void stats_prefix_setup(char delimiter);
/* Frees the table (main thread, at exit). */
void stats_prefix_teardown(void);

/* `stats detail on|off`; any thread. */
void stats_prefix_enable(bool on);
bool stats_prefix_enabled(void);

/* Counting, any thread; nothing happens while detail is off. */
void stats_prefix_record_get(const char *key, size_t nkey, bool hit);
void stats_prefix_record_set(const char *key, size_t nkey);
void stats_prefix_record_delete(const char *key, size_t nkey);

/* `stats detail dump`: a malloc'ed text of memcached's format, one line
 * "PREFIX <p> get <n> hit <n> set <n> del <n>\r\n" per prefix, then
 * "END\r\n"; *len its length. NULL when out of memory. Any thread. */
char *stats_prefix_dump(size_t *len);

/* Prefixes not tracked because the table was full. */
size_t stats_prefix_dropped(void);

#endif
