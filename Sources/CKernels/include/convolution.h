#ifndef OMNIEMBED_CONVOLUTION_H
#define OMNIEMBED_CONVOLUTION_H

#include <stddef.h>
#include <stdint.h>

/* Convolutions: depthwise (image tower) and patches over time (audio tower). */

/* Depthwise convolution of one channels-last image (height × width × channels), weights kernel × kernel × channels
   (tap-major), zero padding `pad_top`/`pad_left` before the first row/column (and whatever the output size needs
   after), for output rows [row_begin, row_end) of width `out_width`; ReLU6 applied when `relu6`. */
void oe_depthwise_conv(const float *in, size_t height, size_t width, size_t channels, const float *weights,
                       const float *bias, size_t kernel, size_t stride, size_t pad_top, size_t pad_left, float *out,
                       size_t out_width, size_t row_begin, size_t row_end, int relu6);
/* One output row of it from the input rows its window covers: rows[ky] for ky in [ky0, ky1) (the others are
   padding), each `width` × `channels`. */
void oe_depthwise_row(const float *const *rows, size_t ky0, size_t ky1, size_t width, size_t channels,
                      const float *weights, const float *bias, size_t kernel, size_t stride, size_t pad_left,
                      float *out_row, size_t out_width, int relu6);

/* Patches for a convolution over time: for each frame in [frame_begin, frame_end) and each of the
   `columns - width + 1` positions, the `height` × `width` window of a frames × columns input starting `before`
   frames earlier (zeros outside). */
void oe_im2col_time(const float *input, size_t frames, size_t columns, size_t height, size_t width, size_t before,
                    size_t frame_begin, size_t frame_end, float *out);
/* The same patches for windows one column wide, from the input transposed and zero-padded in time (columns ×
   (frames + height − 1), `before` zero frames first): each patch is one contiguous run of it. */
void oe_im2col_time_columns(const float *transposed, size_t frames, size_t columns, size_t height,
                            size_t frame_begin, size_t frame_end, float *out);

#endif
