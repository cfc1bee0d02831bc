#ifndef OMNIEMBED_VARIANTS_H
#define OMNIEMBED_VARIANTS_H

#include "dispatch.h"

/* Instruction sets of the variants (the same as the compiler's clones would be built for). */
#define OE_AVX512 __attribute__((target("avx512f")))
#define OE_AVX2 __attribute__((target("avx2")))
/* The body of a kernel, compiled into each variant. */
#define OE_BODY static inline __attribute__((always_inline))

/* The kernel `name` from its always-inline `body`: one copy per instruction set, and `name` picking the one of
   oe_kernels_current(). `params` and `args` are the parenthesised parameter and argument lists. */
#define OE_VARIANTS(ret, name, body, params, args)                  \
    OE_AVX512 static ret name##_avx512 params { return body args; } \
    OE_AVX2 static ret name##_avx2 params { return body args; }     \
    static ret name##_portable params { return body args; }         \
    ret name params {                                               \
        switch (oe_kernels_current()) {                             \
        case OE_KERNELS_AVX512: return name##_avx512 args;          \
        case OE_KERNELS_AVX2: return name##_avx2 args;              \
        default: return name##_portable args;                       \
        }                                                           \
    }

/* The same for a kernel that returns nothing. */
#define OE_VOID_VARIANTS(name, body, params, args)          \
    OE_AVX512 static void name##_avx512 params { body args; } \
    OE_AVX2 static void name##_avx2 params { body args; }     \
    static void name##_portable params { body args; }         \
    void name params {                                        \
        switch (oe_kernels_current()) {                       \
        case OE_KERNELS_AVX512: name##_avx512 args; break;    \
        case OE_KERNELS_AVX2: name##_avx2 args; break;        \
        default: name##_portable args; break;                 \
        }                                                     \
    }

/* A kernel with a hand-written AVX-512 path (the function `avx512`): the generic `body` compiled for AVX2 and
   baseline. */
#define OE_VOID_VARIANTS_WITH_AVX512(name, avx512, body, params, args) \
    OE_AVX2 static void name##_avx2 params { body args; }             \
    static void name##_portable params { body args; }                 \
    void name params {                                                \
        switch (oe_kernels_current()) {                               \
        case OE_KERNELS_AVX512: avx512 args; break;                   \
        case OE_KERNELS_AVX2: name##_avx2 args; break;                \
        default: name##_portable args; break;                         \
        }                                                             \
    }

#endif
