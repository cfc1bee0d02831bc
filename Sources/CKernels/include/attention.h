#ifndef OMNIEMBED_ATTENTION_H
#define OMNIEMBED_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

/* Softmax attention, one head at a time. */

/* Softmax attention of one head: for each of `queries` query rows q_i (`stride` apart, `size` floats), writes
   sum_j softmax_j(scale * q_i . k_j) v_j to out + i * out_stride, over `keys` key and value rows (`stride` apart).
   `scratch` holds oe_attention_scratch_size(keys, size) floats. */
size_t oe_attention_scratch_size(size_t keys, size_t size);
void oe_attention(const float *q, const float *k, const float *v, float *out, size_t queries, size_t keys,
                  size_t size, size_t stride, size_t out_stride, float scale, float *scratch);

/* The same with the two products on bfloat16 operands summed in fp32 (AVX512_BF16): q·k over pairs of the head's
   dimensions, p·v over pairs of keys; the softmax in fp32. Where the instruction is missing, or `size` is not a
   multiple of 16, it is oe_attention. `scratch` holds oe_attention_bf16_scratch_size(keys, size) floats. */
size_t oe_attention_bf16_scratch_size(size_t keys, size_t size);
void oe_attention_bf16(const float *q, const float *k, const float *v, float *out, size_t queries, size_t keys,
                       size_t size, size_t stride, size_t out_stride, float scale, float *scratch);

#endif
