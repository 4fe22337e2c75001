/*
 * status.h - the one error vocabulary of semantic.
 *
 * Every function that can fail returns a sem_status and, when the caller
 * passes a sem_err, fills it with a human-readable detail: what failed, on
 * which input, which limit. Later layers map statuses to exit codes and HTTP
 * codes; the names are stable identifiers for logs and API error types.
 *
 * Threads: all functions are reentrant; a sem_err belongs to its caller.
 */
#ifndef SEM_STATUS_H
#define SEM_STATUS_H

#include <stdarg.h>

typedef enum sem_status {
    SEM_OK = 0,
    SEM_EINVAL,         /* a caller passed a bad argument (programming or CLI error) */
    SEM_EREQUEST,       /* a client request is malformed or out of range */
    SEM_EPOOL,          /* the block pool cannot satisfy an allocation */
    SEM_ENOTFOUND,      /* the named thing does not exist */
    SEM_ECORRUPT,       /* stored or loaded data fails a check */
    SEM_EINCOMPAT,      /* a cache or file belongs to another model or version */
    SEM_EIO,            /* the operating system reported an I/O failure */
    SEM_ENOMEM,         /* memory allocation failed */
    SEM_EUNSUPPORTED,   /* valid input that semantic does not implement */
    SEM_EBUSY,          /* draining, or a queue is full: retry later */
    SEM_ECANCELLED,     /* the operation was cancelled by its caller */
    SEM_ETOOLARGE,      /* input exceeds a configured limit (context, body) */
    SEM_EAUTH,          /* missing or wrong credentials */
    SEM_EINTERNAL,      /* a bug: an invariant did not hold */
    SEM_EAGAIN,         /* not ready yet: the caller is told when (a model loading) */
    SEM_STATUS_COUNT
} sem_status;

#define SEM_ERR_DETAIL_MAX 512

/* A status plus its detail text. Zero-initialise ({0}) before use. */
typedef struct sem_err {
    sem_status status;
    char detail[SEM_ERR_DETAIL_MAX];
} sem_err;

/* Stable snake_case identifier, e.g. "pool_exhausted". */
const char *sem_status_name(sem_status st);
/* One-sentence generic description, e.g. "the block pool has no room". */
const char *sem_status_message(sem_status st);

/*
 * Records st and a printf-style detail in err (err may be NULL) and returns
 * st, so a failing path reads `return sem_err_set(err, SEM_EINVAL, ...)`.
 * The detail is truncated to fit; it never overflows.
 */
sem_status sem_err_set(sem_err *err, sem_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
sem_status sem_err_setv(sem_err *err, sem_status st, const char *fmt, va_list ap);

/* Prepends "prefix: " to an existing detail (adds context on the way up). */
sem_status sem_err_wrap(sem_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Clears err back to SEM_OK with an empty detail. */
void sem_err_clear(sem_err *err);

/* The detail if set, else the generic message. Never NULL. */
const char *sem_err_text(const sem_err *err);

#endif
