import Configuration
import Embedding
import Foundation
import HTTP
import Logging
import SystemPackage

extension ServiceConfiguration {
    /// Loads `file` (if given) under environment overrides taken from `environment`.
    public static func load(file: String?, environment: [String: String]) async throws -> ServiceConfiguration {
        var providers: [any ConfigProvider] = [
            EnvironmentVariablesProvider(environmentVariables: environment).prefixKeys(with: "omniembed")
        ]
        if let file {
            providers.append(try await FileProvider<JSONSnapshot>(filePath: FilePath(file)))
        }
        return try ServiceConfiguration(reading: SettingsReader(providers: providers))
    }

    /// Reads every setting from `config`, keeping the default for absent keys.
    init(reading config: SettingsReader) throws(ConfigurationError) {
        var http = HTTPServerConfiguration()
        try config.string("host", &http.host)
        try config.int("port", &http.port)
        try config.int32("http.backlog", &http.backlog)
        try config.int("http.eventLoops", &http.eventLoops)
        try config.int("http.maxConnections", &http.maxConnections)
        try config.int("http.maxRequestsPerConnection", &http.maxRequestsPerConnection)
        try config.int("http.maxRequestLineBytes", &http.limits.maxRequestLineBytes)
        try config.int("http.maxHeaderBytes", &http.limits.maxHeaderBytes)
        try config.int("http.maxHeaderCount", &http.limits.maxHeaderCount)
        try config.int("http.maxBodyBytes", &http.limits.maxBodyBytes)
        try config.int("http.maxChunkLineBytes", &http.limits.maxChunkLineBytes)
        try config.milliseconds("http.requestHeadTimeoutMs", &http.timeouts.requestHead)
        try config.milliseconds("http.keepAliveTimeoutMs", &http.timeouts.keepAliveIdle)
        try config.milliseconds("http.bodyGraceMs", &http.timeouts.bodyGrace)
        try config.int("http.minBodyBytesPerSecond", &http.timeouts.minBodyBytesPerSecond)
        try config.milliseconds("http.writeTimeoutMs", &http.timeouts.write)
        try config.milliseconds("http.lingerTimeoutMs", &http.lingerTimeout)
        self.http = http

        try config.bool("compression.enabled", &compression.enabled)
        try config.int("compression.minBytes", &compression.minimumBytes)
        try config.int32("compression.level", &compression.level)

        try config.milliseconds("shutdown.gracePeriodMs", &shutdownGracePeriod)
        try config.string("model.directory", &modelDirectory)
        try config.int("model.maxTokens", &maxTokens)
        try config.choice("model.precision", &precision)
        try config.choice("image.precision", &image.precision)
        try config.choice("audio.precision", &audio.precision)
        try config.string("image.directory", &image.directory)
        try config.int("image.maxPixels", &image.maxPixels)
        try config.string("image.labels", &image.labels)
        try config.int("image.topK", &image.topK)
        try config.string("audio.directory", &audio.directory)
        try config.int("audio.maxSeconds", &audio.maxSeconds)
        try config.string("audio.labels", &audio.labels)
        try config.int("audio.topK", &audio.topK)
        try config.int("model.threads", &encoder.threads)
        try config.int("model.blasThreads", &encoder.blasThreads)
        try config.int("limits.maxTexts", &limits.maxTexts)
        try config.int("limits.maxTextBytes", &limits.maxTextBytes)
        try config.int("limits.maxImagesPerItem", &limits.maxImagesPerItem)
        try config.int("limits.maxItems", &limits.maxItems)
        try config.int("limits.maxImageBytes", &limits.maxImageBytes)
        try config.int("limits.maxAudioBytes", &limits.maxAudioBytes)
        try config.int("limits.maxVideoBytes", &limits.maxVideoBytes)
        try config.int("limits.maxVideoSeconds", &limits.maxVideoSeconds)
        try config.int("limits.maxIdBytes", &limits.maxIdBytes)
        try config.int("limits.maxRequestPixels", &embedding.pipeline.budget.maxPixels)
        if let seconds = try config.double("limits.maxRequestAudioSeconds") {
            guard seconds > 0, seconds.isFinite else {
                throw ConfigurationError.invalid(key: "limits.maxRequestAudioSeconds", reason: "must be positive, got \(seconds)")
            }
            embedding.pipeline.budget.maxAudioSeconds = seconds
        }
        var decodeThreads = 0
        try config.int("decode.threads", &decodeThreads)
        guard decodeThreads >= 0 else { throw ConfigurationError.invalid(key: "decode.threads", reason: "must be 0 (half the processors) or more") }
        if decodeThreads > 0 { embedding.pipeline.decodeThreads = decodeThreads }
        try config.int("decode.queueCapacity", &embedding.pipeline.decodeQueueCapacity)

        try config.ints("embedding.dimensions", &embedding.dimensions)
        try config.milliseconds("embedding.defaultTimeoutMs", &embedding.defaultTimeout)
        try config.milliseconds("embedding.maxTimeoutMs", &embedding.maxTimeout)
        for modality in Modality.allCases {
            let key = "embedding.fusion.weights.\(modality.rawValue)"
            if let weight = try config.double(key) {
                guard weight >= 0, weight.isFinite else { throw ConfigurationError.invalid(key: key, reason: "must be 0 or more") }
                embedding.fusionWeights[modality] = Float(weight)
            }
        }
        try config.choice("embedding.fusion.method", &embedding.fusionMethod)
        try config.string("embedding.fusion.directory", &embedding.qformerDirectory)
        try config.choice("embedding.fusion.precision", &embedding.fusionPrecision)
        func batching(_ tower: String, _ limits: inout BatchLimits) throws(ConfigurationError) {
            try config.int("batching.\(tower).maxBatchCost", &limits.maxBatchCost)
            try config.int("batching.\(tower).maxBatchItems", &limits.maxBatchItems)
            try config.int("batching.\(tower).queueCapacity", &limits.capacity)
            var wait = Int(limits.maxWait.components.seconds * 1_000_000 + limits.maxWait.components.attoseconds / 1_000_000_000_000)
            try config.int("batching.\(tower).maxWaitMicroseconds", &wait)
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

        try config.bool("store.enabled", &store.enabled)
        try config.choice("store.backend", &store.backend)
        try config.string("store.path", &store.path)
        try config.choice("store.durability", &store.durability)
        try config.string("store.url", &store.url)
        try config.string("store.password", &store.password)
        try config.string("store.passwordFile", &store.passwordFile)
        try config.int("store.poolSize", &store.poolSize)
        try config.milliseconds("store.statementTimeoutMs", &store.statementTimeout)
        try config.milliseconds("store.connectTimeoutMs", &store.connectTimeout)
        try config.milliseconds("store.checkIntervalMs", &store.checkInterval)
        try config.int("store.cacheItems", &store.cacheItems)
        try config.string("codebook.path", &codebook.path)
        try config.bool("codebook.rotateEmbeddings", &codebook.rotateEmbeddings)
        try config.string("auth.keysFile", &auth.keysFile)
        try config.bool("auth.protectMetrics", &auth.protectMetrics)
        if let rate = try config.double("auth.limits.requestsPerSecond") {
            guard rate >= 0, rate.isFinite else {
                throw ConfigurationError.invalid(key: "auth.limits.requestsPerSecond", reason: "must be 0 (no limit) or more")
            }
            auth.requestsPerSecond = rate
        }
        if let rate = try config.double("auth.limits.itemsPerSecond") {
            guard rate >= 0, rate.isFinite else {
                throw ConfigurationError.invalid(key: "auth.limits.itemsPerSecond", reason: "must be 0 (no limit) or more")
            }
            auth.itemsPerSecond = rate
        }
        try config.string("tls.certificateFile", &tls.certificateFile)
        try config.string("tls.privateKeyFile", &tls.privateKeyFile)
        try config.string("tls.clientCAFile", &tls.clientCAFile)
        // The environment spells the key above OMNIEMBED_TLS_CLIENT_CAFILE; this one is OMNIEMBED_TLS_CLIENT_CA_FILE.
        try config.string("tls.clientCaFile", &tls.clientCAFile)
        try config.bool("security.allowInsecure", &allowInsecure)
        try config.bool("codebook.allowUnstamped", &embedding.pipeline.allowUnstampedCodebook)
        try config.int("codebook.keep", &embedding.pipeline.keepCodebooks)
        guard (1...16).contains(embedding.pipeline.keepCodebooks) else {
            throw ConfigurationError.invalid(key: "codebook.keep", reason: "must be 1...16, got \(embedding.pipeline.keepCodebooks)")
        }
        try config.int("match.maxHistory", &match.maxHistory)
        try config.int("match.maxCandidates", &match.maxCandidates)
        try config.int("match.maxTop", &match.maxTop)
        try config.int("match.defaultRecent", &match.defaultRecent)
        try config.choice("match.precision", &match.precision)
        guard match.precision != .int8 else {
            throw ConfigurationError.invalid(key: "match.precision", reason: "may be fp32 or bf16, got int8")
        }
        try config.int("log.bufferBytes", &logBufferBytes)
        try config.milliseconds("log.flushIntervalMs", &logFlushInterval)

        try config.choice("log.level", &logLevel)
        try config.choice("log.format", &logFormat)
        try validate()
    }

    /// Rejects settings the server cannot run with.
    public func validate() throws(ConfigurationError) {
        func positive(_ key: String, _ value: Int) throws(ConfigurationError) {
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
        try positive("limits.maxVideoBytes", limits.maxVideoBytes)
        try positive("limits.maxVideoSeconds", limits.maxVideoSeconds)
        try positive("limits.maxIdBytes", limits.maxIdBytes)
        try positive("limits.maxRequestPixels", embedding.pipeline.budget.maxPixels)
        try positive("decode.queueCapacity", embedding.pipeline.decodeQueueCapacity)
        try positive("match.maxHistory", match.maxHistory)
        try positive("match.maxCandidates", match.maxCandidates)
        try positive("match.maxTop", match.maxTop)
        try positive("match.defaultRecent", match.defaultRecent)
        if store.backend == .postgres {
            guard store.url.hasPrefix("postgresql://") || store.url.hasPrefix("postgres://") else {
                throw ConfigurationError.invalid(key: "store.url", reason: "store.backend postgres needs postgresql://user@host:port/db")
            }
            guard (1...256).contains(store.poolSize) else {
                throw ConfigurationError.invalid(key: "store.poolSize", reason: "must be 1...256, got \(store.poolSize)")
            }
            guard store.checkInterval >= .milliseconds(50), store.checkInterval <= .seconds(600) else {
                throw ConfigurationError.invalid(key: "store.checkIntervalMs", reason: "must be 50...600000")
            }
            guard store.password.isEmpty || store.passwordFile.isEmpty else {
                throw ConfigurationError.invalid(key: "store.passwordFile", reason: "give the password or its file, not both")
            }
        }
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
        try Self.validate(encoder, processors: ProcessInfo.processInfo.activeProcessorCount)
        guard logBufferBytes >= 0 else {
            throw ConfigurationError.invalid(key: "log.bufferBytes", reason: "must be 0 (unbuffered) or more")
        }
        guard tls.certificateFile.isEmpty == tls.privateKeyFile.isEmpty else {
            throw ConfigurationError.invalid(key: "tls.privateKeyFile", reason: "TLS needs both tls.certificateFile and tls.privateKeyFile")
        }
        guard tls.clientCAFile.isEmpty || tls.enabled else {
            throw ConfigurationError.invalid(key: "tls.clientCAFile", reason: "mutual TLS needs TLS: set tls.certificateFile and tls.privateKeyFile")
        }
        let loopback = ["127.0.0.1", "::1", "localhost"].contains(http.host) || http.host.hasPrefix("127.")
        guard loopback || allowInsecure || (tls.enabled && !auth.keysFile.isEmpty) else {
            throw ConfigurationError.invalid(
                key: "host",
                reason: "\(http.host) is not a loopback address: configure TLS (tls.certificateFile, tls.privateKeyFile) and API keys (auth.keysFile), or set security.allowInsecure: true")
        }
        guard (1...9).contains(compression.level) else {
            throw ConfigurationError.invalid(key: "compression.level", reason: "must be 1...9, got \(compression.level)")
        }
    }

    /// Threads × BLAS threads within the processors.
    static func validate(_ compute: ComputeThreads, processors: Int) throws(ConfigurationError) {
        guard compute.threads >= 0 else {
            throw .invalid(key: "model.threads", reason: "must be 0 (one per processor) or more")
        }
        guard compute.blasThreads >= 1 else {
            throw .invalid(key: "model.blasThreads", reason: "must be positive, got \(compute.blasThreads)")
        }
        let threads = compute.resolvedThreads(processors: processors)
        guard threads * compute.blasThreads <= processors else {
            throw .invalid(
                key: "model.threads",
                reason: "\(threads) threads × \(compute.blasThreads) BLAS threads = \(threads * compute.blasThreads) would oversubscribe \(processors) processors")
        }
    }
}
