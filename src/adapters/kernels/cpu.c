/*
 * cpu.c - run-time detection of the SIMD tiers (see cpu.h).
 */
#include "cpu.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/* XCR0: which register states the operating system saves (AVX needs
 * XMM and YMM; AVX-512 also opmask and both ZMM halves). */
static uint64_t xcr0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

/* CPUID and XGETBV directly (not __builtin_cpu_supports, whose feature
 * names differ between compilers): a feature counts only when the CPU has
 * it and the OS saves its registers. */
static cpu_features detect(void)
{
    cpu_features f;
    memset(&f, 0, sizeof f);
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return f;
    int osxsave = (c >> 27) & 1;
    uint64_t xcr = osxsave ? xcr0() : 0;
    int avx_os = (xcr & 0x6) == 0x6;
    int avx512_os = avx_os && (xcr & 0xE0) == 0xE0;
    int avx = avx_os && ((c >> 28) & 1);
    f.fma = avx && ((c >> 12) & 1);
    f.f16c = avx && ((c >> 29) & 1);
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        f.avx2 = avx && ((b >> 5) & 1);
        f.avx512f = avx512_os && ((b >> 16) & 1);
        f.avx512bw = avx512_os && ((b >> 30) & 1);
        f.avx512vl = avx512_os && ((b >> 31) & 1);
        f.avx512vnni = avx512_os && ((c >> 11) & 1);
    }
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d))
        f.avx512bf16 = avx512_os && ((a >> 5) & 1);
    /* vendor "AuthenticAMD" in EBX EDX ECX of leaf 0; family = base + extended */
    if (__get_cpuid(0, &a, &b, &c, &d) && b == 0x68747541 && d == 0x69746e65 &&
        c == 0x444d4163 && __get_cpuid(1, &a, &b, &c, &d)) {
        unsigned family = ((a >> 8) & 0xf) + ((a >> 20) & 0xff);
        f.avx512_split = f.avx512f && family == 0x19;
    }
#endif
    return f;
}

/* The features are read once per process: CPUID traps to the hypervisor
 * in a VM, and loading an agent's file looked them up once per chunk (on
 * the AMD EPYC VM about 45 us each, 1.8 ms of a 4096-token load). They
 * are written once, before any reader sees them (pthread_once). */
static pthread_once_t detect_once = PTHREAD_ONCE_INIT;
static cpu_features detected;

static void detect_into(void)
{
    detected = detect();
}

cpu_features cpu_features_detect(void)
{
    pthread_once(&detect_once, detect_into);
    return detected;
}

/* A feature a tier needs, with the name used in messages. */
typedef struct feature_req {
    const char *name;
    size_t offset; /* of the bool in cpu_features */
} feature_req;

#define REQ(field) {#field, offsetof(cpu_features, field)}

static const feature_req avx2_reqs[] = {REQ(avx2), REQ(fma), REQ(f16c)};
static const feature_req avx512_reqs[] = {REQ(avx2),     REQ(fma),      REQ(f16c),
                                          REQ(avx512f),  REQ(avx512bw), REQ(avx512vl),
                                          REQ(avx512vnni)};

static bool has(const cpu_features *f, const feature_req *r)
{
    bool v;
    memcpy(&v, (const char *)f + r->offset, sizeof v);
    return v;
}

/* Writes the names of the features of `isa` that `f` lacks into buf,
 * comma separated; returns how many are missing. */
static int missing_features(cpu_isa isa, const cpu_features *f, char *buf, size_t cap)
{
    const feature_req *reqs = NULL;
    size_t n = 0;
    if (isa == CPU_ISA_AVX2) {
        reqs = avx2_reqs;
        n = sizeof avx2_reqs / sizeof avx2_reqs[0];
    } else if (isa == CPU_ISA_AVX512) {
        reqs = avx512_reqs;
        n = sizeof avx512_reqs / sizeof avx512_reqs[0];
    }
    int missing = 0;
    size_t used = 0;
    if (cap)
        buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (has(f, &reqs[i]))
            continue;
        int w = snprintf(buf + used, cap - used, "%s%s", missing ? ", " : "", reqs[i].name);
        if (w > 0 && (size_t)w < cap - used)
            used += (size_t)w;
        missing++;
    }
    return missing;
}

cpu_isa cpu_isa_best_for(const cpu_features *f)
{
    char buf[128];
    if (!missing_features(CPU_ISA_AVX512, f, buf, sizeof buf))
        return CPU_ISA_AVX512;
    if (!missing_features(CPU_ISA_AVX2, f, buf, sizeof buf))
        return CPU_ISA_AVX2;
    return CPU_ISA_PORTABLE;
}

cpu_isa cpu_isa_best(void)
{
    cpu_features f = cpu_features_detect();
    return cpu_isa_best_for(&f);
}

const char *cpu_isa_name(cpu_isa isa)
{
    switch (isa) {
    case CPU_ISA_PORTABLE:
        return "portable";
    case CPU_ISA_AVX2:
        return "avx2";
    case CPU_ISA_AVX512:
        return "avx512";
    }
    return "unknown";
}

sem_status cpu_isa_check_for(cpu_isa isa, const cpu_features *f, sem_err *err)
{
    if ((unsigned)isa >= CPU_ISA_COUNT)
        return sem_err_set(err, SEM_EINVAL, "isa %d is not a kernel tier", (int)isa);
    char buf[128];
    int n = missing_features(isa, f, buf, sizeof buf);
    if (n == 0)
        return SEM_OK;
    return sem_err_set(err, SEM_EUNSUPPORTED,
                       "isa %s needs %s, which this CPU lacks; best available: %s",
                       cpu_isa_name(isa), buf, cpu_isa_name(cpu_isa_best_for(f)));
}

sem_status cpu_isa_check(cpu_isa isa, sem_err *err)
{
    cpu_features f = cpu_features_detect();
    return cpu_isa_check_for(isa, &f, err);
}

sem_status cpu_isa_parse(const char *name, cpu_isa *out, sem_err *err)
{
    if (!name)
        return sem_err_set(err, SEM_EINVAL, "isa name is missing; use portable, avx2, avx512 or best");
    cpu_isa isa;
    if (strcmp(name, "best") == 0) {
        isa = cpu_isa_best();
    } else {
        int i = 0;
        while (i < CPU_ISA_COUNT && strcmp(name, cpu_isa_name((cpu_isa)i)) != 0)
            i++;
        if (i == CPU_ISA_COUNT)
            return sem_err_set(err, SEM_EINVAL,
                               "unknown isa '%s'; use portable, avx2, avx512 or best", name);
        isa = (cpu_isa)i;
    }
    sem_status st = cpu_isa_check(isa, err);
    if (st == SEM_OK)
        *out = isa;
    return st;
}
