/*
 * matmul_avx2_batch.c - the AVX2 small-batch kernel for Q8_0, Q4_0 and
 * Q4_K: the layout of matmul_avx512_batch.c (read its header first) with 8
 * lanes per set. Compiled with the AVX2 tier's flags (CMake, this file
 * only): nothing here may run unless cpu_isa_check(CPU_ISA_AVX2) passed.
 *
 * A set is 8 units (Q8_0 and Q4_0 blocks, Q4_K sub-blocks) with one
 * 32-bit lane each; lane l of vector v holds values 4v..4v+3 of its unit.
 * Per token and set, one vpmaddubsw per vector multiplies the weights
 * with the activations into pairs of int16, and one float step (convert,
 * times the activation scale, FMA with the weight scale) serves the 8
 * units; the AVX2 dots need a convert and a scale per block.
 *  - Q4_0, Q4_K: unsigned nibbles. The 8 pair products add up in int16,
 *    which is exact (8 x 2 x 15 x 127 = 30480), and one vpmaddwd turns
 *    them into the unit's sum.
 *  - Q8_0: signed quants, the dots' sign trick: |w| times the activation
 *    with w's sign moved onto it (vpsignb). A pair is up to 2 x 128 x 127
 *    = 32512, so pairs cannot be added in int16: each vector takes its
 *    own vpmaddwd into int32. It still saves the dots' float step per
 *    block and token (measured: docs/performance.md, "Against llama.cpp
 *    on the Intel Xeon").
 *
 * Not here: Q5_K and Q6_K (whose dots already apply the integer
 * sub-block scales with vpmaddwd, one float step per super-block), float
 * types. Those keep the dots. With 16 vector registers a tile holds at
 * most 4 tokens: 8 weight vectors stay in registers while the tile's
 * tokens pass.
 *
 * Threads: reentrant; the only memory written is the caller's y.
 */
#include <assert.h>
#include <immintrin.h>
#include <stdint.h>

#include "fp16.h"
#include "matmul_avx2_util.h"
#include "matmul_kernels.h"
#include "quant.h"

#define BT 4    /* most tokens per tile */
#define LANES 8 /* units per set */

/* ================================================================ lane order */

/*
 * Which unit lane l of set s holds:
 *   Q8_0, Q4_0  block 8s + l
 *   Q4_K  set 2G (low nibbles) / 2G+1 (high) of super-blocks 2G, 2G+1: the
 *         32-byte chunk c = l % 4 of super-block l / 4 (an 8x8 dword
 *         transpose of the 8 chunks), sub-block 2c (low) or 2c + 1 (high)
 */
static const _Alignas(32) int32_t units_seq[8] = {0, 1, 2, 3, 4, 5, 6, 7};
static const _Alignas(32) int32_t units_q4_K[2][8] = {{0, 2, 4, 6, 8, 10, 12, 14},
                                                      {1, 3, 5, 7, 9, 11, 13, 15}};

void mm_avx2_batch_act(uint32_t type, const mm_act *a, size_t t, uint8_t *bx)
{
    size_t n = a->n_in, unit = mm_batch_unit(type), units = n / unit;
    size_t sets = mm_batch_sets(type, LANES, n), rec = mm_batch_rec_bytes(type, LANES);
    const int8_t *q = a->q + t * n;
    int q4_K = type == TENSOR_Q4_K;
    for (size_t s = 0; s < sets; s++) {
        uint8_t *dst = bx + (s * a->n_tok + t) * rec;
        const int32_t *map = q4_K ? units_q4_K[s % 2] : units_seq;
        size_t base = q4_K ? 16 * (s / 2) : LANES * s;
        __m256i u = _mm256_add_epi32(_mm256_load_si256((const __m256i *)map),
                                     _mm256_set1_epi32((int)base));
        __m256i valid = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)units), u);
        __m256i off = _mm256_mullo_epi32(u, _mm256_set1_epi32((int)unit));
        for (size_t v = 0; v < unit / 4; v++) {
            __m256i o = _mm256_add_epi32(off, _mm256_set1_epi32((int)(4 * v)));
            __m256i g = _mm256_mask_i32gather_epi32(_mm256_setzero_si256(), (const int *)q, o,
                                                    valid, 1);
            _mm256_store_si256((__m256i *)(dst + 32 * v), g);
        }
        float *bd = (float *)(void *)(dst + LANES * unit);
        int32_t *bo = (int32_t *)(void *)(bd + LANES);
        _Alignas(32) int32_t ui[8];
        _mm256_store_si256((__m256i *)ui, u);
        for (size_t l = 0; l < LANES; l++) {
            size_t k = (size_t)ui[l];
            float d = 0.0f;
            int32_t sum = 0;
            if (k < units && !q4_K) {
                d = a->d[t * (n / 32) + k];
                sum = a->sum32[t * (n / 32) + k];
            } else if (k < units) {
                const int16_t *bs = a->bsums + t * (n / 16);
                d = a->d[t * (n / 256) + k / 8];
                sum = bs[2 * k] + bs[2 * k + 1];
            }
            bd[l] = d;
            if (q4_K) {
                float ds = d * (float)sum;
                memcpy(&bo[l], &ds, sizeof ds);
            } else {
                bo[l] = type == TENSOR_Q4_0 ? -8 * sum : 0; /* Q8_0: no offset */
            }
        }
    }
}

/* ================================================================ weight sets */

/* The unsigned weights of one set (Q8_0: their magnitudes), its scales
 * S and (Q4_K) its mins O, and (Q8_0) the signed weights whose signs go
 * onto the activations, in memory: a group is unpacked once per row,
 * then its sets are loaded back set by set (16 registers do not hold two
 * sets and a tile). */
typedef struct set_w {
    __m256i w[8];
    __m256 s, o;
    __m256i sign[8];
} set_w;

/* Values and bytes of one weight block of a type here (compile-time
 * constants once the kernel is specialised for its type). */
ALWAYS_INLINE size_t block_values(uint32_t type)
{
    return type == TENSOR_Q4_K ? QUANT_QK_K : 32;
}

ALWAYS_INLINE size_t block_bytes(uint32_t type)
{
    return type == TENSOR_Q4_K   ? QUANT_Q4_K_BYTES
           : type == TENSOR_Q8_0 ? QUANT_Q8_0_BYTES
                                 : QUANT_Q4_0_BYTES;
}

/* The f16 scales that start 8 consecutive blocks of `bytes` each, by one
 * gather. */
ALWAYS_INLINE __m256 block_scales(const uint8_t *p, int bytes)
{
    __m256i at = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                    _mm256_set1_epi32(bytes));
    __m256i d = _mm256_and_si256(_mm256_i32gather_epi32((const int *)p, at, 1),
                                 _mm256_set1_epi32(0xffff));
    return _mm256_cvtph_ps(_mm_packus_epi32(_mm256_castsi256_si128(d),
                                            _mm256_extracti128_si256(d, 1)));
}

/* Q4_0, 8 blocks (144 bytes): the 16 quant bytes of blocks i and i + 4 in
 * one register, a 4x4 dword transpose within the 128-bit halves puts dword
 * s of block l in lane l of r[s]; its low nibbles are values 4s..4s+3 of the
 * block, the high ones 16+4s... Scales by one gather. */
ALWAYS_INLINE void q4_0_set(const uint8_t *p, set_w *sw)
{
    __m256i z[4];
    #pragma GCC unroll 8
    for (int i = 0; i < 4; i++)
        z[i] = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(p + 18 * i + 2))),
            _mm_loadu_si128((const __m128i *)(p + 18 * (i + 4) + 2)), 1);
    __m256i r[4];
    mm_transpose_4x4_halves(z, r);
    const __m256i m0f = _mm256_set1_epi8(15);
    #pragma GCC unroll 8
    for (int v = 0; v < 4; v++) {
        sw->w[v] = _mm256_and_si256(r[v], m0f);
        sw->w[v + 4] = _mm256_and_si256(_mm256_srli_epi16(r[v], 4), m0f);
    }
    sw->s = block_scales(p, QUANT_Q4_0_BYTES);
    sw->o = _mm256_setzero_ps();
}

/* Q8_0, 8 blocks (272 bytes): block l's 32 quants are row l of an 8x8
 * dword transpose, so dword v of block l (values 4v..4v+3) lands in lane
 * l of vector v. */
ALWAYS_INLINE void q8_0_set(const uint8_t *p, set_w *sw)
{
    __m256i z[8], r[8];
    #pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        z[i] = _mm256_loadu_si256((const __m256i *)(p + QUANT_Q8_0_BYTES * (size_t)i + 2));
    mm_transpose_8x8(z, r);
    #pragma GCC unroll 8
    for (int v = 0; v < 8; v++) {
        sw->sign[v] = r[v];
        sw->w[v] = _mm256_sign_epi8(r[v], r[v]);
    }
    sw->s = block_scales(p, QUANT_Q8_0_BYTES);
    sw->o = _mm256_setzero_ps();
}

/* Q4_K, 2 super-blocks (288 bytes) = two sets: chunk c of super-block b is
 * row 4b + c of an 8x8 dword transpose; low nibbles are sub-block 2c, high
 * nibbles 2c + 1. Scales and mins unpacked by mm_kquant_scales_packed, then
 * picked per lane by byte shuffles within each super-block's 128-bit half. */
ALWAYS_INLINE void q4_K_group(const uint8_t *p, set_w sw[2])
{
    __m256i z[8], r[8];
    #pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        z[i] = _mm256_loadu_si256(
            (const __m256i *)(p + QUANT_Q4_K_BYTES * (size_t)(i / 4) + 16 + 32 * (size_t)(i % 4)));
    mm_transpose_8x8(z, r);
    const __m256i m0f = _mm256_set1_epi8(15);
    #pragma GCC unroll 8
    for (int v = 0; v < 8; v++) {
        sw[0].w[v] = _mm256_and_si256(r[v], m0f);
        sw[1].w[v] = _mm256_and_si256(_mm256_srli_epi16(r[v], 4), m0f);
    }
    _Alignas(32) uint8_t scm[32]; /* [b][sc0..7 m0..7] */
    mm_kquant_scales_packed(p + 4, scm);
    mm_kquant_scales_packed(p + QUANT_Q4_K_BYTES + 4, scm + 16);
    __m256i x = _mm256_load_si256((const __m256i *)scm);
    /* dword c of each half <- byte 2c (+1: high set; +8: mins) */
    const __m256i pick = _mm256_setr_epi8(0, -1, -1, -1, 2, -1, -1, -1, 4, -1, -1, -1, 6, -1, -1,
                                          -1, 0, -1, -1, -1, 2, -1, -1, -1, 4, -1, -1, -1, 6, -1,
                                          -1, -1);
    __m256 d = _mm256_setr_m128(_mm_set1_ps(_cvtsh_ss(mm_ld16(p))),
                                _mm_set1_ps(_cvtsh_ss(mm_ld16(p + QUANT_Q4_K_BYTES))));
    __m256 dmin = _mm256_setr_m128(_mm_set1_ps(_cvtsh_ss(mm_ld16(p + 2))),
                                   _mm_set1_ps(_cvtsh_ss(mm_ld16(p + QUANT_Q4_K_BYTES + 2))));
    #pragma GCC unroll 8
    for (int h = 0; h < 2; h++) {
        __m256i sc = _mm256_shuffle_epi8(x, _mm256_add_epi8(pick, _mm256_set1_epi32(h)));
        __m256i mn = _mm256_shuffle_epi8(x, _mm256_add_epi8(pick, _mm256_set1_epi32(8 + h)));
        sw[h].s = _mm256_mul_ps(_mm256_cvtepi32_ps(sc), d);
        sw[h].o = _mm256_mul_ps(_mm256_cvtepi32_ps(mn), dmin);
    }
}

/* ================================================================ tiles */

typedef struct tile_act {
    const mm_act *a;
    const uint8_t *x;  /* set 0's record of the tile's first token */
    size_t set_stride; /* bytes from one set's records to the next */
} tile_act;

#define REC (LANES * 32 + 2 * LANES * 4) /* record bytes: units of 32 */

/* The integer sums of one set and one token's record x, lane l = unit l:
 * nibbles add their pair products in int16 first, Q8_0 takes each
 * vector's pairs to int32 on its own (see the header), its weights'
 * signs read from memory by vpsignb. */
ALWAYS_INLINE __m256i set_sums(uint32_t type, const set_w *sw, const __m256i w[8],
                               const uint8_t *x)
{
    const __m256i ones = _mm256_set1_epi16(1);
    if (type == TENSOR_Q8_0) {
        __m256i s32 = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int v = 0; v < 8; v++) {
            __m256i a = _mm256_sign_epi8(_mm256_load_si256((const __m256i *)(x + 32 * v)),
                                         _mm256_load_si256(&sw->sign[v]));
            s32 = _mm256_add_epi32(s32, _mm256_madd_epi16(_mm256_maddubs_epi16(w[v], a), ones));
        }
        return s32;
    }
    __m256i p = _mm256_maddubs_epi16(w[0], _mm256_load_si256((const __m256i *)x));
#pragma GCC unroll 8
    for (int v = 1; v < 8; v++)
        p = _mm256_add_epi16(p, _mm256_maddubs_epi16(w[v], _mm256_load_si256(
                                                               (const __m256i *)(x + 32 * v))));
    return _mm256_madd_epi16(p, ones);
}

/* One set times T tokens. Q4_0's -8 offset is the record's integer term;
 * Q4_K's mins (per row) come in through the record's float term; Q8_0 has
 * neither. */
ALWAYS_INLINE void set_tokens(uint32_t type, const set_w *sw, const tile_act *ta, size_t set,
                              int T, __m256 *acc)
{
    __m256i w[8];
    #pragma GCC unroll 8
    for (int v = 0; v < 8; v++)
        w[v] = _mm256_load_si256(&sw->w[v]);
    const uint8_t *x = ta->x + set * ta->set_stride;
#pragma GCC unroll 4
    for (int i = 0; i < T; i++, x += REC) {
        __m256i s32 = set_sums(type, sw, w, x);
        const float *d = (const float *)(const void *)(x + LANES * 32);
        if (type == TENSOR_Q4_0)
            s32 = _mm256_add_epi32(s32, _mm256_load_si256((const __m256i *)(d + LANES)));
        __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(s32), _mm256_load_ps(d));
        acc[i] = _mm256_fmadd_ps(f, sw->s, acc[i]);
        if (type == TENSOR_Q4_K)
            acc[i] = _mm256_fnmadd_ps(sw->o, _mm256_load_ps(d + LANES), acc[i]);
    }
}

/* Groups [g0, g1) of a row unpacked into sets (Q4_K: two per group) at
 * out; a partial last group is copied into a zeroed buffer first. */
ALWAYS_INLINE void unpack_groups(uint32_t type, const uint8_t *row, size_t n, size_t g0,
                                 size_t g1, set_w *out)
{
    const int q4_K = type == TENSOR_Q4_K;
    size_t group = mm_batch_group(type, LANES);
    size_t gbytes = group / block_values(type) * block_bytes(type);
    size_t full = n / group;
    _Alignas(32) uint8_t buf[2 * QUANT_Q4_K_BYTES]; /* the largest group */
    _Static_assert(LANES * QUANT_Q8_0_BYTES <= sizeof buf, "a Q8_0 group fits buf");
    for (size_t g = g0; g < g1; g++) {
        const uint8_t *p = row + g * gbytes;
        if (g >= full) {
            memset(buf, 0, sizeof buf);
            memcpy(buf, p, (n - g * group) / block_values(type) * block_bytes(type));
            p = buf;
        }
        if (q4_K) {
            q4_K_group(p, out);
            out += 2;
        } else if (type == TENSOR_Q8_0) {
            q8_0_set(p, out++);
        } else {
            q4_0_set(p, out++);
        }
    }
}

/* ns unpacked sets of one row, the records' sets s0.., times T tokens,
 * added to acc. */
ALWAYS_INLINE void row_tokens(uint32_t type, const set_w *sw, size_t ns, const tile_act *ta,
                              size_t s0, int T, __m256 *acc)
{
    for (size_t k = 0; k < ns; k++)
        set_tokens(type, &sw[k], ta, s0 + k, T, acc);
}

/* v[0..n) -> lane j = the sum of v[j]'s lanes (j < n, n <= 8). */
ALWAYS_INLINE __m256 reduce_8(const __m256 *v, size_t n)
{
    __m256 x[8], t[4], c[2];
    #pragma GCC unroll 8
    for (int k = 0; k < 8; k++)
        x[k] = (size_t)k < n ? v[k] : _mm256_setzero_ps();
    #pragma GCC unroll 8
    for (int k = 0; k < 4; k++) /* per 128-bit half: rows 2k, 2k+1 */
        t[k] = _mm256_add_ps(_mm256_unpacklo_ps(x[2 * k], x[2 * k + 1]),
                             _mm256_unpackhi_ps(x[2 * k], x[2 * k + 1]));
    #pragma GCC unroll 8
    for (int k = 0; k < 2; k++) { /* per half: rows 4k..4k+3 */
        __m256d a = _mm256_castps_pd(t[2 * k]), b = _mm256_castps_pd(t[2 * k + 1]);
        c[k] = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(a, b)),
                             _mm256_castpd_ps(_mm256_unpackhi_pd(a, b)));
    }
    return _mm256_add_ps(_mm256_permute2f128_ps(c[0], c[1], 0x20),
                         _mm256_permute2f128_ps(c[0], c[1], 0x31));
}

/* ================================================================ entry */

/*
 * The order: blocks of RB rows, K chunks of CHUNK values within a block.
 * Each chunk of the block's rows is unpacked once into the panel (in the
 * caller's scratch), then every token tile of the call runs over it, so a
 * weight is read from memory and unpacked once per call however many
 * tokens there are; a tile's sums of the chunk are added into y. The
 * weights of the visit PF_FAR ahead are asked for into L2 and of the next
 * one into L1, as in matmul_avx512_batch.c.
 */
#define RB 8
#define PF_NEAR 1
#define PF_FAR 16
#define CHUNK 2048
#define PANEL_SETS (CHUNK / (LANES * 32)) /* sets per row and chunk, every type */

_Static_assert(RB * PANEL_SETS * sizeof(set_w) <= MM_PANEL_BYTES, "the panel fits the scratch");

static inline void prefetch_visit(const uint8_t *data, size_t row_bytes, size_t r1, size_t chunks,
                                  size_t chunk_bytes, size_t packed, size_t rb, size_t c, size_t r,
                                  size_t d, int far)
{
    size_t re = rb + RB < r1 ? rb + RB : r1, i = r - rb + d;
    while (i >= re - rb) {
        i -= re - rb;
        if (++c == chunks) {
            c = 0;
            rb += RB;
            if (rb >= r1)
                return;
            re = rb + RB < r1 ? rb + RB : r1;
        }
    }
    size_t off = c * chunk_bytes, len = packed - off < chunk_bytes ? packed - off : chunk_bytes;
    const char *p = (const char *)(data + (rb + i) * row_bytes + off);
    for (size_t o = 0; o < len; o += 64) {
        if (far)
            _mm_prefetch(p + o, _MM_HINT_T1);
        else
            _mm_prefetch(p + o, _MM_HINT_T0);
    }
}

/* One tile of T tokens over the panel's nr rows (ns sets each): the sums
 * of rows rb.. go to y (first chunk) or are added to it. y: the tile's
 * first token, column rb. */
ALWAYS_INLINE void tile_T(uint32_t type, const set_w *panel, size_t ns, size_t nr,
                          const tile_act *ta, size_t s0, int T, int first, float *y, size_t ld_y)
{
    _Alignas(32) __m256 part[BT][RB];
    for (size_t r = 0; r < nr; r++) {
        __m256 acc[BT];
        #pragma GCC unroll 8
        for (int i = 0; i < T; i++)
            acc[i] = _mm256_setzero_ps();
        row_tokens(type, panel + r * ns, ns, ta, s0, T, acc);
        #pragma GCC unroll 8
        for (int i = 0; i < T; i++)
            part[i][r] = acc[i];
    }
    #pragma GCC unroll 8
    for (int i = 0; i < T; i++) {
        __m256 out = reduce_8(part[i], nr);
        float *yt = y + (size_t)i * ld_y;
        if (nr == RB) {
            _mm256_storeu_ps(yt, first ? out : _mm256_add_ps(out, _mm256_loadu_ps(yt)));
        } else {
            _Alignas(32) float tmp[8] = {0};
            if (!first)
                memcpy(tmp, yt, nr * sizeof(float));
            _mm256_store_ps(tmp, _mm256_add_ps(out, _mm256_load_ps(tmp)));
            memcpy(yt, tmp, nr * sizeof(float));
        }
    }
}

ALWAYS_INLINE void rows_panel(uint32_t type, const matmul_weight *w, const mm_act *a, size_t r0,
                              size_t r1, float *y, size_t ld_y, set_w *panel)
{
    size_t n = a->n_in, n_tok = a->n_tok, group = mm_batch_group(type, LANES);
    size_t chunks = (n + CHUNK - 1) / CHUNK, spg = type == TENSOR_Q4_K ? 2 : 1;
    size_t bv = block_values(type), bb = block_bytes(type);
    size_t cbytes = CHUNK / bv * bb, packed = n / bv * bb;
    size_t tiles = (n_tok + BT - 1) / BT, rec = mm_batch_rec_bytes(type, LANES);
    for (size_t rb = r0; rb < r1; rb += RB) {
        size_t re = rb + RB < r1 ? rb + RB : r1;
        for (size_t c = 0; c < chunks; c++) {
            size_t k0 = c * CHUNK, k1 = k0 + CHUNK < n ? k0 + CHUNK : n;
            size_t g0 = k0 / group, g1 = (k1 + group - 1) / group, ns = (g1 - g0) * spg;
            for (size_t r = rb; r < re; r++) {
                prefetch_visit(w->data, w->row_bytes, r1, chunks, cbytes, packed, rb, c, r,
                               PF_NEAR, 0);
                prefetch_visit(w->data, w->row_bytes, r1, chunks, cbytes, packed, rb, c, r,
                               PF_FAR, 1);
                unpack_groups(type, (const uint8_t *)w->data + r * w->row_bytes, n, g0, g1,
                              panel + (r - rb) * ns);
            }
            for (size_t k = 0; k < tiles; k++) { /* balanced tiles of at most BT tokens */
                size_t t0 = n_tok * k / tiles, t1 = n_tok * (k + 1) / tiles;
                tile_act ta = {a, a->bx + t0 * rec, n_tok * rec};
                float *yt = y + t0 * ld_y + rb;
                size_t nr = re - rb, s0 = g0 * spg;
                int first = c == 0;
                switch (t1 - t0) {
                case 1: tile_T(type, panel, ns, nr, &ta, s0, 1, first, yt, ld_y); break;
                case 2: tile_T(type, panel, ns, nr, &ta, s0, 2, first, yt, ld_y); break;
                case 3: tile_T(type, panel, ns, nr, &ta, s0, 3, first, yt, ld_y); break;
                default: tile_T(type, panel, ns, nr, &ta, s0, 4, first, yt, ld_y); break;
                }
            }
        }
    }
}

static void rows_q8_0(const matmul_weight *w, const mm_act *a, size_t r0, size_t r1, float *y,
                      size_t ld_y, set_w *panel)
{
    rows_panel(TENSOR_Q8_0, w, a, r0, r1, y, ld_y, panel);
}

static void rows_q4_0(const matmul_weight *w, const mm_act *a, size_t r0, size_t r1, float *y,
                      size_t ld_y, set_w *panel)
{
    rows_panel(TENSOR_Q4_0, w, a, r0, r1, y, ld_y, panel);
}

static void rows_q4_K(const matmul_weight *w, const mm_act *a, size_t r0, size_t r1, float *y,
                      size_t ld_y, set_w *panel)
{
    rows_panel(TENSOR_Q4_K, w, a, r0, r1, y, ld_y, panel);
}

/* scratch: at least MM_PANEL_BYTES, 32-byte aligned (mm_rows_fn). */
void mm_avx2_batch(const matmul_weight *w, const mm_act *a, size_t r0, size_t r1, float *y,
                   size_t ld_y, void *scratch)
{
    assert(scratch && (uintptr_t)scratch % 32 == 0);
    set_w *panel = scratch;
    if (w->type == TENSOR_Q4_K)
        rows_q4_K(w, a, r0, r1, y, ld_y, panel);
    else if (w->type == TENSOR_Q8_0)
        rows_q8_0(w, a, r0, r1, y, ld_y, panel);
    else
        rows_q4_0(w, a, r0, r1, y, ld_y, panel);
}
