#ifndef OMNIEMBED_DISPATCH_H
#define OMNIEMBED_DISPATCH_H

/* Which instruction set the kernels run on. Each kernel is compiled for AVX-512, for AVX2 and for baseline x86-64;
   the widest the CPU has is used, unless OMNIEMBED_KERNELS (portable, avx2, avx512, auto) asks for a narrower one,
   or a test does through oe_kernels_use: so every path runs on one machine. */
typedef enum { OE_KERNELS_PORTABLE = 0, OE_KERNELS_AVX2 = 1, OE_KERNELS_AVX512 = 2 } oe_kernel_set;

/* The widest set this CPU runs. */
oe_kernel_set oe_kernels_best(void);

/* The set in use: OMNIEMBED_KERNELS (capped at the best) on first use, else the best. */
oe_kernel_set oe_kernels_current(void);

/* Uses `set` (capped at the best) from now on; returns the set in use. */
oe_kernel_set oe_kernels_use(oe_kernel_set set);

/* `name` from OMNIEMBED_KERNELS's words (auto: -1); -2 for a word it does not know. */
int oe_kernels_parse(const char *name);

#endif
