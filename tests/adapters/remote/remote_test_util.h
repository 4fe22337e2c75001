/*
 * remote_test_util.h - what the remote adapter's tests share: a
 * redis-server (plain, or with TLS over certificates made for the run)
 * that skips the test, saying how to install what is missing, when it
 * cannot be had.
 *
 * Include after cmocka (test_util.h). Threads: the test's thread.
 */
#ifndef SEM_TEST_REMOTE_TEST_UTIL_H
#define SEM_TEST_REMOTE_TEST_UTIL_H

#include "redis_process.h"
#include "tls_files.h"

/* A redis-server with extra config lines (may be NULL), or a skip. */
static inline redis_process *rt_start_or_skip(const char *conf)
{
    char why[600];
    redis_process *p = redis_process_start(conf, why, sizeof why);
    if (!p) {
        if (redis_process_available())
            fail_msg("%s", why);
        print_message("skipped: %s\n", why);
        skip();
    }
    return p;
}

/* The run's certificates (the group state), or a skip when they could
 * not be made because openssl is missing. */
static inline tls_files *rt_files_or_skip(void **state)
{
    tls_files *f = *state;
    if (!f) {
        if (tls_files_openssl_available())
            fail_msg("the test certificates could not be made (see the group setup's output)");
        print_message("skipped: %s\n", TLS_FILES_INSTALL_HINT);
        skip();
    }
    return f;
}

/* A redis-server with TLS (redis_process_start_tls) on certificate CERT
 * signed by CA, or a skip when redis-server is missing or has no TLS. */
static inline redis_process *rt_start_tls_or_skip(const tls_files *f, const char *cert,
                                                  const char *ca, int auth_clients)
{
    char why[600];
    int no_tls = 0;
    redis_process *p = redis_process_start_tls(tls_files_dir(f), cert, ca, auth_clients, &no_tls,
                                               why, sizeof why);
    if (!p) {
        if (redis_process_available() && !no_tls)
            fail_msg("%s", why);
        print_message("skipped: %s\n", no_tls ? REDIS_PROCESS_NO_TLS_HINT : why);
        skip();
    }
    return p;
}

/* Group setup and teardown: the certificates in *state (NULL, and a
 * message, when they cannot be made; rt_files_or_skip then decides). */
static inline int rt_files_setup(void **state)
{
    char why[1200];
    *state = tls_files_make(why, sizeof why);
    if (!*state)
        print_message("no test certificates: %s\n", why);
    return 0;
}

static inline int rt_files_teardown(void **state)
{
    tls_files_remove(*state);
    return 0;
}

#endif
