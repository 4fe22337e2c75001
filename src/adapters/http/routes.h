/*
 * routes.h - the handlers the router's table points to, one group per
 * file: openai_routes.c, anthropic_routes.c, agents_routes.c,
 * ops_routes.c (health, readiness, metrics, admin).
 *
 * Every handler runs after the router checked credentials and state, on
 * an event-loop worker (or on the blocking thread, for the routes the
 * router's table marks so), never blocks there, and replies exactly once,
 * at once or from a continuation (http_exchange.h).
 */
#ifndef SEM_HTTP_ROUTES_H
#define SEM_HTTP_ROUTES_H

#include "http_api.h"
#include "http_exchange.h"

/* openai_routes.c */
void openai_routes_chat_completions(http_api *api, http_exchange *x);
void openai_routes_completions(http_api *api, http_exchange *x);
void openai_routes_models_list(http_api *api, http_exchange *x);
void openai_routes_models_get(http_api *api, http_exchange *x);

/* anthropic_routes.c */
void anthropic_routes_messages(http_api *api, http_exchange *x);
void anthropic_routes_count_tokens(http_api *api, http_exchange *x);

/* agents_routes.c */
void agents_routes_list(http_api *api, http_exchange *x);
void agents_routes_get(http_api *api, http_exchange *x);
void agents_routes_delete(http_api *api, http_exchange *x);
void agents_routes_prefill(http_api *api, http_exchange *x);

/* ops_routes.c */
void ops_routes_health(http_api *api, http_exchange *x);
void ops_routes_ready(http_api *api, http_exchange *x);
void ops_routes_metrics(http_api *api, http_exchange *x);
void ops_routes_admin_clear(http_api *api, http_exchange *x);
void ops_routes_admin_drain(http_api *api, http_exchange *x);

#endif
