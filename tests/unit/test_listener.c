/*
 * test_listener.c: unit tests of server/listener.c on the test's own
 * event_base, with the workers replaced by a fake workers_dispatch()
 * (the one function of worker.c the listener calls) that records the
 * accepted fds, or refuses them as a full worker ring does.
 *
 * Checked: accepting on 127.0.0.1 and a free port (TCP_NODELAY set, the
 * connection counted and handed over); max_connections refusing with
 * memcached's "ERROR Too many open connections" line and counting it;
 * a refused hand-over closing the socket and uncounting it; a port in
 * use failing with one line naming the address; the UNIX socket
 * (memcached -s): a stale file replaced, the mode from unix_mask, the
 * file removed at close.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
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

#define ACCEPTED_MAX 8

/* The listener counts connections in stats.c's process-wide counters;
 * stats.c is not linked here, so the test owns them. */
struct global_stats global_stats;

/* ---- the fake workers ---- */
static int accepted[ACCEPTED_MAX];
static bool accepted_tls[ACCEPTED_MAX];
static unsigned naccepted;
static bool dispatch_refuse;   /* every worker's ring is full */

bool
workers_dispatch(int fd, bool tls)
{
    if (dispatch_refuse || naccepted == ACCEPTED_MAX)
        return false;
    accepted_tls[naccepted] = tls;
    accepted[naccepted++] = fd;
    return true;
}

static struct event_base *base;
static struct config cfg;

static int
setup(void **state)
{
    (void)state;
    naccepted = 0;
    dispatch_refuse = false;
    atomic_store(&global_stats.curr_connections, 0);
    atomic_store(&global_stats.total_connections, 0);
    atomic_store(&global_stats.rejected_connections, 0);
    base = event_base_new();
    return base != NULL && config_init(&cfg) == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    listener_close();
    for (unsigned i = 0; i < naccepted; i++)
        close(accepted[i]);
    config_deinit(&cfg);
    event_base_free(base);
    return 0;
}

/* A port nothing listens on now (bound, read back, released). */
static unsigned
free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(sa);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &len), 0);
    close(s);
    return ntohs(sa.sin_port);
}

static void
listen_tcp(void)
{
    char err[256] = "";
    cfg.port = free_port();
    int rc = listener_setup(base, &cfg, err, sizeof(err));
    if (rc != 0)
        fail_msg("listener_setup: %s", err);
}

static int
connect_tcp(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_port = htons((uint16_t)cfg.port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return s;
}

/* Runs the listener's ready events until nothing is active. */
static void
pump(void)
{
    for (int i = 0; i < 4; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
}

/* Waits (bounded) for the client's socket to say something, then reads
 * to EOF. Returns the bytes, NUL-terminated. */
static const char *
read_to_eof(int s)
{
    static char buf[256];
    struct timeval tv = { 10, 0 };
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    size_t got = 0;
    for (;;) {
        ssize_t n = recv(s, buf + got, sizeof(buf) - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    return buf;
}

/* ---------------------------------------------------------------- tests */

static void
test_accept_and_dispatch(void **state)
{
    (void)state;
    listen_tcp();
    int c1 = connect_tcp();
    int c2 = connect_tcp();
    pump();
    assert_int_equal(naccepted, 2);
    assert_int_equal(atomic_load(&global_stats.curr_connections), 2);
    assert_int_equal(atomic_load(&global_stats.total_connections), 2);
    for (unsigned i = 0; i < naccepted; i++) {
        int one = 0;
        socklen_t len = sizeof(one);
        assert_int_equal(getsockopt(accepted[i], IPPROTO_TCP, TCP_NODELAY,
                                    &one, &len), 0);
        assert_int_equal(one, 1);
        /* non-blocking, for the worker's event loop */
        char ch;
        assert_int_equal(recv(accepted[i], &ch, 1, 0), -1);
        assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    }
    /* the handed-over socket is the client's peer */
    assert_int_equal(send(c1, "hi", 2, 0), 2);
    char buf[4] = "";
    struct pollfd pfd = { .fd = accepted[0], .events = POLLIN };
    assert_int_equal(poll(&pfd, 1, 10000), 1);
    assert_int_equal(recv(accepted[0], buf, sizeof(buf), 0), 2);
    assert_memory_equal(buf, "hi", 2);
    close(c1);
    close(c2);
}

static void
test_max_connections_refused(void **state)
{
    (void)state;
    cfg.max_connections = 1;
    listen_tcp();
    int c1 = connect_tcp();
    pump();
    assert_int_equal(naccepted, 1);
    int c2 = connect_tcp();
    pump();
    assert_int_equal(naccepted, 1);
    assert_string_equal(read_to_eof(c2), "ERROR Too many open connections\r\n");
    assert_int_equal(atomic_load(&global_stats.curr_connections), 1);
    assert_int_equal(atomic_load(&global_stats.rejected_connections), 1);
    assert_int_equal(atomic_load(&global_stats.total_connections), 1);
    /* once the first one is gone (the worker uncounts it), room again */
    atomic_fetch_sub(&global_stats.curr_connections, 1);
    int c3 = connect_tcp();
    pump();
    assert_int_equal(naccepted, 2);
    close(c1);
    close(c2);
    close(c3);
}

static void
test_dispatch_refused_closes(void **state)
{
    (void)state;
    listen_tcp();
    dispatch_refuse = true;
    int c = connect_tcp();
    pump();
    assert_string_equal(read_to_eof(c), "");   /* closed, no line */
    assert_int_equal(atomic_load(&global_stats.curr_connections), 0);
    close(c);
}

static void
test_port_in_use(void **state)
{
    (void)state;
    listen_tcp();
    char err[256] = "";
    char want[128];
    snprintf(want, sizeof(want), "listen 127.0.0.1:%u: Address already in use",
             (unsigned)cfg.port);
    /* a second listener on the same port (its state is the module's: the
     * first is closed by the failure, as at start-up) */
    assert_int_equal(listener_setup(base, &cfg, err, sizeof(err)), -1);
    assert_string_equal(err, want);
}

static int
connect_port(unsigned port)
{
    unsigned saved = (unsigned)cfg.port;
    cfg.port = port;
    int s = connect_tcp();
    cfg.port = saved;
    return s;
}

static void
set_listen(const char *list)
{
    free(cfg.listen);
    cfg.listen = strdup(list);
    assert_non_null(cfg.listen);
}

/* memcached's -l list: every entry listens, a notls: one in plain text
 * (the others are TLS with ssl_enabled), HOST:PORT overriding -p */
static void
test_listen_list(void **state)
{
    (void)state;
    char list[128], err[256] = "";
    unsigned other = free_port();
    cfg.port = free_port();
    snprintf(list, sizeof(list), "127.0.0.1,notls:127.0.0.1:%u", other);
    set_listen(list);
#ifdef HAVE_TLS
    cfg.ssl_enabled = true;
#endif
    if (listener_setup(base, &cfg, err, sizeof(err)) != 0)
        fail_msg("listener_setup: %s", err);
    int c1 = connect_tcp();
    pump();
    int c2 = connect_port(other);
    pump();
    assert_int_equal(naccepted, 2);
#ifdef HAVE_TLS
    assert_true(accepted_tls[0]);
#else
    assert_false(accepted_tls[0]);
#endif
    assert_false(accepted_tls[1]);   /* notls: */
    close(c1);
    close(c2);
    listener_close();

    /* an entry that is no [notls:]HOST[:PORT] */
    set_listen("127.0.0.1:http");
    assert_int_equal(listener_setup(base, &cfg, err, sizeof(err)), -1);
    assert_string_equal(err, "listen 127.0.0.1:http: not [notls:]HOST[:PORT]");
    /* [v6]:port parses (whether ::1 exists here or not) */
    set_listen("[::1");
    assert_int_equal(listener_setup(base, &cfg, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not [notls:]HOST[:PORT]"));
}

static void
test_unix_socket(void **state)
{
    (void)state;
    char dir[] = "/tmp/mckv-test-listener-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof(path), "%s/mckv.sock", dir);
    /* a socket file left behind by an earlier run */
    int stale = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    assert_int_equal(bind(stale, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(stale);

    free(cfg.unix_socket);
    cfg.unix_socket = strdup(path);
    cfg.unix_mask = 0750;
    char err[256] = "";
    int rc = listener_setup(base, &cfg, err, sizeof(err));
    if (rc != 0)
        fail_msg("listener_setup: %s", err);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0750);

    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
    pump();
    assert_int_equal(naccepted, 1);
    assert_int_equal(atomic_load(&global_stats.total_connections), 1);
    close(c);

    listener_close();
    assert_int_equal(lstat(path, &st), -1);   /* removed at close */
    assert_int_equal(rmdir(dir), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_accept_and_dispatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_connections_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dispatch_refused_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_in_use, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unix_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listen_list, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
