#include "video_internal.h"

#include <string.h>

#include <libavutil/imgutils.h>
#include <libavutil/time.h>

/* Frames: seeking, decoding forward, converting as the CLI converts, rotating. */

/* `frame` to packed RGB24 with the same swscale settings as the CLI's auto-inserted conversion (bicubic flags, the
   frame's colour matrix and range), then rotated. */
static int convert(oe_video *v, const AVFrame *frame, uint8_t *rgb, size_t capacity, oe_video_frame_info *info,
                   char *message, size_t size) {
    int w = frame->width, h = frame->height;
    if (w <= 0 || h <= 0 || (size_t)w * (size_t)h * 3 > capacity) {
        oe_video_say(message, size, "a frame of %d × %d is not the size the header declared", w, h);
        return OE_VIDEO_CORRUPT;
    }
    v->scaler = sws_getCachedContext(v->scaler, w, h, frame->format, w, h, AV_PIX_FMT_RGB24, SWS_BICUBIC, NULL, NULL, NULL);
    if (v->scaler == NULL) {
        oe_video_say(message, size, "frames in pixel format %s cannot be converted", av_get_pix_fmt_name(frame->format));
        return OE_VIDEO_UNSUPPORTED;
    }
    int colorspace = frame->colorspace == AVCOL_SPC_UNSPECIFIED ? SWS_CS_DEFAULT : (int)frame->colorspace;
    const int *coefficients = sws_getCoefficients(colorspace);
    int full_range = frame->color_range == AVCOL_RANGE_JPEG;
    sws_setColorspaceDetails(v->scaler, coefficients, full_range, sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
    if (v->rgb == NULL || v->rgb->width != w || v->rgb->height != h) {
        av_frame_free(&v->rgb);
        v->rgb = av_frame_alloc();
        if (v->rgb == NULL) return OE_VIDEO_NO_MEMORY;
        v->rgb->format = AV_PIX_FMT_RGB24;
        v->rgb->width = w;
        v->rgb->height = h;
        if (av_frame_get_buffer(v->rgb, 0) < 0) return OE_VIDEO_NO_MEMORY;
    }
    sws_scale(v->scaler, (const uint8_t *const *)frame->data, frame->linesize, 0, h, v->rgb->data, v->rgb->linesize);
    const uint8_t *in = v->rgb->data[0];
    const size_t stride = (size_t)v->rgb->linesize[0];
    switch (v->rotation) {
    case 90:   /* clockwise: output row y, column x is input row h-1-x, column y */
        for (int y = 0; y < w; y++)
            for (int x = 0; x < h; x++) memcpy(rgb + ((size_t)y * h + x) * 3, in + (size_t)(h - 1 - x) * stride + (size_t)y * 3, 3);
        info->width = h, info->height = w;
        break;
    case 270:  /* counter-clockwise: output row y, column x is input row x, column w-1-y */
        for (int y = 0; y < w; y++)
            for (int x = 0; x < h; x++) memcpy(rgb + ((size_t)y * h + x) * 3, in + (size_t)x * stride + (size_t)(w - 1 - y) * 3, 3);
        info->width = h, info->height = w;
        break;
    case 180:
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) memcpy(rgb + ((size_t)y * w + x) * 3, in + (size_t)(h - 1 - y) * stride + (size_t)(w - 1 - x) * 3, 3);
        info->width = w, info->height = h;
        break;
    default:
        for (int y = 0; y < h; y++) memcpy(rgb + (size_t)y * w * 3, in + (size_t)y * stride, (size_t)w * 3);
        info->width = w, info->height = h;
    }
    return OE_VIDEO_OK;
}

int oe_video_frame(oe_video *v, double seconds, int max_frames, uint8_t *rgb, size_t capacity,
                   oe_video_frame_info *info, oe_video_keep_going keep_going, void *context, char *message,
                   size_t message_size) {
    memset(info, 0, sizeof *info);
    if (v->video == NULL) {
        oe_video_say(message, message_size, "no video stream");
        return OE_VIDEO_CORRUPT;
    }
    const AVStream *stream = v->format->streams[v->video_stream];
    /* Times count from the container's start, the earliest of its streams', as the CLI's -ss counts them. */
    const int64_t origin = v->format->start_time == AV_NOPTS_VALUE ? 0 : v->format->start_time;
    const int64_t start = av_rescale_q(origin, AV_TIME_BASE_Q, stream->time_base);
    const int64_t target = av_rescale_q(origin + (int64_t)(seconds * AV_TIME_BASE), AV_TIME_BASE_Q, stream->time_base);
    if (av_seek_frame(v->format, v->video_stream, target, AVSEEK_FLAG_BACKWARD) < 0 &&
        av_seek_frame(v->format, v->video_stream, INT64_MIN, AVSEEK_FLAG_BACKWARD) < 0) {
        oe_video_say(message, message_size, "the video stream cannot be seeked");
        return OE_VIDEO_CORRUPT;
    }
    avcodec_flush_buffers(v->video);
    av_frame_unref(v->last);
    int decoded = 0, status = 0;
    while ((status = oe_video_next_frame(v, v->video, v->video_stream)) == 0) {
        if (++decoded % 8 == 0 && keep_going && !keep_going(context)) return OE_VIDEO_STOPPED;
        if (decoded > max_frames) {
            oe_video_say(message, message_size, "more than %d frames to decode to reach %.3f s", max_frames, seconds);
            return OE_VIDEO_TOO_LARGE;
        }
        int64_t pts = v->frame->best_effort_timestamp;
        av_frame_unref(v->last);
        av_frame_move_ref(v->last, v->frame);
        if (pts != AV_NOPTS_VALUE && pts >= target) break;
    }
    if (status < 0 && status != AVERROR_EOF) {
        oe_video_say(message, message_size, "the video stream does not decode (%s)", av_err2str(status));
        return OE_VIDEO_CORRUPT;
    }
    if (v->last->width == 0) {
        oe_video_say(message, message_size, "no video frame decodes at %.3f s", seconds);
        return OE_VIDEO_CORRUPT;
    }
    int64_t pts = v->last->best_effort_timestamp;
    info->seconds = pts == AV_NOPTS_VALUE ? seconds : oe_video_seconds(pts - start, stream->time_base);
    info->decoded = decoded;
    int64_t started = av_gettime_relative();
    status = convert(v, v->last, rgb, capacity, info, message, message_size);
    info->convert_seconds = (av_gettime_relative() - started) / 1e6;
    return status;
}
