/*
 * auth_file.h: memcached's ASCII authentication file (-Y, auth_file): one
 * `user:password` per line, checked in memory. Loaded at start; reloaded
 * on SIGHUP, where a file that fails to load leaves the running table in
 * place. Lines longer than memcached's 256 bytes and files of more than
 * AUTH_FILE_MAX_ENTRIES users are refused with file:line (memcached
 * silently cuts the file at 8 entries and chops long lines).
 */
#ifndef MCKV_SERVER_AUTH_FILE_H
#define MCKV_SERVER_AUTH_FILE_H

#include <stdbool.h>
#include <stddef.h>

#define AUTH_FILE_LINE_MAX 256
#define AUTH_FILE_MAX_ENTRIES 4096

/* Main thread: reads path and, when every line is good, makes it the
 * table in force (atomically for the checkers). 0, or -1 with err filled
 * ("FILE:LINE: why") and the table in force unchanged. */
int auth_file_load(const char *path, char *err, size_t errlen);
/* Any thread: true when user/password is an entry of the table in force.
 * The comparison takes the same time whatever bytes differ. */
bool auth_file_check(const char *user, size_t nuser, const char *pass,
                     size_t npass);
/* Main thread, at exit: frees the table. */
void auth_file_teardown(void);

#endif
