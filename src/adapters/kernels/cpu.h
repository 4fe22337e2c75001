/*
 * cpu.h - which SIMD tier the kernels may use on this CPU.
 *
 * The kernels come in three tiers, chosen once at run time (the binary is
 * built for baseline x86-64 and must run on CPUs without AVX2):
 *   portable  plain C, any CPU
 *   avx2      AVX2 + FMA + F16C
 *   avx512    AVX-512 F + BW + VL + VNNI (integer dot products with
 *             vpdpbusd); AVX512_BF16 is used for BF16 weights when present
 * A tier is usable only when the CPU has every listed feature and the OS
 * saves the vector state (GCC's __builtin_cpu_supports checks both).
 *
 * Forcing a tier (configuration, tests, benchmarks) goes through
 * cpu_isa_parse() or cpu_isa_check(), which refuse a tier this CPU lacks
 * and name the missing features.
 *
 * Threads: every function may be called from any thread; the features are
 * read once per process (pthread_once) and never change after.
 */
#ifndef SEM_CPU_H
#define SEM_CPU_H

#include <stdbool.h>

#include "domain/status.h"

typedef enum cpu_isa { CPU_ISA_PORTABLE, CPU_ISA_AVX2, CPU_ISA_AVX512 } cpu_isa;

#define CPU_ISA_COUNT 3

/* The features the tiers are made of, and one trait of the core that
 * changes which kernel of a tier is faster: avx512_split is set where
 * 512-bit operations issue as two 256-bit halves (AMD Zen 4, family 19h),
 * so that 256-bit code reads weights as fast as 512-bit code. */
typedef struct cpu_features {
    bool avx2, fma, f16c;
    bool avx512f, avx512bw, avx512vl, avx512vnni, avx512bf16;
    bool avx512_split;
} cpu_features;

/* Features of the CPU running this process. */
cpu_features cpu_features_detect(void);

/* The best tier `f` allows (cpu_isa_best() uses the detected features). */
cpu_isa cpu_isa_best_for(const cpu_features *f);
cpu_isa cpu_isa_best(void);

/* "portable", "avx2", "avx512"; "unknown" for a value out of range. */
const char *cpu_isa_name(cpu_isa isa);

/*
 * SEM_OK when `f` has every feature of `isa`; otherwise SEM_EUNSUPPORTED
 * with a detail naming the tier and each missing feature, e.g.
 * "isa avx512 needs avx512vnni, which this CPU lacks; best available: avx2".
 * cpu_isa_check() checks against the detected features.
 */
sem_status cpu_isa_check_for(cpu_isa isa, const cpu_features *f, sem_err *err);
sem_status cpu_isa_check(cpu_isa isa, sem_err *err);

/*
 * Parses "portable", "avx2", "avx512" (or "best") into *out and checks
 * that this CPU can run it. SEM_EINVAL for an unknown name (the detail lists
 * the valid ones), SEM_EUNSUPPORTED when the CPU lacks the tier; *out is
 * left unchanged on failure.
 */
sem_status cpu_isa_parse(const char *name, cpu_isa *out, sem_err *err);

#endif
