import Foundation
import Media
import Models

/// The three towers and the shared space they meet in, loaded together from the configuration.
public final class Towers: Sendable {
    public let text: TextEmbedder
    public let image: EfficientNetLite
    public let audio: Musicnn
    /// ConSE over ImageNet's class names and over MagnaTagATune's tags: image and audio in the text space.
    public let imageSpace: ConvexSemanticEmbedding
    public let audioSpace: ConvexSemanticEmbedding
    let imageDecoder: ImageDecoder
    let wavDecoder: WAVDecoder
    let preprocessor = ImagePreprocessor()
    let mel = MelSpectrogram.musicnn()

    public init(configuration: ServiceConfiguration) throws {
        text = try configuration.loadTextModel()
        image = try configuration.loadImageModel()
        audio = try configuration.loadAudioModel()
        func labels(_ path: String, count: Int, key: String) throws -> [String] {
            let names = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
            guard names.count == count else {
                throw ConfigurationError.invalid(key: key, reason: "\(path) has \(names.count) names; the model has \(count) classes")
            }
            return names
        }
        imageSpace = ConvexSemanticEmbedding(labels: try labels(configuration.image.labels, count: image.classes, key: "image.labels"),
                                             text: text, topK: configuration.image.topK)
        audioSpace = ConvexSemanticEmbedding(labels: try labels(configuration.audio.labels, count: audio.tags, key: "audio.labels"),
                                             text: text, topK: configuration.audio.topK)
        imageDecoder = ImageDecoder(maxPixels: configuration.image.maxPixels)
        wavDecoder = WAVDecoder(maxDuration: Double(configuration.audio.maxSeconds))
    }

    /// An image tower input from an encoded JPEG/PNG (decoded at reduced scale where that keeps the resize exact
    /// enough: see `ImageDecoder.decode(_:minimumShorterSide:)`).
    func imageInput(_ bytes: [UInt8]) throws(MediaError) -> [Float] {
        preprocessor.tensor(try imageDecoder.decode(bytes, minimumShorterSide: preprocessor.shorterSide))
    }

    /// Audio tower patches from a WAV file, and its duration in seconds.
    func audioInput(_ bytes: [UInt8]) throws(MediaError) -> (patches: [[Float]], seconds: Double) {
        let recording = try wavDecoder.decode(bytes)
        let samples = Resampler.resample(recording, to: mel.sampleRate).samples
        return (Musicnn.patches(mel.musicnnInput(samples)), recording.duration)
    }
}
