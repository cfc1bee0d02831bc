#ifndef OMNIEMBED_KERNELS_H
#define OMNIEMBED_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Element-wise and row-wise transformer kernels on row-major float rows. Each is compiled for AVX-512, AVX2+FMA
   and baseline x86-64 and picks one at load time, so the binary runs anywhere and uses the widest vectors the
   CPU has. */

/* x = GELU(x) with the error function (BERT's gelu). */
void oe_gelu(float *x, size_t count);

/* Each of `rows` rows (`columns` used, `stride` apart) replaced by its softmax. */
void oe_softmax_rows(float *x, size_t rows, size_t columns, size_t stride);

/* x = LayerNorm(x + residual) per row, biased variance; `residual` may be NULL. */
void oe_add_layer_norm(float *x, const float *residual, size_t rows, size_t columns,
                       const float *weight, const float *bias, float epsilon);

/* Softmax attention of one head: for each of `queries` query rows q_i (`stride` apart, `size` floats), writes
   sum_j softmax_j(scale * q_i . k_j) v_j to out + i * out_stride, over `keys` key and value rows (`stride` apart).
   `scratch` holds oe_attention_scratch_size(keys, size) floats. */
size_t oe_attention_scratch_size(size_t keys, size_t size);
void oe_attention(const float *q, const float *k, const float *v, float *out, size_t queries, size_t keys,
                  size_t size, size_t stride, size_t out_stride, float scale, float *scratch);

/* Weights packed for oe_packed_linear: `w` is n × k (PyTorch Linear layout); `out` holds oe_packed_size(n, k). */
size_t oe_packed_size(size_t n, size_t k);
void oe_pack_weights(const float *w, size_t n, size_t k, float *out);

/* y = x · wᵀ + bias (then clamped to [0, 6] when relu6) for m rows of x (k floats each), y rows `ldy` apart,
   with w packed by oe_pack_weights. */
void oe_packed_linear(const float *x, size_t m, size_t k, const float *packed, size_t n, const float *bias,
                      float *y, size_t ldy, int relu6);

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

/* Channel-major planes of `pixels` interleaved RGB bytes, each value (byte − mean) / scale. */
void oe_planes_from_rgb(const uint8_t *rgb, size_t pixels, float mean, float scale, float *out);

/* Each of `rows` rows += bias, then ReLU6 when `relu6`. */
void oe_add_bias(float *x, size_t rows, size_t columns, const float *bias, int relu6);

/* x += y. */
void oe_add(float *x, const float *y, size_t count);

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

/* Patches for a convolution over time: for each frame in [frame_begin, frame_end) and each of the
   `columns - width + 1` positions, the `height` × `width` window of a frames × columns input starting `before`
   frames earlier (zeros outside). */
void oe_im2col_time(const float *input, size_t frames, size_t columns, size_t height, size_t width, size_t before,
                    size_t frame_begin, size_t frame_end, float *out);
/* The same patches for windows one column wide, from the input transposed and zero-padded in time (columns ×
   (frames + height − 1), `before` zero frames first): each patch is one contiguous run of it. */
void oe_im2col_time_columns(const float *transposed, size_t frames, size_t columns, size_t height,
                            size_t frame_begin, size_t frame_end, float *out);

/* x = max(x, 0) · scale + shift per column (ReLU, then an inference BatchNorm). */
void oe_relu_affine(float *x, size_t rows, size_t columns, const float *scale, const float *shift);

/* out[g] = the column-wise maximum of rows g · rows_per_group ..< (g + 1) · rows_per_group. */
void oe_max_groups(const float *x, size_t groups, size_t rows_per_group, size_t columns, float *out);

/* out[r] = the squared L2 norm of row r. */
void oe_squared_norms(const float *x, size_t rows, size_t columns, float *out);

/* For each row: the nearest of k centroids and the squared distance to it, from the rows' dot products with the
   centroids (`dots`, rows × k), the centroids' and the rows' squared norms. Ties go to the lower index. */
void oe_nearest_centroids(const float *dots, size_t rows, size_t k, const float *centroid_norms,
                          const float *row_norms, int32_t *index, float *distance);

/* sums[assignment[r]] += row r (in double) and counts[assignment[r]] += 1, for each row. */
void oe_accumulate_rows(const float *x, size_t rows, size_t columns, const int32_t *assignment, double *sums,
                        int64_t *counts);

/* row r -= centroids[assignment[r]], for each row. */
void oe_subtract_rows(float *x, size_t rows, size_t columns, const float *centroids, const int32_t *assignment);

/* Bounds for Lloyd's k-means that skip rows whose centroid cannot have changed (Hamerly's test with Yinyang's
   group bounds; Euclidean distances, kept per row across iterations; see NearestCentroids.reassign). The k
   centroids form `groups` groups of ceil(k / groups) consecutive indices; lower[r · groups + g] bounds row r's
   distance to every centroid of group g but its own. First the bounds follow the centroids' movement: upper[r]
   grows by its centroid's drift, each group's lower bound shrinks by the group's largest drift. A row whose upper
   bound exceeds max(its smallest lower bound, half_gap[index[r]]) is tightened to its exact distance (distance[r],
   squared; upper[r] from it); a row still undecided, or unassigned (index < 0), is pending: its offset goes to
   `pending`. With `exact`, every assigned row is tightened. Stops after `capacity` pending rows; returns their
   number and the rows consumed. */
size_t oe_bounds_filter(const float *x, size_t rows, size_t columns, const float *centroids, const float *drift,
                        const float *group_drift, size_t groups, const float *half_gap, int exact, int32_t *index,
                        float *upper, float *lower, float *distance, int32_t *pending, size_t capacity,
                        size_t *consumed);

/* The squared L2 distance of two rows of n floats. */
float oe_squared_distance(const float *a, const float *b, size_t n);

/* nearest[r] = min(nearest[r], the squared L2 distance of row r to `point`), for each row. */
void oe_nearer(const float *x, size_t rows, size_t columns, const float *point, float *nearest);

/* Copies rows x[pending[i]] (and their norms) to out, contiguously. */
void oe_gather_rows(const float *x, const float *norms, size_t columns, const int32_t *pending, size_t count,
                    float *out, float *out_norms);

/* For the pending rows (gathered: their dot products with the k centroids, overwritten, their rows and squared norms): the
   nearest centroid, index[], distance[] (squared) and the bounds upper[] and lower[] (distance to the nearest
   centroid and, per group, to the group's nearest other, widened by `slack` times the rounding scale of the dot
   products). A row whose centroid changes moves from one cluster's sums and count to the other's (when sums is
   not NULL). Returns the rows whose centroid changed. */
size_t oe_bounds_search(float *dots, const float *gathered, const float *gathered_norms, size_t count, size_t k,
                        size_t columns, size_t groups, const float *centroid_norms, float largest_centroid_norm,
                        float slack, const int32_t *pending, int32_t *index, float *upper, float *lower,
                        float *distance, double *sums, int64_t *counts);

/* Per row of `rows` × `columns` scores: the k (1 ≤ k ≤ columns) highest, best first, a tie going to the lower
   column; their columns to top_index and scores to top_score (rows × k each). Blocks of 16 scores none of which
   beats the worst kept are passed over with one vector compare. */
void oe_top_k_rows(const float *scores, size_t rows, size_t columns, size_t k, int32_t *top_index, float *top_score);

/* exp and erf of `count` values, for tests. */
void oe_exp(const float *x, float *y, size_t count);
void oe_erf(const float *x, float *y, size_t count);

#endif
