/*
 * harness.h: start and stop the server under test, and talk to it through
 * raw sockets with bounded waits.
 *
 * The server binary is $MCKVD (the build sets it to mckvd; pointing it at
 * /usr/bin/memcached runs the same tests against the reference). Every wait
 * in here is bounded by a timeout passed in milliseconds, so a test that
 * expects bytes that never come fails instead of hanging. Nothing here uses
 * cmocka: callers assert on the return values.
 */
#ifndef MCKV_TESTS_INTEG_HARNESS_H
#define MCKV_TESTS_INTEG_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Default bound for "the reply must come" waits. */
#define HARNESS_TIMEOUT_MS 5000

struct server;

/*
 * Starts $MCKVD -p PORT -l 127.0.0.1 -U 0 [extra_args...] [$MCKVD_EXTRA_ARGS]
 * on a free port and waits (at most 5 s) until a TCP connect succeeds.
 * extra_args is a NULL-terminated list or NULL. Against memcached running as
 * root, "-u root" is added (memcached refuses to run as root without it).
 * $MCKVD_EXTRA_ARGS (split on blanks) lets a run add flags to every server
 * without editing the tests. Retries with another port when the server exits
 * during start-up (the port may have been taken in between).
 * Returns a handle owned by the caller (free it with server_stop), or NULL
 * with a message on stderr. Main thread only.
 */
struct server *server_start(const char *const *extra_args);

/*
 * server_start() on the given port (one attempt; NULL when the server does
 * not accept there within 5 s). For a test that must choose its ports
 * (e.g. for the names a client hashes them under).
 */
struct server *server_start_port(uint16_t port, const char *const *extra_args);

/*
 * Ends the server with signo (SIGKILL: a crash) and waits at most 5 s for
 * it to exit. Unlike server_stop() the handle and the database it left
 * stay, for server_restart(). Returns 0 once it exited, -1 when it did
 * not (a message on stderr).
 */
int server_end(struct server *srv, int signo);

/*
 * Starts an ended server again on the same port and on the database it
 * left (mckvd), with extra_args, and waits until it accepts; srv gets the
 * new pid. Returns 0, or -1 with a message on stderr (srv is then a
 * stopped server: server_stop() still frees it).
 */
int server_restart(struct server *srv, const char *const *extra_args);

/* A TCP port free on 127.0.0.1 just now (0 when none could be bound). */
uint16_t harness_free_port(void);

/*
 * Sends SIGTERM, waits at most 5 s for the process to exit, then SIGKILLs it.
 * Frees srv. Returns the exit code (>= 0) when the server exited by itself,
 * -signo when a signal ended it, or -1000 - SIGKILL when it had to be killed.
 * Prints what happened when the result is not 0.
 */
int server_stop(struct server *srv);

/* Same as server_stop() with another first signal (e.g. SIGINT). */
int server_stop_with(struct server *srv, int signo);

/* The port the server listens on. */
uint16_t server_port(const struct server *srv);

/* The server's process id. */
pid_t server_pid(const struct server *srv);

/* True while the server process has not exited (reaps it when it has). */
bool server_alive(struct server *srv);

/* True when basename($MCKVD) is "memcached": mckv-only checks skip. */
bool harness_is_memcached(void);

/* CLOCK_MONOTONIC in milliseconds, for deadlines. */
int64_t harness_now_ms(void);

/* The path in $MCKVD (or "./mckvd" when it is unset). */
const char *harness_server_path(void);

/*
 * Connects to 127.0.0.1:port (blocking socket, TCP_NODELAY, close-on-exec).
 * Returns the fd or -1.
 */
int harness_connect(uint16_t port);

/* Writes all len bytes (MSG_NOSIGNAL). Returns 0, or -1 on error. */
int harness_send_all(int fd, const void *buf, size_t len);

/* harness_send_all() of a C string. */
int harness_send_str(int fd, const char *s);

/*
 * Reads exactly len bytes, waiting at most timeout_ms in total. Returns len,
 * or the number of bytes read before EOF, error or timeout (so a short count
 * means "did not get it").
 */
ssize_t harness_read_exact(int fd, void *buf, size_t len, int timeout_ms);

/*
 * Reads one line up to and including "\n" into buf (NUL-terminated; at most
 * cap - 1 bytes). Returns the line length, 0 on EOF before any byte, -1 on
 * error, timeout or a line longer than cap - 1.
 */
ssize_t harness_read_line(int fd, char *buf, size_t cap, int timeout_ms);

/*
 * Reads whatever arrives until the peer closes, cap bytes are read, or no
 * byte came for quiet_ms. Returns the count; *closed tells whether EOF (or a
 * reset) was seen. Use only where "nothing more arrives" is the expected
 * outcome; never to wait for a reply that must come.
 */
ssize_t harness_read_quiet(int fd, void *buf, size_t cap, int quiet_ms,
                           bool *closed);

/*
 * Waits at most timeout_ms for the peer to close. Returns 1 when it closed
 * (EOF or reset) without sending anything, 0 on timeout, -1 when bytes
 * arrived instead (the first byte is stored in *first when first is not
 * NULL).
 */
int harness_wait_closed(int fd, int timeout_ms, unsigned char *first);

/*
 * Sends out[0..out_len) while reading into in (at most in_cap bytes) until
 * in_want bytes have arrived, so a large pipeline cannot deadlock on full
 * socket buffers. Stops early on EOF/error or when timeout_ms passes without
 * progress. Send errors (peer closed) stop the sending but not the reading.
 * Returns the number of bytes read.
 */
ssize_t harness_exchange(int fd, const void *out, size_t out_len, void *in,
                         size_t in_cap, size_t in_want, int timeout_ms);

#endif
