import CoreMetrics
import Foundation
import Logging
internal import Models
internal import Tensor

extension EmbeddingPipeline {
    /// The composition root: the towers, the store (when configured), fusion and the codebook (when its file is
    /// there), checked against each other. Sets OpenBLAS to `blasThreads` (a process-wide setting).
    public static func load(_ configuration: PipelineConfiguration, logger: Logger,
                            metricsFactory: any MetricsFactory) throws -> EmbeddingPipeline {
        let store = try configuration.store.map { try ItemStore($0.backend, cacheItems: $0.cacheItems) }
        var precisions = [("text", configuration.text.precision), ("image", configuration.image.precision),
                          ("audio", configuration.audio.precision)]
        if case .qformer(_, let precision) = configuration.fusion { precisions.append(("fusion", precision)) }
        for (tower, precision) in precisions {
            if let notice = precision.fallbackNotice(tower: tower) { logger.warning("\(notice)") }
        }
        FFmpegLog.route(to: logger)
        let towers = try loadTowers(configuration)
        let dimensions = configuration.dimensions
        guard dimensions.first == towers.dimensions, dimensions.allSatisfy({ $0 <= towers.dimensions }) else {
            throw PipelineConfigurationError(
                setting: .dimensions,
                reason: "the first size must be the model's (\(towers.dimensions)) and none larger, got \(dimensions)")
        }
        let fusion: FusionMethod
        switch configuration.fusion {
        case .qformer(let directory, let precision):
            let qformer = try FusionQFormer(directory: URL(fileURLWithPath: directory), precision: precision.tensor)
            let c = qformer.configuration
            let expected = ["text": towers.dimensions, "image": towers.image.featureSize, "audio": towers.audio.featureSize]
            guard c.inputSizes == expected, c.outputSize == towers.dimensions else {
                throw PipelineConfigurationError(
                    setting: .fusionDirectory,
                    reason: "the Fusion-Q-Former takes \(c.inputSizes) and gives \(c.outputSize); the towers give \(expected) and the output must be \(towers.dimensions)")
            }
            fusion = .qformer(qformer)
        case .late(let weights):
            fusion = .late(LateFusion(weights: weights))
        }
        let pipeline = EmbeddingPipeline(towers: towers, model: try ModelIdentity(of: configuration), store: store,
                                         fusion: fusion, settings: configuration.settings, logger: logger,
                                         metricsFactory: metricsFactory)
        if let store, store.sharesCodebooks {
            // The bank's newest versions (a database that is down for now: none until the monitor finds them).
            pipeline.followSharedCodebooks()
        } else if let codebook = try loadCodebook(at: configuration.codebookPath) {
            do throws(EmbeddingError) { try pipeline.install(codebook) } catch {
                throw PipelineConfigurationError(setting: .codebookPath,
                                                 reason: "\(codebook.version) at \(configuration.codebookPath): \(error.message)")
            }
        }
        return pipeline
    }

    /// The codebook at `path`; `nil` when no file is there (none fitted yet). A file that is there but
    /// unreadable is an error.
    public static func loadCodebook(at path: String) throws -> SemanticCodebook? {
        guard !path.isEmpty, FileManager.default.fileExists(atPath: path) else { return nil }
        return try SemanticCodebook(path: path)
    }

    static func loadTowers(_ configuration: PipelineConfiguration) throws -> Towers {
        func labels(_ path: String) throws -> [String] {
            try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        }
        BLAS.setThreads(configuration.compute.blasThreads)
        let threads = configuration.compute.resolvedThreads()
        let (text, image, audio) = (configuration.text, configuration.image, configuration.audio)
        return try Towers(
            text: try TextEmbedder(directory: URL(fileURLWithPath: text.directory), maxTokens: text.maxTokens, threads: threads,
                                   precision: text.precision.tensor),
            image: try EfficientNetLite(directory: URL(fileURLWithPath: image.directory), threads: threads,
                                        precision: image.precision.tensor),
            audio: try Musicnn(directory: URL(fileURLWithPath: audio.directory), threads: threads, precision: audio.precision.tensor),
            imageLabels: try labels(image.labels), audioLabels: try labels(audio.labels),
            imageTopK: image.topK, audioTopK: audio.topK, maxPixels: configuration.maxImagePixels,
            maxAudioSeconds: Double(configuration.maxAudioSeconds), maxVideoSeconds: Double(configuration.maxVideoSeconds),
            maxVideoBytes: configuration.maxVideoBytes)
    }
}
