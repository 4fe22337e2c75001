/*
 * bench_shared.h - `semantic bench --shared`: blocks, time to first token,
 * disk bytes and fork time of agents that share a prefix (bench_shared.c).
 */
#ifndef SEM_BENCH_SHARED_H
#define SEM_BENCH_SHARED_H

#include "session.h"

/* spec: "PREFIX,SUFFIX,AGENTS[,FORK]" (NULL or "": 3000,200,8,4096). */
int bench_shared(const session_opts *so, const char *spec, const char *cache_dir,
                 const char *cache_type, int json);

#endif
