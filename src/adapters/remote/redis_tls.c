/*
 * redis_tls.c - the TLS context of rediss:// connections (redis_tls.h).
 *
 * OpenSSL does the work: one SSL_CTX holds what every session shares (the
 * trusted CAs, the client certificate and key, the verification mode,
 * TLS 1.2 at least), and each session gets its host name to check and to
 * send as SNI. Sessions do their socket I/O through a BIO method of our
 * own that is OpenSSL's socket BIO minus SIGPIPE: send(MSG_NOSIGNAL) and
 * recv() on the caller's non-blocking socket, with "retry" on EAGAIN so
 * that SSL_read and SSL_write report WANT_READ / WANT_WRITE and the
 * connection waits on the socket with its own timeout.
 *
 * A key protected by a passphrase is refused rather than prompted for:
 * the server has no terminal to ask on.
 */
#include "redis_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct redis_tls {
    SSL_CTX *ctx;
    BIO_METHOD *bio; /* the socket BIO without SIGPIPE */
    int insecure;
};

/* ------------------------------------------------------------ socket BIO */

static int bio_fd(BIO *b) { return (int)(intptr_t)BIO_get_data(b); }

static int would_block(int e) { return e == EAGAIN || e == EWOULDBLOCK || e == EINTR; }

static int bio_write(BIO *b, const char *buf, int len)
{
    BIO_clear_retry_flags(b);
    ssize_t n = send(bio_fd(b), buf, (size_t)len, MSG_NOSIGNAL);
    if (n < 0 && would_block(errno))
        BIO_set_retry_write(b);
    return (int)n;
}

static int bio_read(BIO *b, char *buf, int len)
{
    BIO_clear_retry_flags(b);
    ssize_t n = recv(bio_fd(b), buf, (size_t)len, 0);
    if (n < 0 && would_block(errno))
        BIO_set_retry_read(b);
    return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0; /* writes are not buffered here */
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

/* ------------------------------------------------------------ the context */

/* Called by OpenSSL when the server asks for a client certificate and the
 * context has none: it sends none, and marks the session (its app data,
 * which nothing else uses) so a failure can say why. */
static int no_client_cert(SSL *ssl, X509 **x509, EVP_PKEY **pkey)
{
    (void)x509;
    (void)pkey;
    SSL_set_app_data(ssl, (void *)ssl);
    return 0;
}

/* No passphrase prompt: an encrypted key fails to load. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

/* OpenSSL's last error as text (and the queue cleared). */
static void openssl_error(char *out, size_t cap)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    if (reason)
        snprintf(out, cap, "%s", reason);
    else if (e)
        ERR_error_string_n(e, out, cap);
    else
        snprintf(out, cap, "no detail from OpenSSL");
    ERR_clear_error();
}

/* SEM_EINVAL unless path can be opened for reading. */
static sem_status readable(const char *what, const char *path, sem_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return sem_err_set(err, SEM_EINVAL, "remote tier TLS: %s '%s': %s", what, path,
                           strerror(errno));
    fclose(f);
    return SEM_OK;
}

static sem_status load_trust(redis_tls *t, const redis_tls_opts *o, sem_err *err)
{
    char why[256];
    if (o->insecure)
        return SEM_OK;
    if (o->ca_file && o->ca_file[0]) {
        if (readable("cacert", o->ca_file, err) != SEM_OK)
            return SEM_EINVAL;
        if (SSL_CTX_load_verify_locations(t->ctx, o->ca_file, NULL) != 1) {
            openssl_error(why, sizeof why);
            return sem_err_set(err, SEM_EINVAL, "remote tier TLS: cacert '%s' holds no PEM CA "
                               "certificate (%s)", o->ca_file, why);
        }
        return SEM_OK;
    }
    if (SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
        openssl_error(why, sizeof why);
        return sem_err_set(err, SEM_EINVAL, "remote tier TLS: the system's CA store cannot be "
                           "loaded (%s); give cacert=", why);
    }
    return SEM_OK;
}

static sem_status load_client(redis_tls *t, const redis_tls_opts *o, sem_err *err)
{
    char why[256];
    if (!o->cert_file || !o->cert_file[0])
        return SEM_OK;
    const char *key = o->key_file && o->key_file[0] ? o->key_file : o->cert_file;
    if (readable("cert", o->cert_file, err) != SEM_OK || readable("key", key, err) != SEM_OK)
        return SEM_EINVAL;
    if (SSL_CTX_use_certificate_chain_file(t->ctx, o->cert_file) != 1) {
        openssl_error(why, sizeof why);
        return sem_err_set(err, SEM_EINVAL, "remote tier TLS: cert '%s' holds no PEM "
                           "certificate (%s)", o->cert_file, why);
    }
    if (SSL_CTX_use_PrivateKey_file(t->ctx, key, SSL_FILETYPE_PEM) != 1) {
        int mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
        openssl_error(why, sizeof why);
        if (mismatch)
            return sem_err_set(err, SEM_EINVAL, "remote tier TLS: key '%s' does not belong to "
                               "cert '%s' (%s)", key, o->cert_file, why);
        return sem_err_set(err, SEM_EINVAL, "remote tier TLS: key '%s' holds no PEM private "
                           "key without a passphrase (%s)", key, why);
    }
    if (SSL_CTX_check_private_key(t->ctx) != 1) {
        openssl_error(why, sizeof why);
        return sem_err_set(err, SEM_EINVAL, "remote tier TLS: key '%s' does not belong to cert "
                           "'%s' (%s)", key, o->cert_file, why);
    }
    return SEM_OK;
}

redis_tls *redis_tls_new(const redis_tls_opts *o, sem_err *err)
{
    redis_tls *t = calloc(1, sizeof *t);
    if (!t)
        return sem_err_set(err, SEM_ENOMEM, "remote tier TLS: out of memory"), NULL;
    ERR_clear_error();
    t->insecure = o->insecure;
    t->ctx = SSL_CTX_new(TLS_client_method());
    t->bio = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "semantic redis socket");
    if (!t->ctx || !t->bio) {
        redis_tls_free(t);
        return sem_err_set(err, SEM_ENOMEM, "remote tier TLS: OpenSSL cannot make a context"),
               NULL;
    }
    BIO_meth_set_write(t->bio, bio_write);
    BIO_meth_set_read(t->bio, bio_read);
    BIO_meth_set_ctrl(t->bio, bio_ctrl);
    BIO_meth_set_create(t->bio, bio_create);
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    /* Writes may end part-way (the connection waits and goes on), from
     * the same bytes at another address if need be. */
    SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_default_passwd_cb(t->ctx, no_passphrase);
    SSL_CTX_set_verify(t->ctx, t->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_client_cert_cb(t->ctx, no_client_cert);
    if (load_trust(t, o, err) != SEM_OK || load_client(t, o, err) != SEM_OK) {
        redis_tls_free(t);
        return NULL;
    }
    return t;
}

void redis_tls_free(redis_tls *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    BIO_meth_free(t->bio);
    free(t);
}

/* ------------------------------------------------------------ sessions */

static int is_ip_literal(const char *host)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

SSL *redis_tls_session(const redis_tls *t, int fd, const char *host, sem_err *err)
{
    char why[256];
    ERR_clear_error();
    SSL *ssl = SSL_new(t->ctx);
    BIO *b = ssl ? BIO_new(t->bio) : NULL;
    if (!b) {
        SSL_free(ssl);
        openssl_error(why, sizeof why);
        return sem_err_set(err, SEM_ENOMEM, "remote tier TLS: no session (%s)", why), NULL;
    }
    BIO_set_data(b, (void *)(intptr_t)fd);
    SSL_set_bio(ssl, b, b); /* the session owns the BIO; the fd stays the caller's */
    int ip = is_ip_literal(host);
    int ok = ip || SSL_set_tlsext_host_name(ssl, host) == 1;
    if (ok && !t->insecure) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
        X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, host) == 1
                : X509_VERIFY_PARAM_set1_host(vp, host, 0) == 1;
    }
    if (!ok) {
        SSL_free(ssl);
        openssl_error(why, sizeof why);
        return sem_err_set(err, SEM_EINVAL, "remote tier TLS: host '%s' cannot be checked (%s)",
                           host, why), NULL;
    }
    return ssl;
}

void redis_tls_why(SSL *ssl, char *out, size_t cap)
{
    long v = ssl && (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) ? SSL_get_verify_result(ssl)
                                                                 : X509_V_OK;
    if (v != X509_V_OK) {
        snprintf(out, cap, "the server's certificate was refused: %s",
                 X509_verify_cert_error_string(v));
        ERR_clear_error();
        return;
    }
    openssl_error(out, cap);
}

int redis_tls_cert_requested(SSL *ssl) { return ssl && SSL_get_app_data(ssl) == (void *)ssl; }
