import Foundation
import Models
import Service
import Tensor

/// The towers alone, as `benchmark` times them (the service loads them through `EmbeddingPipeline.load`).
extension ServiceConfiguration {
    /// The configured text model, with OpenBLAS set to `model.blasThreads` (a process-wide setting).
    func loadTextModel() throws -> TextEmbedder {
        BLAS.setThreads(encoder.blasThreads)
        return try TextEmbedder(directory: URL(fileURLWithPath: modelDirectory), maxTokens: maxTokens,
                                threads: encoder.resolvedThreads(), precision: Precision(rawValue: precision.rawValue)!)
    }

    /// The configured audio tower, with OpenBLAS set as for the text model.
    func loadAudioModel() throws -> Musicnn {
        BLAS.setThreads(encoder.blasThreads)
        return try Musicnn(directory: URL(fileURLWithPath: audio.directory), threads: encoder.resolvedThreads(),
                           precision: Precision(rawValue: (audio.precision ?? precision).rawValue)!)
    }

    /// The configured image tower, with OpenBLAS set as for the text model.
    func loadImageModel() throws -> EfficientNetLite {
        BLAS.setThreads(encoder.blasThreads)
        return try EfficientNetLite(directory: URL(fileURLWithPath: image.directory), threads: encoder.resolvedThreads(),
                                    precision: Precision(rawValue: (image.precision ?? precision).rawValue)!)
    }
}
