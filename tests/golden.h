/*
 * golden.h - locating and reading the reference outputs in ../shared/golden
 * (or SEMANTIC_TESTDATA) and the subset copied into tests/data.
 */
#ifndef SEM_TEST_GOLDEN_H
#define SEM_TEST_GOLDEN_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static inline int golden_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* The full reference data: $SEMANTIC_TESTDATA, else <source>/../shared/golden; NULL if absent. */
static inline const char *golden_full_root(void)
{
    static char buf[4096]; /* test-process configuration, set once */
    const char *env = getenv("SEMANTIC_TESTDATA");
    if (env && *env)
        return golden_exists(env) ? env : NULL;
    snprintf(buf, sizeof buf, "%s/../../../shared/golden", SEM_TEST_DATA);
    return golden_exists(buf) ? buf : NULL;
}

/* Finds a file under the full root (models/ sits next to golden/) or tests/data. */
static inline int golden_find(char *out, size_t cap, const char *rel_golden, const char *rel_local)
{
    const char *full = golden_full_root();
    if (full && rel_golden) {
        if (snprintf(out, cap, "%s/%s", full, rel_golden) < (int)cap && golden_exists(out))
            return 1;
    }
    if (snprintf(out, cap, "%s/%s", SEM_TEST_DATA, rel_local) >= (int)cap)
        return 0;
    return golden_exists(out);
}

static inline json_t *golden_load_json(const char *path)
{
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (!j)
        fprintf(stderr, "cannot read %s: %s (line %d)\n", path, e.text, e.line);
    return j;
}

/* Reads n floats from a raw little-endian f32 file into a malloc'd buffer. */
static inline float *golden_load_f32(const char *path, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    float *v = malloc(n * sizeof *v);
    if (v && fread(v, sizeof *v, n, f) != n) {
        free(v);
        v = NULL;
    }
    fclose(f);
    return v;
}

#endif
