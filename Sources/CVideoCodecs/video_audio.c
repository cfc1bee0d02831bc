#include "video_internal.h"

#include <stdlib.h>
#include <string.h>

/* The soundtrack: decoded from the start, converted to planar float, channels averaged. */

/* Appends `frame`'s samples, channels averaged, to `*samples`; OE_VIDEO_TOO_LARGE past `max_samples`. */
static int append_mono(oe_video *v, const AVFrame *frame, float **samples, int64_t *count, int64_t *capacity,
                       int64_t max_samples, char *message, size_t size) {
    int channels = frame->ch_layout.nb_channels;
    if (channels <= 0 || frame->nb_samples <= 0) return OE_VIDEO_OK;
    if (v->resampler == NULL) {
        AVChannelLayout layout;
        if (av_channel_layout_copy(&layout, &frame->ch_layout) < 0) return OE_VIDEO_NO_MEMORY;
        int status = swr_alloc_set_opts2(&v->resampler, &layout, AV_SAMPLE_FMT_FLTP, frame->sample_rate, &layout,
                                         frame->format, frame->sample_rate, 0, NULL);
        av_channel_layout_uninit(&layout);
        if (status < 0 ||
            swr_init(v->resampler) < 0) {
            oe_video_say(message, size, "the audio stream's samples cannot be converted");
            return OE_VIDEO_UNSUPPORTED;
        }
    }
    if (*count + frame->nb_samples > max_samples) {
        oe_video_say(message, size, "the soundtrack is longer than the limit");
        return OE_VIDEO_TOO_LARGE;
    }
    if (*count + frame->nb_samples > *capacity) {
        int64_t grown = *capacity * 2 > *count + frame->nb_samples ? *capacity * 2 : *count + frame->nb_samples + 65536;
        if (grown > max_samples) grown = max_samples;
        float *more = realloc(*samples, (size_t)grown * sizeof *more);
        if (more == NULL) return OE_VIDEO_NO_MEMORY;
        *samples = more;
        *capacity = grown;
    }
    float **planes = calloc((size_t)channels, sizeof *planes);
    float *buffer = malloc((size_t)channels * (size_t)frame->nb_samples * sizeof *buffer);
    if (planes == NULL || buffer == NULL) {
        free(planes);
        free(buffer);
        return OE_VIDEO_NO_MEMORY;
    }
    for (int c = 0; c < channels; c++) planes[c] = buffer + (size_t)c * frame->nb_samples;
    int converted = swr_convert(v->resampler, (uint8_t **)planes, frame->nb_samples,
                                (const uint8_t **)frame->extended_data, frame->nb_samples);
    if (converted < 0) {
        free(planes);
        free(buffer);
        oe_video_say(message, size, "the audio stream's samples cannot be converted");
        return OE_VIDEO_CORRUPT;
    }
    float *out = *samples + *count;
    for (int i = 0; i < converted; i++) {
        float sum = 0;
        for (int c = 0; c < channels; c++) sum += planes[c][i];
        out[i] = sum / (float)channels;
    }
    *count += converted;
    free(planes);
    free(buffer);
    return OE_VIDEO_OK;
}

int oe_video_audio(oe_video *v, double max_seconds, int min_rate, int max_rate, float **samples, int64_t *count,
                   int *rate, oe_video_keep_going keep_going, void *context, char *message, size_t message_size) {
    int64_t max_samples = 0;
    *samples = NULL;
    *count = 0;
    *rate = 0;
    if (v->audio == NULL) {
        oe_video_say(message, message_size, "no audio stream");
        return OE_VIDEO_CORRUPT;
    }
    /* From the start: seeking back there only when packets were read, since a seek drops the skip of the encoder's
       priming samples (MP3's LAME header, AAC's edit list) that a demuxer applies to its first packets. */
    if (v->packets_read) {
        const AVStream *stream = v->format->streams[v->audio_stream];
        av_seek_frame(v->format, v->audio_stream, stream->start_time == AV_NOPTS_VALUE ? 0 : stream->start_time,
                      AVSEEK_FLAG_BACKWARD);
    }
    avcodec_flush_buffers(v->audio);
    swr_free(&v->resampler);
    int64_t capacity = 0;
    int result = OE_VIDEO_OK, layout_channels = 0, sample_rate = 0, sample_format = -1, frames = 0, status = 0;
    while (result == OE_VIDEO_OK && (status = oe_video_next_frame(v, v->audio, v->audio_stream)) == 0) {
        if (++frames % 64 == 0 && keep_going && !keep_going(context)) result = OE_VIDEO_STOPPED;
        if (sample_rate == 0) {
            /* The decoder's own rate, which may differ from the container's (HE-AAC doubles it). */
            sample_rate = v->frame->sample_rate;
            layout_channels = v->frame->ch_layout.nb_channels;
            sample_format = v->frame->format;
            max_samples = (int64_t)(max_seconds * sample_rate);
            if (sample_rate < min_rate || sample_rate > max_rate || layout_channels < 1 || layout_channels > 64) {
                oe_video_say(message, message_size, "an audio stream of %d Hz, %d channels", sample_rate, layout_channels);
                result = OE_VIDEO_CORRUPT;
            }
        } else if (v->frame->sample_rate != sample_rate || v->frame->ch_layout.nb_channels != layout_channels ||
                   v->frame->format != sample_format) {
            oe_video_say(message, message_size, "the audio stream changes its rate or channels midway");
            result = OE_VIDEO_UNSUPPORTED;
        }
        if (result == OE_VIDEO_OK)
            result = append_mono(v, v->frame, samples, count, &capacity, max_samples, message, message_size);
        av_frame_unref(v->frame);
    }
    if (result == OE_VIDEO_OK && status < 0 && status != AVERROR_EOF) {
        oe_video_say(message, message_size, "the audio stream does not decode (%s)", av_err2str(status));
        result = OE_VIDEO_CORRUPT;
    }
    if (result == OE_VIDEO_OK && *count == 0) {
        oe_video_say(message, message_size, "no audio sample decodes");
        result = OE_VIDEO_CORRUPT;
    }
    if (result != OE_VIDEO_OK) {
        free(*samples);
        *samples = NULL;
        *count = 0;
        return result;
    }
    *rate = sample_rate;
    return OE_VIDEO_OK;
}

void oe_video_free_samples(float *samples) { free(samples); }
