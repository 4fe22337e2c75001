/*
 * fuzz_check.h - what the fuzz targets assert about a result: a broken
 * promise aborts with the reason, which libFuzzer (and the replay driver)
 * report as a crash with its input.
 */
#ifndef SEM_FUZZ_CHECK_H
#define SEM_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond, ...)                                                     \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                  \
            abort();                                                              \
        }                                                                         \
    } while (0)

/* With FUZZ_VERBOSE set in the environment, the targets say what each
 * input came to (for reading a replay, not while fuzzing). */
#define FUZZ_NOTE(...)                                                            \
    do {                                                                          \
        if (getenv("FUZZ_VERBOSE")) {                                             \
            fprintf(stderr, __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                  \
        }                                                                         \
    } while (0)

#endif
