/*
 * model_backend.h - the model port implemented by a loaded model and a
 * forward context.
 *
 * Threads: as model_port.h: forward on one thread at a time.
 * The backend borrows the model (which must outlive it) and owns the
 * forward context.
 */
#ifndef SEM_MODEL_BACKEND_H
#define SEM_MODEL_BACKEND_H

#include "forward.h"
#include "model.h"
#include "ports/model_port.h"

typedef struct model_backend model_backend;

/* n_ctx 0: the model's trained context. */
model_backend *model_backend_create(const model *m, const forward_opts *opts, uint32_t n_ctx,
                                    sem_err *err);
void model_backend_destroy(model_backend *b);
model_port model_backend_port(model_backend *b);

#endif
