import Dispatch
import Locking

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

        mutating func append(_ other: Fetched) {
            ids += other.ids
            embeddings += other.embeddings
            semanticIDs += other.semanticIDs
            missing += other.missing
        }
    }

    /// Ids per read when a fetch is cut into parts: the bank reads the next part while this thread rotates the
    /// last (the rotation of a thousand vectors costs half as much as reading them).
    static let fetchPart = 256

    public func fetch(_ ids: [String], size: Int, embeddings: Bool, codes: Bool,
                      codebook: SemanticCodebook?) throws(EmbeddingError) -> Fetched {
        for (index, id) in ids.enumerated() { try ItemID.check(id, field: "ids[\(index)]", maxBytes: maxIdBytes) }
        if codes && codebook == nil {
            throw EmbeddingError(status: 409, code: "no_codebook", message: "semantic_id needs a codebook (run omniembed fit)")
        }
        let parts = stride(from: 0, to: ids.count, by: Self.fetchPart).map { Array(ids[$0..<min($0 + Self.fetchPart, ids.count)]) }
        let finish = { (read: StoredRead) in
            self.finish(read, size: size, embeddings: embeddings, codes: codes, codebook: codebook)
        }
        guard parts.count > 1 else { return finish(try read(ids, codes: codes, codebook: codebook)) }

        // The reads run in order on another thread, each part handed over as it is read; a failed read ends them.
        let reads = Locked<[Result<StoredRead, EmbeddingError>?]>(Array(repeating: nil, count: parts.count))
        let ready = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            for (index, part) in parts.enumerated() {
                let result = Result { () throws(EmbeddingError) in try self.read(part, codes: codes, codebook: codebook) }
                reads.withLock { $0[index] = result }
                ready.signal()
                if case .failure = result { return }
            }
        }
        var fetched = Fetched()
        for index in parts.indices {
            ready.wait()
            let result = reads.withLock { reads in
                defer { reads[index] = nil }
                return reads[index]!
            }
            fetched.append(finish(try result.get()))
        }
        return fetched
    }

    /// What the bank had of a list of sources (a part of a fetch, a /match's history or candidates), before
    /// rotation, inline sources and codes to compute.
    struct StoredRead: Sendable {
        var resolved = ResolvedVectors()
        var needCodes: [Int] = []
        var storedEmbeddings: [Int: [Float]] = [:]
    }

    private func read(_ ids: [String], codes: Bool, codebook: SemanticCodebook?) throws(EmbeddingError) -> StoredRead {
        var read = try readStored(ids.map { .id($0) }, field: "ids", codebook: codebook, codes: codes)
        read.resolved.ids = ids
        return read
    }

    private func finish(_ read: StoredRead, size: Int, embeddings: Bool, codes: Bool, codebook: SemanticCodebook?) -> Fetched {
        let d = pipeline.dimensions
        var resolved = read.resolved
        let rows = resolved.foundRows
        var fetched = Fetched()
        fetched.ids = rows.map { resolved.ids[$0]! }
        fetched.missing = resolved.missingIDs
        let needCodes = read.needCodes
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
                if let embedding = read.storedEmbeddings[index] { fresh.append((resolved.ids[index]!, embedding, code)) }
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
