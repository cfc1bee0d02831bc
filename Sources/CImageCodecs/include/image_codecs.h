#ifndef OMNIEMBED_IMAGE_CODECS_H
#define OMNIEMBED_IMAGE_CODECS_H

#include <stddef.h>

/* JPEG (libjpeg-turbo) and PNG (libpng) decoding from memory into 8-bit RGB. Both libraries report fatal errors by
   calling an exit function; here it long-jumps back, so a corrupt file is an error return, never an abort. */

typedef enum { OE_IMAGE_JPEG = 1, OE_IMAGE_PNG = 2 } oe_image_format;

typedef struct {
    oe_image_format format;
    int width, height;      /* as stored, before the EXIF orientation */
    int components;         /* stored colour components: 1 gray, 3 colour, 4 CMYK/YCCK (JPEG) */
    int has_alpha;          /* PNG with an alpha channel or tRNS */
    int bit_depth;
    int progressive;        /* progressive JPEG / interlaced PNG */
    int orientation;        /* EXIF orientation 1...8 (1 when absent) */
} oe_image_info;

/* Reads the header only. Returns 0, or -1 with a message in `error`. */
int oe_image_probe(const unsigned char *data, size_t size, oe_image_info *info, char *error, size_t error_size);

/* Width and height of the decoded image for a JPEG DCT scale of 1/`denominator` (1, 2, 4 or 8; PNG ignores it). */
void oe_image_scaled_size(const oe_image_info *info, int denominator, int *width, int *height);

/* Decodes into `rgb` (capacity bytes, at least 3 × the scaled width × height), rows packed, alpha composited over
   white, 16-bit samples cut to their high byte. Any corruption libjpeg only warns about (a truncated scan, bad
   Huffman data) is an error too. Returns 0, or -1 with a message in `error`. */
int oe_image_decode(const unsigned char *data, size_t size, int denominator, unsigned char *rgb, size_t capacity,
                    char *error, size_t error_size);

#endif
