import Dispatch
import Foundation
import GRDB
import Locking

/// The memory bank: every embedded item's vectors, in SQLite (WAL) through GRDB.
///
/// Writes are group-committed: the items of concurrent requests are written in one transaction and each `put`
/// returns only once its transaction is committed, so an acknowledged item survives a crash (with
/// `synchronous = FULL`, also a power loss). SQLite's journal keeps the file consistent when the process dies
/// mid-write.
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
    }

    /// How hard SQLite syncs: `normal` survives process crashes, `full` also power loss.
    public enum Durability: String, Sendable, CaseIterable {
        case normal, full
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

    public let path: String
    private let pool: DatabasePool
    private let cache: LRUCache<String, StoredVector>
    /// Held while a cache miss is read from the database and cached, and while a commit updates the cache.
    private let fill = Locked(())
    private let pending = Locked<(writes: [Write], writing: Bool)>(([], false))
    private let writer = DispatchQueue(label: "omniembed.store-writer")

    private struct Write {
        let records: [Record]
        let continuation: CheckedContinuation<Result<Void, EmbeddingError>, Never>
    }

    /// `cacheItems`: vectors kept in memory for `vectors(_:)` (0: none).
    public init(path: String, durability: Durability = .full, cacheItems: Int = 0) throws {
        self.path = path
        cache = LRUCache(capacity: cacheItems)
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(durability.rawValue.uppercased())")
        }
        configuration.busyMode = .timeout(5)
        pool = try DatabasePool(path: path, configuration: configuration)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE items (
                    id TEXT PRIMARY KEY NOT NULL,
                    content_hash TEXT NOT NULL,
                    model_id TEXT NOT NULL,
                    revision TEXT NOT NULL,
                    embedding BLOB NOT NULL,
                    text_vector BLOB,
                    image_vector BLOB,
                    audio_vector BLOB,
                    semantic_id TEXT,
                    truncated INTEGER NOT NULL,
                    images INTEGER NOT NULL,
                    audio_seconds REAL NOT NULL,
                    created_at REAL NOT NULL,
                    updated_at REAL NOT NULL
                )
                """)
        }
        migrator.registerMigration("v2: codebook version of the semantic ID") { db in
            try db.execute(sql: "ALTER TABLE items ADD COLUMN codebook_version TEXT")
        }
        try migrator.migrate(pool)
    }

    /// Each id's vector (`nil` where there is none), in the ids' order, from the cache or else the database (then cached).
    public func vectors(_ ids: [String]) throws(EmbeddingError) -> [StoredVector?] {
        var vectors = [StoredVector?](repeating: nil, count: ids.count)
        _ = try visitVectors(ids) { position, vector in vectors[position] = copy vector }
        return vectors
    }

    /// Calls `body` with the position in `ids` and the vector of each id stored, from the cache or else the
    /// database (then cached); returns the positions of the ids not stored. Cached vectors are lent, not copied
    /// (see `LRUCache.visit`).
    public func visitVectors(_ ids: [String], _ body: (Int, borrowing StoredVector) -> Void) throws(EmbeddingError) -> [Int] {
        let absent = cache.visit(ids, body)
        guard !absent.isEmpty else { return [] }
        let missing = Array(Set(absent.map { ids[$0] }))
        let read: [String: StoredVector]
        do {
            read = try fill.withLock { _ in
                let read = try pool.read { db in
                    var read: [(String, StoredVector)] = []
                    for start in stride(from: 0, to: missing.count, by: 1000) {
                        let chunk = Array(missing[start..<min(start + 1000, missing.count)])
                        let marks = Array(repeating: "CAST(? AS TEXT)", count: chunk.count).joined(separator: ",")
                        let sql = "SELECT id, model_id, revision, embedding, semantic_id, codebook_version FROM items WHERE id IN (\(marks))"
                        for row in try Row.fetchAll(db, sql: sql, arguments: StatementArguments(chunk.map(Self.text))) {
                            read.append((row["id"], try Self.storedVector(row)))
                        }
                    }
                    return read
                }
                cache.set(read)
                return Dictionary(read, uniquingKeysWith: { first, _ in first })
            }
        } catch {
            throw .storeFailed("reading the item store: \(error)")
        }
        var notStored: [Int] = []
        for position in absent {
            if let vector = read[ids[position]] { body(position, vector) } else { notStored.append(position) }
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
        do {
            return try pool.read { db in
                var ids: [String] = [], vectors: [Float] = [], dimensions = 0
                let rows = try Row.fetchCursor(db, sql: "SELECT id, embedding FROM items WHERE model_id = ? AND revision = ? ORDER BY id",
                                               arguments: [modelID, revision])
                while let row = try rows.next() {
                    let vector = try Self.floats(row, "embedding") ?? []
                    if dimensions == 0 { dimensions = vector.count }
                    guard vector.count == dimensions else {
                        throw DatabaseError(message: "item \(row["id"] as String): \(vector.count) dimensions, others \(dimensions)")
                    }
                    ids.append(row["id"])
                    vectors.append(contentsOf: vector)
                }
                return (ids, vectors, dimensions)
            }
        } catch {
            throw .storeFailed("reading the item store: \(error)")
        }
    }

    /// How many items each model revision has in the store.
    public func revisions() throws(EmbeddingError) -> [(modelID: String, revision: String, items: Int)] {
        do {
            return try pool.read { db in
                try Row.fetchAll(db, sql: "SELECT model_id, revision, COUNT(*) AS n FROM items GROUP BY model_id, revision ORDER BY n DESC")
                    .map { ($0["model_id"], $0["revision"], $0["n"]) }
            }
        } catch {
            throw .storeFailed("reading the item store: \(error)")
        }
    }

    /// The stored records of `ids` (those that exist).
    public func records(_ ids: [String]) throws(EmbeddingError) -> [String: Record] {
        guard !ids.isEmpty else { return [:] }
        do {
            return try pool.read { db in
                var found: [String: Record] = [:]
                // SQLite binds at most 32766 parameters per statement.
                for start in stride(from: 0, to: ids.count, by: 1000) {
                    let chunk = Array(ids[start..<min(start + 1000, ids.count)])
                    let marks = Array(repeating: "CAST(? AS TEXT)", count: chunk.count).joined(separator: ",")
                    for row in try Row.fetchAll(db, sql: "SELECT * FROM items WHERE id IN (\(marks))",
                                                arguments: StatementArguments(chunk.map(Self.text))) {
                        let record = try Self.record(row)
                        found[record.id] = record
                    }
                }
                return found
            }
        } catch {
            throw .storeFailed("reading the item store: \(error)")
        }
    }

    public func record(_ id: String) throws(EmbeddingError) -> Record? {
        try records([id])[id]
    }

    /// Deletes `id`; whether it existed. Committed when it returns.
    public func delete(_ id: String) throws(EmbeddingError) -> Bool {
        do {
            let deleted = try pool.write { db in
                try db.execute(sql: "DELETE FROM items WHERE id = CAST(? AS TEXT)", arguments: [Self.text(id)])
                return db.changesCount > 0
            }
            fill.withLock { _ in cache.remove([id]) }
            return deleted
        } catch {
            throw .storeFailed("deleting from the item store: \(error)")
        }
    }

    public func count() throws(EmbeddingError) -> Int {
        do {
            return try pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM items") ?? 0 }
        } catch {
            throw .storeFailed("reading the item store: \(error)")
        }
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
                try pool.write { db in
                    for record in records { try Self.upsert(record, db) }
                }
                fill.withLock { _ in
                    cache.set(records.map {
                        ($0.id, StoredVector(modelID: $0.modelID, revision: $0.revision, embedding: $0.embedding,
                                             semanticID: $0.semanticID, codebookVersion: $0.codebookVersion))
                    })
                }
                result = .success(())
            } catch {
                result = .failure(.storeFailed("writing the item store: \(error)"))
            }
            for write in writes { write.continuation.resume(returning: result) }
        }
    }

    private static func upsert(_ record: Record, _ db: Database) throws {
        try db.execute(sql: """
            INSERT INTO items (id, content_hash, model_id, revision, embedding, text_vector, image_vector, audio_vector,
                               semantic_id, codebook_version, truncated, images, audio_seconds, created_at, updated_at)
            VALUES (CAST(? AS TEXT), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET
                content_hash = excluded.content_hash, model_id = excluded.model_id, revision = excluded.revision,
                embedding = excluded.embedding, text_vector = excluded.text_vector,
                image_vector = excluded.image_vector, audio_vector = excluded.audio_vector,
                semantic_id = excluded.semantic_id, codebook_version = excluded.codebook_version, truncated = excluded.truncated, images = excluded.images,
                audio_seconds = excluded.audio_seconds, updated_at = excluded.updated_at
            """, arguments: [
                text(record.id), record.contentHash, record.modelID, record.revision, blob(record.embedding),
                record.modalities.text.map(blob), record.modalities.image.map(blob), record.modalities.audio.map(blob),
                record.semanticID.map { $0.map(String.init).joined(separator: ",") }, record.codebookVersion,
                record.truncated, record.images, record.audioSeconds, record.createdAt, record.updatedAt,
            ])
    }

    private static func floats(_ row: Row, _ column: String) throws -> [Float]? {
        guard let data = row[column] as Data? else { return nil }
        guard data.count % 4 == 0 else { throw DatabaseError(message: "\(column) has \(data.count) bytes, not float32s") }
        return data.withUnsafeBytes { raw in
            (0..<data.count / 4).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
    }

    private static func codes(_ row: Row) -> [Int]? {
        (row["semantic_id"] as String?).map { $0.split(separator: ",").compactMap { Int($0) } }
    }

    private static func storedVector(_ row: Row) throws -> StoredVector {
        StoredVector(modelID: shared(row["model_id"]), revision: shared(row["revision"]),
                     embedding: try floats(row, "embedding") ?? [], semanticID: codes(row),
                     codebookVersion: (row["codebook_version"] as String?).map(shared))
    }

    /// Model ids, revisions and codebook versions as one `String` object per distinct value (a handful): cached
    /// records read from the database then share them, and `/match` comparing a thousand records' model with the
    /// service's reads the same few bytes, not a thousand scattered strings.
    private static let names = Locked(Set<String>())
    private static func shared(_ name: String) -> String { names.withLock { $0.insert(name).memberAfterInsert } }

    private static func record(_ row: Row) throws -> Record {
        Record(
            id: row["id"], contentHash: row["content_hash"], modelID: row["model_id"], revision: row["revision"],
            embedding: try floats(row, "embedding") ?? [],
            modalities: Modalities(text: try floats(row, "text_vector"), image: try floats(row, "image_vector"),
                                   audio: try floats(row, "audio_vector")),
            semanticID: codes(row), codebookVersion: row["codebook_version"],
            truncated: row["truncated"], images: row["images"], audioSeconds: row["audio_seconds"],
            createdAt: row["created_at"], updatedAt: row["updated_at"])
    }

    /// An id bound with its length: GRDB binds a `String` as a C string, which would end it at a NUL (ids are
    /// checked before they get here; this keeps the store right whatever a caller passes).
    static func text(_ string: String) -> Data { Data(string.utf8) }

    /// Little-endian float32 bytes.
    static func blob(_ vector: [Float]) -> Data {
        var data = Data(count: vector.count * 4)
        data.withUnsafeMutableBytes { raw in
            for (index, value) in vector.enumerated() {
                raw.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: index * 4, as: UInt32.self)
            }
        }
        return data
    }
}
