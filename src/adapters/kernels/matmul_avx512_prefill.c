/*
 * matmul_avx512_prefill.c - the AVX-512 prefill kernel (many tokens,
 * compute bound), used by the AVX-512 table in matmul_avx512.c. Compiled
 * with the AVX-512 tier's flags; nothing here may run unless
 * cpu_isa_check(CPU_ISA_AVX512) passed, and mm_avx512_prefill_bf16 only
 * where the CPU also has AVX512_BF16.
 *
 * Threads: reentrant; the only memory written is the caller's y and the
 * per-thread scratch it passes.
 */
#include <immintrin.h>

#include "fp16.h"
#include "matmul_avx512_util.h"
#include "quant.h"

/*
 * The prefill kernel computes 32 weight rows (two vectors of 16 lanes, one
 * lane per row) for up to 4 tokens at a time, over K in chunks of KC values
 * so that a chunk of every token's activations (n_tok x KC bytes) stays in
 * L2 while all row panels of the work item pass over it. The rows of a
 * panel are first unpacked ("packed") into a common form, per unit of 16 or
 * 32 values and row r:
 *     x = S[r] * u + O'[r],  u an unsigned byte, so that over the unit
 *     sum x.a = da * (S * (u . qa) + O * sum(qa))
 * with O = -offset * S (Q8_0: 128, Q4_0: 8, Q6_K: 32) or -dmin * m (Q4_K,
 * Q5_K). The inner step is then the same for all types: one vector of 16
 * rows x 4 bytes from the panel, vpdpbusd against the token's 4 activation
 * bytes broadcast from memory; per unit, one convert, one multiply by the
 * token's scale and two FMAs with the rows' S and O vectors. Results land
 * as 16 consecutive rows of one token: a contiguous store into y.
 */
#define KC 1024 /* values per K chunk, quantized types (n_tok x KC bytes) */
#define KCF 256 /* values per K chunk, float types (n_tok x KCF x 4 bytes) */
#define TT 4    /* tokens per tile */

typedef struct int_panel {
    uint8_t q[KC * MM_PREFILL_ROWS];    /* [units][unit/4][32 rows][4] */
    float s[KC / 16 * MM_PREFILL_ROWS]; /* [units][32 rows] */
    float o[KC / 16 * MM_PREFILL_ROWS]; /* [units][32 rows] */
} int_panel;

typedef struct float_panel {
    float w[KCF * MM_PREFILL_ROWS]; /* [KCF][32 rows]; BF16 pairs: [KCF/2][32][2 x bf16] */
} float_panel;

_Static_assert(sizeof(int_panel) <= MM_PANEL_BYTES, "int panel fits the scratch");
_Static_assert(sizeof(float_panel) <= MM_PANEL_BYTES, "float panel fits the scratch");
_Static_assert(KC % 256 == 0, "K chunks hold whole super-blocks");

/*
 * Packing. A panel row's values are first decoded 256 at a time into
 * unsigned bytes in value order (plus S and O per unit), for 16 rows; then
 * each run of 32 values of the 16 rows (16 x 8 dwords) is transposed into
 * the 8 steps x 16 rows x 4 bytes the tile loads. Q6_K's units of 16 pair
 * up into the same 32-value runs ([unit][4 steps] twice = 8 steps).
 */

/* 32 unsigned quants of a Q4_K / Q5_K chunk half, and the same for Q6_K. */
ALWAYS_INLINE void store32(uint8_t *dst, __m256i v)
{
    _mm256_storeu_si256((__m256i *)dst, v);
}

/* Values [v0, v0 + nv) of `row` (nv <= 256, v0 and nv multiples of 32; of
 * 256 for K-quants) into u[nv] with S and O per unit into s[], o[]. */
static void decode_run(uint32_t type, const uint8_t *row, size_t v0, size_t nv, uint8_t *u,
                       float *s, float *o)
{
    const __m256i m0f = _mm256_set1_epi8(15);
    switch (type) {
    case TENSOR_Q8_0:
        for (size_t j = 0; j < nv / 32; j++) {
            const uint8_t *blk = row + (v0 / 32 + j) * QUANT_Q8_0_BYTES;
            __m256i q = _mm256_loadu_si256((const __m256i *)(blk + 2));
            store32(u + 32 * j, _mm256_xor_si256(q, _mm256_set1_epi8((char)0x80))); /* q + 128 */
            s[j] = h2f(blk);
            o[j] = -128.0f * s[j];
        }
        break;
    case TENSOR_Q4_0:
        for (size_t j = 0; j < nv / 32; j++) {
            const uint8_t *blk = row + (v0 / 32 + j) * QUANT_Q4_0_BYTES;
            __m128i x = _mm_loadu_si128((const __m128i *)(blk + 2));
            __m256i y = _mm256_inserti128_si256(_mm256_castsi128_si256(x), _mm_srli_epi16(x, 4), 1);
            store32(u + 32 * j, _mm256_and_si256(y, m0f));
            s[j] = h2f(blk);
            o[j] = -8.0f * s[j];
        }
        break;
    case TENSOR_Q4_K:
    case TENSOR_Q5_K: {
        int five = type == TENSOR_Q5_K;
        const uint8_t *blk = row + v0 / 256 * (five ? QUANT_Q5_K_BYTES : QUANT_Q4_K_BYTES);
        const uint8_t *qs = blk + (five ? 48 : 16);
        __m256i qh = _mm256_loadu_si256((const __m256i *)(blk + 16));
        uint8_t scm[16];
        mm_kquant_scales_packed(blk + 4, scm);
        float d = h2f(blk), dmin = h2f(blk + 2);
        for (int c = 0; c < 4; c++) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
            __m256i lo = _mm256_and_si256(x, m0f), hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), m0f);
            if (five) {
                const __m256i one = _mm256_set1_epi8(1);
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one), 4));
            }
            store32(u + 64 * c, lo);
            store32(u + 64 * c + 32, hi);
        }
        for (int j = 0; j < 8; j++) {
            s[j] = d * scm[j];
            o[j] = -dmin * scm[8 + j];
        }
        break;
    }
    case TENSOR_Q6_K: {
        const uint8_t *blk = row + v0 / 256 * QUANT_Q6_K_BYTES;
        const int8_t *sc = (const int8_t *)(blk + 192);
        const __m256i m30 = _mm256_set1_epi8(0x30);
        float d = h2f(blk + 208);
        for (int h = 0; h < 2; h++) {
            __m256i ql0 = _mm256_loadu_si256((const __m256i *)(blk + 64 * h));
            __m256i ql1 = _mm256_loadu_si256((const __m256i *)(blk + 64 * h + 32));
            __m256i qh = _mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * h));
            uint8_t *uh = u + 128 * h;
            store32(uh, _mm256_or_si256(_mm256_and_si256(ql0, m0f),
                                        _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30)));
            store32(uh + 32, _mm256_or_si256(_mm256_and_si256(ql1, m0f),
                                             _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30)));
            store32(uh + 64, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m0f),
                                             _mm256_and_si256(qh, m30)));
            store32(uh + 96, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m0f),
                                             _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30)));
        }
        for (int j = 0; j < 16; j++) {
            s[j] = d * sc[j];
            o[j] = -32.0f * s[j];
        }
        break;
    }
    default:
        break;
    }
}

/* 16 rows x 8 dwords (row r at u + r * stride) -> 8 vectors of 16 rows,
 * stored at dst + step * 128 (the panel's 32-row stride) for steps 0..7. */
static void transpose_rows_16x8(const uint8_t *u, size_t stride, uint8_t *dst)
{
    __m512i z[8], out[8];
    for (int r = 0; r < 8; r++)
        z[r] = _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(u + (size_t)r * stride))),
            _mm256_loadu_si256((const __m256i *)(u + (size_t)(r + 8) * stride)), 1);
    transpose_16x8(z, out);
    for (int k = 0; k < 8; k++)
        _mm512_storeu_si512(dst + (size_t)k * 128, out[k]);
}

/* Packs values [k0, k0 + klen) of the panel's rows (rows[r] NULL: zero). */
static void pack_panel(uint32_t type, const uint8_t *const rows[MM_PREFILL_ROWS], size_t k0,
                       size_t klen, int_panel *p)
{
    _Alignas(64) uint8_t u[16][256];
    size_t unit = mm_prefill_unit(type);
    float s[16], o[16];
    for (int g = 0; g < 2; g++) {
        for (size_t v = 0; v < klen; v += 256) {
            size_t nv = klen - v < 256 ? klen - v : 256, nu = nv / unit;
            for (int r = 0; r < 16; r++) {
                int pr = 16 * g + r;
                if (rows[pr]) {
                    decode_run(type, rows[pr], k0 + v, nv, u[r], s, o);
                } else {
                    memset(u[r], 0, nv);
                    memset(s, 0, sizeof s);
                    memset(o, 0, sizeof o);
                }
                for (size_t j = 0; j < nu; j++) {
                    p->s[(v / unit + j) * MM_PREFILL_ROWS + (size_t)pr] = s[j];
                    p->o[(v / unit + j) * MM_PREFILL_ROWS + (size_t)pr] = o[j];
                }
            }
            for (size_t q = 0; q < nv / 32; q++)
                transpose_rows_16x8(u[0] + 32 * q, 256,
                               p->q + ((v / 32 + q) * 8 * MM_PREFILL_ROWS + 16 * (size_t)g) * 4);
        }
    }
}

/* 16 x 16 floats: r[i] = row i in, r[c] = column c out. */
static void transpose_16x16(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) { /* per 128-bit lane: [a0 b0 a1 b1], [a2 b2 a3 b3] */
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) { /* r[i + e]: rows i..i+3, element e of each lane */
        __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
        __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    __m512 out[16];
    for (int e = 0; e < 4; e++) { /* column 4L + e gathers lane L of r[e], r[4+e], r[8+e], r[12+e] */
        __m512 ab_lo = _mm512_shuffle_f32x4(r[e], r[4 + e], _MM_SHUFFLE(1, 0, 1, 0));
        __m512 ab_hi = _mm512_shuffle_f32x4(r[e], r[4 + e], _MM_SHUFFLE(3, 2, 3, 2));
        __m512 cd_lo = _mm512_shuffle_f32x4(r[8 + e], r[12 + e], _MM_SHUFFLE(1, 0, 1, 0));
        __m512 cd_hi = _mm512_shuffle_f32x4(r[8 + e], r[12 + e], _MM_SHUFFLE(3, 2, 3, 2));
        out[e] = _mm512_shuffle_f32x4(ab_lo, cd_lo, _MM_SHUFFLE(2, 0, 2, 0));
        out[4 + e] = _mm512_shuffle_f32x4(ab_lo, cd_lo, _MM_SHUFFLE(3, 1, 3, 1));
        out[8 + e] = _mm512_shuffle_f32x4(ab_hi, cd_hi, _MM_SHUFFLE(2, 0, 2, 0));
        out[12 + e] = _mm512_shuffle_f32x4(ab_hi, cd_hi, _MM_SHUFFLE(3, 1, 3, 1));
    }
    for (int i = 0; i < 16; i++)
        r[i] = out[i];
}

/* 16 values [k, k + len) of a float-type row as f32 (zeros past len; row
 * NULL: all zero). BF16 pairs mode: 32 raw bf16 values as 16 dwords. */
ALWAYS_INLINE __m512 float_run(uint32_t type, const uint8_t *row, size_t k, size_t len, int pairs)
{
    if (!row)
        return _mm512_setzero_ps();
    if (pairs) {
        __mmask32 m = len >= 32 ? 0xffffffffu : (__mmask32)((1u << len) - 1);
        return _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(m, row + 2 * k));
    }
    __mmask16 m = len >= 16 ? 0xffff : (__mmask16)((1u << len) - 1);
    if (type == TENSOR_F32)
        return _mm512_maskz_loadu_ps(m, row + 4 * k);
    __m256i h = _mm256_maskz_loadu_epi16(m, row + 2 * k);
    return type == TENSOR_F16 ? _mm512_cvtph_ps(h) : bf16x16_to_f32(h);
}

/*
 * Float types: values [k0, k0 + klen) as f32 [k][32 rows], or for the
 * vdpbf16ps tile as bf16 pairs [k/2][32 rows][2] (an odd tail pairs with a
 * zero). Each 16 rows x 16 lanes square is transposed in registers.
 */
static void pack_panel_float(uint32_t type, const uint8_t *const rows[MM_PREFILL_ROWS], size_t k0,
                             size_t klen, int pairs, float_panel *p)
{
    size_t per = pairs ? 32 : 16; /* values per lane run */
    for (int g = 0; g < 2; g++) {
        for (size_t k = 0; k < klen; k += per) {
            size_t len = klen - k < per ? klen - k : per;
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = float_run(type, rows[16 * g + i], k0 + k, len, pairs);
            transpose_16x16(r);
            size_t cols = pairs ? (len + 1) / 2 : len;
            for (size_t c = 0; c < cols; c++)
                _mm512_storeu_ps(p->w + ((pairs ? k / 2 : k) + c) * MM_PREFILL_ROWS + 16 * (size_t)g,
                                 r[c]);
        }
    }
}

/* Where a tile's results go. A row's K chunks accumulate in c (scratch,
 * [n_tok][32 rows], L2-resident) and only the last chunk writes y, so y is
 * written once, as 16 consecutive floats per token and row vector. */
typedef struct tile_out {
    float *y;
    size_t ld_y;
    float *c;
    size_t row0, n_rows; /* the panel's rows in y; rows past n_rows are padding */
    int first, last;     /* this K chunk is the row's first / last */
} tile_out;

ALWAYS_INLINE void tile_store(__m512 acc[2][TT], int T, size_t t0, const tile_out *o)
{
    for (int v = 0; v < 2; v++) {
        for (int t = 0; t < T; t++) {
            float *c = o->c + (t0 + (size_t)t) * MM_PREFILL_ROWS + 16 * (size_t)v;
            __m512 r = acc[v][t];
            if (!o->first)
                r = _mm512_add_ps(r, _mm512_load_ps(c));
            if (!o->last) {
                _mm512_store_ps(c, r);
                continue;
            }
            if ((size_t)v * 16 >= o->n_rows)
                continue;
            size_t left = o->n_rows - (size_t)v * 16;
            float *y = o->y + (t0 + (size_t)t) * o->ld_y + o->row0 + 16 * (size_t)v;
            if (left >= 16) /* masked stores are slow here: only for a tail */
                _mm512_storeu_ps(y, r);
            else
                _mm512_mask_storeu_ps(y, (__mmask16)((1u << left) - 1), r);
        }
    }
}

/* 32 rows x T tokens over the nu units of a chunk. aq[t]: the token's
 * quants at the chunk start; du, ds: its per-unit scale and scale * sum. */
ALWAYS_INLINE void tile_int(const int_panel *p, size_t nu, size_t steps, const int8_t *aq[TT],
                            const float *du[TT], const float *ds[TT], int T, __m512 acc[2][TT])
{
    for (size_t u = 0; u < nu; u++) {
        __m512i ia[2][TT];
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            ia[0][t] = ia[1][t] = _mm512_setzero_si512();
        const uint8_t *pq = p->q + u * steps * MM_PREFILL_ROWS * 4;
#pragma GCC unroll 8
        for (size_t st = 0; st < steps; st++, pq += MM_PREFILL_ROWS * 4) {
            __m512i w0 = _mm512_load_si512(pq), w1 = _mm512_load_si512(pq + 64);
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                int32_t a4;
                memcpy(&a4, aq[t] + (u * steps + st) * 4, 4);
                __m512i ab = _mm512_set1_epi32(a4);
                ia[0][t] = _mm512_dpbusd_epi32(ia[0][t], w0, ab);
                ia[1][t] = _mm512_dpbusd_epi32(ia[1][t], w1, ab);
            }
        }
        const float *ps = p->s + u * MM_PREFILL_ROWS, *po = p->o + u * MM_PREFILL_ROWS;
        __m512 s0 = _mm512_load_ps(ps), s1 = _mm512_load_ps(ps + 16);
        __m512 o0 = _mm512_load_ps(po), o1 = _mm512_load_ps(po + 16);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            __m512 d = _mm512_set1_ps(du[t][u]), sm = _mm512_set1_ps(ds[t][u]);
            acc[0][t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(ia[0][t]), d), s0, acc[0][t]);
            acc[1][t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(ia[1][t]), d), s1, acc[1][t]);
            acc[0][t] = _mm512_fmadd_ps(o0, sm, acc[0][t]);
            acc[1][t] = _mm512_fmadd_ps(o1, sm, acc[1][t]);
        }
    }
}

/* Float rows: x[t] points at the token's activations at the chunk start. */
ALWAYS_INLINE void tile_float(const float_panel *p, size_t klen, const mm_act *a, size_t t0,
                              size_t k0, int T, __m512 acc[2][TT])
{
    for (size_t k = 0; k < klen; k++) {
        __m512 w0 = _mm512_load_ps(p->w + k * MM_PREFILL_ROWS);
        __m512 w1 = _mm512_load_ps(p->w + k * MM_PREFILL_ROWS + 16);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            size_t i = (t0 + (size_t)t) * a->n_in + k0 + k;
            __m512 x = _mm512_set1_ps(a->format == MM_ACT_BF16 ? bf16_to_f32(a->h[i]) : a->f[i]);
            acc[0][t] = _mm512_fmadd_ps(w0, x, acc[0][t]);
            acc[1][t] = _mm512_fmadd_ps(w1, x, acc[1][t]);
        }
    }
}

/* BF16 pairs with vdpbf16ps: 2 values per lane per instruction. */
__attribute__((target("avx512bf16"))) ALWAYS_INLINE void
tile_bf16(const float_panel *p, size_t klen, const mm_act *a, size_t t0, size_t k0, int T,
          __m512 acc[2][TT])
{
    const uint16_t *pw = (const uint16_t *)p->w;
    for (size_t k = 0; k < klen; k += 2) {
        __m512i w0 = _mm512_load_si512(pw + k * MM_PREFILL_ROWS);
        __m512i w1 = _mm512_load_si512(pw + k * MM_PREFILL_ROWS + 32);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const uint16_t *h = a->h + (t0 + (size_t)t) * a->n_in + k0 + k;
            uint32_t pair = h[0] | (k + 1 < klen ? (uint32_t)h[1] << 16 : 0);
            __m512i x = _mm512_set1_epi32((int)pair);
            acc[0][t] = _mm512_dpbf16_ps(acc[0][t], (__m512bh)w0, (__m512bh)x);
            acc[1][t] = _mm512_dpbf16_ps(acc[1][t], (__m512bh)w1, (__m512bh)x);
        }
    }
}

typedef enum panel_kind { PANEL_INT, PANEL_FLOAT, PANEL_BF16 } panel_kind;

/* Runs the tile over every token for one packed panel and K chunk. The
 * token count per tile is a compile-time constant in each branch, so the
 * accumulators live in registers. */
ALWAYS_INLINE void panel_tokens_T(panel_kind kind, uint32_t type, const void *panel,
                                  const mm_act *a, size_t k0, size_t klen, size_t t0, int T,
                                  const tile_out *o)
{
    __m512 acc[2][TT];
    for (int t = 0; t < T; t++)
        acc[0][t] = acc[1][t] = _mm512_setzero_ps();
    if (kind == PANEL_INT) {
        size_t n = a->n_in, unit = mm_prefill_unit(type), units = n / unit;
        const int8_t *aq[TT];
        const float *du[TT], *ds[TT];
        for (int t = 0; t < T; t++) {
            size_t tok = t0 + (size_t)t;
            aq[t] = a->q + tok * n + k0;
            du[t] = a->du + tok * units + k0 / unit;
            ds[t] = a->ds + tok * units + k0 / unit;
        }
        if (unit == 32) /* a constant step count lets the compiler unroll */
            tile_int(panel, klen / 32, 8, aq, du, ds, T, acc);
        else
            tile_int(panel, klen / 16, 4, aq, du, ds, T, acc);
    } else {
        tile_float(panel, klen, a, t0, k0, T, acc);
    }
    tile_store(acc, T, t0, o);
}

__attribute__((target("avx512bf16"))) ALWAYS_INLINE void
panel_tokens_bf16_T(const void *panel, const mm_act *a, size_t k0, size_t klen, size_t t0, int T,
                    const tile_out *o)
{
    __m512 acc[2][TT];
    for (int t = 0; t < T; t++)
        acc[0][t] = acc[1][t] = _mm512_setzero_ps();
    tile_bf16(panel, klen, a, t0, k0, T, acc);
    tile_store(acc, T, t0, o);
}

/* Only called where the CPU has AVX512_BF16 (prefill_bf16's table). */
__attribute__((target("avx512bf16"))) static void
panel_tokens_bf16(const void *panel, const mm_act *a, size_t k0, size_t klen, const tile_out *o)
{
    size_t t0 = 0;
    for (; t0 + TT <= a->n_tok; t0 += TT)
        panel_tokens_bf16_T(panel, a, k0, klen, t0, TT, o);
    switch (a->n_tok - t0) {
    case 1:
        panel_tokens_bf16_T(panel, a, k0, klen, t0, 1, o);
        break;
    case 2:
        panel_tokens_bf16_T(panel, a, k0, klen, t0, 2, o);
        break;
    case 3:
        panel_tokens_bf16_T(panel, a, k0, klen, t0, 3, o);
        break;
    default:
        break;
    }
}

static void panel_tokens(panel_kind kind, uint32_t type, const void *panel, const mm_act *a,
                         size_t k0, size_t klen, const tile_out *o)
{
    size_t t0 = 0;
    for (; t0 + TT <= a->n_tok; t0 += TT)
        panel_tokens_T(kind, type, panel, a, k0, klen, t0, TT, o);
    switch (a->n_tok - t0) {
    case 1:
        panel_tokens_T(kind, type, panel, a, k0, klen, t0, 1, o);
        break;
    case 2:
        panel_tokens_T(kind, type, panel, a, k0, klen, t0, 2, o);
        break;
    case 3:
        panel_tokens_T(kind, type, panel, a, k0, klen, t0, 3, o);
        break;
    default:
        break;
    }
}

/* Asks for the weight bytes of values [k0, k0 + klen) of rows [row0,
 * row0 + n) ahead of their packing: 32 rows at once are too many streams
 * for the hardware prefetcher, so without this packing waits on DRAM. */
static void prefetch_panel(const matmul_weight *w, size_t row0, size_t n, size_t k0, size_t klen)
{
    size_t bs = tensor_type_block_size(w->type), bb = tensor_type_block_bytes(w->type);
    size_t b0 = k0 / bs * bb, b1 = (k0 + klen + bs - 1) / bs * bb;
    for (size_t r = 0; r < n; r++) {
        const char *row = (const char *)w->data + (row0 + r) * w->row_bytes;
        for (size_t off = b0; off < b1; off += 64)
            _mm_prefetch(row + off, _MM_HINT_T1);
        _mm_prefetch(row + b1 - 1, _MM_HINT_T1);
    }
}

/* Panel by panel (32 rows), K chunk by K chunk: the packed chunk stays in
 * L1 while every token passes over it; the activations are re-read once per
 * panel (32 MACs per byte, little traffic next to the compute). The next
 * chunk's weights are prefetched while this one is computed. */
static void prefill_with(panel_kind kind, const matmul_weight *w, const mm_act *a, size_t r0,
                         size_t r1, float *y, size_t ld_y, void *scratch)
{
    const uint8_t *data = w->data;
    size_t n = a->n_in, kc = kind == PANEL_INT ? KC : KCF;
    tile_out o = {y, ld_y, (float *)((uint8_t *)scratch + MM_PANEL_BYTES), 0, 0, 0, 0};
    prefetch_panel(w, r0, r1 - r0 < MM_PREFILL_ROWS ? r1 - r0 : MM_PREFILL_ROWS, 0,
                   n < kc ? n : kc);
    for (size_t row0 = r0; row0 < r1; row0 += MM_PREFILL_ROWS) {
        o.row0 = row0;
        o.n_rows = r1 - row0 < MM_PREFILL_ROWS ? r1 - row0 : MM_PREFILL_ROWS;
        for (size_t k0 = 0; k0 < n; k0 += kc) {
            size_t klen = n - k0 < kc ? n - k0 : kc;
            if (k0 + klen < n) { /* the next chunk of this panel, or the next panel's first */
                size_t nk = n - (k0 + klen) < kc ? n - (k0 + klen) : kc;
                prefetch_panel(w, row0, o.n_rows, k0 + klen, nk);
            } else if (row0 + MM_PREFILL_ROWS < r1) {
                size_t nr = r1 - row0 - MM_PREFILL_ROWS;
                prefetch_panel(w, row0 + MM_PREFILL_ROWS, nr < MM_PREFILL_ROWS ? nr : MM_PREFILL_ROWS,
                               0, n < kc ? n : kc);
            }
            const uint8_t *rows[MM_PREFILL_ROWS];
            for (int r = 0; r < MM_PREFILL_ROWS; r++)
                rows[r] = (size_t)r < o.n_rows ? data + (row0 + (size_t)r) * w->row_bytes : NULL;
            if (kind == PANEL_INT)
                pack_panel(w->type, rows, k0, klen, scratch);
            else
                pack_panel_float(w->type, rows, k0, klen, kind == PANEL_BF16, scratch);
            o.first = k0 == 0;
            o.last = k0 + klen >= n;
            if (kind == PANEL_BF16)
                panel_tokens_bf16(scratch, a, k0, klen, &o);
            else
                panel_tokens(kind, w->type, scratch, a, k0, klen, &o);
        }
    }
}

void mm_avx512_prefill(const matmul_weight *w, const mm_act *a, size_t r0, size_t r1, float *y,
                       size_t ld_y, void *scratch)
{
    panel_kind kind = a->format == MM_ACT_Q8_0 || a->format == MM_ACT_Q8_K ? PANEL_INT : PANEL_FLOAT;
    prefill_with(kind, w, a, r0, r1, y, ld_y, scratch);
}

void mm_avx512_prefill_bf16(const matmul_weight *w, const mm_act *a, size_t r0, size_t r1,
                            float *y, size_t ld_y, void *scratch)
{
    panel_kind kind = a->format == MM_ACT_BF16                              ? PANEL_BF16
                      : a->format == MM_ACT_Q8_0 || a->format == MM_ACT_Q8_K ? PANEL_INT
                                                                             : PANEL_FLOAT;
    prefill_with(kind, w, a, r0, r1, y, ld_y, scratch);
}

