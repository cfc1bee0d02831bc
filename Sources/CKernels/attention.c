#include "attention.h"
#include "variants.h"
#include "math_kernels.h"
#include "vector_math.h"

#include <immintrin.h>

/* Queries handled together: their accumulators are independent chains, so the FMAs overlap. */
#define QUERY_BLOCK 4

size_t oe_attention_scratch_size(size_t keys, size_t size) {
    size_t padded = (keys + LANES - 1) / LANES * LANES;
    return size * padded + QUERY_BLOCK * padded + QUERY_BLOCK * size;
}

/* `nq` (QUERY_BLOCK or 1, a constant after inlining) queries starting at q: scores against the transposed keys,
   softmax, weighted sum of values. */
static inline __attribute__((always_inline)) void attend_block(const int nq, const float *q, const float *kt, const float *v, float *out,
                                size_t keys, size_t padded, size_t size, size_t stride, size_t out_stride,
                                float scale, float *scores) {
    for (size_t j0 = 0; j0 < padded; j0 += LANES) {
        float acc[QUERY_BLOCK][LANES] = {{0}};
        for (size_t d = 0; d < size; d++) {
            const float *row = kt + d * padded + j0;
            for (int r = 0; r < nq; r++) {
                const float a = q[r * stride + d] * scale;
                for (int l = 0; l < LANES; l++) acc[r][l] += a * row[l];
            }
        }
        for (int r = 0; r < nq; r++)
            for (int l = 0; l < LANES; l++) scores[r * padded + j0 + l] = acc[r][l];
    }
    for (int r = 0; r < nq; r++) oe_softmax_rows(scores + r * padded, 1, keys, keys);
    size_t d0 = 0;
    for (; d0 + LANES <= size; d0 += LANES) {
        float acc[QUERY_BLOCK][LANES] = {{0}};
        for (size_t j = 0; j < keys; j++) {
            const float *vj = v + j * stride + d0;
            for (int r = 0; r < nq; r++) {
                const float w = scores[r * padded + j];
                for (int l = 0; l < LANES; l++) acc[r][l] += w * vj[l];
            }
        }
        for (int r = 0; r < nq; r++)
            for (int l = 0; l < LANES; l++) out[r * out_stride + d0 + l] = acc[r][l];
    }
    for (int r = 0; r < nq; r++)
        for (size_t d = d0; d < size; d++) {
            float acc = 0;
            for (size_t j = 0; j < keys; j++) acc += scores[r * padded + j] * v[j * stride + d];
            out[r * out_stride + d] = acc;
        }
}

/* Keys transposed (size × padded keys, zeros past the end), so scores and weighted sums are both loops over
   contiguous data, LANES accumulators at a time, which stay in registers. */
static inline __attribute__((always_inline)) void transpose_keys(const float *k, float *kt, size_t keys,
                                                                 size_t padded, size_t size, size_t stride) {
    for (size_t d = 0; d < size; d++) {
        for (size_t j = 0; j < keys; j++) kt[d * padded + j] = k[j * stride + d];
        for (size_t j = keys; j < padded; j++) kt[d * padded + j] = 0;
    }
}

OE_BODY void attention_generic(const float *q, const float *k, const float *v, float *out, size_t queries,
                               size_t keys, size_t size, size_t stride, size_t out_stride, float scale,
                               float *scratch) {
    size_t padded = (keys + LANES - 1) / LANES * LANES;
    float *kt = scratch, *scores = scratch + size * padded;
    transpose_keys(k, kt, keys, padded, size, stride);
    size_t i = 0;
    for (; i + QUERY_BLOCK <= queries; i += QUERY_BLOCK)
        attend_block(QUERY_BLOCK, q + i * stride, kt, v, out + i * out_stride, keys, padded, size, stride,
                     out_stride, scale, scores);
    for (; i < queries; i++)
        attend_block(1, q + i * stride, kt, v, out + i * out_stride, keys, padded, size, stride, out_stride, scale,
                     scores);
}

/* out[r][0 .. 16·blocks) = Σ_i a[r·lda + i] · b[i·ldb + 0 .. 16·blocks) for the nq rows r (nq and blocks constants
   after inlining): nq × blocks independent FMA chains, one per output vector, each summed in order of i. */
__attribute__((target("avx512f")))
static inline __attribute__((always_inline)) void rows_times_panel_avx512(
        const int nq, const int blocks, const float *a, size_t lda, const float *b, size_t ldb, size_t inner,
        float *out, size_t ldo) {
    __m512 acc[QUERY_BLOCK][2];
    for (int r = 0; r < nq; r++)
        for (int l = 0; l < blocks; l++) acc[r][l] = _mm512_setzero_ps();
    for (size_t i = 0; i < inner; i++) {
        __m512 row[2];
        for (int l = 0; l < blocks; l++) row[l] = _mm512_loadu_ps(b + i * ldb + (size_t)l * LANES);
        for (int r = 0; r < nq; r++) {
            __m512 s = _mm512_set1_ps(a[(size_t)r * lda + i]);
            for (int l = 0; l < blocks; l++) acc[r][l] = _mm512_fmadd_ps(s, row[l], acc[r][l]);
        }
    }
    for (int r = 0; r < nq; r++)
        for (int l = 0; l < blocks; l++) _mm512_storeu_ps(out + (size_t)r * ldo + (size_t)l * LANES, acc[r][l]);
}

/* The same arithmetic as attend_block (each output lane one chain of FMAs in the same order) with two lane
   blocks per step: QUERY_BLOCK queries × 32 lanes are 8 independent chains, enough to keep both FMA units busy,
   and 2 loads + QUERY_BLOCK broadcasts feed 8 FMAs. The compiler does not find this on its own. */
__attribute__((target("avx512f")))
static inline __attribute__((always_inline)) void attend_block_avx512(
        const int nq, const float *q, const float *kt, const float *v, float *out, size_t keys, size_t padded,
        size_t size, size_t stride, size_t out_stride, float scale, float *scores, float *scaled) {
    for (int r = 0; r < nq; r++)
        for (size_t d = 0; d < size; d++) scaled[r * size + d] = q[r * stride + d] * scale;
    size_t j0 = 0;
    for (; j0 + 2 * LANES <= padded; j0 += 2 * LANES)
        rows_times_panel_avx512(nq, 2, scaled, size, kt + j0, padded, size, scores + j0, padded);
    if (j0 < padded)
        rows_times_panel_avx512(nq, 1, scaled, size, kt + j0, padded, size, scores + j0, padded);
    for (int r = 0; r < nq; r++) oe_softmax_rows(scores + r * padded, 1, keys, keys);
    size_t d0 = 0;
    for (; d0 + 2 * LANES <= size; d0 += 2 * LANES)
        rows_times_panel_avx512(nq, 2, scores, padded, v + d0, stride, keys, out + d0, out_stride);
    if (d0 + LANES <= size) {
        rows_times_panel_avx512(nq, 1, scores, padded, v + d0, stride, keys, out + d0, out_stride);
        d0 += LANES;
    }
    for (int r = 0; r < nq; r++)
        for (size_t d = d0; d < size; d++) {
            float acc = 0;
            for (size_t j = 0; j < keys; j++) acc = fmaf(scores[r * padded + j], v[j * stride + d], acc);
            out[r * out_stride + d] = acc;
        }
}

__attribute__((target("avx512f")))
static void attention_avx512(const float *q, const float *k, const float *v, float *out, size_t queries,
                             size_t keys, size_t size, size_t stride, size_t out_stride, float scale,
                             float *scratch) {
    size_t padded = (keys + LANES - 1) / LANES * LANES;
    float *kt = scratch, *scores = scratch + size * padded, *scaled = scores + QUERY_BLOCK * padded;
    transpose_keys(k, kt, keys, padded, size, stride);
    size_t i = 0;
    for (; i + QUERY_BLOCK <= queries; i += QUERY_BLOCK)
        attend_block_avx512(QUERY_BLOCK, q + i * stride, kt, v, out + i * out_stride, keys, padded, size, stride,
                            out_stride, scale, scores, scaled);
    for (; i < queries; i++)
        attend_block_avx512(1, q + i * stride, kt, v, out + i * out_stride, keys, padded, size, stride,
                            out_stride, scale, scores, scaled);
}

OE_VOID_VARIANTS_WITH_AVX512(oe_attention, attention_avx512, attention_generic,
                             (const float *q, const float *k, const float *v, float *out, size_t queries, size_t keys,
                              size_t size, size_t stride, size_t out_stride, float scale, float *scratch),
                             (q, k, v, out, queries, keys, size, stride, out_stride, scale, scratch))
