/*
 * cli.c - exit codes, error printing and strict number parsing.
 */
#include "cli.h"
#include "base/deadline.h"
#include "base/strbuf.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cli_exit_code(sem_status st)
{
    switch (st) {
    case SEM_OK: return 0;
    case SEM_EINVAL: case SEM_EREQUEST: return 2;
    case SEM_ENOTFOUND: return 3;
    case SEM_ECORRUPT: case SEM_EINCOMPAT: return 4;
    case SEM_EUNSUPPORTED: return 5;
    case SEM_ETOOLARGE: return 6;
    case SEM_EIO: return 7;
    case SEM_ENOMEM: return 8;
    default: return 1;
    }
}

int cli_fail(const char *cmd, const sem_err *err)
{
    fprintf(stderr, "semantic %s: %s\n", cmd, sem_err_text(err));
    return cli_exit_code(err->status);
}

static void usage_hint(const char *cmd)
{
    fprintf(stderr, "Run 'semantic %s%s--help' for the usage.\n", cmd ? cmd : "", cmd ? " " : "");
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char reason[SEM_ERR_DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    fprintf(stderr, "semantic%s%s: %s\n", cmd ? " " : "", cmd ? cmd : "", reason);
    usage_hint(cmd);
    return 2;
}

int cli_usage_fail(const char *cmd, const sem_err *err)
{
    return cli_usage_error(cmd, "%s", sem_err_text(err));
}

int cli_option_error(const char *cmd, int ch, int argc, char *const *argv)
{
    /* The option as typed: a short one (optopt) inside its cluster, which
     * getopt has not stepped past yet, or argv[optind - 1]. */
    char opt[128];
    const char *cur = optind < argc ? argv[optind] : NULL;
    const char *prev = optind > 0 && optind - 1 < argc ? argv[optind - 1] : NULL;
    if (optopt > 0 && optopt < 128 && isprint(optopt) && cur && cur[0] == '-' &&
        cur[1] != '-' && strchr(cur + 1, optopt))
        snprintf(opt, sizeof opt, "-%c", optopt);
    else if (prev && strncmp(prev, "--", 2) == 0)
        snprintf(opt, sizeof opt, "%.*s", (int)strcspn(prev, "="), prev);
    else if (optopt > 0 && optopt < 128 && isprint(optopt))
        snprintf(opt, sizeof opt, "-%c", optopt);
    else
        snprintf(opt, sizeof opt, "%s", prev ? prev : "?");
    if (ch == ':')
        return cli_usage_error(cmd, "option '%s' needs a value", opt);
    return cli_usage_error(cmd, "unknown option '%s'", opt);
}

sem_status cli_check_ctx(uint32_t ctx, uint32_t n_ctx_train, const char *path, sem_err *err)
{
    const char *base = path ? strrchr(path, '/') : NULL;
    base = base ? base + 1 : path;
    if (n_ctx_train && ctx > n_ctx_train)
        return sem_err_set(err, SEM_EINVAL,
                           "a context of %u tokens is more than %s was trained for (%u tokens)",
                           ctx, base && *base ? base : "the model", n_ctx_train);
    return SEM_OK;
}

sem_status cli_parse_u64(const char *opt, const char *s, uint64_t *out, sem_err *err)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-')
        return sem_err_set(err, SEM_EINVAL, "%s: '%s' is not a non-negative integer", opt,
                           s ? s : "");
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return sem_err_set(err, SEM_EINVAL, "%s: '%s' is not a non-negative integer", opt, s);
    *out = v;
    return SEM_OK;
}

sem_status cli_parse_u32(const char *opt, const char *s, uint32_t min, uint32_t max,
                         uint32_t *out, sem_err *err)
{
    uint64_t v;
    sem_status st = cli_parse_u64(opt, s, &v, err);
    if (st != SEM_OK)
        return st;
    if (v < min || v > max)
        return sem_err_set(err, SEM_EINVAL, "%s: %llu is outside %u..%u", opt,
                           (unsigned long long)v, min, max);
    *out = (uint32_t)v;
    return SEM_OK;
}

sem_status cli_parse_f32(const char *opt, const char *s, float min, float max, float *out,
                         sem_err *err)
{
    char *end;
    errno = 0;
    float v = s ? strtof(s, &end) : 0.0f;
    if (!s || !*s || errno || *end || !isfinite(v))
        return sem_err_set(err, SEM_EINVAL, "%s: '%s' is not a number", opt, s ? s : "");
    if (v < min || v > max)
        return sem_err_set(err, SEM_EINVAL, "%s: %g is outside %g..%g", opt, v, min, max);
    *out = v;
    return SEM_OK;
}

sem_status cli_read_file(const char *path, char **out, size_t *len, sem_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return sem_err_set(err, errno == ENOENT ? SEM_ENOTFOUND : SEM_EIO, "cannot open %s: %s",
                           path, strerror(errno));
    strbuf b = {0};
    char chunk[1 << 16];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        strbuf_append(&b, chunk, got);
    int bad = ferror(f);
    fclose(f);
    if (!bad && !b.oom && !b.data && !(b.data = calloc(1, 1))) /* empty: still a string */
        b.oom = 1;
    if (b.oom || bad) {
        strbuf_free(&b);
        return bad ? sem_err_set(err, SEM_EIO, "error reading %s", path)
                   : sem_err_set(err, SEM_ENOMEM, "out of memory reading %s", path);
    }
    *out = b.data;
    *len = b.len;
    return SEM_OK;
}

