/*
 * Several nodes behind a real load balancer (docs/several-nodes.md): a
 * redis-server and nginx (Debian's binary, the configuration the doc
 * gives, on free ports of 127.0.0.1) in front of two semantic servers
 * that share the Redis tier.
 *
 *   - nginx routes by agent: every request of an agent reaches one
 *     server;
 *   - kill -9 the server that holds an agent: nginx fails over to the
 *     other (proxy_next_upstream error timeout), and the agent's next
 *     request reports cached tokens, read from Redis.
 *
 * Without redis-server or nginx the test is skipped (exit 77) with a
 * message that says how to install them.
 */
#include "remote_util.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "nginx_process.h"
#include "redis_process.h"

#define KEY "nodes-key"

static redis_proc redis;
static server_proc nodes[2];
static nginx_proc lb;

static int start_node(server_proc *s, const char *url)
{
    const char *args[] = {"--cache-remote", url, "--api-key", KEY, "--pool-mb", "64",
                          "--max-batch", "4", NULL};
    const char *env[] = {"SEMANTIC_API_KEY=", "SEMANTIC_ADMIN_KEY=", "SEMANTIC_CACHE_REMOTE=",
                         NULL};
    return server_start(s, SEMANTIC_BIN, STORIES, args, env, 1);
}

static int setup(void **state)
{
    (void)state;
    if (redis_start(&redis, NULL, NULL) != 0)
        return -1;
    char url[128];
    snprintf(url, sizeof url, "redis://127.0.0.1:%u", (unsigned)redis.port);
    for (int i = 0; i < 2; i++)
        if (start_node(&nodes[i], url) != 0)
            return -1;
    uint16_t ports[2] = {nodes[0].port, nodes[1].port};
    return nginx_start(&lb, ports, 2) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    int rc = 0;
    nginx_stop(&lb);
    for (int i = 0; i < 2; i++) { /* the survivor stops cleanly (exit 0: no leak, no error) */
        if (nodes[i].pid && server_stop(&nodes[i], SIGTERM, 20000) != 0)
            rc = -1;
        server_discard_log(&nodes[i]);
    }
    redis_stop(&redis);
    return rc;
}

/* Which node holds agent in RAM (0 or 1), failing unless exactly one does. */
static int holder_of(const char *agent)
{
    int holder = -1;
    char tier[32];
    for (int i = 0; i < 2; i++) {
        if (!nodes[i].pid)
            continue;
        if (strcmp(ru_tier(nodes[i].port, KEY, agent, tier, sizeof tier), "hot") == 0) {
            if (holder >= 0)
                fail_msg("agent %s is hot on both nodes", agent);
            holder = i;
        }
    }
    if (holder < 0)
        fail_msg("agent %s is hot on no node", agent);
    return holder;
}

static void an_agents_requests_reach_one_node(void **state)
{
    (void)state;
    char *b = ru_chat_body(NULL, NULL, 2);
    int used[2] = {0, 0};
    for (int a = 0; a < 24; a++) {
        char agent[32];
        snprintf(agent, sizeof agent, "routed-%d", a);
        for (int k = 0; k < 3; k++) {
            http_response r = ru_chat(lb.port, KEY, agent, b);
            if (k > 0) /* the same node: its RAM copy answers */
                assert_true(ru_usage(&r, "cached_tokens") > 0);
            hc_free(&r);
        }
        used[holder_of(agent)]++;
    }
    /* Consistent hashing spreads the agents over both nodes. The ring is
     * built from the nodes' addresses, whose ports differ from run to
     * run: 8 agents once all landed on one node; for 24 to do so, each of
     * them must (at even odds per agent, 2 in 2^24). */
    assert_true(used[0] > 0 && used[1] > 0);
    free(b);
}

static void an_agent_survives_losing_its_node(void **state)
{
    (void)state;
    char *b1 = ru_chat_body(NULL, NULL, 12);
    http_response r = ru_chat(lb.port, KEY, "survivor", b1);
    json_int_t prompt1 = ru_usage(&r, "prompt_tokens");
    char *answer = ru_content(&r);
    hc_free(&r);
    int h = holder_of("survivor"), other = 1 - h;
    /* The holder's write-behind reaches Redis; the other node can see it. */
    char tier[32];
    for (int waited = 0; waited < 30000; waited += 50) {
        if (strcmp(ru_tier(nodes[other].port, KEY, "survivor", tier, sizeof tier), "remote") == 0)
            break;
        usleep(50000);
    }
    assert_string_equal(tier, "remote");
    server_stop(&nodes[h], SIGKILL, 5000);
    server_discard_log(&nodes[h]);
    /* nginx fails over; the next request reuses what the dead node computed. */
    char *b2 = ru_chat_body(answer, "And then?", 4);
    r = ru_chat(lb.port, KEY, "survivor", b2);
    json_int_t cached = ru_usage(&r, "cached_tokens");
    hc_free(&r);
    if (cached < prompt1)
        fail_msg("after the failover the agent reused %lld tokens (first prompt %lld)",
                 (long long)cached, (long long)prompt1);
    assert_string_equal(ru_tier(nodes[other].port, KEY, "survivor", tier, sizeof tier), "hot");
    assert_true(ru_metric(nodes[other].port, KEY, "semantic_remote_get_hits_total") >= 1);
    free(b2);
    free(answer);
    free(b1);
}

int main(void)
{
    if (!redis_server_bin() || !nginx_bin()) {
        printf("SKIP: %s\n", !redis_server_bin() ? REDIS_MISSING_MSG : NGINX_MISSING_MSG);
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(an_agents_requests_reach_one_node),
        cmocka_unit_test(an_agent_survives_losing_its_node),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
