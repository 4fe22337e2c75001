/*
 * cmd_serve.c - `semantic serve`: the OpenAI- and Anthropic-compatible
 * HTTP server over one or more models (cli/model_registry.h), with agent
 * memory.
 *
 *   semantic serve -m [NAME=]MODEL... [--models-dir DIR] [--alias PATTERN=NAME]...
 *                  [--default-model NAME] [--models-ram MIB] [--host 127.0.0.1]
 *                  [--port 8000] [--api-key KEY]... [--admin-key KEY] ... (see --help)
 *
 * Every option can also come from the environment: --max-batch is
 * SEMANTIC_MAX_BATCH, --api-key is SEMANTIC_API_KEY (several keys comma
 * separated), and from a config file of `max-batch = 8` lines (--config
 * FILE or SEMANTIC_CONFIG; conf_file.h). Precedence: the config file, then
 * the environment, then the flags, each one overriding the one before;
 * the strings the file holds live as long as the serve_config.
 * --api-key-file FILE adds one key per line of FILE to the other keys.
 *
 * The order of things: the listener starts first (readiness answers 503
 * "loading"), then the -m models are loaded (each: the model, the KV
 * pool, the prompt port, the warm store (the disk, and the Redis tier
 * under it with --cache-remote) and the engine) and the registry is
 * published to the routes (ready); the folder's models load on demand. The Redis URL's
 * credentials are never logged (serving_stack_redact_url). SIGTERM,
 * SIGINT or POST /admin/drain start the shutdown: readiness and new
 * generation requests answer 503, running requests get --drain-timeout
 * seconds to finish (then they are cancelled), agent memory is written to
 * the warm store, the listener stops, and the process exits 0.
 *
 * SIGHUP rescans --models-dir.
 *
 * Signals are blocked in every thread and taken synchronously by the main
 * thread (sigtimedwait), so no handler and no global flag is needed.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "adapters/http/auth.h"
#include "base/deadline.h"
#include "base/fs_dirs.h"
#include "adapters/http/http_api.h"
#include "adapters/http/http_server.h"
#include "adapters/kernels/cpu.h"
#include "adapters/model/model.h"
#include "adapters/model/model_backend.h"
#include "adapters/model/model_prompts.h"
#include "adapters/store/response_store.h"
#include "adapters/store/session_store.h"
#include "app/engine.h"
#include "cli.h"
#include "conf_file.h"
#include "model_registry.h"
#include "serving_stack.h"

#define SERVE_MAX_KEYS 64
#define SERVE_MAX_MODELS 64
#define SERVE_MAX_ALIASES 64

typedef struct serve_config {
    model_spec models[SERVE_MAX_MODELS];
    char model_names[SERVE_MAX_MODELS][HTTP_MODEL_NAME_MAX]; /* of -m NAME=PATH */
    size_t n_models;
    int models_from_flags;
    model_alias aliases[SERVE_MAX_ALIASES];
    char alias_bufs[SERVE_MAX_ALIASES][512];
    size_t n_aliases;
    const char *models_dir, *default_model;
    uint32_t models_ram_mb;
    const char *host, *admin_key, *chat_template, *chat_template_file, *isa, *model_id;
    const char *cache_dir, *cache_type;
    const char *cache_remote; /* a Redis URL; NULL: no remote tier */
    const char *api_keys[SERVE_MAX_KEYS];
    size_t n_api_keys;
    int api_keys_from_flags;
    uint32_t port, pool_mb, pin_mb, disk_mb, max_batch, max_queue, ctx, threads, drain_timeout_s;
    uint32_t remote_mb, remote_ttl_s;
    uint32_t max_connections, read_timeout_s, idle_timeout_s, max_header_bytes;
    uint64_t max_body_bytes;
    uint64_t responses_max, responses_max_age_s; /* retention of stored responses; 0: none */
    cache_kv_type kv_type;
    char *env_keys;               /* owns the strings of SEMANTIC_API_KEY */
    const char *api_key_file;     /* --api-key-file; NULL: none */
    conf_file *conf;              /* owns the strings of the --config file */
    conf_file *key_file;          /* owns the keys of --api-key-file */
    char cache_dir_buf[PATH_MAX]; /* the default cache folder */
} serve_config;

/* ---------------------------------------------------------------- options */

enum {
    O_MODEL = 'm',
    O_THREADS = 't',
    O_CTX = 'c',
    O_HELP = 'h',
    O_HOST = 256,
    O_PORT,
    O_API_KEY,
    O_ADMIN_KEY,
    O_CACHE_DIR,
    O_DISK_MB,
    O_PIN_MB,
    O_CACHE_TYPE,
    O_CACHE_REMOTE,
    O_REMOTE_MB,
    O_REMOTE_TTL,
    O_POOL_MB,
    O_MAX_BATCH,
    O_MAX_QUEUE,
    O_KV_TYPE,
    O_TEMPLATE,
    O_TEMPLATE_FILE,
    O_ISA,
    O_DRAIN,
    O_MAX_BODY,
    O_MAX_HEADER,
    O_MAX_CONN,
    O_READ_TIMEOUT,
    O_IDLE_TIMEOUT,
    O_MODEL_ID,
    O_RESPONSES_MAX,
    O_RESPONSES_MAX_AGE,
    O_MODELS_DIR,
    O_ALIAS,
    O_DEFAULT_MODEL,
    O_MODELS_RAM,
    O_CONFIG,
    O_API_KEY_FILE
};

typedef struct serve_option {
    const char *name;
    int id;
    const char *arg; /* argument name in --help */
    const char *def; /* default in --help */
    const char *help;
} serve_option;

static const serve_option options[] = {
    {"model", O_MODEL, "[NAME=]PATH", "none",
     "GGUF model file, loaded at start, served as NAME (default: the file name without .gguf); "
     "repeat for several"},
    {"models-dir", O_MODELS_DIR, "DIR", "none",
     "serve every DIR/*.gguf under its file name, loaded on its first request"},
    {"alias", O_ALIAS, "PATTERN=NAME", "none",
     "client model names matching the shell PATTERN get model NAME (repeat; env: comma "
     "separated)"},
    {"default-model", O_DEFAULT_MODEL, "NAME", "none: an unknown name is a 404",
     "model for any name that is not served"},
    {"models-ram", O_MODELS_RAM, "MIB", "0: no limit",
     "RAM for loaded models (weights and KV pools); the least recently used idle one unloads"},
    {"host", O_HOST, "ADDR", "127.0.0.1", "address to listen on"},
    {"port", O_PORT, "N", "8000", "port to listen on (0: any free port)"},
    {"api-key", O_API_KEY, "KEY", "none: open access",
     "API key clients must send (repeat; env: comma separated)"},
    {"admin-key", O_ADMIN_KEY, "KEY", "none: admin routes off",
     "key for /admin/clear and /admin/drain"},
    {"cache-dir", O_CACHE_DIR, "DIR",
     "$XDG_DATA_HOME/semantic/cache or ~/.local/share/semantic/cache",
     "folder of the disk tier of agent memory"},
    {"disk-mb", O_DISK_MB, "N", "10240", "disk budget of agent memory in MiB (0: unlimited)"},
    {"cache-type", O_CACHE_TYPE, "TYPE", "q8_0", "KV element type on disk: f16, q8_0, q4_0"},
    {"cache-remote", O_CACHE_REMOTE, "URL", "none",
     "redis[s]://[[USER]:PASSWORD@]HOST[:PORT][/DB][?cacert=..]: agent memory shared by "
     "servers (rediss: TLS)"},
    {"cache-remote-mb", O_REMOTE_MB, "N", "0: none",
     "remote tier budget, MiB (least recently used agents go first)"},
    {"cache-remote-ttl-s", O_REMOTE_TTL, "SECONDS", "0: never",
     "remote entries expire this long after their last use"},
    {"pool-mb", O_POOL_MB, "N", "max-batch full-context sequences, at most half of free RAM",
     "KV block pool in RAM, MiB (hot agent memory and running requests)"},
    {"pin-mb", O_PIN_MB, "N", "half of --pool-mb",
     "pool memory pinned agents and cache breakpoints may hold, MiB"},
    {"max-batch", O_MAX_BATCH, "N", "8", "sequences generated at once"},
    {"max-queue", O_MAX_QUEUE, "N", "256", "requests waiting for admission before 429"},
    {"ctx", O_CTX, "N", "model's, at most 4096", "context length per sequence"},
    {"kv-type", O_KV_TYPE, "TYPE", "f16", "KV element type in RAM: f16 or q8_0"},
    {"chat-template", O_TEMPLATE, "NAME", "the model's", "built-in chat template to use instead"},
    {"chat-template-file", O_TEMPLATE_FILE, "PATH", "the model's",
     "Jinja chat template file to use instead"},
    {"threads", O_THREADS, "N", "all cores", "compute threads"},
    {"isa", O_ISA, "NAME", "best available", "kernels: portable, avx2, avx512"},
    {"model-id", O_MODEL_ID, "NAME", "file name without .gguf",
     "name of a single -m model (as -m NAME=PATH)"},
    {"responses-max", O_RESPONSES_MAX, "N", "100000",
     "stored Responses API responses kept, oldest deleted first (0: no limit)"},
    {"responses-max-age-s", O_RESPONSES_MAX_AGE, "SECONDS", "2592000 (30 days)",
     "age after which a stored response is deleted (0: no limit)"},
    {"drain-timeout", O_DRAIN, "SECONDS", "30", "time running requests get to finish at shutdown"},
    {"max-body-bytes", O_MAX_BODY, "N", "8388608", "largest request body (413 beyond)"},
    {"max-header-bytes", O_MAX_HEADER, "N", "16384", "largest request head, about (431 beyond)"},
    {"max-connections", O_MAX_CONN, "N", "1024", "connections open at once (503 beyond)"},
    {"read-timeout", O_READ_TIMEOUT, "SECONDS", "30", "time a request may take to arrive whole"},
    {"idle-timeout", O_IDLE_TIMEOUT, "SECONDS", "60", "a silent connection is closed after this"},
    {"config", O_CONFIG, "FILE", "none",
     "'option = value' lines; the environment and flags win over them"},
    {"api-key-file", O_API_KEY_FILE, "FILE", "none",
     "API keys, one per line ('#' comments), besides --api-key's"},
    {"help", O_HELP, NULL, NULL, "show this help"},
};
#define N_OPTIONS (sizeof options / sizeof options[0])

static void env_name(const char *opt, char *out, size_t cap)
{
    size_t n = (size_t)snprintf(out, cap, "SEMANTIC_");
    for (; *opt && n + 1 < cap; opt++)
        out[n++] = *opt == '-' ? '_' : (char)toupper((unsigned char)*opt);
    out[n] = '\0';
}

static void usage(FILE *f)
{
    fprintf(f, "usage: semantic serve -m [NAME=]MODEL... | --models-dir DIR [options]\n\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const serve_option *o = &options[i];
        char flag[64], env[64], short_flag[8] = "    ";
        if (o->id < 256 && o->id != O_HELP)
            snprintf(short_flag, sizeof short_flag, "-%c, ", o->id);
        snprintf(flag, sizeof flag, "%s--%s %s", short_flag, o->name, o->arg ? o->arg : "");
        fprintf(f, "  %-30s %s\n", flag, o->help);
        if (o->arg) {
            env_name(o->name, env, sizeof env);
            fprintf(f, "  %-30s   env %s, default: %s\n", "", env, o->def);
        }
    }
    fprintf(f, "\nA flag wins over its environment variable, which wins over the --config file.\n"
               "SIGTERM or SIGINT drains and exits 0. SIGHUP rescans --models-dir.\n");
}

static sem_status add_key(serve_config *c, const char *key, sem_err *err)
{
    if (c->n_api_keys == SERVE_MAX_KEYS)
        return sem_err_set(err, SEM_EINVAL, "at most %d API keys", SERVE_MAX_KEYS);
    if (!*key)
        return sem_err_set(err, SEM_EINVAL, "--api-key: an API key is empty");
    c->api_keys[c->n_api_keys++] = key;
    return SEM_OK;
}

/* -m [NAME=]PATH: NAME= when what comes before the first '=' is no path. */
static sem_status add_model(serve_config *c, const char *v, sem_err *err)
{
    if (c->n_models == SERVE_MAX_MODELS)
        return sem_err_set(err, SEM_EINVAL, "-m: at most %d models", SERVE_MAX_MODELS);
    model_spec *m = &c->models[c->n_models];
    const char *eq = strchr(v, '=');
    *m = (model_spec){.path = v};
    if (eq && !memchr(v, '/', (size_t)(eq - v))) {
        if (eq == v || (size_t)(eq - v) >= HTTP_MODEL_NAME_MAX)
            return sem_err_set(err, SEM_EINVAL, "-m %s: the name before '=' is empty or too long",
                               v);
        char *name = c->model_names[c->n_models];
        snprintf(name, HTTP_MODEL_NAME_MAX, "%.*s", (int)(eq - v), v);
        *m = (model_spec){.name = name, .path = eq + 1};
    }
    if (!*m->path)
        return sem_err_set(err, SEM_EINVAL, "-m '%s': the path is empty", v);
    c->n_models++;
    return SEM_OK;
}

/* --alias PATTERN=NAME (split at the last '='; names hold none). */
static sem_status add_alias(serve_config *c, const char *v, sem_err *err)
{
    if (c->n_aliases == SERVE_MAX_ALIASES)
        return sem_err_set(err, SEM_EINVAL, "--alias: at most %d aliases", SERVE_MAX_ALIASES);
    char *buf = c->alias_bufs[c->n_aliases];
    if (snprintf(buf, sizeof c->alias_bufs[0], "%s", v) >= (int)sizeof c->alias_bufs[0])
        return sem_err_set(err, SEM_EINVAL, "--alias %s: too long", v);
    char *eq = strrchr(buf, '=');
    if (!eq || eq == buf || !eq[1])
        return sem_err_set(err, SEM_EINVAL, "--alias '%s': expected PATTERN=NAME", v);
    *eq = '\0';
    c->aliases[c->n_aliases++] = (model_alias){.pattern = buf, .target = eq + 1};
    return SEM_OK;
}

static sem_status parse_env_aliases(serve_config *c, const char *v, sem_err *err)
{
    char copy[4096];
    if (snprintf(copy, sizeof copy, "%s", v) >= (int)sizeof copy)
        return sem_err_set(err, SEM_EINVAL, "too long");
    char *save = NULL;
    for (char *a = strtok_r(copy, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
        while (*a == ' ')
            a++;
        if (*a && add_alias(c, a, err) != SEM_OK)
            return err->status;
    }
    return SEM_OK;
}

static sem_status parse_env_keys(serve_config *c, const char *v, sem_err *err)
{
    free(c->env_keys);
    c->env_keys = strdup(v);
    if (!c->env_keys)
        return sem_err_set(err, SEM_ENOMEM, "out of memory");
    c->n_api_keys = 0;
    char *save = NULL;
    for (char *k = strtok_r(c->env_keys, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
        while (*k == ' ')
            k++;
        size_t n = strlen(k);
        while (n && k[n - 1] == ' ')
            k[--n] = '\0';
        if (n && add_key(c, k, err) != SEM_OK)
            return err->status;
    }
    return SEM_OK;
}

/* One option's value, from the command line (from_env 0) or the environment. */
static sem_status apply(serve_config *c, int id, const char *v, int from_env, sem_err *err)
{
    sem_status st = SEM_OK;
    switch (id) {
    case O_MODEL:
        if (from_env || !c->models_from_flags) {
            c->models_from_flags = !from_env;
            c->n_models = 0; /* the environment's model replaces the config file's, flags both */
        }
        return add_model(c, v, err);
    case O_MODELS_DIR: c->models_dir = *v ? v : NULL; break;
    case O_ALIAS: return from_env ? parse_env_aliases(c, v, err) : add_alias(c, v, err);
    case O_DEFAULT_MODEL: c->default_model = *v ? v : NULL; break;
    case O_MODELS_RAM:
        st = cli_parse_u32("--models-ram", v, 0, 1u << 24, &c->models_ram_mb, err);
        break;
    case O_HOST: c->host = v; break;
    case O_PORT: st = cli_parse_u32("--port", v, 0, 65535, &c->port, err); break;
    case O_API_KEY:
        if (from_env)
            return parse_env_keys(c, v, err);
        if (!c->api_keys_from_flags) {
            c->api_keys_from_flags = 1;
            c->n_api_keys = 0; /* flags replace the environment's keys */
        }
        return add_key(c, v, err);
    case O_ADMIN_KEY: c->admin_key = v; break;
    case O_CACHE_DIR: c->cache_dir = v; break;
    case O_DISK_MB: st = cli_parse_u32("--disk-mb", v, 0, UINT32_MAX, &c->disk_mb, err); break;
    case O_PIN_MB: st = cli_parse_u32("--pin-mb", v, 1, UINT32_MAX, &c->pin_mb, err); break;
    case O_CACHE_TYPE:
        if (strcmp(v, "f16") != 0 && strcmp(v, "q8_0") != 0 && strcmp(v, "q4_0") != 0)
            return sem_err_set(err, SEM_EINVAL, "--cache-type: '%s' is not f16, q8_0 or q4_0", v);
        c->cache_type = v;
        break;
    case O_CACHE_REMOTE: c->cache_remote = *v ? v : NULL; break;
    case O_REMOTE_MB:
        st = cli_parse_u32("--cache-remote-mb", v, 0, UINT32_MAX, &c->remote_mb, err);
        break;
    case O_REMOTE_TTL:
        st = cli_parse_u32("--cache-remote-ttl-s", v, 0, UINT32_MAX, &c->remote_ttl_s, err);
        break;
    case O_POOL_MB: st = cli_parse_u32("--pool-mb", v, 1, 1u << 24, &c->pool_mb, err); break;
    case O_MAX_BATCH: st = cli_parse_u32("--max-batch", v, 1, 256, &c->max_batch, err); break;
    case O_MAX_QUEUE: st = cli_parse_u32("--max-queue", v, 1, 1u << 20, &c->max_queue, err); break;
    case O_CTX: st = cli_parse_u32("--ctx", v, 16, 1u << 24, &c->ctx, err); break;
    case O_KV_TYPE: st = cache_kv_type_parse(v, &c->kv_type, err); break;
    case O_TEMPLATE: c->chat_template = v; break;
    case O_TEMPLATE_FILE: c->chat_template_file = v; break;
    case O_THREADS: st = cli_parse_u32("--threads", v, 1, 1024, &c->threads, err); break;
    case O_ISA: c->isa = v; break;
    case O_MODEL_ID: c->model_id = v; break;
    case O_RESPONSES_MAX: st = cli_parse_u64("--responses-max", v, &c->responses_max, err); break;
    case O_RESPONSES_MAX_AGE:
        st = cli_parse_u64("--responses-max-age-s", v, &c->responses_max_age_s, err);
        break;
    case O_DRAIN:
        st = cli_parse_u32("--drain-timeout", v, 0, 86400, &c->drain_timeout_s, err);
        break;
    case O_MAX_BODY:
        st = cli_parse_u64("--max-body-bytes", v, &c->max_body_bytes, err);
        if (st == SEM_OK && c->max_body_bytes == 0)
            st = sem_err_set(err, SEM_EINVAL, "--max-body-bytes must be at least 1");
        break;
    case O_MAX_HEADER:
        st = cli_parse_u32("--max-header-bytes", v, 1024, 1u << 24, &c->max_header_bytes, err);
        break;
    case O_MAX_CONN:
        st = cli_parse_u32("--max-connections", v, 1, 16384, &c->max_connections, err);
        break;
    case O_READ_TIMEOUT:
        st = cli_parse_u32("--read-timeout", v, 1, 86400, &c->read_timeout_s, err);
        break;
    case O_IDLE_TIMEOUT:
        st = cli_parse_u32("--idle-timeout", v, 2, 86400, &c->idle_timeout_s, err);
        break;
    case O_CONFIG: break; /* read before everything else: load_config */
    case O_API_KEY_FILE: c->api_key_file = *v ? v : NULL; break;
    default: return sem_err_set(err, SEM_EINVAL, "unknown option");
    }
    return st;
}

static void default_cache_dir(serve_config *c)
{
    if (serving_stack_default_cache_dir(c->cache_dir_buf, sizeof c->cache_dir_buf, NULL) != SEM_OK)
        snprintf(c->cache_dir_buf, sizeof c->cache_dir_buf, "var/cache");
    c->cache_dir = c->cache_dir_buf;
}

static void serve_config_free(serve_config *c)
{
    free(c->env_keys);
    conf_file_free(c->conf);
    conf_file_free(c->key_file);
}

/* One line of the config file, through apply() like a flag. */
static sem_status apply_entry(serve_config *c, const conf_file *f, const conf_entry *e,
                              sem_err *err)
{
    const serve_option *o = NULL;
    for (size_t i = 0; i < N_OPTIONS && !o; i++)
        if (strcmp(options[i].name, e->name) == 0)
            o = &options[i];
    sem_status st = SEM_OK;
    if (!o)
        st = sem_err_set(err, SEM_EINVAL,
                         "unknown option '%s' (semantic serve --help lists them)", e->name);
    else if (o->id == O_CONFIG || o->id == O_HELP)
        st = sem_err_set(err, SEM_EINVAL, "'%s' cannot be set in a config file", e->name);
    else if (o->arg)
        st = apply(c, o->id, e->value, 0, err);
    else if (strcmp(e->value, "true") == 0)
        st = apply(c, o->id, NULL, 0, err);
    else if (strcmp(e->value, "false") != 0)
        st = sem_err_set(err, SEM_EINVAL, "'%s' takes no value: write '%s = true' or leave it out",
                         e->name, e->name);
    return st == SEM_OK ? SEM_OK : conf_file_where(f, e, err);
}

/*
 * The config file (--config, else SEMANTIC_CONFIG), applied before the
 * environment and the flags so that they win over it. A first pass over
 * argv finds --config (and --help, which then works whatever the file or
 * the environment hold).
 */
static sem_status load_config(serve_config *c, int argc, char **argv, const struct option *longs,
                              sem_err *err)
{
    const char *path = NULL, *from = "--config";
    optind = 0; /* 0: a full restart of getopt (glibc, musl) */
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":m:t:c:h", longs, NULL)) != -1) {
        if (ch == 'h') {
            usage(stdout);
            exit(0);
        }
        if (ch == O_CONFIG)
            path = optarg;
    }
    optind = 0;
    if (!path) {
        path = getenv("SEMANTIC_CONFIG");
        from = "SEMANTIC_CONFIG";
    }
    if (!path || !*path)
        return SEM_OK;
    if (conf_file_load(path, CONF_FILE_OPTIONS, &c->conf, err) != SEM_OK)
        return sem_err_wrap(err, "%s", from);
    for (size_t i = 0; i < conf_file_count(c->conf); i++)
        if (apply_entry(c, c->conf, conf_file_entry(c->conf, i), err) != SEM_OK)
            return sem_err_wrap(err, "%s", from);
    /* The environment's or the flags' keys and models replace the file's. */
    c->api_keys_from_flags = 0;
    c->models_from_flags = 0;
    return SEM_OK;
}

/* --api-key-file: its keys join the others. A file without a key is an
 * error, not an open server. */
static sem_status load_key_file(serve_config *c, sem_err *err)
{
    if (!c->api_key_file)
        return SEM_OK;
    if (conf_file_load(c->api_key_file, CONF_FILE_LIST, &c->key_file, err) != SEM_OK)
        return sem_err_wrap(err, "--api-key-file");
    size_t n = conf_file_count(c->key_file);
    if (n == 0)
        return sem_err_set(err, SEM_EINVAL,
                           "--api-key-file: %s holds no key (one per line, '#' starts a comment); "
                           "the server would be open to everyone",
                           c->api_key_file);
    for (size_t i = 0; i < n; i++) {
        const conf_entry *e = conf_file_entry(c->key_file, i);
        if (add_key(c, e->value, err) != SEM_OK)
            return conf_file_where(c->key_file, e, err);
    }
    return SEM_OK;
}

static sem_status parse_args(int argc, char **argv, serve_config *c, sem_err *err)
{
    http_server_opts h = http_server_defaults();
    *c = (serve_config){.host = h.host,
                        .port = h.port,
                        .pool_mb = 0, /* from the model */
                        .disk_mb = 10240,
                        .cache_type = "q8_0",
                        .max_batch = 8,
                        .max_queue = 256,
                        .drain_timeout_s = 30,
                        .max_connections = h.max_connections,
                        .read_timeout_s = h.read_timeout_s,
                        .idle_timeout_s = h.idle_timeout_s,
                        .max_header_bytes = (uint32_t)h.max_header_bytes,
                        .max_body_bytes = h.max_body_bytes,
                        .responses_max = 100000,
                        .responses_max_age_s = 30 * 86400,
                        .kv_type = CACHE_KV_F16};
    default_cache_dir(c);
    struct option longs[N_OPTIONS + 1];
    for (size_t i = 0; i < N_OPTIONS; i++)
        longs[i] = (struct option){
            options[i].name, options[i].arg ? required_argument : no_argument, 0, options[i].id};
    longs[N_OPTIONS] = (struct option){0, 0, 0, 0};
    /* The config file first, then the environment, then the flags. */
    if (load_config(c, argc, argv, longs, err) != SEM_OK)
        return err->status;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (!options[i].arg)
            continue;
        char env[64];
        env_name(options[i].name, env, sizeof env);
        const char *v = getenv(env);
        if (v && *v && apply(c, options[i].id, v, 1, err) != SEM_OK)
            return sem_err_wrap(err, "%s", env);
    }
    optind = 0;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":m:t:c:h", longs, NULL)) != -1) {
        if (ch == 'h') {
            usage(stdout);
            exit(0);
        }
        if (ch == '?' || ch == ':')
            exit(cli_option_error("serve", ch, argc, argv));
        if (apply(c, ch, optarg, 0, err) != SEM_OK)
            return err->status;
    }
    if (optind != argc)
        return sem_err_set(err, SEM_EINVAL, "unexpected argument '%s'", argv[optind]);
    if (load_key_file(c, err) != SEM_OK)
        return err->status;
    if (!c->n_models && !c->models_dir)
        return sem_err_set(err, SEM_EINVAL,
                           "-m MODEL or --models-dir DIR (or SEMANTIC_MODEL, SEMANTIC_MODELS_DIR) "
                           "is required");
    if (c->chat_template && c->chat_template_file)
        return sem_err_set(err, SEM_EINVAL, "--chat-template and --chat-template-file: give one of them");
    if (c->cache_remote && !*c->cache_dir)
        return sem_err_set(err, SEM_EINVAL,
                           "--cache-remote needs the disk tier: the remote tier sits under it, "
                           "but --cache-dir is '' (persistence off)");
    if (c->model_id) {
        if (c->n_models != 1 || c->models[0].name)
            return sem_err_set(err, SEM_EINVAL,
                               "--model-id names a single -m model; with several, name each "
                               "with -m NAME=PATH");
        c->models[0].name = c->model_id;
    }
    return SEM_OK;
}

/* ---------------------------------------------------------------- the running server */

typedef struct serve_state {
    serve_config cfg;
    http_auth *auth;
    http_api *api;
    http_server *server;
    model_registry *registry; /* the models, each with its serving stack */
    http_models models;
    response_db *responses;   /* the Responses API's stored responses, every model's */
    session_db *sessions;     /* multi-agent sessions, every model's */
} serve_state;

static void log_line(const char *level, const char *source, const char *message)
{
    json_t *o = json_pack("{s:s,s:s,s:s}", "level", level, "source", source, "message", message);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (s) {
        fprintf(stderr, "%s\n", s);
        free(s);
    }
}

/* The stored responses: responses.sqlite in the cache folder, in memory
 * without one (they then last as long as the process). */
static sem_status open_responses(serve_state *s, sem_err *err)
{
    char path[PATH_MAX + 32];
    const char *dir = s->cfg.cache_dir;
    snprintf(path, sizeof path, "%s%s", dir, *dir ? "/responses.sqlite" : ":memory:");
    response_db_opts o = {.path = path,
                          .max_count = s->cfg.responses_max,
                          .max_age_s = s->cfg.responses_max_age_s,
                          .now_s = (int64_t)time(NULL)};
    s->responses = response_db_open(&o, err);
    return s->responses ? SEM_OK : err->status;
}

/* The sessions: sessions.sqlite in the cache folder, in memory without one. */
static sem_status open_sessions(serve_state *s, sem_err *err)
{
    char path[PATH_MAX + 32];
    const char *dir = s->cfg.cache_dir;
    snprintf(path, sizeof path, "%s%s", dir, *dir ? "/sessions.sqlite" : ":memory:");
    s->sessions = session_db_open(path, err);
    return s->sessions ? SEM_OK : err->status;
}

static serving_stack_opts stack_opts(const serve_config *c)
{
    serving_stack_opts o = serving_stack_defaults();
    o.pool_mb = c->pool_mb;
    o.pin_mb = c->pin_mb;
    o.disk_mb = c->disk_mb;
    o.cache_type = c->cache_type;
    o.kv_type = c->kv_type;
    o.ctx = c->ctx;
    o.max_batch = c->max_batch;
    o.max_queue = c->max_queue;
    o.threads = (int)c->threads;
    o.isa = c->isa;
    o.chat_template = c->chat_template;
    o.chat_template_file = c->chat_template_file;
    o.cache_remote = c->cache_remote;
    o.remote_mb = c->remote_mb;
    o.remote_ttl_s = c->remote_ttl_s;
    /* Queued remote writes get part of the drain time at shutdown. */
    o.remote_drain_ms = c->drain_timeout_s < 10 ? c->drain_timeout_s * 1000 : 10000;
    return o;
}

/* Builds the model registry (loading the -m models) behind HTTP. */
static sem_status load(serve_state *s, sem_err *err)
{
    const serve_config *c = &s->cfg;
    if (*c->cache_dir && fs_make_dirs(c->cache_dir) != 0)
        return sem_err_set(err, SEM_EIO, "--cache-dir %s: %s", c->cache_dir, strerror(errno));
    if (open_responses(s, err) != SEM_OK || open_sessions(s, err) != SEM_OK)
        return err->status;
    model_registry_opts ro = {.models = c->models,
                              .n_models = c->n_models,
                              .models_dir = c->models_dir,
                              .aliases = c->aliases,
                              .n_aliases = c->n_aliases,
                              .default_model = c->default_model,
                              .ram_budget = (uint64_t)c->models_ram_mb << 20,
                              .stack = stack_opts(c),
                              .cache_dir = c->cache_dir,
                              .disk_budget = (uint64_t)c->disk_mb << 20,
                              .remote_budget = (uint64_t)c->remote_mb << 20,
                              .responses = response_db_port(s->responses)};
    if (c->cache_remote) {
        char shown[400], msg[512];
        serving_stack_redact_url(c->cache_remote, shown, sizeof shown);
        snprintf(msg, sizeof msg, "agent memory is shared through %s", shown);
        log_line("info", "serve", msg);
    }
    s->registry = model_registry_open(&ro, err);
    if (!s->registry)
        return err->status;
    s->models = model_registry_port(s->registry);
    return SEM_OK;
}

static void teardown(serve_state *s)
{
    http_server_stop(s->server);
    model_registry_close(s->registry);
    response_db_close(s->responses);
    session_db_close(s->sessions);
    http_api_free(s->api);
    auth_free(s->auth);
    serve_config_free(&s->cfg);
}

/* SIGHUP: the models folder is read again. */
static void rescan(serve_state *s)
{
    uint32_t added, removed, changed;
    sem_err err = {0};
    char msg[1024];
    if (s->models.ops->rescan(s->models.self, &added, &removed, &changed, &err) != SEM_OK)
        snprintf(msg, sizeof msg, "SIGHUP: %s", sem_err_text(&err));
    else
        snprintf(msg, sizeof msg, "SIGHUP: models rescanned: %u added, %u removed, %u changed",
                 added, removed, changed);
    log_line(err.status ? "error" : "info", "serve", msg);
}

/* Waits for SIGTERM/SIGINT (blocked in every thread) or an admin drain. */
static int wait_for_shutdown(serve_state *s, const sigset_t *set)
{
    for (;;) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 200 * 1000000L};
        int sig = sigtimedwait(set, NULL, &ts);
        if (sig == SIGHUP)
            rescan(s);
        else if (sig > 0)
            return sig;
        if (http_api_shutdown_requested(s->api))
            return 0;
    }
}

int cmd_serve(int argc, char **argv)
{
    serve_state s;
    memset(&s, 0, sizeof s);
    sem_err err = {0};
    if (parse_args(argc, argv, &s.cfg, &err) != SEM_OK) {
        serve_config_free(&s.cfg);
        return err.status == SEM_EINVAL ? cli_usage_fail("serve", &err) : cli_fail("serve", &err);
    }
    /* Every thread created from here on inherits the blocked signals. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    s.auth = auth_create(s.cfg.api_keys, s.cfg.n_api_keys, s.cfg.admin_key, &err);
    uint32_t keepalive = s.cfg.idle_timeout_s * 1000 / 3;
    http_api_opts ao = {.auth = s.auth,
                        .keepalive_ms = keepalive < 15000 ? keepalive : 15000,
                        .log_fd = 2,
                        .version = "semantic-" SEM_VERSION,
                        .persistent = s.cfg.cache_dir[0] != '\0'};
    if (s.auth)
        s.api = http_api_create(&ao, &err);
    if (!s.auth || !s.api) {
        teardown(&s);
        return cli_fail("serve", &err);
    }
    http_server_opts ho = {.host = s.cfg.host,
                           .port = (uint16_t)s.cfg.port,
                           .max_body_bytes = s.cfg.max_body_bytes,
                           .max_header_bytes = s.cfg.max_header_bytes,
                           .max_connections = s.cfg.max_connections,
                           .read_timeout_s = s.cfg.read_timeout_s,
                           .idle_timeout_s = s.cfg.idle_timeout_s};
    s.server = http_server_start(&ho, s.api, &err);
    if (!s.server) {
        teardown(&s);
        return cli_fail("serve", &err);
    }
    char msg[PATH_MAX + 512];
    char url[300];
    snprintf(url, sizeof url, "http://%s%s%s:%u", strchr(s.cfg.host, ':') ? "[" : "",
             s.cfg.host, strchr(s.cfg.host, ':') ? "]" : "", (unsigned)http_server_port(s.server));
    snprintf(msg, sizeof msg, "listening on %s (%s; loading: not ready yet, wait for \"ready\")",
             url, auth_has_keys(s.auth) ? "API keys required" : "no API key required");
    log_line("info", "serve", msg);
    if (load(&s, &err) != SEM_OK) {
        teardown(&s);
        return cli_fail("serve", &err);
    }
    http_api_set_sessions(s.api, session_db_port(s.sessions));
    http_api_set_models(s.api, &s.models, response_db_port(s.responses));
    snprintf(msg, sizeof msg, "ready: %zu model%s loaded%s, answering on %s", s.cfg.n_models,
             s.cfg.n_models == 1 ? "" : "s",
             s.cfg.models_dir ? " (the models folder's load on demand)" : "", url);
    log_line("info", "serve", msg);

    int sig = wait_for_shutdown(&s, &set);
    snprintf(msg, sizeof msg, "%s: draining (up to %u s)",
             sig == SIGTERM  ? "SIGTERM"
             : sig == SIGINT ? "SIGINT"
                             : "admin drain",
             s.cfg.drain_timeout_s);
    log_line("info", "serve", msg);
    http_api_set_draining(s.api);
    uint32_t failed = model_registry_drain(s.registry, s.cfg.drain_timeout_s * 1000);
    if (failed) {
        snprintf(msg, sizeof msg, "%u agents could not be saved", failed);
        log_line("error", "serve", msg);
    }
    http_server_stop(s.server);
    s.server = NULL;
    teardown(&s);
    log_line("info", "serve", "stopped");
    return 0;
}
