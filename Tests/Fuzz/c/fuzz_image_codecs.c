/* libFuzzer target for the C image shim (libjpeg-turbo and libpng with their error exits long-jumping back),
   built by scripts/check/fuzz with clang -fsanitize=fuzzer,address,undefined. */
#include <stdint.h>
#include <stdlib.h>
#include "image_codecs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    oe_image_info info;
    char error[256];
    if (oe_image_probe(data, size, &info, error, sizeof error) != 0) return 0;
    if (info.width <= 0 || info.height <= 0 || (long long)info.width * info.height > 4000000) return 0;
    for (int denominator = 1; denominator <= 8; denominator *= 2) {
        int width, height;
        oe_image_scaled_size(&info, denominator, &width, &height);
        size_t capacity = (size_t)width * (size_t)height * 3;
        unsigned char *rgb = malloc(capacity);
        if (!rgb) return 0;
        oe_image_decode(data, size, denominator, rgb, capacity, error, sizeof error);
        free(rgb);
        if (info.format != OE_IMAGE_JPEG) break;
    }
    return 0;
}
