/*
 * redis_url.h - the address of a Redis server, parsed from a URL:
 *
 *   redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]
 *
 * HOST is a name, an IPv4 address or an IPv6 address in brackets; PORT
 * 1..65535 (6379 when absent); DB 0..REDIS_URL_MAX_DB (0 when absent).
 * USER and PASSWORD may hold %XX escapes. rediss:// (TLS) is refused with
 * SEM_EUNSUPPORTED: the hiredis this build links has no TLS.
 *
 * Threads: reentrant. The result is a plain value owned by the caller; it
 * holds the password, so never log it (redis_url_describe leaves it out).
 */
#ifndef SEM_REDIS_URL_H
#define SEM_REDIS_URL_H

#include <stddef.h>

#include "domain/status.h"

#define REDIS_URL_DEFAULT_PORT 6379
#define REDIS_URL_MAX_DB 1000000
#define REDIS_URL_HOST_MAX 255
#define REDIS_URL_CRED_MAX 255

typedef struct redis_url {
    char host[REDIS_URL_HOST_MAX + 1];
    int port;
    int db;
    char user[REDIS_URL_CRED_MAX + 1];     /* "" = the default user */
    char password[REDIS_URL_CRED_MAX + 1]; /* "" with has_password 0 = no AUTH */
    int has_password;
} redis_url;

/* SEM_EINVAL naming the part at fault; SEM_EUNSUPPORTED for rediss://. */
sem_status redis_url_parse(const char *url, redis_url *out, sem_err *err);

/* "redis://HOST:PORT/DB" (with "USER:***@" when credentials are set). */
void redis_url_describe(const redis_url *u, char *out, size_t cap);

#endif
