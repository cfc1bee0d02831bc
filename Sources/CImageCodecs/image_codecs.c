#include "image_codecs.h"

#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>

static void set_error(char *error, size_t size, const char *message) {
    if (size) snprintf(error, size, "%s", message);
}

static int is_png(const unsigned char *data, size_t size) {
    return size >= 8 && png_sig_cmp((png_const_bytep)data, 0, 8) == 0;
}

static int is_jpeg(const unsigned char *data, size_t size) {
    return size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF;
}

/* ---------- JPEG ---------- */

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    int warnings;
} jpeg_failure;

static void jpeg_exit(j_common_ptr cinfo) {
    jpeg_failure *failure = (jpeg_failure *)cinfo->err;
    cinfo->err->format_message(cinfo, failure->message);
    longjmp(failure->jump, 1);
}

static void jpeg_note(j_common_ptr cinfo, int level) {
    jpeg_failure *failure = (jpeg_failure *)cinfo->err;
    if (level < 0 && failure->warnings++ == 0) cinfo->err->format_message(cinfo, failure->message);
}

/* A progressive JPEG can hold thousands of tiny scans, each a pass over the whole image (a CPU bomb, as
   libjpeg-turbo's documentation warns); real encoders write about ten. */
#define MAX_JPEG_SCANS 500

static void jpeg_progress(j_common_ptr cinfo) {
    if (cinfo->is_decompressor && ((j_decompress_ptr)cinfo)->input_scan_number > MAX_JPEG_SCANS) {
        jpeg_failure *failure = (jpeg_failure *)cinfo->err;
        snprintf(failure->message, sizeof failure->message, "more than %d progressive scans", MAX_JPEG_SCANS);
        longjmp(failure->jump, 1);
    }
}

static unsigned read16(const unsigned char *p, int little) { return little ? p[0] | p[1] << 8 : p[0] << 8 | p[1]; }
static unsigned long read32(const unsigned char *p, int little) {
    return little ? (unsigned long)p[0] | (unsigned long)p[1] << 8 | (unsigned long)p[2] << 16 | (unsigned long)p[3] << 24
                  : (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 | (unsigned long)p[2] << 8 | p[3];
}

/* Orientation (tag 0x0112) from IFD0 of an APP1 Exif payload; 1 when absent or malformed. */
static int exif_orientation(const unsigned char *p, size_t n) {
    if (n < 14 || memcmp(p, "Exif\0\0", 6) != 0) return 1;
    const unsigned char *tiff = p + 6;
    size_t size = n - 6;
    int little;
    if (tiff[0] == 'I' && tiff[1] == 'I') little = 1;
    else if (tiff[0] == 'M' && tiff[1] == 'M') little = 0;
    else return 1;
    unsigned long ifd = read32(tiff + 4, little);
    if (ifd + 2 > size) return 1;
    unsigned entries = read16(tiff + ifd, little);
    for (unsigned i = 0; i < entries; i++) {
        size_t entry = ifd + 2 + 12 * (size_t)i;
        if (entry + 12 > size) return 1;
        if (read16(tiff + entry, little) == 0x0112 && read16(tiff + entry + 2, little) == 3) {
            unsigned value = read16(tiff + entry + 8, little);
            return value >= 1 && value <= 8 ? (int)value : 1;
        }
    }
    return 1;
}

static void jpeg_fill_info(struct jpeg_decompress_struct *cinfo, oe_image_info *info) {
    info->format = OE_IMAGE_JPEG;
    info->width = (int)cinfo->image_width;
    info->height = (int)cinfo->image_height;
    info->components = cinfo->num_components;
    info->has_alpha = 0;
    info->bit_depth = cinfo->data_precision;
    info->progressive = cinfo->progressive_mode;
    info->orientation = 1;
    for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1) {
            int o = exif_orientation(m->data, m->data_length);
            if (o != 1) { info->orientation = o; break; }
        }
}

static int jpeg_run(const unsigned char *data, size_t size, oe_image_info *info, int denominator,
                    unsigned char *rgb, size_t capacity, char *error, size_t error_size) {
    struct jpeg_decompress_struct cinfo;
    jpeg_failure failure;
    struct jpeg_progress_mgr progress = {.progress_monitor = jpeg_progress};
    memset(&failure, 0, sizeof failure);
    cinfo.err = jpeg_std_error(&failure.base);
    failure.base.error_exit = jpeg_exit;
    failure.base.emit_message = jpeg_note;
    unsigned char *volatile row = NULL;  /* volatile: read after the long jump */
    if (setjmp(failure.jump)) {
        char message[JMSG_LENGTH_MAX + 32];
        snprintf(message, sizeof message, "corrupt JPEG: %s", failure.message);
        set_error(error, error_size, message);
        jpeg_destroy_decompress(&cinfo);
        free((void *)row);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    cinfo.progress = &progress;
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&cinfo, TRUE);
    jpeg_fill_info(&cinfo, info);
    if (!rgb) {
        jpeg_destroy_decompress(&cinfo);
        return 0;
    }
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    cinfo.scale_num = 1;
    cinfo.scale_denom = (unsigned)denominator;
    jpeg_start_decompress(&cinfo);
    size_t width = cinfo.output_width, height = cinfo.output_height;
    if (width * height * 3 > capacity) {
        set_error(error, error_size, "decode buffer too small");
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    if (cmyk && !(row = malloc(width * 4))) {
        set_error(error, error_size, "out of memory");
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        unsigned char *out = rgb + (size_t)cinfo.output_scanline * width * 3;
        JSAMPROW target = cmyk ? row : out;
        jpeg_read_scanlines(&cinfo, &target, 1);
        if (cmyk) {
            /* Adobe writers store CMYK inverted; as Pillow: RGB = (255 - C)(255 - K) / 255 per channel. */
            int inverted = cinfo.saw_Adobe_marker;
            for (size_t x = 0; x < width; x++) {
                unsigned k = inverted ? row[4 * x + 3] : 255u - row[4 * x + 3];
                for (int c = 0; c < 3; c++) {
                    unsigned v = (inverted ? row[4 * x + c] : 255u - row[4 * x + c]) * k + 128;
                    out[3 * x + c] = (unsigned char)((v + (v >> 8)) >> 8);
                }
            }
        }
    }
    jpeg_finish_decompress(&cinfo);
    free((void *)row);
    int warnings = failure.warnings;
    jpeg_destroy_decompress(&cinfo);
    if (warnings) {
        char message[JMSG_LENGTH_MAX + 40];
        snprintf(message, sizeof message, "corrupt or truncated JPEG: %s", failure.message);
        set_error(error, error_size, message);
        return -1;
    }
    return 0;
}

/* ---------- PNG ---------- */

typedef struct {
    const unsigned char *data;
    size_t size, offset;
    jmp_buf jump;
    char message[200];
} png_source;

static void png_fail(png_structp png, png_const_charp message) {
    png_source *source = png_get_error_ptr(png);
    snprintf(source->message, sizeof source->message, "%s", message);
    longjmp(source->jump, 1);
}

static void png_ignore_warning(png_structp png, png_const_charp message) { (void)png; (void)message; }

static void png_read_memory(png_structp png, png_bytep out, size_t length) {
    png_source *source = png_get_io_ptr(png);
    if (length > source->size - source->offset) png_error(png, "truncated file");
    memcpy(out, source->data + source->offset, length);
    source->offset += length;
}

static int png_run(const unsigned char *data, size_t size, oe_image_info *info, unsigned char *rgb,
                   size_t capacity, char *error, size_t error_size) {
    png_source source = {.data = data, .size = size, .offset = 0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &source, png_fail, png_ignore_warning);
    png_infop pinfo = png ? png_create_info_struct(png) : NULL;
    if (!png || !pinfo) {
        set_error(error, error_size, "out of memory");
        png_destroy_read_struct(&png, NULL, NULL);
        return -1;
    }
    unsigned char *volatile rgba = NULL;  /* volatile: freed after the long jump */
    png_bytep *volatile rows = NULL;
    if (setjmp(source.jump)) {
        char message[240];
        snprintf(message, sizeof message, "corrupt PNG: %s", source.message);
        set_error(error, error_size, message);
        png_destroy_read_struct(&png, &pinfo, NULL);
        free((void *)rgba);
        free((void *)rows);
        return -1;
    }
    /* Ancillary chunks (text, ICC profiles) may not expand beyond 8 MiB: a decompression bomb there is refused. */
    png_set_chunk_malloc_max(png, 8u << 20);
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_set_read_fn(png, &source, png_read_memory);
    png_read_info(png, pinfo);
    png_uint_32 width, height;
    int depth, color, interlace;
    png_get_IHDR(png, pinfo, &width, &height, &depth, &color, &interlace, NULL, NULL);
    info->format = OE_IMAGE_PNG;
    info->width = (int)width;
    info->height = (int)height;
    info->components = (color & PNG_COLOR_MASK_COLOR) ? 3 : 1;
    info->has_alpha = (color & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, pinfo, PNG_INFO_tRNS);
    info->bit_depth = depth;
    info->progressive = interlace != PNG_INTERLACE_NONE;
    info->orientation = 1;
    if (!rgb) {
        png_destroy_read_struct(&png, &pinfo, NULL);
        return 0;
    }
    if ((size_t)width * height * 3 > capacity) {
        set_error(error, error_size, "decode buffer too small");
        png_destroy_read_struct(&png, &pinfo, NULL);
        return -1;
    }
    png_set_expand(png);                 /* palette → RGB, gray < 8 bits → 8, tRNS → alpha */
    png_set_strip_16(png);               /* high byte, as Pillow */
    png_set_gray_to_rgb(png);
    png_set_add_alpha(png, 0xFF, PNG_FILLER_AFTER);
    png_set_interlace_handling(png);
    png_read_update_info(png, pinfo);
    rgba = malloc((size_t)width * height * 4);
    rows = malloc(sizeof *rows * height);
    if (!rgba || !rows) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < height; y++) rows[y] = rgba + (size_t)y * width * 4;
    png_read_image(png, (png_bytepp)rows);
    png_read_end(png, NULL);
    for (size_t i = 0, n = (size_t)width * height; i < n; i++) {
        unsigned a = rgba[4 * i + 3];
        for (int c = 0; c < 3; c++) {
            unsigned v = rgba[4 * i + c] * a + 255u * (255u - a) + 128;
            rgb[3 * i + c] = (unsigned char)((v + (v >> 8)) >> 8);
        }
    }
    png_destroy_read_struct(&png, &pinfo, NULL);
    free((void *)rgba);
    free((void *)rows);
    return 0;
}

/* ---------- entry points ---------- */

int oe_image_probe(const unsigned char *data, size_t size, oe_image_info *info, char *error, size_t error_size) {
    memset(info, 0, sizeof *info);
    if (is_jpeg(data, size)) return jpeg_run(data, size, info, 1, NULL, 0, error, error_size);
    if (is_png(data, size)) return png_run(data, size, info, NULL, 0, error, error_size);
    set_error(error, error_size, "not a JPEG or PNG file");
    return -1;
}

void oe_image_scaled_size(const oe_image_info *info, int denominator, int *width, int *height) {
    if (info->format != OE_IMAGE_JPEG || denominator <= 1) {
        *width = info->width;
        *height = info->height;
        return;
    }
    /* libjpeg's jdiv_round_up(dimension, denominator). */
    *width = (info->width + denominator - 1) / denominator;
    *height = (info->height + denominator - 1) / denominator;
}

int oe_image_decode(const unsigned char *data, size_t size, int denominator, unsigned char *rgb, size_t capacity,
                    char *error, size_t error_size) {
    oe_image_info info;
    memset(&info, 0, sizeof info);
    if (denominator != 1 && denominator != 2 && denominator != 4 && denominator != 8) {
        set_error(error, error_size, "scale denominator must be 1, 2, 4 or 8");
        return -1;
    }
    if (is_jpeg(data, size)) return jpeg_run(data, size, &info, denominator, rgb, capacity, error, error_size);
    if (is_png(data, size)) return png_run(data, size, &info, rgb, capacity, error, error_size);
    set_error(error, error_size, "not a JPEG or PNG file");
    return -1;
}
