#include "resample.h"
#include "variants.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

/* Sums keep LANES independent partial results, summed in a fixed order at the end (as CKernels' reductions). */
#define LANES 16

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

OE_BODY void resample_rows_generic(const uint8_t *in, size_t in_width, size_t rows, size_t channels, uint8_t *out,
                                   size_t out_width, const int32_t *starts, const int32_t *counts,
                                   const int32_t *weights, size_t taps, int32_t *scratch) {
    (void)scratch;
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

OE_VOID_VARIANTS_WITH_AVX512(oe_resample_rows_u8, resample_rows_avx512, resample_rows_generic,
                             (const uint8_t *in, size_t in_width, size_t rows, size_t channels, uint8_t *out,
                              size_t out_width, const int32_t *starts, const int32_t *counts, const int32_t *weights,
                              size_t taps, int32_t *scratch),
                             (in, in_width, rows, channels, out, out_width, starts, counts, weights, taps, scratch))

/* Along columns: each input row of the window adds its share to the whole output row at once. */
OE_BODY void resample_columns_u8_body(const uint8_t *in, size_t row_bytes, uint8_t *out, size_t out_rows,
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
OE_VOID_VARIANTS(oe_resample_columns_u8, resample_columns_u8_body,
                 (const uint8_t *in, size_t row_bytes, uint8_t *out, size_t out_rows, const int32_t *starts,
                  const int32_t *counts, const int32_t *weights, size_t taps, int32_t *scratch),
                 (in, row_bytes, out, out_rows, starts, counts, weights, taps, scratch))

OE_BODY void resample_sinc_body(const float *x, size_t count, float *y, size_t out_count, double step, double scale,
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
OE_VOID_VARIANTS(oe_resample_sinc, resample_sinc_body,
                 (const float *x, size_t count, float *y, size_t out_count, double step, double scale,
                  const float *window, const float *delta, size_t window_length, size_t table),
                 (x, count, y, out_count, step, scale, window, delta, window_length, table))

OE_BODY void resample_polyphase_body(const float *padded, size_t out_count, size_t step, size_t phases,
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
OE_VOID_VARIANTS(oe_resample_polyphase, resample_polyphase_body,
                 (const float *padded, size_t out_count, size_t step, size_t phases, const float *taps, size_t width,
                  float *y),
                 (padded, out_count, step, phases, taps, width, y))
