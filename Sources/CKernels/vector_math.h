#ifndef OMNIEMBED_VECTOR_MATH_H
#define OMNIEMBED_VECTOR_MATH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Reductions keep LANES independent partial results (summed in a fixed order at the end), so the compiler
   vectorises them without reassociating, and a row's result never depends on the rows around it. */
#define LANES 16

static inline __attribute__((always_inline)) float clamp(float x, float lo, float hi) {
    x = x < lo ? lo : x;
    return x > hi ? hi : x;
}

/* exp(x): Cody-Waite reduction to |r| <= ln2/2, degree-7 Taylor polynomial, 2^n built in the exponent field.
   Relative error below 2e-7 on [-87, 88]. */
static inline __attribute__((always_inline)) float exp_approx(float x) {
    x = clamp(x, -87.3f, 88.3f);
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer held in the low bits */
    float shifted = x * 1.44269504088896341f + magic;
    float n = shifted - magic;
    float r = (x - n * 0.693145751953125f) - n * 1.42860682030941723e-6f;
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits;
    memcpy(&bits, &shifted, sizeof bits);
    int32_t exponent = (bits - 0x4B400000 + 127) << 23;
    float scale;
    memcpy(&scale, &exponent, sizeof scale);
    return p * scale;
}

/* erf(x): odd rational approximation on [-4, 4] (erf is +-1 in float beyond), absolute error below 5e-7. */
static inline __attribute__((always_inline)) float erf_approx(float x) {
    float c = clamp(x, -4.0f, 4.0f);
    float s = c * c;
    float num = -2.72614225801306e-10f;
    num = num * s + 2.77068142495902e-08f;
    num = num * s - 2.10102402082508e-06f;
    num = num * s - 5.69250639462346e-05f;
    num = num * s - 7.34990630326855e-04f;
    num = num * s - 2.95459980854025e-03f;
    num = num * s - 1.60960333262415e-02f;
    float den = -1.45660718464996e-05f;
    den = den * s - 2.13374055278905e-04f;
    den = den * s - 1.68282697438203e-03f;
    den = den * s - 7.37332916720468e-03f;
    den = den * s - 1.42647390514189e-02f;
    return c * num / den;
}

static inline __attribute__((always_inline)) float row_max(const float *p, size_t n) {
    float lanes[LANES];
    for (int l = 0; l < LANES; l++) lanes[l] = -INFINITY;
    size_t j = 0;
    for (; j + LANES <= n; j += LANES)
        for (int l = 0; l < LANES; l++) lanes[l] = p[j + l] > lanes[l] ? p[j + l] : lanes[l];
    float m = -INFINITY;
    for (int l = 0; l < LANES; l++) m = lanes[l] > m ? lanes[l] : m;
    for (; j < n; j++) m = p[j] > m ? p[j] : m;
    return m;
}

static inline __attribute__((always_inline)) float row_sum(const float *p, size_t n) {
    float lanes[LANES] = {0};
    size_t j = 0;
    for (; j + LANES <= n; j += LANES)
        for (int l = 0; l < LANES; l++) lanes[l] += p[j + l];
    float s = 0;
    for (int l = 0; l < LANES; l++) s += lanes[l];
    for (; j < n; j++) s += p[j];
    return s;
}

#endif
