/*
 * redis_url.c - parsing of redis:// and rediss:// URLs (grammar in
 * redis_url.h).
 *
 * The URL is read left to right: scheme, optional credentials (up to the
 * last '@' before the first '/', '?' or '#'), host (bracketed for IPv6),
 * optional port, optional /DB, then for rediss:// optional TLS options.
 * Anything else (a fragment, a second path segment, an unknown option) is
 * refused rather than ignored, so a typo never connects somewhere
 * unintended or less safely than asked.
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

/* Copies one option's value s[0..n) (%XX-decoded) into out[cap]. */
static sem_status option_path(const char *name, const char *s, size_t n, char *out, size_t cap,
                              sem_err *err)
{
    if (out[0])
        return sem_err_set(err, SEM_EINVAL, "remote cache URL: option '%s' is given twice", name);
    if (n == 0 || !unescape(s, n, out, cap))
        return sem_err_set(err, SEM_EINVAL, "remote cache URL: option '%s' needs a path of 1..%d "
                                            "bytes (with valid %%-escapes)", name, (int)cap - 1);
    for (const char *c = out; *c; c++)
        if ((unsigned char)*c < ' ' || *c == 0x7f)
            return sem_err_set(err, SEM_EINVAL, "remote cache URL: option '%s' holds a control "
                                                "character", name);
    return SEM_OK;
}

/* One "name=value" of the query, s[0..n). */
static sem_status parse_option(const char *s, size_t n, redis_url *u, int *insecure_seen,
                               sem_err *err)
{
    const char *eq = memchr(s, '=', n);
    size_t nlen = eq ? (size_t)(eq - s) : n;
    const char *v = eq ? eq + 1 : s + n;
    size_t vlen = (size_t)(s + n - v);
    char name[16];
    snprintf(name, sizeof name, "%.*s", (int)(nlen < sizeof name ? nlen : sizeof name - 1), s);
    if (nlen >= sizeof name || !eq)
        return sem_err_set(err, SEM_EINVAL, "remote cache URL: option '%.*s' is not NAME=VALUE "
                                            "with NAME one of cacert, cert, key, insecure",
                           (int)(n > 64 ? 64 : n), s);
    if (strcmp(name, "cacert") == 0)
        return option_path(name, v, vlen, u->tls_ca, sizeof u->tls_ca, err);
    if (strcmp(name, "cert") == 0)
        return option_path(name, v, vlen, u->tls_cert, sizeof u->tls_cert, err);
    if (strcmp(name, "key") == 0)
        return option_path(name, v, vlen, u->tls_key, sizeof u->tls_key, err);
    if (strcmp(name, "insecure") == 0) {
        if (*insecure_seen)
            return sem_err_set(err, SEM_EINVAL, "remote cache URL: option 'insecure' is given "
                                                "twice");
        if (vlen != 1 || (v[0] != '0' && v[0] != '1'))
            return sem_err_set(err, SEM_EINVAL, "remote cache URL: insecure='%.*s' must be 0 or 1",
                               (int)(vlen > 32 ? 32 : vlen), v);
        *insecure_seen = 1;
        u->tls_insecure = v[0] == '1';
        return SEM_OK;
    }
    return sem_err_set(err, SEM_EINVAL, "remote cache URL: unknown option '%s' (known: cacert, "
                                        "cert, key, insecure)", name);
}

/* The query q (after '?'): options separated by '&', then their checks. */
static sem_status parse_options(const char *q, redis_url *u, sem_err *err)
{
    int insecure_seen = 0;
    for (const char *s = q;;) {
        size_t n = strcspn(s, "&");
        if (n == 0)
            return sem_err_set(err, SEM_EINVAL, "remote cache URL: an empty option ('?&', '&&' "
                                                "or a trailing '&')");
        sem_status st = parse_option(s, n, u, &insecure_seen, err);
        if (st != SEM_OK)
            return st;
        if (s[n] == '\0')
            break;
        s += n + 1;
    }
    if (u->tls_key[0] && !u->tls_cert[0])
        return sem_err_set(err, SEM_EINVAL, "remote cache URL: key= without cert= (the client "
                                            "certificate it belongs to)");
    if (u->tls_insecure && u->tls_ca[0])
        return sem_err_set(err, SEM_EINVAL, "remote cache URL: insecure=1 and cacert= contradict "
                                            "each other (insecure=1 verifies nothing)");
    return SEM_OK;
}

sem_status redis_url_parse(const char *url, redis_url *out, sem_err *err)
{
    memset(out, 0, sizeof *out);
    if (!url)
        return sem_err_set(err, SEM_EINVAL, "remote cache URL: NULL");
    size_t scheme = 0;
    if (strncmp(url, "rediss://", 9) == 0) {
        out->tls = 1;
        scheme = 9;
    } else if (strncmp(url, "redis://", 8) == 0) {
        scheme = 8;
    } else {
        return sem_err_set(err, SEM_EINVAL, "remote cache URL: must start with redis:// or "
                                            "rediss:// (TLS)");
    }
    const char *s = url + scheme;
    size_t len = strcspn(s, "/?#");
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
    const char *p = s + len;
    if (*p == '/') {
        size_t dlen = strcspn(p + 1, "?#");
        if (dlen && !parse_int(p + 1, dlen, 0, REDIS_URL_MAX_DB, &out->db))
            return sem_err_set(err, SEM_EINVAL, "remote cache URL: database '%.*s' is not a "
                                                "number in 0..%d", (int)(dlen > 64 ? 64 : dlen),
                               p + 1, REDIS_URL_MAX_DB);
        p += 1 + dlen;
    }
    if (*p == '#' || strchr(p, '#'))
        return sem_err_set(err, SEM_EINVAL, "remote cache URL: a fragment ('#') is not accepted");
    if (*p == '?' && !out->tls)
        return sem_err_set(err, SEM_EINVAL, "remote cache URL: options ('?...') are for "
                                            "rediss:// (TLS) only");
    if (*p == '?')
        return parse_options(p + 1, out, err);
    return SEM_OK;
}

static const char *scheme_of(const redis_url *u) { return u->tls ? "rediss" : "redis"; }

void redis_url_describe(const redis_url *u, char *out, size_t cap)
{
    int v6 = strchr(u->host, ':') != NULL;
    snprintf(out, cap, "%s://%s%s%s%s%s:%d/%d", scheme_of(u), u->has_password ? u->user : "",
             u->has_password ? ":***@" : "", v6 ? "[" : "", u->host, v6 ? "]" : "", u->port,
             u->db);
}

void redis_url_describe_tls(const redis_url *u, char *out, size_t cap)
{
    if (!u->tls) {
        snprintf(out, cap, "%s", "");
        return;
    }
    char client[REDIS_URL_PATH_MAX * 2 + 64] = "";
    if (u->tls_cert[0])
        snprintf(client, sizeof client, ", client certificate %s%s%s", u->tls_cert,
                 u->tls_key[0] ? " with key " : "", u->tls_key);
    if (u->tls_insecure)
        snprintf(out, cap, "TLS, the server's certificate and name NOT verified (insecure=1)%s",
                 client);
    else if (u->tls_ca[0])
        snprintf(out, cap, "TLS, the server's certificate and name verified against CA file %s%s",
                 u->tls_ca, client);
    else
        snprintf(out, cap, "TLS, the server's certificate and name verified against the "
                           "system's CA store%s", client);
}
