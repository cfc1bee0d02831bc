#ifndef OMNIEMBED_VIDEO_CODECS_H
#define OMNIEMBED_VIDEO_CODECS_H

#include <stddef.h>
#include <stdint.h>

/* Video and compressed audio through FFmpeg's libraries, read from memory only: the demuxers are limited to the
   containers users upload, no protocol is enabled (a file can never make the library open a path or a URL), and
   every decoder runs on one thread (the caller decodes several items at once). */

typedef struct oe_video oe_video;

enum {
    OE_VIDEO_OK = 0,
    OE_VIDEO_CORRUPT = 1,      /* not a container we read, truncated, or a stream that does not decode */
    OE_VIDEO_UNSUPPORTED = 2,  /* a codec without a decoder here: the message names it */
    OE_VIDEO_TOO_LARGE = 3,    /* past a limit given to the call */
    OE_VIDEO_NO_MEMORY = 4,
    OE_VIDEO_STOPPED = 5,      /* the caller's `keep_going` said stop */
};

/* Asked between decoded frames whether to go on (the request's deadline, its client): 0 stops the call. */
typedef int (*oe_video_keep_going)(void *context);

typedef struct {
    char format[32];           /* the demuxer's name */
    int video_stream, audio_stream;  /* the first of each kind, -1 when none */
    int width, height;         /* the video's coded size, before rotation */
    int rotation;              /* clockwise degrees the display matrix asks for: 0, 90, 180 or 270 */
    double duration;           /* seconds; the container's, else the longest stream's; 0 when unknown */
    int64_t frames;            /* the video stream's declared frame count; 0 when unknown */
    double frame_rate;         /* average frames per second; 0 when unknown */
    char video_codec[32], audio_codec[32];
    int sample_rate, channels;
} oe_video_info;

typedef struct {
    int width, height;         /* after rotation */
    double seconds;            /* the frame's presentation time from the stream's start */
    int decoded;               /* frames decoded to reach it */
    double convert_seconds;    /* of the call, spent converting and rotating the frame */
} oe_video_frame_info;

/* Opens `size` bytes at `data`, which must outlive the handle. Reading the headers is bounded by `probe_bytes`; more
   than `max_streams` streams, or a video stream declaring frames of more than `max_pixels`, is OE_VIDEO_TOO_LARGE
   (and a frame probing decodes may have no more). On failure returns a code, with a message in `message`. */
int oe_video_open(const uint8_t *data, size_t size, int64_t probe_bytes, int max_streams, int64_t max_pixels,
                  oe_video **out, oe_video_info *info, char *message, size_t message_size);
void oe_video_close(oe_video *video);

/* Decoders for the first video and audio streams; OE_VIDEO_UNSUPPORTED names a codec without one. A video decoder
   refuses frames of more than `max_pixels`, and decodes at reduced size where it can (MJPEG) while the shorter side
   stays at least `min_shorter_side` (0: full size). */
int oe_video_prepare(oe_video *video, int64_t max_pixels, int min_shorter_side, char *message, size_t message_size);

/* The first frame shown at or after `seconds` from the stream's start (the last one when the stream ends first):
   seeks to the keyframe before it and decodes forward, at most `max_frames` frames (OE_VIDEO_TOO_LARGE past them).
   Packed RGB24 (`info.width` × `info.height` × 3 bytes, at most `capacity`), converted as the ffmpeg CLI converts to
   rgb24, then rotated as the display matrix asks. */
int oe_video_frame(oe_video *video, double seconds, int max_frames, uint8_t *rgb, size_t capacity,
                   oe_video_frame_info *info, oe_video_keep_going keep_going, void *context, char *message,
                   size_t message_size);

/* The first audio stream from its start, channels averaged to mono, at the decoder's own rate (OE_VIDEO_CORRUPT
   outside [min_rate, max_rate]): at most `max_seconds` of it (OE_VIDEO_TOO_LARGE past them). `*samples` is malloc'd
   (free with oe_video_free_samples). */
int oe_video_audio(oe_video *video, double max_seconds, int min_rate, int max_rate, float **samples, int64_t *count,
                   int *rate, oe_video_keep_going keep_going, void *context, char *message, size_t message_size);
void oe_video_free_samples(float *samples);

/* Where FFmpeg's log lines go: `sink` gets each line at FFmpeg's level (AV_LOG_*). Lines below warnings are dropped. */
void oe_video_set_log(void (*sink)(int level, const char *line));

#endif
