/*
 * ops.c - RMS norm, RoPE and activations.
 *
 * The reductions accumulate in double, as the reference implementation
 * does, so results agree with it to the last bits where it matters.
 */
#include "ops.h"

#include <math.h>

void ops_rmsnorm(float *y, const float *x, const float *w, size_t n, float eps)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += (double)x[i] * x[i];
    float scale = 1.0f / sqrtf((float)(sum / (double)n) + eps);
    if (w) {
        for (size_t i = 0; i < n; i++)
            y[i] = x[i] * scale * w[i];
    } else {
        for (size_t i = 0; i < n; i++)
            y[i] = x[i] * scale;
    }
}

void ops_rope_inv_freq(float *inv_freq, uint32_t n_rot, float base, const float *factors)
{
    for (uint32_t i = 0; i < n_rot / 2; i++) {
        double f = pow((double)base, -2.0 * i / (double)n_rot);
        if (factors)
            f /= factors[i];
        inv_freq[i] = (float)f;
    }
}

void ops_rope_angles(float *cs, const float *inv_freq, uint32_t n_rot, float pos, float scale)
{
    for (uint32_t i = 0; i < n_rot / 2; i++) {
        float theta = pos * scale * inv_freq[i];
        cs[2 * i] = cosf(theta);
        cs[2 * i + 1] = sinf(theta);
    }
}

void ops_rope(float *x, const float *cs, uint32_t n_rot, int halves)
{
    uint32_t half = n_rot / 2;
    for (uint32_t i = 0; i < half; i++) {
        uint32_t a = halves ? i : 2 * i;
        uint32_t b = halves ? i + half : 2 * i + 1;
        float c = cs[2 * i], s = cs[2 * i + 1];
        float x0 = x[a], x1 = x[b];
        x[a] = x0 * c - x1 * s;
        x[b] = x0 * s + x1 * c;
    }
}

void ops_silu_mul(float *g, const float *u, size_t n)
{
    for (size_t i = 0; i < n; i++)
        g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void ops_gelu_mul(float *g, const float *u, size_t n)
{
    const float c = 0.7978845608028654f; /* sqrt(2 / pi) */
    for (size_t i = 0; i < n; i++) {
        float x = g[i];
        g[i] = 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * x * x * x))) * u[i];
    }
}

void ops_softmax(float *x, size_t n)
{
    float max = -INFINITY;
    for (size_t i = 0; i < n; i++)
        max = x[i] > max ? x[i] : max;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (size_t i = 0; i < n; i++)
        x[i] *= inv;
}

float ops_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
