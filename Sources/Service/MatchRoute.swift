import CoreMetrics
import Embedding
import Foundation
import HTTP

/// `POST /match` (features of candidates against a user's history) and `POST /user_embedding` (the user vector).
///
/// History and candidates are stored ids, inline vectors (full size, in the space `/embed` returns) or, for
/// candidates, inline items embedded on the spot: `Matcher` resolves them. Features are computed at a Matryoshka
/// size (`dimensions`).
struct MatchRoute: Sendable {
    let matcher: Matcher
    let embed: EmbedRoute
    let limits: ServiceConfiguration.MatchLimits
    let stages: Stages

    var pipeline: EmbeddingPipeline { matcher.pipeline }

    /// Where a `/match` request's time goes, as `omniembed_match_seconds{stage}` and a `Server-Timing` header:
    /// the body's JSON, reading vectors (store cache, inline items' embedding), the features with their JSON
    /// (written block by block where they are computed), joining the blocks into the response.
    struct Stages: Sendable {
        static let names = ["decode", "resolve", "compute", "encode"]
        let timers: [CoreMetrics.Timer]

        init(factory: any MetricsFactory) {
            timers = Self.names.map {
                CoreMetrics.Timer(label: "omniembed_match_seconds", dimensions: [("stage", $0)], factory: factory)
            }
        }

        /// Records the spans between `marks` (one more than stages) and names them in the response.
        func record(_ marks: [ContinuousClock.Instant], in response: inout HTTPResponse) {
            var parts: [String] = []
            for (index, timer) in timers.enumerated() {
                let span = marks[index + 1] - marks[index]
                timer.recordNanoseconds(Int64(span.seconds * 1e9))
                parts.append("\(Self.names[index]);dur=\(String(format: "%.3f", span.seconds * 1e3))")
            }
            parts.append("total;dur=\(String(format: "%.3f", (marks[marks.count - 1] - marks[0]).seconds * 1e3))")
            response.headers.add(name: "Server-Timing", value: parts.joined(separator: ", "))
        }
    }

    /// A history entry or candidate: a stored id, `{"id", "embedding"}` (history entries may leave out the id) or,
    /// for candidates, an item to embed (`{"id", "text"/"fields"/...}`).
    enum Entry: Decodable {
        case id(String)
        case vector(id: String?, [Float])
        case item(ItemPayload)

        private enum Keys: String, CodingKey { case id, embedding }

        init(from decoder: any Decoder) throws {
            if let id = try? decoder.singleValueContainer().decode(String.self) {
                self = .id(id)
                return
            }
            let container = try decoder.container(keyedBy: Keys.self)
            if container.contains(.embedding) {
                self = .vector(id: try container.decodeIfPresent(String.self, forKey: .id),
                               try container.decode([Float].self, forKey: .embedding))
            } else {
                self = .item(try ItemPayload(from: decoder))
            }
        }

        var id: String? {
            switch self {
            case .id(let id): id
            case .vector(let id, _): id
            case .item(let item): item.id
            }
        }
    }

    struct User: Decodable {
        var history: [Entry]?
        var historyEmbeddings: [[Float]]?
        var weights: [Float]?

        enum CodingKeys: String, CodingKey {
            case history, historyEmbeddings = "history_embeddings", weights
        }
    }

    struct Request: Decodable {
        var user: User
        var candidates: [Entry]?
        var features: [String]?
        var topK: Int?
        var simTop: Int?
        var recent: Int?
        var dimensions: Int?
        var codebookVersion: String?
        var timeoutMs: Int?
        var encodingFormat: String?

        enum CodingKeys: String, CodingKey {
            case user, candidates, features, topK = "top_k", simTop = "sim_top", recent, dimensions
            case codebookVersion = "codebook_version", timeoutMs = "timeout_ms", encodingFormat = "encoding_format"
        }

        /// A body with history and candidates by id only (the common shape: thousands of ids, where `JSONDecoder`
        /// takes a microsecond each) read straight from the bytes; `nil` for anything else (inline vectors or
        /// items, nulls, unknown or repeated fields, errors), which `JSONDecoder` then reads.
        @Sendable static func idsOnly(_ bytes: [UInt8]) -> Request? {
            JSONReader.read(bytes) { reader in
                var request = Request(user: User())
                func set<T>(_ field: WritableKeyPath<Request, T?>, _ value: T?) -> Bool {
                    request[keyPath: field] = value
                    return value != nil
                }
                let read = reader.object { reader, key in
                    switch CodingKeys(rawValue: key) {
                    case .user:
                        return reader.object { reader, key in
                            switch User.CodingKeys(rawValue: key) {
                            case .history: set(\.user.history, reader.array { $0.string() }?.map { .id($0) })
                            case .weights: set(\.user.weights, reader.array { $0.float() })
                            default: false
                            }
                        } && request.user.history != nil
                    case .candidates: return set(\.candidates, reader.array { $0.string() }?.map { .id($0) })
                    case .features: return set(\.features, reader.array { $0.string() })
                    case .topK: return set(\.topK, reader.int())
                    case .simTop: return set(\.simTop, reader.int())
                    case .recent: return set(\.recent, reader.int())
                    case .dimensions: return set(\.dimensions, reader.int())
                    case .codebookVersion: return set(\.codebookVersion, reader.string())
                    case .timeoutMs: return set(\.timeoutMs, reader.int())
                    case .encodingFormat: return set(\.encodingFormat, reader.string())
                    case nil: return false
                    }
                }
                return read ? request : nil
            }
        }
    }

    func match(_ request: HTTPRequest) async throws -> HTTPResponse {
        var marks = [ContinuousClock.now]
        // The compute threads take a while to wake; they do while the request is read.
        pipeline.wakeComputeThreads()
        let body = try request.decodeJSON(Request.self, fastPath: Request.idsOnly)
        marks.append(.now)
        let codebook = pipeline.codebooks.current
        try HTTPError.catching { () throws(EmbeddingError) in try Matcher.checkVersion(body.codebookVersion, codebook) }
        let size = try embed.dimensions.resolve(body.dimensions)

        let candidates = body.candidates ?? []
        guard !candidates.isEmpty else {
            throw HTTPError(.unprocessableContent, code: "no_candidates", message: "'candidates' must not be empty")
        }
        guard candidates.count <= limits.maxCandidates else {
            throw HTTPError(.payloadTooLarge, code: "too_many_candidates",
                            message: "\(candidates.count) candidates; at most \(limits.maxCandidates) per request")
        }
        let features = try features(body.features, codebook: codebook)
        let topK = try bounded(body.topK, default: 5, name: "top_k")
        let simTop = try bounded(body.simTop, default: 10, name: "sim_top")
        let recent = try bounded(body.recent, default: limits.defaultRecent, name: "recent", maximum: limits.maxHistory)
        let history = try history(body.user)
        let sources = try candidateSources(candidates)
        var options: EmbeddingPipeline.Options?
        if sources.contains(where: { if case .item = $0 { true } else { false } }) {
            var request = EmbedRoute.Request(items: [])
            request.timeoutMs = body.timeoutMs
            options = try embed.options(request, storeByDefault: false)
        }
        let prepared = try await HTTPError.catching { () async throws(EmbeddingError) in
            try await matcher.prepare(Matcher.Request(
                history: history, candidates: sources, features: features, dimensions: size, recent: recent, topK: topK,
                simTop: simTop, codebook: codebook, options: options))
        }
        marks.append(.now)

        let (historyRows, candidateRows, historyIDs) = (prepared.historyRows, prepared.candidateRows, prepared.historyIDs)
        let ids = sources.map { $0.id ?? "" }
        // Each block of candidates is written to JSON where it was computed, in parallel; the blocks' elements
        // are joined in order. A block also writes the missing candidates that come before its first row (the
        // last block, those after its last row too).
        let (wantUser, wantMax, wantMean, wantSim, wantSid) = (
            features.contains(.userCos), features.contains(.maxCos), features.contains(.topkMeanCos),
            features.contains(.simTop), features.contains(.sidMatch))
        let found = candidateRows.count
        let perCandidate = 96 + (wantSim ? simTop * 48 : 0)
        let blocks = MatchFeatures.compute(prepared.query, threads: ProcessInfo.processInfo.activeProcessorCount) { block in
            var json = JSONWriter(capacity: (block.rows.count + 1) * perCandidate)
            var position = block.rows.lowerBound == 0 ? 0 : candidateRows[block.rows.lowerBound - 1] + 1
            for row in block.rows {
                while position < candidateRows[row] {
                    Self.writeMissing(ids[position], into: &json)
                    position += 1
                }
                let r = row - block.rows.lowerBound
                json.beginObject()
                json.key("id")
                json.string(ids[position])
                position += 1
                // With no history, the cosines are null.
                if wantUser {
                    json.key("user_cos")
                    if block.userCos.isEmpty || historyRows.isEmpty { json.null() } else { json.float(block.userCos[r]) }
                }
                if wantMax {
                    json.key("max_cos")
                    if block.maxCos.isEmpty { json.null() } else { json.float(block.maxCos[r]) }
                }
                if wantMean {
                    json.key("topk_mean_cos")
                    if block.topkMeanCos.isEmpty { json.null() } else { json.float(block.topkMeanCos[r]) }
                }
                if wantSim {
                    json.key("sim_top")
                    json.beginArray()
                    for j in r * block.simTopCount..<(r + 1) * block.simTopCount {
                        let index = historyRows[Int(block.simTopIndex[j])]
                        json.beginObject()
                        json.key("index")
                        json.int(index)
                        json.key("id")
                        if let id = historyIDs[index] { json.string(id) } else { json.null() }
                        json.key("score")
                        json.float(block.simTopScore[j])
                        json.endObject()
                    }
                    json.endArray()
                }
                if wantSid {
                    json.key("sid_match")
                    json.beginArray()
                    for count in block.sidMatch[r * block.levels..<(r + 1) * block.levels] { json.int(count) }
                    json.endArray()
                }
                json.endObject()
            }
            if block.rows.upperBound == found {
                for missing in position..<ids.count { Self.writeMissing(ids[missing], into: &json) }
            }
            return json.finish()
        }
        marks.append(.now)

        var json = JSONWriter(capacity: 256 + blocks.reduce(0) { $0 + $1.count })
        json.beginObject()
        json.key("data")
        json.beginArray()
        if found == 0 {
            for id in ids { Self.writeMissing(id, into: &json) }
        }
        for block in blocks { json.appendElements(block) }
        json.endArray()
        writeTail(&json, missing: prepared.missing, historyUsed: historyRows.count, size: size, codebook: codebook)
        json.endObject()
        var response = HTTPResponse.json(json)
        marks.append(.now)
        stages.record(marks, in: &response)
        return response
    }

    private static func writeMissing(_ id: String, into json: inout JSONWriter) {
        json.beginObject()
        json.key("id")
        json.string(id)
        json.key("missing")
        json.bool(true)
        json.endObject()
    }

    func userEmbedding(_ request: HTTPRequest) async throws -> HTTPResponse {
        let body = try request.decodeJSON(Request.self, fastPath: Request.idsOnly)
        let codebook = pipeline.codebooks.current
        try HTTPError.catching { () throws(EmbeddingError) in try Matcher.checkVersion(body.codebookVersion, codebook) }
        let size = try embed.dimensions.resolve(body.dimensions)
        let format = try EncodedVector.format(body.encodingFormat)
        let history = try history(body.user)
        let recent = try bounded(body.recent, default: limits.defaultRecent, name: "recent", maximum: limits.maxHistory)
        let user = try await HTTPError.catching { () async throws(EmbeddingError) in
            try await matcher.userVector(history, size: size, recent: recent, codebook: codebook)
        }
        var json = JSONWriter()
        json.beginObject()
        json.key("embedding")
        switch EncodedVector(user.vector, format: format) {
        case .float(let values): json.floats(values)
        case .base64(let text): json.string(text)
        }
        writeTail(&json, missing: user.missing, historyUsed: user.historyUsed, size: size, codebook: codebook)
        json.endObject()
        return .json(json)
    }

    private func writeTail(_ json: inout JSONWriter, missing: [String], historyUsed: Int, size: Int, codebook: SemanticCodebook?) {
        json.key("missing")
        json.beginArray()
        var seen = Set<String>()
        for id in missing where seen.insert(id).inserted { json.string(id) }
        json.endArray()
        json.key("history_used")
        json.int(historyUsed)
        json.key("dimensions")
        json.int(size)
        json.key("model")
        json.beginObject()
        json.key("id")
        json.string(pipeline.model.id)
        json.key("revision")
        json.string(pipeline.model.revision)
        json.endObject()
        json.key("codebook_version")
        if let codebook { json.string(codebook.version) } else { json.null() }
    }

    // MARK: - Helpers

    /// The features asked for; by default all, `sid_match` only with a codebook.
    private func features(_ names: [String]?, codebook: SemanticCodebook?) throws(HTTPError) -> Set<MatchFeatures.Feature> {
        var features = Set(MatchFeatures.Feature.allCases)
        if codebook == nil { features.remove(.sidMatch) }
        if let names {
            features = []
            for name in names {
                guard let feature = MatchFeatures.Feature(rawValue: name) else {
                    throw HTTPError(.unprocessableContent, code: "invalid_features",
                                    message: "'features' may list \(MatchFeatures.Feature.allCases.map(\.rawValue)), got '\(name)'")
                }
                features.insert(feature)
            }
            guard !features.isEmpty else {
                throw HTTPError(.unprocessableContent, code: "invalid_features", message: "'features' must not be empty")
            }
        }
        if features.contains(.sidMatch), codebook == nil {
            throw HTTPError(.conflict, code: "no_codebook",
                            message: "sid_match needs semantic IDs, and no codebook is loaded (run omniembed fit, then POST /admin/reload)")
        }
        return features
    }

    /// `user.history` (ids or `{"id"?, "embedding"}`) or `user.history_embeddings`, with the weights.
    private func history(_ user: User) throws(HTTPError) -> Matcher.History {
        let entries: [Entry]
        switch (user.history, user.historyEmbeddings) {
        case (let history?, nil): entries = history
        case (nil, let vectors?): entries = vectors.map { .vector(id: nil, $0) }
        case (nil, nil): entries = []
        case (.some, .some):
            throw HTTPError(.unprocessableContent, code: "invalid_history",
                            message: "give 'user.history' (ids or {\"id\", \"embedding\"}) or 'user.history_embeddings', not both")
        }
        guard entries.count <= limits.maxHistory else {
            throw HTTPError(.payloadTooLarge, code: "too_many_history",
                            message: "\(entries.count) history items; at most \(limits.maxHistory) per request")
        }
        let sources = try entries.enumerated().map { (index, entry) throws(HTTPError) -> VectorSource in
            switch entry {
            case .id(let id): return .id(id)
            case .vector(let id, let vector): return .vector(id: id, vector)
            case .item: throw HTTPError(.badRequest, code: "invalid_json", message: "missing field 'user.history[\(index)].embedding'")
            }
        }
        return Matcher.History(sources: sources, weights: user.weights)
    }

    /// Candidates as vector sources: inline items checked and decoded here (their ids first, as every id is).
    private func candidateSources(_ candidates: [Entry]) throws(HTTPError) -> [VectorSource] {
        try HTTPError.catching { () throws(EmbeddingError) in
            for (index, candidate) in candidates.enumerated() {
                guard let id = candidate.id else { continue }
                try ItemID.check(id, field: "candidates[\(index)]", maxBytes: embed.limits.maxIdBytes)
            }
        }
        return try candidates.enumerated().map { (index, candidate) throws(HTTPError) -> VectorSource in
            switch candidate {
            case .id(let id): return .id(id)
            case .vector(let id?, let vector): return .vector(id: id, vector)
            case .vector(nil, _): throw HTTPError(.badRequest, code: "invalid_json", message: "missing field 'candidates[\(index)].id'")
            case .item(let item): return .item(try HTTPError.catching { () throws(EmbeddingError) in try item.input(at: index, limits: embed.limits) })
            }
        }
    }

    private func bounded(_ value: Int?, default fallback: Int, name: String, maximum: Int? = nil) throws(HTTPError) -> Int {
        let maximum = maximum ?? limits.maxTop
        guard let value else { return min(fallback, maximum) }
        guard (1...maximum).contains(value) else {
            throw HTTPError(.unprocessableContent, code: "invalid_\(name)", message: "'\(name)' must be 1...\(maximum), got \(value)")
        }
        return value
    }
}
