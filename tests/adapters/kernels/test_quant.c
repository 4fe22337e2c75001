/* Specification of quant.h: block layouts (hand-built blocks decode to
 * hand-computed values), the weight quantizer's error bounds, and activation
 * quantization that rounds exactly as llama.cpp. */
#include "../../test_util.h"

#include <math.h>
#include <stdlib.h>

#include "adapters/kernels/fp16.h"
#include "adapters/kernels/quant.h"
#include "adapters/kernels/tensor_type.h"

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void deq(uint32_t type, const void *src, float *dst, uint64_t n)
{
    sem_err err = {0};
    if (quant_dequantize_row(type, src, dst, n, &err) != SEM_OK)
        fail_msg("dequantize %s: %s", tensor_type_name(type), err.detail);
}

/* ================================================================ layouts */

static void float_types_decode_their_bits(void **state)
{
    (void)state;
    uint8_t b[8];
    float out[2];
    put16(b, 0x3c00);
    put16(b + 2, 0xc000);
    deq(TENSOR_F16, b, out, 2);
    assert_true(out[0] == 1.0f && out[1] == -2.0f);
    put16(b, 0x3f80);
    put16(b + 2, 0xc040);
    deq(TENSOR_BF16, b, out, 2);
    assert_true(out[0] == 1.0f && out[1] == -3.0f);
    float f[2] = {1.5f, -0.25f};
    deq(TENSOR_F32, f, out, 2);
    assert_true(out[0] == 1.5f && out[1] == -0.25f);
}

static void q8_0_is_scale_times_int8(void **state)
{
    (void)state;
    uint8_t blk[2 * QUANT_Q8_0_BYTES];
    put16(blk, 0x3800); /* d = 0.5 */
    for (int j = 0; j < 32; j++)
        blk[2 + j] = (uint8_t)(int8_t)(j - 16);
    put16(blk + 34, 0xc000); /* d = -2 */
    blk[36] = (uint8_t)(int8_t)-128;
    memset(blk + 37, 1, 31);
    float out[64];
    deq(TENSOR_Q8_0, blk, out, 64);
    assert_true(out[0] == -8.0f);  /* 0.5 * -16 */
    assert_true(out[31] == 7.5f);  /* 0.5 * 15 */
    assert_true(out[32] == 256.0f); /* -2 * -128 */
    assert_true(out[63] == -2.0f);
}

static void q4_0_low_nibbles_first_then_high(void **state)
{
    (void)state;
    uint8_t blk[QUANT_Q4_0_BYTES];
    put16(blk, 0x4000); /* d = 2 */
    for (int j = 0; j < 16; j++)
        blk[2 + j] = (uint8_t)(j | ((15 - j) << 4));
    float out[32];
    deq(TENSOR_Q4_0, blk, out, 32);
    assert_true(out[0] == -16.0f);  /* 2 * (0 - 8) */
    assert_true(out[15] == 14.0f);  /* 2 * (15 - 8) */
    assert_true(out[16] == 14.0f);  /* high nibble of qs[0] = 15 */
    assert_true(out[31] == -16.0f); /* high nibble of qs[15] = 0 */
}

/* Scales (sc) 1,2,3,4,17,33,50,63 and mins (m) 0,5,10,15,20,40,60,63,
 * packed by hand: bytes 0-3 carry sc0-3 plus the top 2 bits of sc4-7,
 * bytes 4-7 m0-3 plus the top bits of m4-7, bytes 8-11 the low nibbles. */
static const uint8_t kscales[12] = {
    1 | (1 << 6),  /* sc0 = 1,  sc4 = 17 = 0b01_0001 -> top bits 01 */
    2 | (2 << 6),  /* sc1 = 2,  sc5 = 33 = 0b10_0001 -> 10 */
    3 | (3 << 6),  /* sc2 = 3,  sc6 = 50 = 0b11_0010 -> 11 */
    4 | (3 << 6),  /* sc3 = 4,  sc7 = 63 = 0b11_1111 -> 11 */
    0 | (1 << 6),  /* m0 = 0,   m4 = 20 = 0b01_0100 -> 01 */
    5 | (2 << 6),  /* m1 = 5,   m5 = 40 = 0b10_1000 -> 10 */
    10 | (3 << 6), /* m2 = 10,  m6 = 60 = 0b11_1100 -> 11 */
    15 | (3 << 6), /* m3 = 15,  m7 = 63 -> 11 */
    1 | (4 << 4),  /* sc4 low 0001, m4 low 0100 */
    1 | (8 << 4),  /* sc5 low 0001, m5 low 1000 */
    2 | (12 << 4), /* sc6 low 0010, m6 low 1100 */
    15 | (15 << 4) /* sc7 low 1111, m7 low 1111 */
};

static void q4_K_six_bit_scales_and_nibble_order(void **state)
{
    (void)state;
    uint8_t blk[QUANT_Q4_K_BYTES] = {0};
    put16(blk, 0x3c00);     /* d = 1 */
    put16(blk + 2, 0x3800); /* dmin = 0.5 */
    memcpy(blk + 4, kscales, 12);
    for (int i = 0; i < 128; i++)
        blk[16 + i] = (uint8_t)((i % 16) | ((15 - i % 16) << 4));
    float out[256];
    deq(TENSOR_Q4_K, blk, out, 256);
    /* value 0: chunk 0 low nibble of qs[0] = 0, sub-block 0: 1*1*0 - 0.5*0 */
    assert_true(out[0] == 0.0f);
    /* value 5: q = 5 -> 1*5 - 0 */
    assert_true(out[5] == 5.0f);
    /* value 32: high nibble of qs[0] = 15, sub-block 1 (sc 2, m 5): 2*15 - 2.5 */
    assert_true(out[32] == 27.5f);
    /* value 64+3: chunk 1, qs[32+3] low = 3, sub-block 2 (sc 3, m 10): 9 - 5 */
    assert_true(out[67] == 4.0f);
    /* value 128+1: chunk 2, low nibble of qs[65] = 1, sub-block 4 (sc 17, m 20): 17 - 10 */
    assert_true(out[129] == 7.0f);
    /* value 160+2: chunk 2 high nibble of qs[66] = 13, sub-block 5 (sc 33, m 40): 429 - 20 */
    assert_true(out[162] == 409.0f);
    /* value 192: chunk 3 low nibble of qs[96] = 0, sub-block 6 (sc 50, m 60): -30 */
    assert_true(out[192] == -30.0f);
    /* value 255: chunk 3 high nibble of qs[127] = 0, sub-block 7 (sc 63, m 63): -31.5 */
    assert_true(out[255] == -31.5f);
}

static void q5_K_adds_the_fifth_bit_from_qh(void **state)
{
    (void)state;
    uint8_t blk[QUANT_Q5_K_BYTES] = {0};
    put16(blk, 0x3c00);     /* d = 1 */
    put16(blk + 2, 0x3800); /* dmin = 0.5 */
    memcpy(blk + 4, kscales, 12);
    uint8_t *qh = blk + 16, *qs = blk + 48;
    qh[0] = 0x01;  /* value 0 (chunk 0 low) gets +16 */
    qh[1] = 0x02;  /* value 33 (chunk 0 high) gets +16 */
    qh[2] = 0x40;  /* value 192+2 (chunk 3 low, bit 6) gets +16 */
    qh[31] = 0x80; /* value 224+31 (chunk 3 high, bit 7) gets +16 */
    qs[0] = 0x21;  /* value 0 low nibble 1, value 32 high nibble 2 */
    qs[1] = 0x03;  /* value 1 = 3, value 33 = 0 */
    float out[256];
    deq(TENSOR_Q5_K, blk, out, 256);
    assert_true(out[0] == 17.0f);         /* 1 * (1 + 16) - 0 */
    assert_true(out[1] == 3.0f);          /* no high bit */
    assert_true(out[32] == 1.5f);         /* sub-block 1: 2*2 - 2.5 */
    assert_true(out[33] == 29.5f);        /* 2*(0 + 16) - 2.5 */
    assert_true(out[194] == 770.0f);      /* sub-block 6: 50*16 - 30 */
    assert_true(out[255] == 976.5f);      /* sub-block 7: 63*16 - 31.5 */
    assert_true(out[100] == -7.5f);       /* sub-block 3 (sc 4, m 15), q = 0: -0.5*15 */
}

static void q6_K_quants_scales_and_offset(void **state)
{
    (void)state;
    uint8_t blk[QUANT_Q6_K_BYTES] = {0};
    int8_t *sc = (int8_t *)(blk + 192);
    for (int s = 0; s < 16; s++)
        sc[s] = (int8_t)(s % 2 ? -(s + 1) : s + 1); /* 1, -2, 3, -4, ... */
    put16(blk + 208, 0x3400); /* d = 0.25 */
    uint8_t *ql = blk, *qh = blk + 128;
    ql[0] = 0x5a;  /* value 0 low nibble 10, value 64 high nibble 5 */
    qh[0] = 0xe4;  /* 0b11_10_01_00: value 0 +0, value 32 +16, value 64 +32, value 96 +48 */
    ql[32] = 0x3c; /* value 32 low 12, value 96 high 3 */
    ql[64 + 17] = 0x07; /* half 1: value 128+17 low nibble 7 */
    qh[32 + 17] = 0x03; /* + 48 */
    float out[256];
    deq(TENSOR_Q6_K, blk, out, 256);
    assert_true(out[0] == 0.25f * 1 * (10 - 32));         /* sub-block 0, sc 1 */
    assert_true(out[32] == 0.25f * 3 * (12 + 16 - 32));   /* sub-block 2, sc 3 */
    assert_true(out[64] == 0.25f * 5 * (5 + 32 - 32));    /* sub-block 4, sc 5 */
    assert_true(out[96] == 0.25f * 7 * (3 + 48 - 32));    /* sub-block 6, sc 7 */
    assert_true(out[145] == 0.25f * -10 * (7 + 48 - 32)); /* sub-block 9, sc -10 */
    assert_true(out[1] == 0.25f * 1 * -32);               /* all-zero quant is -32 */
    assert_true(out[16] == 0.25f * -2 * -32);             /* sub-block 1, sc -2 */
}

static void bad_types_and_lengths_are_refused(void **state)
{
    (void)state;
    float buf[256] = {0};
    uint8_t raw[1024] = {0};
    sem_err err = {0};
    assert_int_equal(quant_dequantize_row(TENSOR_Q2_K, raw, buf, 256, &err), SEM_EUNSUPPORTED);
    assert_contains(err.detail, "Q2_K");
    assert_int_equal(quant_dequantize_row(999, raw, buf, 256, &err), SEM_EUNSUPPORTED);
    assert_int_equal(quant_dequantize_row(TENSOR_Q4_K, raw, buf, 100, &err), SEM_EINVAL);
    assert_contains(err.detail, "block size 256");
    assert_int_equal(quant_quantize_row(TENSOR_Q4_0, buf, raw, 33, &err), SEM_EINVAL);
    assert_int_equal(quant_quantize_row(TENSOR_IQ4_NL, buf, raw, 32, &err), SEM_EUNSUPPORTED);
}

/* ================================================================ weight quantizer */

/* Gaussian-ish values with occasional outliers, as real weights have. */
static void random_row(uint64_t *rng, float *x, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++) {
        float u = 0.0f;
        for (int k = 0; k < 4; k++)
            u += (float)(test_rand(rng) >> 40) / (float)(1 << 24) - 0.5f;
        x[i] = u * scale * ((test_rand(rng) % 97) == 0 ? 6.0f : 1.0f);
    }
}

/* Max |error| allowed for value i of a block, given the block's values. */
typedef float (*bound_fn)(const float *blk, int i);

static float amax_of(const float *x, int n)
{
    float a = 0.0f;
    for (int i = 0; i < n; i++)
        a = fmaxf(a, fabsf(x[i]));
    return a;
}

static float range_of(const float *x, int n)
{
    float lo = 0.0f, hi = x[0];
    for (int i = 0; i < n; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
    }
    return hi - lo;
}

static float bound_f16(const float *blk, int i) { return fabsf(blk[i]) * 0x1p-11f; }
static float bound_bf16(const float *blk, int i) { return fabsf(blk[i]) * 0x1p-8f; }
/* Half a step, plus the f16 rounding of d spread over 127 steps. */
static float bound_q8_0(const float *blk, int i) { return amax_of(blk, 32) * (0.5f / 127 + 0x1p-11f); }
/* One step: the value opposite the largest one may clip from +8 to +7. */
static float bound_q4_0(const float *blk, int i) { return amax_of(blk, 32) * (1.0f / 8 + 0x1p-9f); }
/* K-quants: one step of the sub-block, plus what rounding the sub-block
 * scale and min to 6 (Q6_K: 8) bits of the super-block's d and dmin costs,
 * at most half of d or dmin per step count, i.e. a fraction of the
 * super-block's largest value. */
static float bound_q4_K(const float *blk, int i)
{
    return range_of(blk + i / 32 * 32, 32) / 15 + amax_of(blk, 256) / 63;
}
static float bound_q5_K(const float *blk, int i)
{
    return range_of(blk + i / 32 * 32, 32) / 31 + amax_of(blk, 256) / 63;
}
static float bound_q6_K(const float *blk, int i)
{
    return amax_of(blk + i / 16 * 16, 16) / 32 + amax_of(blk, 256) / 254;
}

static void check_round_trip(uint32_t type, bound_fn bound)
{
    enum { N = 4096 };
    static float x[N], y[N];
    static uint8_t q[N * 4];
    uint64_t rng = 1234 + type;
    for (int rep = 0; rep < 8; rep++) {
        random_row(&rng, x, N, rep % 2 ? 0.05f : 3.0f);
        if (rep == 7)
            memset(x + 256, 0, 256 * sizeof *x); /* an all-zero block */
        sem_err err = {0};
        assert_int_equal(quant_quantize_row(type, x, q, N, &err), SEM_OK);
        deq(type, q, y, N);
        for (int i = 0; i < N; i++) {
            float e = fabsf(y[i] - x[i]);
            /* bounds see the 256 values around i (a super-block) */
            float b = bound(x + i / 256 * 256, i % 256) * 1.001f + 1e-7f;
            if (!(e <= b))
                fail_msg("%s value %d: %g -> %g (error %g > %g)", tensor_type_name(type), i,
                         (double)x[i], (double)y[i], (double)e, (double)b);
        }
    }
}

static float bound_q8_0_at(const float *blk256, int i) { return bound_q8_0(blk256 + i / 32 * 32, i % 32); }
static float bound_q4_0_at(const float *blk256, int i) { return bound_q4_0(blk256 + i / 32 * 32, i % 32); }

static void quantize_then_dequantize_stays_within_a_step(void **state)
{
    (void)state;
    check_round_trip(TENSOR_F16, bound_f16);
    check_round_trip(TENSOR_BF16, bound_bf16);
    check_round_trip(TENSOR_Q8_0, bound_q8_0_at);
    check_round_trip(TENSOR_Q4_0, bound_q4_0_at);
    check_round_trip(TENSOR_Q4_K, bound_q4_K);
    check_round_trip(TENSOR_Q5_K, bound_q5_K);
    check_round_trip(TENSOR_Q6_K, bound_q6_K);
    float x[32] = {1.0f, -2.5f}, y[32];
    assert_int_equal(quant_quantize_row(TENSOR_F32, x, y, 32, NULL), SEM_OK);
    assert_memory_equal(x, y, sizeof x);
}

/* ================================================================ activations */

static void q8_0_activation_rounding_by_hand(void **state)
{
    (void)state;
    int8_t q[32];
    float x[32] = {0};
    /* amax 127 -> id = 1, so q = round-half-even(x) and d = 1 */
    x[0] = 127.0f;
    x[1] = -63.5f; /* tie -> -64 (even) */
    x[2] = 0.5f;   /* tie -> 0 */
    x[3] = 1.5f;   /* tie -> 2 */
    x[4] = 2.5f;   /* tie -> 2 */
    x[5] = -0.5f;  /* tie -> -0 = 0 */
    x[6] = 3.49f;
    x[7] = -126.6f;
    assert_int_equal(quant_q8_0_block(x, q), 0x3c00);
    const int8_t want[8] = {127, -64, 0, 2, 2, 0, 3, -127};
    assert_memory_equal(q, want, 8);
    for (int j = 8; j < 32; j++)
        assert_int_equal(q[j], 0);

    /* amax 254: d = 2 (f16 0x4000), id = 0.5; 3 -> 1.5 -> 2, 5 -> 2.5 -> 2 */
    memset(x, 0, sizeof x);
    x[0] = -254.0f;
    x[1] = 3.0f;
    x[2] = 5.0f;
    x[3] = 7.0f; /* 3.5 -> 4 */
    assert_int_equal(quant_q8_0_block(x, q), 0x4000);
    assert_int_equal(q[0], -127);
    assert_int_equal(q[1], 2);
    assert_int_equal(q[2], 2);
    assert_int_equal(q[3], 4);

    /* all zero: d = 0, quants 0 */
    memset(x, 0, sizeof x);
    memset(q, 7, sizeof q);
    assert_int_equal(quant_q8_0_block(x, q), 0);
    for (int j = 0; j < 32; j++)
        assert_int_equal(q[j], 0);

    /* d is amax/127 rounded to f16 (0.1/127 is not representable) */
    x[0] = 0.1f;
    assert_int_equal(quant_q8_0_block(x, q), fp16_from_f32(0.1f / 127.0f));
    assert_int_equal(q[0], 127);
}

static void q8_K_activation_rounding_by_hand(void **state)
{
    (void)state;
    float x[256] = {0};
    int8_t q[256];
    int16_t bs[16];
    /* The first value of largest magnitude is +127, so iscale = -1: quants
     * are the negated values, rounded half to even; d = 1/iscale = -1. */
    x[10] = 127.0f;
    x[20] = -127.0f; /* same magnitude but later: not the max */
    x[0] = 0.5f;     /* -0.5 -> 0 */
    x[1] = 1.5f;     /* -1.5 -> -2 */
    x[2] = -2.5f;    /* 2.5 -> 2 */
    x[16] = 3.0f;    /* -3 */
    x[255] = -100.4f; /* 100.4 -> 100 */
    assert_true(quant_q8_K_block(x, q, bs) == -1.0f);
    assert_int_equal(q[10], -127);
    assert_int_equal(q[20], 127);
    assert_int_equal(q[0], 0);
    assert_int_equal(q[1], -2);
    assert_int_equal(q[2], 2);
    assert_int_equal(q[255], 100);
    assert_int_equal(bs[0], 0 - 2 + 2 - 127);  /* values 0..15 */
    assert_int_equal(bs[1], -3 + 127);         /* values 16..31 */
    assert_int_equal(bs[15], 100);

    /* A negative first maximum: iscale = -127/-254 = 0.5, d = 2. */
    memset(x, 0, sizeof x);
    x[3] = -254.0f;
    x[4] = 254.0f;
    x[5] = 1.0f;  /* 0.5 -> 0 */
    x[6] = 3.0f;  /* 1.5 -> 2 */
    assert_true(quant_q8_K_block(x, q, bs) == 2.0f);
    assert_int_equal(q[3], -127);
    assert_int_equal(q[4], 127);
    assert_int_equal(q[5], 0);
    assert_int_equal(q[6], 2);
    assert_int_equal(bs[0], 2);

    /* all zero: d = 0, quants and sums 0 */
    memset(x, 0, sizeof x);
    assert_true(quant_q8_K_block(x, q, bs) == 0.0f);
    for (int j = 0; j < 16; j++)
        assert_int_equal(bs[j], 0);
}

/* Re-derives both rules with rintf (the C library's round-to-nearest-even)
 * on random data, as a second opinion on quant_round_even. */
static void activation_rules_agree_with_rintf(void **state)
{
    (void)state;
    uint64_t rng = 99;
    float x[256];
    for (int rep = 0; rep < 2000; rep++) {
        random_row(&rng, x, 256, rep % 3 ? 1.0f : 1e-3f);
        if (rep % 5 == 0) /* plant exact ties */
            for (int j = 0; j < 256; j += 7)
                x[j] = (float)(j % 9) + 0.5f;
        int8_t q[256], want[256];
        int16_t bs[16];
        for (int b = 0; b < 8; b++) {
            const float *xb = x + 32 * b;
            float amax = 0.0f;
            for (int j = 0; j < 32; j++)
                amax = fmaxf(amax, fabsf(xb[j]));
            float id = amax != 0.0f ? 127.0f / amax : 0.0f;
            for (int j = 0; j < 32; j++) {
                volatile float v = xb[j] * id;
                want[j] = (int8_t)rintf(v);
            }
            assert_int_equal(quant_q8_0_block(xb, q), fp16_from_f32(amax / 127.0f));
            assert_memory_equal(q, want, 32);
        }
        float max = 0.0f, amax = 0.0f;
        for (int j = 0; j < 256; j++)
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        float iscale = -127.0f / max;
        for (int j = 0; j < 256; j++) {
            volatile float v = iscale * x[j];
            float r = rintf(v);
            want[j] = (int8_t)(r > 127.0f ? 127.0f : r);
        }
        assert_true(quant_q8_K_block(x, q, bs) == 1.0f / iscale);
        assert_memory_equal(q, want, 256);
    }
}

static void row_writers_lay_out_blocks(void **state)
{
    (void)state;
    float x[64];
    for (int i = 0; i < 64; i++)
        x[i] = (float)(i - 32) * 0.25f;
    uint8_t q8[2 * QUANT_Q8_0_BYTES];
    quant_q8_0_row(x, q8, 64);
    int8_t q[32];
    uint16_t d1 = quant_q8_0_block(x + 32, q);
    assert_int_equal(q8[34] | (q8[35] << 8), d1);
    assert_memory_equal(q8 + 36, q, 32);
    float y[64];
    deq(TENSOR_Q8_0, q8, y, 64);
    for (int i = 0; i < 64; i++)
        assert_true(fabsf(y[i] - x[i]) <= 0.07f);

    float xk[512];
    for (int i = 0; i < 512; i++)
        xk[i] = sinf((float)i);
    quant_block_q8_K kb[2];
    quant_q8_K_row(xk, kb, 512);
    int8_t qk[256];
    int16_t bs[16];
    assert_true(kb[1].d == quant_q8_K_block(xk + 256, qk, bs));
    assert_memory_equal(kb[1].qs, qk, 256);
    assert_memory_equal(kb[1].bsums, bs, sizeof bs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(float_types_decode_their_bits),
        cmocka_unit_test(q8_0_is_scale_times_int8),
        cmocka_unit_test(q4_0_low_nibbles_first_then_high),
        cmocka_unit_test(q4_K_six_bit_scales_and_nibble_order),
        cmocka_unit_test(q5_K_adds_the_fifth_bit_from_qh),
        cmocka_unit_test(q6_K_quants_scales_and_offset),
        cmocka_unit_test(bad_types_and_lengths_are_refused),
        cmocka_unit_test(quantize_then_dequantize_stays_within_a_step),
        cmocka_unit_test(q8_0_activation_rounding_by_hand),
        cmocka_unit_test(q8_K_activation_rounding_by_hand),
        cmocka_unit_test(activation_rules_agree_with_rintf),
        cmocka_unit_test(row_writers_lay_out_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
