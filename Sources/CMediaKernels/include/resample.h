#ifndef OMNIEMBED_RESAMPLE_H
#define OMNIEMBED_RESAMPLE_H

#include <stddef.h>
#include <stdint.h>

/* Resampling: Pillow's exact 8-bit image resampling and band-limited audio resampling. */

/* One pass of Pillow's separable 8-bit resampling. Output pixel x blends counts[x] input pixels from starts[x] with
   fixed-point weights (22 fractional bits) weights[x * taps ...]: along rows (interleaved `channels`; `scratch`
   holds oe_resample_rows_scratch(...) int32) ... */
void oe_resample_rows_u8(const uint8_t *in, size_t in_width, size_t rows, size_t channels, uint8_t *out,
                         size_t out_width, const int32_t *starts, const int32_t *counts, const int32_t *weights,
                         size_t taps, int32_t *scratch);
static inline size_t oe_resample_rows_scratch(size_t in_width, size_t out_width, size_t channels, size_t taps) {
    return (taps + 1) * out_width * channels + ((in_width + taps) * channels + 4 + 3) / 4;
}
/* ... or along columns (output row y blends input rows), rows `row_bytes` long; `scratch` holds `row_bytes` int32. */
void oe_resample_columns_u8(const uint8_t *in, size_t row_bytes, uint8_t *out, size_t out_rows,
                            const int32_t *starts, const int32_t *counts, const int32_t *weights, size_t taps,
                            int32_t *scratch);

/* Band-limited resampling by a windowed sinc tabulated at `table` points per zero crossing (the method of resampy):
   output sample t is at input time t · step; `scale` = min(1, 1 / step) widens the filter when decimating and
   scales the result (unit gain). `window` (window_length floats, one wing) and `delta` (its forward differences)
   interpolate between table points. */
void oe_resample_sinc(const float *x, size_t count, float *y, size_t out_count, double step, double scale,
                      const float *window, const float *delta, size_t window_length, size_t table);

/* Rational resampling with precomputed filters: output t reads input position n = t · step / phases and uses
   filter (t · step) mod phases, `width` taps applied to padded[n + 1 ...] (the input with zeros around it). */
void oe_resample_polyphase(const float *padded, size_t out_count, size_t step, size_t phases, const float *taps,
                           size_t width, float *y);

#endif
