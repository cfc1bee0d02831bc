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

static inline __attribute__((always_inline)) void sift_down(scored *heap, size_t count, size_t i) {
    scored moving = heap[i];
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

static inline __attribute__((always_inline)) void sift_up(scored *heap, size_t i) {
    scored moving = heap[i];
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
        heap[j] = (scored){x[j], columns ? columns[j] : (int32_t)j};
        sift_up(heap, j);
    }
    for (size_t j = k; j < n; j++) {
        /* A later index loses ties, so only a score above the worst kept enters. */
        if (x[j] > heap[0].score) {
            heap[0] = (scored){x[j], columns ? columns[j] : (int32_t)j};
            sift_down(heap, k, 0);
        }
    }
}

OE_BODY void top_k_rows_body(const float *scores, size_t rows, size_t columns, size_t k, int32_t *top_index,
                             float *top_score) {
    if (k == 0 || k > columns) return;
    /* Lanes: column j belongs to lane j mod lanes. Each lane's maximum is a different score, so at least k
       scores reach the k-th highest lane maximum, and the k best are among those that do (usually a few more
       than k). Four lanes per kept score keep that threshold tight; each lane needs a few columns to be worth it. */
    size_t lanes = ((4 * k + 63) / 64) * 64;
    int filter = columns >= 4 * lanes;
    scored *heap = malloc(k * sizeof(scored));
    float *maxima = malloc(lanes * sizeof(float));
    float *kept = malloc(columns * sizeof(float));
    int32_t *kept_columns = malloc(columns * sizeof(int32_t));
    for (size_t r = 0; r < rows; r++) {
        const float *x = scores + r * columns;
        if (filter) {
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
            scored worst = heap[0];
            heap[0] = heap[n - 1];
            heap[n - 1] = worst;
            sift_down(heap, n - 1, 0);
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
OE_VOID_VARIANTS(oe_top_k_rows, top_k_rows_body,
                 (const float *scores, size_t rows, size_t columns, size_t k, int32_t *top_index, float *top_score),
                 (scores, rows, columns, k, top_index, top_score))

