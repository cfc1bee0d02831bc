#include "top_k.h"
#include "variants.h"
#include "vector_math.h"

#include <immintrin.h>
#include <stdlib.h>

/* A kept score of oe_top_k_rows: its heap is a min-heap on this order, the worst kept at its root. */
typedef struct {
    float score;
    int32_t index;
} scored;

static inline __attribute__((always_inline)) int worse(scored a, scored b) {
    return a.score < b.score || (a.score == b.score && a.index > b.index);
}

/* The heap functions take the moving entry as a value: read back from where it was just stored, its two halves
   would wait for the stores to retire (a store-forwarding stall on every insertion). */
static inline __attribute__((always_inline)) void sift_down(scored *heap, size_t count, size_t i, scored moving) {
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= count) break;
        if (child + 1 < count && worse(heap[child + 1], heap[child])) child++;
        if (!worse(heap[child], moving)) break;
        heap[i] = heap[child];
        i = child;
    }
    heap[i] = moving;
}

static inline __attribute__((always_inline)) void sift_up(scored *heap, size_t i, scored moving) {
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!worse(moving, heap[parent])) break;
        heap[i] = heap[parent];
        i = parent;
    }
    heap[i] = moving;
}

/* The k highest of n scores (k ≤ n), as an unordered heap; `columns` gives their indices (NULL: 0..<n). */
static inline __attribute__((always_inline)) void heap_select(const float *x, const int32_t *columns, size_t n,
                                                              size_t k, scored *heap) {
    for (size_t j = 0; j < k; j++) {
        sift_up(heap, j, (scored){x[j], columns ? columns[j] : (int32_t)j});
    }
    for (size_t j = k; j < n; j++) {
        /* A later index loses ties, so only a score above the worst kept enters. */
        if (x[j] > heap[0].score) {
            sift_down(heap, k, 0, (scored){x[j], columns ? columns[j] : (int32_t)j});
        }
    }
}

/* The 64-lane filter in AVX-512: lane maxima in four vectors, the threshold by one broadcast compare per
   maximum, and the scores that reach it compressed in registers (a compress to memory is microcoded on Zen 4)
   into `kept`, which has 16 values of room past `columns`. The same scores, in the same order, as the plain
   loops keep. */
OE_AVX512 static size_t filter_64_lanes_avx512(const float *x, size_t columns, size_t k, float *kept,
                                               int32_t *kept_columns) {
    __m512 m[4];
    for (int i = 0; i < 4; i++) m[i] = _mm512_loadu_ps(x + 16 * i);
    size_t j = 64;
    /* max(x, m): a NaN score leaves the lane's maximum as it was, as `x > maximum` does. */
    for (; j + 64 <= columns; j += 64)
        for (int i = 0; i < 4; i++) m[i] = _mm512_max_ps(_mm512_loadu_ps(x + j + 16 * i), m[i]);
    for (int i = 0; j < columns; j += 16, i++) {
        size_t left = columns - j;
        __mmask16 valid = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        __m512 v = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), valid, x + j);
        m[i] = _mm512_mask_max_ps(m[i], valid, v, m[i]);
    }
    float maxima[64];
    for (int i = 0; i < 4; i++) _mm512_storeu_ps(maxima + 16 * i, m[i]);
    /* The highest maximum that k maxima reach: each maximum's count is independent of the others', and the
       choice is one vector maximum at the end (NaN never reaches: it stays -inf). */
    float reaching[64];
    for (int i = 0; i < 64; i++) {
        __m512 v = _mm512_set1_ps(maxima[i]);
        unsigned reach = 0;
        for (int g = 0; g < 4; g++) reach += (unsigned)__builtin_popcount(_mm512_cmp_ps_mask(m[g], v, _CMP_GE_OQ));
        reaching[i] = reach >= k ? maxima[i] : -INFINITY;
    }
    __m512 best = _mm512_max_ps(_mm512_max_ps(_mm512_loadu_ps(reaching), _mm512_loadu_ps(reaching + 16)),
                                _mm512_max_ps(_mm512_loadu_ps(reaching + 32), _mm512_loadu_ps(reaching + 48)));
    const __m512 t = _mm512_set1_ps(_mm512_reduce_max_ps(best));
    __m512i index = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i step = _mm512_set1_epi32(16);
    size_t count = 0;
    for (j = 0; j < columns; j += 16) {
        size_t left = columns - j;
        __mmask16 valid = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        __m512 v = _mm512_maskz_loadu_ps(valid, x + j);
        __mmask16 keep = _mm512_mask_cmp_ps_mask(valid, v, t, _CMP_GE_OQ);
        if (keep) {
            _mm512_storeu_ps(kept + count, _mm512_maskz_compress_ps(keep, v));
            _mm512_storeu_si512(kept_columns + count, _mm512_maskz_compress_epi32(keep, index));
            count += (size_t)__builtin_popcount(keep);
        }
        index = _mm512_add_epi32(index, step);
    }
    return count;
}

OE_BODY void top_k_rows_body(const float *scores, size_t rows, size_t columns, size_t k, int32_t *top_index,
                             float *top_score, int avx512) {
    if (k == 0 || k > columns) return;
    /* Lanes: column j belongs to lane j mod lanes. Each lane's maximum is a different score, so at least k
       scores reach the k-th highest lane maximum, and the k best are among those that do (usually a few more
       than k). Four lanes per kept score keep that threshold tight; each lane needs a few columns to be worth it. */
    size_t lanes = ((4 * k + 63) / 64) * 64;
    int filter = columns >= 4 * lanes;
    scored *heap = malloc(k * sizeof(scored));
    float *maxima = malloc(lanes * sizeof(float));
    float *kept = malloc((columns + 16) * sizeof(float));
    int32_t *kept_columns = malloc((columns + 16) * sizeof(int32_t));
    for (size_t r = 0; r < rows; r++) {
        const float *x = scores + r * columns;
        if (filter && avx512 && lanes == 64) {
            size_t count = filter_64_lanes_avx512(x, columns, k, kept, kept_columns);
            if (count >= k) heap_select(kept, kept_columns, count, k, heap);
            else heap_select(x, NULL, columns, k, heap);
        } else if (filter) {
            memcpy(maxima, x, lanes * sizeof(float));
            size_t j = lanes;
            for (; j + lanes <= columns; j += lanes)
                for (size_t u = 0; u < lanes; u++) maxima[u] = x[j + u] > maxima[u] ? x[j + u] : maxima[u];
            for (size_t u = 0; j + u < columns; u++) maxima[u] = x[j + u] > maxima[u] ? x[j + u] : maxima[u];
            /* The k-th highest maximum: for 64 lanes without branches (the highest maximum that at least k
               maxima reach), for more through a heap. */
            float threshold = -INFINITY;
            if (lanes == 64) {
                for (size_t i = 0; i < 64; i++) {
                    int reach = 0;
                    for (size_t j = 0; j < 64; j++) reach += maxima[j] >= maxima[i];
                    threshold = (size_t)reach >= k && maxima[i] > threshold ? maxima[i] : threshold;
                }
            } else {
                heap_select(maxima, NULL, lanes, k, heap);
                threshold = heap[0].score;
            }
            size_t count = 0;
            for (j = 0; j + 16 <= columns; j += 16) {
                unsigned mask = 0;
                for (unsigned u = 0; u < 16; u++) mask |= (unsigned)(x[j + u] >= threshold) << u;
                while (mask) {
                    unsigned u = (unsigned)__builtin_ctz(mask);
                    kept[count] = x[j + u];
                    kept_columns[count++] = (int32_t)(j + u);
                    mask &= mask - 1;
                }
            }
            for (; j < columns; j++) {
                if (x[j] >= threshold) {
                    kept[count] = x[j];
                    kept_columns[count++] = (int32_t)j;
                }
            }
            /* Fewer only when scores are NaN, which no comparison keeps: then the plain way. */
            if (count >= k) heap_select(kept, kept_columns, count, k, heap);
            else heap_select(x, NULL, columns, k, heap);
        } else {
            heap_select(x, NULL, columns, k, heap);
        }
        /* Heap sort: the worst goes last each time, leaving the best first. */
        for (size_t n = k; n > 1; n--) {
            scored worst = heap[0], last = heap[n - 1];
            heap[n - 1] = worst;
            sift_down(heap, n - 1, 0, last);
        }
        for (size_t i = 0; i < k; i++) {
            top_index[r * k + i] = heap[i].index;
            top_score[r * k + i] = heap[i].score;
        }
    }
    free(heap);
    free(maxima);
    free(kept);
    free(kept_columns);
}
OE_AVX512 static void top_k_rows_avx512(const float *scores, size_t rows, size_t columns, size_t k, int32_t *top_index,
                                        float *top_score) {
    top_k_rows_body(scores, rows, columns, k, top_index, top_score, 1);
}
OE_AVX2 static void top_k_rows_avx2(const float *scores, size_t rows, size_t columns, size_t k, int32_t *top_index,
                                    float *top_score) {
    top_k_rows_body(scores, rows, columns, k, top_index, top_score, 0);
}
static void top_k_rows_portable(const float *scores, size_t rows, size_t columns, size_t k, int32_t *top_index,
                                float *top_score) {
    top_k_rows_body(scores, rows, columns, k, top_index, top_score, 0);
}
void oe_top_k_rows(const float *scores, size_t rows, size_t columns, size_t k, int32_t *top_index, float *top_score) {
    switch (oe_kernels_current()) {
    case OE_KERNELS_AVX512: top_k_rows_avx512(scores, rows, columns, k, top_index, top_score); break;
    case OE_KERNELS_AVX2: top_k_rows_avx2(scores, rows, columns, k, top_index, top_score); break;
    default: top_k_rows_portable(scores, rows, columns, k, top_index, top_score); break;
    }
}
