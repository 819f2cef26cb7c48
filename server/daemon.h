/*
 * daemon.h: what memcached's -d, -u, -P, -k and -r do to the process:
 * detach into the background, change the user, write a pid file, lock
 * memory, allow core files. Main thread, at start-up (daemon_detach before
 * any other thread exists); each failure is one line in err.
 */
#ifndef MCKV_SERVER_DAEMON_H
#define MCKV_SERVER_DAEMON_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Forks. The parent waits until the child calls daemon_ready() and exits
 * 0, or exits with the child's status when the child exits first (a
 * start-up error, already printed on the shared stderr). The child starts
 * a new session and returns 0. The working directory is kept: mckvd's
 * relative paths (db_path, log_file, the configuration file read again on
 * SIGHUP) mean what they meant at start. -1 with err when fork fails.
 */
int daemon_detach(char *err, size_t errlen);
/* The child is up: lets the parent exit 0 and points stdin, and unless
 * keep_output stdout and stderr too, at /dev/null (memcached keeps them
 * with -v). A no-op when daemon_detach() was not called. */
void daemon_ready(bool keep_output);

/* When running as root: becomes `user` (its uid, gid and groups). Not
 * root: nothing (memcached ignores -u then too). 0, or -1 with err. */
int daemon_become_user(const char *user, char *err, size_t errlen);

/* Writes the pid to path (through path.tmp and a rename, so a reader never
 * sees it empty). 0, or -1 with err. */
int daemon_pid_file_write(const char *path, char *err, size_t errlen);
/* Removes it (at a clean exit). */
void daemon_pid_file_remove(const char *path);

/* mlockall(MCL_CURRENT | MCL_FUTURE). 0, or -1 with err (memcached goes
 * on with a warning). */
int daemon_lock_memory(char *err, size_t errlen);
/* Raises the core file size limit: unlimited, else the hard limit. 0, or
 * -1 with err when core files stay off (memcached then exits). */
int daemon_allow_core_files(char *err, size_t errlen);

#endif
