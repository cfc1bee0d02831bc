#include "dispatch.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static _Atomic int current = -1;

oe_kernel_set oe_kernels_best(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return OE_KERNELS_AVX512;
    if (__builtin_cpu_supports("avx2")) return OE_KERNELS_AVX2;
    return OE_KERNELS_PORTABLE;
}

int oe_kernels_parse(const char *name) {
    if (name == NULL || *name == 0 || strcmp(name, "auto") == 0) return -1;
    if (strcmp(name, "portable") == 0) return OE_KERNELS_PORTABLE;
    if (strcmp(name, "avx2") == 0) return OE_KERNELS_AVX2;
    if (strcmp(name, "avx512") == 0) return OE_KERNELS_AVX512;
    return -2;
}

oe_kernel_set oe_kernels_use(oe_kernel_set set) {
    oe_kernel_set best = oe_kernels_best();
    oe_kernel_set chosen = set < best ? set : best;
    atomic_store_explicit(&current, (int)chosen, memory_order_relaxed);
    return chosen;
}

oe_kernel_set oe_kernels_current(void) {
    int set = atomic_load_explicit(&current, memory_order_relaxed);
    if (set >= 0) return (oe_kernel_set)set;
    /* First use: the environment's choice (an unknown word counts as auto; the service refuses it at start). */
    int asked = oe_kernels_parse(getenv("OMNIEMBED_KERNELS"));
    return oe_kernels_use(asked >= 0 ? (oe_kernel_set)asked : oe_kernels_best());
}
