import CoreMetrics
import Embedding
import Foundation
import HTTP
import Tensor

/// `POST /match` (features of candidates against a user's history) and `POST /user_embedding` (the user vector).
///
/// History and candidates are stored ids (read through the store's cache), inline vectors (full size, in the space
/// `/embed` returns) or, for candidates, inline items embedded on the spot. Features are computed at a Matryoshka
/// size (`dimensions`): at full size in the model's space, at a prefix in the codebook's rotated space when
/// `/embed` serves that one.
struct MatchRoute: Sendable {
    let pipeline: EmbeddingPipeline
    let embed: EmbedRoute
    let limits: ServiceConfiguration.MatchLimits
    let rotate: Bool
    let stages: Stages

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

    /// A history entry: a stored id or `{"id"?, "embedding"}`.
    enum HistoryEntry: Decodable {
        case id(String)
        case vector(id: String?, [Float])

        private enum Keys: String, CodingKey { case id, embedding }

        init(from decoder: any Decoder) throws {
            if let id = try? decoder.singleValueContainer().decode(String.self) {
                self = .id(id)
                return
            }
            let container = try decoder.container(keyedBy: Keys.self)
            self = .vector(id: try container.decodeIfPresent(String.self, forKey: .id),
                           try container.decode([Float].self, forKey: .embedding))
        }
    }

    /// A candidate: a stored id, `{"id", "embedding"}` or an item to embed (`{"id", "text"/"fields"/...}`).
    enum CandidateEntry: Decodable {
        case id(String)
        case vector(id: String, [Float])
        case item(ItemPayload)

        private enum Keys: String, CodingKey { case id, embedding }

        init(from decoder: any Decoder) throws {
            if let id = try? decoder.singleValueContainer().decode(String.self) {
                self = .id(id)
                return
            }
            let container = try decoder.container(keyedBy: Keys.self)
            if container.contains(.embedding) {
                self = .vector(id: try container.decode(String.self, forKey: .id),
                               try container.decode([Float].self, forKey: .embedding))
            } else {
                self = .item(try ItemPayload(from: decoder))
            }
        }

        var id: String {
            switch self {
            case .id(let id), .vector(let id, _): id
            case .item(let item): item.id
            }
        }
    }

    struct User: Decodable {
        var history: [HistoryEntry]?
        var historyEmbeddings: [[Float]]?
        var weights: [Float]?

        enum CodingKeys: String, CodingKey {
            case history, historyEmbeddings = "history_embeddings", weights
        }
    }

    struct Request: Decodable {
        var user: User
        var candidates: [CandidateEntry]?
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

    /// Vectors (full size, model space, unit rows) and their ids, codes and whether each was found.
    private struct Resolved {
        var ids: [String?] = []
        var vectors: [Float] = []
        var found: [Bool] = []
        var codes: [[Int]] = []
    }

    func match(_ request: HTTPRequest) async throws -> HTTPResponse {
        var marks = [ContinuousClock.now]
        // The compute threads take a while to wake; they do while the request is read.
        Parallel.warmUp()
        let body = try request.decodeJSON(Request.self, fastPath: Request.idsOnly)
        marks.append(.now)
        let codebook = pipeline.codebooks.current
        try checkVersion(body.codebookVersion, codebook)
        let d = pipeline.dimensions
        let size = try embed.dimensions.resolve(body.dimensions)

        let candidates = body.candidates ?? []
        guard !candidates.isEmpty else {
            throw HTTPError(.unprocessableContent, code: "no_candidates", message: "'candidates' must not be empty")
        }
        guard candidates.count <= limits.maxCandidates else {
            throw HTTPError(.payloadTooLarge, code: "too_many_candidates",
                            message: "\(candidates.count) candidates; at most \(limits.maxCandidates) per request")
        }
        var features = Set(MatchFeatures.Feature.allCases)
        if codebook == nil { features.remove(.sidMatch) }
        if let names = body.features {
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
        let topK = try bounded(body.topK, default: 5, name: "top_k")
        let simTop = try bounded(body.simTop, default: 10, name: "sim_top")

        let recent = try bounded(body.recent, default: limits.defaultRecent, name: "recent", maximum: limits.maxHistory)
        // One after the other: a second task would wait for a thread to wake longer than either takes.
        let codes = features.contains(.sidMatch)
        let history = try await resolveHistory(body.user, codebook: codebook, codes: codes)
        let candidateVectors = try await resolveCandidates(candidates, body: body, codebook: codebook, codes: codes)
        let weights = history.weights
        marks.append(.now)

        let historyRows = history.resolved.found.indices.filter { history.resolved.found[$0] }
        try checkRecentWeights(weights, rows: historyRows, recent: recent)
        let candidateRows = candidateVectors.found.indices.filter { candidateVectors.found[$0] }
        var query = MatchFeatures.Query(
            history: space(gather(history.resolved.vectors, rows: historyRows, d: d), count: historyRows.count,
                           size: size, codebook: codebook),
            historyCount: historyRows.count,
            candidates: space(gather(candidateVectors.vectors, rows: candidateRows, d: d), count: candidateRows.count,
                              size: size, codebook: codebook),
            candidateCount: candidateRows.count, dimensions: size, features: features,
            weights: weights.map { w in historyRows.map { w[$0] } }, recent: recent, topK: topK, simTop: simTop)
        if features.contains(.sidMatch), let codebook {
            query.historyCodes = historyRows.map { history.resolved.codes[$0] }
            query.candidateCodes = candidateRows.map { candidateVectors.codes[$0] }
            query.codeCounts = codebook.codeCounts
        }
        // Each block of candidates is written to JSON where it was computed, in parallel; the blocks' elements
        // are joined in order. A block also writes the missing candidates that come before its first row (the
        // last block, those after its last row too).
        let (wantUser, wantMax, wantMean, wantSim, wantSid) = (
            features.contains(.userCos), features.contains(.maxCos), features.contains(.topkMeanCos),
            features.contains(.simTop), features.contains(.sidMatch))
        let historyIDs = history.resolved.ids
        let found = candidateRows.count
        let perCandidate = 96 + (wantSim ? simTop * 48 : 0)
        let blocks = MatchFeatures.compute(query, threads: ProcessInfo.processInfo.activeProcessorCount) { block in
            var json = JSONWriter(capacity: (block.rows.count + 1) * perCandidate)
            var position = block.rows.lowerBound == 0 ? 0 : candidateRows[block.rows.lowerBound - 1] + 1
            for row in block.rows {
                while position < candidateRows[row] {
                    Self.writeMissing(candidates[position].id, into: &json)
                    position += 1
                }
                let r = row - block.rows.lowerBound
                json.beginObject()
                json.key("id")
                json.string(candidates[position].id)
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
                for missing in position..<candidates.count { Self.writeMissing(candidates[missing].id, into: &json) }
            }
            return json.finish()
        }
        marks.append(.now)

        var json = JSONWriter(capacity: 256 + blocks.reduce(0) { $0 + $1.count })
        json.beginObject()
        json.key("data")
        json.beginArray()
        if found == 0 {
            for candidate in candidates { Self.writeMissing(candidate.id, into: &json) }
        }
        for block in blocks { json.appendElements(block) }
        json.endArray()
        writeTail(&json, missing: history.missing + candidates.indices.filter { !candidateVectors.found[$0] }.map { candidates[$0].id },
                  historyUsed: historyRows.count, size: size, codebook: codebook)
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
        try checkVersion(body.codebookVersion, codebook)
        let d = pipeline.dimensions
        let size = try embed.dimensions.resolve(body.dimensions)
        let format = try EncodedVector.format(body.encodingFormat)
        let history = try await resolveHistory(body.user, codebook: codebook, codes: false)
        let recent = try bounded(body.recent, default: limits.defaultRecent, name: "recent", maximum: limits.maxHistory)
        let rows = history.resolved.found.indices.filter { history.resolved.found[$0] }
        guard !rows.isEmpty else {
            throw HTTPError(.unprocessableContent, code: "no_history",
                            message: "none of the history items is known: \(history.missing.prefix(10))")
        }
        try checkRecentWeights(history.weights, rows: rows, recent: recent)
        let vectors = space(gather(history.resolved.vectors, rows: rows, d: d), count: rows.count, size: size, codebook: codebook)
        var user = MatchFeatures.userVector(vectors, count: rows.count, dimensions: size,
                                            weights: history.weights.map { w in rows.map { w[$0] } }, recent: recent)
        guard user.contains(where: { $0 != 0 }) else {
            throw HTTPError(.unprocessableContent, code: "no_history", message: "the recent history items' vectors cancel out")
        }
        // At full size `space` leaves the model's space (cosines do not need the rotation); a vector handed out is
        // in the space `/embed` serves.
        if size == d, rotate, let codebook { user = codebook.rotate(user, count: 1) }
        var json = JSONWriter()
        json.beginObject()
        json.key("embedding")
        switch EncodedVector(user, format: format) {
        case .float(let values): json.floats(values)
        case .base64(let text): json.string(text)
        }
        writeTail(&json, missing: history.missing, historyUsed: min(rows.count, recent), size: size, codebook: codebook)
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

    // MARK: - Resolving ids and vectors

    private struct History {
        var resolved: Resolved
        var weights: [Float]?
        var missing: [String]
    }

    private func resolveHistory(_ user: User, codebook: SemanticCodebook?, codes: Bool) async throws -> History {
        let entries: [HistoryEntry]
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
        if let weights = user.weights {
            guard weights.count == entries.count else {
                throw HTTPError(.unprocessableContent, code: "invalid_weights",
                                message: "'user.weights' has \(weights.count) values for \(entries.count) history items")
            }
            guard weights.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
                throw HTTPError(.unprocessableContent, code: "invalid_weights", message: "'user.weights' must be finite and ≥ 0")
            }
        }
        let sources: [Source] = entries.map {
            switch $0 {
            case .id(let id): .id(id)
            case .vector(let id, let vector): .vector(id, vector)
            }
        }
        let resolved = try await resolve(sources, field: "user.history", codebook: codebook, codes: codes, body: nil)
        let missing = entries.indices.filter { !resolved.found[$0] }.compactMap { resolved.ids[$0] }
        return History(resolved: resolved, weights: user.weights, missing: missing)
    }

    private func resolveCandidates(_ candidates: [CandidateEntry], body: Request, codebook: SemanticCodebook?,
                                   codes: Bool) async throws -> Resolved {
        var seen = Set<String>()
        for (index, candidate) in candidates.enumerated() {
            if case .item = candidate, !seen.insert(candidate.id).inserted {
                throw HTTPError(.unprocessableContent, code: "duplicate_id", message: "candidates[\(index)]: id '\(candidate.id)' appears twice")
            }
        }
        let sources: [Source] = candidates.map {
            switch $0 {
            case .id(let id): .id(id)
            case .vector(let id, let vector): .vector(id, vector)
            case .item(let item): .item(item)
            }
        }
        return try await resolve(sources, field: "candidates", codebook: codebook, codes: codes, body: body)
    }

    private enum Source {
        case id(String)
        case vector(String?, [Float])
        case item(ItemPayload)
    }

    /// Full-size model-space unit vectors for `sources`, with codes when asked.
    private func resolve(_ sources: [Source], field: String, codebook: SemanticCodebook?, codes: Bool,
                         body: Request?) async throws -> Resolved {
        let d = pipeline.dimensions
        for (index, source) in sources.enumerated() {
            let id: String? = switch source {
            case .id(let id): id
            case .vector(let id, _): id
            case .item(let item): item.id
            }
            guard let id else { continue }
            do throws(EmbeddingError) {
                try ItemID.check(id, field: "\(field)[\(index)]", maxBytes: embed.limits.maxIdBytes)
            } catch {
                throw HTTPError(error)
            }
        }
        var resolved = Resolved()
        resolved.vectors = [Float](repeating: 0, count: sources.count * d)
        resolved.found = [Bool](repeating: false, count: sources.count)
        resolved.codes = [[Int]](repeating: [], count: sources.count)
        var needCodes: [Int] = []

        // Stored items: copied straight from the store's cache into their rows.
        var idPositions: [Int] = [], ids: [String] = []
        for (index, source) in sources.enumerated() {
            if case .id(let id) = source {
                idPositions.append(index)
                ids.append(id)
            }
        }
        var storedEmbeddings: [Int: [Float]] = [:]  // of the stored items whose codes are computed here
        if !ids.isEmpty {
            guard let store = pipeline.store else {
                throw HTTPError(.conflict, code: "store_disabled",
                                message: "\(field) names items by id, and the item store is disabled (store.enabled)")
            }
            let model = pipeline.model
            let version = codebook?.version
            var (vectors, found, storedCodes) = (resolved.vectors, resolved.found, resolved.codes)
            resolved = Resolved()  // the arrays above are then the only references: written in place
            let failure = vectors.withUnsafeMutableBufferPointer { vectors -> EmbeddingError? in
                do throws(EmbeddingError) {
                    _ = try store.visitVectors(ids) { position, vector in
                        // A vector of another model (revision) is not comparable: as good as missing.
                        guard vector.modelID == model.id, vector.revision == model.revision,
                              vector.embedding.count == d else { return }
                        let index = idPositions[position]
                        found[index] = true
                        // Stored vectors are unit length already: copied as they are.
                        vector.embedding.withUnsafeBufferPointer { embedding in
                            (vectors.baseAddress! + index * d).update(from: embedding.baseAddress!, count: d)
                        }
                        guard codes else { return }
                        if let semanticID = vector.semanticID, vector.codebookVersion == version {
                            storedCodes[index] = semanticID
                        } else {
                            needCodes.append(index)
                            storedEmbeddings[index] = vector.embedding
                        }
                    }
                    return nil
                } catch {
                    return error
                }
            }
            (resolved.vectors, resolved.found, resolved.codes) = (vectors, found, storedCodes)
            if let failure { throw HTTPError(failure) }
        }

        var inline: [Int] = []
        var items: [(Int, ItemPayload)] = []
        for (index, source) in sources.enumerated() {
            switch source {
            case .id(let id):
                resolved.ids.append(id)
            case .vector(let id, let vector):
                resolved.ids.append(id)
                guard vector.count == d else {
                    throw HTTPError(.unprocessableContent, code: "invalid_embedding",
                                    message: "\(field)[\(index)]: \(vector.count) values; inline embeddings are full size (\(d))")
                }
                guard vector.allSatisfy(\.isFinite), vector.contains(where: { $0 != 0 }) else {
                    throw HTTPError(.unprocessableContent, code: "invalid_embedding",
                                    message: "\(field)[\(index)]: must be finite and not all zeros")
                }
                resolved.found[index] = true
                write(Matryoshka.normalized(vector), into: &resolved.vectors, row: index, d: d)
                inline.append(index)
            case .item(let item):
                resolved.ids.append(item.id)
                items.append((index, item))
            }
        }
        // Inline vectors are in the space `/embed` serves: back to the model's.
        if rotate, let codebook, !inline.isEmpty {
            let back = codebook.unrotate(gather(resolved.vectors, rows: inline, d: d), count: inline.count)
            for (position, index) in inline.enumerated() {
                write(Array(back[position * d..<(position + 1) * d]), into: &resolved.vectors, row: index, d: d)
            }
        }
        if codes { needCodes += inline }

        if !items.isEmpty, let body {
            var inputs: [ItemInput] = []
            do throws(EmbeddingError) {
                for (index, item) in items { inputs.append(try item.input(at: index, limits: embed.limits)) }
            } catch {
                throw HTTPError(error)
            }
            var request = EmbedRoute.Request(items: [])
            request.timeoutMs = body.timeoutMs
            let options = try embed.options(request, storeByDefault: false)
            let outcome: EmbeddingPipeline.Outcome
            do { outcome = try await pipeline.embed(inputs, options: options) } catch { throw HTTPError(error) }
            for ((index, _), result) in zip(items, outcome.items) {
                let item: EmbeddedItem
                do { item = try result.get() } catch { throw HTTPError(error) }
                resolved.found[index] = true
                write(item.embedding, into: &resolved.vectors, row: index, d: d)
                if codes { needCodes.append(index) }
            }
        }

        if let codebook, !needCodes.isEmpty {
            let computed = codebook.codes(gather(resolved.vectors, rows: needCodes, d: d), count: needCodes.count)
            for (index, code) in zip(needCodes, computed) { resolved.codes[index] = code }
            // Stored items' codes are computed once per codebook, not on every request that names them.
            var fresh: [(id: String, embedding: [Float], semanticID: [Int])] = []
            for (index, code) in zip(needCodes, computed) {
                if case .id(let id) = sources[index], let embedding = storedEmbeddings[index] { fresh.append((id, embedding, code)) }
            }
            if !fresh.isEmpty { pipeline.store?.cacheCodes(fresh, codebookVersion: codebook.version) }
        }
        return resolved
    }

    // MARK: - Helpers

    /// `count` full-size model-space rows at the Matryoshka `size`: as they are at full size (a rotation does not
    /// change cosines), else rotated when `/embed` serves the rotated space, cut and re-normalised.
    private func space(_ vectors: [Float], count: Int, size: Int, codebook: SemanticCodebook?) -> [Float] {
        let d = pipeline.dimensions
        guard size < d, count > 0 else { return vectors }
        let served = rotate ? codebook.map { $0.rotate(vectors, count: count) } ?? vectors : vectors
        var out = [Float](repeating: 0, count: count * size)
        for row in 0..<count {
            let prefix = Matryoshka.normalized(Array(served[row * d..<row * d + size]))
            for j in 0..<size { out[row * size + j] = prefix[j] }
        }
        return out
    }

    private func gather(_ vectors: [Float], rows: [Int], d: Int) -> [Float] {
        // Every row, in order (all found): the vectors as they are.
        if rows.count * d == vectors.count, rows.last.map({ $0 == rows.count - 1 }) ?? true { return vectors }
        var out = [Float](repeating: 0, count: rows.count * d)
        vectors.withUnsafeBufferPointer { vectors in
            out.withUnsafeMutableBufferPointer { out in
                for (position, row) in rows.enumerated() {
                    (out.baseAddress! + position * d).update(from: vectors.baseAddress! + row * d, count: d)
                }
            }
        }
        return out
    }

    private func write(_ vector: [Float], into vectors: inout [Float], row: Int, d: Int) {
        vector.withUnsafeBufferPointer { vector in
            vectors.withUnsafeMutableBufferPointer { vectors in
                (vectors.baseAddress! + row * d).update(from: vector.baseAddress!, count: d)
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

    /// 422 when weights are given and none of the recent history items (the last `recent` of `rows`) has a
    /// positive one: the user vector would be undefined.
    private func checkRecentWeights(_ weights: [Float]?, rows: [Int], recent: Int) throws(HTTPError) {
        guard let weights, !rows.isEmpty else { return }
        guard rows.suffix(recent).contains(where: { weights[$0] > 0 }) else {
            throw HTTPError(.unprocessableContent, code: "invalid_weights", message: "the weights of the recent history items sum to zero")
        }
    }

    /// A request that names the codebook its vectors came from must name the one loaded.
    private func checkVersion(_ version: String?, _ codebook: SemanticCodebook?) throws(HTTPError) {
        guard let version, version != codebook?.version else { return }
        throw HTTPError(.conflict, code: "codebook_version_mismatch",
                        message: "the request's vectors are from codebook \(version); the service has \(codebook?.version ?? "none") loaded")
    }
}
