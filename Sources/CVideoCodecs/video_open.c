#include "video_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/display.h>

/* Opening a container from memory: the I/O callbacks, logging, the header checks and the decoders. */

static const char *const FORMATS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,ogg,mp3,flac,aac";

void oe_video_say(char *message, size_t size, const char *format, ...) {
    if (message == NULL || size == 0) return;
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(message, size, format, arguments);
    va_end(arguments);
}

static void copy_name(char *out, size_t size, const char *name) {
    snprintf(out, size, "%s", name ? name : "unknown");
}

/* ---- I/O from memory ------------------------------------------------------------------------------------------- */

static int read_packet(void *opaque, uint8_t *buffer, int size) {
    oe_video *v = opaque;
    if (v->position >= v->size) return AVERROR_EOF;
    size_t n = v->size - v->position;
    if (n > (size_t)size) n = (size_t)size;
    memcpy(buffer, v->data + v->position, n);
    v->position += n;
    return (int)n;
}

static int64_t seek(void *opaque, int64_t offset, int whence) {
    oe_video *v = opaque;
    int64_t base;
    switch (whence & ~AVSEEK_FORCE) {
    case AVSEEK_SIZE: return (int64_t)v->size;
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = (int64_t)v->position; break;
    case SEEK_END: base = (int64_t)v->size; break;
    default: return AVERROR(EINVAL);
    }
    if ((offset > 0 && base > INT64_MAX - offset) || base + offset < 0 || base + offset > (int64_t)v->size)
        return AVERROR(EINVAL);
    v->position = (size_t)(base + offset);
    return (int64_t)v->position;
}

/* Any attempt to open another resource (a MOV data reference, an HLS segment) fails. */
static int refuse_open(struct AVFormatContext *s, AVIOContext **pb, const char *url, int flags, AVDictionary **options) {
    (void)s; (void)pb; (void)url; (void)flags; (void)options;
    return AVERROR(EPERM);
}

/* ---- logging --------------------------------------------------------------------------------------------------- */

typedef void (*log_function)(int, const char *);
/* Set when a pipeline loads, read by any decoding thread. */
static _Atomic(log_function) log_sink;

static void log_line(void *context, int level, const char *format, va_list arguments) {
    log_function sink = atomic_load(&log_sink);
    if (level > AV_LOG_WARNING || sink == NULL) return;
    char line[512];
    int prefix = 1;
    av_log_format_line2(context, level, format, arguments, line, sizeof line, &prefix);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
    if (n > 0) sink(level, line);
}

/* FFmpeg's lines go to log_line, dropped until a sink is set (its default callback writes to stderr), and its
   allocations are capped so that no header can make a demuxer ask for gigabytes: once, before the first use. */
static pthread_once_t setup_once = PTHREAD_ONCE_INIT;
static void setup(void) {
    av_log_set_callback(log_line);
    av_max_alloc(256u << 20);
}

void oe_video_set_log(void (*sink)(int, const char *)) {
    pthread_once(&setup_once, setup);
    atomic_store(&log_sink, sink);
}

/* ---- opening --------------------------------------------------------------------------------------------------- */

void oe_video_close(oe_video *v) {
    if (v == NULL) return;
    avcodec_free_context(&v->video);
    avcodec_free_context(&v->audio);
    av_packet_free(&v->packet);
    av_frame_free(&v->frame);
    av_frame_free(&v->last);
    av_frame_free(&v->rgb);
    sws_freeContext(v->scaler);
    swr_free(&v->resampler);
    avformat_close_input(&v->format);
    if (v->io) av_freep(&v->io->buffer);
    avio_context_free(&v->io);
    free(v);
}

/* Clockwise degrees, as the ffmpeg CLI's autorotation reads the display matrix (flips are not applied there either). */
static int rotation_of(const AVStream *stream) {
    const int32_t *matrix = (const int32_t *)av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, NULL);
    if (matrix == NULL) return 0;
    double theta = -round(av_display_rotation_get(matrix));
    if (isnan(theta)) return 0;
    theta -= 360 * floor(theta / 360 + 0.9 / 360);
    if (fabs(theta - 90) < 1) return 90;
    if (fabs(theta - 180) < 1) return 180;
    if (fabs(theta - 270) < 1) return 270;
    return 0;
}

int oe_video_open(const uint8_t *data, size_t size, int64_t probe_bytes, int max_streams, int64_t max_pixels,
                  oe_video **out, oe_video_info *info, char *message, size_t message_size) {
    pthread_once(&setup_once, setup);
    *out = NULL;
    memset(info, 0, sizeof *info);
    info->video_stream = info->audio_stream = -1;
    oe_video *v = calloc(1, sizeof *v);
    if (v == NULL) return OE_VIDEO_NO_MEMORY;
    v->data = data;
    v->size = size;
    v->video_stream = v->audio_stream = -1;
    enum { buffer_size = 1 << 16 };
    uint8_t *buffer = av_malloc(buffer_size);
    v->format = avformat_alloc_context();
    v->packet = av_packet_alloc();
    v->frame = av_frame_alloc();
    v->last = av_frame_alloc();
    if (buffer) v->io = avio_alloc_context(buffer, buffer_size, 0, v, read_packet, NULL, seek);
    if (!buffer || !v->format || !v->packet || !v->frame || !v->last || !v->io) {
        if (!v->io) av_free(buffer);
        oe_video_close(v);
        return OE_VIDEO_NO_MEMORY;
    }
    AVFormatContext *format = v->format;
    format->pb = v->io;
    format->flags |= AVFMT_FLAG_CUSTOM_IO;
    format->io_open = refuse_open;
    format->probesize = probe_bytes;
    format->max_analyze_duration = AV_TIME_BASE;
    format->format_whitelist = av_strdup(FORMATS);
    format->protocol_whitelist = av_strdup("none");
    format->protocol_blacklist = av_strdup("ALL");
    AVDictionary *options = NULL;
    av_dict_set(&options, "enable_drefs", "0", 0);
    int status = avformat_open_input(&v->format, NULL, NULL, &options);
    av_dict_free(&options);
    if (status < 0) {
        v->format = NULL;  /* freed by avformat_open_input */
        oe_video_say(message, message_size, "not a video or audio container this service reads (%s)", av_err2str(status));
        oe_video_close(v);
        return OE_VIDEO_CORRUPT;
    }
    format = v->format;
    /* What the container declares, before probing decodes anything. (The whitelisted demuxers create their streams
       while reading the header, so probing adds none; FFmpeg's own max_streams, 1000, bounds that.) */
    for (unsigned i = 0; i < format->nb_streams; i++) {
        const AVCodecParameters *p = format->streams[i]->codecpar;
        if (p->codec_type == AVMEDIA_TYPE_VIDEO && max_pixels > 0 && (int64_t)p->width * p->height > max_pixels) {
            oe_video_say(message, message_size, "frames of %d × %d pixels (at most %lld)", p->width, p->height, (long long)max_pixels);
            oe_video_close(v);
            return OE_VIDEO_TOO_LARGE;
        }
    }
    if ((int)format->nb_streams > max_streams) {
        oe_video_say(message, message_size, "%u streams (at most %d)", format->nb_streams, max_streams);
        oe_video_close(v);
        return OE_VIDEO_TOO_LARGE;
    }
    /* Probing may decode a frame or two: on one thread, and refusing frames over the pixel limit, so a header that
       declares 60000 × 60000 is never allocated. */
    unsigned probed = format->nb_streams;
    AVDictionary **stream_options = probed ? calloc(probed, sizeof *stream_options) : NULL;
    for (unsigned i = 0; stream_options && i < probed; i++) {
        av_dict_set(&stream_options[i], "threads", "1", 0);
        if (max_pixels > 0) av_dict_set_int(&stream_options[i], "max_pixels", max_pixels, 0);
    }
    status = avformat_find_stream_info(format, stream_options);
    for (unsigned i = 0; stream_options && i < probed; i++) av_dict_free(&stream_options[i]);
    free(stream_options);
    if (status < 0) {
        oe_video_say(message, message_size, "the container's streams could not be read (%s)", av_err2str(status));
        oe_video_close(v);
        return OE_VIDEO_CORRUPT;
    }
    copy_name(info->format, sizeof info->format, format->iformat ? format->iformat->name : NULL);
    double longest = 0;
    for (unsigned i = 0; i < format->nb_streams; i++) {
        const AVStream *stream = format->streams[i];
        const AVCodecParameters *p = stream->codecpar;
        double length = oe_video_seconds(stream->duration, stream->time_base);
        if (length > longest) longest = length;
        if (p->codec_type == AVMEDIA_TYPE_VIDEO && v->video_stream < 0 && !(stream->disposition & AV_DISPOSITION_ATTACHED_PIC)) {
            v->video_stream = (int)i;
            info->width = p->width;
            info->height = p->height;
            info->frames = stream->nb_frames;
            AVRational rate = stream->avg_frame_rate.num > 0 ? stream->avg_frame_rate : stream->r_frame_rate;
            info->frame_rate = rate.num > 0 && rate.den > 0 ? av_q2d(rate) : 0;
            v->rotation = info->rotation = rotation_of(stream);
            copy_name(info->video_codec, sizeof info->video_codec, avcodec_get_name(p->codec_id));
        } else if (p->codec_type == AVMEDIA_TYPE_AUDIO && v->audio_stream < 0) {
            v->audio_stream = (int)i;
            info->sample_rate = p->sample_rate;
            info->channels = p->ch_layout.nb_channels;
            copy_name(info->audio_codec, sizeof info->audio_codec, avcodec_get_name(p->codec_id));
        }
    }
    info->video_stream = v->video_stream;
    info->audio_stream = v->audio_stream;
    info->duration = format->duration > 0 ? format->duration / (double)AV_TIME_BASE : longest;
    *out = v;
    return OE_VIDEO_OK;
}

static int open_decoder(oe_video *v, int index, AVCodecContext **out, int64_t max_pixels, int min_shorter_side,
                        char *message, size_t size) {
    const AVCodecParameters *p = v->format->streams[index]->codecpar;
    const AVCodec *codec = avcodec_find_decoder(p->codec_id);
    if (codec == NULL) {
        if (p->codec_id == AV_CODEC_ID_NONE) {
            char tag[AV_FOURCC_MAX_STRING_SIZE] = {0};
            av_fourcc_make_string(tag, p->codec_tag);
            oe_video_say(message, size, "an unknown codec (tag %s)", tag);
        } else {
            oe_video_say(message, size, "%s", avcodec_get_name(p->codec_id));
        }
        return OE_VIDEO_UNSUPPORTED;
    }
    AVCodecContext *context = avcodec_alloc_context3(codec);
    if (context == NULL) return OE_VIDEO_NO_MEMORY;
    *out = context;
    if (avcodec_parameters_to_context(context, p) < 0) return OE_VIDEO_NO_MEMORY;
    context->thread_count = 1;
    context->pkt_timebase = v->format->streams[index]->time_base;
    if (max_pixels > 0) context->max_pixels = max_pixels;
    /* A decoder that can decode at 1/2, 1/4 or 1/8 size (MJPEG's DCT scaling) does so while the shorter side stays
       at least `min_shorter_side`, as the image decoder scales a JPEG. */
    int shorter = p->width < p->height ? p->width : p->height;
    for (int lowres = codec->max_lowres; min_shorter_side > 0 && lowres > 0; lowres--) {
        if (AV_CEIL_RSHIFT(shorter, lowres) >= min_shorter_side) {
            context->lowres = lowres;
            break;
        }
    }
    int status = avcodec_open2(context, codec, NULL);
    if (status < 0) {
        oe_video_say(message, size, "the %s stream's decoder refused it (%s)", avcodec_get_name(p->codec_id), av_err2str(status));
        return OE_VIDEO_CORRUPT;
    }
    return OE_VIDEO_OK;
}

int oe_video_prepare(oe_video *v, int64_t max_pixels, int min_shorter_side, char *message, size_t message_size) {
    int status = OE_VIDEO_OK;
    if (v->video_stream >= 0 && v->video == NULL)
        status = open_decoder(v, v->video_stream, &v->video, max_pixels, min_shorter_side, message, message_size);
    if (status == OE_VIDEO_OK && v->audio_stream >= 0 && v->audio == NULL)
        status = open_decoder(v, v->audio_stream, &v->audio, 0, 0, message, message_size);
    return status;
}

/* ---- decoding -------------------------------------------------------------------------------------------------- */

int oe_video_next_frame(oe_video *v, AVCodecContext *decoder, int stream) {
    while (1) {
        int status = avcodec_receive_frame(decoder, v->frame);
        if (status != AVERROR(EAGAIN)) return status;
        status = av_read_frame(v->format, v->packet);
        v->packets_read = 1;
        if (status < 0) {
            /* The container is done: drain the decoder (a second drain request fails, and so ends the stream). */
            if (avcodec_send_packet(decoder, NULL) < 0) return AVERROR_EOF;
            continue;
        }
        if (v->packet->stream_index == stream) status = avcodec_send_packet(decoder, v->packet);
        av_packet_unref(v->packet);
        if (status < 0 && status != AVERROR(EAGAIN) && status != AVERROR_INVALIDDATA) return status;
    }
}
