/*
 * http_models.h - the models a server serves, as the routes see them: a
 * name resolves (through aliases and the default) to a served model, and a
 * served model is leased while a request uses its backend. The command
 * line implements it (cli/model_registry.h); the routes only call it.
 *
 * Leases. acquire() hands out the backend of the model's current file and
 * a lease on it; the backend stays valid until the lease is released, even
 * when the model is reloaded or unloaded meanwhile (the old file is freed
 * once its last lease is released). Routes never release by hand: the
 * lease is tied to the exchange (http_api_use_model) and released when
 * the exchange ends.
 *
 * Loading. A model that is not loaded starts loading on acquire() with
 * load = 1; acquire then answers SEM_EAGAIN and calls wake(arg) once when
 * the load settled (loaded or failed), unless cancel_wait(arg) came first.
 * wake may be called from any thread, with the implementation's lock held:
 * it must only signal (http_exchange_wake).
 *
 * Threads: every op may be called from any thread; none blocks on a load.
 */
#ifndef SEM_HTTP_MODELS_H
#define SEM_HTTP_MODELS_H

#include <stddef.h>
#include <stdint.h>

#include "domain/status.h"

typedef struct http_backend http_backend;

#define HTTP_MODEL_NAME_MAX 128

typedef enum http_model_state {
    HTTP_MODEL_AVAILABLE, /* on disk, not in memory */
    HTTP_MODEL_LOADING,
    HTTP_MODEL_LOADED,
} http_model_state;

/* One served model, for GET /v1/models. Figures of the file known only
 * once it was loaded (context, architecture, template) are 0 or "" before. */
typedef struct http_model_info {
    char id[HTTP_MODEL_NAME_MAX];
    http_model_state state;
    uint64_t file_bytes;     /* the GGUF file's size */
    uint64_t ram_bytes;      /* weights and KV pool while loaded; 0 otherwise */
    uint32_t n_ctx;          /* tokens per sequence served */
    uint32_t n_ctx_train;
    char arch[32];           /* general.architecture */
    char chat_template[64];  /* the template's kind: a built-in's name or "model" */
    uint32_t running;        /* requests holding it now */
    uint32_t loads;          /* times it was loaded since the server started */
    int64_t loaded_at;       /* unix seconds; 0 when not loaded */
    int64_t last_used;       /* unix seconds of the last request; 0: none */
    int is_default;          /* --default-model */
    char error[256];         /* why its last load failed; "" when it did not */
} http_model_info;

typedef struct http_models_ops {
    /* The served model `name` stands for: itself, its alias's target, or
     * (with use_default) the default model for any other name, and for ""
     * or NULL. Without a default: SEM_ENOTFOUND for an unknown name; ""
     * or NULL gives the first served model. served gets
     * HTTP_MODEL_NAME_MAX bytes. */
    sem_status (*resolve)(void *self, const char *name, int use_default, char *served,
                          sem_err *err);
    /* SEM_OK: *be is the model's backend and *lease the lease on it.
     * SEM_EAGAIN: it is loading (started now when load is 1); wake(arg)
     * follows. SEM_EBUSY: not loaded and load is 0 (nothing started), or
     * no room for it under the RAM budget. SEM_ENOTFOUND: not served. */
    sem_status (*acquire)(void *self, const char *served, int load, const http_backend **be,
                          void **lease, void (*wake)(void *), void *arg, sem_err *err);
    /* Forgets a pending wake(arg) (the exchange ends before the load). */
    void (*cancel_wait)(void *self, void *arg);
    void (*release)(void *self, void *lease);
    /* Fills up to cap entries; returns how many models are served. */
    size_t (*list)(void *self, http_model_info *out, size_t cap);
    /* Loads the model's file again beside the running one; requests
     * switch to the new file once it is loaded (admin). SEM_ENOTFOUND: not
     * served. Returns at once: the load runs in the background. */
    sem_status (*reload)(void *self, const char *served, sem_err *err);
    /* Looks at the models folder again: new files are served, removed
     * ones stop being served, changed ones are reloaded. *added, *removed,
     * *changed count them. */
    sem_status (*rescan)(void *self, uint32_t *added, uint32_t *removed, uint32_t *changed,
                         sem_err *err);
} http_models_ops;

typedef struct http_models {
    const http_models_ops *ops;
    void *self;
} http_models;

#endif
