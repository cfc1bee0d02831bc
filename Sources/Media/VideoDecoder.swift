import CVideoCodecs

/// Videos (MP4, MOV, WebM/Matroska) and compressed audio (MP3, AAC/M4A, Ogg Vorbis/Opus, FLAC) through FFmpeg's
/// libraries, read from memory only: the demuxers are limited to those containers and no protocol is enabled, so a
/// file can never make the library open a path or a URL.
///
/// Every limit is checked on the container's headers before a frame or sample is decoded: bytes, duration, pixels
/// per frame, streams, and a declared frame count or rate no real video has (a "video bomb"). Frames are found by
/// seeking to the keyframe before each time and decoding forward, at most `maxFramesPerSeek` frames, so a file
/// with keyframes minutes apart cannot buy unbounded decoding.
public struct VideoDecoder: Sendable {
    public var maxBytes: Int
    public var maxSeconds: Double
    public var maxPixels: Int
    public var maxStreams: Int
    public var maxFramesPerSeek: Int
    /// Frames are decoded at reduced size where the decoder can (MJPEG's DCT scaling) while their shorter side stays
    /// at least this long, as `ImageDecoder` scales a JPEG; nil: full size.
    public var minimumShorterSide: Int?
    /// A declared rate above this is refused: no camera films it, and a container claiming it would ask for work out
    /// of proportion to its duration.
    public static let maxFrameRate = 1000.0
    /// Header probing reads at most this much of the file (a MOV's index may sit at its end: seeks are free).
    static let probeBytes: Int64 = 1 << 20
    /// Compressed audio's rates, as `WAVDecoder.minSampleRate` bounds WAV's.
    static let sampleRates = WAVDecoder.minSampleRate...384_000

    public init(maxBytes: Int = 64 << 20, maxSeconds: Double = 600, maxPixels: Int = 40_000_000, maxStreams: Int = 8,
                maxFramesPerSeek: Int = 600, minimumShorterSide: Int? = nil) {
        self.maxBytes = maxBytes
        self.maxSeconds = maxSeconds
        self.maxPixels = maxPixels
        self.maxStreams = maxStreams
        self.maxFramesPerSeek = maxFramesPerSeek
        self.minimumShorterSide = minimumShorterSide
    }

    /// What the container says: its headers, and what FFmpeg's probing finds (it may decode a frame or two, under the
    /// pixel limit).
    public struct Header: Sendable, Equatable {
        public var format: String
        public var duration: Double
        /// Frame size as shown (the display matrix's rotation applied); nil without a video stream.
        public var frameSize: (width: Int, height: Int)? { hasVideo ? (rotation % 180 == 0 ? (width, height) : (height, width)) : nil }
        public var width: Int, height: Int, rotation: Int
        public var hasVideo: Bool, hasAudio: Bool
        public var videoCodec: String?, audioCodec: String?
        public var sampleRate: Int, channels: Int
    }

    /// One decoded frame and the time it is shown at.
    public struct Frame: Sendable {
        public var image: RGBImage
        public var seconds: Double
        /// Frames decoded to reach it (from the keyframe before it).
        public var decoded: Int
        /// Of its decoding, the time spent converting it to RGB and rotating it.
        public var convertSeconds: Double
    }

    /// The times frames are sampled at: 0 for the cover when asked, then `frames` uniform times, each in the middle
    /// of its share of the duration.
    public static func sampleTimes(duration: Double, frames: Int, cover: Bool) -> [Double] {
        (cover ? [0] : []) + (0..<max(0, frames)).map { duration * (Double($0) + 0.5) / Double(frames) }
    }

    /// The headers of `bytes`, every limit checked.
    public func header(of bytes: [UInt8]) throws(MediaError) -> Header {
        try withOpened(bytes) { _, header throws(MediaError) in header }
    }

    /// What `decode` gives: the frames at the times asked, and the soundtrack when asked.
    public struct Decoded: Sendable {
        public var frames: [Frame]
        public var audio: Audio?
    }

    /// The frames shown at `times` (seconds from the start), in order, and with `soundtrack` the first audio stream,
    /// channels averaged to mono, at its own rate: from one opening of the container, the soundtrack first (seeking
    /// back to the start would lose the skip of an encoder's priming samples). `checkpoint` runs before each frame
    /// and between decoded frames, and may throw to stop.
    public func decode<E: Error>(_ bytes: [UInt8], frames times: [Double], soundtrack: Bool,
                                 checkpoint: () throws(E) -> Void) throws(MediaError) -> Result<Decoded, E> {
        try withOpened(bytes) { video, header throws(MediaError) -> Result<Decoded, E> in
            if !times.isEmpty, !header.hasVideo { throw .corrupt("no video stream") }
            if soundtrack, !header.hasAudio { throw .corrupt("no audio stream") }
            try prepare(video)
            var decoded = Decoded(frames: [], audio: nil)
            if soundtrack {
                switch try audio(video, header, checkpoint: checkpoint) {
                case .failure(let error): return .failure(error)
                case .success(let audio): decoded.audio = audio
                }
            }
            for time in times {
                do throws(E) { try checkpoint() } catch { return .failure(error) }
                switch try frame(video, header, at: time, checkpoint: checkpoint) {
                case .failure(let error): return .failure(error)
                case .success(let frame): decoded.frames.append(frame)
                }
            }
            return .success(decoded)
        }
    }

    /// `decode` of frames alone.
    public func frames<E: Error>(_ bytes: [UInt8], at times: [Double],
                                 checkpoint: () throws(E) -> Void) throws(MediaError) -> Result<[Frame], E> {
        try decode(bytes, frames: times, soundtrack: false, checkpoint: checkpoint).map(\.frames)
    }

    /// `decode` of the soundtrack alone.
    public func audio<E: Error>(_ bytes: [UInt8], checkpoint: () throws(E) -> Void) throws(MediaError) -> Result<Audio, E> {
        try decode(bytes, frames: [], soundtrack: true, checkpoint: checkpoint).map { $0.audio! }
    }

    /// `audio(_:checkpoint:)` run to its end.
    public func audio(_ bytes: [UInt8]) throws(MediaError) -> Audio {
        try audio(bytes, checkpoint: { () throws(Never) in }).get()
    }

    private func frame<E: Error>(_ video: OpaquePointer, _ header: Header, at time: Double,
                                 checkpoint: () throws(E) -> Void) throws(MediaError) -> Result<Frame, E> {
        let capacity = header.width * header.height * 3
        var info = oe_video_frame_info()
        var pixels = [UInt8](repeating: 0, count: capacity)
        let status = Stopper.run(checkpoint) { keepGoing, context in
            pixels.withUnsafeMutableBufferPointer { buffer in
                Self.call { message, size in
                    oe_video_frame(video, time, Int32(clamping: maxFramesPerSeek), buffer.baseAddress, capacity, &info,
                                   keepGoing, context, message, size)
                }
            }
        }
        switch status {
        case .failure(let error): return .failure(error)
        case .success(let status): try status.get()
        }
        let count = Int(info.width) * Int(info.height) * 3
        if count < pixels.count { pixels.removeLast(pixels.count - count) }
        return .success(Frame(image: RGBImage(width: Int(info.width), height: Int(info.height), pixels: pixels),
                              seconds: info.seconds, decoded: Int(info.decoded), convertSeconds: info.convert_seconds))
    }

    private func audio<E: Error>(_ video: OpaquePointer, _ header: Header,
                                 checkpoint: () throws(E) -> Void) throws(MediaError) -> Result<Audio, E> {
        // Decoded samples past the declared duration (plus a second of slack for encoder padding) are refused.
        let limit = min(header.duration, maxSeconds) + 1
        var samples: UnsafeMutablePointer<Float>?
        var (count, rate): (Int64, Int32) = (0, 0)
        defer { oe_video_free_samples(samples) }
        let status = Stopper.run(checkpoint) { keepGoing, context in
            Self.call { message, size in
                oe_video_audio(video, limit, Int32(Self.sampleRates.lowerBound), Int32(Self.sampleRates.upperBound),
                               &samples, &count, &rate, keepGoing, context, message, size)
            }
        }
        switch status {
        case .failure(let error): return .failure(error)
        case .success(let status): try status.get()
        }
        guard let samples else { throw .corrupt("no audio sample decodes") }
        return .success(Audio(samples: Array(UnsafeBufferPointer(start: samples, count: Int(count))), sampleRate: Int(rate)))
    }

    private func prepare(_ video: OpaquePointer) throws(MediaError) {
        try Self.call { message, size in oe_video_prepare(video, Int64(maxPixels), Int32(clamping: minimumShorterSide ?? 0), message, size) }.get()
    }

    /// Opens `bytes`, checks the limits on what the headers say, and runs `body` with the handle.
    private func withOpened<T>(_ bytes: [UInt8], _ body: (OpaquePointer, Header) throws(MediaError) -> T) throws(MediaError) -> T {
        guard bytes.count <= maxBytes else { throw .tooLarge("\(bytes.count) bytes (at most \(maxBytes))") }
        return try bytes.withUnsafeBufferPointer { buffer throws(MediaError) -> T in
            var handle: OpaquePointer?
            var info = oe_video_info()
            try Self.call { message, size in
                oe_video_open(buffer.baseAddress, buffer.count, Self.probeBytes, Int32(maxStreams), Int64(maxPixels), &handle,
                              &info, message, size)
            }.get()
            guard let handle else { throw .corrupt("the container could not be opened") }
            defer { oe_video_close(handle) }
            let header = Header(info)
            try check(header, declaredFrames: Int(info.frames), frameRate: info.frame_rate)
            return try body(handle, header)
        }
    }

    private func check(_ header: Header, declaredFrames: Int, frameRate: Double) throws(MediaError) {
        guard header.hasVideo || header.hasAudio else { throw .corrupt("neither a video nor an audio stream") }
        guard header.duration.isFinite, header.duration > 0 else { throw .corrupt("the container states no duration") }
        guard header.duration <= maxSeconds else {
            throw .tooLarge("\(Self.format(header.duration)) s (at most \(Self.format(maxSeconds)) s)")
        }
        if header.hasVideo {
            let (width, height) = (header.width, header.height)
            guard width > 0, height > 0 else { throw .corrupt("the video stream states no frame size") }
            let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
            guard !overflow, pixels <= maxPixels else { throw .tooLarge("frames of \(width) × \(height) pixels (at most \(maxPixels))") }
            guard frameRate <= Self.maxFrameRate,
                  Double(declaredFrames) <= max(1, header.duration) * Self.maxFrameRate else {
                throw .tooLarge("\(declaredFrames) frames declared over \(Self.format(header.duration)) s")
            }
        }
        if header.hasAudio {
            guard Self.sampleRates.contains(header.sampleRate), (1...64).contains(header.channels) else {
                throw .corrupt("an audio stream of \(header.sampleRate) Hz, \(header.channels) channels")
            }
        }
    }

    static func format(_ seconds: Double) -> String { String(Double(Int((seconds * 1000).rounded())) / 1000) }

    /// Runs a C call that writes a message on failure, mapping its status.
    private static func call(_ body: (UnsafeMutablePointer<CChar>, Int) -> Int32) -> Result<Void, MediaError> {
        var message = [CChar](repeating: 0, count: 256)
        let status = message.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
        let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        switch Int(status) {
        case OE_VIDEO_OK: return .success(())
        case OE_VIDEO_UNSUPPORTED: return .failure(.unsupportedFormat("unsupported codec or format: \(text)"))
        case OE_VIDEO_TOO_LARGE: return .failure(.tooLarge(text))
        case OE_VIDEO_NO_MEMORY: return .failure(.tooLarge("out of memory decoding it"))
        default: return .failure(.corrupt(text.isEmpty ? "corrupt or truncated" : text))
        }
    }

    /// Routes FFmpeg's warnings and errors to `sink` (never to stderr).
    public static func routeLog(to sink: @convention(c) (Int32, UnsafePointer<CChar>?) -> Void) {
        oe_video_set_log(sink)
    }
}

extension VideoDecoder.Header {
    init(_ info: oe_video_info) {
        func name<T>(_ tuple: T) -> String {
            withUnsafeBytes(of: tuple) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        format = name(info.format)
        duration = info.duration
        width = Int(info.width)
        height = Int(info.height)
        rotation = Int(info.rotation)
        hasVideo = info.video_stream >= 0
        hasAudio = info.audio_stream >= 0
        videoCodec = hasVideo ? name(info.video_codec) : nil
        audioCodec = hasAudio ? name(info.audio_codec) : nil
        sampleRate = Int(info.sample_rate)
        channels = Int(info.channels)
    }
}

/// Carries a caller's checkpoint into the C decoders' `keep_going` callback, and the error it threw back out.
private class KeepGoing {
    func callAsFunction() -> Bool { true }
}

private final class Stopper<E: Error>: KeepGoing {
    let checkpoint: () throws(E) -> Void
    var error: E?

    init(_ checkpoint: @escaping () throws(E) -> Void) { self.checkpoint = checkpoint }

    override func callAsFunction() -> Bool {
        do throws(E) {
            try checkpoint()
            return true
        } catch {
            self.error = error
            return false
        }
    }

    /// `body`'s result, or the error `checkpoint` threw when a callback stopped the call.
    static func run<T>(_ checkpoint: () throws(E) -> Void,
                       _ body: (oe_video_keep_going, UnsafeMutableRawPointer) -> T) -> Result<T, E> {
        withoutActuallyEscaping(checkpoint) { checkpoint in
            let stopper = Stopper(checkpoint)
            let context = Unmanaged.passUnretained(stopper as KeepGoing).toOpaque()
            let result = withExtendedLifetime(stopper) {
                body({ context in Unmanaged<KeepGoing>.fromOpaque(context!).takeUnretainedValue()() ? 1 : 0 }, context)
            }
            if let error = stopper.error { return .failure(error) }
            return .success(result)
        }
    }
}
