import Foundation
internal import Tensor

/// The work of `/match` and `/user_embedding` before the features: stored vectors read through the store's cache,
/// inline vectors checked and brought into the model's space, inline items embedded, codes computed (and written
/// back for stored items), and the vectors cut to a Matryoshka size.
public struct Matcher: Sendable {
    public let pipeline: EmbeddingPipeline
    /// `/embed` serves the codebook's rotated space: inline vectors arrive in it, user vectors leave in it.
    public let rotate: Bool
    public let maxIdBytes: Int
    /// The format of `/match`'s candidates × history product (`MatchFeatures.Query.precision`).
    public let precision: TowerPrecision

    public init(pipeline: EmbeddingPipeline, rotate: Bool, maxIdBytes: Int, precision: TowerPrecision = .fp32) {
        self.pipeline = pipeline
        self.rotate = rotate
        self.maxIdBytes = maxIdBytes
        self.precision = precision
    }

    /// A user's history: vectors oldest first, with optional weights (one per entry, finite and ≥ 0).
    public struct History: Sendable {
        public var sources: [VectorSource<ItemInput>]
        public var weights: [Float]?

        public init(sources: [VectorSource<ItemInput>], weights: [Float]?) {
            self.sources = sources
            self.weights = weights
        }
    }

    /// What a `/match` computes features of, and how.
    public struct Request: Sendable {
        public var history: History
        public var candidates: [VectorSource<ItemInput>]
        public var features: Set<MatchFeatures.Feature>
        /// The Matryoshka size the features are computed at.
        public var dimensions: Int
        public var recent: Int
        public var topK: Int
        public var simTop: Int
        /// The codebook the request's codes are from (the one loaded when the request came).
        public var codebook: SemanticCodebook?
        /// How inline candidate items are embedded (needed only when there are some).
        public var options: EmbeddingPipeline.Options?

        public init(history: History, candidates: [VectorSource<ItemInput>], features: Set<MatchFeatures.Feature>, dimensions: Int,
                    recent: Int, topK: Int, simTop: Int, codebook: SemanticCodebook?, options: EmbeddingPipeline.Options?) {
            self.history = history
            self.candidates = candidates
            self.features = features
            self.dimensions = dimensions
            self.recent = recent
            self.topK = topK
            self.simTop = simTop
            self.codebook = codebook
            self.options = options
        }
    }

    /// A query ready for `MatchFeatures.compute`, and how its rows map back to the request.
    public struct Prepared: Sendable {
        public var query: MatchFeatures.Query
        /// The history entries found, in order: the query's history rows.
        public var historyRows: [Int]
        /// Every history entry's id (`nil` for an inline vector without one).
        public var historyIDs: [String?]
        /// The candidates found, in order: the query's candidate rows.
        public var candidateRows: [Int]
        /// Ids not found, history first.
        public var missing: [String]
    }

    public func prepare(_ request: Request) async throws(EmbeddingError) -> Prepared {
        let (codebook, size) = (request.codebook, request.dimensions)
        let historyCodes = request.features.contains(.sidMatch)
        let candidateCodes = historyCodes || request.features.contains(.sid)
        try Self.check(request.history)
        try Self.checkCandidates(request.candidates)
        // The store's reads of both lists at once, on two threads (the cache is sharded), when both are long.
        let lists = [(request.history.sources, "user.history", historyCodes), (request.candidates, "candidates", candidateCodes)]
        let both = lists.allSatisfy { $0.0.count >= Self.parallelReadFrom }
        let reads = Parallel.map(lists.count, parts: both ? 2 : 1) { index in
            Result { () throws(EmbeddingError) in
                try readStored(lists[index].0, field: lists[index].1, codebook: codebook, codes: lists[index].2)
            }
        }
        let history = try await resolve(request.history.sources, field: "user.history", codebook: codebook,
                                        codes: historyCodes, options: nil, stored: try reads[0].get())
        let candidates = try await resolve(request.candidates, field: "candidates", codebook: codebook,
                                           codes: candidateCodes, options: request.options, stored: try reads[1].get())
        let historyRows = history.foundRows
        let weights = request.history.weights
        try Self.checkRecentWeights(weights, rows: historyRows, recent: request.recent)
        let candidateRows = candidates.foundRows
        let d = pipeline.dimensions
        var query = MatchFeatures.Query(
            history: space(gather(history.vectors, rows: historyRows, d: d), count: historyRows.count, size: size,
                           codebook: codebook),
            historyCount: historyRows.count,
            candidates: space(gather(candidates.vectors, rows: candidateRows, d: d), count: candidateRows.count,
                              size: size, codebook: codebook),
            candidateCount: candidateRows.count, dimensions: size, features: request.features,
            weights: weights.map { w in historyRows.map { w[$0] } }, recent: request.recent, topK: request.topK,
            simTop: request.simTop)
        query.precision = precision
        if candidateCodes, let codebook {
            query.candidateCodes = candidateRows.map { candidates.codes[$0] }
            if historyCodes {
                query.historyCodes = historyRows.map { history.codes[$0] }
                query.codeCounts = codebook.codeCounts
            }
        }
        return Prepared(query: query, historyRows: historyRows, historyIDs: history.ids, candidateRows: candidateRows,
                        missing: history.missingIDs + candidates.missingIDs)
    }

    /// A user vector and the history it came from.
    public struct UserVector: Sendable {
        /// At the requested size, in the space `/embed` serves.
        public var vector: [Float]
        public var missing: [String]
        public var historyUsed: Int
    }

    /// The weighted mean of the last `recent` history vectors found, at Matryoshka size `size`.
    public func userVector(_ history: History, size: Int, recent: Int,
                           codebook: SemanticCodebook?) async throws(EmbeddingError) -> UserVector {
        try Self.check(history)
        let resolved = try await resolve(history.sources, field: "user.history", codebook: codebook, codes: false, options: nil,
                                         stored: try readStored(history.sources, field: "user.history", codebook: codebook, codes: false))
        let rows = resolved.foundRows
        guard !rows.isEmpty else {
            throw .invalid("no_history", "none of the history items is known: \(resolved.missingIDs.prefix(10))")
        }
        try Self.checkRecentWeights(history.weights, rows: rows, recent: recent)
        let d = pipeline.dimensions
        let vectors = space(gather(resolved.vectors, rows: rows, d: d), count: rows.count, size: size, codebook: codebook)
        var user = MatchFeatures.userVector(vectors, count: rows.count, dimensions: size,
                                            weights: history.weights.map { w in rows.map { w[$0] } }, recent: recent)
        guard user.contains(where: { $0 != 0 }) else {
            throw .invalid("no_history", "the recent history items' vectors cancel out")
        }
        // At full size `space` leaves the model's space (cosines do not need the rotation); a vector handed out is
        // in the space `/embed` serves.
        if size == d, rotate, let codebook { user = codebook.rotate(user, count: 1) }
        return UserVector(vector: user, missing: resolved.missingIDs, historyUsed: min(rows.count, recent))
    }

    // MARK: - Resolving

    /// Lists shorter than this are read one after the other: waking a second thread costs more than they do.
    static let parallelReadFrom = 128

    private static func check(_ history: History) throws(EmbeddingError) {
        if let weights = history.weights {
            guard weights.count == history.sources.count else {
                throw .invalid("invalid_weights", "'user.weights' has \(weights.count) values for \(history.sources.count) history items")
            }
            guard weights.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
                throw .invalid("invalid_weights", "'user.weights' must be finite and ≥ 0")
            }
        }
    }

    private static func checkCandidates(_ candidates: [VectorSource<ItemInput>]) throws(EmbeddingError) {
        var seen = Set<String>()
        for (index, candidate) in candidates.enumerated() {
            if case .item(let item) = candidate, !seen.insert(item.id).inserted {
                throw .invalid("duplicate_id", "candidates[\(index)]: id '\(item.id)' appears twice")
            }
        }
    }

    /// Full-size model-space unit vectors for `sources`, with codes when asked: what the store had (`stored`,
    /// from `readStored`), then inline vectors and items.
    private func resolve(_ sources: [VectorSource<ItemInput>], field: String, codebook: SemanticCodebook?, codes: Bool,
                         options: EmbeddingPipeline.Options?, stored: StoredRead) async throws(EmbeddingError) -> ResolvedVectors {
        let d = pipeline.dimensions
        var (resolved, needCodes, storedEmbeddings) = (stored.resolved, stored.needCodes, stored.storedEmbeddings)

        var inline: [Int] = []
        var items: [(Int, ItemInput)] = []
        for (index, source) in sources.enumerated() {
            resolved.ids.append(source.id)
            switch source {
            case .id:
                break
            case .vector(_, let vector):
                guard vector.count == d else {
                    throw .invalid("invalid_embedding", "\(field)[\(index)]: \(vector.count) values; inline embeddings are full size (\(d))")
                }
                guard vector.allSatisfy(\.isFinite), vector.contains(where: { $0 != 0 }) else {
                    throw .invalid("invalid_embedding", "\(field)[\(index)]: must be finite and not all zeros")
                }
                resolved.found[index] = true
                write(Matryoshka.normalized(vector), into: &resolved.vectors, row: index, d: d)
                inline.append(index)
            case .item(let item):
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

        if !items.isEmpty, let options {
            let outcome = try await pipeline.embed(items.map(\.1), options: options)
            for ((index, _), result) in zip(items, outcome.items) {
                let item = try result.get()
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
            if !fresh.isEmpty, codebook.version == pipeline.codebooks.current?.version {
                pipeline.store?.cacheCodes(fresh, codebookVersion: codebook.version)
            }
        }
        return resolved
    }

    /// `sources`' ids checked, and the stored items' vectors copied straight from the store's cache into their
    /// rows, with their codes when the store has them for `codebook` (else they are listed in `needCodes`).
    func readStored(_ sources: [VectorSource<ItemInput>], field: String, codebook: SemanticCodebook?,
                    codes: Bool) throws(EmbeddingError) -> StoredRead {
        for (index, source) in sources.enumerated() {
            guard let id = source.id else { continue }
            try ItemID.check(id, field: "\(field)[\(index)]", maxBytes: maxIdBytes)
        }
        let d = pipeline.dimensions
        var read = StoredRead()
        read.resolved.vectors = [Float](repeating: 0, count: sources.count * d)
        read.resolved.found = [Bool](repeating: false, count: sources.count)
        read.resolved.codes = [[Int]](repeating: [], count: sources.count)
        var idPositions: [Int] = [], ids: [String] = []
        for (index, source) in sources.enumerated() {
            if case .id(let id) = source {
                idPositions.append(index)
                ids.append(id)
            }
        }
        guard !ids.isEmpty else { return read }
        guard let store = pipeline.store else {
            throw EmbeddingError(status: 409, code: "store_disabled",
                                 message: "\(field) names items by id, and the item store is disabled (store.enabled)")
        }
        let (model, version) = (pipeline.model, codebook?.version)
        var (vectors, found, storedCodes) = (read.resolved.vectors, read.resolved.found, read.resolved.codes)
        read.resolved = ResolvedVectors()  // the arrays above are then the only references: written in place
        var pending: [Int] = [], embeddings: [Int: [Float]] = [:]
        let failure = vectors.withUnsafeMutableBufferPointer { vectors -> EmbeddingError? in
            do throws(EmbeddingError) {
                _ = try store.visitVectors(ids) { position, vector in
                    // A vector of another model (revision) is not comparable: as good as missing.
                    guard vector.pointee.modelID == model.id, vector.pointee.revision == model.revision,
                          vector.pointee.embedding.count == d else { return }
                    let index = idPositions[position]
                    found[index] = true
                    // Stored vectors are unit length already: copied as they are.
                    vector.pointee.embedding.withUnsafeBufferPointer { embedding in
                        (vectors.baseAddress! + index * d).update(from: embedding.baseAddress!, count: d)
                    }
                    guard codes else { return }
                    if let semanticID = vector.pointee.semanticID, vector.pointee.codebookVersion == version {
                        storedCodes[index] = semanticID
                    } else {
                        pending.append(index)
                        embeddings[index] = vector.pointee.embedding
                    }
                }
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw failure }
        (read.resolved.vectors, read.resolved.found, read.resolved.codes) = (vectors, found, storedCodes)
        // In request order: the cache lends its shards' entries one shard after another.
        (read.needCodes, read.storedEmbeddings) = (pending.sorted(), embeddings)
        return read
    }

    // MARK: - Rows

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

    func gather(_ vectors: [Float], rows: [Int], d: Int) -> [Float] {
        // Every row, in order (all found): the vectors as they are. (Rows of codes to compute come stored first,
        // then inline: all of them, not in order, must be gathered.)
        if rows.count * d == vectors.count, rows.elementsEqual(rows.indices) { return vectors }
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

    /// 422 when weights are given and none of the recent history items (the last `recent` of `rows`) has a
    /// positive one: the user vector would be undefined.
    private static func checkRecentWeights(_ weights: [Float]?, rows: [Int], recent: Int) throws(EmbeddingError) {
        guard let weights, !rows.isEmpty else { return }
        guard rows.suffix(recent).contains(where: { weights[$0] > 0 }) else {
            throw .invalid("invalid_weights", "the weights of the recent history items sum to zero")
        }
    }
}
