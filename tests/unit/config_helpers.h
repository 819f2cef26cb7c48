/*
 * config_helpers.h: what the configuration tests share (test_config*.c): a
 * fixture with a temporary directory for INI files and a config, and
 * helpers that load a file or parse a command line into it with cmocka
 * checks.
 */
#ifndef MCKV_TESTS_CONFIG_HELPERS_H
#define MCKV_TESTS_CONFIG_HELPERS_H

#include "server/config.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])) - 1)

struct fixture {
    char dir[64];          /* temporary directory of the INI files */
    char path[128];        /* the current INI file */
    struct config cfg;
    char err[512];
    char *notes;           /* what the last parse() printed as notices */
};

/* cmocka setup and teardown of each test: *state is a struct fixture. */
int setup(void **state);
int teardown(void **state);

void write_file(const char *path, const char *text);
/* Writes `text` to the fixture's file and loads it; returns the status. */
int load_text(struct fixture *f, const char *text);
/* Loads `text`, expects failure with "PATH:<rest>" in err. */
void expect_load_error(struct fixture *f, const char *text, const char *rest);
/* Parses argv with a fresh default config; what --help or --version print
 * goes to *out_text (malloc'd) when it is not NULL, notices to f->notes. */
enum config_action parse(struct fixture *f, int argc, char **argv, char **out_text);

#endif
