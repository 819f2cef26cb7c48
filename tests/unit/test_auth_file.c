/*
 * test_auth_file.c: unit tests of server/auth_file.c, the -Y user table:
 * a good file loads and checks exact user/password pairs only; each bad
 * line (no colon, empty user, over 256 bytes) and too many users are
 * refused with FILE:LINE; a failed load keeps the table in force; a
 * reload replaces it whole; a missing file says why.
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

#include "server/auth_file.h"

static char path[64];

static void
write_file(const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static bool
check(const char *user, const char *pass)
{
    return auth_file_check(user, strlen(user), pass, strlen(pass));
}

static int
setup(void **state)
{
    (void)state;
    snprintf(path, sizeof(path), "/tmp/mckv-authfile-%ld", (long)getpid());
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    auth_file_teardown();
    unlink(path);
    return 0;
}

static void
test_load_and_check(void **state)
{
    char err[256];
    (void)state;
    write_file("alice:secret1\r\nbob:pw:with:colons\n\ncarol:last");
    assert_int_equal(auth_file_load(path, err, sizeof(err)), 0);
    assert_true(check("alice", "secret1"));
    assert_true(check("bob", "pw:with:colons"));
    assert_true(check("carol", "last"));   /* no final newline */
    assert_false(check("alice", "secret"));
    assert_false(check("alice", "secret12"));
    assert_false(check("alic", "secret1"));
    assert_false(check("bob", "secret1"));
    assert_false(check("", ""));
}

static void
test_bad_lines(void **state)
{
    char err[256];
    char want[128];
    (void)state;
    write_file("alice:secret1\n");
    assert_int_equal(auth_file_load(path, err, sizeof(err)), 0);

    write_file("ok:1\nno colon\n");
    assert_int_equal(auth_file_load(path, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:2: malformed entry, should be "
             "'user:password'", path);
    assert_string_equal(err, want);

    write_file(":nouser\n");
    assert_int_equal(auth_file_load(path, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:1: malformed", path);
    assert_memory_equal(err, want, strlen(want));

    char longline[300];
    memset(longline, 'x', sizeof(longline));
    longline[0] = 'u';
    longline[1] = ':';
    longline[sizeof(longline) - 1] = '\0';
    write_file(longline);
    assert_int_equal(auth_file_load(path, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:1: longer than 256 bytes", path);
    assert_string_equal(err, want);

    /* every failure kept the table in force */
    assert_true(check("alice", "secret1"));
    assert_false(check("ok", "1"));
}

static void
test_too_many(void **state)
{
    char err[256];
    char want[128];
    (void)state;
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (unsigned i = 0; i <= AUTH_FILE_MAX_ENTRIES; i++)
        fprintf(f, "user%u:pw%u\n", i, i);
    fclose(f);
    assert_int_equal(auth_file_load(path, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:%u: more than 4096 users", path,
             AUTH_FILE_MAX_ENTRIES + 1);
    assert_string_equal(err, want);
}

static void
test_reload_replaces(void **state)
{
    char err[256];
    (void)state;
    write_file("alice:1\nbob:2\n");
    assert_int_equal(auth_file_load(path, err, sizeof(err)), 0);
    write_file("alice:1\ncarol:3\n");
    assert_int_equal(auth_file_load(path, err, sizeof(err)), 0);
    assert_true(check("alice", "1"));
    assert_true(check("carol", "3"));
    assert_false(check("bob", "2"));
}

static void
test_missing_file(void **state)
{
    char err[256];
    (void)state;
    unlink(path);
    assert_int_equal(auth_file_load(path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot open: No such file or directory"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_and_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_replaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
