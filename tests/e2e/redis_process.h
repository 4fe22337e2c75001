/*
 * redis_process.h - a throwaway redis-server for end-to-end tests: started
 * on a free port of 127.0.0.1 with a generated configuration (no
 * persistence, its own folder), never the system's service, and killed
 * with the test however it ends (server_process.h's guarantees). A tiny
 * RESP client sends it commands.
 *
 * Threads: one thread drives a redis_proc.
 */
#ifndef SEM_TEST_REDIS_PROCESS_H
#define SEM_TEST_REDIS_PROCESS_H

#include <stddef.h>
#include <stdint.h>

#include "server_process.h"

typedef struct redis_proc {
    server_proc p;
    uint16_t port;
    char dir[512];  /* its folder: the configuration, nothing else */
    char conf[600];
    char password[128]; /* requirepass; "" for none */
} redis_proc;

#define REDIS_MISSING_MSG                                                                  \
    "redis-server is not installed: these tests need it (run tools/install-deps, or "    \
    "apt-get install redis-server)"

/* The redis-server program, or NULL when it is not installed. */
const char *redis_server_bin(void);

/* Starts redis-server, with a password when password is not NULL and
 * extra configuration lines (may be NULL; e.g. "maxmemory 2mb\n"), and
 * waits until it answers PING. 0, 1 when redis-server is missing (skip),
 * -1 on failure (its log on stderr). */
int redis_start(redis_proc *r, const char *password, const char *extra_conf);
/* kill -9, keeping its port and configuration for redis_restart. */
void redis_kill(redis_proc *r);
/* Starts it again on the same port (empty: nothing is persisted). 0 or -1. */
int redis_restart(redis_proc *r);
/* Kills it and removes its folder. */
void redis_stop(redis_proc *r);

/*
 * Sends one command to r (after AUTH when it has a password; its n arguments, binary-safe with lens; lens NULL:
 * strlen) and reads the whole reply, rendered as text: a status or error
 * line as it is ("+OK", "-ERR ..."), an integer as ":N", a bulk string as
 * its bytes, nil as "(nil)", an array as its elements one a line. The
 * text is malloc'd into *reply. 0, or -1 when Redis did not answer within
 * 5 s.
 */
int redis_command(const redis_proc *r, const char *const *args, const size_t *lens, size_t n,
                  char **reply, size_t *reply_len);
/* The same for a command of plain words split on spaces ("DBSIZE"). */
int redis_simple(const redis_proc *r, const char *words, char **reply);

#endif
