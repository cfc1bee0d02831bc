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
        if codes, let codebook, !needCodes.isEmpty {
            let computed = codebook.codes(gather(resolved.vectors, rows: needCodes, d: d), count: needCodes.count)
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
        return served(resolved, size: size, embeddings: embeddings, codes: codes, codebook: codebook)
    }

    /// The found rows in the served space (rotated when `/embed` serves the codebook's), cut to `size` and
    /// re-normalised.
    private func served(_ resolved: ResolvedVectors, size: Int, embeddings: Bool, codes: Bool,
                        codebook: SemanticCodebook?) -> Fetched {
        let d = pipeline.dimensions
        let rows = resolved.foundRows
        var fetched = Fetched()
        fetched.ids = rows.map { resolved.ids[$0] ?? "" }
        fetched.missing = resolved.missingIDs
        if codes { fetched.semanticIDs = rows.map { resolved.codes[$0] } }
        guard embeddings, !rows.isEmpty else { return fetched }
        var vectors = gather(resolved.vectors, rows: rows, d: d)
        if rotate, let codebook { vectors = codebook.rotate(vectors, count: rows.count) }
        guard size < d else {
            fetched.embeddings = vectors
            return fetched
        }
        fetched.embeddings.reserveCapacity(rows.count * size)
        for row in 0..<rows.count {
            fetched.embeddings += Matryoshka.normalized(Array(vectors[row * d..<row * d + size]))
        }
        return fetched
    }
}
