#include "kernels.h"
#include "clones.h"

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KERNEL OE_CLONES_AVX512_AVX2

/* Reductions keep LANES independent partial results (summed in a fixed order at the end), so the compiler
   vectorises them without reassociating, and a row's result never depends on the rows around it. */
#define LANES 16

static inline __attribute__((always_inline)) float clamp(float x, float lo, float hi) {
    x = x < lo ? lo : x;
    return x > hi ? hi : x;
}

/* exp(x): Cody-Waite reduction to |r| <= ln2/2, degree-7 Taylor polynomial, 2^n built in the exponent field.
   Relative error below 2e-7 on [-87, 88]. */
static inline __attribute__((always_inline)) float exp_approx(float x) {
    x = clamp(x, -87.3f, 88.3f);
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer held in the low bits */
    float shifted = x * 1.44269504088896341f + magic;
    float n = shifted - magic;
    float r = (x - n * 0.693145751953125f) - n * 1.42860682030941723e-6f;
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits;
    memcpy(&bits, &shifted, sizeof bits);
    int32_t exponent = (bits - 0x4B400000 + 127) << 23;
    float scale;
    memcpy(&scale, &exponent, sizeof scale);
    return p * scale;
}

/* erf(x): odd rational approximation on [-4, 4] (erf is +-1 in float beyond), absolute error below 5e-7. */
static inline __attribute__((always_inline)) float erf_approx(float x) {
    float c = clamp(x, -4.0f, 4.0f);
    float s = c * c;
    float num = -2.72614225801306e-10f;
    num = num * s + 2.77068142495902e-08f;
    num = num * s - 2.10102402082508e-06f;
    num = num * s - 5.69250639462346e-05f;
    num = num * s - 7.34990630326855e-04f;
    num = num * s - 2.95459980854025e-03f;
    num = num * s - 1.60960333262415e-02f;
    float den = -1.45660718464996e-05f;
    den = den * s - 2.13374055278905e-04f;
    den = den * s - 1.68282697438203e-03f;
    den = den * s - 7.37332916720468e-03f;
    den = den * s - 1.42647390514189e-02f;
    return c * num / den;
}

KERNEL void oe_gelu(float *x, size_t count) {
    for (size_t i = 0; i < count; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + erf_approx(v * 0.70710678118654752f));
    }
}

static inline __attribute__((always_inline)) float row_max(const float *p, size_t n) {
    float lanes[LANES];
    for (int l = 0; l < LANES; l++) lanes[l] = -INFINITY;
    size_t j = 0;
    for (; j + LANES <= n; j += LANES)
        for (int l = 0; l < LANES; l++) lanes[l] = p[j + l] > lanes[l] ? p[j + l] : lanes[l];
    float m = -INFINITY;
    for (int l = 0; l < LANES; l++) m = lanes[l] > m ? lanes[l] : m;
    for (; j < n; j++) m = p[j] > m ? p[j] : m;
    return m;
}

static inline __attribute__((always_inline)) float row_sum(const float *p, size_t n) {
    float lanes[LANES] = {0};
    size_t j = 0;
    for (; j + LANES <= n; j += LANES)
        for (int l = 0; l < LANES; l++) lanes[l] += p[j + l];
    float s = 0;
    for (int l = 0; l < LANES; l++) s += lanes[l];
    for (; j < n; j++) s += p[j];
    return s;
}

KERNEL void oe_softmax_rows(float *x, size_t rows, size_t columns, size_t stride) {
    for (size_t row = 0; row < rows; row++) {
        float *p = x + row * stride;
        float m = row_max(p, columns);
        for (size_t j = 0; j < columns; j++) p[j] = exp_approx(p[j] - m);
        float inverse = 1.0f / row_sum(p, columns);
        for (size_t j = 0; j < columns; j++) p[j] *= inverse;
    }
}

KERNEL void oe_add_layer_norm(float *x, const float *residual, size_t rows, size_t columns,
                              const float *weight, const float *bias, float epsilon) {
    for (size_t row = 0; row < rows; row++) {
        float *p = x + row * columns;
        if (residual) {
            const float *r = residual + row * columns;
            for (size_t j = 0; j < columns; j++) p[j] += r[j];
        }
        float mean = row_sum(p, columns) / (float)columns;
        float lanes[LANES] = {0};
        size_t j = 0;
        for (; j + LANES <= columns; j += LANES)
            for (int l = 0; l < LANES; l++) {
                float d = p[j + l] - mean;
                lanes[l] += d * d;
            }
        float variance = 0;
        for (int l = 0; l < LANES; l++) variance += lanes[l];
        for (; j < columns; j++) variance += (p[j] - mean) * (p[j] - mean);
        float inverse = 1.0f / sqrtf(variance / (float)columns + epsilon);
        for (j = 0; j < columns; j++) p[j] = (p[j] - mean) * inverse * weight[j] + bias[j];
    }
}

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

OE_CLONES_AVX2
static void attention_portable(const float *q, const float *k, const float *v, float *out, size_t queries,
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

void oe_attention(const float *q, const float *k, const float *v, float *out, size_t queries, size_t keys,
                  size_t size, size_t stride, size_t out_stride, float scale, float *scratch) {
    if (__builtin_cpu_supports("avx512f"))
        attention_avx512(q, k, v, out, queries, keys, size, stride, out_stride, scale, scratch);
    else
        attention_portable(q, k, v, out, queries, keys, size, stride, out_stride, scale, scratch);
}

/* Channels per register block of the depthwise convolution: 4 AVX-512 registers of accumulators. */
#define DEPTHWISE_BLOCK 64

/* The depthwise convolution works on one output row at a time, from pointers to the input rows its window covers
   (`rows[ky]` for ky in [ky0, ky1); the others are padding), so that a caller may keep only those rows. */

static inline __attribute__((always_inline)) void depthwise_block(const int n, const float *const *rows,
        size_t ky0, size_t ky1, ptrdiff_t x0, size_t kx0, size_t kx1, size_t c, size_t channels, const float *weights,
        const float *bias, size_t kernel, float *o, int relu6) {
    float acc[DEPTHWISE_BLOCK];
    for (int l = 0; l < n; l++) acc[l] = bias[l];
    for (size_t ky = ky0; ky < ky1; ky++)
        for (size_t kx = kx0; kx < kx1; kx++) {
            const float *x = rows[ky] + (size_t)(x0 + (ptrdiff_t)kx) * channels + c;
            const float *w = weights + (ky * kernel + kx) * channels;
            for (int l = 0; l < n; l++) acc[l] += x[l] * w[l];
        }
    for (int l = 0; l < n; l++) o[l] = relu6 ? clamp(acc[l], 0.0f, 6.0f) : acc[l];
}

/* Output pixels [ox_begin, ox_end) of a row, one pixel at a time (any position: taps outside are skipped). */
static inline __attribute__((always_inline)) void depthwise_pixels(
        const float *const *rows, size_t ky0, size_t ky1, size_t width, size_t channels, const float *weights,
        const float *bias, size_t kernel, size_t stride, size_t pad_left, float *out_row, size_t ox_begin,
        size_t ox_end, int relu6) {
    for (size_t ox = ox_begin; ox < ox_end; ox++) {
        ptrdiff_t x0 = (ptrdiff_t)(ox * stride) - (ptrdiff_t)pad_left;
        size_t kx0 = x0 < 0 ? (size_t)(-x0) : 0;
        size_t kx1 = (ptrdiff_t)width - x0 < (ptrdiff_t)kernel ? (size_t)((ptrdiff_t)width - x0) : kernel;
        float *o = out_row + ox * channels;
        size_t c = 0;
        for (; c + DEPTHWISE_BLOCK <= channels; c += DEPTHWISE_BLOCK)
            depthwise_block(DEPTHWISE_BLOCK, rows, ky0, ky1, x0, kx0, kx1, c, channels, weights + c, bias + c,
                            kernel, o + c, relu6);
        for (; c + 16 <= channels; c += 16)
            depthwise_block(16, rows, ky0, ky1, x0, kx0, kx1, c, channels, weights + c, bias + c, kernel, o + c,
                            relu6);
        if (c < channels)
            depthwise_block((int)(channels - c), rows, ky0, ky1, x0, kx0, kx1, c, channels, weights + c, bias + c,
                            kernel, o + c, relu6);
    }
}

OE_CLONES_AVX2
static void depthwise_row_portable(const float *const *rows, size_t ky0, size_t ky1, size_t width, size_t channels,
                                   const float *weights, const float *bias, size_t kernel, size_t stride,
                                   size_t pad_left, float *out_row, size_t out_width, int relu6) {
    depthwise_pixels(rows, ky0, ky1, width, channels, weights, bias, kernel, stride, pad_left, out_row, 0, out_width,
                     relu6);
}

/* Pixels per register tile of the AVX-512 depthwise convolution: one 16-channel weight vector feeds 8 FMAs. */
#define DEPTHWISE_TILE 8

/* One tile (DEPTHWISE_TILE output pixels × 16 channels, from channel `c`) for a kernel size K and stride S known
   at compile time: per kernel row, each input pixel is loaded once and feeds every output pixel whose window
   covers it, with the row's K weight vectors held in registers. Loads, not FMAs, limit the per-tap tile on CPUs
   that load one 512-bit vector per cycle; this needs (S·(TILE−1) + K) + K loads per TILE·K FMAs instead of
   TILE·K + K. Input pixels i of the row (counted from the tile's first window's left edge, `x0`) outside
   [lo, hi) are padding and skipped, so edge tiles need no padded copy. Each output still receives its taps in
   row-major order, skipping the padding, as the per-pixel loop does: the sums are the same. */
__attribute__((target("avx512f")))
static inline __attribute__((always_inline)) void depthwise_tile_fixed(
        const int K, const int S, const float *const *rows, size_t ky0, size_t ky1, size_t c, size_t channels,
        const float *weights, __m512 bias, ptrdiff_t x0, int lo, int hi, __m512 acc[DEPTHWISE_TILE]) {
    for (int t = 0; t < DEPTHWISE_TILE; t++) acc[t] = bias;
    for (size_t ky = ky0; ky < ky1; ky++) {
        const float *row = rows[ky] + c;
        __m512 w[5];   /* K ≤ 5 */
#pragma unroll
        for (int kx = 0; kx < K; kx++) w[kx] = _mm512_loadu_ps(weights + (ky * (size_t)K + (size_t)kx) * channels);
#pragma unroll
        for (int i = 0; i < S * (DEPTHWISE_TILE - 1) + K; i++) {
            if (i < lo || i >= hi) continue;
            __m512 x = _mm512_loadu_ps(row + (size_t)(x0 + i) * channels);
#pragma unroll
            for (int kx = 0; kx < K; kx++) {
                int j = i - kx;
                if (j >= 0 && j % S == 0 && j / S < DEPTHWISE_TILE) acc[j / S] = _mm512_fmadd_ps(x, w[kx], acc[j / S]);
            }
        }
    }
}

/* The tile for any kernel size and stride: per tap, one weight load and DEPTHWISE_TILE input loads. */
__attribute__((target("avx512f")))
static inline __attribute__((always_inline)) void depthwise_tile_any(
        size_t kernel, size_t stride, const float *const *rows, size_t ky0, size_t ky1, size_t c, size_t channels,
        const float *weights, __m512 bias, ptrdiff_t x0, int lo, int hi, __m512 acc[DEPTHWISE_TILE]) {
    for (int t = 0; t < DEPTHWISE_TILE; t++) acc[t] = bias;
    for (size_t ky = ky0; ky < ky1; ky++) {
        const float *row = rows[ky] + c;
        for (size_t kx = 0; kx < kernel; kx++) {
            __m512 w = _mm512_loadu_ps(weights + (ky * kernel + kx) * channels);
            for (int t = 0; t < DEPTHWISE_TILE; t++) {
                int i = t * (int)stride + (int)kx;
                if (i >= lo && i < hi)
                    acc[t] = _mm512_fmadd_ps(_mm512_loadu_ps(row + (size_t)(x0 + i) * channels), w, acc[t]);
            }
        }
    }
}

/* The same sums (bias, then one FMA per tap in row-major tap order) as depthwise_block, but DEPTHWISE_TILE
   adjacent output pixels × 16 channels at a time: each weight load serves 8 pixels instead of 1, which is what
   limited the per-pixel loop (two loads per FMA). Every pixel of the row takes the tiles, edges included (the
   small maps of late layers are mostly edge), the last tile storing only the pixels the row has; channel
   counts that are not a multiple of 16 go pixel by pixel. */
__attribute__((target("avx512f")))
static void depthwise_row_avx512(const float *const *rows, size_t ky0, size_t ky1, size_t width, size_t channels,
                                 const float *weights, const float *bias, size_t kernel, size_t stride,
                                 size_t pad_left, float *out_row, size_t out_width, int relu6) {
    if (channels % 16 != 0) {
        depthwise_pixels(rows, ky0, ky1, width, channels, weights, bias, kernel, stride, pad_left, out_row, 0,
                         out_width, relu6);
        return;
    }
    const __m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);
    for (size_t ox = 0; ox < out_width; ox += DEPTHWISE_TILE) {
        int count = out_width - ox < DEPTHWISE_TILE ? (int)(out_width - ox) : DEPTHWISE_TILE;
        ptrdiff_t x0 = (ptrdiff_t)(ox * stride) - (ptrdiff_t)pad_left;
        int lo = x0 < 0 ? (int)-x0 : 0;
        int hi = (int)((ptrdiff_t)width - x0);   /* beyond the tile's reach when the tile is inside */
        for (size_t c = 0; c < channels; c += 16) {
            __m512 acc[DEPTHWISE_TILE];
            __m512 b = _mm512_loadu_ps(bias + c);
            const float *w = weights + c;
            if (kernel == 3 && stride == 1)
                depthwise_tile_fixed(3, 1, rows, ky0, ky1, c, channels, w, b, x0, lo, hi, acc);
            else if (kernel == 3 && stride == 2)
                depthwise_tile_fixed(3, 2, rows, ky0, ky1, c, channels, w, b, x0, lo, hi, acc);
            else if (kernel == 5 && stride == 1)
                depthwise_tile_fixed(5, 1, rows, ky0, ky1, c, channels, w, b, x0, lo, hi, acc);
            else if (kernel == 5 && stride == 2)
                depthwise_tile_fixed(5, 2, rows, ky0, ky1, c, channels, w, b, x0, lo, hi, acc);
            else
                depthwise_tile_any(kernel, stride, rows, ky0, ky1, c, channels, w, b, x0, lo, hi, acc);
            for (int t = 0; t < count; t++) {
                __m512 v = relu6 ? _mm512_min_ps(_mm512_max_ps(acc[t], zero), six) : acc[t];
                _mm512_storeu_ps(out_row + (ox + (size_t)t) * channels + c, v);
            }
        }
    }
}

void oe_depthwise_row(const float *const *rows, size_t ky0, size_t ky1, size_t width, size_t channels,
                      const float *weights, const float *bias, size_t kernel, size_t stride, size_t pad_left,
                      float *out_row, size_t out_width, int relu6) {
    if (__builtin_cpu_supports("avx512f"))
        depthwise_row_avx512(rows, ky0, ky1, width, channels, weights, bias, kernel, stride, pad_left, out_row,
                             out_width, relu6);
    else
        depthwise_row_portable(rows, ky0, ky1, width, channels, weights, bias, kernel, stride, pad_left, out_row,
                               out_width, relu6);
}

void oe_depthwise_conv(const float *in, size_t height, size_t width, size_t channels, const float *weights,
                       const float *bias, size_t kernel, size_t stride, size_t pad_top, size_t pad_left, float *out,
                       size_t out_width, size_t row_begin, size_t row_end, int relu6) {
    const float *rows[kernel];
    for (size_t oy = row_begin; oy < row_end; oy++) {
        ptrdiff_t y0 = (ptrdiff_t)(oy * stride) - (ptrdiff_t)pad_top;
        size_t ky0 = y0 < 0 ? (size_t)(-y0) : 0;
        size_t ky1 = (ptrdiff_t)height - y0 < (ptrdiff_t)kernel ? (size_t)((ptrdiff_t)height - y0) : kernel;
        for (size_t ky = ky0; ky < ky1; ky++) rows[ky] = in + (size_t)(y0 + (ptrdiff_t)ky) * width * channels;
        oe_depthwise_row(rows, ky0, ky1, width, channels, weights, bias, kernel, stride, pad_left,
                         out + oy * out_width * channels, out_width, relu6);
    }
}

KERNEL void oe_planes_from_rgb(const uint8_t *rgb, size_t pixels, float mean, float scale, float *out) {
    for (size_t c = 0; c < 3; c++) {
        const uint8_t *source = rgb + c;
        float *plane = out + c * pixels;
        for (size_t i = 0; i < pixels; i++) plane[i] = ((float)source[3 * i] - mean) / scale;
    }
}

KERNEL void oe_add_bias(float *x, size_t rows, size_t columns, const float *bias, int relu6) {
    for (size_t r = 0; r < rows; r++) {
        float *p = x + r * columns;
        if (relu6)
            for (size_t c = 0; c < columns; c++) p[c] = clamp(p[c] + bias[c], 0.0f, 6.0f);
        else
            for (size_t c = 0; c < columns; c++) p[c] += bias[c];
    }
}

KERNEL void oe_add(float *x, const float *y, size_t count) {
    for (size_t i = 0; i < count; i++) x[i] += y[i];
}

/* Pillow's 8-bit resampling arithmetic: sum in integers with 22 fractional bits, round, clip to 0...255. */
static inline __attribute__((always_inline)) uint8_t clip8(int32_t sum) {
    int32_t v = sum >> 22;
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/* Along rows. Output byte j (pixel x, channel c) blends the input bytes (starts[x] + t) · channels + c: on AVX-512,
   16 output bytes at a time, one dword gather per tap (the byte kept, the rest masked off) from a per-byte index
   table and a tap-major per-byte weight table; a row whose gathers would read past the image (they read up to
   `taps` pixels and 3 bytes beyond the row) is copied into zero-padded scratch first. Integer sums, so the order of
   the additions does not change them; 32-bit sums are exact, since the weights are non-negative and add up to
   2^22 (a sum stays below 255 · 2^22 + 2^21). */
__attribute__((target("avx512f")))
static void resample_rows_avx512(const uint8_t *in, size_t in_width, size_t rows, size_t channels, uint8_t *out,
                                 size_t out_width, const int32_t *starts, const int32_t *counts,
                                 const int32_t *weights, size_t taps, int32_t *scratch) {
    size_t out_bytes = out_width * channels, in_bytes = in_width * channels;
    size_t reach = (in_width + taps) * channels + 4;   /* bytes a row's gathers may touch */
    int32_t *index = scratch, *by_tap = index + out_bytes;
    uint8_t *padded = (uint8_t *)(by_tap + taps * out_bytes);
    for (size_t x = 0; x < out_width; x++)
        for (size_t c = 0; c < channels; c++) {
            index[x * channels + c] = starts[x] * (int32_t)channels + (int32_t)c;
            for (size_t t = 0; t < taps; t++)
                by_tap[t * out_bytes + x * channels + c] = (int32_t)t < counts[x] ? weights[x * taps + t] : 0;
        }
    const __m512i half = _mm512_set1_epi32(1 << 21), zero = _mm512_setzero_si512(), top = _mm512_set1_epi32(255);
    const uint8_t *end = in + rows * in_bytes;
    for (size_t y = 0; y < rows; y++) {
        const uint8_t *row = in + y * in_bytes;
        if ((size_t)(end - row) < reach) {
            memcpy(padded, row, in_bytes);
            memset(padded + in_bytes, 0, reach - in_bytes);
            row = padded;
        }
        uint8_t *target = out + y * out_bytes;
        for (size_t j = 0; j < out_bytes; j += 16) {
            __mmask16 mask = out_bytes - j >= 16 ? 0xFFFF : (__mmask16)((1u << (out_bytes - j)) - 1);
            __m512i at = _mm512_maskz_loadu_epi32(mask, index + j), acc = half;
            for (size_t t = 0; t < taps; t++) {
                __m512i v = _mm512_mask_i32gather_epi32(zero, mask, at, row + t * channels, 1);
                v = _mm512_and_si512(v, top);
                acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(v, _mm512_maskz_loadu_epi32(mask, by_tap + t * out_bytes + j)));
            }
            acc = _mm512_min_epi32(_mm512_max_epi32(_mm512_srai_epi32(acc, 22), zero), top);
            _mm512_mask_cvtepi32_storeu_epi8(target + j, mask, acc);
        }
    }
}

OE_CLONES_AVX2
static void resample_rows_portable(const uint8_t *in, size_t in_width, size_t rows, size_t channels, uint8_t *out,
                                   size_t out_width, const int32_t *starts, const int32_t *counts,
                                   const int32_t *weights, size_t taps) {
    for (size_t y = 0; y < rows; y++) {
        const uint8_t *row = in + y * in_width * channels;
        uint8_t *target = out + y * out_width * channels;
        for (size_t x = 0; x < out_width; x++) {
            const int32_t *w = weights + x * taps;
            const uint8_t *source = row + (size_t)starts[x] * channels;
            for (size_t c = 0; c < channels; c++) {
                int32_t sum = 1 << 21;
                for (int32_t t = 0; t < counts[x]; t++) sum += source[(size_t)t * channels + c] * w[t];
                target[x * channels + c] = clip8(sum);
            }
        }
    }
}

void oe_resample_rows_u8(const uint8_t *in, size_t in_width, size_t rows, size_t channels, uint8_t *out,
                         size_t out_width, const int32_t *starts, const int32_t *counts, const int32_t *weights,
                         size_t taps, int32_t *scratch) {
    if (__builtin_cpu_supports("avx512f"))
        resample_rows_avx512(in, in_width, rows, channels, out, out_width, starts, counts, weights, taps, scratch);
    else
        resample_rows_portable(in, in_width, rows, channels, out, out_width, starts, counts, weights, taps);
}

/* Along columns: each input row of the window adds its share to the whole output row at once. */
KERNEL void oe_resample_columns_u8(const uint8_t *in, size_t row_bytes, uint8_t *out, size_t out_rows,
                                   const int32_t *starts, const int32_t *counts, const int32_t *weights,
                                   size_t taps, int32_t *scratch) {
    for (size_t y = 0; y < out_rows; y++) {
        const int32_t *w = weights + y * taps;
        const uint8_t *first = in + (size_t)starts[y] * row_bytes;
        for (size_t x = 0; x < row_bytes; x++) scratch[x] = 1 << 21;  /* 255 · 2^22 + 2^21 fits in 32 bits */
        for (int32_t t = 0; t < counts[y]; t++) {
            const uint8_t *source = first + (size_t)t * row_bytes;
            const int32_t weight = w[t];
            for (size_t x = 0; x < row_bytes; x++) scratch[x] += (int32_t)source[x] * weight;
        }
        uint8_t *target = out + y * row_bytes;
        for (size_t x = 0; x < row_bytes; x++) target[x] = clip8(scratch[x]);
    }
}

KERNEL void oe_resample_sinc(const float *x, size_t count, float *y, size_t out_count, double step, double scale,
                             const float *window, const float *delta, size_t window_length, size_t table) {
    size_t index_step = (size_t)(scale * (double)table);
    for (size_t t = 0; t < out_count; t++) {
        double time = (double)t * step;
        size_t n = (size_t)time;
        double sum = 0;
        /* Left wing: x[n], x[n-1], ... */
        double frac = scale * (time - (double)n);
        double index = frac * (double)table;
        size_t offset = (size_t)index;
        float eta = (float)(index - (double)offset);
        size_t limit = (window_length - offset) / index_step;
        if (limit > n + 1) limit = n + 1;
        for (size_t i = 0; i < limit; i++) {
            size_t at = offset + i * index_step;
            sum += (double)((window[at] + eta * delta[at]) * x[n - i]);
        }
        /* Right wing: x[n+1], x[n+2], ... */
        frac = scale - frac;
        index = frac * (double)table;
        offset = (size_t)index;
        eta = (float)(index - (double)offset);
        limit = (window_length - offset) / index_step;
        if (n + 1 >= count) limit = 0;
        else if (limit > count - n - 1) limit = count - n - 1;
        for (size_t k = 0; k < limit; k++) {
            size_t at = offset + k * index_step;
            sum += (double)((window[at] + eta * delta[at]) * x[n + k + 1]);
        }
        y[t] = (float)(sum * scale);
    }
}

KERNEL void oe_resample_polyphase(const float *padded, size_t out_count, size_t step, size_t phases,
                                  const float *taps, size_t width, float *y) {
    for (size_t t = 0; t < out_count; t++) {
        size_t position = t * step;
        const float *x = padded + position / phases + 1;
        const float *w = taps + (position % phases) * width;
        float lanes[LANES] = {0};
        size_t j = 0;
        for (; j + LANES <= width; j += LANES)
            for (int l = 0; l < LANES; l++) lanes[l] += w[j + l] * x[j + l];
        float sum = 0;
        for (int l = 0; l < LANES; l++) sum += lanes[l];
        for (; j < width; j++) sum += w[j] * x[j];
        y[t] = sum;
    }
}

KERNEL void oe_im2col_time(const float *input, size_t frames, size_t columns, size_t height, size_t width,
                           size_t before, size_t frame_begin, size_t frame_end, float *out) {
    size_t positions = columns - width + 1, k = height * width;
    for (size_t frame = frame_begin; frame < frame_end; frame++)
        for (size_t position = 0; position < positions; position++) {
            float *row = out + ((frame - frame_begin) * positions + position) * k;
            for (size_t dy = 0; dy < height; dy++) {
                ptrdiff_t source = (ptrdiff_t)(frame + dy) - (ptrdiff_t)before;
                float *target = row + dy * width;
                if (source < 0 || source >= (ptrdiff_t)frames) {
                    for (size_t dx = 0; dx < width; dx++) target[dx] = 0;
                } else {
                    const float *from = input + (size_t)source * columns + position;
                    for (size_t dx = 0; dx < width; dx++) target[dx] = from[dx];
                }
            }
        }
}

KERNEL void oe_im2col_time_columns(const float *transposed, size_t frames, size_t columns, size_t height,
                                   size_t frame_begin, size_t frame_end, float *out) {
    size_t padded = frames + height - 1;
    for (size_t frame = frame_begin; frame < frame_end; frame++)
        for (size_t column = 0; column < columns; column++)
            memcpy(out + ((frame - frame_begin) * columns + column) * height, transposed + column * padded + frame,
                   height * sizeof(float));
}

KERNEL void oe_relu_affine(float *x, size_t rows, size_t columns, const float *scale, const float *shift) {
    for (size_t r = 0; r < rows; r++) {
        float *p = x + r * columns;
        for (size_t c = 0; c < columns; c++) p[c] = (p[c] > 0 ? p[c] : 0) * scale[c] + shift[c];
    }
}

KERNEL void oe_max_groups(const float *x, size_t groups, size_t rows_per_group, size_t columns, float *out) {
    for (size_t g = 0; g < groups; g++) {
        float *o = out + g * columns;
        const float *first = x + g * rows_per_group * columns;
        for (size_t c = 0; c < columns; c++) o[c] = first[c];
        for (size_t r = 1; r < rows_per_group; r++) {
            const float *p = first + r * columns;
            for (size_t c = 0; c < columns; c++) o[c] = p[c] > o[c] ? p[c] : o[c];
        }
    }
}

KERNEL void oe_squared_norms(const float *x, size_t rows, size_t columns, float *out) {
    for (size_t r = 0; r < rows; r++) {
        const float *p = x + r * columns;
        float sum = 0;
        for (size_t c = 0; c < columns; c++) sum += p[c] * p[c];
        out[r] = sum;
    }
}

KERNEL void oe_nearest_centroids(const float *dots, size_t rows, size_t k, const float *centroid_norms,
                                 const float *row_norms, int32_t *index, float *distance) {
    for (size_t r = 0; r < rows; r++) {
        const float *d = dots + r * k;
        float best = centroid_norms[0] - 2 * d[0];
        int32_t at = 0;
        for (size_t j = 1; j < k; j++) {
            const float value = centroid_norms[j] - 2 * d[j];
            if (value < best) { best = value; at = (int32_t)j; }
        }
        index[r] = at;
        const float squared = row_norms[r] + best;
        distance[r] = squared > 0 ? squared : 0;
    }
}

KERNEL void oe_accumulate_rows(const float *x, size_t rows, size_t columns, const int32_t *assignment,
                               double *sums, int64_t *counts) {
    for (size_t r = 0; r < rows; r++) {
        const float *p = x + r * columns;
        double *s = sums + (size_t)assignment[r] * columns;
        for (size_t c = 0; c < columns; c++) s[c] += p[c];
        counts[assignment[r]] += 1;
    }
}

KERNEL void oe_subtract_rows(float *x, size_t rows, size_t columns, const float *centroids, const int32_t *assignment) {
    for (size_t r = 0; r < rows; r++) {
        float *p = x + r * columns;
        const float *c = centroids + (size_t)assignment[r] * columns;
        for (size_t j = 0; j < columns; j++) p[j] -= c[j];
    }
}

/* Squared distance of two rows, in LANES partial sums (vectorised, order fixed). */
static inline __attribute__((always_inline)) float squared_distance(const float *a, const float *b, size_t n) {
    float lanes[LANES] = {0};
    size_t j = 0;
    for (; j + LANES <= n; j += LANES)
        for (int l = 0; l < LANES; l++) {
            float d = a[j + l] - b[j + l];
            lanes[l] += d * d;
        }
    float sum = 0;
    for (int l = 0; l < LANES; l++) sum += lanes[l];
    for (; j < n; j++) sum += (a[j] - b[j]) * (a[j] - b[j]);
    return sum;
}

/* The direct sum of positive squares is exact to a few ulps per term: its bound widens it by 1e-5 (relative). */
#define DIRECT_SLACK 1e-5f

KERNEL size_t oe_bounds_filter(const float *x, size_t rows, size_t columns, const float *centroids, const float *drift,
                               const float *group_drift, size_t groups, const float *half_gap, int exact,
                               int32_t *index, float *upper, float *lower, float *distance, int32_t *pending,
                               size_t capacity, size_t *consumed) {
    size_t count = 0, r = 0;
    for (; r < rows && count < capacity; r++) {
        const int32_t a = index[r];
        if (a < 0) { pending[count++] = (int32_t)r; continue; }
        upper[r] += drift[a];
        float *bounds = lower + r * groups;
        float nearest_other = INFINITY;
        for (size_t g = 0; g < groups; g++) {
            bounds[g] -= group_drift[g];
            nearest_other = bounds[g] < nearest_other ? bounds[g] : nearest_other;
        }
        const float bound = nearest_other > half_gap[a] ? nearest_other : half_gap[a];
        if (!exact && upper[r] <= bound) continue;
        const float squared = squared_distance(x + r * columns, centroids + (size_t)a * columns, columns);
        distance[r] = squared;
        upper[r] = sqrtf(squared * (1 + DIRECT_SLACK));
        if (upper[r] <= bound) continue;
        pending[count++] = (int32_t)r;
    }
    *consumed = r;
    return count;
}

KERNEL float oe_squared_distance(const float *a, const float *b, size_t n) { return squared_distance(a, b, n); }

KERNEL void oe_nearer(const float *x, size_t rows, size_t columns, const float *point, float *nearest) {
    for (size_t r = 0; r < rows; r++) {
        const float squared = squared_distance(x + r * columns, point, columns);
        if (squared < nearest[r]) nearest[r] = squared;
    }
}

KERNEL void oe_gather_rows(const float *x, const float *norms, size_t columns, const int32_t *pending, size_t count,
                           float *out, float *out_norms) {
    for (size_t i = 0; i < count; i++) {
        memcpy(out + i * columns, x + (size_t)pending[i] * columns, columns * sizeof(float));
        out_norms[i] = norms[pending[i]];
    }
}

KERNEL size_t oe_bounds_search(float *dots, const float *gathered, const float *gathered_norms, size_t count,
                               size_t k, size_t columns, size_t groups, const float *centroid_norms,
                               float largest_centroid_norm, float slack, const int32_t *pending, int32_t *index,
                               float *upper, float *lower, float *distance, double *sums, int64_t *counts) {
    const size_t group_size = (k + groups - 1) / groups;
    size_t changed = 0;
    for (size_t i = 0; i < count; i++) {
        /* In place: dots become ‖c‖² − 2x·c (the squared distance less ‖x‖²). The minimum first (in LANES partial
           minima, vectorised), then its first index: ties go to the lower index. */
        float *d = dots + i * k;
        for (size_t j = 0; j < k; j++) d[j] = centroid_norms[j] - 2 * d[j];
        float lanes[LANES];
        for (int l = 0; l < LANES; l++) lanes[l] = INFINITY;
        size_t j = 0;
        for (; j + LANES <= k; j += LANES)
            for (int l = 0; l < LANES; l++) lanes[l] = d[j + l] < lanes[l] ? d[j + l] : lanes[l];
        float best = INFINITY;
        for (int l = 0; l < LANES; l++) best = lanes[l] < best ? lanes[l] : best;
        for (; j < k; j++) best = d[j] < best ? d[j] : best;
        int32_t at = 0;
        while ((size_t)at + 1 < k && !(d[at] <= best)) at++;
        /* ‖x‖² + ‖c‖² − 2x·c rounds with an error that scales with the norms, not with the distance. */
        const float error = slack * (gathered_norms[i] + largest_centroid_norm);
        const float nearest = gathered_norms[i] + best;
        const int32_t r = pending[i], previous = index[r];
        distance[r] = nearest > 0 ? nearest : 0;
        upper[r] = sqrtf((nearest > 0 ? nearest : 0) + error);
        float *bounds = lower + (size_t)r * groups;
        const float own = d[at];
        d[at] = INFINITY; /* the bounds are on the other centroids */
        for (size_t g = 0; g < groups; g++) {
            float other = INFINITY;
            const size_t end = (g + 1) * group_size < k ? (g + 1) * group_size : k;
            for (size_t c = g * group_size; c < end; c++) other = d[c] < other ? d[c] : other;
            const float squared = gathered_norms[i] + other - error;
            bounds[g] = squared > 0 ? sqrtf(squared) : 0;
        }
        d[at] = own;
        if (previous == at) continue;
        index[r] = at;
        changed++;
        if (!sums) continue;
        const float *p = gathered + i * columns;
        double *to = sums + (size_t)at * columns;
        for (size_t c = 0; c < columns; c++) to[c] += p[c];
        counts[at] += 1;
        if (previous < 0) continue;
        double *from = sums + (size_t)previous * columns;
        for (size_t c = 0; c < columns; c++) from[c] -= p[c];
        counts[previous] -= 1;
    }
    return changed;
}

void oe_exp(const float *x, float *y, size_t count) {
    for (size_t i = 0; i < count; i++) y[i] = exp_approx(x[i]);
}

void oe_erf(const float *x, float *y, size_t count) {
    for (size_t i = 0; i < count; i++) y[i] = erf_approx(x[i]);
}

/* A kept score of oe_top_k_rows: its heap is a min-heap on this order, the worst kept at its root. */
typedef struct {
    float score;
    int32_t index;
} scored;

static inline __attribute__((always_inline)) int worse(scored a, scored b) {
    return a.score < b.score || (a.score == b.score && a.index > b.index);
}

static inline __attribute__((always_inline)) void sift_down(scored *heap, size_t count, size_t i) {
    scored moving = heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= count) break;
        if (child + 1 < count && worse(heap[child + 1], heap[child])) child++;
        if (!worse(heap[child], moving)) break;
        heap[i] = heap[child];
        i = child;
    }
    heap[i] = moving;
}

static inline __attribute__((always_inline)) void sift_up(scored *heap, size_t i) {
    scored moving = heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!worse(moving, heap[parent])) break;
        heap[i] = heap[parent];
        i = parent;
    }
    heap[i] = moving;
}

/* The k highest of n scores (k ≤ n), as an unordered heap; `columns` gives their indices (NULL: 0..<n). */
static inline __attribute__((always_inline)) void heap_select(const float *x, const int32_t *columns, size_t n,
                                                              size_t k, scored *heap) {
    for (size_t j = 0; j < k; j++) {
        heap[j] = (scored){x[j], columns ? columns[j] : (int32_t)j};
        sift_up(heap, j);
    }
    for (size_t j = k; j < n; j++) {
        /* A later index loses ties, so only a score above the worst kept enters. */
        if (x[j] > heap[0].score) {
            heap[0] = (scored){x[j], columns ? columns[j] : (int32_t)j};
            sift_down(heap, k, 0);
        }
    }
}

KERNEL void oe_top_k_rows(const float *scores, size_t rows, size_t columns, size_t k, int32_t *top_index,
                          float *top_score) {
    if (k == 0 || k > columns) return;
    /* Lanes: column j belongs to lane j mod lanes. Each lane's maximum is a different score, so at least k
       scores reach the k-th highest lane maximum, and the k best are among those that do (usually a few more
       than k). Four lanes per kept score keep that threshold tight; each lane needs a few columns to be worth it. */
    size_t lanes = ((4 * k + 63) / 64) * 64;
    int filter = columns >= 4 * lanes;
    scored *heap = malloc(k * sizeof(scored));
    float *maxima = malloc(lanes * sizeof(float));
    float *kept = malloc(columns * sizeof(float));
    int32_t *kept_columns = malloc(columns * sizeof(int32_t));
    for (size_t r = 0; r < rows; r++) {
        const float *x = scores + r * columns;
        if (filter) {
            memcpy(maxima, x, lanes * sizeof(float));
            size_t j = lanes;
            for (; j + lanes <= columns; j += lanes)
                for (size_t u = 0; u < lanes; u++) maxima[u] = x[j + u] > maxima[u] ? x[j + u] : maxima[u];
            for (size_t u = 0; j + u < columns; u++) maxima[u] = x[j + u] > maxima[u] ? x[j + u] : maxima[u];
            /* The k-th highest maximum: for 64 lanes without branches (the highest maximum that at least k
               maxima reach), for more through a heap. */
            float threshold = -INFINITY;
            if (lanes == 64) {
                for (size_t i = 0; i < 64; i++) {
                    int reach = 0;
                    for (size_t j = 0; j < 64; j++) reach += maxima[j] >= maxima[i];
                    threshold = (size_t)reach >= k && maxima[i] > threshold ? maxima[i] : threshold;
                }
            } else {
                heap_select(maxima, NULL, lanes, k, heap);
                threshold = heap[0].score;
            }
            size_t count = 0;
            for (j = 0; j + 16 <= columns; j += 16) {
                unsigned mask = 0;
                for (unsigned u = 0; u < 16; u++) mask |= (unsigned)(x[j + u] >= threshold) << u;
                while (mask) {
                    unsigned u = (unsigned)__builtin_ctz(mask);
                    kept[count] = x[j + u];
                    kept_columns[count++] = (int32_t)(j + u);
                    mask &= mask - 1;
                }
            }
            for (; j < columns; j++) {
                if (x[j] >= threshold) {
                    kept[count] = x[j];
                    kept_columns[count++] = (int32_t)j;
                }
            }
            /* Fewer only when scores are NaN, which no comparison keeps: then the plain way. */
            if (count >= k) heap_select(kept, kept_columns, count, k, heap);
            else heap_select(x, NULL, columns, k, heap);
        } else {
            heap_select(x, NULL, columns, k, heap);
        }
        /* Heap sort: the worst goes last each time, leaving the best first. */
        for (size_t n = k; n > 1; n--) {
            scored worst = heap[0];
            heap[0] = heap[n - 1];
            heap[n - 1] = worst;
            sift_down(heap, n - 1, 0);
        }
        for (size_t i = 0; i < k; i++) {
            top_index[r * k + i] = heap[i].index;
            top_score[r * k + i] = heap[i].score;
        }
    }
    free(heap);
    free(maxima);
    free(kept);
    free(kept_columns);
}
