#ifndef OMNIEMBED_CENTROIDS_H
#define OMNIEMBED_CENTROIDS_H

#include <stddef.h>
#include <stdint.h>

/* Nearest centroids for k-means and semantic IDs: norms, assignments, Hamerly/Yinyang bounds. */

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

#endif
