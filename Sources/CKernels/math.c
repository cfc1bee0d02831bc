#include "math_kernels.h"
#include "variants.h"
#include "vector_math.h"

OE_BODY void gelu_body(float *x, size_t count) {
    for (size_t i = 0; i < count; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + erf_approx(v * 0.70710678118654752f));
    }
}
OE_VOID_VARIANTS(oe_gelu, gelu_body, (float *x, size_t count), (x, count))

OE_BODY void softmax_rows_body(float *x, size_t rows, size_t columns, size_t stride) {
    for (size_t row = 0; row < rows; row++) {
        float *p = x + row * stride;
        float m = row_max(p, columns);
        for (size_t j = 0; j < columns; j++) p[j] = exp_approx(p[j] - m);
        float inverse = 1.0f / row_sum(p, columns);
        for (size_t j = 0; j < columns; j++) p[j] *= inverse;
    }
}
OE_VOID_VARIANTS(oe_softmax_rows, softmax_rows_body,
                 (float *x, size_t rows, size_t columns, size_t stride),
                 (x, rows, columns, stride))

OE_BODY void add_layer_norm_body(float *x, const float *residual, size_t rows, size_t columns,
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
OE_VOID_VARIANTS(oe_add_layer_norm, add_layer_norm_body,
                 (float *x, const float *residual, size_t rows, size_t columns, const float *weight,
                  const float *bias, float epsilon),
                 (x, residual, rows, columns, weight, bias, epsilon))

OE_BODY void add_bias_body(float *x, size_t rows, size_t columns, const float *bias, int relu6) {
    for (size_t r = 0; r < rows; r++) {
        float *p = x + r * columns;
        if (relu6)
            for (size_t c = 0; c < columns; c++) p[c] = clamp(p[c] + bias[c], 0.0f, 6.0f);
        else
            for (size_t c = 0; c < columns; c++) p[c] += bias[c];
    }
}
OE_VOID_VARIANTS(oe_add_bias, add_bias_body,
                 (float *x, size_t rows, size_t columns, const float *bias, int relu6),
                 (x, rows, columns, bias, relu6))

OE_BODY void add_body(float *x, const float *y, size_t count) {
    for (size_t i = 0; i < count; i++) x[i] += y[i];
}
OE_VOID_VARIANTS(oe_add, add_body, (float *x, const float *y, size_t count), (x, y, count))

OE_BODY void relu_affine_body(float *x, size_t rows, size_t columns, const float *scale, const float *shift) {
    for (size_t r = 0; r < rows; r++) {
        float *p = x + r * columns;
        for (size_t c = 0; c < columns; c++) p[c] = (p[c] > 0 ? p[c] : 0) * scale[c] + shift[c];
    }
}
OE_VOID_VARIANTS(oe_relu_affine, relu_affine_body,
                 (float *x, size_t rows, size_t columns, const float *scale, const float *shift),
                 (x, rows, columns, scale, shift))

OE_BODY void max_groups_body(const float *x, size_t groups, size_t rows_per_group, size_t columns, float *out) {
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
OE_VOID_VARIANTS(oe_max_groups, max_groups_body,
                 (const float *x, size_t groups, size_t rows_per_group, size_t columns, float *out),
                 (x, groups, rows_per_group, columns, out))

void oe_exp(const float *x, float *y, size_t count) {
    for (size_t i = 0; i < count; i++) y[i] = exp_approx(x[i]);
}

void oe_erf(const float *x, float *y, size_t count) {
    for (size_t i = 0; i < count; i++) y[i] = erf_approx(x[i]);
}
