extension Matcher {
    /// Stored items as a ranker fetches them per request: in the order of `ids`, each found one's embedding in
    /// the space `/embed` serves at the Matryoshka `size` and its semantic ID under `codebook`, and the ids not
    /// stored (or stored by another model revision).
    public struct Fetched: Sendable {
        public var ids: [String] = []
        /// Row-major, `size` per found id (empty unless asked).
        public var embeddings: [Float] = []
        public var semanticIDs: [[Int]] = []
        public var missing: [String] = []
    }

    public func fetch(_ ids: [String], size: Int, embeddings: Bool, codes: Bool,
                      codebook: SemanticCodebook?) throws(EmbeddingError) -> Fetched {
        let d = pipeline.dimensions
        for (index, id) in ids.enumerated() { try ItemID.check(id, field: "ids[\(index)]", maxBytes: maxIdBytes) }
        if codes && codebook == nil {
            throw EmbeddingError(status: 409, code: "no_codebook", message: "semantic_id needs a codebook (run omniembed fit)")
        }
        var resolved = ResolvedVectors()
        resolved.vectors = [Float](repeating: 0, count: ids.count * d)
        resolved.found = [Bool](repeating: false, count: ids.count)
        resolved.codes = [[Int]](repeating: [], count: ids.count)
        var needCodes: [Int] = [], storedEmbeddings: [Int: [Float]] = [:]
        try readStored(ids.map { .id($0) }, field: "ids", codebook: codebook, codes: codes, into: &resolved,
                       needCodes: &needCodes, storedEmbeddings: &storedEmbeddings)
        resolved.ids = ids

        let rows = resolved.foundRows
        var fetched = Fetched()
        fetched.ids = rows.map { ids[$0] }
        fetched.missing = resolved.missingIDs
        // One rotation serves both: the codes still to compute and the embeddings in the served space.
        let rotated = codebook.flatMap { codebook in
            (codes && !needCodes.isEmpty) || (embeddings && rotate)
                ? codebook.rotate(gather(resolved.vectors, rows: rows, d: d), count: rows.count) : nil
        }
        if codes, let codebook, let rotated, !needCodes.isEmpty {
            let position = Dictionary(uniqueKeysWithValues: rows.enumerated().map { ($1, $0) })
            let computed = codebook.codes(rotated: gather(rotated, rows: needCodes.map { position[$0]! }, d: d),
                                          count: needCodes.count)
            var fresh: [(id: String, embedding: [Float], semanticID: [Int])] = []
            for (index, code) in zip(needCodes, computed) {
                resolved.codes[index] = code
                if let embedding = storedEmbeddings[index] { fresh.append((ids[index], embedding, code)) }
            }
            // Computed once per codebook, not on every fetch that names them (a pinned older version's codes
            // would displace the newest's).
            if codebook.version == pipeline.codebooks.current?.version {
                pipeline.store?.cacheCodes(fresh, codebookVersion: codebook.version)
            }
        }
        if codes { fetched.semanticIDs = rows.map { resolved.codes[$0] } }
        guard embeddings, !rows.isEmpty else { return fetched }
        let served = rotate ? rotated ?? gather(resolved.vectors, rows: rows, d: d) : gather(resolved.vectors, rows: rows, d: d)
        guard size < d else {
            fetched.embeddings = served
            return fetched
        }
        fetched.embeddings.reserveCapacity(rows.count * size)
        for row in 0..<rows.count {
            fetched.embeddings += Matryoshka.normalized(Array(served[row * d..<row * d + size]))
        }
        return fetched
    }
}
