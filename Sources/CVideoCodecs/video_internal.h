#ifndef OMNIEMBED_VIDEO_INTERNAL_H
#define OMNIEMBED_VIDEO_INTERNAL_H

/* What the video codec files share: the handle and message helpers. */

#include "video_codecs.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>

/* An open container: the caller's bytes and the read position, the demuxer, the first video and audio streams' decoders
   (opened by oe_video_prepare), and what decoding reuses between calls. */
struct oe_video {
    const uint8_t *data;
    size_t size, position;
    AVIOContext *io;
    AVFormatContext *format;
    int video_stream, audio_stream, rotation, packets_read;
    AVCodecContext *video, *audio;
    AVPacket *packet;
    AVFrame *frame, *last, *rgb;
    struct SwsContext *scaler;
    SwrContext *resampler;
};

/* printf into `message` (at most `size` bytes), when there is one. */
void oe_video_say(char *message, size_t size, const char *format, ...) __attribute__((format(printf, 3, 4)));

/* The next frame `decoder` gives for stream `stream` into v->frame, reading packets (other streams' skipped) and
   draining the decoder at the end: 0, AVERROR_EOF when the stream is done, or the error that stopped it. A packet
   the decoder refuses as invalid data is skipped, as the CLI skips it. */
int oe_video_next_frame(oe_video *v, AVCodecContext *decoder, int stream);

static inline double oe_video_seconds(int64_t value, AVRational base) {
    return value == AV_NOPTS_VALUE ? 0 : value * av_q2d(base);
}

#endif
