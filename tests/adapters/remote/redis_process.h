/*
 * redis_process.h - a throwaway redis-server for tests: started on a free
 * 127.0.0.1 port with its own config and folder under $TMPDIR (never the
 * system service), killed with SIGKILL when the test stops it, and by the
 * kernel if the test process dies first (PR_SET_PDEATHSIG).
 *
 * Threads: one test thread drives a process; nothing is shared.
 */
#ifndef SEM_TEST_REDIS_PROCESS_H
#define SEM_TEST_REDIS_PROCESS_H

#include <stddef.h>

typedef struct redis_process redis_process;

/* How to get redis-server when it is missing (for skip messages). */
#define REDIS_PROCESS_INSTALL_HINT \
    "redis-server is not installed: run tools/install-deps (Debian: apt-get install redis-server)"

/* Whether redis-server is on PATH. */
int redis_process_available(void);

/* A port of 127.0.0.1 that nobody listens on now (for tls-port). */
int redis_process_free_port(void);

/* Starts redis-server with extra config lines (may be NULL, "\n"-separated)
 * and waits until it answers PING on its plain port (5 s at most). NULL on
 * failure, with the reason in why[cap] (ending with the last lines of
 * redis-server's output, e.g. a configuration line it refused). */
redis_process *redis_process_start(const char *extra_conf, char *why, size_t cap);

/* What to say when redis-server refuses tls-port (for skip messages). */
#define REDIS_PROCESS_NO_TLS_HINT                                                          \
    "this redis-server has no TLS (it refuses tls-port): install Debian's redis-server "   \
    "6 or later (tools/install-deps), or build Redis with BUILD_TLS=yes"

/* Starts redis-server as redis_process_start does, plus TLS on a second
 * free port (redis_process_tls_port): its certificate DIR/CERT.pem and
 * key DIR/CERT.key, client certificates checked against DIR/CA.pem and
 * required when auth_clients. NULL on failure, with *no_tls set when
 * this redis-server was built without TLS. */
redis_process *redis_process_start_tls(const char *dir, const char *cert, const char *ca,
                                       int auth_clients, int *no_tls, char *why, size_t cap);
/* The TLS port (0 without TLS). */
int redis_process_tls_port(const redis_process *p);

/* Kills it (SIGKILL) and waits for it; the folder and port stay. */
void redis_process_kill(redis_process *p);
/* Starts it again on the same port, folder and config; 0 when it answers. */
int redis_process_restart(redis_process *p);
/* Kills it, deletes its folder, frees p. */
void redis_process_stop(redis_process *p);

int redis_process_port(const redis_process *p);
/* "redis://127.0.0.1:PORT" */
const char *redis_process_url(const redis_process *p);

/* Runs one command (printf-style, hiredis syntax) on a new connection; 0
 * when Redis answered something other than an error. With reply non-NULL,
 * a string, status or integer reply (or a list's first string) is copied
 * there, truncated to cap. */
int redis_process_cmd(const redis_process *p, char *reply, size_t cap, const char *fmt, ...);

/* Sends "DEBUG SLEEP <seconds>" on a connection of its own and returns at
 * once: Redis stops answering everyone for that long. */
void redis_process_sleep(redis_process *p, double seconds);

#endif
