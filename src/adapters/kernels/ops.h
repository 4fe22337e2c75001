/*
 * ops.h - the small per-token operations of the forward pass: RMS norm,
 * rotary position embedding, activations. Matrix products live in
 * matmul.h, attention in attention.h.
 *
 * All functions are pure and thread-safe; buffers belong to the caller.
 */
#ifndef SEM_OPS_H
#define SEM_OPS_H

#include <stddef.h>
#include <stdint.h>

/* y[i] = x[i] / sqrt(mean(x^2) + eps) * w[i]; y may equal x. w may be NULL (no weight). */
void ops_rmsnorm(float *y, const float *x, const float *w, size_t n, float eps);

/* Rotary embedding of one head vector in place. cs holds [n_rot / 2] pairs
 * (cos, sin); `halves` rotates (i, i + n_rot/2), else (2i, 2i+1). */
void ops_rope(float *x, const float *cs, uint32_t n_rot, int halves);

/*
 * Fills cs[n_rot / 2][2] with (cos, sin) of pos * scale * inv_freq[i].
 */
void ops_rope_angles(float *cs, const float *inv_freq, uint32_t n_rot, float pos, float scale);

/* inv_freq[i] = base^(-2i / n_rot) / (factors ? factors[i] : 1), i < n_rot / 2. */
void ops_rope_inv_freq(float *inv_freq, uint32_t n_rot, float base, const float *factors);

/* g[i] = act(g[i]) * u[i], act = silu or gelu (tanh approximation). */
void ops_silu_mul(float *g, const float *u, size_t n);
void ops_gelu_mul(float *g, const float *u, size_t n);

/* In-place softmax over n values; returns nothing, x sums to 1. */
void ops_softmax(float *x, size_t n);

float ops_sigmoid(float x);

#endif
