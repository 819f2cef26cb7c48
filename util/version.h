/*
 * version.h: the version string every protocol reports (`version`, binary
 * VERSION, `stats` version): memcached's protocol level, then mckv's own
 * version, so tools that compare memcached versions see 1.6.
 */
#ifndef MCKV_UTIL_VERSION_H
#define MCKV_UTIL_VERSION_H

extern const char mckv_version[];

#endif
