/* Specification of vec.h: every tier this CPU runs computes the same
 * primitives as a double-precision reference, conversions and q8_0
 * quantization bit for bit as fp16.h and quant.h, and writes nothing past
 * n. Lengths cover vector tails; pointers are deliberately misaligned. */
#include "../../test_util.h"

#include <math.h>
#include <stdlib.h>

#include "adapters/kernels/fp16.h"
#include "adapters/kernels/ops.h"
#include "adapters/kernels/quant.h"
#include "adapters/kernels/tensor_type.h"
#include "adapters/kernels/vec.h"

static const size_t lengths[] = {1, 7, 8, 15, 16, 17, 31, 33, 64, 100, 133};
#define N_LENGTHS (sizeof lengths / sizeof lengths[0])
#define GUARD 8
#define SENTINEL 1234.5f

static float frand(uint64_t *rng)
{
    return (float)(test_rand(rng) >> 40) / (float)(1 << 24) * 2.0f - 1.0f;
}

static int close_enough(double got, double want, double mag)
{
    return fabs(got - want) <= 1e-5 * mag + 1e-6;
}

/* The tiers to check: portable up to the best this CPU has. */
#define FOR_EACH_TIER(v)                                                                       \
    for (int isa_ = 0; isa_ <= (int)cpu_isa_best(); isa_++)                                    \
        for (const vec_ops *v = vec_ops_for((cpu_isa)isa_); v; v = NULL)

static void every_tier_is_available_up_to_the_best(void **state)
{
    (void)state;
    for (int isa = 0; isa <= (int)cpu_isa_best(); isa++) {
        const vec_ops *v = vec_ops_for((cpu_isa)isa);
        assert_non_null(v);
        assert_int_equal(v->isa, isa);
    }
    assert_null(vec_ops_for((cpu_isa)7));
}

static void dots_match_the_reference(void **state)
{
    (void)state;
    uint64_t rng = 3;
    float a[160], b[160];
    FOR_EACH_TIER(v)
    {
        for (size_t li = 0; li < N_LENGTHS; li++) {
            size_t n = lengths[li];
            float *pa = a + 1, *pb = b + 3; /* misaligned */
            double want = 0, mag = 0;
            for (size_t i = 0; i < n; i++) {
                pa[i] = frand(&rng);
                pb[i] = frand(&rng);
                want += (double)pa[i] * pb[i];
                mag += fabs((double)pa[i] * pb[i]);
            }
            assert_true(close_enough(v->dot_f32(pa, pb, n), want, mag));
        }
    }
}

/* A K tile of 1..16 rows transposed, and a query's 16 scores against it,
 * as the dots of the query with each row (zeros past the rows). */
static void a_transposed_tile_gives_the_scores(void **state)
{
    (void)state;
    uint64_t rng = 8;
    static float rows[16 * 133 + 1], kt[133 * 16 + GUARD], q[133 + 1];
    float s[16 + GUARD];
    FOR_EACH_TIER(v)
    {
        for (size_t li = 0; li < N_LENGTHS; li++) {
            size_t n = lengths[li];
            for (size_t n_rows = 1; n_rows <= 16; n_rows += 5) {
                float *pr = rows + 1, *pq = q + 1; /* misaligned */
                for (size_t i = 0; i < n_rows * n; i++)
                    pr[i] = frand(&rng);
                for (size_t i = 0; i < n; i++)
                    pq[i] = frand(&rng);
                for (size_t i = 0; i < n * 16 + GUARD; i++)
                    kt[i] = SENTINEL;
                v->transpose16_f32(kt, pr, n_rows, n);
                for (size_t i = 0; i < n; i++)
                    for (size_t j = 0; j < 16; j++)
                        assert_true(kt[i * 16 + j] == (j < n_rows ? pr[j * n + i] : 0.0f));
                for (size_t i = n * 16; i < n * 16 + GUARD; i++)
                    assert_true(kt[i] == SENTINEL);
                for (size_t j = 0; j < 16 + GUARD; j++)
                    s[j] = SENTINEL;
                v->scores16_f32(s, pq, kt, n);
                for (size_t j = 0; j < 16; j++) {
                    double want = 0, mag = 0;
                    for (size_t i = 0; j < n_rows && i < n; i++) {
                        want += (double)pr[j * n + i] * pq[i];
                        mag += fabs((double)pr[j * n + i] * pq[i]);
                    }
                    assert_true(close_enough(s[j], want, mag));
                }
                for (size_t j = 16; j < 16 + GUARD; j++)
                    assert_true(s[j] == SENTINEL);
            }
        }
    }
}

/* max_f32 is the exact maximum wherever it sits, -inf included. */
static void maxima_are_exact(void **state)
{
    (void)state;
    uint64_t rng = 5;
    float s[160];
    FOR_EACH_TIER(v)
    {
        for (size_t li = 0; li < N_LENGTHS; li++) {
            size_t n = lengths[li];
            for (size_t at = 0; at < n; at++) {
                for (size_t i = 0; i < n; i++)
                    s[i] = frand(&rng) * 100.0f - 150.0f;
                s[n] = 1e9f; /* past the end: never read */
                s[at] = 60.0f;
                assert_true(v->max_f32(s, n) == 60.0f);
                for (size_t i = 0; i < n; i++)
                    s[i] = -INFINITY;
                assert_true(v->max_f32(s, n) == -INFINITY);
            }
        }
    }
}

/*
 * attend16_f16 and attend16_q8_0, called on runs of keys one after another
 * (the tiles of a decode step), give softmax(q K^T) V over all the keys:
 * checked against a double-precision softmax of the rows' values for head
 * sizes that are and are not multiples of the tiers' widths, query counts
 * that are not, and runs shorter than 16. Each run's rows sit in a buffer
 * of exactly their size (so a read past them is caught under ASan), and
 * nothing is written past the n_q outputs.
 */
static void check_attention_run(const vec_ops *v, int q8, size_t d, size_t n_q,
                                const size_t *runs, size_t n_runs, uint64_t *rng)
{
    size_t n_keys = 0, rb = q8 ? d / 32 * QUANT_Q8_0_BYTES : d * 2;
    for (size_t r = 0; r < n_runs; r++)
        n_keys += runs[r];
    float *q = malloc(n_q * d * sizeof *q), *out = malloc((n_q * d + GUARD) * sizeof *out);
    float *kf = malloc(n_keys * d * sizeof *kf), *vf = malloc(n_keys * d * sizeof *vf);
    uint8_t *kb = malloc(n_keys * rb), *vb = malloc(n_keys * rb);
    float mx[8 + GUARD], sm[8 + GUARD];
    for (size_t i = 0; i < n_q * d; i++)
        q[i] = frand(rng) * 0.5f;
    for (size_t i = 0; i < n_keys * d; i++) {
        /* later keys score higher, so the running maximum rises mid-way */
        kf[i] = frand(rng) * (1.0f + 3.0f * (float)(i / d) / (float)n_keys);
        vf[i] = frand(rng);
    }
    /* the rows as stored, and the values they hold */
    const vec_ops *ref = vec_ops_for(CPU_ISA_PORTABLE);
    for (size_t j = 0; j < n_keys; j++) {
        if (q8) {
            ref->quantize_q8_0(kb + j * rb, kf + j * d, d);
            ref->quantize_q8_0(vb + j * rb, vf + j * d, d);
            ref->q8_0_to_f32(kf + j * d, kb + j * rb, d);
            ref->q8_0_to_f32(vf + j * d, vb + j * rb, d);
        } else {
            ref->f32_to_f16((uint16_t *)(void *)(kb + j * rb), kf + j * d, d);
            ref->f32_to_f16((uint16_t *)(void *)(vb + j * rb), vf + j * d, d);
            ref->f16_to_f32(kf + j * d, (const uint16_t *)(const void *)(kb + j * rb), d);
            ref->f16_to_f32(vf + j * d, (const uint16_t *)(const void *)(vb + j * rb), d);
        }
    }
    for (size_t i = 0; i < n_q * d + GUARD; i++)
        out[i] = i < n_q * d ? 0.0f : SENTINEL;
    for (size_t g = 0; g < 8 + GUARD; g++) {
        mx[g] = g < n_q ? -INFINITY : SENTINEL;
        sm[g] = g < n_q ? 0.0f : SENTINEL;
    }
    for (size_t r = 0, k0 = 0; r < n_runs; k0 += runs[r], r++) {
        size_t n = runs[r];
        uint8_t *kr = malloc(n * rb), *vr = malloc(n * rb);
        memcpy(kr, kb + k0 * rb, n * rb);
        memcpy(vr, vb + k0 * rb, n * rb);
        if (q8)
            v->attend16_q8_0(q, n_q, kr, vr, n, d, out, mx, sm);
        else
            v->attend16_f16(q, n_q, (const uint16_t *)(void *)kr, (const uint16_t *)(void *)vr,
                            n, d, out, mx, sm);
        free(kr);
        free(vr);
    }
    for (size_t g = 0; g < n_q; g++) {
        double s[64], m = -INFINITY, z = 0;
        for (size_t j = 0; j < n_keys; j++) {
            s[j] = 0;
            for (size_t i = 0; i < d; i++)
                s[j] += (double)q[g * d + i] * kf[j * d + i];
            m = fmax(m, s[j]);
        }
        assert_true(fabs(mx[g] - m) <= 1e-5 * fabs(m) + 1e-6);
        for (size_t j = 0; j < n_keys; j++)
            z += exp(s[j] - m);
        for (size_t i = 0; i < d; i++) {
            double want = 0, mag = 0;
            for (size_t j = 0; j < n_keys; j++) {
                want += exp(s[j] - m) / z * vf[j * d + i];
                mag += exp(s[j] - m) / z * fabs(vf[j * d + i]);
            }
            double got = out[g * d + i] / sm[g];
            if (!close_enough(got, want, mag))
                fail_msg("%s %s: d %zu, %zu queries, %zu keys: out[%zu][%zu] = %g, want %g",
                         cpu_isa_name(v->isa), q8 ? "q8_0" : "f16", d, n_q, n_keys, g, i, got,
                         want);
        }
    }
    for (size_t i = n_q * d; i < n_q * d + GUARD; i++)
        assert_true(out[i] == SENTINEL);
    for (size_t g = n_q; g < 8 + GUARD; g++)
        assert_true(mx[g] == SENTINEL && sm[g] == SENTINEL);
    free(q);
    free(out);
    free(kf);
    free(vf);
    free(kb);
    free(vb);
}

static void attention_steps_match_a_whole_softmax(void **state)
{
    (void)state;
    static const size_t dims[] = {16, 48, 64, 80, 96, 128};
    static const size_t queries[] = {1, 2, 3, 4, 5, 7, 8};
    static const size_t runs[][4] = {{1}, {16}, {5}, {16, 16, 16}, {3, 16, 1, 13}, {16, 7}};
    static const size_t n_runs[] = {1, 1, 1, 3, 4, 2};
    uint64_t rng = 21;
    FOR_EACH_TIER(v)
    {
        for (int q8 = 0; q8 <= 1; q8++)
            for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
                if (q8 && dims[di] % 32)
                    continue; /* q8_0 rows are whole blocks of 32 */
                for (size_t qi = 0; qi < sizeof queries / sizeof queries[0]; qi++)
                    for (size_t ri = 0; ri < sizeof n_runs / sizeof n_runs[0]; ri++)
                        check_attention_run(v, q8, dims[di], queries[qi], runs[ri], n_runs[ri],
                                            &rng);
            }
    }
}

/* exp_shift_f32 is expf within 2 ulp over the range softmax uses, 0 for
 * -inf and far below, and its sum is the sum of what it wrote. */
static void shifted_exponentials_match_expf(void **state)
{
    (void)state;
    uint64_t rng = 9;
    float s[160 + GUARD], x[160];
    FOR_EACH_TIER(v)
    {
        for (size_t li = 0; li < N_LENGTHS; li++) {
            size_t n = lengths[li];
            float shift = frand(&rng) * 20.0f;
            for (size_t i = 0; i < n; i++)
                x[i] = shift + frand(&rng) * 90.0f - 80.0f; /* x - shift in [-170, 10) */
            x[0] = -INFINITY;
            if (n > 2)
                x[2] = shift; /* exp(0) */
            for (size_t i = 0; i < n + GUARD; i++)
                s[i] = i < n ? x[i] : SENTINEL;
            float sum = v->exp_shift_f32(s, n, shift);
            double want_sum = 0;
            for (size_t i = 0; i < n; i++) {
                float want = expf(x[i] - shift);
                if (x[i] - shift < -87.3f) {
                    assert_true(s[i] <= 1e-37f); /* flushed, or expf's tiny value */
                } else if (fabsf(s[i] - want) > 2.5e-7f * want) {
                    fail_msg("%s: exp(%a) = %a, want %a", cpu_isa_name(v->isa),
                             (double)(x[i] - shift), (double)s[i], (double)want);
                }
                want_sum += s[i];
            }
            assert_true(s[0] == 0.0f);
            if (n > 2)
                assert_true(fabsf(s[2] - 1.0f) <= 2.5e-7f);
            assert_true(fabs(sum - want_sum) <= 1e-5 * want_sum + 1e-30);
            for (size_t i = n; i < n + GUARD; i++)
                assert_true(s[i] == SENTINEL);
        }
    }
}

/* silu(g) * u as ops_silu_mul within a few ulp, over the range FFN gates
 * take and far beyond, writing exactly n values; an element's result does
 * not depend on where it sits (batch invariance). */
static void silu_matches_the_scalar_gate(void **state)
{
    (void)state;
    uint64_t rng = 10;
    float g[160 + GUARD], u[160], want[160], at1[161];
    FOR_EACH_TIER(v)
    {
        for (size_t li = 0; li < N_LENGTHS; li++) {
            size_t n = lengths[li];
            for (size_t i = 0; i < n; i++) {
                g[i] = frand(&rng) * (i % 7 == 0 ? 120.0f : 12.0f);
                u[i] = frand(&rng) * 2.0f;
                want[i] = g[i];
                at1[i + 1] = g[i];
            }
            for (size_t i = n; i < n + GUARD; i++)
                g[i] = SENTINEL;
            ops_silu_mul(want, u, n);
            float shifted_u[161];
            memcpy(shifted_u + 1, u, n * sizeof *u);
            at1[0] = shifted_u[0] = 0.5f;
            v->silu_mul_f32(g, u, n);
            v->silu_mul_f32(at1, shifted_u, n + 1);
            for (size_t i = 0; i < n; i++) {
                if (fabsf(g[i] - want[i]) > 1e-6f * fabsf(want[i]) + 1e-30f)
                    fail_msg("%s: silu(.)*u at %zu = %a, want %a", cpu_isa_name(v->isa), i,
                             (double)g[i], (double)want[i]);
                assert_true(at1[i + 1] == g[i]);
            }
            for (size_t i = n; i < n + GUARD; i++)
                assert_true(g[i] == SENTINEL);
        }
    }
}

static void axpys_update_exactly_n_values(void **state)
{
    (void)state;
    uint64_t rng = 4;
    enum { ROWS = 5 };
    static float y[160 + GUARD], x[ROWS * 160];
    float w[ROWS];
    double want[160];
    FOR_EACH_TIER(v)
    {
        for (size_t li = 0; li < N_LENGTHS; li++) {
            size_t n = lengths[li];
            float *py = y + 1, *px = x + 1;
            for (size_t rows = 1; rows <= ROWS; rows += 2) { /* 1: axpy_f32 */
                for (size_t i = 0; i < n + GUARD; i++)
                    py[i] = i < n ? frand(&rng) : SENTINEL;
                for (size_t i = 0; i < n; i++)
                    want[i] = py[i];
                for (size_t r = 0; r < rows; r++) {
                    w[r] = frand(&rng) * 3.0f;
                    for (size_t i = 0; i < n; i++) {
                        px[r * n + i] = frand(&rng);
                        want[i] += (double)w[r] * px[r * n + i];
                    }
                }
                if (rows == 1)
                    v->axpy_f32(py, w[0], px, n);
                else
                    v->axpy_rows_f32(py, w, px, rows, n);
                for (size_t i = 0; i < n; i++)
                    assert_true(close_enough(py[i], want[i], fabs(want[i]) + 3.0 * (double)rows));
                for (size_t i = n; i < n + GUARD; i++)
                    assert_true(py[i] == SENTINEL);
            }
        }
    }
}

static void f16_conversions_match_fp16_h_bit_for_bit(void **state)
{
    (void)state;
    enum { N = 4099 };
    static float src[N + 1], back[N + GUARD];
    static uint16_t dst[N + GUARD];
    uint64_t rng = 5;
    for (size_t i = 0; i < N; i++) /* every exponent, specials included */
        src[i] = fp32_from_bits((uint32_t)test_rand(&rng));
    src[0] = INFINITY;
    src[1] = -0.0f;
    src[2] = 65520.0f;
    src[3] = 0x1p-25f;
    src[4] = 3 * 0x1p-25f;
    src[5] = NAN;
    FOR_EACH_TIER(v)
    {
        for (size_t n = 1; n <= N; n += (n < 40 ? 1 : 1013)) {
            for (size_t i = 0; i < n + GUARD; i++)
                dst[i] = 0xabcd;
            v->f32_to_f16(dst, src, n);
            for (size_t i = 0; i < n; i++) {
                if (isnan(src[i]))
                    assert_true(isnan(fp16_to_f32(dst[i])));
                else if (dst[i] != fp16_from_f32(src[i]))
                    fail_msg("%s: %a -> 0x%04x, want 0x%04x", cpu_isa_name(v->isa),
                             (double)src[i], dst[i], fp16_from_f32(src[i]));
            }
            for (size_t i = n; i < n + GUARD; i++)
                assert_int_equal(dst[i], 0xabcd);
            for (size_t i = 0; i < n + GUARD; i++)
                back[i] = SENTINEL;
            v->f16_to_f32(back, dst, n);
            for (size_t i = 0; i < n; i++)
                if (!isnan(back[i]))
                    assert_true(back[i] == fp16_to_f32(dst[i]));
            for (size_t i = n; i < n + GUARD; i++)
                assert_true(back[i] == SENTINEL);
        }
    }
}

static void q8_0_rows_round_like_llama_cpp(void **state)
{
    (void)state;
    enum { N = 256 };
    float x[N];
    uint8_t got[N / 32 * QUANT_Q8_0_BYTES + 1], want[N / 32 * QUANT_Q8_0_BYTES];
    uint64_t rng = 6;
    FOR_EACH_TIER(v)
    {
        for (int rep = 0; rep < 200; rep++) {
            size_t n = 32 * (size_t)(1 + rep % 8);
            for (size_t i = 0; i < n; i++)
                x[i] = frand(&rng) * (rep % 3 ? 1.0f : 100.0f);
            if (rep % 4 == 0) /* exact ties after scaling, and an all-zero block */
                for (size_t i = 0; i < 32; i++)
                    x[i] = i ? (float)(i % 5) - 2.5f : 127.0f;
            if (rep % 7 == 0)
                memset(x + n - 32, 0, 32 * sizeof *x);
            quant_q8_0_row(x, want, n);
            v->quantize_q8_0(got + 1, x, n); /* misaligned destination */
            assert_memory_equal(got + 1, want, n / 32 * QUANT_Q8_0_BYTES);
        }
    }
}

static void q8_0_widens_as_dequantize(void **state)
{
    (void)state;
    enum { N = 192 };
    float x[N], got[N + GUARD], want[N];
    uint8_t q[N / 32 * QUANT_Q8_0_BYTES + 1];
    uint64_t rng = 7;
    FOR_EACH_TIER(v)
    {
        for (size_t n = 32; n <= N; n += 32) {
            for (size_t i = 0; i < n; i++)
                x[i] = frand(&rng) * 4.0f;
            quant_q8_0_row(x, q + 1, n); /* misaligned source */
            assert_int_equal(quant_dequantize_row(TENSOR_Q8_0, q + 1, want, n, NULL), SEM_OK);
            for (size_t i = 0; i < n + GUARD; i++)
                got[i] = SENTINEL;
            v->q8_0_to_f32(got, q + 1, n);
            assert_memory_equal(got, want, n * sizeof *got);
            for (size_t i = n; i < n + GUARD; i++)
                assert_true(got[i] == SENTINEL);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_tier_is_available_up_to_the_best),
        cmocka_unit_test(dots_match_the_reference),
        cmocka_unit_test(a_transposed_tile_gives_the_scores),
        cmocka_unit_test(shifted_exponentials_match_expf),
        cmocka_unit_test(maxima_are_exact),
        cmocka_unit_test(attention_steps_match_a_whole_softmax),
        cmocka_unit_test(silu_matches_the_scalar_gate),
        cmocka_unit_test(axpys_update_exactly_n_values),
        cmocka_unit_test(f16_conversions_match_fp16_h_bit_for_bit),
        cmocka_unit_test(q8_0_rows_round_like_llama_cpp),
        cmocka_unit_test(q8_0_widens_as_dequantize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
