import Dispatch
import Foundation
import Locking

/// The memory bank: every embedded item's vectors, in SQLite (one process's file, the default) or PostgreSQL
/// (shared by replicas); see `StoreBackend`.
///
/// Writes are group-committed: the items of concurrent requests are written in one transaction and each `put`
/// returns only once its transaction is committed, so an acknowledged item survives a crash of the process (with
/// SQLite's `synchronous = FULL` or PostgreSQL's default `synchronous_commit`, also of the machine).
///
/// In front of it, a bounded LRU cache of the vectors `/match` reads (`vectors(_:)`). Writes and deletes update it
/// after their commit, serialised with the reads that fill it, so it never serves a vector older than the store's.
public final class ItemStore: Sendable {
    /// A stored item: what `/embed` returned for it and what it was computed from.
    public struct Record: Sendable, Equatable {
        public var id: String
        public var contentHash: String
        public var modelID: String
        public var revision: String
        public var embedding: [Float]
        public var modalities: Modalities
        public var semanticID: [Int]?
        /// The codebook the semantic ID is from.
        public var codebookVersion: String? = nil
        public var truncated: Bool
        public var images: Int
        public var audioSeconds: Double
        /// Seconds since 1970.
        public var createdAt: Double
        public var updatedAt: Double

        public init(id: String, contentHash: String, modelID: String, revision: String, embedding: [Float],
                    modalities: Modalities, semanticID: [Int]?, codebookVersion: String? = nil, truncated: Bool,
                    images: Int, audioSeconds: Double, createdAt: Double, updatedAt: Double) {
            self.id = id
            self.contentHash = contentHash
            self.modelID = modelID
            self.revision = revision
            self.embedding = embedding
            self.modalities = modalities
            self.semanticID = semanticID
            self.codebookVersion = codebookVersion
            self.truncated = truncated
            self.images = images
            self.audioSeconds = audioSeconds
            self.createdAt = createdAt
            self.updatedAt = updatedAt
        }
    }

    /// How hard SQLite syncs: `normal` survives process crashes, `full` also power loss.
    public enum Durability: String, Sendable, CaseIterable {
        case normal, full
    }

    /// The PostgreSQL bank: where, with which password (kept out of the URL so that logs never show it), how
    /// many connections, and how long a statement or a connection attempt may take.
    public struct PostgresSettings: Sendable {
        public var url: String
        public var password: String?
        public var poolSize: Int
        public var statementTimeout: Duration
        public var connectTimeout: Duration
        /// How often the monitor checks the database (and tries again when it is away) and looks for a new codebook.
        public var checkInterval: Duration

        public init(url: String, password: String?, poolSize: Int, statementTimeout: Duration, connectTimeout: Duration,
                    checkInterval: Duration = .seconds(1)) {
            self.checkInterval = checkInterval
            self.url = url
            self.password = password
            self.poolSize = poolSize
            self.statementTimeout = statementTimeout
            self.connectTimeout = connectTimeout
        }

        /// The URL without any password it carries.
        public var redactedURL: String {
            guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].firstIndex(of: "@") else { return url }
            let userInfo = url[scheme.upperBound..<at]
            guard let colon = userInfo.firstIndex(of: ":") else { return url }
            return String(url[..<colon]) + ":***" + String(url[at...])
        }
    }

    public enum Backend: Sendable {
        case sqlite(path: String, durability: Durability)
        case postgres(PostgresSettings)
    }

    /// What `/match` needs of an item.
    public struct StoredVector: Sendable, Equatable {
        public var modelID: String
        public var revision: String
        /// The fused vector at full size (model space, unit length).
        public var embedding: [Float]
        public var semanticID: [Int]?
        public var codebookVersion: String?
    }

    /// Where the bank is, for logs (never a password).
    public var location: String { backend.location }
    /// Whether the database answers: a shared bank may be down for a while (requests that need it get 503,
    /// cached vectors still answer), and comes back without a restart.
    public var isAvailable: Bool { backend.isAvailable }
    private let backend: any StoreBackend
    private let cache: LRUCache<String, StoredVector>
    /// Held while a cache miss is read from the database and cached, and while a commit updates the cache.
    private let fill = Locked(())
    private let pending = Locked<(writes: [Write], writing: Bool)>(([], false))
    private let writer = DispatchQueue(label: "omniembed.store-writer")

    private struct Write {
        let records: [Record]
        let continuation: CheckedContinuation<Result<Void, EmbeddingError>, Never>
    }

    /// `cacheItems`: vectors kept in memory for `vectors(_:)` (0: none). Opening creates or migrates the schema;
    /// a database of a newer schema than this release knows is refused.
    public init(_ backend: Backend, cacheItems: Int = 0) throws {
        switch backend {
        case .sqlite(let path, let durability): self.backend = try SQLiteBackend(path: path, durability: durability)
        case .postgres(let settings): self.backend = try PostgresBackend(settings)
        }
        cache = LRUCache(capacity: cacheItems)
    }

    /// The SQLite bank at `path`.
    public convenience init(path: String, durability: Durability = .full, cacheItems: Int = 0) throws {
        try self.init(.sqlite(path: path, durability: durability), cacheItems: cacheItems)
    }

    /// Each id's vector (`nil` where there is none), in the ids' order, from the cache or else the database (then cached).
    public func vectors(_ ids: [String]) throws(EmbeddingError) -> [StoredVector?] {
        var vectors = [StoredVector?](repeating: nil, count: ids.count)
        _ = try visitVectors(ids) { position, vector in vectors[position] = vector.pointee }
        return vectors
    }

    /// Calls `body` with the position in `ids` and the vector of each id stored, from the cache or else the
    /// database (then cached); returns the positions of the ids not stored. Vectors are lent by address, not
    /// copied (see `LRUCache.visit`).
    public func visitVectors(_ ids: [String], _ body: (Int, UnsafePointer<StoredVector>) -> Void) throws(EmbeddingError) -> [Int] {
        let absent = cache.visit(ids, body)
        guard !absent.isEmpty else { return [] }
        let missing = Array(Set(absent.map { ids[$0] }))
        let read: [String: StoredVector] = try fill.withLock { _ throws(EmbeddingError) in
            let read = try Self.mapped(try backend.vectors(missing))
            cache.set(read.map { ($0.id, $0.vector) })
            return Dictionary(read.map { ($0.id, $0.vector) }, uniquingKeysWith: { first, _ in first })
        }
        var notStored: [Int] = []
        for position in absent {
            if let vector = read[ids[position]] {
                withUnsafePointer(to: vector) { body(position, $0) }
            } else {
                notStored.append(position)
            }
        }
        return notStored
    }

    /// Keeps codes computed for cached vectors under `codebookVersion` with them, so that later reads find them
    /// current (after a reload, stored codes are of the previous codebook until each item is written again). An
    /// entry whose vector changed since it was read is left alone.
    public func cacheCodes(_ codes: [(id: String, embedding: [Float], semanticID: [Int])], codebookVersion: String) {
        let byID = Dictionary(codes.map { ($0.id, ($0.embedding, $0.semanticID)) }, uniquingKeysWith: { first, _ in first })
        cache.update(byID.keys) { id, stored in
            guard let (embedding, semanticID) = byID[id], stored.embedding == embedding else { return }
            stored.semanticID = semanticID
            stored.codebookVersion = codebookVersion
        }
    }

    /// Every stored fused vector of one model revision, in id order: what `omniembed fit` learns from.
    public func embeddings(modelID: String, revision: String) throws(EmbeddingError) -> (ids: [String], vectors: [Float], dimensions: Int) {
        try Self.mapped(try backend.embeddings(modelID: modelID, revision: revision))
    }

    /// How many items each model revision has in the store.
    public func revisions() throws(EmbeddingError) -> [(modelID: String, revision: String, items: Int)] {
        try Self.mapped(try backend.revisions())
    }

    /// The stored records of `ids` (those that exist).
    public func records(_ ids: [String]) throws(EmbeddingError) -> [String: Record] {
        guard !ids.isEmpty else { return [:] }
        let records = try Self.mapped(try backend.records(Array(Set(ids))))
        return Dictionary(records.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    }

    public func record(_ id: String) throws(EmbeddingError) -> Record? {
        try records([id])[id]
    }

    /// Calls `body` with every stored record, a page of `pageSize` at a time, in the bank's id order: the whole
    /// bank without holding it in memory.
    public func forEachPage(pageSize: Int = 1000, _ body: ([Record]) throws -> Void) throws {
        var after: String?
        while true {
            // An empty id is never stored, so "after the empty id" is from the first.
            let page = try Self.mapped(try backend.records(after: after, limit: pageSize))
            if page.isEmpty { return }
            try body(page)
            after = page.last?.id
        }
    }

    /// Deletes `id`; whether it existed. Committed when it returns.
    public func delete(_ id: String) throws(EmbeddingError) -> Bool {
        let deleted = try Self.mapped(try backend.delete(id))
        fill.withLock { _ in cache.remove([id]) }
        return deleted
    }

    public func count() throws(EmbeddingError) -> Int {
        try Self.mapped(try backend.count())
    }

    /// Inserts or replaces `records` (an existing id keeps its `createdAt`); returns once they are committed.
    public func put(_ records: [Record]) async throws(EmbeddingError) {
        guard !records.isEmpty else { return }
        let result = await withCheckedContinuation { continuation in
            let startWriter = pending.withLock { state in
                state.writes.append(Write(records: records, continuation: continuation))
                defer { state.writing = true }
                return !state.writing
            }
            if startWriter { writer.async { self.drain() } }
        }
        try result.get()
    }

    /// Commits everything pending, one transaction per round, until nothing is.
    private func drain() {
        while true {
            let writes = pending.withLock { state in
                let writes = state.writes
                state.writes = []
                if writes.isEmpty { state.writing = false }
                return writes
            }
            guard !writes.isEmpty else { return }
            let result: Result<Void, EmbeddingError>
            do {
                let records = writes.flatMap(\.records)
                try backend.upsert(records)
                fill.withLock { _ in
                    cache.set(records.map {
                        ($0.id, StoredVector(modelID: $0.modelID, revision: $0.revision, embedding: $0.embedding,
                                             semanticID: $0.semanticID, codebookVersion: $0.codebookVersion))
                    })
                }
                result = .success(())
            } catch {
                result = .failure(Self.embeddingError(error))
            }
            for write in writes { write.continuation.resume(returning: result) }
        }
    }

    /// Ends the backend's threads and connections (a shared bank's monitor); the store is not used after.
    public func close() {
        backend.close()
    }

    // MARK: Codebooks in the bank

    /// Whether codebooks live in the bank (PostgreSQL: shared by replicas) rather than in `codebook.path`.
    public var sharesCodebooks: Bool { backend.sharesCodebooks }

    /// Keeps `codebook` in the bank and tells every replica.
    public func saveCodebook(_ codebook: StoredCodebook) throws(EmbeddingError) {
        try Self.mapped(try backend.saveCodebook(codebook))
    }

    /// The newest `limit` codebooks, newest first.
    public func codebooks(newest limit: Int) throws(EmbeddingError) -> [StoredCodebook] {
        try Self.mapped(try backend.codebooks(newest: limit))
    }

    public func codebook(version: String) throws(EmbeddingError) -> StoredCodebook? {
        try Self.mapped(try backend.codebook(version: version))
    }

    /// Calls `handler` (on a thread of the store's) with each newer codebook version saved to the bank.
    public func watchCodebooks(_ handler: @escaping @Sendable (String) -> Void) {
        backend.watchCodebooks(handler)
    }

    /// Runs a backend call, its failure as the error requests are answered with (503 `store_unavailable`).
    private static func mapped<R>(_ body: @autoclosure () throws(StoreError) -> R) throws(EmbeddingError) -> R {
        do { return try body() } catch { throw embeddingError(error) }
    }

    private static func embeddingError(_ error: StoreError) -> EmbeddingError {
        switch error {
        case .unavailable(let message): .storeFailed("the item store is unavailable: \(message)")
        case .failed(let message): .storeFailed("the item store failed: \(message)")
        }
    }

    /// Model ids, revisions and codebook versions as one `String` object per distinct value (a handful): cached
    /// records read from the database then share them, and `/match` comparing a thousand records' model with the
    /// service's reads the same few bytes, not a thousand scattered strings.
    private static let names = Locked(Set<String>())
    static func shared(_ name: String) -> String { names.withLock { $0.insert(name).memberAfterInsert } }

}
