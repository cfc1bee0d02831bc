import Foundation
internal import Media
internal import Models

/// The three towers, the decoders that feed them, and ConSE's maps of the image and audio classifiers into the
/// text space (the shared space every modality vector lives in).
final class Towers: Sendable {
    public let text: TextEmbedder
    public let image: EfficientNetLite
    public let audio: Musicnn
    public let imageSpace: ConvexSemanticEmbedding
    public let audioSpace: ConvexSemanticEmbedding
    let imageDecoder: ImageDecoder
    let wavDecoder: WAVDecoder
    /// Compressed recordings (`audio` that is not WAV), under the audio limits.
    let audioDecoder: VideoDecoder
    let videoDecoder: VideoDecoder
    let preprocessor = ImagePreprocessor()
    let mel = MelSpectrogram.musicnn()

    /// `imageLabels` and `audioLabels` name the classifiers' classes and tags, in order; ConSE combines the
    /// `topK` most probable.
    public init(text: TextEmbedder, image: EfficientNetLite, audio: Musicnn, imageLabels: [String], audioLabels: [String],
                imageTopK: Int, audioTopK: Int, maxPixels: Int, maxAudioSeconds: Double, maxVideoSeconds: Double = 600,
                maxVideoBytes: Int = 64 << 20) throws {
        guard imageLabels.count == image.classes else {
            throw ModelLoadingError(file: "image labels", reason: "\(imageLabels.count) names; the model has \(image.classes) classes")
        }
        guard audioLabels.count == audio.tags else {
            throw ModelLoadingError(file: "audio labels", reason: "\(audioLabels.count) names; the model has \(audio.tags) tags")
        }
        self.text = text
        self.image = image
        self.audio = audio
        imageSpace = ConvexSemanticEmbedding(labels: imageLabels, text: text, topK: imageTopK)
        audioSpace = ConvexSemanticEmbedding(labels: audioLabels, text: text, topK: audioTopK)
        imageDecoder = ImageDecoder(maxPixels: maxPixels)
        wavDecoder = WAVDecoder(maxDuration: maxAudioSeconds)
        audioDecoder = VideoDecoder(maxBytes: .max, maxSeconds: maxAudioSeconds, maxPixels: maxPixels)
        videoDecoder = VideoDecoder(maxBytes: maxVideoBytes, maxSeconds: maxVideoSeconds, maxPixels: maxPixels,
                                    minimumShorterSide: ImagePreprocessor().shorterSide)
    }

    /// Size of every vector in the shared space.
    public var dimensions: Int { text.encoder.configuration.hiddenSize }

    /// What decoding an item's media will cost, read from the headers alone (no pixel or sample is decoded):
    /// each image's decoded pixels (after DCT scaling), each sampled video frame's, and the recording's or the
    /// soundtrack's duration.
    public struct MediaCost: Sendable {
        var imageHeaders: [ImageDecoder.Header] = []
        var wavHeader: WAVDecoder.Header?
        var video: VideoDecoder.Header?
        /// Times of the video frames to decode (the cover at 0 when the item gives no image).
        var frameTimes: [Double] = []
        /// The video's soundtrack is the item's audio (the item gives none).
        var soundtrack = false
        public var pixels = 0
        public var audioSeconds = 0.0
    }

    /// The headers of an item's media and what decoding them costs; header errors and per-file limits throw here.
    func cost(images: [[UInt8]], audio: [UInt8]?, video: ItemInput.Video?) throws(MediaFailure) -> MediaCost {
        var cost = MediaCost()
        for (position, bytes) in images.enumerated() {
            do throws(MediaError) {
                let header = try imageDecoder.header(of: bytes)
                let (width, height) = try imageDecoder.decodedSize(header, minimumShorterSide: preprocessor.shorterSide)
                cost.imageHeaders.append(header)
                cost.pixels += width * height
            } catch {
                throw MediaFailure(error: error, what: "images[\(position)]")
            }
        }
        if let audio {
            do throws(MediaError) {
                if WAVDecoder.isWAV(audio) {
                    let header = try wavDecoder.header(of: audio)
                    cost.wavHeader = header
                    cost.audioSeconds = header.duration
                } else {
                    let header = try audioDecoder.header(of: audio)
                    guard header.hasAudio else { throw MediaError.corrupt("no audio stream") }
                    cost.audioSeconds = header.duration
                }
            } catch {
                throw MediaFailure(error: error, what: "audio")
            }
        }
        if let video {
            do throws(MediaError) {
                let header = try videoDecoder.header(of: video.data)
                cost.video = header
                if let size = header.frameSize {
                    cost.frameTimes = VideoDecoder.sampleTimes(duration: header.duration, frames: video.frames, cover: images.isEmpty)
                    // At least the frame reading the headers may have decoded.
                    cost.pixels += max(cost.frameTimes.count, 1) * size.width * size.height
                }
                if audio == nil, header.hasAudio {
                    cost.soundtrack = true
                    cost.audioSeconds += header.duration
                }
                guard !cost.frameTimes.isEmpty || cost.soundtrack || !images.isEmpty else {
                    throw MediaError.corrupt("no video frame to sample and no soundtrack to use")
                }
            } catch {
                throw MediaFailure(error: error, what: "video")
            }
        }
        return cost
    }

    /// An image tower input from an encoded JPEG/PNG whose header `cost` read (decoded at reduced scale where that
    /// keeps the resize exact enough: see `ImageDecoder.decode(_:minimumShorterSide:)`). `checkpoint` runs between
    /// steps and throws to stop.
    func imageInput(_ bytes: [UInt8], header: ImageDecoder.Header,
                    checkpoint: () throws(EmbeddingError) -> Void) throws(EmbeddingError) -> Result<[Float], MediaError> {
        let image: RGBImage
        do throws(MediaError) {
            image = try imageDecoder.decode(bytes, header: header, minimumShorterSide: preprocessor.shorterSide)
        } catch {
            return .failure(error)
        }
        try checkpoint()
        return .success(preprocessor.tensor(image))
    }

    /// Audio tower patches from a recording whose header `cost` read: WAV by its own decoder, anything else by
    /// FFmpeg's; `checkpoint` runs between steps.
    func audioInput(_ bytes: [UInt8], checkpoint: () throws(EmbeddingError) -> Void) throws(EmbeddingError) -> Result<[[Float]], MediaError> {
        let recording: Result<Audio, EmbeddingError>
        do throws(MediaError) {
            recording = WAVDecoder.isWAV(bytes) ? .success(try wavDecoder.decode(bytes))
                : try audioDecoder.audio(bytes, checkpoint: checkpoint)
        } catch {
            return .failure(error)
        }
        return .success(try patches(try recording.get(), checkpoint: checkpoint))
    }

    /// A video's frames (as image tower inputs, in `cost.frameTimes`' order) and, when `cost.soundtrack`, its
    /// soundtrack's audio tower patches.
    struct VideoInput {
        var frames: [[Float]] = []
        var patches: [[Float]]?
        var timing = VideoTiming()
    }

    /// Where a video's decoding time went (reading its headers is timed where `cost` runs).
    struct VideoTiming {
        var decode = Duration.zero, convert = Duration.zero
    }

    func videoInput(_ bytes: [UInt8], cost: MediaCost,
                    checkpoint: () throws(EmbeddingError) -> Void) throws(EmbeddingError) -> Result<VideoInput, MediaError> {
        let started = ContinuousClock.now
        let result: Result<VideoDecoder.Decoded, EmbeddingError>
        do throws(MediaError) {
            result = try videoDecoder.decode(bytes, frames: cost.frameTimes, soundtrack: cost.soundtrack, checkpoint: checkpoint)
        } catch {
            return .failure(error)
        }
        let decoded = try result.get()
        let converting = Duration.seconds(decoded.frames.reduce(0) { $0 + $1.convertSeconds })
        var input = VideoInput(timing: VideoTiming(decode: .now - started - converting, convert: converting))
        for frame in decoded.frames {
            try checkpoint()
            input.frames.append(preprocessor.tensor(frame.image))
        }
        if let audio = decoded.audio { input.patches = try patches(audio, checkpoint: checkpoint) }
        return .success(input)
    }

    private func patches(_ recording: Audio, checkpoint: () throws(EmbeddingError) -> Void) throws(EmbeddingError) -> [[Float]] {
        try checkpoint()
        let samples = Resampler.resample(recording, to: mel.sampleRate).samples
        try checkpoint()
        let spectrogram = mel.musicnnInput(samples)
        try checkpoint()
        return Musicnn.patches(spectrogram)
    }
}

/// A media file refused, and which of the item's files it was.
struct MediaFailure: Error {
    var error: MediaError
    var what: String
}
