/*
 * stop_strings.h - finding stop strings in streamed generated text.
 *
 * Generated text grows token by token. After each token the caller asks
 * where the first stop string begins (if any) and how much of the text is
 * safe to show: text that could still turn out to be the start of a stop
 * string is held back, so a stop string is never streamed, even in part.
 *
 * Threads: a stop_set is immutable after creation and may be shared.
 */
#ifndef SEM_STOP_STRINGS_H
#define SEM_STOP_STRINGS_H

#include <stddef.h>

#include "domain/status.h"

#define STOP_STRINGS_MAX 16
#define STOP_STRING_MAX_BYTES 256

typedef struct stop_set {
    size_t n;
    char text[STOP_STRINGS_MAX][STOP_STRING_MAX_BYTES + 1];
    size_t len[STOP_STRINGS_MAX];
} stop_set;

/* Copies up to STOP_STRINGS_MAX non-empty strings; SEM_EINVAL names a bad one. */
sem_status stop_set_init(stop_set *s, const char *const *strings, size_t n, sem_err *err);

typedef struct stop_scan_result {
    int found;   /* a stop string occurs */
    size_t at;   /* where the first one begins (text to keep is [0, at)) */
    size_t which; /* when found: the index of that stop string */
    size_t safe; /* when not found: bytes [0, safe) cannot be part of a stop string */
} stop_scan_result;

/*
 * Scans text[0..len). Occurrences beginning before `from` are not looked
 * for (they were scanned earlier); pass the previous `safe` as from.
 */
stop_scan_result stop_set_scan(const stop_set *s, const char *text, size_t len, size_t from);

#endif
