/*
 * http_server.c - libmicrohttpd glue: the event loop and its parked
 * connections, the watchdog, the blocking threads, request bodies and
 * limits, exchanges, replies and streams.
 *
 * The path of a request: a worker accepts the connection (on_connection:
 * counted, watched), reads the headers and calls on_request; the first
 * call creates the exchange and refuses early what can be refused (the
 * connection limit, a declared body too large); the next calls bring the
 * body; the last call hands the exchange to the router, then drives it
 * (drive): a route that replied has its reply queued; a route that waits
 * left a continuation, whose step runs now and after every wake until it
 * replies, the connection parked (suspended) in between. MHD then sends
 * the reply (a buffer, or a stream pulled through stream_reader, which
 * parks the connection too when no text is ready) and calls on_completed,
 * which ends what is still open (a stream, a wait: the generation is
 * released, hence cancelled, when the client left early), logs a request
 * that was never answered and frees the exchange.
 *
 * Parking without losing a wake. A worker clears the exchange's `woken`
 * flag, then reads (a step, a stream's next()), then parks under
 * `wake_lock` only if no wake came meanwhile; a wake (any thread) resumes
 * a parked connection, or sets `woken` for one that is not parked. So a
 * notification that lands between "nothing to read" and "suspend" makes
 * the worker read again instead of sleeping, and a connection is only ever
 * resumed by the one wake that found it parked (MHD requires that).
 *
 * Who resumes a parked connection: the generation's notification
 * (http_exchange_wake, on the engine thread), the end of a blocking step
 * (blocking thread), the watchdog (a stream's keep-alive is due, or the
 * client hung up) and http_server_stop (everything, before MHD stops: MHD
 * refuses to stop with a suspended connection).
 *
 * Locks, in the order they nest: conns_lock (the list of connections and
 * each slot), then an exchange's wake_lock (parked, woken, job, hangup,
 * wake_at), then MHD's own. The engine calls the wake under its request's
 * lock, so no lock here is held while calling the generation port. The
 * job queue's jobs_lock nests outside wake_lock.
 */
#include "http_server.h"
#include "base/deadline.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "domain/agent_id.h"
#include "http_router.h"
#include "request_log.h"

#define MAX_EXTRA_HEADERS 8
#define REQUEST_ID_MAX 128
#define STREAM_BLOCK 16384
#define DEFAULT_WORKERS 4
#define BLOCKING_THREADS 2
#define WATCH_TICK_MS 100 /* the watchdog's period: hang-ups are seen within it */
#define FD_RESERVE 256    /* descriptors kept for everything but connections */

/* ---------------------------------------------------------------- types */

/* An open connection, as the watchdog sees it (fields under conns_lock). */
typedef struct conn_slot {
    int fd;
    int reading;       /* a request is being received */
    double since_ms;   /* when it began to arrive */
    http_exchange *x;  /* the request being served, or NULL */
    struct conn_slot *prev, *next;
} conn_slot;

typedef enum job_state {
    JOB_NONE,
    JOB_BUSY, /* queued for or running on a blocking thread: the exchange is theirs */
    JOB_DONE  /* finished; the worker takes the exchange back */
} job_state;

typedef struct mhd_stream {
    const http_stream_ops *ops;
    void *self;
    http_exchange *x; /* NULL once the exchange ended */
    strbuf out;
    double last_sent_ms;
    int ended, closed;
} mhd_stream;

struct http_server {
    http_server_opts o;
    http_api *api;
    struct MHD_Daemon *d;
    uint16_t port;
    atomic_int stopping;        /* set once by http_server_stop: nothing parks again */
    pthread_mutex_t conns_lock; /* guards conns, n_conns, every slot, watchdog_stop */
    pthread_cond_t watchdog_wake;
    conn_slot *conns;
    uint32_t n_conns;
    int watchdog_stop;
    pthread_t watchdog;
    int watchdog_started;
    pthread_mutex_t jobs_lock; /* guards the queue and jobs_stop */
    pthread_cond_t jobs_wake;
    http_exchange *jobs_head, *jobs_tail;
    int jobs_stop;
    pthread_t blocking[BLOCKING_THREADS];
    int n_blocking;
};

struct http_exchange {
    http_server *srv;
    struct MHD_Connection *conn;
    conn_slot *slot;
    char *method, *path;
    char request_id[REQUEST_ID_MAX + 1];
    double t_start;
    strbuf body;
    int too_large, dispatched;
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
    /* the reply, handed to MHD by the worker (flush_reply) */
    struct MHD_Response *reply;
    enum MHD_Result queued;
    mhd_stream *stream; /* the stream replied, until the exchange ends */
    /* the continuation (http_exchange.h) */
    const http_wait_ops *wait_ops;
    void *wait_self;
    int wait_blocking;
    http_exchange *job_next; /* the blocking queue */
    /* parking, guarded by wake_lock */
    pthread_mutex_t wake_lock;
    int parked;     /* suspended by a worker; the next wake resumes it */
    int woken;      /* a wake came while not parked */
    int hangup;     /* the watchdog saw the client hang up */
    job_state job;
    double wake_at; /* a parked stream's keep-alive is due (monotonic ms); 0: none */
    http_exchange_lease lease; /* lease.release NULL: none */
};

http_server_opts http_server_defaults(void)
{
    return (http_server_opts){.host = "127.0.0.1",
                              .port = 8000,
                              .max_body_bytes = 8u << 20,
                              .max_header_bytes = 16u << 10,
                              .max_connections = 1024,
                              .read_timeout_s = 30,
                              .idle_timeout_s = 60,
                              .workers = DEFAULT_WORKERS};
}

/* ---------------------------------------------------------------- log */

static void log_json(const http_server *s, const char *level, const char *source,
                     const char *msg)
{
    if (s->api->o.log_fd < 0)
        return;
    json_t *o = json_pack("{s:s,s:s,s:s}", "level", level, "source", source, "message", msg);
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

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    log_json(cls, "warning", "libmicrohttpd", msg);
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

int http_exchange_route(const http_exchange *x) { return x->route_id; }

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

/*
 * Keeps the reply for flush_reply: a reply made on a blocking thread must
 * reach MHD from the connection's worker. A reply ends the wait: the step
 * that made it owns its state from now on.
 */
static void queue(http_exchange *x, int status, struct MHD_Response *r, const char *content_type)
{
    x->responded = 1;
    x->status = status;
    x->wait_ops = NULL;
    x->wait_self = NULL;
    x->wait_blocking = 0;
    if (!r) {
        x->queued = MHD_NO;
        return;
    }
    MHD_add_response_header(r, "X-Request-ID", x->request_id);
    if (content_type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    for (size_t i = 0; i < x->n_extra; i++)
        MHD_add_response_header(r, x->extra[i][0], x->extra[i][1]);
    x->reply = r;
}

/* Hands the reply to MHD (on the connection's worker). */
static enum MHD_Result flush_reply(http_exchange *x)
{
    struct MHD_Response *r = x->reply;
    if (r) {
        x->reply = NULL;
        x->queued = MHD_queue_response(x->conn, (unsigned)x->status, r);
        MHD_destroy_response(r); /* a refused stream is closed here (stream_free) */
    }
    return x->queued;
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

/* ---------------------------------------------------------------- parking */

/* Resumes x if a worker parked it; otherwise leaves a note for the worker. */
static void wake_locked(http_exchange *x)
{
    if (x->parked) {
        x->parked = 0;
        x->wake_at = 0;
        MHD_resume_connection(x->conn);
    } else {
        x->woken = 1;
    }
}

void http_exchange_wake(void *arg)
{
    http_exchange *x = arg;
    pthread_mutex_lock(&x->wake_lock);
    wake_locked(x);
    pthread_mutex_unlock(&x->wake_lock);
}

/*
 * On the connection's worker, after it cleared `woken` and found nothing
 * to do: suspends the connection unless a wake came meanwhile, a blocking
 * step just finished, the client hung up or the server is stopping (then
 * the caller looks again). While a blocking step runs the connection
 * always parks: the step's end resumes it. Returns 1 when parked.
 */
static int park(http_exchange *x, double wake_at)
{
    pthread_mutex_lock(&x->wake_lock);
    int park = x->job == JOB_BUSY || (!x->woken && x->job != JOB_DONE && !x->hangup &&
                                      !atomic_load(&x->srv->stopping));
    if (park) {
        MHD_suspend_connection(x->conn);
        x->parked = 1;
        x->wake_at = wake_at;
    }
    pthread_mutex_unlock(&x->wake_lock);
    return park;
}

/* ---------------------------------------------------------------- streams */

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    mhd_stream *m = cls;
    http_exchange *x = m->x;
    if (!x)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    http_server *s = x->srv;
    double keepalive = s->api->o.keepalive_ms;
    for (;;) {
        if (m->out.len) {
            size_t n = m->out.len < max ? m->out.len : max;
            memcpy(buf, m->out.data, n);
            strbuf_consume(&m->out, n);
            m->last_sent_ms = deadline_now_ms();
            return (ssize_t)n;
        }
        if (m->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        pthread_mutex_lock(&x->wake_lock);
        x->woken = 0;
        int gone = x->hangup;
        pthread_mutex_unlock(&x->wake_lock);
        if (gone || atomic_load(&s->stopping))
            return MHD_CONTENT_READER_END_WITH_ERROR; /* on_completed releases the stream */
        int idle = keepalive > 0 && deadline_now_ms() - m->last_sent_ms >= keepalive;
        m->ended = m->ops->next(m->self, &m->out, idle);
        if (m->out.oom)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (m->out.len || m->ended)
            continue;
        if (park(x, keepalive > 0 ? m->last_sent_ms + keepalive : 0))
            return 0; /* resumed by the next wake, or the watchdog when the keep-alive is due */
    }
}

/* MHD frees the response: after on_completed, or when queueing it failed. */
static void stream_free(void *cls)
{
    mhd_stream *m = cls;
    if (!m->closed) {
        m->ops->close(m->self);
        if (m->x)
            m->x->stream = NULL;
    }
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
        *m = (mhd_stream){.ops = ops, .self = self, .x = x, .last_sent_ms = deadline_now_ms()};
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
    x->stream = m;
    x->streamed = 1;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    queue(x, 200, r, "text/event-stream");
}

/* ---------------------------------------------------------------- leases */

void http_exchange_set_lease(http_exchange *x, const http_exchange_lease *l)
{
    if (x->lease.release) {
        if (l->release)
            l->release(l->ctx, l->lease);
        return;
    }
    x->lease = *l;
}

const http_exchange_lease *http_exchange_lease_of(const http_exchange *x)
{
    return x->lease.release ? &x->lease : NULL;
}

/* ---------------------------------------------------------------- continuations */

void http_exchange_wait(http_exchange *x, const http_wait_ops *ops, void *self)
{
    x->wait_ops = ops;
    x->wait_self = self;
    x->wait_blocking = 0;
}

void http_exchange_run_blocking(http_exchange *x, const http_wait_ops *ops, void *self)
{
    x->wait_ops = ops;
    x->wait_self = self;
    x->wait_blocking = 1;
}

/* Ends a wait that will never reply (the exchange ends first). */
static void end_wait(http_exchange *x)
{
    const http_wait_ops *ops = x->wait_ops;
    void *self = x->wait_self;
    x->wait_ops = NULL;
    x->wait_self = NULL;
    x->wait_blocking = 0;
    if (ops && ops->close)
        ops->close(self);
}

/* Queues x for a blocking thread; 0 when the server is stopping. */
static int job_submit(http_server *s, http_exchange *x)
{
    pthread_mutex_lock(&s->jobs_lock);
    if (s->jobs_stop) {
        pthread_mutex_unlock(&s->jobs_lock);
        return 0;
    }
    pthread_mutex_lock(&x->wake_lock);
    x->job = JOB_BUSY;
    pthread_mutex_unlock(&x->wake_lock);
    x->job_next = NULL;
    if (s->jobs_tail)
        s->jobs_tail->job_next = x;
    else
        s->jobs_head = x;
    s->jobs_tail = x;
    pthread_cond_signal(&s->jobs_wake);
    pthread_mutex_unlock(&s->jobs_lock);
    return 1;
}

/* A blocking step runs once; it replies or leaves a new continuation. */
static void run_job(http_exchange *x)
{
    const http_wait_ops *ops = x->wait_ops;
    void *self = x->wait_self;
    x->wait_ops = NULL;
    x->wait_self = NULL;
    x->wait_blocking = 0;
    ops->step(self, x);
    pthread_mutex_lock(&x->wake_lock);
    x->job = JOB_DONE;
    wake_locked(x);
    pthread_mutex_unlock(&x->wake_lock);
}

/* A blocking thread: runs queued steps until stopped and drained. */
static void *blocking_main(void *arg)
{
    http_server *s = arg;
    pthread_mutex_lock(&s->jobs_lock);
    for (;;) {
        while (!s->jobs_head && !s->jobs_stop)
            pthread_cond_wait(&s->jobs_wake, &s->jobs_lock);
        http_exchange *x = s->jobs_head;
        if (!x)
            break;
        s->jobs_head = x->job_next;
        if (!s->jobs_head)
            s->jobs_tail = NULL;
        pthread_mutex_unlock(&s->jobs_lock);
        run_job(x);
        pthread_mutex_lock(&s->jobs_lock);
    }
    pthread_mutex_unlock(&s->jobs_lock);
    return NULL;
}

static void reply_bug(http_exchange *x)
{
    http_error e = http_error_make(HTTP_ERR_INTERNAL, NULL, "bug: route %s %s gave no response",
                                   x->method, x->path);
    http_exchange_reply_error(x, &e);
}

/*
 * Moves the exchange along on its worker: queues its reply, or runs its
 * wait's step (or hands a blocking step to the blocking threads), and
 * parks the connection when there is nothing more to do now. Called after
 * dispatch and again each time the connection is resumed.
 */
static enum MHD_Result drive(http_server *s, http_exchange *x)
{
    for (;;) {
        pthread_mutex_lock(&x->wake_lock);
        int busy = x->job == JOB_BUSY, hangup = x->hangup;
        if (x->job == JOB_DONE)
            x->job = JOB_NONE;
        x->woken = 0;
        pthread_mutex_unlock(&x->wake_lock);
        if (!busy) {
            if (x->responded)
                return flush_reply(x);
            if (!x->wait_ops) {
                reply_bug(x);
                continue;
            }
            if (hangup) {
                /* The client left: close releases the generation (cancelled). */
                end_wait(x);
                x->status = 499;
                http_exchange_note_error(x, "the client went away before the answer");
                return MHD_NO;
            }
            /* Once queued, a blocking step owns the exchange: not a field
             * of it may be read here until the step is DONE. */
            int blocking = x->wait_blocking;
            if (atomic_load(&s->stopping) || (blocking && !job_submit(s, x))) {
                end_wait(x);
                http_error e =
                    http_error_make(HTTP_ERR_UNAVAILABLE, NULL, "the server is stopping");
                http_exchange_reply_error(x, &e);
                continue;
            }
            if (!blocking) {
                x->wait_ops->step(x->wait_self, x);
                if (x->responded || !x->wait_ops || x->wait_blocking)
                    continue;
            }
        }
        if (park(x, 0))
            return MHD_YES;
    }
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

/* Grows the watchdog's poll arrays to n entries; 0 when out of memory. */
static int watch_reserve(struct pollfd **fds, http_exchange ***xs, size_t *cap, size_t n)
{
    if (n <= *cap)
        return 1;
    size_t c = *cap ? *cap : 64;
    while (c < n)
        c *= 2;
    struct pollfd *f = realloc(*fds, c * sizeof *f);
    if (f)
        *fds = f;
    http_exchange **x = realloc(*xs, c * sizeof *x);
    if (x)
        *xs = x;
    if (!f || !x)
        return 0;
    *cap = c;
    return 1;
}

/*
 * Every WATCH_TICK_MS: shuts down the sockets of requests that take too
 * long to arrive (MHD sees the end and closes them), resumes parked streams
 * whose keep-alive is due, and resumes parked exchanges whose client hung
 * up (one poll() over all their sockets), so that a client that leaves
 * while its request waits for the engine has it cancelled.
 */
static void *watchdog_main(void *arg)
{
    http_server *s = arg;
    struct pollfd *fds = NULL;
    http_exchange **xs = NULL;
    size_t cap = 0;
    pthread_mutex_lock(&s->conns_lock);
    while (!s->watchdog_stop) {
        double now = deadline_now_ms(), limit = s->o.read_timeout_s * 1e3;
        int room = watch_reserve(&fds, &xs, &cap, s->n_conns);
        size_t n = 0;
        for (conn_slot *c = s->conns; c; c = c->next) {
            if (c->reading && c->fd >= 0 && now - c->since_ms > limit) {
                shutdown(c->fd, SHUT_RDWR);
                c->reading = 0;
            }
            http_exchange *x = c->x;
            if (!x)
                continue;
            pthread_mutex_lock(&x->wake_lock);
            if (x->parked && x->job != JOB_BUSY) {
                if (x->wake_at > 0 && now >= x->wake_at)
                    wake_locked(x);
                else if (room && !x->hangup && c->fd >= 0 && n < cap) {
                    fds[n] = (struct pollfd){.fd = c->fd, .events = POLLRDHUP};
                    xs[n++] = x;
                }
            }
            pthread_mutex_unlock(&x->wake_lock);
        }
        if (n > 0 && poll(fds, n, 0) > 0) {
            for (size_t i = 0; i < n; i++) {
                if (!(fds[i].revents & (POLLRDHUP | POLLHUP | POLLERR)))
                    continue;
                pthread_mutex_lock(&xs[i]->wake_lock);
                xs[i]->hangup = 1;
                if (xs[i]->parked && xs[i]->job != JOB_BUSY)
                    wake_locked(xs[i]);
                pthread_mutex_unlock(&xs[i]->wake_lock);
            }
        }
        deadline_wait_ms(&s->watchdog_wake, &s->conns_lock, WATCH_TICK_MS);
    }
    pthread_mutex_unlock(&s->conns_lock);
    free(fds);
    free(xs);
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
    if (x->lease.release)
        x->lease.release(x->lease.ctx, x->lease.lease);
    for (size_t i = 0; i < x->n_extra; i++) {
        free(x->extra[i][0]);
        free(x->extra[i][1]);
    }
    strbuf_free(&x->body);
    free(x->error);
    free(x->method);
    free(x->path);
    pthread_mutex_destroy(&x->wake_lock);
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
    x->queued = MHD_NO;
    pthread_mutex_init(&x->wake_lock, NULL);
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
    if (x->slot) {
        pthread_mutex_lock(&s->conns_lock);
        x->slot->x = x;
        pthread_mutex_unlock(&s->conns_lock);
    }
    return x;
}

/* Refusals decided from the headers alone; 1 when one was made. */
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
            return flush_reply(x);
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
    if (!x->dispatched) {
        x->dispatched = 1;
        if (x->responded)
            return flush_reply(x);
        slot_reading(s, x->slot, 0); /* the whole request is here */
        if (x->too_large) {
            http_exchange_set_route(x, -1, x->shape, "");
            http_exchange_add_header(x, MHD_HTTP_HEADER_CONNECTION, "close");
            http_error e = http_error_make(HTTP_ERR_TOO_LARGE, NULL,
                                           "the request body is larger than the limit of %zu "
                                           "bytes",
                                           s->o.max_body_bytes);
            http_exchange_reply_error(x, &e);
        } else if (x->body.oom) {
            http_error e = http_error_make(HTTP_ERR_UNAVAILABLE, NULL,
                                           "out of memory for a body of %zu bytes", x->body.len);
            http_exchange_reply_error(x, &e);
        } else {
            http_router_dispatch(s->api, x);
        }
    }
    return drive(s, x); /* and again each time the connection is resumed */
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
    if (x->slot) { /* from now on the watchdog cannot reach x */
        pthread_mutex_lock(&s->conns_lock);
        x->slot->x = NULL;
        pthread_mutex_unlock(&s->conns_lock);
    }
    /* Release what is still open, so no notification can reach x after it
     * is freed: the stream (MHD frees its response after this call), or a
     * wait whose client left. */
    mhd_stream *m = x->stream;
    if (m) {
        x->stream = NULL;
        m->ops->close(m->self);
        m->closed = 1;
        m->x = NULL;
    }
    end_wait(x);
    if (x->reply) { /* made but never handed to MHD */
        MHD_destroy_response(x->reply);
        x->reply = NULL;
    }
    if (!x->recorded) {
        if (!x->responded) {
            /* Never answered: the request did not arrive whole in time, or
             * the client left first (nginx's 499). */
            if (!x->status)
                x->status = toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? 408 : 499;
            if (!x->error)
                http_exchange_note_error(x, "the request did not arrive whole");
        }
        record(x, x->streamed);
    }
    slot_reading(s, x->slot, 1); /* a kept-alive connection waits for its next request */
    exchange_free(x);
}

/* ---------------------------------------------------------------- start and stop */

/* MHD's own connection limit: ours plus a margin it answers for us. */
static unsigned mhd_limit(uint32_t max_connections)
{
    return max_connections + max_connections / 4 + 8;
}

/*
 * Every connection is a descriptor: raises the soft RLIMIT_NOFILE (up to
 * the hard limit) to fit the connection limit; when even the hard limit is
 * too low, returns a lower connection limit that fits (and logs it).
 */
static uint32_t fit_descriptors(http_server *s, uint32_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return want;
    rlim_t need = (rlim_t)mhd_limit(want) + FD_RESERVE;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        rlim_t to = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
        struct rlimit raised = {.rlim_cur = to, .rlim_max = rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            rl.rlim_cur = to;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
        return want;
    uint32_t fit = 0;
    if (rl.rlim_cur > FD_RESERVE + 8) {
        fit = (uint32_t)((rl.rlim_cur - FD_RESERVE - 8) * 4 / 5);
        while (fit > 0 && (rlim_t)mhd_limit(fit) + FD_RESERVE > rl.rlim_cur)
            fit--;
    }
    char msg[256];
    snprintf(msg, sizeof msg,
             "the open-file limit is %llu (hard limit %llu): serving %u connections at most "
             "instead of %u",
             (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max, fit, want);
    log_json(s, "warning", "http", msg);
    return fit;
}

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
    if (!s->o.workers)
        s->o.workers = DEFAULT_WORKERS;
    s->api = api;
    atomic_init(&s->stopping, 0);
    pthread_mutex_init(&s->conns_lock, NULL);
    deadline_cond_init(&s->watchdog_wake);
    pthread_mutex_init(&s->jobs_lock, NULL);
    deadline_cond_init(&s->jobs_wake);
    s->o.max_connections = fit_descriptors(s, o->max_connections);
    if (!s->o.max_connections) {
        freeaddrinfo(ai);
        sem_err_set(err, SEM_EINVAL,
                    "the open-file limit (ulimit -n) leaves no room for HTTP connections");
        http_server_stop(s);
        return NULL;
    }
    if (pthread_create(&s->watchdog, NULL, watchdog_main, s) != 0) {
        freeaddrinfo(ai);
        sem_err_set(err, SEM_ENOMEM, "cannot start the HTTP watchdog thread");
        http_server_stop(s);
        return NULL;
    }
    s->watchdog_started = 1;
    for (; s->n_blocking < BLOCKING_THREADS; s->n_blocking++) {
        if (pthread_create(&s->blocking[s->n_blocking], NULL, blocking_main, s) != 0) {
            freeaddrinfo(ai);
            sem_err_set(err, SEM_ENOMEM, "cannot start the HTTP blocking threads");
            http_server_stop(s);
            return NULL;
        }
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    unsigned limit = mhd_limit(s->o.max_connections);
    /* Headers live in the connection's pool beside the read and write
     * buffers: give the buffers room beyond the header limit. */
    size_t pool = o->max_header_bytes + 16384;
    unsigned backlog = limit < 4096 ? limit : 4096;
    s->d = MHD_start_daemon(
        flags, o->port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->o.workers,
        MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_LISTEN_BACKLOG_SIZE, backlog,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->idle_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
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
    /* Nothing parks from here on, and no new blocking step starts. */
    atomic_store(&s->stopping, 1);
    pthread_mutex_lock(&s->jobs_lock);
    s->jobs_stop = 1;
    pthread_cond_broadcast(&s->jobs_wake);
    pthread_mutex_unlock(&s->jobs_lock);
    for (int i = 0; i < s->n_blocking; i++) /* they finish the steps already queued */
        pthread_join(s->blocking[i], NULL);
    if (s->d) {
        /* MHD refuses to stop while a connection is suspended: resume every
         * parked one; its worker sees `stopping` and ends it. */
        pthread_mutex_lock(&s->conns_lock);
        for (conn_slot *c = s->conns; c; c = c->next) {
            if (!c->x)
                continue;
            pthread_mutex_lock(&c->x->wake_lock);
            if (c->x->parked)
                wake_locked(c->x);
            pthread_mutex_unlock(&c->x->wake_lock);
        }
        pthread_mutex_unlock(&s->conns_lock);
        MHD_stop_daemon(s->d);
    }
    if (s->watchdog_started) {
        pthread_mutex_lock(&s->conns_lock);
        s->watchdog_stop = 1;
        pthread_cond_signal(&s->watchdog_wake);
        pthread_mutex_unlock(&s->conns_lock);
        pthread_join(s->watchdog, NULL);
    }
    pthread_mutex_destroy(&s->conns_lock);
    pthread_cond_destroy(&s->watchdog_wake);
    pthread_mutex_destroy(&s->jobs_lock);
    pthread_cond_destroy(&s->jobs_wake);
    free(s);
}
