#include "image_planes.h"
#include "variants.h"

OE_BODY void planes_from_rgb_body(const uint8_t *rgb, size_t pixels, float mean, float scale, float *out) {
    for (size_t c = 0; c < 3; c++) {
        const uint8_t *source = rgb + c;
        float *plane = out + c * pixels;
        for (size_t i = 0; i < pixels; i++) plane[i] = ((float)source[3 * i] - mean) / scale;
    }
}
OE_VOID_VARIANTS(oe_planes_from_rgb, planes_from_rgb_body,
                 (const uint8_t *rgb, size_t pixels, float mean, float scale, float *out),
                 (rgb, pixels, mean, scale, out))
