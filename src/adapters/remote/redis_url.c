/*
 * redis_url.c - parsing of redis:// URLs (grammar in redis_url.h).
 *
 * The URL is read left to right: scheme, optional credentials (up to the
 * last '@'), host (bracketed for IPv6), optional port, optional /DB.
 * Anything else (a query, a fragment, a second path segment) is refused
 * rather than ignored, so a typo never connects somewhere unintended.
 */
#include "redis_url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Copies s[0..n) into out[cap] decoding %XX; 0 on a bad escape or overflow. */
static int unescape(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return 0;
            int hi = hex_val(s[i + 1]), lo = hex_val(s[i + 2]);
            if (hi < 0 || lo < 0)
                return 0;
            c = (char)(hi * 16 + lo);
            i += 2;
            if (c == '\0')
                return 0;
        }
        if (o + 1 >= cap)
            return 0;
        out[o++] = c;
    }
    out[o] = '\0';
    return 1;
}

/* A decimal integer in [lo, hi] spelling all of s[0..n); 0 otherwise. */
static int parse_int(const char *s, size_t n, long lo, long hi, int *out)
{
    if (n == 0 || n > 9)
        return 0;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return 0;
    *out = (int)v;
    return 1;
}

static sem_status parse_credentials(const char *s, size_t n, redis_url *u, const char *url,
                                    sem_err *err)
{
    const char *colon = memchr(s, ':', n);
    if (!colon) /* redis://PASSWORD@HOST is not valid: a password needs its colon */
        return sem_err_set(err, SEM_EINVAL,
                           "remote cache URL '%.*s...': credentials must be USER:PASSWORD or "
                           ":PASSWORD before '@'", (int)(s - url), url);
    size_t ulen = (size_t)(colon - s);
    if (!unescape(s, ulen, u->user, sizeof u->user) ||
        !unescape(colon + 1, n - ulen - 1, u->password, sizeof u->password))
        return sem_err_set(err, SEM_EINVAL,
                           "remote cache URL: bad %%-escape or user/password longer than %d "
                           "bytes", REDIS_URL_CRED_MAX);
    u->has_password = 1;
    return SEM_OK;
}

static sem_status parse_host_port(const char *s, size_t n, redis_url *u, sem_err *err)
{
    const char *host = s, *port = NULL;
    size_t hlen;
    if (n && s[0] == '[') { /* [IPv6] */
        const char *close = memchr(s, ']', n);
        if (!close)
            return sem_err_set(err, SEM_EINVAL, "remote cache URL: '[' without ']' in the host");
        host = s + 1;
        hlen = (size_t)(close - host);
        const char *rest = close + 1;
        if (rest < s + n) {
            if (*rest != ':')
                return sem_err_set(err, SEM_EINVAL, "remote cache URL: junk after ']'");
            port = rest + 1;
        }
    } else {
        const char *colon = memchr(s, ':', n);
        hlen = colon ? (size_t)(colon - s) : n;
        port = colon ? colon + 1 : NULL;
    }
    if (hlen == 0 || hlen > REDIS_URL_HOST_MAX)
        return sem_err_set(err, SEM_EINVAL, "remote cache URL: the host is empty or longer "
                                            "than %d bytes", REDIS_URL_HOST_MAX);
    memcpy(u->host, host, hlen);
    u->host[hlen] = '\0';
    if (strpbrk(u->host, "/?#@% "))
        return sem_err_set(err, SEM_EINVAL, "remote cache URL: bad character in host '%s'",
                           u->host);
    u->port = REDIS_URL_DEFAULT_PORT;
    if (port && !parse_int(port, (size_t)(s + n - port), 1, 65535, &u->port))
        return sem_err_set(err, SEM_EINVAL, "remote cache URL: port '%.*s' is not 1..65535",
                           (int)(s + n - port), port);
    return SEM_OK;
}

sem_status redis_url_parse(const char *url, redis_url *out, sem_err *err)
{
    memset(out, 0, sizeof *out);
    if (!url)
        return sem_err_set(err, SEM_EINVAL, "remote cache URL: NULL");
    if (strncmp(url, "rediss://", 9) == 0)
        return sem_err_set(err, SEM_EUNSUPPORTED,
                           "remote cache URL '%s': rediss:// (TLS) is not supported by this "
                           "build (its hiredis has no TLS); use redis:// on a trusted network "
                           "or a TLS tunnel", "rediss://...");
    if (strncmp(url, "redis://", 8) != 0)
        return sem_err_set(err, SEM_EINVAL, "remote cache URL: must start with redis://");
    const char *s = url + 8;
    size_t len = strcspn(s, "/?#");
    if (s[len] == '?' || s[len] == '#')
        return sem_err_set(err, SEM_EINVAL, "remote cache URL: query and fragment are not "
                                            "accepted");
    const char *at = NULL;
    for (const char *p = s; p < s + len; p++)
        if (*p == '@')
            at = p;
    sem_status st = SEM_OK;
    if (at)
        st = parse_credentials(s, (size_t)(at - s), out, url, err);
    const char *hp = at ? at + 1 : s;
    if (st == SEM_OK)
        st = parse_host_port(hp, (size_t)(s + len - hp), out, err);
    if (st != SEM_OK)
        return st;
    const char *path = s + len;
    if (*path == '/' && path[1]) {
        if (!parse_int(path + 1, strlen(path + 1), 0, REDIS_URL_MAX_DB, &out->db))
            return sem_err_set(err, SEM_EINVAL, "remote cache URL: database '%s' is not a "
                                                "number in 0..%d", path + 1, REDIS_URL_MAX_DB);
    }
    return SEM_OK;
}

void redis_url_describe(const redis_url *u, char *out, size_t cap)
{
    int v6 = strchr(u->host, ':') != NULL;
    snprintf(out, cap, "redis://%s%s%s%s%s%s:%d/%d", u->has_password ? u->user : "",
             u->has_password ? ":***@" : "", v6 ? "[" : "", u->host, v6 ? "]" : "", "", u->port,
             u->db);
}
