/*
 * tls_files.h - certificates made at run time for the TLS tests, with the
 * openssl command line, in a new folder under $TMPDIR (every key is P-256,
 * valid 2 days, never reused between runs):
 *
 *   ca.pem, ca.key                  the test CA
 *   server.pem, server.key          signed by ca, for DNS:localhost and
 *                                   IP:127.0.0.1 (serverAuth)
 *   client.pem, client.key          signed by ca (clientAuth)
 *   client-both.pem                 client.pem then client.key, one file
 *   client-locked.key               client.key under a passphrase
 *   wrong-name.pem, wrong-name.key  signed by ca, for DNS:elsewhere.invalid only
 *   other-ca.pem, other-ca.key      a second CA, trusted by nobody
 *   other-server.pem, other-server.key  signed by other-ca, for localhost
 *                                   and 127.0.0.1
 *   junk.pem                        a file that holds no PEM at all
 *
 * Threads: one test thread uses a tls_files; the folder is its own.
 */
#ifndef SEM_TEST_TLS_FILES_H
#define SEM_TEST_TLS_FILES_H

#include <stddef.h>

#define TLS_FILES_INSTALL_HINT \
    "openssl is not installed: run tools/install-deps (Debian: apt-get install openssl)"

typedef struct tls_files tls_files;

/* Whether the openssl program is on PATH. */
int tls_files_openssl_available(void);

/* Makes every file above. NULL with the reason in why[cap] (the openssl
 * command that failed and its output). */
tls_files *tls_files_make(char *why, size_t cap);

/* The folder that holds them (no trailing '/'; no character a URL's
 * query would need to escape: letters, digits, '/', '-', '_', '.'). */
const char *tls_files_dir(const tls_files *t);

/* Deletes the folder and frees t. */
void tls_files_remove(tls_files *t);

#endif
