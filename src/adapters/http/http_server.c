/*
 * http_server.c - libmicrohttpd glue: connections and their watchdog,
 * request bodies and limits, exchanges, replies and streams.
 *
 * The path of a request: MHD accepts the connection (on_connection:
 * counted, watched), reads the headers and calls on_request; the first
 * call creates the exchange and refuses early what can be refused (the
 * connection limit, a declared body too large); the next calls bring the
 * body; the last call hands the exchange to the router. MHD then sends
 * the reply (a buffer, or a stream pulled through stream_reader) and
 * calls on_completed, which logs a request that was never answered (the
 * client left, or timed out) and frees the exchange.
 */
#include "http_server.h"
#include "base/deadline.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "domain/agent_id.h"
#include "http_router.h"
#include "request_log.h"

#define MAX_EXTRA_HEADERS 8
#define REQUEST_ID_MAX 128
#define STREAM_BLOCK 16384

/* ---------------------------------------------------------------- types */

/* An open connection, as the watchdog sees it (fields under conns_lock). */
typedef struct conn_slot {
    int fd;
    int reading;     /* a request is being received */
    double since_ms; /* when it began to arrive */
    struct conn_slot *prev, *next;
} conn_slot;

struct http_server {
    http_server_opts o;
    http_api *api;
    struct MHD_Daemon *d;
    uint16_t port;
    pthread_mutex_t conns_lock; /* guards conns, n_conns, every slot, stopping */
    pthread_cond_t watchdog_wake;
    conn_slot *conns;
    uint32_t n_conns;
    int stopping;
    pthread_t watchdog;
    int watchdog_started;
};

struct http_exchange {
    http_server *srv;
    struct MHD_Connection *conn;
    conn_slot *slot;
    char *method, *path;
    char request_id[REQUEST_ID_MAX + 1];
    double t_start;
    strbuf body;
    int too_large;
    /* set by the router */
    int route_id;
    http_shape shape;
    char param[AGENT_KEY_MAX + 64];
    char ns[AUTH_NS_LEN + 1];
    /* response headers to add */
    char *extra[MAX_EXTRA_HEADERS][2];
    size_t n_extra;
    /* facts for the log and metrics */
    char agent[AGENT_ID_MAX + 1];
    int has_usage;
    uint32_t prompt_tokens, cached_tokens, completion_tokens;
    double ttft_ms;
    char *error;
    int status, responded, recorded, streamed;
    enum MHD_Result queued;
};

typedef struct mhd_stream {
    const http_stream_ops *ops;
    void *self;
    strbuf out;
    int ended;
} mhd_stream;

http_server_opts http_server_defaults(void)
{
    return (http_server_opts){.host = "127.0.0.1",
                              .port = 8000,
                              .max_body_bytes = 8u << 20,
                              .max_header_bytes = 16u << 10,
                              .max_connections = 64,
                              .read_timeout_s = 30,
                              .idle_timeout_s = 60};
}

/* ---------------------------------------------------------------- exchange: reading */

const char *http_exchange_method(const http_exchange *x) { return x->method; }
const char *http_exchange_path(const http_exchange *x) { return x->path; }
const char *http_exchange_param(const http_exchange *x) { return x->param; }
const char *http_exchange_request_id(const http_exchange *x) { return x->request_id; }
const char *http_exchange_namespace(const http_exchange *x) { return x->ns; }
http_shape http_exchange_shape(const http_exchange *x) { return x->shape; }
double http_exchange_age_ms(const http_exchange *x) { return deadline_now_ms() - x->t_start; }

const char *http_exchange_query(const http_exchange *x, const char *name)
{
    return MHD_lookup_connection_value(x->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_exchange_header(const http_exchange *x, const char *name)
{
    return MHD_lookup_connection_value(x->conn, MHD_HEADER_KIND, name);
}

const char *http_exchange_body(const http_exchange *x, size_t *len)
{
    *len = x->body.len;
    return x->body.data ? x->body.data : "";
}

int http_exchange_client_gone(const http_exchange *x)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(x->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return 0;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) != 1)
        return 0;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

void http_exchange_set_route(http_exchange *x, int route_id, http_shape shape, const char *param)
{
    x->route_id = route_id;
    x->shape = shape;
    snprintf(x->param, sizeof x->param, "%s", param ? param : "");
}

void http_exchange_set_namespace(http_exchange *x, const char *ns)
{
    snprintf(x->ns, sizeof x->ns, "%s", ns ? ns : "");
}

void http_exchange_note_agent(http_exchange *x, const char *agent_id)
{
    snprintf(x->agent, sizeof x->agent, "%s", agent_id ? agent_id : "");
}

void http_exchange_note_usage(http_exchange *x, uint32_t prompt_tokens, uint32_t cached_tokens,
                              uint32_t completion_tokens, double ttft_ms)
{
    x->has_usage = 1;
    x->prompt_tokens = prompt_tokens;
    x->cached_tokens = cached_tokens;
    x->completion_tokens = completion_tokens;
    x->ttft_ms = ttft_ms;
}

void http_exchange_note_error(http_exchange *x, const char *message)
{
    free(x->error);
    x->error = message ? strdup(message) : NULL;
}

void http_exchange_add_header(http_exchange *x, const char *name, const char *value)
{
    if (x->n_extra == MAX_EXTRA_HEADERS)
        return;
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return;
    }
    x->extra[x->n_extra][0] = n;
    x->extra[x->n_extra][1] = v;
    x->n_extra++;
}

/* ---------------------------------------------------------------- exchange: log and metrics */

static void record(http_exchange *x, int aborted)
{
    if (x->recorded)
        return;
    x->recorded = 1;
    http_api *api = x->srv->api;
    double ms = deadline_now_ms() - x->t_start;
    metrics_request(api->metrics, x->route_id, x->status, ms / 1e3);
    if (x->has_usage) {
        metrics_tokens(api->metrics, x->prompt_tokens, x->cached_tokens, x->completion_tokens);
        if (x->ttft_ms > 0)
            metrics_ttft(api->metrics, x->ttft_ms / 1e3);
    }
    if (aborted)
        metrics_stream_aborted(api->metrics);
    request_log_entry e = {.request_id = x->request_id,
                           .method = x->method,
                           .route = x->route_id >= 0 ? http_router_name((size_t)x->route_id) : NULL,
                           .path = x->path,
                           .agent = x->agent,
                           .status = x->status,
                           .prompt_tokens = x->prompt_tokens,
                           .cached_tokens = x->cached_tokens,
                           .completion_tokens = x->completion_tokens,
                           .has_usage = x->has_usage,
                           .ttft_ms = x->ttft_ms,
                           .duration_ms = ms,
                           .stream = x->streamed,
                           .aborted = aborted,
                           .error = x->error};
    request_log_write(api->o.log_fd, &e);
}

void http_exchange_stream_done(http_exchange *x) { record(x, 0); }

/* ---------------------------------------------------------------- exchange: replies */

static void queue(http_exchange *x, int status, struct MHD_Response *r, const char *content_type)
{
    x->responded = 1;
    x->status = status;
    if (!r) {
        x->queued = MHD_NO;
        return;
    }
    MHD_add_response_header(r, "X-Request-ID", x->request_id);
    if (content_type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    for (size_t i = 0; i < x->n_extra; i++)
        MHD_add_response_header(r, x->extra[i][0], x->extra[i][1]);
    x->queued = MHD_queue_response(x->conn, (unsigned)status, r);
    MHD_destroy_response(r);
}

void http_exchange_reply_text(http_exchange *x, int status, const char *content_type,
                              const char *body, size_t len)
{
    if (x->responded)
        return;
    char *copy = malloc(len ? len : 1);
    if (copy)
        memcpy(copy, body, len);
    struct MHD_Response *r =
        copy ? MHD_create_response_from_buffer(len, copy, MHD_RESPMEM_MUST_FREE) : NULL;
    if (!r)
        free(copy);
    queue(x, status, r, content_type);
    record(x, 0);
}

void http_exchange_reply_json(http_exchange *x, int status, json_t *body)
{
    if (x->responded) {
        json_decref(body);
        return;
    }
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!s) {
        /* Out of memory building the body: say so without one. */
        queue(x, 503, MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT), NULL);
        record(x, 0);
        return;
    }
    size_t len = strlen(s);
    struct MHD_Response *r = MHD_create_response_from_buffer(len, s, MHD_RESPMEM_MUST_FREE);
    if (!r)
        free(s);
    queue(x, status, r, "application/json");
    record(x, 0);
}

void http_exchange_reply_error(http_exchange *x, const http_error *e)
{
    if (e->status == 429 || e->status == 503)
        http_exchange_add_header(x, "Retry-After", "1");
    if (e->status == 401)
        http_exchange_add_header(x, "WWW-Authenticate", "Bearer");
    http_exchange_note_error(x, e->message);
    http_exchange_reply_json(x, e->status, http_error_body(e, x->shape));
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    mhd_stream *m = cls;
    while (m->out.len == 0) {
        if (m->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        m->ended = m->ops->next(m->self, &m->out);
        if (m->out.oom)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = m->out.len < max ? m->out.len : max;
    memcpy(buf, m->out.data, n);
    strbuf_consume(&m->out, n);
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    mhd_stream *m = cls;
    m->ops->close(m->self);
    strbuf_free(&m->out);
    free(m);
}

void http_exchange_reply_stream(http_exchange *x, const http_stream_ops *ops, void *self)
{
    if (x->responded) {
        ops->close(self);
        return;
    }
    mhd_stream *m = calloc(1, sizeof *m);
    struct MHD_Response *r = NULL;
    if (m) {
        *m = (mhd_stream){.ops = ops, .self = self};
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_reader, m,
                                              stream_free);
        if (!r)
            free(m);
    }
    if (!r) {
        ops->close(self);
        http_error e = http_error_make(HTTP_ERR_UNAVAILABLE, NULL, "out of memory for a stream");
        http_exchange_reply_error(x, &e);
        return;
    }
    x->streamed = 1;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    queue(x, 200, r, "text/event-stream");
}

/* ---------------------------------------------------------------- connections */

static void slot_reading(http_server *s, conn_slot *slot, int reading)
{
    if (!slot)
        return;
    pthread_mutex_lock(&s->conns_lock);
    slot->reading = reading;
    slot->since_ms = deadline_now_ms();
    pthread_mutex_unlock(&s->conns_lock);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    http_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_slot *slot = calloc(1, sizeof *slot);
        *socket_context = slot;
        if (!slot)
            return;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        slot->fd = ci ? ci->connect_fd : -1;
        slot->reading = 1;
        slot->since_ms = deadline_now_ms();
        pthread_mutex_lock(&s->conns_lock);
        slot->next = s->conns;
        if (s->conns)
            s->conns->prev = slot;
        s->conns = slot;
        s->n_conns++;
        pthread_mutex_unlock(&s->conns_lock);
        metrics_connection(s->api->metrics, 1);
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        conn_slot *slot = *socket_context;
        *socket_context = NULL;
        if (!slot)
            return;
        pthread_mutex_lock(&s->conns_lock);
        if (slot->prev)
            slot->prev->next = slot->next;
        else
            s->conns = slot->next;
        if (slot->next)
            slot->next->prev = slot->prev;
        s->n_conns--;
        pthread_mutex_unlock(&s->conns_lock);
        free(slot);
        metrics_connection(s->api->metrics, -1);
    }
}

/* Shuts down the sockets of requests that take too long to arrive. */
static void *watchdog_main(void *arg)
{
    http_server *s = arg;
    pthread_mutex_lock(&s->conns_lock);
    while (!s->stopping) {
        double now = deadline_now_ms(), limit = s->o.read_timeout_s * 1e3;
        for (conn_slot *c = s->conns; c; c = c->next) {
            if (c->reading && c->fd >= 0 && now - c->since_ms > limit) {
                shutdown(c->fd, SHUT_RDWR); /* MHD sees the end and closes it */
                c->reading = 0;
            }
        }
        deadline_wait_ms(&s->watchdog_wake, &s->conns_lock, 200);
    }
    pthread_mutex_unlock(&s->conns_lock);
    return NULL;
}

/* ---------------------------------------------------------------- requests */

static int valid_request_id(const char *id)
{
    size_t n = 0;
    for (; id[n]; n++) {
        char ch = id[n];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.' || ch == ':'))
            return 0;
    }
    return n >= 1 && n <= REQUEST_ID_MAX;
}

static void exchange_free(http_exchange *x)
{
    for (size_t i = 0; i < x->n_extra; i++) {
        free(x->extra[i][0]);
        free(x->extra[i][1]);
    }
    strbuf_free(&x->body);
    free(x->error);
    free(x->method);
    free(x->path);
    free(x);
}

static http_exchange *exchange_new(http_server *s, struct MHD_Connection *c, const char *url,
                                   const char *method)
{
    http_exchange *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->srv = s;
    x->conn = c;
    x->t_start = deadline_now_ms();
    x->route_id = -1;
    x->method = strdup(method);
    x->path = strdup(url);
    if (!x->method || !x->path) {
        exchange_free(x);
        return NULL;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    x->slot = ci ? ci->socket_context : NULL;
    const char *rid = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-ID");
    if (rid && valid_request_id(rid))
        snprintf(x->request_id, sizeof x->request_id, "%s", rid);
    else
        http_api_new_id(s->api, "req_", x->request_id, sizeof x->request_id);
    return x;
}

/* Refusals decided from the headers alone; 1 when one was sent. */
static int refuse_early(http_server *s, http_exchange *x)
{
    pthread_mutex_lock(&s->conns_lock);
    uint32_t open = s->n_conns;
    pthread_mutex_unlock(&s->conns_lock);
    http_exchange_set_route(x, -1, HTTP_SHAPE_OPENAI, "");
    if (strncmp(x->path, "/v1/messages", 12) == 0)
        x->shape = HTTP_SHAPE_ANTHROPIC;
    if (open > s->o.max_connections) {
        metrics_connection_rejected(s->api->metrics);
        http_exchange_add_header(x, MHD_HTTP_HEADER_CONNECTION, "close");
        http_error e = http_error_make(HTTP_ERR_UNAVAILABLE, NULL,
                                       "the server has %u connections open, its limit; retry "
                                       "shortly",
                                       s->o.max_connections);
        e.code = "connection_limit";
        http_exchange_reply_error(x, &e);
        return 1;
    }
    const char *cl =
        MHD_lookup_connection_value(x->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno == 0 && *end == '\0' && n > s->o.max_body_bytes) {
            http_exchange_add_header(x, MHD_HTTP_HEADER_CONNECTION, "close");
            http_error e = http_error_make(HTTP_ERR_TOO_LARGE, NULL,
                                           "the request body is %llu bytes; the limit is %zu", n,
                                           s->o.max_body_bytes);
            http_exchange_reply_error(x, &e);
            return 1;
        }
    }
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    http_server *s = cls;
    http_exchange *x = *con_cls;
    if (!x) {
        x = exchange_new(s, c, url, method);
        if (!x)
            return MHD_NO;
        *con_cls = x;
        if (refuse_early(s, x))
            return x->queued;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!x->responded && !x->too_large) {
            if (x->body.len + *upload_size > s->o.max_body_bytes) {
                x->too_large = 1;
                strbuf_free(&x->body);
            } else {
                strbuf_append(&x->body, upload, *upload_size);
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (x->responded)
        return MHD_YES;
    slot_reading(s, x->slot, 0); /* the whole request is here */
    if (x->too_large) {
        http_exchange_set_route(x, -1, x->shape, "");
        http_exchange_add_header(x, MHD_HTTP_HEADER_CONNECTION, "close");
        http_error e = http_error_make(HTTP_ERR_TOO_LARGE, NULL,
                                       "the request body is larger than the limit of %zu bytes",
                                       s->o.max_body_bytes);
        http_exchange_reply_error(x, &e);
    } else if (x->body.oom) {
        http_error e = http_error_make(HTTP_ERR_UNAVAILABLE, NULL,
                                       "out of memory for a body of %zu bytes", x->body.len);
        http_exchange_reply_error(x, &e);
    } else {
        http_router_dispatch(s->api, x);
    }
    if (!x->responded) {
        http_error e = http_error_make(HTTP_ERR_INTERNAL, NULL, "bug: route %s %s gave no response",
                                       x->method, x->path);
        http_exchange_reply_error(x, &e);
    }
    return x->queued;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_server *s = cls;
    (void)c;
    http_exchange *x = *con_cls;
    if (!x)
        return;
    *con_cls = NULL;
    if (!x->recorded) {
        if (!x->responded) {
            /* Never answered: the request did not arrive whole in time, or
             * the client left first (nginx's 499). */
            x->status = toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? 408 : 499;
            http_exchange_note_error(x, "the request did not arrive whole");
        }
        record(x, x->streamed);
    }
    slot_reading(s, x->slot, 1); /* a kept-alive connection waits for its next request */
    exchange_free(x);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    http_server *s = cls;
    if (s->api->o.log_fd < 0)
        return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    json_t *o =
        json_pack("{s:s,s:s,s:s}", "level", "warning", "source", "libmicrohttpd", "message", msg);
    char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (line) {
        size_t len = strlen(line);
        line[len] = '\n';
        ssize_t w = write(s->api->o.log_fd, line, len + 1);
        (void)w;
        free(line);
    }
}

/* ---------------------------------------------------------------- start and stop */

http_server *http_server_start(const http_server_opts *o, http_api *api, sem_err *err)
{
    if (!o->max_connections || !o->max_body_bytes || !o->max_header_bytes || !o->read_timeout_s ||
        !o->idle_timeout_s) {
        sem_err_set(err, SEM_EINVAL, "HTTP limits must all be at least 1");
        return NULL;
    }
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)o->port);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(o->host, port, &hints, &ai);
    if (gai != 0 || !ai) {
        sem_err_set(err, SEM_EINVAL, "cannot resolve --host '%s': %s", o->host, gai_strerror(gai));
        return NULL;
    }
    http_server *s = calloc(1, sizeof *s);
    if (!s) {
        freeaddrinfo(ai);
        sem_err_set(err, SEM_ENOMEM, "out of memory");
        return NULL;
    }
    s->o = *o;
    s->api = api;
    pthread_mutex_init(&s->conns_lock, NULL);
    deadline_cond_init(&s->watchdog_wake);
    if (pthread_create(&s->watchdog, NULL, watchdog_main, s) != 0) {
        freeaddrinfo(ai);
        sem_err_set(err, SEM_ENOMEM, "cannot start the HTTP watchdog thread");
        http_server_stop(s);
        return NULL;
    }
    s->watchdog_started = 1;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    unsigned limit = o->max_connections + o->max_connections / 4 + 8;
    /* Headers live in the connection's pool beside the read and write
     * buffers: give the buffers room beyond the header limit. */
    size_t pool = o->max_header_bytes + 16384;
    s->d = MHD_start_daemon(flags, o->port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
                            mhd_log, s, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)o->idle_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->d) {
        sem_err_set(err, SEM_EIO, "cannot listen on %s:%u (address in use, or not local?)", o->host,
                    (unsigned)o->port);
        http_server_stop(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di && di->port ? di->port : o->port;
    return s;
}

uint16_t http_server_port(const http_server *s) { return s->port; }

void http_server_stop(http_server *s)
{
    if (!s)
        return;
    if (s->d)
        MHD_stop_daemon(s->d);
    if (s->watchdog_started) {
        pthread_mutex_lock(&s->conns_lock);
        s->stopping = 1;
        pthread_cond_signal(&s->watchdog_wake);
        pthread_mutex_unlock(&s->conns_lock);
        pthread_join(s->watchdog, NULL);
    }
    pthread_mutex_destroy(&s->conns_lock);
    pthread_cond_destroy(&s->watchdog_wake);
    free(s);
}
