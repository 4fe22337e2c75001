/*
 * session_routes.c - multi-agent sessions (docs/sessions.md):
 *
 *   POST   /v1/sessions                  create (201 with the session)
 *   GET    /v1/sessions                  the caller's sessions, newest first
 *   GET    /v1/sessions/{id}             one session with its transcript
 *   DELETE /v1/sessions/{id}             delete it and its ephemeral agents
 *   POST   /v1/sessions/{id}/messages    inject a message on a channel
 *   GET    /v1/sessions/{id}/view?agent= the messages an agent's prompt renders
 *   POST   /v1/sessions/{id}/turn        the next speaker speaks (whole or SSE)
 *   POST   /v1/sessions/{id}/round       every speaker of a round speaks
 *
 * Each session agent is an ordinary agent of the caller's namespace
 * (X-Agent-ID would name it the same), so its memory grows turn by turn
 * and a turn's prompt, its view of the transcript (session_view.h),
 * reuses everything the agent already holds. Sessions live in the
 * session store (ports/session_store.h): a restarted server finds them,
 * and their agents' memory in the warm store.
 *
 * A turn or round claims its session in the store (one at a time: a
 * second gets 409), renders and submits the speakers' prompts, waits for
 * them in exchange steps (or stream calls), appends each finished batch
 * to the transcript with the counters in one transaction, and releases
 * the claim when it ends, however it ends. A round of a broadcast session
 * submits every speaker at once, each seeing the same transcript, so the
 * engine decodes them in one batch; other rounds run one speaker after
 * the other, each seeing the turns before it. In a moderated session each
 * turn is preceded by the moderator's pick: a generation constrained to
 * a call of the next_speaker tool, whose argument is one of the speakers'
 * ids, read back with the model's tool-call syntax (chat_answer.h).
 *
 * Threads: every route starts on the server's blocking thread (the store,
 * and the agent store's deletes, wait). A turn then goes on in exchange
 * steps and stream calls on an event-loop worker; the store writes it
 * makes there are single short transactions, as the responses routes'.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_answer.h"
#include "domain/agent_id.h"
#include "http_generation.h"
#include "routes.h"
#include "session_request.h"
#include "session_view.h"
#include "sse.h"

/* ---------------------------------------------------------------- JSON */

static json_t *channel_json(const char *channel)
{
    const char *comma = strchr(channel, ',');
    if (!comma)
        return json_string(channel);
    return json_pack("[s%,s]", channel, (size_t)(comma - channel), comma + 1);
}

static json_t *message_json(const session_message *m)
{
    json_t *o = json_pack("{s:I,s:o,s:s,s:o,s:s,s:I,s:I}", "seq", (json_int_t)m->seq, "speaker",
                          m->speaker[0] ? json_string(m->speaker) : json_null(), "name", m->name,
                          "channel", channel_json(m->channel), "text", m->text, "tokens",
                          (json_int_t)m->tokens, "created_at", (json_int_t)m->created_at);
    if (o && m->speaker[0]) {
        json_object_set_new(o, "prompt_tokens", json_integer(m->prompt_tokens));
        json_object_set_new(o, "cached_tokens", json_integer(m->cached_tokens));
    }
    return o;
}

static json_t *agents_json(const session_record *r, const session_message *m, size_t n)
{
    json_t *list = json_array();
    for (size_t i = 0; i < r->n_agents; i++) {
        const session_agent *a = &r->agents[i];
        json_int_t turns = 0, tokens = 0, prompt = 0, cached = 0;
        for (size_t k = 0; k < n; k++)
            if (strcmp(m[k].speaker, a->id) == 0) {
                turns++;
                tokens += m[k].tokens;
                prompt += m[k].prompt_tokens;
                cached += m[k].cached_tokens;
            }
        json_array_append_new(
            list, json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I}", "id", a->id, "name", a->name,
                            "role", a->role, "system", a->system, "lifecycle",
                            a->persistent ? "persistent" : "ephemeral", "turns", turns,
                            "tokens", tokens, "prompt_tokens", prompt, "cached_tokens", cached));
    }
    return list;
}

/* The session object; with the transcript when m is not NULL. */
static json_t *session_json(const session_record *r, const session_message *m, size_t n)
{
    json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:s,s:s,s:I,s:I,s:s,s:o,s:o}", "id", r->id,
                          "object", "session", "created_at", (json_int_t)r->created_at, "model",
                          r->model, "topology", session_topology_name(r->topology), "view",
                          session_view_kind_name(r->view), "max_turns",
                          (json_int_t)r->max_turns, "turns", (json_int_t)r->turns, "state",
                          r->done ? "done" : "active", "next_speaker",
                          r->done ? json_null() : json_string(r->agents[r->next].id), "agents",
                          agents_json(r, m, n));
    if (o && m) {
        json_t *t = json_array();
        for (size_t k = 0; k < n; k++)
            json_array_append_new(t, message_json(&m[k]));
        json_object_set_new(o, "transcript", t);
    }
    return o;
}

/* ---------------------------------------------------------------- shared steps */

/* Runs fn on the blocking thread: a route resumed after its model loaded
 * resumes on an event-loop worker, and these routes wait on the store. */
typedef struct blocking_rerun {
    http_api *api;
    http_route_fn fn;
} blocking_rerun;

static void blocking_rerun_step(void *self, http_exchange *x)
{
    blocking_rerun b = *(blocking_rerun *)self;
    free(self);
    b.fn(b.api, x);
}

static const http_wait_ops blocking_rerun_ops = {blocking_rerun_step, free};

static void rerun_blocking(http_api *api, http_exchange *x, http_route_fn fn)
{
    blocking_rerun *b = malloc(sizeof *b);
    if (!b) {
        http_error he = http_error_make(HTTP_ERR_UNAVAILABLE, NULL, "out of memory");
        http_exchange_reply_error(x, &he);
        return;
    }
    *b = (blocking_rerun){api, fn};
    http_exchange_run_blocking(x, &blocking_rerun_ops, b);
}

static int have_store(http_api *api, http_exchange *x)
{
    if (api->sessions.ops)
        return 1;
    sem_err err = {0};
    sem_err_set(&err, SEM_EUNSUPPORTED, "this server keeps no sessions");
    http_api_reply_error(api, x, &err, NULL);
    return 0;
}

/* The path's session in the caller's namespace, or a 404 answered. */
static int path_session(http_api *api, http_exchange *x, session_record *r)
{
    const char *id = http_exchange_param(x);
    sem_err err = {0};
    if (!have_store(api, x))
        return 0;
    sem_status st = strlen(id) > SESSION_ID_MAX
                        ? sem_err_set(&err, SEM_ENOTFOUND, "session '%.64s' not found", id)
                        : api->sessions.ops->get(api->sessions.self, http_exchange_namespace(x),
                                                 id, r, &err);
    if (st != SEM_OK) {
        http_api_reply_error(api, x, &err, st == SEM_ENOTFOUND ? "session_id" : NULL);
        return 0;
    }
    return 1;
}

static int path_transcript(http_api *api, http_exchange *x, const session_record *r,
                           session_message **m, size_t *n)
{
    sem_err err = {0};
    if (api->sessions.ops->transcript(api->sessions.self, r->ns, r->id, m, n, &err) == SEM_OK)
        return 1;
    http_api_reply_error(api, x, &err, NULL);
    return 0;
}

static void reply_req_error(http_api *api, http_exchange *x, const req_err *e)
{
    http_api_reply_error(api, x, &e->err, e->param[0] ? e->param : NULL);
}

/* Tokens of text in the model's vocabulary (0 when it cannot say). */
static uint32_t count_tokens(const http_backend *be, const char *text)
{
    int32_t *t = NULL;
    size_t n = 0;
    if (be->prompts.ops->text(be->prompts.self, text, strlen(text), &t, &n, NULL) != SEM_OK)
        n = 0;
    free(t);
    return (uint32_t)n;
}

/* ---------------------------------------------------------------- create, list, get */

static sem_status create_session(http_api *api, http_exchange *x, const http_backend *be,
                                 const json_t *body, session_record *r, req_err *e)
{
    const char *initial = NULL;
    sem_status st = session_request_create(body, r, &initial, e);
    if (st != SEM_OK)
        return st;
    snprintf(r->ns, sizeof r->ns, "%s", http_exchange_namespace(x));
    snprintf(r->model, sizeof r->model, "%s", http_exchange_lease_of(x)->name);
    r->created_at = http_unix_now();
    session_store *ss = &api->sessions;
    if ((st = ss->ops->create(ss->self, r, &e->err)) != SEM_OK || !initial)
        return st;
    session_message m = {.text = (char *)initial, .created_at = r->created_at,
                         .tokens = count_tokens(be, initial)};
    snprintf(m.channel, sizeof m.channel, "all");
    st = ss->ops->append(ss->self, r->ns, r->id, &m, 1, NULL, &e->err);
    if (st != SEM_OK)
        ss->ops->remove(ss->self, r->ns, r->id, NULL);
    return st;
}

void session_routes_create(http_api *api, http_exchange *x)
{
    const http_backend *be = http_api_model(x);
    json_t *body = NULL;
    req_err e = {0};
    session_record r;
    memset(&r, 0, sizeof r);
    if (!have_store(api, x))
        return;
    http_api_new_id(api, "sess_", r.id, sizeof r.id);
    sem_status st = req_body_object(x, &body, &e);
    if (st == SEM_OK)
        st = create_session(api, x, be, body, &r, &e);
    json_decref(body);
    if (st != SEM_OK) {
        session_record_free(&r);
        reply_req_error(api, x, &e);
        return;
    }
    session_message *m = NULL;
    size_t n = 0;
    if (path_transcript(api, x, &r, &m, &n))
        http_exchange_reply_json(x, 201, session_json(&r, m, n));
    session_messages_free(m, n);
    session_record_free(&r);
}

void session_routes_list(http_api *api, http_exchange *x)
{
    session_record *v = NULL;
    size_t n = 0;
    sem_err err = {0};
    if (!have_store(api, x))
        return;
    if (api->sessions.ops->list(api->sessions.self, http_exchange_namespace(x), &v, &n, &err) !=
        SEM_OK) {
        http_api_reply_error(api, x, &err, NULL);
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(data, session_json(&v[i], NULL, 0));
        session_record_free(&v[i]);
    }
    free(v);
    http_exchange_reply_json(x, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
}

void session_routes_get(http_api *api, http_exchange *x)
{
    session_record r;
    if (!path_session(api, x, &r))
        return;
    session_message *m = NULL;
    size_t n = 0;
    if (path_transcript(api, x, &r, &m, &n))
        http_exchange_reply_json(x, 200, session_json(&r, m, n));
    session_messages_free(m, n);
    session_record_free(&r);
}

/* ---------------------------------------------------------------- delete */

static void delete_again(http_api *api, http_exchange *x)
{
    rerun_blocking(api, x, session_routes_delete);
}

void session_routes_delete(http_api *api, http_exchange *x)
{
    session_record r;
    const http_backend *be = NULL;
    if (!path_session(api, x, &r))
        return;
    if (!http_api_use_model(api, x, r.model, 1, delete_again, &be)) {
        session_record_free(&r);
        return;
    }
    session_store *ss = &api->sessions;
    sem_err err = {0};
    if (ss->ops->claim(ss->self, r.ns, r.id, 1, &err) != SEM_OK) {
        session_record_free(&r);
        http_error he = http_error_make(HTTP_ERR_CONFLICT, "session_id",
                                        "session '%s' is running a turn; delete it when the "
                                        "turn is over", r.id);
        he.code = "session_busy";
        http_exchange_reply_error(x, &he);
        return;
    }
    json_t *deleted = json_array(), *kept = json_array();
    for (size_t i = 0; i < r.n_agents; i++) {
        const session_agent *a = &r.agents[i];
        if (a->persistent) {
            json_array_append_new(kept, json_string(a->id));
            continue;
        }
        char key[AGENT_KEY_MAX + 1];
        auth_agent_key(r.ns, a->id, key);
        sem_err aerr = {0};
        sem_status st = be->agents.ops->remove(be->agents.self, key, &aerr);
        if (st == SEM_OK) {
            char hk[AGENT_HISTORY_KEY_MAX + 1];
            agent_history_key(be->model_id, key, hk);
            agent_history_forget(api->history, hk);
        }
        if (st == SEM_OK || st == SEM_ENOTFOUND) /* an agent that never spoke has no memory */
            json_array_append_new(deleted, json_string(a->id));
        else
            http_exchange_note_error(x, aerr.detail);
    }
    sem_status st = ss->ops->remove(ss->self, r.ns, r.id, &err);
    if (st != SEM_OK) {
        ss->ops->claim(ss->self, r.ns, r.id, 0, NULL);
        json_decref(deleted);
        json_decref(kept);
        session_record_free(&r);
        http_api_reply_error(api, x, &err, NULL);
        return;
    }
    http_exchange_reply_json(x, 200,
                             json_pack("{s:s,s:s,s:b,s:o,s:o}", "id", r.id, "object",
                                       "session.deleted", "deleted", 1, "agents_deleted", deleted,
                                       "agents_kept", kept));
    session_record_free(&r);
}

/* ---------------------------------------------------------------- prompts */

#define PICK_TOOL "next_speaker"

/* The pick tool of a moderated session: its speakers' ids as an enum. */
static json_t *pick_tool(const session_record *r)
{
    json_t *ids = json_array();
    for (size_t i = 0; i < r->n_agents; i++)
        if ((int)i != r->moderator)
            json_array_append_new(ids, json_string(r->agents[i].id));
    return json_pack("[{s:s,s:{s:s,s:s,s:{s:s,s:{s:{s:s,s:o}},s:[s]}}}]", "type", "function",
                     "function", "name", PICK_TOOL, "description",
                     "Pick the agent who speaks next.", "parameters", "type", "object",
                     "properties", "speaker", "type", "string", "enum", ids, "required",
                     "speaker");
}

/* Renders agent's prompt: its view of the transcript m, and for a
 * moderator's pick the tool it must call. Fills prep (the prompt, and a
 * pick's grammar). */
static sem_status render_prompt(const http_backend *be, const session_record *r, size_t agent,
                                int pick, const session_message *m, size_t n,
                                chat_prepared *prep, req_err *e)
{
    const session_agent *a = &r->agents[agent];
    json_t *msgs = session_view_messages(r, agent, m, n);
    json_t *tools = pick ? pick_tool(r) : NULL;
    sem_status st;
    if (!msgs || (pick && !tools))
        st = req_fail(e, SEM_ENOMEM, NULL, "out of memory");
    else if (json_array_size(msgs) == 0)
        st = req_fail(e, SEM_EREQUEST, "initial_prompt",
                      "agent '%s' has nothing to answer: it has no system prompt and the "
                      "transcript is empty; give the session an initial_prompt or POST a "
                      "message first",
                      a->id);
    else
        st = chat_prepare(be->prompts,
                          &(chat_spec){.messages = msgs, .tools = tools,
                                       .choice = pick ? CHAT_TOOL_NAMED : CHAT_TOOL_AUTO,
                                       .tool_name = PICK_TOOL},
                          prep, e);
    json_decref(msgs);
    json_decref(tools);
    return st;
}

/* ---------------------------------------------------------------- messages, view */

static void message_again(http_api *api, http_exchange *x)
{
    rerun_blocking(api, x, session_routes_message);
}

void session_routes_message(http_api *api, http_exchange *x)
{
    session_record r;
    const http_backend *be = NULL;
    if (!path_session(api, x, &r))
        return;
    if (!http_api_use_model(api, x, r.model, 1, message_again, &be)) {
        session_record_free(&r);
        return;
    }
    json_t *body = NULL;
    req_err e = {0};
    session_message m = {0};
    sem_status st = req_body_object(x, &body, &e);
    if (st == SEM_OK)
        st = session_request_message(body, &r, &m, &e);
    json_decref(body);
    if (st == SEM_OK) {
        m.created_at = http_unix_now();
        m.tokens = count_tokens(be, m.text);
        st = api->sessions.ops->append(api->sessions.self, r.ns, r.id, &m, 1, NULL, &e.err);
    }
    if (st != SEM_OK) {
        free(m.text);
        session_record_free(&r);
        reply_req_error(api, x, &e);
        return;
    }
    http_exchange_reply_json(x, 200, json_pack("{s:s,s:o}", "object", "session.message",
                                               "message", message_json(&m)));
    free(m.text);
    session_record_free(&r);
}

static void view_again(http_api *api, http_exchange *x)
{
    rerun_blocking(api, x, session_routes_view);
}

void session_routes_view(http_api *api, http_exchange *x)
{
    session_record r;
    const http_backend *be = NULL;
    if (!path_session(api, x, &r))
        return;
    const char *agent = http_exchange_query(x, "agent");
    int i = agent ? session_agent_index(&r, agent) : -1;
    if (i < 0) {
        sem_err err = {0};
        sem_err_set(&err, SEM_EREQUEST, "agent is '%.64s'; expected the id of one of the "
                    "session's agents", agent ? agent : "(missing)");
        session_record_free(&r);
        http_api_reply_error(api, x, &err, "agent");
        return;
    }
    if (!http_api_use_model(api, x, r.model, 1, view_again, &be)) {
        session_record_free(&r);
        return;
    }
    session_message *m = NULL;
    size_t n = 0;
    if (!path_transcript(api, x, &r, &m, &n)) {
        session_record_free(&r);
        return;
    }
    json_t *msgs = session_view_messages(&r, (size_t)i, m, n);
    chat_prepared prep = {0};
    req_err e = {0};
    sem_status st = msgs ? render_prompt(be, &r, (size_t)i, i == r.moderator, m, n, &prep, &e)
                         : req_fail(&e, SEM_ENOMEM, NULL, "out of memory");
    size_t nt = prep.n_prompt;
    chat_prepared_free(&prep);
    session_messages_free(m, n);
    session_record_free(&r);
    if (st != SEM_OK && json_array_size(msgs) > 0) {
        json_decref(msgs);
        reply_req_error(api, x, &e);
        return;
    }
    http_exchange_reply_json(x, 200,
                             json_pack("{s:s,s:s,s:o,s:I}", "object", "session.view", "agent",
                                       agent, "messages", msgs, "prompt_tokens",
                                       (json_int_t)(st == SEM_OK ? nt : 0)));
}

/* ---------------------------------------------------------------- turns */

/* The tokens a moderator's pick may take: the call's syntax and one agent
 * id, with room. */
#define PICK_MAX_TOKENS 256u

typedef struct sess_turn {
    size_t agent;                           /* index in the session's agents */
    int pick;                               /* a moderator's pick, not a turn */
    char channel[SESSION_CHANNEL_MAX + 1];  /* where it speaks */
    http_gen g;
    chat_prepared prep;                     /* a pick's prompt and grammar (until
                                               its answer is read) */
    strbuf text;                            /* everything it said so far */
    int ended;                              /* its turn_end is out */
    int picked;                             /* a pick: the agent it picked */
} sess_turn;

/* A turn of each speaker, and for a moderated session a pick before it. */
#define SESS_TURNS_MAX (2 * SESSION_AGENTS_MAX)

typedef struct sess_call {
    http_api *api;
    http_exchange *x;
    const http_backend *be;
    session_record r;
    session_message *log; /* the transcript, growing with each batch */
    size_t n_log;
    session_turn_opts o;
    int round, claimed, finished;
    sess_turn turns[SESS_TURNS_MAX]; /* the planned turns, in order */
    size_t n_turns;
    size_t batch_from, batch_to;     /* turns running now */
    int failed;
    http_error he;
    strbuf pending; /* events of the stream not sent yet */
} sess_call;

/* Lets the session go (another turn, or a DELETE, may claim it). */
static void unclaim(sess_call *c)
{
    if (c->claimed)
        c->api->sessions.ops->claim(c->api->sessions.self, c->r.ns, c->r.id, 0, NULL);
    c->claimed = 0;
}

static void call_free(void *self)
{
    sess_call *c = self;
    for (size_t k = 0; k < c->batch_to; k++) {
        http_gen_release(&c->turns[k].g);
        chat_prepared_free(&c->turns[k].prep);
        strbuf_free(&c->turns[k].text);
    }
    unclaim(c);
    session_messages_free(c->log, c->n_log);
    session_record_free(&c->r);
    strbuf_free(&c->pending);
    free(c);
}

static void emit(strbuf *out, const char *event, json_t *data)
{
    if (out)
        sse_json(out, event, data);
    json_decref(data);
}

static void fail(sess_call *c, const http_error *he)
{
    if (!c->failed) {
        c->failed = 1;
        c->he = *he;
    }
}

static const char *turn_kind(const sess_turn *t) { return t->pick ? "pick" : "turn"; }

/* Renders turn k's prompt and submits it under its agent's key. */
static sem_status submit_turn(sess_call *c, size_t k, strbuf *out, req_err *e)
{
    sess_turn *t = &c->turns[k];
    const session_agent *a = &c->r.agents[t->agent];
    sem_status st = render_prompt(c->be, &c->r, t->agent, t->pick, c->log, c->n_log, &t->prep, e);
    if (st == SEM_OK) {
        uint32_t n_ctx = c->be->prompts.ops->n_ctx(c->be->prompts.self);
        uint32_t n = (uint32_t)t->prep.n_prompt;
        gen_params p = {.sampling = c->o.sampling,
                        .max_tokens = t->pick ? PICK_MAX_TOKENS : c->o.max_tokens};
        chat_prepared_params(&t->prep, &p);
        if (n + p.max_tokens > n_ctx && n < n_ctx)
            p.max_tokens = n_ctx - n;
        st = http_gen_submit(&t->g, c->api, c->be, c->x, a->id, &p, e);
    }
    if (!t->pick) /* the engine copied the prompt; a pick's syntax reads its answer */
        chat_prepared_free(&t->prep);
    uint32_t before = 0; /* turns of the batch before this one */
    for (size_t i = c->batch_from; i < k; i++)
        before += !c->turns[i].pick;
    if (st == SEM_OK)
        emit(out, "turn_start",
             json_pack("{s:s,s:s,s:s,s:o,s:I}", "kind", turn_kind(t), "agent", a->id, "name",
                       a->name, "channel", channel_json(t->channel), "turn",
                       (json_int_t)(c->r.turns + before + 1)));
    return st;
}

/* Starts the next batch: every remaining speaker of a broadcast round,
 * else the next one. */
static sem_status start_batch(sess_call *c, strbuf *out, req_err *e)
{
    size_t from = c->batch_to;
    size_t to = c->round && c->r.topology == SESSION_BROADCAST ? c->n_turns : from + 1;
    c->batch_from = from;
    for (size_t k = from; k < to; k++) {
        sem_status st = submit_turn(c, k, out, e);
        c->batch_to = k + 1; /* released with the call */
        if (st != SEM_OK)
            return st;
    }
    return SEM_OK;
}

static json_t *turn_usage(const sess_turn *t)
{
    const gen_result *g = &t->g.result;
    return json_pack("{s:I,s:I,s:I,s:I}", "prompt_tokens", (json_int_t)t->g.n_prompt,
                     "completion_tokens", (json_int_t)g->completion_tokens, "cached_tokens",
                     (json_int_t)g->cached_tokens, "total_tokens",
                     (json_int_t)(t->g.n_prompt + g->completion_tokens));
}

static json_t *turn_json(const sess_call *c, const sess_turn *t)
{
    const session_agent *a = &c->r.agents[t->agent];
    json_t *o = json_pack("{s:s,s:s,s:s,s:o,s:s%,s:s,s:o,s:f}", "kind", turn_kind(t), "agent",
                          a->id, "name", a->name, "channel", channel_json(t->channel), "text",
                          t->text.data ? t->text.data : "", t->text.len, "finish_reason",
                          gen_finish_name(t->g.result.finish), "usage", turn_usage(t),
                          "ttft_ms", t->g.result.ttft_ms);
    if (o && t->pick)
        json_object_set_new(o, "picked", json_string(c->r.agents[t->picked].id));
    return o;
}

/* The agent a finished pick called for: its index, or -1 when the answer
 * holds no call naming one of the speakers (a pick cut by the context). */
static int read_pick(sess_call *c, sess_turn *t)
{
    chat_answer a;
    int picked = -1;
    if (chat_answer_init(&a, &t->prep, c->api, "call_") != SEM_OK)
        return -1;
    if (chat_answer_feed(&a, t->text.data ? t->text.data : "", t->text.len) == SEM_OK &&
        chat_answer_finish(&a) == SEM_OK && a.n_calls > 0) {
        json_t *args = json_loadb(a.calls[0].args.data ? a.calls[0].args.data : "",
                                  a.calls[0].args.len, 0, NULL);
        const char *id = json_string_value(json_object_get(args, "speaker"));
        picked = id ? session_agent_index(&c->r, id) : -1;
        if (picked == c->r.moderator)
            picked = -1;
        json_decref(args);
    }
    chat_answer_free(&a);
    return picked;
}

/* A pick ended: the turn after it is the picked agent's. */
static int apply_pick(sess_call *c, sess_turn *t)
{
    int picked = read_pick(c, t);
    if (picked < 0) {
        http_error he = http_error_make(HTTP_ERR_INTERNAL, NULL,
                                        "the moderator's pick names no speaker of the session: "
                                        "%.200s",
                                        t->text.data ? t->text.data : "");
        fail(c, &he);
        return 0;
    }
    t->picked = picked;
    size_t k = (size_t)(t - c->turns);
    if (k + 1 < c->n_turns)
        c->turns[k + 1].agent = (size_t)picked;
    return 1;
}

/* Reads what turn t has; 1 once it ended (normally or not). */
static int pump_turn(sess_call *c, sess_turn *t, strbuf *out)
{
    if (t->ended)
        return 1;
    size_t before = t->text.len;
    int done = http_gen_read(&t->g, &t->text);
    if (t->text.len > before)
        emit(out, "delta",
             json_pack("{s:s,s:s%}", "agent", c->r.agents[t->agent].id, "text",
                       t->text.data + before, t->text.len - before));
    if (!done)
        return 0;
    t->ended = 1;
    if (!http_gen_ok(&t->g)) {
        http_error he = http_gen_error(&t->g);
        fail(c, &he);
        return 1;
    }
    if (t->pick && !apply_pick(c, t))
        return 1;
    json_t *end = json_pack("{s:s,s:s,s:s,s:o,s:I}", "kind", turn_kind(t), "agent",
                            c->r.agents[t->agent].id, "finish_reason",
                            gen_finish_name(t->g.result.finish), "usage", turn_usage(t),
                            "cached_tokens", (json_int_t)t->g.result.cached_tokens);
    json_object_set_new(end, "ttft_ms", json_real(t->g.result.ttft_ms));
    if (t->pick)
        json_object_set_new(end, "picked", json_string(c->r.agents[t->picked].id));
    emit(out, "turn_end", end);
    return 1;
}

/* Writes the finished batch to the transcript and the counters. */
static sem_status commit_batch(sess_call *c, sem_err *err)
{
    size_t n = c->batch_to - c->batch_from;
    session_message *m = realloc(c->log, (c->n_log + n) * sizeof *m);
    if (!m)
        return sem_err_set(err, SEM_ENOMEM, "out of memory recording session '%s'", c->r.id);
    c->log = m;
    m += c->n_log;
    uint32_t spoken = 0;
    for (size_t k = 0; k < n; k++)
        spoken += !c->turns[c->batch_from + k].pick;
    uint32_t turns = c->r.turns + spoken;
    uint32_t next = c->r.moderator >= 0 ? c->r.next /* the moderator, always */
                                        : (c->r.next + spoken) % (uint32_t)c->r.n_agents;
    int done = c->r.max_turns && turns >= c->r.max_turns;
    for (size_t k = 0; k < n; k++) {
        const sess_turn *t = &c->turns[c->batch_from + k];
        const session_agent *a = &c->r.agents[t->agent];
        memset(&m[k], 0, sizeof m[k]);
        snprintf(m[k].speaker, sizeof m[k].speaker, "%s", a->id);
        snprintf(m[k].name, sizeof m[k].name, "%s", a->name);
        snprintf(m[k].channel, sizeof m[k].channel, "%s", t->channel);
        m[k].text = strdup(t->text.data ? t->text.data : "");
        m[k].tokens = t->g.result.completion_tokens;
        m[k].prompt_tokens = t->g.n_prompt;
        m[k].cached_tokens = t->g.result.cached_tokens;
        m[k].created_at = http_unix_now();
    }
    sem_status st = SEM_OK;
    for (size_t k = 0; k < n && st == SEM_OK; k++)
        if (!m[k].text)
            st = sem_err_set(err, SEM_ENOMEM, "out of memory recording session '%s'", c->r.id);
    if (st == SEM_OK)
        st = c->api->sessions.ops->append(c->api->sessions.self, c->r.ns, c->r.id, m, n,
                                          &(session_counters){turns, next, done}, err);
    if (st != SEM_OK) {
        for (size_t k = 0; k < n; k++)
            free(m[k].text);
        return st;
    }
    c->n_log += n;
    c->r.turns = turns;
    c->r.next = next;
    c->r.done = done;
    return SEM_OK;
}

/* Advances the call: reads the running batch, commits it when it ended
 * and starts the next. Sets finished or failed at the end. */
static void pump(sess_call *c, strbuf *out)
{
    while (!c->finished && !c->failed) {
        int all = 1;
        for (size_t k = c->batch_from; k < c->batch_to; k++)
            all &= pump_turn(c, &c->turns[k], out);
        if (!all || c->failed)
            return;
        sem_err err = {0};
        if (commit_batch(c, &err) != SEM_OK) {
            http_error he = http_error_from_status(&err, NULL, 0);
            fail(c, &he);
            return;
        }
        if (c->batch_to == c->n_turns || c->r.done) {
            c->finished = 1;
            return;
        }
        req_err e = {0};
        if (start_batch(c, out, &e) != SEM_OK) {
            http_error he = http_error_from_status(&e.err, e.param[0] ? e.param : NULL, 0);
            fail(c, &he);
        }
    }
}

static json_t *result_json(const sess_call *c)
{
    json_t *turns = json_array();
    json_int_t p = 0, o = 0, cached = 0;
    for (size_t k = 0; k < c->batch_to; k++) {
        const sess_turn *t = &c->turns[k];
        json_array_append_new(turns, turn_json(c, t));
        p += t->g.n_prompt;
        o += t->g.result.completion_tokens;
        cached += t->g.result.cached_tokens;
    }
    return json_pack("{s:s,s:s,s:o,s:{s:I,s:I,s:I,s:I},s:I,s:s,s:o}", "object",
                     c->round ? "session.round" : "session.turn", "session", c->r.id, "turns",
                     turns, "usage", "prompt_tokens", p, "completion_tokens", o, "cached_tokens",
                     cached, "total_tokens", p + o, "session_turns", (json_int_t)c->r.turns,
                     "state", c->r.done ? "done" : "active", "next_speaker",
                     c->r.done ? json_null() : json_string(c->r.agents[c->r.next].id));
}

static void note_usage(sess_call *c)
{
    uint32_t p = 0, cached = 0, o = 0;
    for (size_t k = 0; k < c->batch_to; k++) {
        p += c->turns[k].g.n_prompt;
        cached += c->turns[k].g.result.cached_tokens;
        o += c->turns[k].g.result.completion_tokens;
    }
    http_exchange_note_usage(c->x, p, cached, o, c->batch_to ? c->turns[0].g.result.ttft_ms : 0);
}

/* ---- the stream */

static int stream_next(void *self, strbuf *out, int idle)
{
    sess_call *c = self;
    if (c->pending.len) {
        strbuf_append(out, c->pending.data, c->pending.len);
        strbuf_truncate(&c->pending, 0);
    }
    pump(c, out);
    if (c->failed || c->finished)
        unclaim(c); /* before the last event: a client may act on it at once */
    if (c->failed) {
        note_usage(c);
        http_exchange_note_error(c->x, c->he.message);
        emit(out, "error", json_pack("{s:s,s:s}", "code", c->he.code ? c->he.code : "error",
                                     "message", c->he.message));
    } else if (c->finished) {
        note_usage(c);
        emit(out, "round_end", result_json(c));
    } else {
        if (out->len == 0 && idle)
            sse_comment(out, "keep-alive");
        return 0;
    }
    http_exchange_stream_done(c->x);
    return 1;
}

static const http_stream_ops stream_ops = {stream_next, call_free};

/* ---- the whole answer */

static void call_step(void *self, http_exchange *x)
{
    sess_call *c = self;
    if (c->o.stream) {
        http_exchange_reply_stream(x, &stream_ops, c);
        return;
    }
    pump(c, NULL);
    if (!c->finished && !c->failed)
        return;
    note_usage(c);
    if (c->failed) {
        http_error he = c->he;
        call_free(c);
        http_exchange_reply_error(x, &he);
        return;
    }
    json_t *reply = result_json(c);
    call_free(c);
    http_exchange_reply_json(x, 200, reply);
}

static const http_wait_ops wait_ops = {call_step, call_free};

/* Turn k is agent's, on channel "all" or, with to, a whisper. */
static void plan_turn(sess_call *c, size_t k, size_t agent, int pick, const char *to)
{
    sess_turn *t = &c->turns[k];
    t->agent = agent;
    t->pick = pick;
    char channel[SESSION_CHANNEL_MAX + 1] = "all"; /* `to` may be a field of c */
    if (to)
        snprintf(channel, sizeof channel, "%s,%s", c->r.agents[agent].id, to);
    memcpy(t->channel, channel, sizeof channel);
}

/* The turns of this turn or round, from the session's next speaker: in a
 * moderated session each speaker's turn follows the moderator's pick
 * (a note only the moderator reads), and speaks whoever was picked. */
static void plan(sess_call *c)
{
    uint32_t left = c->r.max_turns ? c->r.max_turns - c->r.turns : UINT32_MAX;
    int moderated = c->r.moderator >= 0;
    size_t n = !c->round ? 1 : moderated ? c->r.n_agents - 1 : c->r.n_agents;
    if (n > left)
        n = left;
    c->n_turns = 0;
    for (size_t k = 0; k < n; k++) {
        if (moderated) {
            size_t m = (size_t)c->r.moderator;
            plan_turn(c, c->n_turns++, m, 1, c->r.agents[m].id);
            plan_turn(c, c->n_turns++, m, 0, NULL); /* the agent is the pick's */
        } else {
            plan_turn(c, c->n_turns++, (c->r.next + k) % c->r.n_agents, 0,
                      c->o.to[0] ? c->o.to : NULL);
        }
    }
}

static void reply_conflict(http_api *api, http_exchange *x, const char *code, const char *msg)
{
    (void)api;
    http_error he = http_error_make(HTTP_ERR_CONFLICT, "session_id", "%s", msg);
    he.code = code;
    http_exchange_reply_error(x, &he);
}

/* Reads the body and the session, claims it and plans the speakers. 0:
 * answered (c freed). */
static int prepare_call(http_api *api, http_exchange *x, sess_call *c)
{
    req_err e = {0};
    json_t *body = NULL;
    size_t len = 0;
    http_exchange_body(x, &len);
    sem_status st = len ? req_body_object(x, &body, &e) : SEM_OK;
    uint32_t n_ctx = c->be->prompts.ops->n_ctx(c->be->prompts.self);
    c->o.sampling = (gen_sampling){.temperature = 1.0f, .top_p = 1.0f, .min_p = 0.05f,
                                   .repeat_penalty = 1.0f, .repeat_last_n = 64,
                                   .seed = http_api_random(api)};
    if (st == SEM_OK)
        st = session_request_turn(body, &c->r, c->round, n_ctx, &c->o, &e);
    json_decref(body);
    if (st != SEM_OK) {
        call_free(c);
        reply_req_error(api, x, &e);
        return 0;
    }
    if (c->r.done) {
        call_free(c);
        reply_conflict(api, x, "session_done", "the session is done: it reached its max_turns");
        return 0;
    }
    sem_err err = {0};
    if ((st = api->sessions.ops->claim(api->sessions.self, c->r.ns, c->r.id, 1, &err)) != SEM_OK) {
        call_free(c);
        if (st == SEM_EBUSY)
            reply_conflict(api, x, "session_busy", err.detail);
        else
            http_api_reply_error(api, x, &err, NULL);
        return 0;
    }
    c->claimed = 1;
    plan(c);
    if (c->o.to[0] && strcmp(c->o.to, c->r.agents[c->turns[0].agent].id) == 0) {
        req_fail(&e, SEM_EREQUEST, "to", "to is '%s', the speaker itself; whisper to another "
                 "agent of the session", c->o.to);
        call_free(c);
        reply_req_error(api, x, &e);
        return 0;
    }
    return 1;
}

static void turn_again(http_api *api, http_exchange *x)
{
    rerun_blocking(api, x, session_routes_turn);
}

static void round_again(http_api *api, http_exchange *x)
{
    rerun_blocking(api, x, session_routes_round);
}

static void run_turns(http_api *api, http_exchange *x, int round)
{
    sess_call *c = calloc(1, sizeof *c);
    if (!c) {
        http_error he = http_error_make(HTTP_ERR_UNAVAILABLE, NULL, "out of memory");
        http_exchange_reply_error(x, &he);
        return;
    }
    c->api = api;
    c->x = x;
    c->round = round;
    if (!path_session(api, x, &c->r)) {
        free(c);
        return;
    }
    if (!http_api_use_model(api, x, c->r.model, 1, round ? round_again : turn_again, &c->be)) {
        call_free(c);
        return;
    }
    if (!prepare_call(api, x, c))
        return;
    sem_err err = {0};
    if (api->sessions.ops->transcript(api->sessions.self, c->r.ns, c->r.id, &c->log, &c->n_log,
                                      &err) != SEM_OK) {
        call_free(c);
        http_api_reply_error(api, x, &err, NULL);
        return;
    }
    req_err e = {0};
    if (start_batch(c, &c->pending, &e) != SEM_OK) {
        call_free(c);
        reply_req_error(api, x, &e);
        return;
    }
    http_exchange_wait(x, &wait_ops, c);
}

void session_routes_turn(http_api *api, http_exchange *x) { run_turns(api, x, 0); }

void session_routes_round(http_api *api, http_exchange *x) { run_turns(api, x, 1); }
