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
    let preprocessor = ImagePreprocessor()
    let mel = MelSpectrogram.musicnn()

    /// `imageLabels` and `audioLabels` name the classifiers' classes and tags, in order; ConSE combines the
    /// `topK` most probable.
    public init(text: TextEmbedder, image: EfficientNetLite, audio: Musicnn, imageLabels: [String], audioLabels: [String],
                imageTopK: Int, audioTopK: Int, maxPixels: Int, maxAudioSeconds: Double) throws {
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
    }

    /// Size of every vector in the shared space.
    public var dimensions: Int { text.encoder.configuration.hiddenSize }

    /// What decoding an item's media will cost, read from the headers alone (no pixel or sample is decoded):
    /// each image's decoded pixels (after DCT scaling) and the recording's duration.
    public struct MediaCost: Sendable {
        var imageHeaders: [ImageDecoder.Header] = []
        var wavHeader: WAVDecoder.Header?
        public var pixels = 0
        public var audioSeconds = 0.0
    }

    /// The headers of an item's media and what decoding them costs; header errors and per-file limits throw here.
    func cost(images: [[UInt8]], audio: [UInt8]?) throws(MediaFailure) -> MediaCost {
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
                let header = try wavDecoder.header(of: audio)
                cost.wavHeader = header
                cost.audioSeconds = header.duration
            } catch {
                throw MediaFailure(error: error, what: "audio")
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

    /// Audio tower patches from a WAV file whose header `cost` read; `checkpoint` runs between steps.
    func audioInput(_ bytes: [UInt8], checkpoint: () throws(EmbeddingError) -> Void) throws(EmbeddingError) -> Result<[[Float]], MediaError> {
        let recording: Audio
        do throws(MediaError) { recording = try wavDecoder.decode(bytes) } catch { return .failure(error) }
        try checkpoint()
        let samples = Resampler.resample(recording, to: mel.sampleRate).samples
        try checkpoint()
        let spectrogram = mel.musicnnInput(samples)
        try checkpoint()
        return .success(Musicnn.patches(spectrogram))
    }
}

/// A media file refused, and which of the item's files it was.
struct MediaFailure: Error {
    var error: MediaError
    var what: String
}
