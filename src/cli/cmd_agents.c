/*
 * cmd_agents.c - `semantic agents ls|show|rm`: the agents kept on disk in a
 * cache directory, without a server.
 *
 *   semantic agents ls   [--cache-dir DIR] [-m MODEL] [--json]
 *   semantic agents show [--cache-dir DIR] [--json] ID
 *   semantic agents rm   [--cache-dir DIR] ID...
 *
 * ls and show read the SQLite index (safe while a server uses the folder:
 * the index is in WAL mode). rm needs the folder to itself: it takes the
 * folder's lock and refuses while a server holds it (a running server's
 * agents are removed with DELETE /v1/agents/{id}).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "adapters/gguf/gguf.h"
#include "adapters/store/agent_index.h"
#include "adapters/store/kv_file.h"
#include "cli.h"
#include "domain/agent_id.h"
#include "serving_stack.h"

typedef struct agents_args {
    char dir[4096];
    const char *model;
    int json;
} agents_args;

static void usage(void)
{
    printf("usage: semantic agents ls   [--cache-dir DIR] [-m MODEL] [--json]\n"
           "       semantic agents show [--cache-dir DIR] [--json] ID\n"
           "       semantic agents rm   [--cache-dir DIR] ID...\n"
           "  --cache-dir DIR  the agent memory folder (default: $XDG_DATA_HOME/semantic/cache,\n"
           "                   else ~/.local/share/semantic/cache: the folder `semantic serve`\n"
           "                   and `run --agent` use by default)\n"
           "  -m MODEL         ls: only agents saved by this model\n");
}

static void format_time(int64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *row_json(const agent_row *r)
{
    char when[32], fp[20];
    format_time(r->last_use_ms, when, sizeof when);
    snprintf(fp, sizeof fp, "%016llx", (unsigned long long)r->fingerprint);
    return json_pack("{s:s,s:s,s:I,s:I,s:s,s:s,s:I,s:I,s:s}", "id", r->key, "tier", "warm",
                     "tokens", (json_int_t)r->tokens, "bytes", (json_int_t)r->bytes, "last_use",
                     when, "cache_type", kv_payload_name(r->payload), "hits", (json_int_t)r->hits,
                     "tokens_saved", (json_int_t)r->tokens_saved, "model_fingerprint", fp);
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    printf("%s\n", s ? s : "null");
    free(s);
    json_decref(j);
}

static agent_index *open_index(const agents_args *a, sem_err *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/index.sqlite", a->dir);
    if (access(path, F_OK) != 0) {
        sem_err_set(err, SEM_ENOTFOUND, "no agent memory in %s (no index.sqlite)", a->dir);
        return NULL;
    }
    return agent_index_open(path, err);
}

static int cmd_ls(const agents_args *a)
{
    sem_err err = {0};
    uint64_t fp = 0;
    if (a->model) {
        gguf_file *f = gguf_open(a->model, &err);
        if (!f)
            return cli_fail("agents", &err);
        fp = gguf_layout_hash(f);
        gguf_close(f);
    }
    agent_index *ix = open_index(a, &err);
    if (!ix)
        return cli_fail("agents", &err);
    agent_row *rows = NULL;
    size_t n = 0;
    sem_status st = a->model ? agent_index_list(ix, fp, "", &rows, &n, &err)
                             : agent_index_all(ix, &rows, &n, &err);
    agent_index_close(ix);
    if (st != SEM_OK)
        return cli_fail("agents", &err);
    if (a->json) {
        json_t *list = json_array();
        for (size_t i = n; i-- > 0;) /* most recently used first */
            json_array_append_new(list, row_json(&rows[i]));
        print_json(json_pack("{s:o}", "agents", list));
    } else {
        printf("%-32s %8s %12s %-20s %6s %12s\n", "id", "tokens", "bytes", "last use", "hits",
               "saved");
        for (size_t i = n; i-- > 0;) {
            char when[32];
            format_time(rows[i].last_use_ms, when, sizeof when);
            printf("%-32s %8u %12llu %-20s %6llu %12llu\n", rows[i].key, rows[i].tokens,
                   (unsigned long long)rows[i].bytes, when, (unsigned long long)rows[i].hits,
                   (unsigned long long)rows[i].tokens_saved);
        }
    }
    free(rows);
    return 0;
}

static int cmd_show(const agents_args *a, const char *id)
{
    sem_err err = {0};
    if (agent_key_validate(id, &err) != SEM_OK)
        return cli_fail("agents", &err);
    agent_index *ix = open_index(a, &err);
    if (!ix)
        return cli_fail("agents", &err);
    agent_row r;
    sem_status st = agent_index_get(ix, id, &r, &err);
    agent_index_close(ix);
    if (st != SEM_OK)
        return cli_fail("agents", &err);
    /* The file's header, checked. */
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", a->dir, r.file);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    kv_file_header h;
    int32_t *tokens = NULL;
    sem_err herr = {0};
    sem_status hst = fd < 0 ? sem_err_set(&herr, SEM_EIO, "cannot open %s: %s", path,
                                          strerror(errno))
                            : kv_file_read_header(fd, path, &h, &tokens, &herr);
    if (fd >= 0)
        close(fd);
    free(tokens);
    json_t *j = row_json(&r);
    json_object_set_new(j, "file", json_string(path));
    json_object_set_new(j, "header", json_string(hst == SEM_OK ? "ok" : sem_err_text(&herr)));
    if (hst == SEM_OK) {
        json_object_set_new(j, "layers", json_integer(h.n_layers));
        json_object_set_new(j, "kv_heads", json_integer(h.n_kv_heads));
        json_object_set_new(j, "head_dims", json_pack("[i,i]", h.k_head_dim, h.v_head_dim));
        json_object_set_new(j, "format_version", json_integer(h.version));
    }
    if (a->json) {
        print_json(j);
        return 0;
    }
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v) {
        char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        printf("%-18s %s\n", k, s ? s : "");
        free(s);
    }
    json_decref(j);
    return 0;
}

static int cmd_rm(const agents_args *a, char **ids, int n)
{
    sem_err err = {0};
    for (int i = 0; i < n; i++)
        if (agent_key_validate(ids[i], &err) != SEM_OK)
            return cli_fail("agents", &err);
    char lock[4200];
    snprintf(lock, sizeof lock, "%s/LOCK", a->dir);
    int fd = open(lock, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        sem_err_set(&err, SEM_ENOTFOUND, "no agent memory in %s", a->dir);
        return cli_fail("agents", &err);
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        sem_err_set(&err, SEM_EBUSY, "%s is in use by a running server; remove its agents with "
                                     "DELETE /v1/agents/{id}", a->dir);
        return cli_fail("agents", &err);
    }
    agent_index *ix = open_index(a, &err);
    int rc = ix ? 0 : cli_fail("agents", &err);
    for (int i = 0; ix && i < n; i++) {
        agent_row r;
        int deleted = 0;
        char path[4400];
        if (agent_index_get(ix, ids[i], &r, NULL) == SEM_OK)
            snprintf(path, sizeof path, "%s/%s", a->dir, r.file);
        else /* a file the index does not list: a newer format's, an unreadable one */
            snprintf(path, sizeof path, "%s/%s.kv", a->dir, ids[i]);
        int had_file = unlink(path) == 0;
        if (agent_index_delete(ix, ids[i], &deleted, &err) != SEM_OK) {
            rc = cli_fail("agents", &err);
        } else if (!deleted && !had_file) {
            sem_err_set(&err, SEM_ENOTFOUND, "agent '%s' not found in %s", ids[i], a->dir);
            rc = cli_fail("agents", &err);
        } else {
            printf("removed %s\n", ids[i]);
        }
    }
    agent_index_close(ix);
    close(fd);
    return rc;
}

enum { O_CDIR = 256, O_JSON };

int cmd_agents(int argc, char **argv)
{
    static const struct option opts[] = {{"cache-dir", required_argument, 0, O_CDIR},
                                         {"model", required_argument, 0, 'm'},
                                         {"json", no_argument, 0, O_JSON},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    if (argc < 2)
        return cli_usage_error("agents", "a verb is required: ls, show or rm");
    const char *verb = argv[1];
    if (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0 || strcmp(verb, "help") == 0) {
        usage();
        return 0;
    }
    if (strcmp(verb, "ls") != 0 && strcmp(verb, "show") != 0 && strcmp(verb, "rm") != 0)
        return cli_usage_error("agents", "unknown verb '%s': ls, show or rm", verb);
    agents_args a = {0};
    const char *dir = NULL;
    int c;
    optind = 2;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:h", opts, NULL)) != -1) {
        switch (c) {
        case O_CDIR: dir = optarg; break;
        case 'm': a.model = optarg; break;
        case O_JSON: a.json = 1; break;
        case 'h': usage(); return 0;
        default: return cli_option_error("agents", c, argc, argv);
        }
    }
    sem_err err = {0};
    if (dir)
        snprintf(a.dir, sizeof a.dir, "%s", dir);
    else if (serving_stack_default_cache_dir(a.dir, sizeof a.dir, &err) != SEM_OK)
        return cli_fail("agents", &err);
    int rest = argc - optind;
    if (strcmp(verb, "ls") == 0) {
        if (rest > 0)
            return cli_usage_error("agents", "ls takes no agent ID ('%s')", argv[optind]);
        return cmd_ls(&a);
    }
    if (a.model)
        return cli_usage_error("agents", "-m MODEL goes with ls only");
    if (strcmp(verb, "show") == 0) {
        if (rest != 1)
            return cli_usage_error("agents", "show takes one agent ID, not %d", rest);
        return cmd_show(&a, argv[optind]);
    }
    if (rest == 0)
        return cli_usage_error("agents", "rm needs the IDs of the agents to remove");
    return cmd_rm(&a, argv + optind, rest);
}
