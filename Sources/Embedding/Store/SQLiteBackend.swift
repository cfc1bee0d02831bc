import Foundation
import GRDB

/// The memory bank in one SQLite file (WAL) through GRDB: the embedded default, nothing to run.
final class SQLiteBackend: StoreBackend {
    let location: String
    private let pool: DatabasePool

    init(path: String, durability: ItemStore.Durability) throws {
        location = path
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
        migrator.registerMigration("v3: per-modality vectors in a table of their own") { db in
            try db.execute(sql: StoreCoding.splitModalities)
        }
        // A file written by a newer release has migrations this one does not know: refuse it rather than guess.
        if try pool.read({ try migrator.hasBeenSuperseded($0) }) {
            throw StoreError.failed("\(path) has a newer schema than this release knows; run the newer release")
        }
        try migrator.migrate(pool)
    }

    func vectors(_ ids: [String]) throws(StoreError) -> [(id: String, vector: ItemStore.StoredVector)] {
        try read { db in
            var read: [(id: String, vector: ItemStore.StoredVector)] = []
            read.reserveCapacity(ids.count)
            var names = StoreCoding.Names()
            // Columns by position (by name costs more than the rest of the row), the blob read in place.
            try Self.inChunks(ids, db, "SELECT id, model_id, revision, embedding, semantic_id, codebook_version FROM items") { row in
                let embedding = try row.withUnsafeData(atIndex: 3) { data in
                    try (data ?? Data()).withUnsafeBytes { raw throws(StoreError) in try StoreCoding.floats(raw, column: "embedding") }
                }
                read.append((row[0], ItemStore.StoredVector(
                    modelID: names.shared(row[1]), revision: names.shared(row[2]), embedding: embedding,
                    semanticID: (row[4] as String?).map(StoreCoding.codes),
                    codebookVersion: (row[5] as String?).map { names.shared($0) })))
            }
            return read
        }
    }

    func records(_ ids: [String]) throws(StoreError) -> [ItemStore.Record] {
        try read { db in
            var found: [ItemStore.Record] = []
            try Self.inChunks(ids, db, StoreCoding.recordSelect, column: "i.id") { row in found.append(try Self.record(row)) }
            return found
        }
    }

    func records(after id: String?, limit: Int) throws(StoreError) -> [ItemStore.Record] {
        try read { db in
            // Ids compared as bytes (ids are stored as text of their UTF-8 bytes; SQLite's BINARY collation).
            let rows = try Row.fetchAll(db, sql: "\(StoreCoding.recordSelect) WHERE i.id > CAST(? AS TEXT) ORDER BY i.id LIMIT ?",
                                        arguments: [Self.text(id ?? ""), limit])
            return try rows.map(Self.record)
        }
    }

    /// A row of `StoreCoding.recordSelect`, by position.
    private static func record(_ row: Row) throws -> ItemStore.Record {
        func vector(_ index: Int, _ name: String) throws -> [Float]? {
            try row.withUnsafeData(atIndex: index) { data in
                try data.map { data in try data.withUnsafeBytes { raw throws(StoreError) in try StoreCoding.floats(raw, column: name) } }
            }
        }
        return ItemStore.Record(
            id: row[0], contentHash: row[1], modelID: row[2], revision: row[3], embedding: try vector(4, "embedding") ?? [],
            modalities: Modalities(text: try vector(5, "text_vector"), image: try vector(6, "image_vector"),
                                   audio: try vector(7, "audio_vector")),
            semanticID: (row[8] as String?).map(StoreCoding.codes), codebookVersion: row[9], truncated: row[10],
            images: row[11], audioSeconds: row[12], createdAt: row[13], updatedAt: row[14])
    }

    func embeddings(modelID: String, revision: String) throws(StoreError) -> (ids: [String], vectors: [Float], dimensions: Int) {
        try read { db in
            var ids: [String] = [], vectors: [Float] = [], dimensions = 0
            let rows = try Row.fetchCursor(db, sql: "SELECT id, embedding FROM items WHERE model_id = ? AND revision = ? ORDER BY id",
                                           arguments: [modelID, revision])
            while let row = try rows.next() {
                let vector = try Self.floats(row, "embedding") ?? []
                if dimensions == 0 { dimensions = vector.count }
                guard vector.count == dimensions else {
                    throw StoreError.failed("item \(row["id"] as String): \(vector.count) dimensions, others \(dimensions)")
                }
                ids.append(row["id"])
                vectors.append(contentsOf: vector)
            }
            return (ids, vectors, dimensions)
        }
    }

    func revisions() throws(StoreError) -> [(modelID: String, revision: String, items: Int)] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT model_id, revision, COUNT(*) AS n FROM items GROUP BY model_id, revision ORDER BY n DESC")
                .map { ($0["model_id"], $0["revision"], $0["n"]) }
        }
    }

    func delete(_ id: String) throws(StoreError) -> Bool {
        try write { db in
            try db.execute(sql: "DELETE FROM item_modalities WHERE id = CAST(? AS TEXT)", arguments: [Self.text(id)])
            try db.execute(sql: "DELETE FROM items WHERE id = CAST(? AS TEXT)", arguments: [Self.text(id)])
            return db.changesCount > 0
        }
    }

    func count() throws(StoreError) -> Int {
        try read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM items") ?? 0 }
    }

    func upsert(_ records: [ItemStore.Record]) throws(StoreError) {
        try write { db in
            for record in records {
                try db.execute(sql: Self.upsertItem, arguments: [
                    Self.text(record.id), record.contentHash, record.modelID, record.revision, Self.blob(record.embedding),
                    record.semanticID.map(StoreCoding.codes), record.codebookVersion, record.truncated, record.images,
                    record.audioSeconds, record.createdAt, record.updatedAt,
                ])
                let modalities = record.modalities
                if modalities.present.isEmpty {
                    try db.execute(sql: "DELETE FROM item_modalities WHERE id = CAST(? AS TEXT)", arguments: [Self.text(record.id)])
                } else {
                    try db.execute(sql: Self.upsertModalities, arguments: [
                        Self.text(record.id), modalities.text.map(Self.blob), modalities.image.map(Self.blob),
                        modalities.audio.map(Self.blob),
                    ])
                }
            }
        }
    }

    /// The id bound with its length (see `text`).
    private static let upsertItem = StoreCoding.upsertItem(["CAST(? AS TEXT)"] + Array(repeating: "?", count: 11))
    private static let upsertModalities = StoreCoding.upsertModalities(["CAST(? AS TEXT)", "?", "?", "?"])

    private func read<R>(_ body: (Database) throws -> R) throws(StoreError) -> R {
        do { return try pool.read(body) } catch let error as StoreError { throw error } catch { throw .failed("\(error)") }
    }

    private func write<R>(_ body: (Database) throws -> R) throws(StoreError) -> R {
        do { return try pool.write(body) } catch let error as StoreError { throw error } catch { throw .failed("\(error)") }
    }

    /// `select` with `WHERE column IN (...)` over `ids` a thousand at a time (SQLite binds at most 32766 parameters).
    private static func inChunks(_ ids: [String], _ db: Database, _ select: String, column: String = "id",
                                 _ each: (Row) throws -> Void) throws {
        for start in stride(from: 0, to: ids.count, by: 1000) {
            let chunk = Array(ids[start..<min(start + 1000, ids.count)])
            let marks = Array(repeating: "CAST(? AS TEXT)", count: chunk.count).joined(separator: ",")
            for row in try Row.fetchAll(db, sql: "\(select) WHERE \(column) IN (\(marks))", arguments: StatementArguments(chunk.map(text))) {
                try each(row)
            }
        }
    }

    private static func floats(_ row: Row, _ column: String) throws -> [Float]? {
        guard let data = row[column] as Data? else { return nil }
        return try data.withUnsafeBytes { raw throws(StoreError) in try StoreCoding.floats(raw, column: column) }
    }


    /// An id bound with its length: GRDB binds a `String` as a C string, which would end it at a NUL (ids are
    /// checked before they get here; this keeps the store right whatever a caller passes).
    static func text(_ string: String) -> Data { Data(string.utf8) }

    static func blob(_ vector: [Float]) -> Data { Data(StoreCoding.bytes(vector)) }
}
