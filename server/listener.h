/*
 * listener.h: the listening sockets, on the main thread's event_base.
 * Accepted sockets are counted against max_connections and handed to a
 * worker (worker.h) round robin.
 */
#ifndef MCKV_SERVER_LISTENER_H
#define MCKV_SERVER_LISTENER_H

#include <stddef.h>

struct event_base;
struct config;

/* Main thread: binds and listens on each entry of cfg->listen (memcached's
 * -l list, [notls:]HOST[:PORT], PORT defaulting to cfg->port; TLS with
 * ssl_enabled unless notls:), or on the UNIX socket cfg->unix_socket
 * instead when set. 0, or -1 with one line in err
 * ("listen 127.0.0.1:11211: Address already in use"). */
int listener_setup(struct event_base *base, const struct config *cfg,
                   char *err, size_t errlen);
/* Main thread: stops accepting and closes the listening sockets. */
void listener_close(void);

#endif
