import Foundation
import Media
import Models

/// The three towers, the decoders that feed them, and ConSE's maps of the image and audio classifiers into the
/// text space (the shared space every modality vector lives in).
public final class Towers: Sendable {
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

    /// An image tower input from an encoded JPEG/PNG (decoded at reduced scale where that keeps the resize exact
    /// enough: see `ImageDecoder.decode(_:minimumShorterSide:)`).
    public func imageInput(_ bytes: [UInt8]) throws(MediaError) -> [Float] {
        preprocessor.tensor(try imageDecoder.decode(bytes, minimumShorterSide: preprocessor.shorterSide))
    }

    /// Audio tower patches from a WAV file, and its duration in seconds.
    public func audioInput(_ bytes: [UInt8]) throws(MediaError) -> (patches: [[Float]], seconds: Double) {
        let recording = try wavDecoder.decode(bytes)
        let samples = Resampler.resample(recording, to: mel.sampleRate).samples
        return (Musicnn.patches(mel.musicnnInput(samples)), recording.duration)
    }
}
