/*
 * redis_tls.h - the TLS settings of rediss:// connections, on OpenSSL: one
 * context (the CA certificates to trust, an optional client certificate,
 * whether to verify) from which each connection makes its session.
 *
 * Verification is on unless insecure is set: the server's certificate
 * chain must lead to a trusted CA (the ca_file's, else the system's
 * store) and name the host that was dialled (a DNS name, or an IP address
 * for an IP literal; wildcards only as a whole left-most label). The host
 * name is also sent as SNI (not for an IP literal, which SNI cannot carry).
 *
 * A session writes with send(MSG_NOSIGNAL), so a server that went away is
 * an EPIPE error, never a SIGPIPE.
 *
 * Threads: a redis_tls is read-only once made, so connections of any
 * threads may make sessions from it at once. The caller owns it and frees
 * it after every session made from it.
 */
#ifndef SEM_REDIS_TLS_H
#define SEM_REDIS_TLS_H

#include <stddef.h>

#include "domain/status.h"

typedef struct redis_tls redis_tls;
struct ssl_st; /* OpenSSL's SSL */

typedef struct redis_tls_opts {
    const char *ca_file;   /* PEM CA certificates; NULL or "": the system's store */
    const char *cert_file; /* PEM client certificate (and chain); NULL or "": none */
    const char *key_file;  /* PEM private key; NULL or "": read from cert_file */
    int insecure;          /* 1: verify neither the certificate nor the name */
} redis_tls_opts;

/* Reads the certificates and key. SEM_EINVAL naming the file that cannot
 * be read or does not hold what it should (a key that does not match its
 * certificate, a CA file without certificates); SEM_ENOMEM. */
redis_tls *redis_tls_new(const redis_tls_opts *o, sem_err *err);
void redis_tls_free(redis_tls *t);

/* A client session over the connected socket fd (which the caller keeps
 * owning and closes after SSL_free), set to verify host; the handshake
 * is the caller's (SSL_connect). NULL with err set on failure. */
struct ssl_st *redis_tls_session(const redis_tls *t, int fd, const char *host, sem_err *err);

/* The reason of OpenSSL's last failure on ssl (after a failed handshake:
 * why the certificate was refused, when it was) into out[cap]; clears
 * this thread's OpenSSL error queue. */
void redis_tls_why(struct ssl_st *ssl, char *out, size_t cap);

/* Whether the server asked ssl for a client certificate that the context
 * does not have (a server with tls-auth-clients yes then ends the session
 * after the handshake, at its first read). */
int redis_tls_cert_requested(struct ssl_st *ssl);

#endif
