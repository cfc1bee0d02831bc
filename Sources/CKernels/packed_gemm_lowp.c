#include "packed_gemm_lowp.h"
#include "dispatch.h"
#include "panel.h"

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The epilogues multiply then add, rounded each time, on every path: no fused multiply-add where one path has it
   and another not. */
#pragma STDC FP_CONTRACT OFF

/* Output columns per panel: two 16-lane vectors. Panels are always full width, zero-padded. */
#define LP_PANEL 32
/* Rows converted (or quantised) at a time: their low-precision copy stays in cache across every panel. */
#define LP_ROW_BLOCK 64

static inline size_t round_up(size_t value, size_t to) { return (value + to - 1) / to * to; }

int oe_lowp_native(int precision) {
    if (oe_kernels_current() != OE_KERNELS_AVX512) return 0;
    __builtin_cpu_init();
    if (precision == 1) return __builtin_cpu_supports("avx512bf16");
    if (precision == 2) return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw");
    return 0;
}

/* ---- bfloat16 ---------------------------------------------------------------------------------------------- */

static inline uint16_t bf16_round(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    if ((bits & 0x7f800000u) == 0) return (uint16_t)((bits >> 16) & 0x8000u);          /* denormal: ±0 */
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x0040u);  /* NaN stays NaN */
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

uint16_t oe_bf16(float value) { return bf16_round(value); }

float oe_bf16_float(uint16_t value) {
    uint32_t bits = (uint32_t)value << 16;
    float out;
    memcpy(&out, &bits, sizeof out);
    return out;
}

size_t oe_packed_bf16_size(size_t n, size_t k) { return round_up(n, LP_PANEL) * round_up(k, 2); }

/* Panel p, pair q: 32 columns × (w[2q], w[2q+1]), so one 32-bit lane holds one column's pair. */
/* The plain path: each row's pairs as vdpbf16ps sums them (the odd product, then the even one). */
static void bf16_linear_generic(const uint16_t *xb, size_t m, size_t kp, const uint16_t *packed, size_t n,
                                const float *bias, float *y, size_t ldy, int relu6) {
    for (size_t p = 0; p * LP_PANEL < n; p++) {
        const uint16_t *panel = packed + p * LP_PANEL * kp;
        for (size_t row = 0; row < m; row++) {
            float acc[LP_PANEL] = {0};
            const uint16_t *xr = xb + row * kp;
            for (size_t q = 0; q < kp / 2; q++) {
                float a0 = oe_bf16_float(xr[2 * q]), a1 = oe_bf16_float(xr[2 * q + 1]);
                const uint16_t *w = panel + q * 2 * LP_PANEL;
                for (size_t j = 0; j < LP_PANEL; j++) {
                    acc[j] = acc[j] + a1 * oe_bf16_float(w[2 * j + 1]);
                    acc[j] = acc[j] + a0 * oe_bf16_float(w[2 * j]);
                }
            }
            oe_finish_row(acc, bias + p * LP_PANEL, oe_panel_columns(n, p), relu6, y + row * ldy + p * LP_PANEL);
        }
    }
}

#define LP_BF16 __attribute__((target("avx512f,avx512bw,avx512bf16")))

/* R rows × one panel: 2R accumulators, per pair two weight loads and R broadcasts. */
LP_BF16 static inline __attribute__((always_inline)) void bf16_panel_rows(
        const int R, const uint16_t *xb, size_t kp, const uint16_t *panel, const __m512 bias[2],
        const __mmask16 mask[2], float *y, size_t ldy, int relu6) {
    __m512 acc[8][2];
    for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (size_t q = 0; q < kp / 2; q++) {
        __m512bh w0 = (__m512bh)_mm512_loadu_si512(panel + q * 2 * LP_PANEL);
        __m512bh w1 = (__m512bh)_mm512_loadu_si512(panel + q * 2 * LP_PANEL + LP_PANEL);
        for (int r = 0; r < R; r++) {
            uint32_t pair;
            memcpy(&pair, xb + (size_t)r * kp + 2 * q, sizeof pair);
            __m512bh a = (__m512bh)_mm512_set1_epi32((int)pair);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, w0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, w1);
        }
    }
    const __m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);
    for (int r = 0; r < R; r++)
        for (int l = 0; l < 2; l++) {
            __m512 v = _mm512_add_ps(acc[r][l], bias[l]);
            if (relu6) v = _mm512_min_ps(_mm512_max_ps(v, zero), six);
            _mm512_mask_storeu_ps(y + (size_t)r * ldy + l * 16, mask[l], v);
        }
}

LP_BF16 static void bf16_rows_avx512(const float *x, size_t m, size_t k, uint16_t *xb, size_t kp) {
    for (size_t row = 0; row < m; row++) {
        const float *in = x + row * k;
        uint16_t *out = xb + row * kp;
        size_t kk = 0;
        for (; kk + 16 <= k; kk += 16)
            _mm256_storeu_si256((__m256i *)(out + kk), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(in + kk)));
        for (; kk < k; kk++) out[kk] = oe_bf16(in[kk]);
        for (; kk < kp; kk++) out[kk] = 0;
    }
}

LP_BF16 static void bf16_linear_avx512(const uint16_t *xb, size_t m, size_t kp, const uint16_t *packed, size_t n,
                                       const float *bias, float *y, size_t ldy, int relu6) {
    for (size_t p = 0; p * LP_PANEL < n; p++) {
        const uint16_t *panel = packed + p * LP_PANEL * kp;
        const oe_panel_edge e = oe_panel_edges(oe_panel_columns(n, p), bias + p * LP_PANEL);
        float *out = y + p * LP_PANEL;
        size_t row = 0;
        for (; row + 8 <= m; row += 8) bf16_panel_rows(8, xb + row * kp, kp, panel, e.bias, e.mask, out + row * ldy, ldy, relu6);
        for (; row < m; row++) bf16_panel_rows(1, xb + row * kp, kp, panel, e.bias, e.mask, out + row * ldy, ldy, relu6);
    }
}

/* 32 columns × 32 k of a panel: each column's 16 pairs converted in one vector, then the 16 × 16 words of each
   half-panel transposed (unpack 32, unpack 64, two lane shuffles), so that pair q's 32 columns are stored whole. */
LP_BF16 static void pack_bf16_block_avx512(const float *w, size_t k, uint16_t *pairs) {
    for (int half = 0; half < 2; half++) {
        __m512i r[16], u[16];
        for (int j = 0; j < 16; j++) {
            const float *row = w + (size_t)(16 * half + j) * k;
            r[j] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(row + 16), _mm512_loadu_ps(row));
        }
        for (int g = 0; g < 4; g++) {  /* u[4g + m], lane L: pair 4L + m of columns 4g … 4g + 3 */
            __m512i lo0 = _mm512_unpacklo_epi32(r[4 * g], r[4 * g + 1]), hi0 = _mm512_unpackhi_epi32(r[4 * g], r[4 * g + 1]);
            __m512i lo1 = _mm512_unpacklo_epi32(r[4 * g + 2], r[4 * g + 3]), hi1 = _mm512_unpackhi_epi32(r[4 * g + 2], r[4 * g + 3]);
            u[4 * g] = _mm512_unpacklo_epi64(lo0, lo1);
            u[4 * g + 1] = _mm512_unpackhi_epi64(lo0, lo1);
            u[4 * g + 2] = _mm512_unpacklo_epi64(hi0, hi1);
            u[4 * g + 3] = _mm512_unpackhi_epi64(hi0, hi1);
        }
        for (int m = 0; m < 4; m++) {
            __m512i v0 = _mm512_shuffle_i32x4(u[m], u[4 + m], 0x88), v1 = _mm512_shuffle_i32x4(u[m], u[4 + m], 0xdd);
            __m512i v2 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0x88), v3 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0xdd);
            const int q[4] = {m, m + 8, m + 4, m + 12};
            const __m512i t[4] = {_mm512_shuffle_i32x4(v0, v2, 0x88), _mm512_shuffle_i32x4(v0, v2, 0xdd),
                                  _mm512_shuffle_i32x4(v1, v3, 0x88), _mm512_shuffle_i32x4(v1, v3, 0xdd)};
            for (int i = 0; i < 4; i++) _mm512_storeu_si512(pairs + (size_t)q[i] * 2 * LP_PANEL + 16 * 2 * half, t[i]);
        }
    }
}

void oe_pack_weights_bf16(const float *w, size_t n, size_t k, uint16_t *out) {
    size_t kp = round_up(k, 2);
    memset(out, 0, oe_packed_bf16_size(n, k) * sizeof *out);
    /* Whole 32 × 32 blocks by vectors where the CPU has the instruction (/match packs a history per request), the
       rest value by value: pair q of a panel's column j at q·2·LP_PANEL + 2j. */
    size_t full_columns = 0, full_k = 0;
    if (oe_lowp_native(1)) {
        full_columns = n / LP_PANEL * LP_PANEL;
        full_k = k / 32 * 32;
        for (size_t column = 0; column < full_columns; column += LP_PANEL)
            for (size_t kk = 0; kk < full_k; kk += 32)
                pack_bf16_block_avx512(w + column * k + kk, k, out + column * kp + kk / 2 * 2 * LP_PANEL);
    }
    for (size_t column = 0; column < n; column++) {
        uint16_t *base = out + column / LP_PANEL * LP_PANEL * kp + column % LP_PANEL * 2;
        const float *row = w + column * k;
        for (size_t kk = column < full_columns ? full_k : 0; kk < k; kk++)
            base[kk / 2 * 2 * LP_PANEL + kk % 2] = bf16_round(row[kk]);
    }
}

void oe_packed_linear_bf16(const float *x, size_t m, size_t k, const uint16_t *packed, size_t n, const float *bias,
                           float *y, size_t ldy, int relu6) {
    if (m == 0 || n == 0) return;
    size_t kp = round_up(k, 2), block = m < LP_ROW_BLOCK ? m : LP_ROW_BLOCK;
    uint16_t *xb = malloc(block * kp * sizeof *xb);
    if (xb == NULL) abort();
    int native = oe_lowp_native(1);
    for (size_t row = 0; row < m; row += LP_ROW_BLOCK) {
        size_t rows = m - row < LP_ROW_BLOCK ? m - row : LP_ROW_BLOCK;
        if (native) {
            bf16_rows_avx512(x + row * k, rows, k, xb, kp);
            bf16_linear_avx512(xb, rows, kp, packed, n, bias, y + row * ldy, ldy, relu6);
        } else {
            for (size_t r = 0; r < rows; r++)
                for (size_t kk = 0; kk < kp; kk++) xb[r * kp + kk] = kk < k ? oe_bf16(x[(row + r) * k + kk]) : 0;
            bf16_linear_generic(xb, rows, kp, packed, n, bias, y + row * ldy, ldy, relu6);
        }
    }
    free(xb);
}

/* ---- int8 -------------------------------------------------------------------------------------------------- */

size_t oe_packed_int8_size(size_t n, size_t k) { return round_up(n, LP_PANEL) * round_up(k, 4); }
size_t oe_packed_int8_columns(size_t n) { return round_up(n, LP_PANEL); }

static inline int clamp127(long value) { return value < -127 ? -127 : value > 127 ? 127 : (int)value; }

/* Panel p, group g: 32 columns × w[4g..4g+3], so one 32-bit lane holds one column's four. */
void oe_pack_weights_int8(const float *w, size_t n, size_t k, int8_t *out, float *scales, int32_t *sums) {
    size_t k4 = round_up(k, 4), columns = round_up(n, LP_PANEL);
    memset(out, 0, columns * k4);
    for (size_t column = 0; column < columns; column++) {
        scales[column] = 0.0f;
        sums[column] = 0;
        if (column >= n) continue;
        float largest = 0.0f;
        for (size_t kk = 0; kk < k; kk++) largest = fmaxf(largest, fabsf(w[column * k + kk]));
        float scale = largest > 0.0f ? largest / 127.0f : 1.0f;
        size_t p = column / LP_PANEL, j = column % LP_PANEL;
        int32_t sum = 0;
        for (size_t kk = 0; kk < k; kk++) {
            int q = clamp127(lrintf(w[column * k + kk] / scale));
            out[p * LP_PANEL * k4 + kk / 4 * 4 * LP_PANEL + j * 4 + kk % 4] = (int8_t)q;
            sum += q;
        }
        scales[column] = scale;
        sums[column] = sum;
    }
}

/* Row r of x (times `smoothing` column by column, when given) to u8 (its int8 code + 128; the padding is code 0) and
   its scale. */
static void int8_rows(const float *x, size_t m, size_t k, const float *smoothing, uint8_t *xq, size_t k4, float *scales) {
    float *smoothed = smoothing ? malloc(k * sizeof *smoothed) : NULL;
    if (smoothing && smoothed == NULL) abort();
    for (size_t row = 0; row < m; row++) {
        const float *in = x + row * k;
        if (smoothing) {
            for (size_t kk = 0; kk < k; kk++) smoothed[kk] = in[kk] * smoothing[kk];
            in = smoothed;
        }
        float largest = 0.0f;
        for (size_t kk = 0; kk < k; kk++) largest = fmaxf(largest, fabsf(in[kk]));
        float inverse = largest > 0.0f ? 127.0f / largest : 0.0f;
        scales[row] = largest / 127.0f;
        for (size_t kk = 0; kk < k; kk++) xq[row * k4 + kk] = (uint8_t)(clamp127(lrintf(in[kk] * inverse)) + 128);
        for (size_t kk = k; kk < k4; kk++) xq[row * k4 + kk] = 128;
    }
    free(smoothed);
}

static void int8_linear_generic(const uint8_t *xq, const float *row_scales, size_t m, size_t k4, const int8_t *packed,
                                const float *scales, const int32_t *sums, size_t n, const float *bias, float *y,
                                size_t ldy, int relu6) {
    for (size_t p = 0; p * LP_PANEL < n; p++) {
        const int8_t *panel = packed + p * LP_PANEL * k4;
        const size_t c = p * LP_PANEL;
        for (size_t row = 0; row < m; row++) {
            int32_t acc[LP_PANEL] = {0};
            const uint8_t *xr = xq + row * k4;
            for (size_t g = 0; g < k4 / 4; g++)
                for (size_t j = 0; j < LP_PANEL; j++)
                    for (size_t t = 0; t < 4; t++) acc[j] += (int32_t)xr[4 * g + t] * panel[g * 4 * LP_PANEL + j * 4 + t];
            float dot[LP_PANEL];
            for (size_t j = 0; j < LP_PANEL; j++) {
                float scale = row_scales[row] * scales[c + j];
                dot[j] = (float)(acc[j] - 128 * sums[c + j]) * scale;
            }
            oe_finish_row(dot, bias + c, oe_panel_columns(n, p), relu6, y + row * ldy + c);
        }
    }
}

#define LP_INT8 __attribute__((target("avx512f,avx512bw,avx512vnni")))

/* int8_rows in vectors: the same products, largest magnitude and nearest-even conversions. */
LP_INT8 static void int8_rows_avx512(const float *x, size_t m, size_t k, const float *smoothing, uint8_t *xq, size_t k4,
                                     float *scales) {
    const __m512i low = _mm512_set1_epi32(-127), high = _mm512_set1_epi32(127), shift = _mm512_set1_epi32(128);
    float *smoothed = smoothing ? malloc(k * sizeof *smoothed) : NULL;
    if (smoothing && smoothed == NULL) abort();
    for (size_t row = 0; row < m; row++) {
        const float *in = x + row * k;
        size_t kk = 0;
        if (smoothing) {
            for (; kk + 16 <= k; kk += 16)
                _mm512_storeu_ps(smoothed + kk, _mm512_mul_ps(_mm512_loadu_ps(in + kk), _mm512_loadu_ps(smoothing + kk)));
            for (; kk < k; kk++) smoothed[kk] = in[kk] * smoothing[kk];
            in = smoothed;
        }
        __m512 most = _mm512_setzero_ps();
        for (kk = 0; kk + 16 <= k; kk += 16) most = _mm512_max_ps(most, _mm512_abs_ps(_mm512_loadu_ps(in + kk)));
        float largest = _mm512_reduce_max_ps(most);
        for (; kk < k; kk++) largest = fmaxf(largest, fabsf(in[kk]));
        float inverse = largest > 0.0f ? 127.0f / largest : 0.0f;
        scales[row] = largest / 127.0f;
        const __m512 times = _mm512_set1_ps(inverse);
        uint8_t *out = xq + row * k4;
        for (kk = 0; kk + 16 <= k; kk += 16) {
            __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(in + kk), times));
            q = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(q, low), high), shift);
            _mm_storeu_si128((__m128i *)(out + kk), _mm512_cvtepi32_epi8(q));
        }
        for (; kk < k; kk++) out[kk] = (uint8_t)(clamp127(lrintf(in[kk] * inverse)) + 128);
        for (; kk < k4; kk++) out[kk] = 128;
    }
    free(smoothed);
}

LP_INT8 static inline __attribute__((always_inline)) void int8_panel_rows(
        const int R, const uint8_t *xq, const float *row_scales, size_t k4, const int8_t *panel,
        const __m512 scales[2], const __m512i shifts[2], const __m512 bias[2], const __mmask16 mask[2], float *y,
        size_t ldy, int relu6) {
    __m512i acc[8][2];
    for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
    for (size_t g = 0; g < k4 / 4; g++) {
        __m512i w0 = _mm512_loadu_si512(panel + g * 4 * LP_PANEL);
        __m512i w1 = _mm512_loadu_si512(panel + g * 4 * LP_PANEL + 64);
        for (int r = 0; r < R; r++) {
            uint32_t four;
            memcpy(&four, xq + (size_t)r * k4 + 4 * g, sizeof four);
            __m512i a = _mm512_set1_epi32((int)four);
            acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], a, w0);
            acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], a, w1);
        }
    }
    const __m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);
    for (int r = 0; r < R; r++) {
        __m512 row_scale = _mm512_set1_ps(row_scales[r]);
        for (int l = 0; l < 2; l++) {
            __m512 dot = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][l], shifts[l]));
            __m512 v = _mm512_add_ps(_mm512_mul_ps(dot, _mm512_mul_ps(row_scale, scales[l])), bias[l]);
            if (relu6) v = _mm512_min_ps(_mm512_max_ps(v, zero), six);
            _mm512_mask_storeu_ps(y + (size_t)r * ldy + l * 16, mask[l], v);
        }
    }
}

LP_INT8 static void int8_linear_avx512(const uint8_t *xq, const float *row_scales, size_t m, size_t k4,
                                       const int8_t *packed, const float *scales, const int32_t *sums, size_t n,
                                       const float *bias, float *y, size_t ldy, int relu6) {
    for (size_t p = 0; p * LP_PANEL < n; p++) {
        const int8_t *panel = packed + p * LP_PANEL * k4;
        const size_t c = p * LP_PANEL;
        const oe_panel_edge e = oe_panel_edges(oe_panel_columns(n, p), bias + c);
        __m512 s[2] = {_mm512_loadu_ps(scales + c), _mm512_loadu_ps(scales + c + 16)};
        __m512i shift[2] = {_mm512_slli_epi32(_mm512_loadu_si512(sums + c), 7),
                            _mm512_slli_epi32(_mm512_loadu_si512(sums + c + 16), 7)};
        float *out = y + c;
        size_t row = 0;
        for (; row + 8 <= m; row += 8)
            int8_panel_rows(8, xq + row * k4, row_scales + row, k4, panel, s, shift, e.bias, e.mask, out + row * ldy, ldy, relu6);
        for (; row < m; row++)
            int8_panel_rows(1, xq + row * k4, row_scales + row, k4, panel, s, shift, e.bias, e.mask, out + row * ldy, ldy, relu6);
    }
}

void oe_packed_linear_int8(const float *x, size_t m, size_t k, const float *smoothing, const int8_t *packed,
                           const float *scales, const int32_t *sums, size_t n, const float *bias, float *y, size_t ldy,
                           int relu6) {
    if (m == 0 || n == 0) return;
    size_t k4 = round_up(k, 4), block = m < LP_ROW_BLOCK ? m : LP_ROW_BLOCK;
    uint8_t *xq = malloc(block * k4);
    float *row_scales = malloc(block * sizeof *row_scales);
    if (xq == NULL || row_scales == NULL) abort();
    int native = oe_lowp_native(2);
    for (size_t row = 0; row < m; row += LP_ROW_BLOCK) {
        size_t rows = m - row < LP_ROW_BLOCK ? m - row : LP_ROW_BLOCK;
        if (native) {
            int8_rows_avx512(x + row * k, rows, k, smoothing, xq, k4, row_scales);
            int8_linear_avx512(xq, row_scales, rows, k4, packed, scales, sums, n, bias, y + row * ldy, ldy, relu6);
        } else {
            int8_rows(x + row * k, rows, k, smoothing, xq, k4, row_scales);
            int8_linear_generic(xq, row_scales, rows, k4, packed, scales, sums, n, bias, y + row * ldy, ldy, relu6);
        }
    }
    free(row_scales);
    free(xq);
}
