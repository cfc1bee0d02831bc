#ifndef OMNIEMBED_PANEL_H
#define OMNIEMBED_PANEL_H

/* What the packed GEMM kernels share (private to CKernels): output columns in panels of 32, two 16-lane vectors. */

#include <immintrin.h>
#include <stddef.h>

/* The real columns of panel `p` of `n` columns. */
static inline size_t oe_panel_columns(size_t n, size_t p) { return n - p * 32 < 32 ? n - p * 32 : 32; }

/* A panel's store masks for its real columns, and its bias (zero past them). */
typedef struct {
    __mmask16 mask[2];
    __m512 bias[2];
} oe_panel_edge;

__attribute__((target("avx512f")))
static inline oe_panel_edge oe_panel_edges(size_t columns, const float *bias) {
    oe_panel_edge edge;
    edge.mask[0] = columns >= 16 ? 0xFFFF : (__mmask16)((1u << columns) - 1);
    edge.mask[1] = columns >= 32 ? 0xFFFF : columns <= 16 ? 0 : (__mmask16)((1u << (columns - 16)) - 1);
    edge.bias[0] = _mm512_maskz_loadu_ps(edge.mask[0], bias);
    edge.bias[1] = _mm512_maskz_loadu_ps(edge.mask[1], bias + 16);
    return edge;
}

/* A row's sums finished on the plain paths: plus the bias, clamped to [0, 6] when `relu6`. */
static inline void oe_finish_row(const float *sums, const float *bias, size_t columns, int relu6, float *out) {
    for (size_t j = 0; j < columns; j++) {
        float v = sums[j] + bias[j];
        out[j] = relu6 ? (v < 0.0f ? 0.0f : v > 6.0f ? 6.0f : v) : v;
    }
}

#endif
