#pragma once

/* Function multi-versioning: one clone per instruction set, the loader picks the best for the CPU (ifunc).
   ThreadSanitizer instruments the ifunc resolvers, which the loader runs before the sanitizer's runtime exists
   (a crash at start-up), so under it the kernels are built once, for the baseline, and the explicit
   __builtin_cpu_supports dispatch to the AVX-512 paths still runs. */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define OE_NO_CLONES 1
#endif
#endif

#ifdef OE_NO_CLONES
#define OE_CLONES_AVX512_AVX2
#define OE_CLONES_AVX2
#else
#define OE_CLONES_AVX512_AVX2 __attribute__((target_clones("avx512f", "avx2", "default")))
#define OE_CLONES_AVX2 __attribute__((target_clones("avx2", "default")))
#endif
