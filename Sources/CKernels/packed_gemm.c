#include "packed_gemm.h"
#include "panel.h"
#include "variants.h"

#include <immintrin.h>

/* y = x · wᵀ + bias with w packed once at load: OpenBLAS packs both operands on every call, which for the few
   rows of a small batch costs more than the multiplication (docs/performance.md, "Packed GEMM"). Layout: panels of OE_PANEL output columns, each K rows of OE_PANEL floats, zero-padded, except that
   a last panel of at most 16 columns is 16 wide (the narrow projections of image models have 16, 40, 80 or 112
   outputs: a 32-wide last panel wasted up to half their work). Every output row is computed alone in the same
   order, so a row's result does not depend on the other rows. */

#define OE_PANEL 32

/* Width of panel p of n columns. */
static inline size_t panel_width(size_t n, size_t p) {
    size_t rest = n - p * OE_PANEL;
    return rest <= OE_PANEL / 2 ? OE_PANEL / 2 : OE_PANEL;
}

size_t oe_packed_size(size_t n, size_t k) {
    return n == 0 ? 0 : (n - 1) / OE_PANEL * OE_PANEL * k + panel_width(n, (n - 1) / OE_PANEL) * k;
}

void oe_pack_weights(const float *w, size_t n, size_t k, float *out) {
    size_t panels = (n + OE_PANEL - 1) / OE_PANEL;
    for (size_t p = 0; p < panels; p++) {
        size_t width = panel_width(n, p);
        for (size_t kk = 0; kk < k; kk++)
            for (size_t j = 0; j < width; j++) {
                size_t column = p * OE_PANEL + j;
                out[p * k * OE_PANEL + kk * width + j] = column < n ? w[column * k + kk] : 0.0f;
            }
    }
}

/* R rows (8, or 1 for the rest) × B vectors of 16 columns of one panel (B · 16 wide; R and B constants after
   inlining): one FMA chain per output vector, summed in order of K, then the bias, ReLU6 when asked, and stores
   masked to the panel's real columns. 8 × 2 is 16 registers of accumulators fed by 2 loads and 8 broadcasts. */
__attribute__((target("avx512f")))
static inline __attribute__((always_inline)) void panel_rows_avx512(
        const int R, const int B, const float *x, size_t k, const float *panel, const __m512 bias[2],
        const __mmask16 mask[2], float *y, size_t ldy, int relu6) {
    __m512 acc[8][2];
    for (int r = 0; r < R; r++)
        for (int l = 0; l < B; l++) acc[r][l] = _mm512_setzero_ps();
    for (size_t kk = 0; kk < k; kk++) {
        __m512 w[2];
        for (int l = 0; l < B; l++) w[l] = _mm512_loadu_ps(panel + (kk * (size_t)B + (size_t)l) * 16);
        for (int r = 0; r < R; r++) {
            __m512 a = _mm512_set1_ps(x[(size_t)r * k + kk]);
            for (int l = 0; l < B; l++) acc[r][l] = _mm512_fmadd_ps(a, w[l], acc[r][l]);
        }
    }
    const __m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);
    for (int r = 0; r < R; r++)
        for (int l = 0; l < B; l++) {
            __m512 v = _mm512_add_ps(acc[r][l], bias[l]);
            if (relu6) v = _mm512_min_ps(_mm512_max_ps(v, zero), six);
            _mm512_mask_storeu_ps(y + (size_t)r * ldy + (size_t)l * 16, mask[l], v);
        }
}

/* AVX-512: per panel, 8 rows at a time, then the rest one by one; a 16-wide last panel with one vector per row. */
__attribute__((target("avx512f")))
static void packed_linear_avx512_block(const float *x, size_t m, size_t k, const float *packed, size_t n,
                                       const float *bias, float *y, size_t ldy, int relu6) {
    size_t panels = (n + OE_PANEL - 1) / OE_PANEL;
    for (size_t p = 0; p < panels; p++) {
        const float *panel = packed + p * k * OE_PANEL;
        const oe_panel_edge e = oe_panel_edges(oe_panel_columns(n, p), bias + p * OE_PANEL);
        float *out = y + p * OE_PANEL;
        size_t row = 0;
        if (panel_width(n, p) == OE_PANEL) {
            for (; row + 8 <= m; row += 8) panel_rows_avx512(8, 2, x + row * k, k, panel, e.bias, e.mask, out + row * ldy, ldy, relu6);
            for (; row < m; row++) panel_rows_avx512(1, 2, x + row * k, k, panel, e.bias, e.mask, out + row * ldy, ldy, relu6);
        } else {
            for (; row + 8 <= m; row += 8) panel_rows_avx512(8, 1, x + row * k, k, panel, e.bias, e.mask, out + row * ldy, ldy, relu6);
            for (; row < m; row++) panel_rows_avx512(1, 1, x + row * k, k, panel, e.bias, e.mask, out + row * ldy, ldy, relu6);
        }
    }
}

/* Rows in blocks small enough that a block's inputs stay in cache while every panel of the weights passes over
   them. Where this kernel beats OpenBLAS (which re-packs the weights per call) at every row count, it takes any
   number of rows (Linear.packedRowLimit). */
#define OE_ROW_BLOCK 64

__attribute__((target("avx512f")))
static void packed_linear_avx512(const float *x, size_t m, size_t k, const float *packed, size_t n,
                                 const float *bias, float *y, size_t ldy, int relu6) {
    for (size_t row = 0; row < m; row += OE_ROW_BLOCK) {
        size_t rows = m - row < OE_ROW_BLOCK ? m - row : OE_ROW_BLOCK;
        packed_linear_avx512_block(x + row * k, rows, k, packed, n, bias, y + row * ldy, ldy, relu6);
    }
}

/* Other CPUs: the same order of operations in plain loops the compiler vectorises. */
OE_BODY void packed_linear_generic(const float *x, size_t m, size_t k, const float *packed, size_t n,
                                   const float *bias, float *y, size_t ldy, int relu6) {
    size_t panels = (n + OE_PANEL - 1) / OE_PANEL;
    for (size_t p = 0; p < panels; p++) {
        const float *panel = packed + p * k * OE_PANEL;
        size_t columns = oe_panel_columns(n, p);
        size_t width = panel_width(n, p);
        for (size_t row = 0; row < m; row++) {
            float acc[OE_PANEL] = {0};
            const float *xr = x + row * k;
            for (size_t kk = 0; kk < k; kk++) {
                const float a = xr[kk];
                const float *w = panel + kk * width;
                for (size_t j = 0; j < width; j++) acc[j] += a * w[j];
            }
            oe_finish_row(acc, bias + p * OE_PANEL, columns, relu6, y + row * ldy + p * OE_PANEL);
        }
    }
}

OE_VOID_VARIANTS_WITH_AVX512(oe_packed_linear, packed_linear_avx512, packed_linear_generic,
                             (const float *x, size_t m, size_t k, const float *packed, size_t n, const float *bias,
                              float *y, size_t ldy, int relu6),
                             (x, m, k, packed, n, bias, y, ldy, relu6))
