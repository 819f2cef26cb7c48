/*
 * daemon.c: detaching, changing the user, the pid file, memory locking and
 * core files (memcached's -d, -u, -P, -k, -r; see daemon.h).
 *
 * -d differs from memcached's daemonize() in two ways, both on purpose.
 * The parent does not exit at once: it waits on a pipe until the child is
 * listening, so `mckvd -d` exits 1 when the port is taken or the database
 * cannot be opened, instead of 0 and a silent death (what an init script or
 * systemd's Type=forking needs). And the working directory stays: mckvd
 * resolves db_path, log_file and the configuration file it reads again on
 * SIGHUP against it, so chdir("/") would change what they name.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server/daemon.h"

static int ready_fd = -1;   /* the child's end of the pipe to the parent */

int
daemon_detach(char *err, size_t errlen)
{
    int fds[2];

    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "daemonize: pipe: %s", strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "daemonize: fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid > 0) {
        /* parent: a byte means ready; EOF means the child is gone */
        char byte;
        ssize_t n;
        int status = 0;

        close(fds[1]);
        do {
            n = read(fds[0], &byte, 1);
        } while (n < 0 && errno == EINTR);
        if (n == 1)
            _exit(EXIT_SUCCESS);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        _exit(WIFEXITED(status) && WEXITSTATUS(status) != 0
              ? WEXITSTATUS(status) : EXIT_FAILURE);
    }
    close(fds[0]);
    ready_fd = fds[1];
    if (setsid() < 0) {
        snprintf(err, errlen, "daemonize: setsid: %s", strerror(errno));
        return -1;
    }
    return 0;
}

void
daemon_ready(bool keep_output)
{
    if (ready_fd < 0)
        return;
    int null_fd = open("/dev/null", O_RDWR);
    if (null_fd >= 0) {
        dup2(null_fd, STDIN_FILENO);
        if (!keep_output) {
            fflush(NULL);
            dup2(null_fd, STDOUT_FILENO);
            dup2(null_fd, STDERR_FILENO);
        }
        if (null_fd > STDERR_FILENO)
            close(null_fd);
    }
    ssize_t n = write(ready_fd, "R", 1);
    (void)n;   /* a parent that is gone has nothing to be told */
    close(ready_fd);
    ready_fd = -1;
}

int
daemon_become_user(const char *user, char *err, size_t errlen)
{
    if (getuid() != 0 && geteuid() != 0)
        return 0;
    errno = 0;
    struct passwd *pw = getpwnam(user);
    if (pw == NULL) {
        /* memcached: "can't find the user %s to switch to" */
        snprintf(err, errlen, "user: can't find the user %s to switch to%s%s",
                 user, errno != 0 ? ": " : "",
                 errno != 0 ? strerror(errno) : "");
        return -1;
    }
    if (initgroups(pw->pw_name, pw->pw_gid) != 0 && errno != EPERM) {
        snprintf(err, errlen, "user: %s: cannot set its groups: %s", user,
                 strerror(errno));
        return -1;
    }
    if (setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
        snprintf(err, errlen, "user: failed to assume identity of user %s: %s",
                 user, strerror(errno));
        return -1;
    }
    return 0;
}

int
daemon_pid_file_write(const char *path, char *err, size_t errlen)
{
    char tmp[4096];
    FILE *fp;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
        snprintf(err, errlen, "pid_file: %s: path too long", path);
        return -1;
    }
    fp = fopen(tmp, "w");
    if (fp == NULL) {
        snprintf(err, errlen, "pid_file: %s: %s", tmp, strerror(errno));
        return -1;
    }
    fprintf(fp, "%ld\n", (long)getpid());
    if (fclose(fp) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "pid_file: %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

void
daemon_pid_file_remove(const char *path)
{
    (void)unlink(path);
}

int
daemon_lock_memory(char *err, size_t errlen)
{
    if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0) {
        snprintf(err, errlen, "memory_lock: mlockall() failed: %s",
                 strerror(errno));
        return -1;
    }
    return 0;
}

int
daemon_allow_core_files(char *err, size_t errlen)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_CORE, &rl) != 0) {
        snprintf(err, errlen, "core_dumps: getrlimit: %s", strerror(errno));
        return -1;
    }
    struct rlimit want = { RLIM_INFINITY, RLIM_INFINITY };
    if (setrlimit(RLIMIT_CORE, &want) != 0) {
        want.rlim_cur = want.rlim_max = rl.rlim_max;
        (void)setrlimit(RLIMIT_CORE, &want);
    }
    if (getrlimit(RLIMIT_CORE, &rl) != 0 || rl.rlim_cur == 0) {
        /* memcached: "failed to ensure corefile creation" */
        snprintf(err, errlen, "core_dumps: failed to ensure corefile creation"
                 " (the hard limit is 0)");
        return -1;
    }
    return 0;
}
