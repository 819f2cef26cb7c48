/*
 * listener.c: accepts connections on the main thread and hands them to the
 * workers. Over max_connections a client gets memcached's
 * "ERROR Too many open connections" and is closed. When the process runs out
 * of file descriptors, accepting pauses for a second instead of spinning.
 *
 * TCP: listen is memcached's -l list, comma-separated entries of
 * [notls:]HOST[:PORT] (PORT defaults to port, -p); with ssl_enabled (-Z)
 * every one but the notls: ones is TLS, and the worker that takes a
 * connection from it wraps it in TLS (conn_tls.c).
 *
 * With unix_socket set (memcached -s) the one listener is that UNIX domain
 * socket and there is no TCP one, as in memcached: a stale socket file is
 * replaced, the file gets unix_mask's mode (bound under the matching
 * umask, memcached's way, so it never exists with a wider one) and is
 * removed at close.
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
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "server/config.h"
#include "server/listener.h"
#include "server/stats.h"
#include "server/worker.h"
#include "util/log.h"

#define LISTENER_MAX 32

static struct {
    int fds[LISTENER_MAX];
    bool tls[LISTENER_MAX];   /* its connections speak TLS */
    struct event *evs[LISTENER_MAX];
    unsigned n;
    struct event *pause_timer;
    uint64_t max_connections;
    char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
} lst;

static void
listener_enable(bool on)
{
    atomic_store_explicit(&global_stats.accept_paused, !on, memory_order_relaxed);
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
    bool tls = lst.tls[(intptr_t)arg];
    (void)what;
    for (int batch = 0; batch < 64; batch++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM) {
                log_error_limited("accept: %s; pausing accepts for a second",
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
        if (lst.unix_path[0] == '\0')
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        atomic_fetch_add(&global_stats.total_connections, 1);
        if (!workers_dispatch(fd, tls)) {
            log_error_limited("accept: every worker queue is full; closing connection");
            close(fd);
            atomic_fetch_sub(&global_stats.curr_connections, 1);
        }
    }
}

/* With ssl_enabled (-Z), TCP listeners are TLS unless notls:. */
static bool
listener_tls_wanted(const struct config *cfg)
{
#ifdef HAVE_TLS
    return cfg->ssl_enabled;
#else
    (void)cfg;
    return false;
#endif
}

/* main thread: the -s listener. 0, or -1 with err. */
static int
listener_setup_unix(const struct config *cfg, char *err, size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat st;
    const char *path = cfg->unix_socket;

    if (strlen(path) >= sizeof(sa.sun_path)) {   /* config_validate checks */
        snprintf(err, errlen, "unix_socket %s: path too long", path);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "unix_socket %s: %s", path, strerror(errno));
        return -1;
    }
    /* a socket left by an earlier run; anything else is not ours */
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
    mode_t old_umask = umask((mode_t)(~cfg->unix_mask & 0777));
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    int bind_errno = errno;
    umask(old_umask);
    if (rc != 0 || listen(fd, (int)cfg->backlog) != 0) {
        snprintf(err, errlen, "unix_socket %s: %s", path,
                 strerror(rc != 0 ? bind_errno : errno));
        close(fd);
        if (rc == 0)
            unlink(path);
        return -1;
    }
    memcpy(lst.unix_path, sa.sun_path, sizeof(lst.unix_path));
    lst.fds[lst.n++] = fd;
    return 0;
}

/* main thread: listens on host:port (every address it resolves to). 0, or
 * -1 with err. */
static int
listener_setup_tcp(struct event_base *base, const struct config *cfg,
                   const char *host, const char *port, bool tls, char *err,
                   size_t errlen)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE };
    struct addrinfo *res = NULL;
    unsigned before = lst.n;
    int gai = getaddrinfo(host[0] != '\0' ? host : NULL, port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "listen %s:%s: %s", host, port, gai_strerror(gai));
        return -1;
    }
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
            snprintf(err, errlen, "listen %s:%s: %s", host, port,
                     strerror(errno));
            close(fd);
            freeaddrinfo(res);
            return -1;
        }
        lst.fds[lst.n] = fd;
        lst.tls[lst.n] = tls;
        lst.evs[lst.n] = event_new(base, fd, EV_READ | EV_PERSIST,
                                   listener_accept, (void *)(intptr_t)lst.n);
        lst.n++;
    }
    freeaddrinfo(res);
    if (lst.n == before) {
        snprintf(err, errlen, "listen %s:%s: no usable address", host, port);
        return -1;
    }
    return 0;
}

/* One entry of memcached's -l list: [notls:]HOST[:PORT], an IPv6 HOST in
 * brackets when it has a port ([::1]:11211). 0, or -1 with err. */
static int
listener_parse_entry(const char *entry, size_t len, unsigned default_port,
                     char *host, size_t hostlen, char *port, size_t portlen,
                     bool *notls, char *err, size_t errlen)
{
    *notls = len >= 6 && memcmp(entry, "notls:", 6) == 0;
    if (*notls) {
        entry += 6;
        len -= 6;
    }
    const char *end = entry + len, *colon = NULL;
    if (len > 0 && entry[0] == '[') {              /* [v6]:port */
        const char *close_br = memchr(entry, ']', len);
        if (close_br == NULL)
            goto bad;
        if (close_br + 1 < end && close_br[1] == ':')
            colon = close_br + 1;
        else if (close_br + 1 != end)
            goto bad;
        entry++;
        len = (size_t)(close_br - entry);
    } else {
        const char *c1 = memchr(entry, ':', len);
        /* one colon: a port; several: an IPv6 literal without one */
        if (c1 != NULL && memchr(c1 + 1, ':', (size_t)(end - c1 - 1)) == NULL) {
            colon = c1;
            len = (size_t)(c1 - entry);
        }
    }
    if (len >= hostlen)
        goto bad;
    memcpy(host, entry, len);
    host[len] = '\0';
    if (colon != NULL) {
        size_t plen = (size_t)(end - colon - 1);
        if (plen == 0 || plen >= portlen ||
            strspn(colon + 1, "0123456789") < plen)
            goto bad;
        memcpy(port, colon + 1, plen);
        port[plen] = '\0';
    } else {
        snprintf(port, portlen, "%u", default_port);
    }
    return 0;
bad:
    snprintf(err, errlen, "listen %.*s: not [notls:]HOST[:PORT]",
             (int)(end - entry), entry);
    return -1;
}

int
listener_setup(struct event_base *base, const struct config *cfg, char *err,
               size_t errlen)
{
    lst.max_connections = cfg->max_connections;
    if (cfg->unix_socket[0] != '\0') {
        if (listener_setup_unix(cfg, err, errlen) != 0)
            return -1;
        lst.evs[0] = event_new(base, lst.fds[0], EV_READ | EV_PERSIST,
                               listener_accept, (void *)(intptr_t)0);
        lst.pause_timer = evtimer_new(base, listener_resume, NULL);
        listener_enable(true);
        return 0;
    }
    /* memcached's -l: a comma-separated list; with -Z every listener is
     * TLS but the notls: ones */
    const char *list = cfg->listen;
    do {
        size_t len = strcspn(list, ",");
        char host[256], port[16];
        bool notls = false;
        if (listener_parse_entry(list, len, (unsigned)cfg->port, host,
                                 sizeof(host), port, sizeof(port), &notls,
                                 err, errlen) != 0 ||
            listener_setup_tcp(base, cfg, host, port,
                               listener_tls_wanted(cfg) && !notls, err,
                               errlen) != 0) {
            listener_close();
            return -1;
        }
        list += len;
    } while (*list++ == ',');
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
    if (lst.unix_path[0] != '\0') {
        unlink(lst.unix_path);
        lst.unix_path[0] = '\0';
    }
    if (lst.pause_timer != NULL) {
        event_free(lst.pause_timer);
        lst.pause_timer = NULL;
    }
}
