/*
 * auth.c - key checks in constant time and agent namespaces.
 */
#include "auth.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <xxhash.h>

typedef struct auth_key {
    char *key;
    size_t len;
    char ns[AUTH_NS_LEN + 1];
} auth_key;

struct http_auth {
    auth_key *keys;
    size_t n_keys;
    char *admin;
    size_t admin_len;
};

static void digest(const char *key, size_t len, char ns[AUTH_NS_LEN + 1])
{
    uint64_t h = XXH3_64bits(key, len);
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    memcpy(ns, hex, AUTH_NS_LEN);
    ns[AUTH_NS_LEN] = '\0';
}

http_auth *auth_create(const char *const *keys, size_t n_keys, const char *admin_key, sem_err *err)
{
    http_auth *a = calloc(1, sizeof *a);
    if (!a || (n_keys && !(a->keys = calloc(n_keys, sizeof *a->keys)))) {
        free(a);
        sem_err_set(err, SEM_ENOMEM, "out of memory for API keys");
        return NULL;
    }
    for (size_t i = 0; i < n_keys; i++) {
        size_t len = keys[i] ? strlen(keys[i]) : 0;
        if (len == 0) {
            sem_err_set(err, SEM_EINVAL, "API key %zu is empty", i + 1);
            goto fail;
        }
        char ns[AUTH_NS_LEN + 1];
        digest(keys[i], len, ns);
        int dup = 0;
        for (size_t j = 0; j < a->n_keys; j++) {
            if (strcmp(a->keys[j].ns, ns) != 0)
                continue;
            if (a->keys[j].len == len && memcmp(a->keys[j].key, keys[i], len) == 0) {
                dup = 1; /* the same key twice */
                break;
            }
            sem_err_set(err, SEM_EINVAL,
                        "API keys %zu and %zu have the same namespace digest; change one", j + 1,
                        i + 1);
            goto fail;
        }
        if (dup)
            continue;
        auth_key *k = &a->keys[a->n_keys];
        if (!(k->key = strdup(keys[i]))) {
            sem_err_set(err, SEM_ENOMEM, "out of memory for API keys");
            goto fail;
        }
        k->len = len;
        memcpy(k->ns, ns, sizeof ns);
        a->n_keys++;
    }
    if (admin_key) {
        if (!*admin_key) {
            sem_err_set(err, SEM_EINVAL, "the admin key is empty");
            goto fail;
        }
        if (!(a->admin = strdup(admin_key))) {
            sem_err_set(err, SEM_ENOMEM, "out of memory for the admin key");
            goto fail;
        }
        a->admin_len = strlen(admin_key);
    }
    return a;
fail:
    auth_free(a);
    return NULL;
}

void auth_free(http_auth *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n_keys; i++) {
        memset(a->keys[i].key, 0, a->keys[i].len);
        free(a->keys[i].key);
    }
    free(a->keys);
    if (a->admin)
        memset(a->admin, 0, a->admin_len);
    free(a->admin);
    free(a);
}

int auth_has_keys(const http_auth *a) { return a->n_keys > 0; }
int auth_has_admin(const http_auth *a) { return a->admin != NULL; }

int auth_equal(const char *a, size_t a_len, const char *b, size_t b_len)
{
    unsigned diff = a_len != b_len;
    for (size_t i = 0; i < b_len; i++)
        diff |= (unsigned char)b[i] ^ (unsigned char)(i < a_len ? a[i] : 0);
    return diff == 0;
}

/* The credential of a request: a Bearer token, else x-api-key. */
static const char *credential(const char *authorization, const char *x_api_key, size_t *len)
{
    const char *c = NULL;
    if (authorization) {
        const char *p = authorization;
        while (*p == ' ')
            p++;
        if (strncasecmp(p, "Bearer ", 7) == 0) {
            c = p + 7;
            while (*c == ' ')
                c++;
        }
    }
    if ((!c || !*c) && x_api_key)
        c = x_api_key;
    if (!c || !*c)
        return NULL;
    size_t n = strlen(c);
    while (n && c[n - 1] == ' ')
        n--;
    *len = n;
    return c;
}

sem_status auth_check(const http_auth *a, const char *authorization, const char *x_api_key,
                      char ns[AUTH_NS_LEN + 1], sem_err *err)
{
    ns[0] = '\0';
    if (a->n_keys == 0)
        return SEM_OK;
    size_t len = 0;
    const char *c = credential(authorization, x_api_key, &len);
    if (!c)
        return sem_err_set(err, SEM_EAUTH,
                           "missing API key: send \"Authorization: Bearer KEY\" or \"x-api-key: "
                           "KEY\"");
    size_t match = a->n_keys;
    for (size_t i = 0; i < a->n_keys; i++)
        if (auth_equal(c, len, a->keys[i].key, a->keys[i].len))
            match = i; /* no early exit: every key is compared */
    if (match == a->n_keys)
        return sem_err_set(err, SEM_EAUTH, "invalid API key");
    memcpy(ns, a->keys[match].ns, AUTH_NS_LEN + 1);
    return SEM_OK;
}

sem_status auth_check_admin(const http_auth *a, const char *authorization, const char *x_api_key,
                            sem_err *err)
{
    size_t len = 0;
    const char *c = credential(authorization, x_api_key, &len);
    if (!c)
        return sem_err_set(err, SEM_EAUTH,
                           "missing admin key: send \"Authorization: Bearer KEY\" or "
                           "\"x-api-key: KEY\"");
    if (!a->admin || !auth_equal(c, len, a->admin, a->admin_len))
        return sem_err_set(err, SEM_EAUTH, "invalid admin key");
    return SEM_OK;
}

void auth_agent_key(const char *ns, const char *id, char out[AGENT_KEY_MAX + 1])
{
    if (ns && *ns)
        snprintf(out, AGENT_KEY_MAX + 1, "%s.%s", ns, id);
    else
        snprintf(out, AGENT_KEY_MAX + 1, "%s", id);
}
