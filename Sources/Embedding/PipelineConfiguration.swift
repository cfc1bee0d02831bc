import Foundation

/// What an `EmbeddingPipeline` is built from (`EmbeddingPipeline.load`): the model files, fusion, output sizes,
/// batching, the store and the codebook. A plain value; the service reads it from its settings.
public struct PipelineConfiguration: Sendable {
    public struct TextModel: Sendable, Equatable {
        /// Where `tokenizer.json`, `config.json` and `model.safetensors` are.
        public var directory = "models/all-MiniLM-L6-v2"
        /// Longest token sequence, special tokens included (sentence-transformers' `max_seq_length`).
        public var maxTokens = 256
        public init() {}
    }

    /// A classifier tower whose classes ConSE maps into the text space.
    public struct ClassifierModel: Sendable, Equatable {
        /// Where the converted `model.safetensors` is.
        public var directory: String
        /// The class (tag) names, one per line in class order.
        public var labels: String
        /// Classes ConSE combines.
        public var topK = 10

        public init(directory: String, labels: String, topK: Int = 10) {
            self.directory = directory
            self.labels = labels
            self.topK = topK
        }
    }

    public enum Fusion: Sendable, Equatable {
        /// The weighted sum of the modality vectors (`LateFusion`).
        case late(weights: [Modality: Float])
        /// EM3's Fusion-Q-Former, its `config.json` and `model.safetensors` in `directory`.
        case qformer(directory: String)

        public var name: String {
            switch self {
            case .late: "late"
            case .qformer: "qformer"
            }
        }
    }

    /// The SQLite item store.
    public struct Store: Sendable {
        public var path = "data/items.sqlite"
        public var durability = ItemStore.Durability.full
        /// Item vectors kept in memory in front of the store for `/match` (0: none).
        public var cacheItems = 200_000
        public init() {}
    }

    public var text = TextModel()
    public var image = ClassifierModel(directory: "models/efficientnet-lite0", labels: "config/labels/imagenet-1k.txt")
    public var audio = ClassifierModel(directory: "models/musicnn-mtt", labels: "config/labels/mtt-50.txt")
    /// Largest image decoded, in pixels, checked on the header (decompression bombs).
    public var maxImagePixels = 40_000_000
    /// Longest recording accepted, in seconds (checked on the WAV header).
    public var maxAudioSeconds = 600
    public var compute = ComputeThreads()
    public var fusion = Fusion.late(weights: [.text: 1, .image: 1, .audio: 1])
    /// Matryoshka sizes; the first must be the model's full size.
    public var dimensions = [384, 256, 128, 64]
    public var settings = EmbeddingPipeline.Settings()
    /// `nil`: no store (nothing is cached or kept).
    public var store: Store? = Store()
    /// The semantic-ID codebook, loaded when a file is there.
    public var codebookPath = "data/codebook.safetensors"

    public init() {}
}

/// A configuration the models cannot run with, found while loading them; `setting` names the field.
public struct PipelineConfigurationError: Error, Sendable, CustomStringConvertible {
    public enum Setting: Sendable {
        case dimensions, fusionDirectory, codebookPath
    }
    public var setting: Setting
    public var reason: String

    public var description: String { reason }
}
