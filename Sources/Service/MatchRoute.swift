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
    let stages: RouteStages

    var pipeline: EmbeddingPipeline { matcher.pipeline }

    func match(_ request: HTTPRequest) async throws -> HTTPResponse {
        var marks = [ContinuousClock.now]
        // The compute threads take a while to wake; they do while the request is read.
        pipeline.wakeComputeThreads()
        let body = try request.decodeJSON(Request.self, fastPath: Request.idsOnly)
        marks.append(.now)
        let codebook = try HTTPError.catching { () throws(EmbeddingError) in try pipeline.codebooks.resolve(body.codebookVersion) }
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
        let candidateSources = try candidateSources(candidates)
        var options: EmbeddingPipeline.Options?
        if candidateSources.contains(where: { if case .item = $0 { true } else { false } }) {
            var request = EmbedRoute.Request(items: [])
            request.timeoutMs = body.timeoutMs
            options = try embed.options(request, storeByDefault: false)
        }
        let prepared = try await HTTPError.catching { () async throws(EmbeddingError) in
            try await matcher.prepare(Matcher.Request(
                history: history, candidates: candidateSources, features: features, dimensions: size, recent: recent, topK: topK,
                simTop: simTop, codebook: codebook, options: options))
        }
        marks.append(.now)

        let writer = MatchResponseWriter(prepared: prepared, ids: candidateSources.map { $0.id ?? "" }, model: pipeline.model)
        let blocks = MatchFeatures.compute(prepared.query, threads: ProcessInfo.processInfo.activeProcessorCount,
                                           writer.write)
        marks.append(.now)
        var response = HTTPResponse.json(writer.join(blocks, size: size, codebook: codebook))
        marks.append(.now)
        stages.record(marks, in: &response)
        return response
    }

    func userEmbedding(_ request: HTTPRequest) async throws -> HTTPResponse {
        let body = try request.decodeJSON(Request.self, fastPath: Request.idsOnly)
        let codebook = try HTTPError.catching { () throws(EmbeddingError) in try pipeline.codebooks.resolve(body.codebookVersion) }
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
        MatchResponseWriter.writeTail(&json, missing: user.missing, historyUsed: user.historyUsed, size: size,
                                      codebook: codebook, model: pipeline.model)
        json.endObject()
        return .json(json)
    }

    // MARK: - Helpers

    /// The features asked for; by default all but `sid` (the candidate's code, on request), `sid_match` only with
    /// a codebook.
    private func features(_ names: [String]?, codebook: SemanticCodebook?) throws(HTTPError) -> Set<MatchFeatures.Feature> {
        var features = Set(MatchFeatures.Feature.allCases)
        features.remove(.sid)
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
        if !features.isDisjoint(with: [.sidMatch, .sid]), codebook == nil {
            throw HTTPError(.conflict, code: "no_codebook",
                            message: "sid_match and sid need semantic IDs, and no codebook is loaded (run omniembed fit, then POST /admin/reload)")
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
        let sources = try entries.enumerated().map { (index, entry) throws(HTTPError) -> VectorSource<ItemInput> in
            try entry.mapItem { _ throws(HTTPError) -> ItemInput in
                throw HTTPError(.badRequest, code: "invalid_json", message: "missing field 'user.history[\(index)].embedding'")
            }
        }
        return Matcher.History(sources: sources, weights: user.weights)
    }

    /// Candidates as vector sources: inline items checked and decoded here. With items, every id is checked first
    /// (as `Matcher` checks them), so that a bad id is refused under its own index before any item's error.
    private func candidateSources(_ candidates: [Entry]) throws(HTTPError) -> [VectorSource<ItemInput>] {
        let hasItems = candidates.contains { if case .item = $0 { true } else { false } }
        if hasItems {
            try HTTPError.catching { () throws(EmbeddingError) in
                for (index, candidate) in candidates.enumerated() {
                    guard let id = candidate.id else { continue }
                    try ItemID.check(id, field: "candidates[\(index)]", maxBytes: embed.limits.maxIdBytes)
                }
            }
        }
        return try candidates.enumerated().map { (index, candidate) throws(HTTPError) -> VectorSource<ItemInput> in
            if case .vector(nil, _) = candidate {
                throw HTTPError(.badRequest, code: "invalid_json", message: "missing field 'candidates[\(index)].id'")
            }
            return try candidate.mapItem { item throws(HTTPError) in
                try HTTPError.catching { () throws(EmbeddingError) in try item.input(at: index, limits: embed.limits) }
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
