#ifndef OMNIEMBED_TOP_K_H
#define OMNIEMBED_TOP_K_H

#include <stddef.h>
#include <stdint.h>

/* The highest scores of each row. */

/* Per row of `rows` × `columns` scores: the k (1 ≤ k ≤ columns) highest, best first, a tie going to the lower
   column; their columns to top_index and scores to top_score (rows × k each). Blocks of 16 scores none of which
   beats the worst kept are passed over with one vector compare. */
void oe_top_k_rows(const float *scores, size_t rows, size_t columns, size_t k, int32_t *top_index, float *top_score);

#endif
