import CoreMetrics
import Dispatch
import Foundation
import Locking
import Logging
internal import Media
internal import Models
internal import Tensor

/// Items in, embeddings out: cache look-up in the store, decoding, tokenisation, the towers behind their dynamic
/// batchers, ConSE into the shared space, fusion, and the durable write of what was computed.
public final class EmbeddingPipeline: Sendable {
    public struct Settings: Sendable {
        /// Text batches by tokens.
        public var text = BatchLimits(maxBatchCost: 8192, maxBatchItems: 128, maxWait: .milliseconds(2), capacity: 262_144)
        /// Image batches by images (cover and frames).
        public var image = BatchLimits(maxBatchCost: 16, maxBatchItems: 16, maxWait: .milliseconds(2), capacity: 1024)
        /// Audio batches by 3-second patches.
        public var audio = BatchLimits(maxBatchCost: 64, maxBatchItems: 64, maxWait: .milliseconds(2), capacity: 8192)
        /// What one call may spend on decoding.
        public var budget = DecodeBudget()
        /// Threads that decode media, and how many items may wait for them.
        public var decodeThreads = max(1, ProcessInfo.processInfo.activeProcessorCount / 2)
        public var decodeQueueCapacity = 4096
        /// Serve a codebook that names no model (see `SemanticCodebook.mismatch`).
        public var allowUnstampedCodebook = false
        /// Codebook versions kept loaded, the newest and those before it, for requests pinned to an older one.
        public var keepCodebooks = 2
        public init() {}
    }

    /// What the image tower gives for one image.
    struct ImageOutput: Sendable {
        var features: [Float]
        var probabilities: [Float]
    }

    /// What the audio tower gives for one recording: per-patch features and tag probabilities.
    struct AudioOutput: Sendable {
        var features: [[Float]]
        var tags: [[Float]]
    }

    /// How one call is run.
    public struct Options: Sendable {
        public var priority: Priority
        public var deadline: ContinuousClock.Instant
        /// Answer unchanged items from the store and write what is computed.
        public var store: Bool
        /// A failing item fails alone instead of failing the call.
        public var partial: Bool
        /// Return the towers' raw features; the store does not keep them, so every item is computed.
        public var features: Bool

        public init(priority: Priority = .online, deadline: ContinuousClock.Instant, store: Bool = true, partial: Bool = false,
                    features: Bool = false) {
            self.priority = priority
            self.deadline = deadline
            self.store = store
            self.partial = partial
            self.features = features
        }
    }

    let towers: Towers
    public let model: ModelIdentity
    public let store: ItemStore?
    let fusion: FusionMethod
    /// The codebooks semantic IDs come from (the newest by default); a new one by `install`.
    public let codebooks: CodebookSlot
    let text: BatchScheduler<[Int32], BertEncoder.Encoding>
    let image: BatchScheduler<[Float], ImageOutput>
    let audio: BatchScheduler<[[Float]], AudioOutput>
    let decoders: DecodePool
    let budget: DecodeBudget
    private let allowUnstampedCodebook: Bool
    let metrics: Metrics
    let logger: Logger

    init(towers: Towers, model: ModelIdentity, store: ItemStore?, fusion: FusionMethod, settings: Settings,
         logger: Logger, metricsFactory: any MetricsFactory) {
        self.towers = towers
        codebooks = CodebookSlot(keep: settings.keepCodebooks)
        self.model = model
        self.store = store
        self.logger = logger
        self.fusion = fusion
        budget = settings.budget
        allowUnstampedCodebook = settings.allowUnstampedCodebook
        decoders = DecodePool(threads: settings.decodeThreads, capacity: settings.decodeQueueCapacity)
        metrics = Metrics(factory: metricsFactory)
        let turn = ComputeTurn()
        let tokenStates = if case .qformer = fusion { true } else { false }
        text = BatchScheduler(name: "text", limits: settings.text, turn: turn, metricsFactory: metricsFactory) { ids in
            towers.text.encoder.encode(ids, tokenStates: tokenStates)
        }
        image = BatchScheduler(name: "image", limits: settings.image, turn: turn, metricsFactory: metricsFactory) { images in
            let output = towers.image.run(images)
            return zip(output.features, output.logits).map {
                ImageOutput(features: $0, probabilities: ConvexSemanticEmbedding.softmax($1))
            }
        }
        audio = BatchScheduler(name: "audio", limits: settings.audio, turn: turn, metricsFactory: metricsFactory) { recordings in
            let output = towers.audio.run(recordings.flatMap { $0 })
            var start = 0
            return recordings.map { recording in
                defer { start += recording.count }
                return AudioOutput(features: Array(output.features[start..<start + recording.count]),
                                   tags: Array(output.tags[start..<start + recording.count]))
            }
        }
    }

    /// Size of the fused vectors.
    public var dimensions: Int { towers.dimensions }

    /// The text model's name (its directory's), which OpenAI-style responses report.
    public var textModelName: String { towers.text.name }

    /// A text's token ids and tokens, as the text tower sees it (special tokens included, truncated at its
    /// longest sequence).
    public func tokenize(_ text: String) -> Tokenization {
        let tokenizer = towers.text.tokenizer
        let encoding = tokenizer.encoding(text)
        return Tokenization(ids: encoding.ids, tokens: encoding.ids.map { tokenizer.tokens[Int($0)] },
                            truncated: encoding.truncated)
    }

    /// Wakes the compute threads, which take a while to, so that they are up when a request's work reaches them.
    public func wakeComputeThreads() {
        Parallel.warmUp()
    }

    /// Makes `codebook` (or none) the one semantic IDs come from, if it fits this model's vectors.
    public func install(_ codebook: SemanticCodebook?) throws(EmbeddingError) {
        if let codebook, let mismatch = codebook.mismatch(dimensions: dimensions, model: model, allowUnstamped: allowUnstampedCodebook) {
            throw .invalid("codebook_mismatch", mismatch)
        }
        codebooks.replace(codebook)
    }

    /// Stops the batchers (queued work fails with 503), then the store's own threads.
    public func shutdown() {
        decoders.shutdown()
        text.shutdown()
        image.shutdown()
        audio.shutdown()
        store?.close()
    }

    /// One text, one image and one audio patch through every tower, so that the first request does not pay for
    /// page faults and lazily built state.
    public func warmUp() async throws(EmbeddingError) {
        let deadline = ContinuousClock.now + .seconds(60)
        let side = EfficientNetLite.inputSize
        _ = try await text.submit([(towers.text.tokenizer.encode("warm up"), 4)], deadline: deadline)
        _ = try await image.submit([([Float](repeating: 0, count: 3 * side * side), 1)], deadline: deadline)
        _ = try await audio.submit([([[Float](repeating: 0, count: Musicnn.frames * Musicnn.bands)], 1)], deadline: deadline)
    }

    /// What one call returns: a result per item, in order, and where the time went.
    public struct Outcome: Sendable {
        public var items: [Result<EmbeddedItem, EmbeddingError>]
        /// Longest queue wait of any tower job, and the towers' batch run times added up.
        public var timing: TowerTiming
        /// The codebook the items' semantic IDs are from.
        public var codebook: SemanticCodebook?
    }

    /// Embeddings of `items` in order: refuse items without a modality, answer unchanged ones from the store,
    /// decode and tokenise the rest, run the towers, code and store what was computed. An item that cannot be
    /// embedded (no modality, a corrupt file, over a limit) fails the call unless `options.partial`, when it fails
    /// alone; overload, deadline and store failures always fail the call.
    public func embed(_ items: [ItemInput], options: Options) async throws(EmbeddingError) -> Outcome {
        var results = [Result<EmbeddedItem, EmbeddingError>?](repeating: nil, count: items.count)
        for (index, item) in items.enumerated() where item.text == nil && item.images.isEmpty && item.audio == nil && item.video == nil {
            results[index] = .failure(.invalid("no_modality", "\(item.label): no text, fields, images, audio or video"))
        }
        try checkFailures(results, options)
        let codebook = codebooks.current
        let stored = try lookUp(items, into: &results, options: options, codebook: codebook)

        let pending = items.indices.filter { results[$0] == nil }
        let inputs = try await decode(pending.map { items[$0] }, options: options)
        for (index, input) in zip(pending, inputs) {
            if case .failure(let error) = input { results[index] = .failure(error) }
        }
        try checkFailures(results, options)
        let work = zip(pending, inputs).compactMap { index, input in (try? input.get()).map { (index, $0) } }
        let (computed, features, timing) = work.isEmpty ? ([], [], TowerTiming()) : try await run(work.map(\.1), options: options)

        let now = Date().timeIntervalSince1970
        var records = collect(items, work: work, computed: computed, features: features, codebook: codebook, now: now,
                              into: &results)
        if let codebook {
            records += recode(items, stored: stored, codebook: codebook, now: now, results: &results)
        }
        if options.store { try await write(records) }
        return Outcome(items: results.map { $0! }, timing: timing, codebook: codebook)
    }

    /// Items the store has unchanged (same content, model and revision) answered from it; returns what the store
    /// has for every item.
    private func lookUp(_ items: [ItemInput], into results: inout [Result<EmbeddedItem, EmbeddingError>?], options: Options,
                        codebook: SemanticCodebook?) throws(EmbeddingError) -> [String: ItemStore.Record] {
        guard options.store, let store else { return [:] }
        let started = ContinuousClock.now
        // Raw features are not stored: every item is computed, and the store need not be read.
        let stored = options.features ? [:] : try store.records(items.map(\.id))
        metrics.store.record(.now - started)
        for (index, item) in items.enumerated() where results[index] == nil {
            guard let record = stored[item.id], record.contentHash == item.contentHash, record.revision == model.revision,
                  record.modelID == model.id else { continue }
            results[index] = .success(EmbeddedItem(
                id: item.id, contentHash: item.contentHash, embedding: record.embedding, modalities: record.modalities,
                cached: true, tokens: 0, truncated: record.truncated, images: record.images,
                audioSeconds: record.audioSeconds,
                semanticID: record.codebookVersion == codebook?.version ? record.semanticID : nil))
        }
        let hits = results.count { if case .success = $0 { true } else { false } }
        metrics.cacheHits.increment(by: hits)
        metrics.cacheMisses.increment(by: items.count - hits)
        return stored
    }

    /// The computed items as results, with their codes, and as store records.
    private func collect(_ items: [ItemInput], work: [(Int, Inputs)], computed: [(Modalities, [Float])],
                         features: [TowerFeatures], codebook: SemanticCodebook?, now: Double,
                         into results: inout [Result<EmbeddedItem, EmbeddingError>?]) -> [ItemStore.Record] {
        let codes = codebook.map { $0.codes(computed.flatMap(\.1), count: computed.count) }
        var records: [ItemStore.Record] = []
        for (position, ((index, input), (modalities, embedding))) in zip(work, computed).enumerated() {
            let item = EmbeddedItem(id: items[index].id, contentHash: items[index].contentHash,
                                    embedding: embedding, modalities: modalities, cached: false,
                                    tokens: input.tokens.count, truncated: input.truncated, images: input.images.count,
                                    audioSeconds: input.audioSeconds, videoSeconds: input.videoSeconds,
                                    framesDecoded: input.framesDecoded, semanticID: codes?[position],
                                    features: features[position])
            results[index] = .success(item)
            records.append(ItemStore.Record(
                id: item.id, contentHash: item.contentHash, modelID: model.id, revision: model.revision,
                embedding: item.embedding, modalities: modalities, semanticID: item.semanticID,
                codebookVersion: codebook?.version, truncated: item.truncated,
                images: item.images, audioSeconds: item.audioSeconds, createdAt: now, updatedAt: now))
        }
        return records
    }

    /// Items answered from the store whose codes are from another codebook (or none): coded with `codebook`, and
    /// returned as records to store again.
    private func recode(_ items: [ItemInput], stored: [String: ItemStore.Record], codebook: SemanticCodebook, now: Double,
                        results: inout [Result<EmbeddedItem, EmbeddingError>?]) -> [ItemStore.Record] {
        var stale: [(index: Int, item: EmbeddedItem, record: ItemStore.Record)] = []
        for (index, result) in results.enumerated() {
            guard case .success(let item)? = result, item.cached, let record = stored[items[index].id],
                  record.codebookVersion != codebook.version else { continue }
            stale.append((index, item, record))
        }
        let codes = codebook.codes(stale.flatMap(\.item.embedding), count: stale.count)
        var records: [ItemStore.Record] = []
        for ((index, item, record), code) in zip(stale, codes) {
            var (item, record) = (item, record)
            item.semanticID = code
            results[index] = .success(item)
            (record.semanticID, record.codebookVersion, record.updatedAt) = (code, codebook.version, now)
            records.append(record)
        }
        return records
    }

    /// The durable write of `records`, before the call returns.
    private func write(_ records: [ItemStore.Record]) async throws(EmbeddingError) {
        guard let store, !records.isEmpty else { return }
        let started = ContinuousClock.now
        do {
            try await store.put(records)
        } catch {
            logger.error("item store write failed", metadata: ["error": "\(error.message)", "items": "\(records.count)"])
            throw error
        }
        metrics.store.record(.now - started)
    }

    /// Without `partial`, the first failed item fails the call.
    func checkFailures<Success>(_ results: [Result<Success, EmbeddingError>?], _ options: Options) throws(EmbeddingError) {
        guard !options.partial else { return }
        for result in results { if case .failure(let error) = result { throw error } }
    }

    struct Metrics: Sendable {
        let tokenize, decodeImage, decodeAudio, decodeVideo, fusion, store: CoreMetrics.Timer
        /// A video's stages: reading its container's headers, decoding frames and soundtrack, converting frames to RGB.
        let videoDemux, videoDecode, videoConvert: CoreMetrics.Timer
        let cacheHits, cacheMisses, decodeFailures: Counter

        init(factory: any MetricsFactory) {
            tokenize = CoreMetrics.Timer(label: "omniembed_tokenize_seconds", factory: factory)
            decodeImage = CoreMetrics.Timer(label: "omniembed_decode_seconds", dimensions: [("modality", "image")], factory: factory)
            decodeAudio = CoreMetrics.Timer(label: "omniembed_decode_seconds", dimensions: [("modality", "audio")], factory: factory)
            decodeVideo = CoreMetrics.Timer(label: "omniembed_decode_seconds", dimensions: [("modality", "video")], factory: factory)
            videoDemux = CoreMetrics.Timer(label: "omniembed_video_stage_seconds", dimensions: [("stage", "demux")], factory: factory)
            videoDecode = CoreMetrics.Timer(label: "omniembed_video_stage_seconds", dimensions: [("stage", "decode")], factory: factory)
            videoConvert = CoreMetrics.Timer(label: "omniembed_video_stage_seconds", dimensions: [("stage", "convert")], factory: factory)
            fusion = CoreMetrics.Timer(label: "omniembed_fusion_seconds", factory: factory)
            store = CoreMetrics.Timer(label: "omniembed_store_seconds", factory: factory)
            cacheHits = Counter(label: "omniembed_cache_hits_total", factory: factory)
            cacheMisses = Counter(label: "omniembed_cache_misses_total", factory: factory)
            decodeFailures = Counter(label: "omniembed_decode_failures_total", factory: factory)
        }
    }
}
