#include "attention.h"
#include "math_kernels.h"
#include "packed_gemm_lowp.h"

#include <immintrin.h>
#include <string.h>

/* Queries handled together, as in attention.c. */
#define BF16_QUERY_BLOCK 4

static inline size_t round16(size_t value) { return (value + 15) / 16 * 16; }

/* The operands packed as bf16 pairs (one 32-bit lane each): keys by pairs of dimensions (size/2 × padded keys),
   values by pairs of keys (padded/2 × size), then the block's scores, query pairs and probability pairs. */
size_t oe_attention_bf16_scratch_size(size_t keys, size_t size) {
    size_t padded = round16(keys);
    return size * padded + BF16_QUERY_BLOCK * padded + BF16_QUERY_BLOCK * size / 2 + BF16_QUERY_BLOCK * padded / 2;
}

#define ATT_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

/* `count` floats times `scale` as bfloat16 (nearest even), zeros up to `padded` (a multiple of 2): consecutive
   pairs are the 32-bit lanes vdpbf16ps multiplies. */
ATT_BF16 static inline void to_bf16(const float *in, size_t count, float scale, size_t padded, uint16_t *out) {
    const __m512 times = _mm512_set1_ps(scale);
    size_t i = 0;
    for (; i + 16 <= count; i += 16)
        _mm256_storeu_si256((__m256i *)(out + i), (__m256i)_mm512_cvtneps_pbh(_mm512_mul_ps(_mm512_loadu_ps(in + i), times)));
    if (i < count) {
        __mmask16 rest = (__mmask16)((1u << (count - i)) - 1);
        __m256i last = (__m256i)_mm512_cvtneps_pbh(_mm512_mul_ps(_mm512_maskz_loadu_ps(rest, in + i), times));
        _mm256_mask_storeu_epi16(out + i, rest, last);
        i = count;
    }
    for (; i < padded; i++) out[i] = 0;
}

/* out[r][0 .. 16·blocks) = Σ_i pairs(a[r][i]) · b[i][0 .. 16·blocks) over `inner` pairs: nq × blocks chains. */
ATT_BF16 static inline __attribute__((always_inline)) void pairs_times_panel(
        const int nq, const int blocks, const uint32_t *a, size_t lda, const uint32_t *b, size_t ldb, size_t inner,
        float *out, size_t ldo) {
    __m512 acc[BF16_QUERY_BLOCK][2];
    for (int r = 0; r < nq; r++)
        for (int l = 0; l < blocks; l++) acc[r][l] = _mm512_setzero_ps();
    for (size_t i = 0; i < inner; i++) {
        __m512bh row[2];
        for (int l = 0; l < blocks; l++) row[l] = (__m512bh)_mm512_loadu_si512(b + i * ldb + (size_t)l * 16);
        for (int r = 0; r < nq; r++) {
            __m512bh s = (__m512bh)_mm512_set1_epi32((int)a[(size_t)r * lda + i]);
            for (int l = 0; l < blocks; l++) acc[r][l] = _mm512_dpbf16_ps(acc[r][l], s, row[l]);
        }
    }
    for (int r = 0; r < nq; r++)
        for (int l = 0; l < blocks; l++) _mm512_storeu_ps(out + (size_t)r * ldo + (size_t)l * 16, acc[r][l]);
}

ATT_BF16 static inline __attribute__((always_inline)) void attend_bf16_block(
        const int nq, const float *q, const uint32_t *kp, const uint32_t *vp, float *out, size_t keys, size_t padded,
        size_t size, size_t stride, size_t out_stride, float scale, float *scores, uint32_t *qpairs, uint32_t *ppairs) {
    for (int r = 0; r < nq; r++) to_bf16(q + r * stride, size, scale, size, (uint16_t *)(qpairs + r * size / 2));
    size_t j0 = 0;
    for (; j0 + 32 <= padded; j0 += 32) pairs_times_panel(nq, 2, qpairs, size / 2, kp + j0, padded, size / 2, scores + j0, padded);
    if (j0 < padded) pairs_times_panel(nq, 1, qpairs, size / 2, kp + j0, padded, size / 2, scores + j0, padded);
    for (int r = 0; r < nq; r++) {
        float *p = scores + r * padded;
        oe_softmax_rows(p, 1, keys, keys);
        to_bf16(p, keys, 1.0f, padded, (uint16_t *)(ppairs + r * padded / 2));
    }
    size_t d0 = 0;
    for (; d0 + 32 <= size; d0 += 32) pairs_times_panel(nq, 2, ppairs, padded / 2, vp + d0, size, padded / 2, out + d0, out_stride);
    if (d0 < size) pairs_times_panel(nq, 1, ppairs, padded / 2, vp + d0, size, padded / 2, out + d0, out_stride);
}

ATT_BF16 static void attention_bf16_avx512(const float *q, const float *k, const float *v, float *out, size_t queries,
                                           size_t keys, size_t size, size_t stride, size_t out_stride, float scale,
                                           float *scratch) {
    size_t padded = round16(keys);
    uint32_t *kp = (uint32_t *)scratch, *vp = kp + size / 2 * padded;
    float *scores = (float *)(vp + padded / 2 * size);
    uint32_t *qpairs = (uint32_t *)(scores + BF16_QUERY_BLOCK * padded), *ppairs = qpairs + BF16_QUERY_BLOCK * size / 2;
    /* Keys: each key's row as pairs, stored down its column; values: two keys' rows interleaved element by element. */
    uint32_t row[64];
    const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                                23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    for (size_t j = 0; j < padded; j++) {
        if (j < keys) {
            for (size_t d0 = 0; d0 < size; d0 += 128) {
                size_t part = size - d0 < 128 ? size - d0 : 128;
                to_bf16(k + j * stride + d0, part, 1.0f, part, (uint16_t *)row);
                for (size_t d = 0; d < part / 2; d++) kp[(d0 / 2 + d) * padded + j] = row[d];
            }
        } else {
            for (size_t d = 0; d < size / 2; d++) kp[d * padded + j] = 0;
        }
    }
    for (size_t j = 0; j < padded / 2; j++) {
        const __m512 zero = _mm512_setzero_ps();
        for (size_t d = 0; d < size; d += 16) {
            __m512 even = 2 * j < keys ? _mm512_loadu_ps(v + 2 * j * stride + d) : zero;
            __m512 odd = 2 * j + 1 < keys ? _mm512_loadu_ps(v + (2 * j + 1) * stride + d) : zero;
            __m512i both = (__m512i)_mm512_cvtne2ps_pbh(odd, even);   /* even in the low half, odd in the high */
            _mm512_storeu_si512(vp + j * size + d, _mm512_permutexvar_epi16(interleave, both));
        }
    }
    size_t i = 0;
    for (; i + BF16_QUERY_BLOCK <= queries; i += BF16_QUERY_BLOCK)
        attend_bf16_block(BF16_QUERY_BLOCK, q + i * stride, kp, vp, out + i * out_stride, keys, padded, size, stride,
                          out_stride, scale, scores, qpairs, ppairs);
    for (; i < queries; i++)
        attend_bf16_block(1, q + i * stride, kp, vp, out + i * out_stride, keys, padded, size, stride, out_stride,
                          scale, scores, qpairs, ppairs);
}

void oe_attention_bf16(const float *q, const float *k, const float *v, float *out, size_t queries, size_t keys,
                       size_t size, size_t stride, size_t out_stride, float scale, float *scratch) {
    if (size % 16 == 0 && oe_lowp_native(1) && __builtin_cpu_supports("avx512vl"))
        attention_bf16_avx512(q, k, v, out, queries, keys, size, stride, out_stride, scale, scratch);
    else
        oe_attention(q, k, v, out, queries, keys, size, stride, out_stride, scale, scratch);
}
