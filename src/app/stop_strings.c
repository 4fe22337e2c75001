/*
 * stop_strings.c - stop string search with hold-back.
 */
#include "stop_strings.h"

#include <string.h>

sem_status stop_set_init(stop_set *s, const char *const *strings, size_t n, sem_err *err)
{
    memset(s, 0, sizeof *s);
    if (n > STOP_STRINGS_MAX)
        return sem_err_set(err, SEM_EINVAL, "%zu stop strings given, at most %d allowed", n,
                           STOP_STRINGS_MAX);
    for (size_t i = 0; i < n; i++) {
        size_t len = strings[i] ? strlen(strings[i]) : 0;
        if (len == 0)
            return sem_err_set(err, SEM_EINVAL, "stop string %zu is empty", i);
        if (len > STOP_STRING_MAX_BYTES)
            return sem_err_set(err, SEM_EINVAL, "stop string %zu is %zu bytes, at most %d allowed",
                               i, len, STOP_STRING_MAX_BYTES);
        memcpy(s->text[s->n], strings[i], len + 1);
        s->len[s->n++] = len;
    }
    return SEM_OK;
}

stop_scan_result stop_set_scan(const stop_set *s, const char *text, size_t len, size_t from)
{
    stop_scan_result r = {.found = 0, .at = len, .safe = len, .which = 0};
    for (size_t i = 0; i < s->n; i++) {
        const char *stop = s->text[i];
        size_t sl = s->len[i];
        for (size_t p = from; p + sl <= len; p++) {
            if (text[p] == stop[0] && memcmp(text + p, stop, sl) == 0) {
                if (p < r.at) {
                    r.found = 1;
                    r.at = p;
                    r.which = i;
                }
                break;
            }
        }
    }
    if (r.found) {
        r.safe = r.at;
        return r;
    }
    /* Hold back the longest suffix that is a proper prefix of a stop string. */
    for (size_t i = 0; i < s->n; i++) {
        size_t sl = s->len[i];
        size_t max = sl - 1 < len ? sl - 1 : len;
        for (size_t k = max; k > 0; k--) {
            if (len - k < from)
                continue; /* cannot begin before from: already cleared */
            if (memcmp(text + len - k, s->text[i], k) == 0) {
                if (len - k < r.safe)
                    r.safe = len - k;
                break;
            }
        }
    }
    return r;
}
