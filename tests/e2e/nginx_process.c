/*
 * nginx_process.c - a throwaway nginx in front of semantic servers
 * (nginx_process.h).
 */
#include "nginx_process.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http_client.h"

const char *nginx_bin(void)
{
    static const char *const candidates[] = {"/usr/sbin/nginx", "/usr/local/sbin/nginx",
                                             "/usr/bin/nginx"};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
        if (access(candidates[i], X_OK) == 0)
            return candidates[i];
    return NULL;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The http block is docs/several-nodes.md's, with the ports filled in and
 * every file in the prefix. */
char *nginx_config(const char *prefix, uint16_t listen, const uint16_t *upstreams, size_t n)
{
    char servers[2048] = "";
    size_t used = 0;
    for (size_t i = 0; i < n && used < sizeof servers; i++)
        used += (size_t)snprintf(servers + used, sizeof servers - used,
                                 "        server 127.0.0.1:%u max_fails=1 fail_timeout=10s;\n",
                                 (unsigned)upstreams[i]);
    const char *fmt =
        "daemon off;\n"
        "master_process on;\n"
        "worker_processes 1;\n"
        "pid %s/nginx.pid;\n"
        "error_log %s/error.log info;\n"
        "events { worker_connections 512; }\n"
        "http {\n"
        "    access_log %s/access.log;\n"
        "    client_body_temp_path %s/client_body;\n"
        "    proxy_temp_path %s/proxy;\n"
        "    fastcgi_temp_path %s/fastcgi;\n"
        "    uwsgi_temp_path %s/uwsgi;\n"
        "    scgi_temp_path %s/scgi;\n"
        "\n"
        "    # The agent, as semantic names it: X-Agent-ID, else Claude Code's\n"
        "    # session header, else (anonymous, or named only in the body) the\n"
        "    # client's address.\n"
        "    map $http_x_agent_id $semantic_agent {\n"
        "        \"\"      $http_x_claude_code_session_id;\n"
        "        default $http_x_agent_id;\n"
        "    }\n"
        "    map $semantic_agent $semantic_route {\n"
        "        \"\"      $remote_addr;\n"
        "        default $semantic_agent;\n"
        "    }\n"
        "\n"
        "    upstream semantic {\n"
        "        hash $semantic_route consistent;\n"
        "%s"
        "    }\n"
        "\n"
        "    server {\n"
        "        listen 127.0.0.1:%u;\n"
        "        client_max_body_size 8m;\n"
        "        client_body_buffer_size 8m;\n"
        "        location / {\n"
        "            proxy_pass http://semantic;\n"
        "            proxy_http_version 1.1;\n"
        "            proxy_set_header Connection \"\";\n"
        "            proxy_buffering off;\n"
        "            proxy_read_timeout 600s;\n"
        "            proxy_connect_timeout 2s;\n"
        "            proxy_next_upstream error timeout;\n"
        "            proxy_next_upstream_tries 2;\n"
        "        }\n"
        "    }\n"
        "}\n";
    size_t cap = strlen(fmt) + 8 * strlen(prefix) + strlen(servers) + 64;
    char *out = malloc(cap);
    if (out)
        snprintf(out, cap, fmt, prefix, prefix, prefix, prefix, prefix, prefix, prefix, prefix,
                 servers, (unsigned)listen);
    return out;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f) == 0 ? 0 : -1;
}

/* Spawns nginx and waits up to 10 s for its port; 0 or -1. */
static int spawn_and_wait(nginx_proc *n, const char *conf)
{
    char elog[600];
    snprintf(elog, sizeof elog, "%s/error.log", n->prefix);
    const char *argv[] = {nginx_bin(), "-p", n->prefix, "-c", conf, "-e", elog, NULL};
    if (server_spawn(&n->p, argv) != 0)
        return -1;
    for (int i = 0; i < 1000; i++) {
        int fd = hc_connect(n->port);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        if (server_exited(&n->p))
            break;
        sleep_ms(10);
    }
    char *log = nginx_error_log(n);
    fprintf(stderr, "nginx did not start; its error log:\n%s\n", log);
    free(log);
    if (n->p.pid)
        server_stop(&n->p, SIGKILL, 5000);
    server_discard_log(&n->p);
    return -1;
}

int nginx_start(nginx_proc *n, const uint16_t *upstreams, size_t n_upstreams)
{
    memset(n, 0, sizeof *n);
    if (!nginx_bin())
        return 1;
    if (server_temp_dir("nginx", n->prefix, sizeof n->prefix) != 0)
        return -1;
    char conf[600];
    snprintf(conf, sizeof conf, "%s/nginx.conf", n->prefix);
    for (int attempt = 0; attempt < 5; attempt++) {
        n->port = server_free_port();
        char *text = n->port ? nginx_config(n->prefix, n->port, upstreams, n_upstreams) : NULL;
        int ok = text && write_file(conf, text) == 0 && spawn_and_wait(n, conf) == 0;
        free(text);
        if (ok)
            return 0;
    }
    server_temp_dir_remove(n->prefix);
    n->prefix[0] = '\0';
    return -1;
}

void nginx_stop(nginx_proc *n)
{
    if (n->p.pid) /* the master and its workers: a worker outlives a killed master */
        kill(-n->p.pid, SIGKILL);
    if (n->p.pid)
        server_stop_keep(&n->p, SIGKILL, 5000);
    server_discard_log(&n->p);
    if (n->prefix[0])
        server_temp_dir_remove(n->prefix);
    n->prefix[0] = '\0';
}

char *nginx_error_log(const nginx_proc *n)
{
    server_proc fake = {0};
    snprintf(fake.log_path, sizeof fake.log_path, "%.490s/error.log", n->prefix);
    return server_log(&fake);
}
