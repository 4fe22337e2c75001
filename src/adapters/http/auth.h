/*
 * auth.h - API keys, the admin key, and the agent namespace of each key.
 *
 * With API keys configured, a request must carry one of them as
 * "Authorization: Bearer KEY" or "x-api-key: KEY". Keys are compared in
 * constant time (the time depends only on the configured key's length),
 * and every configured key is compared, so the time does not say which
 * one matched either.
 *
 * Namespaces. Agents are kept apart per key: the engine's agent key is
 * "<ns>.<id>", where ns is the first 12 hex digits of XXH3-64 of the API
 * key. A client can only name ids ([A-Za-z0-9_-], no dot), so it can never
 * reach another key's agents. Without API keys the namespace is empty and
 * the engine's key is the id itself. The digest only partitions agents (it
 * is no credential); two configured keys with one digest are refused at
 * start.
 *
 * Threads: immutable after auth_create; any thread may check at once.
 */
#ifndef SEM_HTTP_AUTH_H
#define SEM_HTTP_AUTH_H

#include <stddef.h>

#include "domain/agent_id.h"
#include "domain/status.h"

#define AUTH_NS_LEN 12

typedef struct http_auth http_auth;

/* Copies the keys; n_keys 0 and admin_key NULL mean open access and no
 * admin routes. SEM_EINVAL for an empty key. */
http_auth *auth_create(const char *const *keys, size_t n_keys, const char *admin_key, sem_err *err);
void auth_free(http_auth *a);

int auth_has_keys(const http_auth *a);
int auth_has_admin(const http_auth *a);

/*
 * Checks a request's credentials (either header may be NULL) and gives
 * the caller's namespace: AUTH_NS_LEN hex digits, or "" without keys.
 * SEM_EAUTH names what is missing or wrong (never the key).
 */
sem_status auth_check(const http_auth *a, const char *authorization, const char *x_api_key,
                      char ns[AUTH_NS_LEN + 1], sem_err *err);

/* The same for the admin key; SEM_EAUTH when it is absent or wrong. */
sem_status auth_check_admin(const http_auth *a, const char *authorization, const char *x_api_key,
                            sem_err *err);

/* The engine's key of agent `id` in namespace ns: "ns.id", or "id". */
void auth_agent_key(const char *ns, const char *id, char out[AGENT_KEY_MAX + 1]);

/* 1 when a and b are equal, in time that depends only on b_len. */
int auth_equal(const char *a, size_t a_len, const char *b, size_t b_len);

#endif
