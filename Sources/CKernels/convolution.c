#include "convolution.h"
#include "variants.h"
#include "vector_math.h"

#include <immintrin.h>

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

OE_BODY void depthwise_row_generic(const float *const *rows, size_t ky0, size_t ky1, size_t width, size_t channels,
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

OE_VOID_VARIANTS_WITH_AVX512(oe_depthwise_row, depthwise_row_avx512, depthwise_row_generic,
                             (const float *const *rows, size_t ky0, size_t ky1, size_t width, size_t channels,
                              const float *weights, const float *bias, size_t kernel, size_t stride, size_t pad_left,
                              float *out_row, size_t out_width, int relu6),
                             (rows, ky0, ky1, width, channels, weights, bias, kernel, stride, pad_left, out_row,
                              out_width, relu6))

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

OE_BODY void im2col_time_body(const float *input, size_t frames, size_t columns, size_t height, size_t width,
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
OE_VOID_VARIANTS(oe_im2col_time, im2col_time_body,
                 (const float *input, size_t frames, size_t columns, size_t height, size_t width, size_t before,
                  size_t frame_begin, size_t frame_end, float *out),
                 (input, frames, columns, height, width, before, frame_begin, frame_end, out))

OE_BODY void im2col_time_columns_body(const float *transposed, size_t frames, size_t columns, size_t height,
                                      size_t frame_begin, size_t frame_end, float *out) {
    size_t padded = frames + height - 1;
    for (size_t frame = frame_begin; frame < frame_end; frame++)
        for (size_t column = 0; column < columns; column++)
            memcpy(out + ((frame - frame_begin) * columns + column) * height, transposed + column * padded + frame,
                   height * sizeof(float));
}
OE_VOID_VARIANTS(oe_im2col_time_columns, im2col_time_columns_body,
                 (const float *transposed, size_t frames, size_t columns, size_t height, size_t frame_begin,
                  size_t frame_end, float *out),
                 (transposed, frames, columns, height, frame_begin, frame_end, out))
