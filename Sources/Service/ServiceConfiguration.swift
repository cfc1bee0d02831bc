import Embedding
import Foundation
import HTTP
import Logging

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
    /// The towers' dense layers: fp32, bf16 or int8 (README, "Precision"); `image.precision` and
    /// `audio.precision` override it for one tower.
    public var precision = TowerPrecision.fp32
    public var encoder = ComputeThreads()
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
        /// The tower's precision; `nil` follows `model.precision`.
        public var precision: TowerPrecision?
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
        /// The tower's precision; `nil` follows `model.precision`.
        public var precision: TowerPrecision?
    }
    public var limits = RequestLimits()
    public var embedding = EmbeddingSettings()
    public var store = StoreSettings()
    public var codebook = CodebookSettings()
    public var match = MatchLimits()
    public var auth = AuthSettings()
    public var tls = TLSSettings()
    /// Serve on a non-loopback address without TLS and API keys (refused by default).
    public var allowInsecure = false

    /// TLS on the listener: PEM files (a chain is fine); with `clientCAFile`, mutual TLS. Read again on SIGHUP.
    public struct TLSSettings: Sendable {
        public var certificateFile = ""
        public var privateKeyFile = ""
        public var clientCAFile = ""
        public var enabled: Bool { !certificateFile.isEmpty || !privateKeyFile.isEmpty }
    }

    /// API keys. Without a keys file every route is open.
    public struct AuthSettings: Sendable {
        /// `NAME SCOPES sha256:HEX` per line (`omniembed keys new` makes them); read again on SIGHUP and reload.
        public var keysFile = ""
        /// `/metrics` needs a key with the `admin` scope too.
        public var protectMetrics = false
        /// Requests a second each key may make (0: no limit); over it, 429 with `Retry-After`.
        public var requestsPerSecond = 0.0
        /// Items (or OpenAI inputs) a second each key may embed (0: no limit).
        public var itemsPerSecond = 0.0
    }

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
        /// The candidates × history product: fp32, or bf16 (opt-in; README, "Precision").
        public var precision = TowerPrecision.fp32
    }

    /// `/embed`'s output sizes, fusion and batching.
    public struct EmbeddingSettings: Sendable {
        /// Matryoshka sizes a request may ask for; the first is the default and must be the full size.
        public var dimensions = [384, 256, 128, 64]
        /// Batching (its `fusion` is set from the three settings below when the pipeline is made).
        public var pipeline = EmbeddingPipeline.Settings()
        public var fusionMethod = FusionMethodName.late
        public var fusionWeights: [Modality: Float] = [.text: 1, .image: 1, .audio: 1]
        /// Where the Fusion-Q-Former's `config.json` and `model.safetensors` are (for `qformer`).
        public var qformerDirectory = "models/fusion-qformer"
        /// The Fusion-Q-Former's precision; `nil` follows `model.precision`.
        public var fusionPrecision: TowerPrecision?
        /// Deadline of a request that gives no `timeout_ms` ...
        public var defaultTimeout: Duration = .seconds(30)
        /// ... and the longest one may give.
        public var maxTimeout: Duration = .seconds(600)
    }

    /// The item store: SQLite in one file (the default), or PostgreSQL shared by replicas.
    public struct StoreSettings: Sendable {
        public enum BackendName: String, Sendable, CaseIterable {
            case sqlite, postgres
        }

        public var enabled = true
        public var backend = BackendName.sqlite
        public var path = "data/items.sqlite"
        public var durability = ItemStore.Durability.full
        /// `postgresql://user@host:port/db`; the password comes from `password` (`OMNIEMBED_STORE_PASSWORD`) or
        /// `passwordFile`, so that the URL can be logged.
        public var url = ""
        public var password = ""
        public var passwordFile = ""
        public var poolSize = 8
        public var statementTimeout: Duration = .seconds(5)
        public var connectTimeout: Duration = .seconds(2)
        /// How often a replica checks the database (reconnecting when it is away) and looks for a new codebook.
        public var checkInterval: Duration = .seconds(1)
        /// Item vectors kept in memory in front of the store for `/match` (0: none).
        public var cacheItems = 200_000

        /// Where the bank is: the password read from its file now (a missing file is a configuration error).
        public func itemStoreBackend() throws(ConfigurationError) -> ItemStore.Backend {
            switch backend {
            case .sqlite:
                return .sqlite(path: path, durability: durability)
            case .postgres:
                var password = password.isEmpty ? nil : password
                if !passwordFile.isEmpty {
                    guard let bytes = try? RegularFile.read(passwordFile, maxBytes: 4096) else {
                        throw ConfigurationError.invalid(key: "store.passwordFile", reason: "cannot read \(passwordFile) (a regular file of at most 4 KiB)")
                    }
                    password = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                }
                return .postgres(ItemStore.PostgresSettings(url: url, password: password, poolSize: poolSize,
                                                            statementTimeout: statementTimeout, connectTimeout: connectTimeout,
                                                            checkInterval: checkInterval))
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
        /// Bytes of one encoded recording (its duration is limited by `audio.maxSeconds`).
        public var maxAudioBytes = 128 * 1024 * 1024
        /// Bytes of one encoded video (its duration is limited by `maxVideoSeconds`); a request still fits
        /// `http.maxBodyBytes`, as base64.
        public var maxVideoBytes = 64 * 1024 * 1024
        /// Seconds of one video, checked on its container's headers.
        public var maxVideoSeconds = 600
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

    public enum FusionMethodName: String, Sendable, CaseIterable {
        case late, qformer
    }

    public init() {}
}

public enum ConfigurationError: Error, CustomStringConvertible {
    case invalid(key: String, reason: String)

    public var description: String {
        switch self {
        case .invalid(let key, let reason): "configuration key '\(key)': \(reason)"
        }
    }
}

