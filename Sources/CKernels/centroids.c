#include "centroids.h"
#include "variants.h"
#include "vector_math.h"

OE_BODY void squared_norms_body(const float *x, size_t rows, size_t columns, float *out) {
    for (size_t r = 0; r < rows; r++) {
        const float *p = x + r * columns;
        float sum = 0;
        for (size_t c = 0; c < columns; c++) sum += p[c] * p[c];
        out[r] = sum;
    }
}
OE_VOID_VARIANTS(oe_squared_norms, squared_norms_body,
                 (const float *x, size_t rows, size_t columns, float *out),
                 (x, rows, columns, out))

OE_BODY void nearest_centroids_body(const float *dots, size_t rows, size_t k, const float *centroid_norms,
                                    const float *row_norms, int32_t *index, float *distance) {
    for (size_t r = 0; r < rows; r++) {
        const float *d = dots + r * k;
        float best = centroid_norms[0] - 2 * d[0];
        int32_t at = 0;
        for (size_t j = 1; j < k; j++) {
            const float value = centroid_norms[j] - 2 * d[j];
            if (value < best) { best = value; at = (int32_t)j; }
        }
        index[r] = at;
        const float squared = row_norms[r] + best;
        distance[r] = squared > 0 ? squared : 0;
    }
}
OE_VOID_VARIANTS(oe_nearest_centroids, nearest_centroids_body,
                 (const float *dots, size_t rows, size_t k, const float *centroid_norms, const float *row_norms,
                  int32_t *index, float *distance),
                 (dots, rows, k, centroid_norms, row_norms, index, distance))

OE_BODY void accumulate_rows_body(const float *x, size_t rows, size_t columns, const int32_t *assignment,
                                  double *sums, int64_t *counts) {
    for (size_t r = 0; r < rows; r++) {
        const float *p = x + r * columns;
        double *s = sums + (size_t)assignment[r] * columns;
        for (size_t c = 0; c < columns; c++) s[c] += p[c];
        counts[assignment[r]] += 1;
    }
}
OE_VOID_VARIANTS(oe_accumulate_rows, accumulate_rows_body,
                 (const float *x, size_t rows, size_t columns, const int32_t *assignment, double *sums,
                  int64_t *counts),
                 (x, rows, columns, assignment, sums, counts))

OE_BODY void subtract_rows_body(float *x, size_t rows, size_t columns, const float *centroids, const int32_t *assignment) {
    for (size_t r = 0; r < rows; r++) {
        float *p = x + r * columns;
        const float *c = centroids + (size_t)assignment[r] * columns;
        for (size_t j = 0; j < columns; j++) p[j] -= c[j];
    }
}
OE_VOID_VARIANTS(oe_subtract_rows, subtract_rows_body,
                 (float *x, size_t rows, size_t columns, const float *centroids, const int32_t *assignment),
                 (x, rows, columns, centroids, assignment))

/* Squared distance of two rows, in LANES partial sums (vectorised, order fixed). */
static inline __attribute__((always_inline)) float squared_distance(const float *a, const float *b, size_t n) {
    float lanes[LANES] = {0};
    size_t j = 0;
    for (; j + LANES <= n; j += LANES)
        for (int l = 0; l < LANES; l++) {
            float d = a[j + l] - b[j + l];
            lanes[l] += d * d;
        }
    float sum = 0;
    for (int l = 0; l < LANES; l++) sum += lanes[l];
    for (; j < n; j++) sum += (a[j] - b[j]) * (a[j] - b[j]);
    return sum;
}

/* The direct sum of positive squares is exact to a few ulps per term: its bound widens it by 1e-5 (relative). */
#define DIRECT_SLACK 1e-5f

OE_BODY size_t bounds_filter_body(const float *x, size_t rows, size_t columns, const float *centroids, const float *drift,
                                  const float *group_drift, size_t groups, const float *half_gap, int exact,
                                  int32_t *index, float *upper, float *lower, float *distance, int32_t *pending,
                                  size_t capacity, size_t *consumed) {
    size_t count = 0, r = 0;
    for (; r < rows && count < capacity; r++) {
        const int32_t a = index[r];
        if (a < 0) { pending[count++] = (int32_t)r; continue; }
        upper[r] += drift[a];
        float *bounds = lower + r * groups;
        float nearest_other = INFINITY;
        for (size_t g = 0; g < groups; g++) {
            bounds[g] -= group_drift[g];
            nearest_other = bounds[g] < nearest_other ? bounds[g] : nearest_other;
        }
        const float bound = nearest_other > half_gap[a] ? nearest_other : half_gap[a];
        if (!exact && upper[r] <= bound) continue;
        const float squared = squared_distance(x + r * columns, centroids + (size_t)a * columns, columns);
        distance[r] = squared;
        upper[r] = sqrtf(squared * (1 + DIRECT_SLACK));
        if (upper[r] <= bound) continue;
        pending[count++] = (int32_t)r;
    }
    *consumed = r;
    return count;
}
OE_VARIANTS(size_t, oe_bounds_filter, bounds_filter_body,
            (const float *x, size_t rows, size_t columns, const float *centroids, const float *drift,
             const float *group_drift, size_t groups, const float *half_gap, int exact, int32_t *index, float *upper,
             float *lower, float *distance, int32_t *pending, size_t capacity, size_t *consumed),
            (x, rows, columns, centroids, drift, group_drift, groups, half_gap, exact, index, upper, lower, distance,
             pending, capacity, consumed))

OE_BODY float squared_distance_body(const float *a, const float *b, size_t n) { return squared_distance(a, b, n); }
                                    OE_VARIANTS(float, oe_squared_distance, squared_distance_body, (const float *a, const float *b, size_t n), (a, b, n))
                                    
                                    OE_BODY void nearer_body(const float *x, size_t rows, size_t columns, const float *point, float *nearest) {
    for (size_t r = 0; r < rows; r++) {
        const float squared = squared_distance(x + r * columns, point, columns);
        if (squared < nearest[r]) nearest[r] = squared;
    }
}
OE_VOID_VARIANTS(oe_nearer, nearer_body,
                 (const float *x, size_t rows, size_t columns, const float *point, float *nearest),
                 (x, rows, columns, point, nearest))

OE_BODY void gather_rows_body(const float *x, const float *norms, size_t columns, const int32_t *pending, size_t count,
                              float *out, float *out_norms) {
    for (size_t i = 0; i < count; i++) {
        memcpy(out + i * columns, x + (size_t)pending[i] * columns, columns * sizeof(float));
        out_norms[i] = norms[pending[i]];
    }
}
OE_VOID_VARIANTS(oe_gather_rows, gather_rows_body,
                 (const float *x, const float *norms, size_t columns, const int32_t *pending, size_t count,
                  float *out, float *out_norms),
                 (x, norms, columns, pending, count, out, out_norms))

OE_BODY size_t bounds_search_body(float *dots, const float *gathered, const float *gathered_norms, size_t count,
                                  size_t k, size_t columns, size_t groups, const float *centroid_norms,
                                  float largest_centroid_norm, float slack, const int32_t *pending, int32_t *index,
                                  float *upper, float *lower, float *distance, double *sums, int64_t *counts) {
    const size_t group_size = (k + groups - 1) / groups;
    size_t changed = 0;
    for (size_t i = 0; i < count; i++) {
        /* In place: dots become ‖c‖² − 2x·c (the squared distance less ‖x‖²). The minimum first (in LANES partial
           minima, vectorised), then its first index: ties go to the lower index. */
        float *d = dots + i * k;
        for (size_t j = 0; j < k; j++) d[j] = centroid_norms[j] - 2 * d[j];
        float lanes[LANES];
        for (int l = 0; l < LANES; l++) lanes[l] = INFINITY;
        size_t j = 0;
        for (; j + LANES <= k; j += LANES)
            for (int l = 0; l < LANES; l++) lanes[l] = d[j + l] < lanes[l] ? d[j + l] : lanes[l];
        float best = INFINITY;
        for (int l = 0; l < LANES; l++) best = lanes[l] < best ? lanes[l] : best;
        for (; j < k; j++) best = d[j] < best ? d[j] : best;
        int32_t at = 0;
        while ((size_t)at + 1 < k && !(d[at] <= best)) at++;
        /* ‖x‖² + ‖c‖² − 2x·c rounds with an error that scales with the norms, not with the distance. */
        const float error = slack * (gathered_norms[i] + largest_centroid_norm);
        const float nearest = gathered_norms[i] + best;
        const int32_t r = pending[i], previous = index[r];
        distance[r] = nearest > 0 ? nearest : 0;
        upper[r] = sqrtf((nearest > 0 ? nearest : 0) + error);
        float *bounds = lower + (size_t)r * groups;
        const float own = d[at];
        d[at] = INFINITY; /* the bounds are on the other centroids */
        for (size_t g = 0; g < groups; g++) {
            float other = INFINITY;
            const size_t end = (g + 1) * group_size < k ? (g + 1) * group_size : k;
            for (size_t c = g * group_size; c < end; c++) other = d[c] < other ? d[c] : other;
            const float squared = gathered_norms[i] + other - error;
            bounds[g] = squared > 0 ? sqrtf(squared) : 0;
        }
        d[at] = own;
        if (previous == at) continue;
        index[r] = at;
        changed++;
        if (!sums) continue;
        const float *p = gathered + i * columns;
        double *to = sums + (size_t)at * columns;
        for (size_t c = 0; c < columns; c++) to[c] += p[c];
        counts[at] += 1;
        if (previous < 0) continue;
        double *from = sums + (size_t)previous * columns;
        for (size_t c = 0; c < columns; c++) from[c] -= p[c];
        counts[previous] -= 1;
    }
    return changed;
}
OE_VARIANTS(size_t, oe_bounds_search, bounds_search_body,
            (float *dots, const float *gathered, const float *gathered_norms, size_t count, size_t k, size_t columns,
             size_t groups, const float *centroid_norms, float largest_centroid_norm, float slack,
             const int32_t *pending, int32_t *index, float *upper, float *lower, float *distance, double *sums,
             int64_t *counts),
            (dots, gathered, gathered_norms, count, k, columns, groups, centroid_norms, largest_centroid_norm, slack,
             pending, index, upper, lower, distance, sums, counts))
