import Foundation
internal import Models

/// Which model produced a vector: vectors of different revisions are not comparable.
public struct ModelIdentity: Sendable, Equatable {
    public var id: String
    /// A hash of the weights, label lists and settings that shape the vectors.
    public var revision: String

    public init(id: String, revision: String) {
        self.id = id
        self.revision = revision
    }

    /// The towers' names joined, and a hash of everything in `configuration` that shapes the vectors: weights,
    /// tokenizer, label lists and the settings that change outputs. A stored vector is reused only under the
    /// same revision. `textCalibration`: what an int8 text encoder calibrates on (by default
    /// `TextCalibration.revision`, what it does).
    public init(of configuration: PipelineConfiguration, textCalibration: String? = nil) throws {
        let (text, image, audio) = (configuration.text, configuration.image, configuration.audio)
        let files = [text.directory + "/model.safetensors", text.directory + "/tokenizer.json",
                     image.directory + "/model.safetensors", audio.directory + "/model.safetensors", image.labels, audio.labels]
        var parts: [(tag: UInt8, bytes: [UInt8])] = try files.map { path in
            (0, [UInt8](try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)))
        }
        var id = [text.directory, image.directory, audio.directory]
            .map { URL(fileURLWithPath: $0).lastPathComponent }.joined(separator: "+")
        let fusion: String
        var precisions = [text.precision, image.precision, audio.precision].map(\.effective)
        var precisionNames = "text=\(precisions[0].rawValue) image=\(precisions[1].rawValue) audio=\(precisions[2].rawValue)"
        switch configuration.fusion {
        case .late(let weights):
            fusion = "late \(Modality.allCases.map { "\($0.rawValue)=\(weights[$0] ?? 1)" })"
        case .qformer(let directory, let precision):
            fusion = "qformer"
            precisions.append(precision.effective)
            precisionNames += " fusion=\(precision.effective.rawValue)"
            for name in ["config.json", "model.safetensors"] {
                parts.append((2, [UInt8](try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name), options: .alwaysMapped))))
            }
            id += "+" + URL(fileURLWithPath: directory).lastPathComponent
        }
        parts.append((1, Array("maxTokens=\(text.maxTokens) imageTopK=\(image.topK) audioTopK=\(audio.topK) \(fusion)".utf8)))
        // Vectors of another precision are another model's: never mixed in the store or compared by /match. fp32
        // adds nothing, so banks written before precisions existed keep their revision.
        if precisions.contains(where: { $0 != .fp32 }) { parts.append((3, Array(precisionNames.utf8))) }
        // int8 text vectors also depend on the texts the encoder calibrates its smoothing on.
        if precisions[0] == .int8 { parts.append((4, Array((textCalibration ?? TextCalibration.revision).utf8))) }
        self.init(id: id, revision: String(ContentHash.sha256(parts).prefix(16)))
    }
}
