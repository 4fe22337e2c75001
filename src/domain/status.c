/*
 * status.c - names and messages of sem_status, and the detail helpers.
 */
#include "status.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    const char *message;
} status_table[SEM_STATUS_COUNT] = {
    [SEM_OK] = {"ok", "success"},
    [SEM_EINVAL] = {"invalid_argument", "an argument is invalid"},
    [SEM_EREQUEST] = {"invalid_request", "the request is malformed or out of range"},
    [SEM_EPOOL] = {"pool_exhausted", "the block pool has no room for the allocation"},
    [SEM_ENOTFOUND] = {"not_found", "the requested item does not exist"},
    [SEM_ECORRUPT] = {"corrupt_data", "data failed an integrity check"},
    [SEM_EINCOMPAT] = {"incompatible_cache", "the cache belongs to another model or format version"},
    [SEM_EIO] = {"io_error", "an input/output operation failed"},
    [SEM_ENOMEM] = {"out_of_memory", "memory allocation failed"},
    [SEM_EUNSUPPORTED] = {"unsupported", "the input is valid but not supported"},
    [SEM_EBUSY] = {"busy", "the service is draining or its queue is full"},
    [SEM_ECANCELLED] = {"cancelled", "the operation was cancelled"},
    [SEM_ETOOLARGE] = {"too_large", "the input exceeds a configured limit"},
    [SEM_EAUTH] = {"unauthorized", "missing or invalid credentials"},
    [SEM_EINTERNAL] = {"internal", "internal error (a bug in semantic)"},
    [SEM_EAGAIN] = {"not_ready", "not ready yet: try again when told"},
};

const char *sem_status_name(sem_status st)
{
    if ((unsigned)st >= SEM_STATUS_COUNT)
        return "unknown_status";
    return status_table[st].name;
}

const char *sem_status_message(sem_status st)
{
    if ((unsigned)st >= SEM_STATUS_COUNT)
        return "unknown status";
    return status_table[st].message;
}

sem_status sem_err_setv(sem_err *err, sem_status st, const char *fmt, va_list ap)
{
    if (!err)
        return st;
    err->status = st;
    if (fmt)
        vsnprintf(err->detail, sizeof err->detail, fmt, ap);
    else
        err->detail[0] = '\0';
    return st;
}

sem_status sem_err_set(sem_err *err, sem_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sem_err_setv(err, st, fmt, ap);
    va_end(ap);
    return st;
}

sem_status sem_err_wrap(sem_err *err, const char *fmt, ...)
{
    if (!err)
        return SEM_EINTERNAL;
    char prefix[SEM_ERR_DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* Build "prefix: detail" piecewise so truncation is explicit. */
    char joined[SEM_ERR_DETAIL_MAX];
    size_t n = strlen(prefix);
    memcpy(joined, prefix, n);
    const char *rest[2] = {": ", sem_err_text(err)};
    for (int i = 0; i < 2; i++) {
        size_t k = strlen(rest[i]);
        if (k > sizeof joined - 1 - n)
            k = sizeof joined - 1 - n;
        memcpy(joined + n, rest[i], k);
        n += k;
    }
    joined[n] = '\0';
    memcpy(err->detail, joined, n + 1);
    return err->status;
}

void sem_err_clear(sem_err *err)
{
    if (!err)
        return;
    err->status = SEM_OK;
    err->detail[0] = '\0';
}

const char *sem_err_text(const sem_err *err)
{
    if (!err)
        return "";
    if (err->detail[0])
        return err->detail;
    return sem_status_message(err->status);
}
