#ifndef OMNIEMBED_PACKED_GEMM_LOWP_H
#define OMNIEMBED_PACKED_GEMM_LOWP_H

#include <stddef.h>
#include <stdint.h>

/* Linear layers below fp32: y = x · wᵀ + bias with w packed once at load, fp32 in and out.

   bf16: weights and each row of x rounded to bfloat16 (nearest even), products summed in fp32 (AVX512_BF16's
   vdpbf16ps: pairs of k per instruction).
   int8: weights quantised per output column (symmetric, scale max|w|/127), each row of x per row (symmetric,
   max|x|/127) when the layer runs, products summed exactly in int32 (AVX512_VNNI's vpdpbusd: u8 × s8, four k per
   instruction; x is shifted by 128 into u8 and the shift taken off through the column sums), then
   y = (float)dot · (sx · sw) + bias in fp32.

   Every row is computed alone, so a row's result does not depend on the batch. Without the instruction (or with
   OMNIEMBED_KERNELS narrower than avx512) a plain-C path computes the same sums: bit for bit for int8, and for
   bf16 in the instruction's order (odd k then even of each pair). */

/* Whether this CPU (and the kernel set in use) has the instruction: 1 for bf16, 2 for int8. */
int oe_lowp_native(int precision);

size_t oe_packed_bf16_size(size_t n, size_t k);
void oe_pack_weights_bf16(const float *w, size_t n, size_t k, uint16_t *out);
void oe_packed_linear_bf16(const float *x, size_t m, size_t k, const uint16_t *packed, size_t n, const float *bias,
                           float *y, size_t ldy, int relu6);

/* `out` holds oe_packed_int8_size(n, k) bytes; `scales` and `sums` oe_packed_int8_columns(n) each. `smoothing`, when
   not NULL, holds k multipliers applied to x's columns before a row is quantised (SmoothQuant: the weights' columns
   were divided by the same when packed, so the product is unchanged but the row's range is flatter). */
size_t oe_packed_int8_size(size_t n, size_t k);
size_t oe_packed_int8_columns(size_t n);
void oe_pack_weights_int8(const float *w, size_t n, size_t k, int8_t *out, float *scales, int32_t *sums);
void oe_packed_linear_int8(const float *x, size_t m, size_t k, const float *smoothing, const int8_t *packed,
                           const float *scales, const int32_t *sums, size_t n, const float *bias, float *y, size_t ldy,
                           int relu6);

/* bfloat16 of `value`, nearest even, denormals to zero (as the instruction rounds). */
uint16_t oe_bf16(float value);
float oe_bf16_float(uint16_t value);

#endif
