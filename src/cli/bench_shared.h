/*
 * bench_shared.h - `semantic bench --shared`: blocks, time to first token,
 * disk bytes and fork time of agents that share a prefix (bench_shared.c).
 */
#ifndef SEM_BENCH_SHARED_H
#define SEM_BENCH_SHARED_H

#include "serving_stack.h"
#include "session.h"

/* One greedy request of one token for agent `id` through the stack's
 * engine: its time to first token and cached tokens (may be NULL). */
sem_status bench_agent_ttft(serving_stack *st, const char *id, const int32_t *prompt, uint32_t n,
                            double *ttft, uint32_t *cached, sem_err *err);

/* spec: "PREFIX,SUFFIX,AGENTS[,FORK]" (NULL or "": 3000,200,8,4096). */
int bench_shared(const session_opts *so, const char *spec, const char *cache_dir,
                 const char *cache_type, int json);

#endif
