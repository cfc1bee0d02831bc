import CoreMetrics
import Embedding
import Logging

extension ServiceConfiguration {
    /// The settings the embedding pipeline is built from.
    public var pipeline: PipelineConfiguration {
        get throws(ConfigurationError) {
        let fusion: PipelineConfiguration.Fusion = switch embedding.fusionMethod {
        case .late: .late(weights: embedding.fusionWeights)
        case .qformer: .qformer(directory: embedding.qformerDirectory, precision: embedding.fusionPrecision ?? precision)
        }
        var configuration = PipelineConfiguration(
            text: .init(directory: modelDirectory, maxTokens: maxTokens, precision: precision),
            image: .init(directory: image.directory, labels: image.labels, topK: image.topK, precision: image.precision ?? precision),
            audio: .init(directory: audio.directory, labels: audio.labels, topK: audio.topK, precision: audio.precision ?? precision),
            maxImagePixels: image.maxPixels, maxAudioSeconds: audio.maxSeconds, compute: encoder,
            fusion: fusion, dimensions: embedding.dimensions, settings: embedding.pipeline,
            store: store.enabled ? .init(backend: try store.itemStoreBackend(), cacheItems: store.cacheItems) : nil,
            codebookPath: codebook.path)
        (configuration.maxVideoSeconds, configuration.maxVideoBytes) = (limits.maxVideoSeconds, limits.maxVideoBytes)
        return configuration
        }
    }

    /// The towers behind their batchers, with the store when it is enabled: what `serve` and `embed` run. A
    /// setting the models cannot run with is reported under its key.
    public func makePipeline(logger: Logger, metricsFactory: any MetricsFactory) throws -> EmbeddingPipeline {
        do {
            return try EmbeddingPipeline.load(pipeline, logger: logger, metricsFactory: metricsFactory)
        } catch let error as PipelineConfigurationError {
            let key = switch error.setting {
            case .dimensions: "embedding.dimensions"
            case .fusionDirectory: "embedding.fusion.directory"
            case .codebookPath: "codebook.path"
            }
            throw ConfigurationError.invalid(key: key, reason: error.reason)
        }
    }
}
