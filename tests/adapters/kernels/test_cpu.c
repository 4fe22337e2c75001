/* Specification of cpu.h (tier detection and forcing) and fp16.h (the
 * half and bfloat16 conversions every kernel relies on). */
#include "../../test_util.h"

#include <math.h>

#include "adapters/kernels/cpu.h"
#include "adapters/kernels/fp16.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* ------------------------------------------------------------ cpu */

static void names_round_trip_through_parse(void **state)
{
    (void)state;
    cpu_isa best = cpu_isa_best();
    for (int i = 0; i <= (int)best; i++) {
        cpu_isa got = CPU_ISA_COUNT;
        sem_err err = {0};
        assert_int_equal(cpu_isa_parse(cpu_isa_name((cpu_isa)i), &got, &err), SEM_OK);
        assert_int_equal(got, i);
    }
    cpu_isa got;
    assert_int_equal(cpu_isa_parse("best", &got, NULL), SEM_OK);
    assert_int_equal(got, best);
    assert_string_equal(cpu_isa_name(CPU_ISA_AVX512), "avx512");
    assert_string_equal(cpu_isa_name((cpu_isa)7), "unknown");
}

static void unknown_names_are_refused_with_the_valid_ones(void **state)
{
    (void)state;
    sem_err err = {0};
    cpu_isa got = CPU_ISA_AVX2;
    assert_int_equal(cpu_isa_parse("sse9", &got, &err), SEM_EINVAL);
    assert_contains(err.detail, "sse9");
    assert_contains(err.detail, "avx512");
    assert_int_equal(got, CPU_ISA_AVX2); /* untouched */
    assert_int_equal(cpu_isa_parse(NULL, &got, &err), SEM_EINVAL);
}

static void a_tier_the_cpu_lacks_is_refused_by_name(void **state)
{
    (void)state;
    cpu_features f = {0};
    f.avx2 = f.fma = f.f16c = true;
    f.avx512f = f.avx512bw = f.avx512vl = true; /* no VNNI */
    assert_int_equal(cpu_isa_best_for(&f), CPU_ISA_AVX2);
    sem_err err = {0};
    assert_int_equal(cpu_isa_check_for(CPU_ISA_AVX512, &f, &err), SEM_EUNSUPPORTED);
    assert_contains(err.detail, "avx512vnni");
    assert_contains(err.detail, "best available: avx2");
    assert_int_equal(cpu_isa_check_for(CPU_ISA_AVX2, &f, NULL), SEM_OK);
    assert_int_equal(cpu_isa_check_for(CPU_ISA_PORTABLE, &f, NULL), SEM_OK);

    cpu_features none = {0};
    assert_int_equal(cpu_isa_best_for(&none), CPU_ISA_PORTABLE);
    assert_int_equal(cpu_isa_check_for(CPU_ISA_AVX2, &none, &err), SEM_EUNSUPPORTED);
    assert_contains(err.detail, "avx2, fma, f16c");
    assert_int_equal(cpu_isa_check_for((cpu_isa)9, &none, &err), SEM_EINVAL);
}

static void the_best_tier_passes_its_own_check(void **state)
{
    (void)state;
    sem_err err = {0};
    assert_int_equal(cpu_isa_check(cpu_isa_best(), &err), SEM_OK);
    cpu_features f = cpu_features_detect();
    if (cpu_isa_best() == CPU_ISA_AVX512)
        assert_true(f.avx512vnni && f.avx512bw && f.avx2);
}

/* ------------------------------------------------------------ fp16 */

static void f16_known_values(void **state)
{
    (void)state;
    assert_int_equal(fp16_from_f32(1.0f), 0x3c00);
    assert_int_equal(fp16_from_f32(-2.0f), 0xc000);
    assert_int_equal(fp16_from_f32(0.0f), 0x0000);
    assert_int_equal(fp16_from_f32(-0.0f), 0x8000);
    assert_int_equal(fp16_from_f32(65504.0f), 0x7bff);
    assert_int_equal(fp16_from_f32(65519.99f), 0x7bff);
    assert_int_equal(fp16_from_f32(65520.0f), 0x7c00); /* tie rounds to even: inf */
    assert_int_equal(fp16_from_f32(1e9f), 0x7c00);
    assert_int_equal(fp16_from_f32(-INFINITY), 0xfc00);
    /* ties to even in the normal range */
    assert_int_equal(fp16_from_f32(1.0f + 0x1p-11f), 0x3c00);
    assert_int_equal(fp16_from_f32(1.0f + 3 * 0x1p-11f), 0x3c02);
    /* subnormals: 2^-24 is the smallest, 2^-25 a tie that goes to zero */
    assert_int_equal(fp16_from_f32(0x1p-24f), 0x0001);
    assert_int_equal(fp16_from_f32(0x1p-25f), 0x0000);
    assert_int_equal(fp16_from_f32(0x1.0002p-25f), 0x0001);
    assert_int_equal(fp16_from_f32(3 * 0x1p-25f), 0x0002);
    assert_int_equal(fp16_from_f32(0x1p-14f), 0x0400);
    assert_int_equal(fp16_from_f32(0x1.ff8p-15f), 0x03ff);
    assert_int_equal(fp16_from_f32(0x1.ffcp-15f), 0x0400); /* a tie, up into the normals */
    uint16_t nan = fp16_from_f32(NAN);
    assert_int_equal(nan & 0x7c00, 0x7c00);
    assert_true((nan & 0x0200) != 0); /* quiet */
    assert_true(isnan(fp16_to_f32(nan)));
    assert_true(fp16_to_f32(0x0001) == 0x1p-24f);
    assert_true(fp16_to_f32(0xfbff) == -65504.0f);
    assert_true(isinf(fp16_to_f32(0x7c00)));
}

static void every_f16_survives_a_round_trip(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = fp16_to_f32((uint16_t)h);
        if (isnan(f))
            continue;
        if (fp16_from_f32(f) != h)
            fail_msg("0x%04x -> %a -> 0x%04x", h, (double)f, fp16_from_f32(f));
    }
}

#if defined(__x86_64__)
__attribute__((target("f16c"))) static uint16_t f16c_from_f32(float f)
{
    return (uint16_t)_cvtss_sh(f, 0);
}
#endif

/* The portable conversion equals F16C's round-to-nearest-even on random
 * bit patterns covering every exponent (what llama.cpp's x86 build uses). */
static void f16_matches_the_hardware_conversion(void **state)
{
    (void)state;
#if defined(__x86_64__)
    if (!cpu_features_detect().f16c)
        skip();
    uint64_t rng = 42;
    for (int i = 0; i < 2000000; i++) {
        uint32_t bits = (uint32_t)test_rand(&rng);
        float f = fp32_from_bits(bits);
        if (isnan(f))
            continue;
        uint16_t want = f16c_from_f32(f);
        if (fp16_from_f32(f) != want)
            fail_msg("%a (0x%08x): got 0x%04x want 0x%04x", (double)f, bits, fp16_from_f32(f), want);
    }
#else
    skip();
#endif
}

static void bf16_rounds_to_nearest_even(void **state)
{
    (void)state;
    assert_int_equal(bf16_from_f32(1.0f), 0x3f80);
    assert_int_equal(bf16_from_f32(fp32_from_bits(0x3f808000u)), 0x3f80); /* tie, even below */
    assert_int_equal(bf16_from_f32(fp32_from_bits(0x3f818000u)), 0x3f82); /* tie, even above */
    assert_int_equal(bf16_from_f32(fp32_from_bits(0x3f808001u)), 0x3f81);
    assert_int_equal(bf16_from_f32(fp32_from_bits(0x7f7fffffu)), 0x7f80); /* FLT_MAX -> inf */
    assert_int_equal(bf16_from_f32(-INFINITY), 0xff80);
    uint16_t nan = bf16_from_f32(fp32_from_bits(0x7f800001u)); /* signalling NaN */
    assert_true(isnan(bf16_to_f32(nan)));
    assert_true(bf16_to_f32(0xc040) == -3.0f);
    for (uint32_t h = 0; h < 65536; h++) {
        float f = bf16_to_f32((uint16_t)h);
        if (!isnan(f))
            assert_int_equal(bf16_from_f32(f), h);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_round_trip_through_parse),
        cmocka_unit_test(unknown_names_are_refused_with_the_valid_ones),
        cmocka_unit_test(a_tier_the_cpu_lacks_is_refused_by_name),
        cmocka_unit_test(the_best_tier_passes_its_own_check),
        cmocka_unit_test(f16_known_values),
        cmocka_unit_test(every_f16_survives_a_round_trip),
        cmocka_unit_test(f16_matches_the_hardware_conversion),
        cmocka_unit_test(bf16_rounds_to_nearest_even),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
