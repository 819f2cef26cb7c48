/*
 * harness.c: server process control and bounded raw-socket I/O for the
 * integration tests (see harness.h).
 *
 * The server is a child process: fork, put it in its own process group,
 * ask the kernel to SIGTERM it if this test process dies (PR_SET_PDEATHSIG),
 * exec $MCKVD. It is stopped by its pid only. Socket reads use poll() with a
 * deadline so a missing reply turns into a failed assertion, never a hang.
 */
#include <config.h>

#include "tests/integ/harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_TIMEOUT_MS 5000
#define STOP_TIMEOUT_MS 5000
#define START_ATTEMPTS 3
#define MAX_ARGS 64

struct server {
    pid_t pid;
    uint16_t port;
    bool reaped;
    int wait_status;
};

int64_t
harness_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
ms_left(int64_t deadline)
{
    int64_t left = deadline - harness_now_ms();

    return left > 0 ? (int)left : 0;
}

const char *
harness_server_path(void)
{
    const char *path = getenv("MCKVD");

    return (path != NULL && path[0] != '\0') ? path : "./mckvd";
}

bool
harness_is_memcached(void)
{
    const char *path = harness_server_path();
    const char *base = strrchr(path, '/');

    base = base != NULL ? base + 1 : path;
    return strcmp(base, "memcached") == 0;
}

/* Binds port 0 on 127.0.0.1, reads the port back and closes. */
static uint16_t
find_free_port(void)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof(addr);
    uint16_t port = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return 0;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
        port = ntohs(addr.sin_port);
    close(fd);
    return port;
}

static int
connect_once(uint16_t port)
{
    struct sockaddr_in addr;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

int
harness_connect(uint16_t port)
{
    return connect_once(port);
}

/* Splits $MCKVD_EXTRA_ARGS into argv (pointers into a static copy). */
static size_t
append_env_args(const char **argv, size_t argc)
{
    static char copy[1024];
    const char *env = getenv("MCKVD_EXTRA_ARGS");
    char *save = NULL;
    char *tok;

    if (env == NULL || env[0] == '\0')
        return argc;
    snprintf(copy, sizeof(copy), "%s", env);
    for (tok = strtok_r(copy, " \t", &save); tok != NULL && argc < MAX_ARGS;
         tok = strtok_r(NULL, " \t", &save))
        argv[argc++] = tok;
    return argc;
}

/* mckvd persists by default: each server gets a database of its own in a
 * fresh directory, removed when the server stops. */
static void
db_dir_for(char *buf, size_t len, uint16_t port)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(buf, len, "%s/mckv-harness-%d-%u", tmp != NULL ? tmp : "/tmp",
             (int)getpid(), (unsigned)port);
}

static void
db_dir_remove(uint16_t port)
{
    static const char *const files[] = { "mckv.db", "mckv.db-wal", "mckv.db-shm" };
    char dir[256], path[300];
    db_dir_for(dir, sizeof(dir), port);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* keep_db: start on the database a previous server of this port left
 * (a restart); otherwise on a fresh one. */
static pid_t
spawn(const char *const *extra_args, uint16_t port, bool keep_db)
{
    const char *argv[MAX_ARGS + 1];
    char port_str[16];
    static char db_arg[320];
    char dir[256];
    size_t argc = 0;
    pid_t pid;

    snprintf(port_str, sizeof(port_str), "%u", (unsigned)port);
    argv[argc++] = harness_server_path();
    argv[argc++] = "-p";
    argv[argc++] = port_str;
    argv[argc++] = "-l";
    argv[argc++] = "127.0.0.1";
    argv[argc++] = "-U";
    argv[argc++] = "0";
    if (harness_is_memcached() && geteuid() == 0) {
        argv[argc++] = "-u";
        argv[argc++] = "root";
    }
    if (!harness_is_memcached()) {
        if (!keep_db)
            db_dir_remove(port);
        db_dir_for(dir, sizeof(dir), port);
        snprintf(db_arg, sizeof(db_arg), "--db-path=%s/mckv.db", dir);
        argv[argc++] = db_arg;
    }
    for (size_t i = 0; extra_args != NULL && extra_args[i] != NULL &&
                       argc < MAX_ARGS - 8; i++)
        argv[argc++] = extra_args[i];
    argc = append_env_args(argv, argc);
    argv[argc] = NULL;

    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid != 0)
        return pid;

    /* child: no cmocka, no stdio buffers of the parent to flush */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    setpgid(0, 0);
    signal(SIGPIPE, SIG_DFL);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) {
        dup2(devnull, STDIN_FILENO);
        close(devnull);
    }
    execv(argv[0], (char *const *)argv);
    fprintf(stderr, "harness: exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* Reaps srv if it exited; returns true when it has. */
static bool
reap_nohang(struct server *srv)
{
    int status;
    pid_t r;

    if (srv->reaped)
        return true;
    r = waitpid(srv->pid, &status, WNOHANG);
    if (r == srv->pid) {
        srv->reaped = true;
        srv->wait_status = status;
    }
    return srv->reaped;
}

/* Spawns the server on srv->port and waits (bounded) until it accepts.
 * Returns true when it does; false when it exited or never accepted (then
 * it is gone, killed if need be). */
static bool
launch(struct server *srv, const char *const *extra_args, bool keep_db)
{
    int64_t deadline = harness_now_ms() + START_TIMEOUT_MS;

    srv->reaped = false;
    srv->pid = spawn(extra_args, srv->port, keep_db);
    if (srv->pid < 0) {
        srv->reaped = true;
        return false;
    }
    while (harness_now_ms() < deadline) {
        int fd = connect_once(srv->port);

        if (fd >= 0) {
            close(fd);
            return true;
        }
        if (reap_nohang(srv))
            break;
        usleep(10 * 1000);
    }
    if (!srv->reaped) {
        kill(srv->pid, SIGKILL);
        waitpid(srv->pid, NULL, 0);
        srv->reaped = true;
        fprintf(stderr, "harness: %s did not accept on port %u in %d ms\n",
                harness_server_path(), (unsigned)srv->port, START_TIMEOUT_MS);
        return false;
    }
    fprintf(stderr, "harness: %s exited during start-up (status 0x%x)\n",
            harness_server_path(), (unsigned)srv->wait_status);
    return false;
}

struct server *
server_start(const char *const *extra_args)
{
    struct server *srv = calloc(1, sizeof(*srv));

    if (srv == NULL)
        return NULL;
    for (int attempt = 0; attempt < START_ATTEMPTS; attempt++) {
        srv->port = find_free_port();
        if (srv->port == 0)
            continue;
        if (launch(srv, extra_args, false))
            return srv;
        if (srv->pid < 0)
            break;
    }
    free(srv);
    return NULL;
}

struct server *
server_start_port(uint16_t port, const char *const *extra_args)
{
    struct server *srv = calloc(1, sizeof(*srv));

    if (srv == NULL)
        return NULL;
    srv->port = port;
    if (launch(srv, extra_args, false))
        return srv;
    free(srv);
    return NULL;
}

/* Sends signo (unless the server has exited already) and waits, bounded by
 * STOP_TIMEOUT_MS, for it to exit: true once it is reaped. */
static bool
signal_and_reap(struct server *srv, int signo)
{
    int64_t deadline = harness_now_ms() + STOP_TIMEOUT_MS;

    if (!reap_nohang(srv)) {
        kill(srv->pid, signo);
        while (!reap_nohang(srv) && harness_now_ms() < deadline)
            usleep(10 * 1000);
    }
    return srv->reaped;
}

int
server_end(struct server *srv, int signo)
{
    if (!signal_and_reap(srv, signo)) {
        fprintf(stderr, "harness: pid %d ignored signal %d for %d ms\n",
                (int)srv->pid, signo, STOP_TIMEOUT_MS);
        return -1;
    }
    return 0;
}

int
server_restart(struct server *srv, const char *const *extra_args)
{
    if (!reap_nohang(srv)) {
        fprintf(stderr, "harness: pid %d still runs: no restart\n",
                (int)srv->pid);
        return -1;
    }
    /* the port is ours again at once: the server listens with
     * SO_REUSEADDR, and nothing else was told it is free */
    return launch(srv, extra_args, true) ? 0 : -1;
}

uint16_t
harness_free_port(void)
{
    return find_free_port();
}

uint16_t
server_port(const struct server *srv)
{
    return srv->port;
}

pid_t
server_pid(const struct server *srv)
{
    return srv->pid;
}

bool
server_alive(struct server *srv)
{
    return !reap_nohang(srv);
}

int
server_stop_with(struct server *srv, int signo)
{
    int result;

    if (srv == NULL)
        return -1;
    if (!signal_and_reap(srv, signo)) {
        fprintf(stderr, "harness: pid %d ignored signal %d for %d ms: "
                "SIGKILL\n", (int)srv->pid, signo, STOP_TIMEOUT_MS);
        kill(srv->pid, SIGKILL);
        waitpid(srv->pid, NULL, 0);
        result = -1000 - SIGKILL;
    } else if (WIFEXITED(srv->wait_status)) {
        result = WEXITSTATUS(srv->wait_status);
    } else if (WIFSIGNALED(srv->wait_status)) {
        result = -WTERMSIG(srv->wait_status);
    } else {
        result = -1;
    }
    if (result != 0)
        fprintf(stderr, "harness: server pid %d stopped with result %d\n",
                (int)srv->pid, result);
    if (!harness_is_memcached())
        db_dir_remove(srv->port);
    free(srv);
    return result;
}

int
server_stop(struct server *srv)
{
    return server_stop_with(srv, SIGTERM);
}

int
harness_send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int
harness_send_str(int fd, const char *s)
{
    return harness_send_all(fd, s, strlen(s));
}

/* Waits until fd is readable or the deadline passes. 1 readable, 0 not. */
static int
wait_readable(int fd, int64_t deadline)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };

    for (;;) {
        int r = poll(&pfd, 1, ms_left(deadline));

        if (r > 0)
            return 1;
        if (r == 0)
            return 0;
        if (errno != EINTR)
            return 0;
    }
}

ssize_t
harness_read_exact(int fd, void *buf, size_t len, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    char *p = buf;
    size_t got = 0;

    while (got < len) {
        ssize_t n;

        if (!wait_readable(fd, deadline))
            break;
        n = recv(fd, p + got, len - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

ssize_t
harness_read_line(int fd, char *buf, size_t cap, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    size_t got = 0;

    if (cap == 0)
        return -1;
    buf[0] = '\0';
    /* one byte at a time: the bytes after the line stay in the socket */
    while (got + 1 < cap) {
        ssize_t n;

        if (!wait_readable(fd, deadline))
            return -1;
        n = recv(fd, buf + got, 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0) {
            buf[got] = '\0';
            return got == 0 ? 0 : -1;
        }
        got++;
        if (buf[got - 1] == '\n') {
            buf[got] = '\0';
            return (ssize_t)got;
        }
    }
    buf[got] = '\0';
    return -1;
}

ssize_t
harness_read_quiet(int fd, void *buf, size_t cap, int quiet_ms, bool *closed)
{
    char *p = buf;
    size_t got = 0;

    *closed = false;
    while (got < cap) {
        ssize_t n;

        if (!wait_readable(fd, harness_now_ms() + quiet_ms))
            break;
        n = recv(fd, p + got, cap - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            *closed = true;
            break;
        }
        got += (size_t)n;
    }
    return (ssize_t)got;
}

int
harness_wait_closed(int fd, int timeout_ms, unsigned char *first)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    unsigned char byte;

    for (;;) {
        ssize_t n;

        if (!wait_readable(fd, deadline))
            return 0;
        n = recv(fd, &byte, 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 1;
        if (first != NULL)
            *first = byte;
        return -1;
    }
}

ssize_t
harness_exchange(int fd, const void *out, size_t out_len, void *in,
                 size_t in_cap, size_t in_want, int timeout_ms)
{
    const char *op = out;
    char *ip = in;
    size_t sent = 0, got = 0;
    int64_t deadline = harness_now_ms() + timeout_ms;
    bool can_send = true;

    if (in_want > in_cap)
        in_want = in_cap;
    while (got < in_want) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int r;

        if (can_send && sent < out_len)
            pfd.events |= POLLOUT;
        r = poll(&pfd, 1, ms_left(deadline));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (pfd.revents & POLLIN) {
            ssize_t n = recv(fd, ip + got, in_cap - got, MSG_DONTWAIT);

            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                break;
            if (n > 0) {
                got += (size_t)n;
                deadline = harness_now_ms() + timeout_ms;
            }
        }
        if ((pfd.revents & POLLOUT) && can_send && sent < out_len) {
            ssize_t n = send(fd, op + sent, out_len - sent,
                             MSG_DONTWAIT | MSG_NOSIGNAL);

            if (n > 0) {
                sent += (size_t)n;
                deadline = harness_now_ms() + timeout_ms;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                can_send = false;
            }
        }
        if ((pfd.revents & (POLLERR | POLLHUP)) && !(pfd.revents & POLLIN))
            break;
    }
    return (ssize_t)got;
}
