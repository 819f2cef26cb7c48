/*
 * config_helpers.c: the configuration tests' fixture (config_helpers.h).
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

#include "tests/unit/config_helpers.h"

int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    strcpy(f->dir, "/tmp/mckv-test-config-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/mckv.ini", f->dir);
    if (config_init(&f->cfg) != 0) {
        rmdir(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

int
teardown(void **state)
{
    struct fixture *f = *state;

    config_deinit(&f->cfg);
    unlink(f->path);
    rmdir(f->dir);
    free(f->notes);
    free(f);
    return 0;
}

void
write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

/* Writes `text` to the fixture's file and loads it; returns the status. */
int
load_text(struct fixture *f, const char *text)
{
    write_file(f->path, text);
    f->err[0] = '\0';
    return config_load_file(&f->cfg, f->path, f->err, sizeof(f->err));
}

/* Loads `text`, expects failure with "PATH:<rest>" in err. */
void
expect_load_error(struct fixture *f, const char *text, const char *rest)
{
    char want[512];

    snprintf(want, sizeof(want), "%s:%s", f->path, rest);
    assert_true(load_text(f, text) < 0);
    assert_string_equal(f->err, want);
}

/* Parses argv with a fresh default config. */
enum config_action
parse(struct fixture *f, int argc, char **argv, char **out_text)
{
    char *buf = NULL;
    size_t len = 0, nlen = 0;
    FILE *out = open_memstream(&buf, &len);
    FILE *notes;
    enum config_action act;

    assert_non_null(out);
    free(f->notes);
    f->notes = NULL;
    notes = open_memstream(&f->notes, &nlen);
    assert_non_null(notes);
    config_deinit(&f->cfg);
    assert_int_equal(config_init(&f->cfg), 0);
    f->err[0] = '\0';
    act = config_parse_args(&f->cfg, argc, argv, out, notes, f->err,
                            sizeof(f->err));
    assert_int_equal(fclose(out), 0);
    assert_int_equal(fclose(notes), 0);
    if (out_text != NULL)
        *out_text = buf;
    else
        free(buf);
    return act;
}
