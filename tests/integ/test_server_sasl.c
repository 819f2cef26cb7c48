/*
 * test_server_sasl.c: SASL (-S) through libmemcached, a real client:
 * memcached_set_sasl_auth_data() with the right password sets and gets,
 * with a wrong one the store fails with an authentication error, and a
 * client that does not authenticate gets nothing; then the raw bytes of
 * memcached 1.6.18: LIST_MECHS, AUTH_ERROR before authentication (and the
 * close), "Authenticated".
 *
 * The sasldb is made here by `saslpasswd2 -a memcached` in a temporary
 * directory, which is also SASL_CONF_PATH (its memcached.conf: mech_list
 * plain, sasldb_path). Skips (77) without saslpasswd2 (sasl2-bin). The
 * same bytes come from MCKVD=/usr/bin/memcached.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libmemcached/memcached.h>

#include "tests/integ/harness.h"
#include "tests/integ/server_helpers.h"

static char sasl_dir[] = "/tmp/mckv-sasl-XXXXXX";

static const char *const sasl_server_args[] = { "-S", "-t", "2", NULL };

static int
sasl_group_setup(void **state)
{
    (void)state;
    g_srv = server_start(sasl_server_args);
    return g_srv != NULL ? 0 : -1;
}

static memcached_st *
lmc_client(const char *user, const char *password)
{
    memcached_st *m = memcached_create(NULL);
    assert_non_null(m);
    memcached_server_add(m, "127.0.0.1", server_port(g_srv));
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, 1);
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, TMO);
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, TMO);
    if (user != NULL)
        assert_int_equal(memcached_set_sasl_auth_data(m, user, password),
                         MEMCACHED_SUCCESS);
    return m;
}

static void
test_lmc_right_password(void **state)
{
    (void)state;
    memcached_st *m = lmc_client("alice", "secret1");
    memcached_return_t rc = memcached_set(m, "k", 1, "v1", 2, 0, 7);
    assert_int_equal(rc, MEMCACHED_SUCCESS);
    size_t len = 0;
    uint32_t flags = 0;
    char *v = memcached_get(m, "k", 1, &len, &flags, &rc);
    assert_int_equal(rc, MEMCACHED_SUCCESS);
    assert_non_null(v);
    assert_int_equal(len, 2);
    assert_memory_equal(v, "v1", 2);
    assert_int_equal(flags, 7);
    free(v);
    memcached_destroy_sasl_auth_data(m);
    memcached_free(m);
}

static void
test_lmc_wrong_password(void **state)
{
    (void)state;
    memcached_st *m = lmc_client("alice", "wrong");
    memcached_return_t rc = memcached_set(m, "k2", 2, "v2", 2, 0, 0);
    assert_int_not_equal(rc, MEMCACHED_SUCCESS);
    memcached_destroy_sasl_auth_data(m);
    memcached_free(m);
    /* nothing was stored: an authenticated client does not see k2 */
    m = lmc_client("alice", "secret1");
    size_t len = 0;
    uint32_t flags = 0;
    char *v = memcached_get(m, "k2", 2, &len, &flags, &rc);
    assert_int_equal(rc, MEMCACHED_NOTFOUND);
    free(v);
    memcached_destroy_sasl_auth_data(m);
    memcached_free(m);
}

static void
test_lmc_no_auth(void **state)
{
    (void)state;
    memcached_st *m = lmc_client(NULL, NULL);
    memcached_return_t rc = memcached_set(m, "k3", 2, "v3", 2, 0, 0);
    assert_int_not_equal(rc, MEMCACHED_SUCCESS);
    memcached_free(m);
}

static void
test_raw_bytes(void **state)
{
    (void)state;
    struct obuf b = { 0 };
    struct bmsg m;

    int fd = bconn();
    breq_simple(&b, BIN_OP_SASL_LIST_MECHS, 1);
    ob_send(fd, &b);
    bexpect(fd, &m, BIN_OP_SASL_LIST_MECHS, BIN_STATUS_SUCCESS, 1);
    check_value(&m, 0, 0, "PLAIN");
    bm_free(&m);
    /* a GET before AUTH: "Auth failure." and the connection closes */
    breq_key(&b, BIN_OP_GET, "k", 2, 0);
    ob_send(fd, &b);
    bexpect_err(fd, &m, BIN_OP_GET, BIN_STATUS_AUTH_ERROR, 2, "Auth failure.");
    expect_closed(fd);
    close(fd);

    fd = bconn();
    static const char wrong[] = "\0alice\0nope";
    ob_req(&b, BIN_OP_SASL_AUTH, "PLAIN", 5, NULL, 0, wrong, sizeof(wrong) - 1,
           3, 0);
    ob_send(fd, &b);
    bexpect_err(fd, &m, BIN_OP_SASL_AUTH, BIN_STATUS_AUTH_ERROR, 3,
                "Auth failure.");
    static const char right[] = "\0alice\0secret1";
    ob_req(&b, BIN_OP_SASL_AUTH, "PLAIN", 5, NULL, 0, right, sizeof(right) - 1,
           4, 0);
    breq_key(&b, BIN_OP_GET, "k", 5, 0);
    ob_send(fd, &b);
    bexpect(fd, &m, BIN_OP_SASL_AUTH, BIN_STATUS_SUCCESS, 4);
    check_value(&m, 0, 0, "Authenticated");
    bm_free(&m);
    bexpect(fd, &m, BIN_OP_GET, BIN_STATUS_SUCCESS, 5);
    check_value(&m, 4, 0, "v1");
    bm_free(&m);
    close(fd);
    ob_free(&b);
}

/* The sasldb and memcached.conf, in sasl_dir. 0, or 77 to skip. */
static int
make_sasldb(void)
{
    char cmd[512];
    if (system("command -v saslpasswd2 >/dev/null 2>&1") != 0) {
        fprintf(stderr, "test_server_sasl: saslpasswd2 not installed: skip\n");
        return 77;
    }
    if (mkdtemp(sasl_dir) == NULL)
        return 1;
    snprintf(cmd, sizeof(cmd), "printf secret1 | saslpasswd2 -a memcached -c "
             "-p -f %s/sasldb alice", sasl_dir);
    if (system(cmd) != 0)
        return 1;
    snprintf(cmd, sizeof(cmd), "%s/memcached.conf", sasl_dir);
    FILE *f = fopen(cmd, "w");
    if (f == NULL)
        return 1;
    fprintf(f, "mech_list: plain\nsasldb_path: %s/sasldb\n", sasl_dir);
    fclose(f);
    setenv("SASL_CONF_PATH", sasl_dir, 1);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lmc_right_password),
        cmocka_unit_test(test_lmc_wrong_password),
        cmocka_unit_test(test_lmc_no_auth),
        cmocka_unit_test(test_raw_bytes),
    };
    int rc = make_sasldb();
    if (rc != 0)
        return rc;
    rc = cmocka_run_group_tests_name("sasl", tests, sasl_group_setup,
                                     group_teardown);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", sasl_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_server_sasl: cannot remove %s\n", sasl_dir);
    return rc != 0 || g_bad_stops != 0;
}
