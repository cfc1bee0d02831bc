/// Where the memory bank's rows live: SQLite in one process's file, or PostgreSQL shared by replicas. Both keep
/// the same rows (id, content hash, model revision, vectors as little-endian float32, codes with their codebook
/// version) with the same semantics; `ItemStore` puts the cache and the group commit in front.
protocol StoreBackend: Sendable {
    /// The vectors `/match` needs of those of `ids` (distinct) that are stored.
    func vectors(_ ids: [String]) throws(StoreError) -> [(id: String, vector: ItemStore.StoredVector)]
    /// The records of those of `ids` that are stored.
    func records(_ ids: [String]) throws(StoreError) -> [ItemStore.Record]
    /// Up to `limit` records in the bank's id order, those after `id` (`nil`: from the first): the whole bank, a
    /// page at a time, for `omniembed export`.
    func records(after id: String?, limit: Int) throws(StoreError) -> [ItemStore.Record]
    /// Every fused vector of one model revision, in id order.
    func embeddings(modelID: String, revision: String) throws(StoreError) -> (ids: [String], vectors: [Float], dimensions: Int)
    func revisions() throws(StoreError) -> [(modelID: String, revision: String, items: Int)]
    /// Whether `id` existed; committed when it returns.
    func delete(_ id: String) throws(StoreError) -> Bool
    func count() throws(StoreError) -> Int
    /// Inserts or replaces `records` in one transaction (an existing id keeps its creation time); durable when it
    /// returns.
    func upsert(_ records: [ItemStore.Record]) throws(StoreError)
    /// What logs may show of where the store is (never a password).
    var location: String { get }
    /// Whether the database answers (as far as the last call or check knows): what `/readyz` reports.
    var isAvailable: Bool { get }

    /// Whether codebooks live in the bank (shared by replicas) rather than in `codebook.path`.
    var sharesCodebooks: Bool { get }
    /// Keeps `codebook` and tells every replica (a version kept already is left as it is).
    func saveCodebook(_ codebook: StoredCodebook) throws(StoreError)
    /// The newest `limit` codebooks, newest first.
    func codebooks(newest limit: Int) throws(StoreError) -> [StoredCodebook]
    func codebook(version: String) throws(StoreError) -> StoredCodebook?
    /// Calls `handler` with a version whenever a newer codebook than the last seen is saved (by any replica or fit).
    func watchCodebooks(_ handler: @escaping @Sendable (String) -> Void)
    /// Ends the backend's own threads and connections; called once nothing uses it any more.
    func close()
}

extension StoreBackend {
    var isAvailable: Bool { true }
    var sharesCodebooks: Bool { false }

    func saveCodebook(_ codebook: StoredCodebook) throws(StoreError) {
        throw .failed("codebooks live in codebook.path with the \(location) bank; the shared (postgres) bank keeps them itself")
    }

    func codebooks(newest limit: Int) throws(StoreError) -> [StoredCodebook] { [] }

    func codebook(version: String) throws(StoreError) -> StoredCodebook? { nil }

    func watchCodebooks(_ handler: @escaping @Sendable (String) -> Void) {}

    func close() {}
}

/// The row encodings both backends share.
enum StoreCoding {
    /// Little-endian float32 bytes.
    static func bytes(_ vector: [Float]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: vector.count * 4)
        bytes.withUnsafeMutableBytes { raw in
            for (index, value) in vector.enumerated() {
                raw.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: index * 4, as: UInt32.self)
            }
        }
        return bytes
    }

    /// Copied whole on a little-endian machine (every one this runs on), byte-swapped elsewhere.
    static func floats(_ raw: UnsafeRawBufferPointer, column: String) throws(StoreError) -> [Float] {
        guard raw.count % 4 == 0 else { throw .failed("\(column) has \(raw.count) bytes, not float32s") }
        let count = raw.count / 4
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            if let source = raw.baseAddress, count > 0 {
                UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: source, byteCount: raw.count)
            }
            if 1.littleEndian != 1 {
                for index in 0..<count { buffer[index] = Float(bitPattern: UInt32(littleEndian: buffer[index].bitPattern)) }
            }
            initialized = count
        }
    }

    /// The few distinct model ids, revisions and codebook versions of a batch of rows, each made a shared
    /// `String` once (see `ItemStore.shared`) rather than once per row.
    struct Names {
        private var seen: [String: String] = [:]
        /// The names of the last row: the next row's are almost always the same, found without making a String.
        private var recent: [String] = []

        mutating func shared(_ name: String) -> String {
            if let known = seen[name] { return known }
            let shared = ItemStore.shared(name)
            seen[name] = shared
            return shared
        }

        mutating func shared(_ bytes: UnsafeRawBufferPointer) -> String {
            for name in recent where name.utf8.elementsEqual(bytes) { return name }
            let name = shared(String(decoding: bytes, as: UTF8.self))
            if recent.count == 4 { recent.removeFirst() }
            recent.append(name)
            return name
        }
    }

    /// The upserts both backends run, with their placeholders: an item's row (12 columns; a replaced item keeps
    /// its `created_at`), then its per-modality vectors (4 columns), which live in a table of their own so that
    /// the rows `/match` and `/items/batch_get` read stay one vector wide.
    static func upsertItem(_ placeholders: [String]) -> String {
        """
        INSERT INTO items (id, content_hash, model_id, revision, embedding, semantic_id, codebook_version, truncated,
                           images, audio_seconds, created_at, updated_at)
        VALUES (\(placeholders.joined(separator: ", ")))
        ON CONFLICT (id) DO UPDATE SET
            content_hash = excluded.content_hash, model_id = excluded.model_id, revision = excluded.revision,
            embedding = excluded.embedding, semantic_id = excluded.semantic_id,
            codebook_version = excluded.codebook_version, truncated = excluded.truncated, images = excluded.images,
            audio_seconds = excluded.audio_seconds, updated_at = excluded.updated_at
        """
    }

    static func upsertModalities(_ placeholders: [String]) -> String {
        """
        INSERT INTO item_modalities (id, text_vector, image_vector, audio_vector)
        VALUES (\(placeholders.joined(separator: ", ")))
        ON CONFLICT (id) DO UPDATE SET
            text_vector = excluded.text_vector, image_vector = excluded.image_vector, audio_vector = excluded.audio_vector
        """
    }

    /// A whole record's columns, in this order, from `items` joined with `item_modalities`.
    static let recordSelect = """
        SELECT i.id, i.content_hash, i.model_id, i.revision, i.embedding, m.text_vector, m.image_vector, m.audio_vector,
               i.semantic_id, i.codebook_version, i.truncated, i.images, i.audio_seconds, i.created_at, i.updated_at
        FROM items i LEFT JOIN item_modalities m ON m.id = i.id
        """

    /// The migration that moves the per-modality vectors out of `items` (schemas before it kept them there).
    static let splitModalities = """
        CREATE TABLE item_modalities (
            id TEXT PRIMARY KEY NOT NULL,
            text_vector BLOB,
            image_vector BLOB,
            audio_vector BLOB
        );
        INSERT INTO item_modalities (id, text_vector, image_vector, audio_vector)
            SELECT id, text_vector, image_vector, audio_vector FROM items
            WHERE text_vector IS NOT NULL OR image_vector IS NOT NULL OR audio_vector IS NOT NULL;
        ALTER TABLE items DROP COLUMN text_vector;
        ALTER TABLE items DROP COLUMN image_vector;
        ALTER TABLE items DROP COLUMN audio_vector;
        """

    /// Semantic IDs as `3,1,4`.
    static func codes(_ codes: [Int]) -> String { codes.map(String.init).joined(separator: ",") }

    static func codes(_ text: String) -> [Int] { text.split(separator: ",").compactMap { Int($0) } }

    /// The same from the column's bytes: digits and commas, anything else skipped as the text form skips it.
    static func codes(_ bytes: UnsafeRawBufferPointer) -> [Int] {
        guard bytes.allSatisfy({ $0 == UInt8(ascii: ",") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
              bytes.count <= 512 else {
            return codes(String(decoding: bytes, as: UTF8.self))
        }
        var parsed: [Int] = [], value = 0, digits = 0
        for byte in bytes {
            if byte == UInt8(ascii: ",") {
                if digits > 0 { parsed.append(value) }
                (value, digits) = (0, 0)
            } else {
                digits += 1
                // Past what an Int holds: as the text form reads it (the code left out).
                guard digits <= 18 else { return codes(String(decoding: bytes, as: UTF8.self)) }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
        }
        if digits > 0 { parsed.append(value) }
        return parsed
    }
}
