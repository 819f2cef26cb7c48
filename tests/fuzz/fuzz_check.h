/*
 * fuzz_check.h: the fuzz targets' invariant check. A broken invariant
 * names itself and where it is, then abort()s, which libFuzzer reports as
 * a crash with the input that caused it.
 */
#ifndef MCKV_TESTS_FUZZ_CHECK_H
#define MCKV_TESTS_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "invariant failed: %s (%s line %d)\n", #cond,   \
                    __FILE__, __LINE__);                                    \
            abort();                                                        \
        }                                                                   \
    } while (0)

#endif
