#ifndef OMNIEMBED_PACKED_GEMM_H
#define OMNIEMBED_PACKED_GEMM_H

#include <stddef.h>
#include <stdint.h>

/* Linear layers on weights packed once at load. */

/* Weights packed for oe_packed_linear: `w` is n × k (PyTorch Linear layout); `out` holds oe_packed_size(n, k). */
size_t oe_packed_size(size_t n, size_t k);
void oe_pack_weights(const float *w, size_t n, size_t k, float *out);

/* y = x · wᵀ + bias (then clamped to [0, 6] when relu6) for m rows of x (k floats each), y rows `ldy` apart,
   with w packed by oe_pack_weights. */
void oe_packed_linear(const float *x, size_t m, size_t k, const float *packed, size_t n, const float *bias,
                      float *y, size_t ldy, int relu6);

#endif
