#ifndef OMNIEMBED_MATH_KERNELS_H
#define OMNIEMBED_MATH_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Element-wise and row-wise kernels on row-major float rows: activations, softmax, LayerNorm, biases. */

/* x = GELU(x) with the error function (BERT's gelu). */
void oe_gelu(float *x, size_t count);

/* Each of `rows` rows (`columns` used, `stride` apart) replaced by its softmax. */
void oe_softmax_rows(float *x, size_t rows, size_t columns, size_t stride);

/* x = LayerNorm(x + residual) per row, biased variance; `residual` may be NULL. */
void oe_add_layer_norm(float *x, const float *residual, size_t rows, size_t columns,
                       const float *weight, const float *bias, float epsilon);

/* Each of `rows` rows += bias, then ReLU6 when `relu6`. */
void oe_add_bias(float *x, size_t rows, size_t columns, const float *bias, int relu6);

/* x += y. */
void oe_add(float *x, const float *y, size_t count);

/* x = max(x, 0) · scale + shift per column (ReLU, then an inference BatchNorm). */
void oe_relu_affine(float *x, size_t rows, size_t columns, const float *scale, const float *shift);

/* out[g] = the column-wise maximum of rows g · rows_per_group ..< (g + 1) · rows_per_group. */
void oe_max_groups(const float *x, size_t groups, size_t rows_per_group, size_t columns, float *out);

/* exp and erf of `count` values, for tests. */
void oe_exp(const float *x, float *y, size_t count);
void oe_erf(const float *x, float *y, size_t count);

#endif
