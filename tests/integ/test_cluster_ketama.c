/*
 * test_cluster_ketama.c: three mckvd nodes (engine = sqlite, a database
 * each) sharded by the client, libmemcached in binary mode with
 * MEMCACHED_BEHAVIOR_KETAMA, no proxy: the deployment of a binary-protocol
 * user. In order, on one set of nodes:
 *  - spread: 30k keys set through the ring; each node holds exactly the
 *    keys the ring gives it (its own curr_items, asked on the node), within
 *    10 % of 10k, and every key reads back with its value and flags;
 *  - node down: once the writes are on disk (more than one flush interval,
 *    then `stats kvstore` dirty_items 0), node 1 is SIGKILLed; its keys
 *    fail fast (an error, never a miss, and no write lands elsewhere) while
 *    the other nodes serve theirs;
 *  - node back: node 1 restarts on its port and database; the same client
 *    and a fresh one get all 30k keys back with their values and flags,
 *    node 1 holds what it held, the other two are untouched (same pid,
 *    same curr_items).
 * First, the configuration string docs/cluster.md gives builds the same
 * ring as the behaviors.
 *
 * Why "within 10 %" needs chosen ports: libmemcached hashes a node as
 * "host:port-N" onto 100 points of the ring, and one node's share then
 * varies by about 1/sqrt(100) = 10 % from one set of names to another
 * (about half of all port triples pass). So the nodes' ports are picked
 * (free ones, tried in turn) until the ring itself, computed by
 * libmemcached before any node runs, is within 10 %; the nodes are then
 * checked to hold exactly what that ring sends them.
 *
 * Against memcached (MCKVD=/usr/bin/memcached) spread and node down pass
 * and node back fails: the restarted node is empty. So it does with
 * MCKVD_EXTRA_ARGS=--engine=memory. Every wait is bounded; the nodes are
 * stopped by pid.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libmemcached/memcached.h>

#include "tests/integ/harness.h"
#include "tests/integ/server_helpers.h"

#define NODES 3
#define KEYS 30000
#define EVEN (KEYS / NODES)
#define VICTIM 1                 /* the node that is killed */
#define PORT_TRIES 64
#define FLUSH_INTERVAL_MS 100    /* mckvd's default flush_interval_ms */
#define DRAIN_TIMEOUT_MS 60000
#define BACK_TIMEOUT_MS 30000
#define RETRY_TIMEOUT_S 1

static const char *const mckvd_args[] = { "--engine=sqlite", "-t", "2",
                                          "-m", "64", NULL };
static const char *const memcached_args[] = { "-t", "2", "-m", "64", NULL };

static struct server *g_nodes[NODES];
static uint16_t g_ports[NODES];
static unsigned g_ring_count[NODES];    /* keys the ring gives each node */
static memcached_st *g_client;          /* the client that lives through it all */

static const char *const *
node_args(void)
{
    return harness_is_memcached() ? memcached_args : mckvd_args;
}

/* ---- the keys ---- */

static size_t
key_of(unsigned i, char *buf, size_t cap)
{
    return (size_t)snprintf(buf, cap, "ketama:%05u", i);
}

/* 20..219 bytes that only key i has. */
static size_t
value_of(unsigned i, char *buf, size_t cap)
{
    size_t len = 20 + i % 200;
    int n = snprintf(buf, cap, "v%u:", i);

    for (size_t at = (size_t)n; at < len && at < cap; at++)
        buf[at] = (char)('a' + (i + at) % 26);
    return len;
}

/* High bits set too: flags are 32 bits on the wire of both protocols. */
static uint32_t
flags_of(unsigned i)
{
    return (uint32_t)(i * 2654435761u);
}

/* ---- the client ---- */

/*
 * A client over the nodes on ports[], as a deployment would set it up:
 *  - BINARY_PROTOCOL: the binary protocol (mckvd picks it by the first
 *    byte, as memcached does);
 *  - KETAMA: the consistent ring. In libmemcached 1.x this sets only the
 *    distribution (MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA, 100 points a
 *    node, hashed with the key hash, one-at-a-time by default);
 *    KETAMA_WEIGHTED would also set md5 for keys and points (160 a node,
 *    four per digest), the libketama/twemproxy ring;
 *  - REMOVE_FAILED_SERVERS 0 (AUTO_EJECT_HOSTS off): a dead node stays on
 *    the ring, so its keys fail instead of moving to the others (where
 *    they would be cold misses, and writes there stale copies once the
 *    node is back with its disk);
 *  - RETRY_TIMEOUT 1 s: after a failure the node is not tried for a
 *    second (its keys fail at once, MEMCACHED_SERVER_TEMPORARILY_DISABLED),
 *    then the next request reconnects: that is how this client finds the
 *    restarted node without being rebuilt;
 *  - SERVER_FAILURE_LIMIT 2: without ejection, reaching it only puts the
 *    node in that timeout again; it is never marked dead for good;
 *  - POLL_TIMEOUT, CONNECT_TIMEOUT: every request is bounded.
 * No connection is made until the first request.
 */
static memcached_st *
ketama_client(const uint16_t ports[NODES])
{
    memcached_st *m = memcached_create(NULL);

    assert_non_null(m);
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, 1);
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_KETAMA, 1);
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_REMOVE_FAILED_SERVERS, 0);
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, RETRY_TIMEOUT_S);
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_SERVER_FAILURE_LIMIT, 2);
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, TMO);
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, TMO);
    for (int n = 0; n < NODES; n++)
        assert_int_equal(memcached_server_add(m, "127.0.0.1", ports[n]),
                         MEMCACHED_SUCCESS);
    return m;
}

/* The node the ring gives key i (an index into the ports it was built on). */
static unsigned
node_of(memcached_st *m, unsigned i)
{
    char key[32];
    size_t klen = key_of(i, key, sizeof(key));

    return memcached_generate_hash(m, key, klen);
}

/* Counts the keys of each node on the ring over ports[]; true when every
 * count is within 10 % of even. */
static bool
ring_balanced(const uint16_t ports[NODES], unsigned count[NODES])
{
    memcached_st *m = ketama_client(ports);
    bool balanced = true;

    memset(count, 0, NODES * sizeof(count[0]));
    for (unsigned i = 0; i < KEYS; i++) {
        unsigned n = node_of(m, i);

        assert_true(n < NODES);
        count[n]++;
    }
    for (int n = 0; n < NODES; n++)
        balanced = balanced && count[n] >= EVEN * 9 / 10 && count[n] <= EVEN * 11 / 10;
    memcached_free(m);
    return balanced;
}

/* ---- the nodes ---- */

static long
node_stat(int n, const char *group, const char *name)
{
    char value[64] = "";
    int fd = harness_connect(g_ports[n]);

    assert_true(fd >= 0);
    text_stats(fd, group, name, value, sizeof(value));
    close(fd);
    if (value[0] == '\0')
        fail_msg("node %d: no stat %s", n, name);
    return strtol(value, NULL, 10);
}

static void
stop_nodes(void)
{
    for (int n = 0; n < NODES; n++) {
        if (g_nodes[n] != NULL && server_stop(g_nodes[n]) != 0)
            g_bad_stops++;
        g_nodes[n] = NULL;
    }
}

/* Ports whose ring is balanced, then a node on each; bounded tries. */
static int
cluster_setup(void **state)
{
    (void)state;
    for (int attempt = 0; attempt < PORT_TRIES; attempt++) {
        bool started = true;

        for (int n = 0; n < NODES; n++)
            g_ports[n] = harness_free_port();
        if (g_ports[0] == 0 || g_ports[0] == g_ports[1] ||
            g_ports[1] == g_ports[2] || g_ports[0] == g_ports[2] ||
            !ring_balanced(g_ports, g_ring_count))
            continue;
        for (int n = 0; n < NODES && started; n++) {
            g_nodes[n] = server_start_port(g_ports[n], node_args());
            started = g_nodes[n] != NULL;
        }
        if (started) {
            g_client = ketama_client(g_ports);
            return 0;
        }
        stop_nodes();
    }
    fprintf(stderr, "no balanced ring on free ports in %d tries\n", PORT_TRIES);
    return -1;
}

static int
cluster_teardown(void **state)
{
    (void)state;
    if (g_client != NULL)
        memcached_free(g_client);
    g_client = NULL;
    stop_nodes();
    return g_bad_stops == 0 ? 0 : -1;
}

/* ---- reading the keys back ---- */

/* One get of key i: MEMCACHED_SUCCESS with the right value and flags, or
 * the error; a wrong value or flags fails the test. */
static memcached_return_t
get_key(memcached_st *m, unsigned i)
{
    char key[32], want[256];
    size_t klen = key_of(i, key, sizeof(key));
    size_t want_len = value_of(i, want, sizeof(want));
    size_t len = 0;
    uint32_t flags = 0;
    memcached_return_t rc;
    char *got = memcached_get(m, key, klen, &len, &flags, &rc);

    if (rc == MEMCACHED_SUCCESS) {
        if (got == NULL || len != want_len || memcmp(got, want, len) != 0)
            fail_msg("%s: wrong value (%zu bytes, want %zu)", key, len, want_len);
        if (flags != flags_of(i))
            fail_msg("%s: flags %u, want %u", key, flags, flags_of(i));
    }
    free(got);
    return rc;
}

/*
 * Gets every key, retrying one that fails with an error (not a miss)
 * until deadline_ms; a miss, or an error past the deadline, fails the
 * test. Returns how many gets had to be retried.
 */
static unsigned
get_all(memcached_st *m, int64_t deadline_ms)
{
    unsigned retries = 0;

    for (unsigned i = 0; i < KEYS; i++) {
        memcached_return_t rc;

        while ((rc = get_key(m, i)) != MEMCACHED_SUCCESS) {
            if (rc == MEMCACHED_NOTFOUND)
                fail_msg("ketama:%05u (node %u): a miss", i, node_of(m, i));
            if (harness_now_ms() > deadline_ms)
                fail_msg("ketama:%05u (node %u): %s", i, node_of(m, i),
                         memcached_strerror(m, rc));
            retries++;
            usleep(50 * 1000);
        }
    }
    return retries;
}

/* The first key the ring gives node n. */
static unsigned
first_key_of(unsigned n)
{
    for (unsigned i = 0; i < KEYS; i++)
        if (node_of(g_client, i) == n)
            return i;
    fail_msg("node %u has no key", n);
    return 0;
}

/* ---- the tests ---- */

/* libmemcached's configuration string (memcached(3), what bindings take)
 * puts every key where the behaviors above do: docs/cluster.md gives it. */
static void
test_config_string(void **state)
{
    (void)state;
    char cfg[512];
    memcached_st *m;

    snprintf(cfg, sizeof(cfg),
             "--SERVER=127.0.0.1:%u --SERVER=127.0.0.1:%u --SERVER=127.0.0.1:%u "
             "--BINARY-PROTOCOL --DISTRIBUTION=consistent "
             "--REMOVE-FAILED-SERVERS=0 --RETRY-TIMEOUT=%d "
             "--POLL-TIMEOUT=%d --CONNECT-TIMEOUT=%d",
             g_ports[0], g_ports[1], g_ports[2], RETRY_TIMEOUT_S, TMO, TMO);
    m = memcached(cfg, strlen(cfg));
    assert_non_null(m);
    assert_int_equal(memcached_behavior_get(m, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL), 1);
    assert_int_equal(memcached_behavior_get(m, MEMCACHED_BEHAVIOR_KETAMA), 1);
    assert_int_equal(memcached_behavior_get(m, MEMCACHED_BEHAVIOR_REMOVE_FAILED_SERVERS), 0);
    assert_int_equal(memcached_behavior_get(m, MEMCACHED_BEHAVIOR_RETRY_TIMEOUT),
                     RETRY_TIMEOUT_S);
    for (unsigned i = 0; i < KEYS; i++)
        if (node_of(m, i) != node_of(g_client, i))
            fail_msg("ketama:%05u: node %u, behaviors say %u", i, node_of(m, i),
                     node_of(g_client, i));
    memcached_free(m);
}

static void
test_spread(void **state)
{
    (void)state;
    for (unsigned i = 0; i < KEYS; i++) {
        char key[32], value[256];
        size_t klen = key_of(i, key, sizeof(key));
        size_t vlen = value_of(i, value, sizeof(value));
        memcached_return_t rc = memcached_set(g_client, key, klen, value, vlen,
                                              0, flags_of(i));

        if (rc != MEMCACHED_SUCCESS)
            fail_msg("set %s: %s", key, memcached_strerror(g_client, rc));
    }
    for (int n = 0; n < NODES; n++) {
        long items = node_stat(n, NULL, "curr_items");

        fprintf(stderr, "node %d (port %u): %ld items\n", n, g_ports[n], items);
        assert_int_equal(items, g_ring_count[n]);
        assert_in_range(items, EVEN * 9 / 10, EVEN * 11 / 10);
    }
    assert_int_equal(get_all(g_client, harness_now_ms()), 0);
}

/* Values taken before the kill, compared after the restart. */
static pid_t g_pid_before[NODES];
static long g_items_before[NODES];

/* Waits until node n has nothing left to write to its database. */
static void
wait_drained(int n)
{
    int64_t deadline = harness_now_ms() + DRAIN_TIMEOUT_MS;

    while (node_stat(n, "kvstore", "dirty_items") != 0) {
        if (harness_now_ms() > deadline)
            fail_msg("node %d: dirty_items never reached 0", n);
        usleep(20 * 1000);
    }
}

static void
test_node_down(void **state)
{
    (void)state;
    char key[32];
    unsigned victim_key = first_key_of(VICTIM);
    unsigned other_key = first_key_of((VICTIM + 1) % NODES);
    memcached_return_t rc;

    /* every write older than one flush interval is what must survive;
     * waiting for the queue to drain as well keeps a slow (sanitizer)
     * build from failing on its slowness */
    usleep(2 * FLUSH_INTERVAL_MS * 1000);
    for (int n = 0; n < NODES && !harness_is_memcached(); n++)
        wait_drained(n);
    for (int n = 0; n < NODES; n++) {
        g_pid_before[n] = server_pid(g_nodes[n]);
        g_items_before[n] = node_stat(n, NULL, "curr_items");
    }

    assert_int_equal(server_end(g_nodes[VICTIM], SIGKILL), 0);
    /* the dead node's key is an error, never a miss: no ejection */
    rc = get_key(g_client, victim_key);
    fprintf(stderr, "node down: get: %s\n", memcached_strerror(g_client, rc));
    assert_true(rc != MEMCACHED_SUCCESS && rc != MEMCACHED_NOTFOUND);
    /* again (libmemcached: the reset connection, then a refused one put
     * the node in its RETRY_TIMEOUT; CONNECTION FAILURE both times) */
    rc = get_key(g_client, victim_key);
    fprintf(stderr, "node down: get again: %s\n", memcached_strerror(g_client, rc));
    assert_true(rc != MEMCACHED_SUCCESS && rc != MEMCACHED_NOTFOUND);
    /* a write of its key lands nowhere else (libmemcached: SERVER HAS
     * FAILED AND IS DISABLED UNTIL TIMED RETRY, without trying) */
    rc = memcached_set(g_client, key, key_of(victim_key, key, sizeof(key)),
                       "x", 1, 0, 0);
    fprintf(stderr, "node down: set: %s\n", memcached_strerror(g_client, rc));
    assert_true(rc != MEMCACHED_SUCCESS);
    /* the other nodes serve theirs meanwhile */
    assert_int_equal(get_key(g_client, other_key), MEMCACHED_SUCCESS);
    for (int n = 0; n < NODES; n++)
        if (n != VICTIM)
            assert_int_equal(node_stat(n, NULL, "curr_items"), g_items_before[n]);
}

static void
test_node_back(void **state)
{
    (void)state;
    memcached_st *fresh;
    unsigned retries;

    assert_int_equal(server_restart(g_nodes[VICTIM], node_args()), 0);
    /* it answers (a version reply), not only accepts */
    {
        int fd = harness_connect(g_ports[VICTIM]);
        char line[128];

        assert_true(fd >= 0);
        assert_int_equal(harness_send_str(fd, "version\r\n"), 0);
        assert_true(harness_read_line(fd, line, sizeof(line), TMO) > 0);
        assert_memory_equal(line, "VERSION ", 8);
        close(fd);
    }
    /* the old client: its node-1 connection died with the node; it is
     * retried once RETRY_TIMEOUT passed */
    retries = get_all(g_client, harness_now_ms() + BACK_TIMEOUT_MS);
    fprintf(stderr, "same client: all %d keys back, %u gets retried\n", KEYS,
            retries);
    fresh = ketama_client(g_ports);
    assert_int_equal(get_all(fresh, harness_now_ms()), 0);
    memcached_free(fresh);

    assert_int_equal(node_stat(VICTIM, NULL, "curr_items"), g_items_before[VICTIM]);
    for (int n = 0; n < NODES; n++) {
        if (n == VICTIM)
            continue;
        assert_int_equal(server_pid(g_nodes[n]), g_pid_before[n]);
        assert_true(server_alive(g_nodes[n]));
        assert_int_equal(node_stat(n, NULL, "curr_items"), g_items_before[n]);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_string),
        cmocka_unit_test(test_spread),
        cmocka_unit_test(test_node_down),
        cmocka_unit_test(test_node_back),
    };

    return cmocka_run_group_tests_name("cluster_ketama", tests, cluster_setup,
                                       cluster_teardown);
}
