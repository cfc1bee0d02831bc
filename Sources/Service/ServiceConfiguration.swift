import Configuration
import CoreMetrics
import Embedding
import Foundation
import HTTP
import Logging
import Models
import SystemPackage
import Tensor

/// The service's settings. Read from a JSON file, each key overridable by an environment variable named
/// `OMNIEMBED_` + the key path in upper snake case (`http.maxBodyBytes` → `OMNIEMBED_HTTP_MAX_BODY_BYTES`).
/// A value that is present but malformed is an error, never silently replaced by the default.
public struct ServiceConfiguration: Sendable {
    public var http = HTTPServerConfiguration()
    public var compression = CompressionOptions()
    /// How long a graceful shutdown waits for requests in flight.
    public var shutdownGracePeriod: Duration = .seconds(10)
    public var logLevel: Logger.Level = .info
    public var logFormat: LogFormat = .text
    /// Log lines are buffered up to this many bytes (0: a write per line) ...
    public var logBufferBytes: Int = 64 * 1024
    /// ... and flushed at least this often.
    public var logFlushInterval: Duration = .milliseconds(200)

    /// Where the text model's files are (`tokenizer.json`, `config.json`, `model.safetensors`).
    public var modelDirectory = "models/all-MiniLM-L6-v2"
    /// Longest token sequence, special tokens included (sentence-transformers' `max_seq_length`).
    public var maxTokens = 256
    public var encoder = EncoderThreads()
    public var image = ImageSettings()
    public var audio = AudioSettings()

    /// The audio tower and the limits on recordings.
    public struct AudioSettings: Sendable, Equatable {
        /// Where musicnn's converted `model.safetensors` is.
        public var directory = "models/musicnn-mtt"
        /// Longest recording accepted, in seconds (checked on the WAV header).
        public var maxSeconds = 600
        /// The tagger's tag names, one per line in tag order: what ConSE embeds into the text space.
        public var labels = "config/labels/mtt-50.txt"
        /// Tags ConSE combines.
        public var topK = 10
    }

    /// The image tower and the limits on images.
    public struct ImageSettings: Sendable, Equatable {
        /// Where EfficientNet-Lite0's `model.safetensors` is.
        public var directory = "models/efficientnet-lite0"
        /// Largest image decoded, in pixels, checked on the header (decompression bombs).
        public var maxPixels = 40_000_000
        /// The classifier's class names, one per line in class order: what ConSE embeds into the text space.
        public var labels = "config/labels/imagenet-1k.txt"
        /// Classes ConSE combines.
        public var topK = 10
    }
    public var limits = RequestLimits()
    public var embedding = EmbeddingSettings()
    public var store = StoreSettings()
    public var codebook = CodebookSettings()
    public var match = MatchLimits()

    /// The semantic-ID codebook (`omniembed fit` writes it): loaded at start when the file exists, and again on
    /// `POST /admin/reload` or SIGHUP.
    public struct CodebookSettings: Sendable {
        public var path = "data/codebook.safetensors"
        /// Return `/embed` vectors in the codebook's rotated space, so Matryoshka prefixes are principal components.
        public var rotateEmbeddings = true
    }

    /// Per-request limits of `/match` and `/user_embedding`.
    public struct MatchLimits: Sendable {
        public var maxHistory = 10_000
        public var maxCandidates = 10_000
        /// Largest `top_k` and `sim_top`.
        public var maxTop = 1_000
        /// History items the user vector averages when a request gives no `recent`.
        public var defaultRecent = 50
    }

    /// `/embed`'s output sizes, fusion and batching.
    public struct EmbeddingSettings: Sendable {
        /// Matryoshka sizes a request may ask for; the first is the default and must be the full size.
        public var dimensions = [384, 256, 128, 64]
        /// Batching (its `fusion` is set from the three settings below when the pipeline is made).
        public var pipeline = EmbeddingPipeline.Settings()
        /// `late` or `qformer`.
        public var fusionMethod = "late"
        public var fusionWeights: [Modality: Float] = [.text: 1, .image: 1, .audio: 1]
        /// Where the Fusion-Q-Former's `config.json` and `model.safetensors` are (for `qformer`).
        public var qformerDirectory = "models/fusion-qformer"
        /// Deadline of a request that gives no `timeout_ms` ...
        public var defaultTimeout: Duration = .seconds(30)
        /// ... and the longest one may give.
        public var maxTimeout: Duration = .seconds(600)
    }

    /// The item store (SQLite).
    public struct StoreSettings: Sendable {
        public var enabled = true
        public var path = "data/items.sqlite"
        public var durability = ItemStore.Durability.full
        /// Item vectors kept in memory in front of the store for `/match` (0: none).
        public var cacheItems = 200_000
    }

    /// How the encoder uses the cores: a batch is split by rows over `threads`, and each of those runs its
    /// GEMMs on `blasThreads` OpenBLAS threads. Their product must not exceed the processors: oversubscribed
    /// OpenBLAS threads spin against each other.
    public struct EncoderThreads: Sendable, Equatable {
        /// 0: one per processor.
        public var threads = 0
        public var blasThreads = 1

        public init(threads: Int = 0, blasThreads: Int = 1) {
            self.threads = threads
            self.blasThreads = blasThreads
        }

        /// `threads` with 0 resolved against `processors`.
        public func resolvedThreads(processors: Int = ProcessInfo.processInfo.activeProcessorCount) -> Int {
            threads == 0 ? max(1, processors / blasThreads) : threads
        }

        func validate(processors: Int) throws {
            guard threads >= 0 else {
                throw ConfigurationError.invalid(key: "model.threads", reason: "must be 0 (one per processor) or more")
            }
            guard blasThreads >= 1 else {
                throw ConfigurationError.invalid(key: "model.blasThreads", reason: "must be positive, got \(blasThreads)")
            }
            let used = resolvedThreads(processors: processors) * blasThreads
            guard used <= processors else {
                throw ConfigurationError.invalid(
                    key: "model.threads",
                    reason: "\(resolvedThreads(processors: processors)) threads × \(blasThreads) BLAS threads = \(used) would oversubscribe \(processors) processors")
            }
        }
    }

    /// Per-request limits, each refused with 413 and a message naming the item.
    public struct RequestLimits: Sendable {
        /// Texts per `/tokenize` or `/v1/embeddings` request.
        public var maxTexts = 256
        /// Items per `/embed` request.
        public var maxItems = 256
        /// Bytes of one encoded image (after base64 decoding).
        public var maxImageBytes = 20 * 1024 * 1024
        /// Bytes of one encoded WAV (its duration is limited by `audio.maxSeconds`).
        public var maxAudioBytes = 128 * 1024 * 1024
        public var maxTextBytes = 64 * 1024
        /// Images (cover and frames) per item.
        public var maxImagesPerItem = 8
        /// Bytes of an item id (UTF-8); ids also may not hold control characters.
        public var maxIdBytes = 256

        /// 422 for none, 413 for more than `maximum`; `field` names the list (`texts`, `items`).
        func checkCount(_ count: Int, of field: String, maximum: Int) throws(HTTPError) {
            guard count > 0 else {
                throw HTTPError(.unprocessableContent, code: "no_\(field)", message: "'\(field)' must not be empty")
            }
            guard count <= maximum else {
                throw HTTPError(.payloadTooLarge, code: "too_many_\(field)",
                                message: "\(count) \(field); at most \(maximum) per request")
            }
        }

        /// 413 for a text over `maxTextBytes`; `label` names it in the message.
        func checkText(_ text: String, at label: String) throws(HTTPError) {
            guard text.utf8.count <= maxTextBytes else {
                throw HTTPError(.payloadTooLarge, code: "text_too_long",
                                message: "\(label): \(text.utf8.count) bytes; at most \(maxTextBytes)")
            }
        }
    }

    public enum LogFormat: String, Sendable, CaseIterable {
        case text, json
    }

    public init() {}

    /// Loads `file` (if given) under environment overrides taken from `environment`.
    public static func load(file: String?, environment: [String: String]) async throws -> ServiceConfiguration {
        var providers: [any ConfigProvider] = [
            EnvironmentVariablesProvider(environmentVariables: environment).prefixKeys(with: "omniembed")
        ]
        if let file {
            providers.append(try await FileProvider<JSONSnapshot>(filePath: FilePath(file)))
        }
        return try ServiceConfiguration(reading: ConfigReader(providers: providers))
    }

    /// Reads every setting from `config`, keeping the default for absent keys.
    public init(reading config: ConfigReader) throws {
        func int(_ key: String, _ value: inout Int) throws {
            if let found = try config.present(key, { try config.requiredInt(forKey: $0) }) { value = found }
        }
        func string(_ key: String, _ value: inout String) throws {
            if let found = try config.present(key, { try config.requiredString(forKey: $0) }) { value = found }
        }
        func milliseconds(_ key: String, _ value: inout Duration) throws {
            var ms = Int(value.seconds * 1000)
            try int(key, &ms)
            value = .milliseconds(ms)
        }

        var http = HTTPServerConfiguration()
        try string("host", &http.host)
        try int("port", &http.port)
        var backlog = Int(http.backlog)
        try int("http.backlog", &backlog)
        http.backlog = Int32(clamping: backlog)
        try int("http.eventLoops", &http.eventLoops)
        try int("http.maxConnections", &http.maxConnections)
        try int("http.maxRequestsPerConnection", &http.maxRequestsPerConnection)
        try int("http.maxRequestLineBytes", &http.limits.maxRequestLineBytes)
        try int("http.maxHeaderBytes", &http.limits.maxHeaderBytes)
        try int("http.maxHeaderCount", &http.limits.maxHeaderCount)
        try int("http.maxBodyBytes", &http.limits.maxBodyBytes)
        try int("http.maxChunkLineBytes", &http.limits.maxChunkLineBytes)
        try milliseconds("http.requestHeadTimeoutMs", &http.timeouts.requestHead)
        try milliseconds("http.keepAliveTimeoutMs", &http.timeouts.keepAliveIdle)
        try milliseconds("http.bodyGraceMs", &http.timeouts.bodyGrace)
        try int("http.minBodyBytesPerSecond", &http.timeouts.minBodyBytesPerSecond)
        try milliseconds("http.writeTimeoutMs", &http.timeouts.write)
        try milliseconds("http.lingerTimeoutMs", &http.lingerTimeout)
        self.http = http

        if let enabled = try config.present("compression.enabled", { try config.requiredBool(forKey: $0) }) {
            compression.enabled = enabled
        }
        try int("compression.minBytes", &compression.minimumBytes)
        var level = Int(compression.level)
        try int("compression.level", &level)
        compression.level = Int32(clamping: level)

        try milliseconds("shutdown.gracePeriodMs", &shutdownGracePeriod)
        try string("model.directory", &modelDirectory)
        try int("model.maxTokens", &maxTokens)
        try string("image.directory", &image.directory)
        try int("image.maxPixels", &image.maxPixels)
        try string("image.labels", &image.labels)
        try int("image.topK", &image.topK)
        try string("audio.directory", &audio.directory)
        try int("audio.maxSeconds", &audio.maxSeconds)
        try string("audio.labels", &audio.labels)
        try int("audio.topK", &audio.topK)
        try int("model.threads", &encoder.threads)
        try int("model.blasThreads", &encoder.blasThreads)
        try int("limits.maxTexts", &limits.maxTexts)
        try int("limits.maxTextBytes", &limits.maxTextBytes)
        try int("limits.maxImagesPerItem", &limits.maxImagesPerItem)
        try int("limits.maxItems", &limits.maxItems)
        try int("limits.maxImageBytes", &limits.maxImageBytes)
        try int("limits.maxAudioBytes", &limits.maxAudioBytes)
        try int("limits.maxIdBytes", &limits.maxIdBytes)
        try int("limits.maxRequestPixels", &embedding.pipeline.budget.maxPixels)
        if let seconds = try config.present("limits.maxRequestAudioSeconds", { try config.requiredDouble(forKey: $0) }) {
            guard seconds > 0, seconds.isFinite else {
                throw ConfigurationError.invalid(key: "limits.maxRequestAudioSeconds", reason: "must be positive, got \(seconds)")
            }
            embedding.pipeline.budget.maxAudioSeconds = seconds
        }
        var decodeThreads = 0
        try int("decode.threads", &decodeThreads)
        guard decodeThreads >= 0 else { throw ConfigurationError.invalid(key: "decode.threads", reason: "must be 0 (half the processors) or more") }
        if decodeThreads > 0 { embedding.pipeline.decodeThreads = decodeThreads }
        try int("decode.queueCapacity", &embedding.pipeline.decodeQueueCapacity)

        if let sizes = try config.present("embedding.dimensions", { try config.requiredIntArray(forKey: $0) }) {
            embedding.dimensions = sizes
        }
        try milliseconds("embedding.defaultTimeoutMs", &embedding.defaultTimeout)
        try milliseconds("embedding.maxTimeoutMs", &embedding.maxTimeout)
        for modality in Modality.allCases {
            let key = "embedding.fusion.weights.\(modality.rawValue)"
            if let weight = try config.present(key, { try config.requiredDouble(forKey: $0) }) {
                guard weight >= 0, weight.isFinite else { throw ConfigurationError.invalid(key: key, reason: "must be 0 or more") }
                embedding.fusionWeights[modality] = Float(weight)
            }
        }
        try string("embedding.fusion.method", &embedding.fusionMethod)
        guard ["late", "qformer"].contains(embedding.fusionMethod) else {
            throw ConfigurationError.invalid(key: "embedding.fusion.method", reason: "'\(embedding.fusionMethod)' is not one of [\"late\", \"qformer\"]")
        }
        try string("embedding.fusion.directory", &embedding.qformerDirectory)
        func batching<I, O>(_ tower: String, _ limits: inout BatchScheduler<I, O>.Limits) throws {
            try int("batching.\(tower).maxBatchCost", &limits.maxBatchCost)
            try int("batching.\(tower).maxBatchItems", &limits.maxBatchItems)
            try int("batching.\(tower).queueCapacity", &limits.capacity)
            var wait = Int(limits.maxWait.components.seconds * 1_000_000 + limits.maxWait.components.attoseconds / 1_000_000_000_000)
            try int("batching.\(tower).maxWaitMicroseconds", &wait)
            limits.maxWait = .microseconds(wait)
            for (name, value) in [("maxBatchCost", limits.maxBatchCost), ("maxBatchItems", limits.maxBatchItems),
                                  ("queueCapacity", limits.capacity)] where value <= 0 {
                throw ConfigurationError.invalid(key: "batching.\(tower).\(name)", reason: "must be positive, got \(value)")
            }
            guard wait >= 0 else { throw ConfigurationError.invalid(key: "batching.\(tower).maxWaitMicroseconds", reason: "must be 0 or more") }
        }
        try batching("text", &embedding.pipeline.text)
        try batching("image", &embedding.pipeline.image)
        try batching("audio", &embedding.pipeline.audio)

        if let enabled = try config.present("store.enabled", { try config.requiredBool(forKey: $0) }) {
            store.enabled = enabled
        }
        try string("store.path", &store.path)
        if let name = try config.present("store.durability", { try config.requiredString(forKey: $0) }) {
            guard let durability = ItemStore.Durability(rawValue: name) else {
                throw ConfigurationError.invalid(key: "store.durability", reason: "'\(name)' is not one of \(ItemStore.Durability.allCases.map(\.rawValue))")
            }
            store.durability = durability
        }
        try int("store.cacheItems", &store.cacheItems)
        try string("codebook.path", &codebook.path)
        if let rotate = try config.present("codebook.rotateEmbeddings", { try config.requiredBool(forKey: $0) }) {
            codebook.rotateEmbeddings = rotate
        }
        if let allow = try config.present("codebook.allowUnstamped", { try config.requiredBool(forKey: $0) }) {
            embedding.pipeline.allowUnstampedCodebook = allow
        }
        try int("match.maxHistory", &match.maxHistory)
        try int("match.maxCandidates", &match.maxCandidates)
        try int("match.maxTop", &match.maxTop)
        try int("match.defaultRecent", &match.defaultRecent)
        try int("log.bufferBytes", &logBufferBytes)
        try milliseconds("log.flushIntervalMs", &logFlushInterval)

        if let name = try config.present("log.level", { try config.requiredString(forKey: $0) }) {
            guard let level = Logger.Level(rawValue: name) else {
                throw ConfigurationError.invalid(key: "log.level", reason: "'\(name)' is not one of \(Logger.Level.allCases.map(\.rawValue))")
            }
            logLevel = level
        }
        if let name = try config.present("log.format", { try config.requiredString(forKey: $0) }) {
            guard let format = LogFormat(rawValue: name) else {
                throw ConfigurationError.invalid(key: "log.format", reason: "'\(name)' is not one of \(LogFormat.allCases.map(\.rawValue))")
            }
            logFormat = format
        }
        try validate()
    }

    /// Rejects settings the server cannot run with.
    public func validate() throws {
        func positive(_ key: String, _ value: Int) throws {
            guard value > 0 else { throw ConfigurationError.invalid(key: key, reason: "must be positive, got \(value)") }
        }
        guard (0...65535).contains(http.port) else {
            throw ConfigurationError.invalid(key: "port", reason: "must be 0...65535, got \(http.port)")
        }
        guard http.eventLoops >= 0 else {
            throw ConfigurationError.invalid(key: "http.eventLoops", reason: "must be 0 (one per processor) or more")
        }
        try positive("http.maxConnections", http.maxConnections)
        try positive("http.maxRequestsPerConnection", http.maxRequestsPerConnection)
        try positive("http.maxRequestLineBytes", http.limits.maxRequestLineBytes)
        try positive("http.maxHeaderBytes", http.limits.maxHeaderBytes)
        try positive("http.maxHeaderCount", http.limits.maxHeaderCount)
        try positive("http.maxBodyBytes", http.limits.maxBodyBytes)
        try positive("http.minBodyBytesPerSecond", http.timeouts.minBodyBytesPerSecond)
        try positive("limits.maxTexts", limits.maxTexts)
        try positive("image.maxPixels", image.maxPixels)
        try positive("image.topK", image.topK)
        try positive("audio.maxSeconds", audio.maxSeconds)
        try positive("audio.topK", audio.topK)
        try positive("limits.maxTextBytes", limits.maxTextBytes)
        try positive("limits.maxImagesPerItem", limits.maxImagesPerItem)
        try positive("limits.maxItems", limits.maxItems)
        try positive("limits.maxImageBytes", limits.maxImageBytes)
        try positive("limits.maxAudioBytes", limits.maxAudioBytes)
        try positive("limits.maxIdBytes", limits.maxIdBytes)
        try positive("limits.maxRequestPixels", embedding.pipeline.budget.maxPixels)
        try positive("decode.queueCapacity", embedding.pipeline.decodeQueueCapacity)
        try positive("match.maxHistory", match.maxHistory)
        try positive("match.maxCandidates", match.maxCandidates)
        try positive("match.maxTop", match.maxTop)
        try positive("match.defaultRecent", match.defaultRecent)
        guard store.cacheItems >= 0 else {
            throw ConfigurationError.invalid(key: "store.cacheItems", reason: "must be 0 (no cache) or more")
        }
        guard !embedding.dimensions.isEmpty, embedding.dimensions.allSatisfy({ $0 > 0 }),
              Set(embedding.dimensions).count == embedding.dimensions.count else {
            throw ConfigurationError.invalid(key: "embedding.dimensions", reason: "must be distinct positive sizes, got \(embedding.dimensions)")
        }
        guard embedding.defaultTimeout > .zero, embedding.maxTimeout >= embedding.defaultTimeout else {
            throw ConfigurationError.invalid(key: "embedding.defaultTimeoutMs", reason: "must be positive and at most embedding.maxTimeoutMs")
        }
        guard maxTokens >= 2 else {
            throw ConfigurationError.invalid(key: "model.maxTokens", reason: "must leave room for [CLS] and [SEP]")
        }
        try encoder.validate(processors: ProcessInfo.processInfo.activeProcessorCount)
        guard logBufferBytes >= 0 else {
            throw ConfigurationError.invalid(key: "log.bufferBytes", reason: "must be 0 (unbuffered) or more")
        }
        guard (1...9).contains(compression.level) else {
            throw ConfigurationError.invalid(key: "compression.level", reason: "must be 1...9, got \(compression.level)")
        }
    }
}

public enum ConfigurationError: Error, CustomStringConvertible {
    case invalid(key: String, reason: String)

    public var description: String {
        switch self {
        case .invalid(let key, let reason): "configuration key '\(key)': \(reason)"
        }
    }
}

extension ConfigReader {
    /// The value at `key` read by `read`; `nil` when no provider has the key, an error when it is malformed.
    func present<T>(_ key: String, _ read: (ConfigKey) throws -> T) throws -> T? {
        do {
            return try read(ConfigKey(key))
        } catch {
            // swift-configuration's error type is package-internal: "missing" is told apart by its text.
            if "\(error)".hasPrefix("Missing required config value") { return nil }
            throw ConfigurationError.invalid(key: key, reason: "\(error)")
        }
    }
}

extension ServiceConfiguration {
    /// The configured text model, with OpenBLAS set to `model.blasThreads` (a process-wide setting).
    public func loadTextModel() throws -> TextEmbedder {
        BLAS.setThreads(encoder.blasThreads)
        return try TextEmbedder(directory: URL(fileURLWithPath: modelDirectory), maxTokens: maxTokens,
                                threads: encoder.resolvedThreads())
    }

    /// The configured audio tower, with OpenBLAS set as for the text model.
    public func loadAudioModel() throws -> Musicnn {
        BLAS.setThreads(encoder.blasThreads)
        return try Musicnn(directory: URL(fileURLWithPath: audio.directory), threads: encoder.resolvedThreads())
    }

    /// The configured image tower, with OpenBLAS set as for the text model.
    public func loadImageModel() throws -> EfficientNetLite {
        BLAS.setThreads(encoder.blasThreads)
        return try EfficientNetLite(directory: URL(fileURLWithPath: image.directory), threads: encoder.resolvedThreads())
    }
}

extension ServiceConfiguration {
    /// The three towers and their shared space.
    public func loadTowers() throws -> Towers {
        func labels(_ path: String) throws -> [String] {
            try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        }
        return try Towers(text: try loadTextModel(), image: try loadImageModel(), audio: try loadAudioModel(),
                          imageLabels: try labels(image.labels), audioLabels: try labels(audio.labels),
                          imageTopK: image.topK, audioTopK: audio.topK, maxPixels: image.maxPixels,
                          maxAudioSeconds: Double(audio.maxSeconds))
    }

    /// The towers' names joined, and a hash of everything that shapes the vectors: weights, tokenizer, label lists,
    /// and the settings that change outputs. A stored vector is reused only under the same revision.
    public func modelIdentity() throws -> ModelIdentity {
        let directories = [modelDirectory, image.directory, audio.directory]
        let files = [modelDirectory + "/model.safetensors", modelDirectory + "/tokenizer.json",
                     image.directory + "/model.safetensors", audio.directory + "/model.safetensors", image.labels, audio.labels]
        var parts: [(tag: UInt8, bytes: [UInt8])] = try files.map { path in
            (0, [UInt8](try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)))
        }
        let weights = Modality.allCases.map { "\($0.rawValue)=\(embedding.fusionWeights[$0] ?? 1)" }
        let fusion = embedding.fusionMethod == "late" ? "late \(weights)" : "qformer"
        if embedding.fusionMethod == "qformer" {
            for name in ["config.json", "model.safetensors"] {
                let path = embedding.qformerDirectory + "/" + name
                parts.append((2, [UInt8](try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped))))
            }
        }
        parts.append((1, Array("maxTokens=\(maxTokens) imageTopK=\(image.topK) audioTopK=\(audio.topK) \(fusion)".utf8)))
        var id = directories.map { URL(fileURLWithPath: $0).lastPathComponent }.joined(separator: "+")
        if embedding.fusionMethod == "qformer" { id += "+" + URL(fileURLWithPath: embedding.qformerDirectory).lastPathComponent }
        return ModelIdentity(id: id, revision: String(ContentHash.sha256(parts).prefix(16)))
    }
}

extension ServiceConfiguration {
    /// The towers behind their batchers, with the store when it is enabled: what `serve` and `embed` run.
    public func makePipeline(logger: Logger, metricsFactory: any MetricsFactory) throws -> EmbeddingPipeline {
        let itemStore = store.enabled
            ? try ItemStore(path: store.path, durability: store.durability, cacheItems: store.cacheItems) : nil
        let towers = try loadTowers()
        guard embedding.dimensions[0] == towers.dimensions, embedding.dimensions.allSatisfy({ $0 <= towers.dimensions }) else {
            throw ConfigurationError.invalid(
                key: "embedding.dimensions",
                reason: "the first size must be the model's (\(towers.dimensions)) and none larger, got \(embedding.dimensions)")
        }
        var settings = embedding.pipeline
        switch embedding.fusionMethod {
        case "qformer":
            let qformer = try FusionQFormer(directory: URL(fileURLWithPath: embedding.qformerDirectory))
            let c = qformer.configuration
            let expected = ["text": towers.dimensions, "image": towers.image.featureSize, "audio": towers.audio.featureSize]
            guard c.inputSizes == expected, c.outputSize == towers.dimensions else {
                throw ConfigurationError.invalid(
                    key: "embedding.fusion.directory",
                    reason: "the Fusion-Q-Former takes \(c.inputSizes) and gives \(c.outputSize); the towers give \(expected) and the output must be \(towers.dimensions)")
            }
            settings.fusion = .qformer(qformer)
        default:
            settings.fusion = .late(LateFusion(weights: embedding.fusionWeights))
        }
        let pipeline = EmbeddingPipeline(towers: towers, model: try modelIdentity(), store: itemStore, settings: settings,
                                         logger: logger, metricsFactory: metricsFactory)
        if let codebook = try loadCodebook() {
            do { try pipeline.install(codebook) } catch {
                throw ConfigurationError.invalid(key: "codebook.path", reason: "\(codebook.version) at \(self.codebook.path): \(error.message)")
            }
        }
        return pipeline
    }

    /// The codebook at `codebook.path`; `nil` when no file is there (none fitted yet). A file that is there but
    /// unreadable is an error.
    public func loadCodebook() throws -> SemanticCodebook? {
        guard !codebook.path.isEmpty, FileManager.default.fileExists(atPath: codebook.path) else { return nil }
        return try SemanticCodebook(path: codebook.path)
    }
}
