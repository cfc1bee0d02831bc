import CoreMetrics
import Embedding
import Logging

extension ServiceConfiguration {
    /// The settings the embedding pipeline is built from.
    public var pipeline: PipelineConfiguration {
        var pipeline = PipelineConfiguration()
        pipeline.text.directory = modelDirectory
        pipeline.text.maxTokens = maxTokens
        pipeline.image = .init(directory: image.directory, labels: image.labels, topK: image.topK)
        pipeline.audio = .init(directory: audio.directory, labels: audio.labels, topK: audio.topK)
        pipeline.maxImagePixels = image.maxPixels
        pipeline.maxAudioSeconds = audio.maxSeconds
        pipeline.compute = encoder
        pipeline.fusion = switch embedding.fusionMethod {
        case .late: .late(weights: embedding.fusionWeights)
        case .qformer: .qformer(directory: embedding.qformerDirectory)
        }
        pipeline.dimensions = embedding.dimensions
        pipeline.settings = embedding.pipeline
        if store.enabled {
            var settings = PipelineConfiguration.Store()
            (settings.path, settings.durability, settings.cacheItems) = (store.path, store.durability, store.cacheItems)
            pipeline.store = settings
        } else {
            pipeline.store = nil
        }
        pipeline.codebookPath = codebook.path
        return pipeline
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
