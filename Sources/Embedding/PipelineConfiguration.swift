import Foundation

/// What an `EmbeddingPipeline` is built from (`EmbeddingPipeline.load`): the model files, fusion, output sizes,
/// batching, the store and the codebook. A plain value with no defaults of its own: the service's settings have them.
public struct PipelineConfiguration: Sendable {
    public struct TextModel: Sendable, Equatable {
        /// Where `tokenizer.json`, `config.json` and `model.safetensors` are.
        public var directory: String
        /// Longest token sequence, special tokens included (sentence-transformers' `max_seq_length`).
        public var maxTokens: Int
        /// The format of the encoder's dense layers (what the CPU lacks runs as fp32: `TowerPrecision.effective`).
        public var precision: TowerPrecision

        public init(directory: String, maxTokens: Int, precision: TowerPrecision = .fp32) {
            self.directory = directory
            self.maxTokens = maxTokens
            self.precision = precision
        }
    }

    /// A classifier tower whose classes ConSE maps into the text space.
    public struct ClassifierModel: Sendable, Equatable {
        /// Where the converted `model.safetensors` is.
        public var directory: String
        /// The class (tag) names, one per line in class order.
        public var labels: String
        /// Classes ConSE combines.
        public var topK: Int
        /// The format of the tower's dense products (`TowerPrecision.effective` applies).
        public var precision: TowerPrecision

        public init(directory: String, labels: String, topK: Int, precision: TowerPrecision = .fp32) {
            self.directory = directory
            self.labels = labels
            self.topK = topK
            self.precision = precision
        }
    }

    public enum Fusion: Sendable, Equatable {
        /// The weighted sum of the modality vectors (`LateFusion`).
        case late(weights: [Modality: Float])
        /// EM3's Fusion-Q-Former, its `config.json` and `model.safetensors` in `directory`, its dense products in
        /// `precision` (`TowerPrecision.effective` applies).
        case qformer(directory: String, precision: TowerPrecision = .fp32)
    }

    /// The SQLite item store.
    public struct Store: Sendable {
        public var backend: ItemStore.Backend
        /// Item vectors kept in memory in front of the store for `/match` (0: none).
        public var cacheItems: Int

        public init(backend: ItemStore.Backend, cacheItems: Int) {
            self.backend = backend
            self.cacheItems = cacheItems
        }
    }

    public var text: TextModel
    public var image: ClassifierModel
    public var audio: ClassifierModel
    /// Largest image decoded, in pixels, checked on the header (decompression bombs).
    public var maxImagePixels: Int
    /// Longest recording accepted, in seconds (checked on the WAV header).
    public var maxAudioSeconds: Int
    /// Longest video accepted, in seconds, and its largest encoded size (checked on the container's headers).
    public var maxVideoSeconds = 600
    public var maxVideoBytes = 64 << 20
    public var compute: ComputeThreads
    public var fusion: Fusion
    /// Matryoshka sizes; the first must be the model's full size.
    public var dimensions: [Int]
    public var settings: EmbeddingPipeline.Settings
    /// `nil`: no store (nothing is cached or kept).
    public var store: Store?
    /// The semantic-ID codebook, loaded when a file is there.
    public var codebookPath: String

    public init(text: TextModel, image: ClassifierModel, audio: ClassifierModel, maxImagePixels: Int,
                maxAudioSeconds: Int, compute: ComputeThreads, fusion: Fusion, dimensions: [Int],
                settings: EmbeddingPipeline.Settings, store: Store?, codebookPath: String) {
        self.text = text
        self.image = image
        self.audio = audio
        self.maxImagePixels = maxImagePixels
        self.maxAudioSeconds = maxAudioSeconds
        self.compute = compute
        self.fusion = fusion
        self.dimensions = dimensions
        self.settings = settings
        self.store = store
        self.codebookPath = codebookPath
    }
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
