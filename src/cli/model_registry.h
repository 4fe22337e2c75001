/*
 * model_registry.h - the models one server serves (http_models.h): each a
 * name, a GGUF file and, while loaded, a serving stack of its own (engine,
 * KV pool, warm store: cli/serving_stack.h). Models come from `-m PATH`,
 * `-m NAME=PATH` (loaded at start) and the GGUF files of a folder (loaded
 * on their first request). Aliases (shell patterns) and a default model
 * map the names clients send to served models.
 *
 * Memory. Every model keeps its agents in its own folder of the cache
 * (<cache>/models/<name>; a server of one `-m` model uses <cache> itself,
 * as `run` and `agents` do), so the same agent id on two models is two
 * memories, and the memory of an unloaded model waits on disk. With a RAM
 * budget, a load first unloads the least recently used models that have
 * no running request (their agents are written to disk first); a load
 * that still does not fit fails (503).
 *
 * Reload. The new file is loaded beside the old one; requests that hold
 * the old one finish on it. A file of the same model (fingerprint) serves
 * new requests at once, over the old file's warm store (the store then
 * belongs to the new stack; the old one is freed first). A file of
 * another model makes new requests wait until the old one has let go of
 * the model's cache folder (its agents written); agents saved under the
 * other fingerprint are kept on disk, not loaded, until the disk budget
 * removes them.
 *
 * Threads: the ops may be called from any thread (one mutex). Loads,
 * reloads and frees run on the registry's own thread, so no caller waits
 * on them. Ownership: the registry owns every stack; a backend handed out
 * by acquire() lives until its lease is released.
 */
#ifndef SEM_CLI_MODEL_REGISTRY_H
#define SEM_CLI_MODEL_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "adapters/http/http_models.h"
#include "ports/response_store.h"
#include "serving_stack.h"

typedef struct model_registry model_registry;

#define MODEL_REGISTRY_MAX 256

typedef struct model_spec {
    const char *name; /* NULL: the file name without .gguf */
    const char *path;
} model_spec;

typedef struct model_alias {
    const char *pattern; /* fnmatch(3) pattern over the client's model name */
    const char *target;  /* a served model */
} model_alias;

typedef struct model_registry_opts {
    const model_spec *models;   /* loaded at start, in this order */
    size_t n_models;
    const char *models_dir;     /* NULL: none; its *.gguf load on demand */
    const model_alias *aliases;
    size_t n_aliases;
    const char *default_model;  /* NULL: an unknown name is not found, except on a
                                   server of one -m model and no folder, whose
                                   model answers every name */
    uint64_t ram_budget;        /* bytes of weights and pools loaded at once; 0: none */
    serving_stack_opts stack;   /* model_path and cache_dir are set per model */
    const char *cache_dir;      /* "" = no persistence */
    uint64_t disk_budget;       /* for the figures (bytes) */
    uint64_t remote_budget;
    response_store responses;   /* every model's backend gets it */
} model_registry_opts;

/* Checks the names, aliases and folder, and loads the -m models (the
 * ones that fit the budget). Errors name the flag at fault. */
model_registry *model_registry_open(const model_registry_opts *o, sem_err *err);
/* Writes every loaded model's agents (running requests get drain_ms). */
uint32_t model_registry_drain(model_registry *r, uint32_t drain_ms);
void model_registry_close(model_registry *r);

http_models model_registry_port(model_registry *r);

/* The name a path is served under: its file name without .gguf. */
void model_registry_name_of(const char *path, char *out, size_t cap);

#endif
