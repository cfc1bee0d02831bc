#ifndef OMNIEMBED_IMAGE_PLANES_H
#define OMNIEMBED_IMAGE_PLANES_H

#include <stddef.h>
#include <stdint.h>

/* Image tower input from decoded pixels. */

/* Channel-major planes of `pixels` interleaved RGB bytes, each value (byte − mean) / scale. */
void oe_planes_from_rgb(const uint8_t *rgb, size_t pixels, float mean, float scale, float *out);

#endif
