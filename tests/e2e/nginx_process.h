/*
 * nginx_process.h - a throwaway nginx for end-to-end tests: Debian's
 * binary run in the foreground (daemon off) with -p a temporary prefix and
 * -c a generated configuration (the one docs/several-nodes.md gives, on a
 * free port of 127.0.0.1, in front of the given semantic servers), never
 * the system's service, and killed with the test however it ends
 * (server_process.h's guarantees).
 *
 * Threads: one thread drives an nginx_proc.
 */
#ifndef SEM_TEST_NGINX_PROCESS_H
#define SEM_TEST_NGINX_PROCESS_H

#include <stddef.h>
#include <stdint.h>

#include "server_process.h"

typedef struct nginx_proc {
    server_proc p;
    uint16_t port;
    char prefix[512]; /* its folder: configuration, logs, temporary files */
} nginx_proc;

#define NGINX_MISSING_MSG                                                                  \
    "nginx is not installed: these tests need it (run tools/install-deps, or apt-get "    \
    "install nginx)"

/* The nginx program, or NULL when it is not installed. */
const char *nginx_bin(void);

/* The configuration for a prefix folder, a listen port and the semantic
 * servers' ports (malloc'd). */
char *nginx_config(const char *prefix, uint16_t listen, const uint16_t *upstreams, size_t n);

/* Starts nginx in front of the servers and waits until it accepts
 * connections. 0, 1 when nginx is missing (skip), -1 on failure (its log
 * on stderr). */
int nginx_start(nginx_proc *n, const uint16_t *upstreams, size_t n_upstreams);
/* Kills it and removes its folder. */
void nginx_stop(nginx_proc *n);

/* Its error log so far (malloc'd): where it says which upstream failed. */
char *nginx_error_log(const nginx_proc *n);

#endif
