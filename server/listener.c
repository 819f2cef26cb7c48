/*
 * listener.c: accepts connections on the main thread and hands them to the
 * workers. Over max_connections a client gets memcached's
 * "ERROR Too many open connections" and is closed. When the process runs out
 * of file descriptors, accepting pauses for a second instead of spinning.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "server/config.h"
#include "server/listener.h"
#include "server/stats.h"
#include "server/worker.h"
#include "util/log.h"

#define LISTENER_MAX 8

static struct {
    int fds[LISTENER_MAX];
    struct event *evs[LISTENER_MAX];
    unsigned n;
    struct event *pause_timer;
    uint64_t max_connections;
} lst;

static void
listener_enable(bool on)
{
    for (unsigned i = 0; i < lst.n; i++) {
        if (on)
            event_add(lst.evs[i], NULL);
        else
            event_del(lst.evs[i]);
    }
}

static void
listener_resume(int fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    listener_enable(true);
}

/* main thread */
static void
listener_accept(int lfd, short what, void *arg)
{
    (void)what;
    (void)arg;
    for (int batch = 0; batch < 64; batch++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM) {
                log_error("accept: %s; pausing accepts for a second",
                          strerror(errno));
                listener_enable(false);
                struct timeval tv = { 1, 0 };
                evtimer_add(lst.pause_timer, &tv);
            }
            return;
        }
        uint64_t curr = atomic_fetch_add(&global_stats.curr_connections, 1);
        if (curr >= lst.max_connections) {
            static const char msg[] = "ERROR Too many open connections\r\n";
            ssize_t w = write(fd, msg, sizeof(msg) - 1);
            (void)w;
            close(fd);
            atomic_fetch_sub(&global_stats.curr_connections, 1);
            atomic_fetch_add(&global_stats.rejected_connections, 1);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        atomic_fetch_add(&global_stats.total_connections, 1);
        if (!workers_dispatch(fd)) {
            log_error("accept: every worker queue is full; closing connection");
            close(fd);
            atomic_fetch_sub(&global_stats.curr_connections, 1);
        }
    }
}

int
listener_setup(struct event_base *base, const struct config *cfg, char *err,
               size_t errlen)
{
    char port[16];
    snprintf(port, sizeof(port), "%u", (unsigned)cfg->port);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE };
    struct addrinfo *res = NULL;
    const char *host = cfg->listen[0] != '\0' ? cfg->listen : NULL;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "listen %s:%s: %s", cfg->listen, port,
                 gai_strerror(gai));
        return -1;
    }
    lst.max_connections = cfg->max_connections;
    for (struct addrinfo *ai = res; ai != NULL && lst.n < LISTENER_MAX;
         ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        ai->ai_protocol);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
            listen(fd, (int)cfg->backlog) != 0) {
            snprintf(err, errlen, "listen %s:%s: %s", cfg->listen, port,
                     strerror(errno));
            close(fd);
            freeaddrinfo(res);
            listener_close();
            return -1;
        }
        lst.fds[lst.n] = fd;
        lst.evs[lst.n] = event_new(base, fd, EV_READ | EV_PERSIST,
                                   listener_accept, NULL);
        lst.n++;
    }
    freeaddrinfo(res);
    if (lst.n == 0) {
        snprintf(err, errlen, "listen %s:%s: no usable address", cfg->listen, port);
        return -1;
    }
    lst.pause_timer = evtimer_new(base, listener_resume, NULL);
    listener_enable(true);
    return 0;
}

void
listener_close(void)
{
    for (unsigned i = 0; i < lst.n; i++) {
        if (lst.evs[i] != NULL)
            event_free(lst.evs[i]);
        close(lst.fds[i]);
    }
    lst.n = 0;
    if (lst.pause_timer != NULL) {
        event_free(lst.pause_timer);
        lst.pause_timer = NULL;
    }
}
