/*
 * redis_url.h - the address of a Redis server, parsed from a URL:
 *
 *   redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]
 *   rediss://[[USER]:PASSWORD@]HOST[:PORT][/DB][?OPTION=VALUE[&OPTION=VALUE]...]
 *
 * HOST is a name, an IPv4 address or an IPv6 address in brackets; PORT
 * 1..65535 (6379 when absent); DB 0..REDIS_URL_MAX_DB (0 when absent).
 * USER, PASSWORD and the options' values may hold %XX escapes.
 *
 * rediss:// turns TLS on: the server's certificate is verified against the
 * system's CA store, and its name against HOST, unless an option says
 * otherwise. The options (rediss:// only; each at most once):
 *
 *   cacert=PATH   the CA certificates (PEM) to verify the server against,
 *                 instead of the system's store
 *   cert=PATH     a client certificate (PEM, may hold its chain), for a
 *                 server that asks for one (tls-auth-clients yes)
 *   key=PATH      its private key (PEM); without it, read from cert's file
 *   insecure=1    no verification at all (the link is encrypted, not
 *                 authenticated); insecure=0 is the default
 *
 * Anything else (another option, a value that is not a path, an option of
 * redis://, a fragment, a second path segment) is refused rather than
 * ignored, so a typo never weakens or misdirects the connection.
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
#define REDIS_URL_PATH_MAX 1023

typedef struct redis_url {
    char host[REDIS_URL_HOST_MAX + 1];
    int port;
    int db;
    char user[REDIS_URL_CRED_MAX + 1];     /* "" = the default user */
    char password[REDIS_URL_CRED_MAX + 1]; /* "" with has_password 0 = no AUTH */
    int has_password;
    int tls;                                /* rediss:// */
    int tls_insecure;                       /* insecure=1 */
    char tls_ca[REDIS_URL_PATH_MAX + 1];    /* cacert=; "" = the system's CA store */
    char tls_cert[REDIS_URL_PATH_MAX + 1];  /* cert=; "" = no client certificate */
    char tls_key[REDIS_URL_PATH_MAX + 1];   /* key=; "" = the key is in tls_cert's file */
} redis_url;

/* SEM_EINVAL naming the part at fault (the password is never quoted). */
sem_status redis_url_parse(const char *url, redis_url *out, sem_err *err);

/* "redis://HOST:PORT/DB" or "rediss://...", with "USER:***@" when
 * credentials are set; never the options (redis_url_describe_tls). */
void redis_url_describe(const redis_url *u, char *out, size_t cap);

/* How a rediss:// connection is checked, for a log line: "TLS, the
 * server's certificate and name verified against CA file PATH, client
 * certificate PATH with key PATH", or "... NOT verified (insecure=1)";
 * "" for redis://. Paths are not secrets. */
void redis_url_describe_tls(const redis_url *u, char *out, size_t cap);

#endif
