import Dispatch
import Foundation
import Locking
import Synchronization

/// The memory bank in PostgreSQL, shared by every replica: the same rows as SQLite's, vectors as `bytea`.
///
/// The schema is created and migrated by the service under an advisory lock (replicas starting together take
/// turns); `omniembed_schema` holds its version, and a database of a newer version than this release knows is
/// refused. Statements run under `statementTimeout`; a connection found broken is replaced on the next use.
///
/// The database may be down when the service starts or at any time after: calls then fail as unavailable (503),
/// and a monitor thread tries it every `checkInterval` (a second by default) on a connection of its own, migrating the schema once it
/// answers, so that `isAvailable` (what `/readyz` reports) turns true again without a restart.
final class PostgresBackend: StoreBackend {
    let location: String
    private let pool: PostgresPool
    private let parameters: [(String, String)]
    private let checkInterval: Duration
    private let available = Atomic<Bool>(false)
    private let migrated = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)
    /// Signalled when the monitor thread has ended.
    private let monitorEnded = DispatchSemaphore(value: 0)
    /// A pipe whose write end `close` writes to, to wake the monitor from its wait at once.
    private let wake: (read: Int32, write: Int32)

    /// The schema this release writes, one migration per version.
    static let migrations = [
        """
        CREATE TABLE items (
            id text PRIMARY KEY,
            content_hash text NOT NULL,
            model_id text NOT NULL,
            revision text NOT NULL,
            embedding bytea NOT NULL,
            text_vector bytea,
            image_vector bytea,
            audio_vector bytea,
            semantic_id text,
            codebook_version text,
            truncated boolean NOT NULL,
            images integer NOT NULL,
            audio_seconds double precision NOT NULL,
            created_at double precision NOT NULL,
            updated_at double precision NOT NULL
        );
        CREATE INDEX items_model_revision ON items (model_id, revision);
        """,
        """
        CREATE TABLE codebooks (
            version text PRIMARY KEY,
            bytes bytea NOT NULL,
            created_at double precision NOT NULL,
            model_id text,
            model_revision text,
            previous_version text,
            mapping text
        );
        CREATE INDEX codebooks_created_at ON codebooks (created_at);
        """,
        StoreCoding.splitModalities.replacingOccurrences(of: "BLOB", with: "bytea")
            .replacingOccurrences(of: "TEXT PRIMARY KEY NOT NULL", with: "text PRIMARY KEY"),
        // Ids compared byte by byte, as SQLite does: the same order in both (export pages), and a lookup of a
        // thousand ids a third faster than under the database's locale.
        """
        ALTER TABLE items ALTER COLUMN id TYPE text COLLATE "C";
        ALTER TABLE item_modalities ALTER COLUMN id TYPE text COLLATE "C";
        """,
    ]

    private let monitorThread = Atomic<pthread_t>(0)
    private let monitorStarted = Atomic<Bool>(false)

    /// The channel a saved codebook is announced on.
    static let codebookChannel = "omniembed_codebooks"
    private let codebookHandler = Locked<(@Sendable (String) -> Void)?>(nil)
    private let newestCodebook = Locked<String?>(nil)

    init(_ settings: ItemStore.PostgresSettings) throws(StoreError) {
        location = settings.redactedURL
        var parameters = [("dbname", settings.url), ("application_name", "omniembed"),
                          ("connect_timeout", String(max(1, Int(settings.connectTimeout.components.seconds)))),
                          ("options", "-c statement_timeout=\(settings.statementTimeout.milliseconds)")]
        if let password = settings.password { parameters.append(("password", password)) }
        self.parameters = parameters
        checkInterval = settings.checkInterval
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw .failed("cannot make a pipe: \(String(cString: strerror(errno)))") }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        wake = (ends[0], ends[1])
        pool = PostgresPool(parameters: parameters, size: settings.poolSize, acquireTimeout: settings.statementTimeout)
        do {
            try migrate()
        } catch .unavailable {
            // Down for now: the monitor migrates once it answers.
        }
        startMonitor()
    }

    deinit {
        close()
        Glibc.close(wake.read)
        Glibc.close(wake.write)
    }

    /// Stops the monitor and waits for it (a thread still opening a connection when the process exits would use
    /// OpenSSL while it is being torn down), then closes the idle connections. Idempotent.
    func close() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        var byte: UInt8 = 1
        _ = write(wake.write, &byte, 1)
        // The last reference may go on the monitor's own thread, which then ends by itself.
        if monitorStarted.load(ordering: .relaxed), pthread_self() != monitorThread.load(ordering: .relaxed) {
            _ = monitorEnded.wait(timeout: .now() + .seconds(10))
        }
        pool.closeIdle()
    }

    var isAvailable: Bool { available.load(ordering: .relaxed) && migrated.load(ordering: .relaxed) }

    /// The monitor: every second (or at once on a NOTIFY of a saved codebook) it checks the database on a
    /// connection of its own, migrates the schema once it answers, and looks for a newer codebook.
    private func startMonitor() {
        let thread = Thread { [weak self, parameters, monitorEnded, wake, interval = checkInterval] in
            self?.monitorThread.store(pthread_self(), ordering: .relaxed)
            defer { monitorEnded.signal() }
            var connection: PostgresConnection?
            while let backend = self, !backend.stopped.load(ordering: .relaxed) {
                do throws(StoreError) {
                    if connection == nil {
                        let opened = try PostgresConnection(parameters: parameters)
                        try opened.execute("LISTEN \(Self.codebookChannel)")
                        connection = opened
                    }
                    _ = try connection?.query("ping", "SELECT 1")
                    if !backend.migrated.load(ordering: .relaxed) { try backend.migrate() }
                    backend.available.store(true, ordering: .relaxed)
                    if backend.codebookHandler.withLock({ $0 }) != nil,
                       let newest = try connection?.query("newest", "SELECT version FROM codebooks ORDER BY created_at DESC, version LIMIT 1").text(0, 0) {
                        backend.saw(codebook: newest)
                    }
                } catch {
                    if connection?.isHealthy != true { connection = nil }
                    backend.available.store(false, ordering: .relaxed)
                }
                _ = consume backend
                if let connection, connection.isHealthy {
                    _ = connection.waitForNotification(timeout: interval, interrupt: wake.read)
                } else {
                    var descriptor = pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)
                    _ = poll(&descriptor, 1, Int32(interval.milliseconds))
                }
            }
        }
        thread.name = "omniembed.postgres-monitor"
        monitorStarted.store(true, ordering: .relaxed)
        thread.start()
    }

    private func saw(codebook version: String) {
        let handler = codebookHandler.withLock { $0 }
        let isNew = newestCodebook.withLock { newest in
            defer { newest = version }
            return newest != version
        }
        if isNew { handler?(version) }
    }

    var sharesCodebooks: Bool { true }

    func watchCodebooks(_ handler: @escaping @Sendable (String) -> Void) {
        codebookHandler.withLock { $0 = handler }
    }

    func saveCodebook(_ codebook: StoredCodebook) throws(StoreError) {
        try withConnection { connection throws(StoreError) in
            try connection.transaction { () throws(StoreError) in
                _ = try connection.query("save_codebook", """
                    INSERT INTO codebooks (version, bytes, created_at, model_id, model_revision, previous_version, mapping)
                    VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (version) DO NOTHING
                    """, [.text(codebook.version), .bytes(codebook.bytes), .text("\(codebook.createdAt)"),
                          codebook.modelID.map { .text($0) } ?? .null, codebook.modelRevision.map { .text($0) } ?? .null,
                          codebook.previousVersion.map { .text($0) } ?? .null, codebook.mapping.map { .text($0) } ?? .null])
                // Delivered at commit, to every replica's monitor.
                _ = try connection.query("notify_codebook", "SELECT pg_notify('\(Self.codebookChannel)', $1)", [.text(codebook.version)])
            }
        }
    }

    func codebooks(newest limit: Int) throws(StoreError) -> [StoredCodebook] {
        let rows = try withConnection { connection throws(StoreError) in
            try connection.query("codebooks", """
                SELECT version, bytes, created_at, model_id, model_revision, previous_version, mapping FROM codebooks
                ORDER BY created_at DESC, version LIMIT $1
                """, [.text(String(limit))])
        }
        return (0..<rows.count).map { Self.codebook(rows, $0) }
    }

    func codebook(version: String) throws(StoreError) -> StoredCodebook? {
        let rows = try withConnection { connection throws(StoreError) in
            try connection.query("codebook", """
                SELECT version, bytes, created_at, model_id, model_revision, previous_version, mapping FROM codebooks
                WHERE version = $1
                """, [.text(version)])
        }
        return rows.count == 0 ? nil : Self.codebook(rows, 0)
    }

    private static func codebook(_ rows: PostgresRows, _ row: Int) -> StoredCodebook {
        StoredCodebook(version: rows.text(row, 0) ?? "", bytes: rows.bytes(row, 1) ?? [], createdAt: rows.double(row, 2) ?? 0,
                       modelID: rows.text(row, 3), modelRevision: rows.text(row, 4), previousVersion: rows.text(row, 5),
                       mapping: rows.text(row, 6))
    }

    /// Runs `body` on a pooled connection once the schema is in place, and keeps `isAvailable` current.
    private func withConnection<R>(_ body: (PostgresConnection) throws(StoreError) -> R) throws(StoreError) -> R {
        do {
            if !migrated.load(ordering: .relaxed) { try migrate() }
            let result = try pool.withConnection(body)
            available.store(true, ordering: .relaxed)
            return result
        } catch .unavailable(let message) {
            available.store(false, ordering: .relaxed)
            throw .unavailable(message)
        }
    }

    /// Creates or updates the schema; refuses a newer one.
    func migrate() throws(StoreError) {
        try pool.withConnection { connection throws(StoreError) in
            try connection.transaction { () throws(StoreError) in
                // One replica at a time; released at commit.
                try connection.execute("SELECT pg_advisory_xact_lock(7402596314), 1; CREATE TABLE IF NOT EXISTS omniembed_schema (version integer NOT NULL)")
                let rows = try connection.query(nil, "SELECT max(version) FROM omniembed_schema")
                let version = rows.int(0, 0) ?? 0
                guard version <= Self.migrations.count else {
                    throw .failed("the database's schema is version \(version); this release knows up to \(Self.migrations.count)")
                }
                for migration in Self.migrations[version...] { try connection.execute(migration) }
                if version < Self.migrations.count {
                    try connection.execute("DELETE FROM omniembed_schema; INSERT INTO omniembed_schema VALUES (\(Self.migrations.count))")
                }
            }
        }
        migrated.store(true, ordering: .relaxed)
        available.store(true, ordering: .relaxed)
    }

    func vectors(_ ids: [String]) throws(StoreError) -> [(id: String, vector: ItemStore.StoredVector)] {
        var found: [(id: String, vector: ItemStore.StoredVector)] = []
        for chunk in Self.chunks(ids) {
            let rows = try withConnection { connection throws(StoreError) in
                try connection.query("vectors", "SELECT id, model_id, revision, embedding, semantic_id, codebook_version FROM items WHERE id = ANY($1::text[])",
                                     [.text(Self.arrayLiteral(chunk))])
            }
            var names = StoreCoding.Names()
            found.reserveCapacity(found.count + rows.count)
            for row in 0..<rows.count {
                found.append((rows.text(row, 0) ?? "", ItemStore.StoredVector(
                    modelID: rows.withBytes(row, 1) { names.shared($0) }, revision: rows.withBytes(row, 2) { names.shared($0) },
                    embedding: try rows.withBytes(row, 3) { raw throws(StoreError) in try StoreCoding.floats(raw, column: "embedding") },
                    semanticID: rows.isNull(row, 4) ? nil : rows.withBytes(row, 4) { StoreCoding.codes($0) },
                    codebookVersion: rows.isNull(row, 5) ? nil : rows.withBytes(row, 5) { names.shared($0) })))
            }
        }
        return found
    }

    func records(_ ids: [String]) throws(StoreError) -> [ItemStore.Record] {
        var found: [ItemStore.Record] = []
        for chunk in Self.chunks(ids) {
            let rows = try withConnection { connection throws(StoreError) in
                try connection.query("records", "\(StoreCoding.recordSelect) WHERE i.id = ANY($1::text[])",
                                     [.text(Self.arrayLiteral(chunk))])
            }
            for row in 0..<rows.count { found.append(try Self.record(rows, row)) }
        }
        return found
    }

    func records(after id: String?, limit: Int) throws(StoreError) -> [ItemStore.Record] {
        let rows = try withConnection { connection throws(StoreError) in
            // In the primary key's order (the database's collation), so that each page is an index range.
            try connection.query("records_after", "\(StoreCoding.recordSelect) WHERE i.id > $1 ORDER BY i.id LIMIT $2",
                                 [.text(id ?? ""), .text(String(limit))])
        }
        return try (0..<rows.count).map { row throws(StoreError) in try Self.record(rows, row) }
    }

    private static func record(_ rows: PostgresRows, _ row: Int) throws(StoreError) -> ItemStore.Record {
        func vector(_ column: Int, _ name: String) throws(StoreError) -> [Float]? {
            guard !rows.isNull(row, column) else { return nil }
            return try rows.withBytes(row, column) { raw throws(StoreError) in try StoreCoding.floats(raw, column: name) }
        }
        return ItemStore.Record(
            id: rows.text(row, 0) ?? "", contentHash: rows.text(row, 1) ?? "", modelID: rows.text(row, 2) ?? "",
            revision: rows.text(row, 3) ?? "", embedding: try vector(4, "embedding") ?? [],
            modalities: Modalities(text: try vector(5, "text_vector"), image: try vector(6, "image_vector"),
                                   audio: try vector(7, "audio_vector")),
            semanticID: rows.text(row, 8).map(StoreCoding.codes), codebookVersion: rows.text(row, 9),
            truncated: rows.bool(row, 10) ?? false, images: rows.int(row, 11) ?? 0,
            audioSeconds: rows.double(row, 12) ?? 0, createdAt: rows.double(row, 13) ?? 0,
            updatedAt: rows.double(row, 14) ?? 0)
    }

    func embeddings(modelID: String, revision: String) throws(StoreError) -> (ids: [String], vectors: [Float], dimensions: Int) {
        try withConnection { connection throws(StoreError) in
            try connection.transaction { () throws(StoreError) in
                // A cursor, so that a bank of millions never sits in one result in memory twice.
                _ = try connection.query(nil, "DECLARE bank NO SCROLL CURSOR FOR SELECT id, embedding FROM items WHERE model_id = $1 AND revision = $2 ORDER BY id",
                                         [.text(modelID), .text(revision)])
                var ids: [String] = [], vectors: [Float] = [], dimensions = 0
                while true {
                    let rows = try connection.query(nil, "FETCH 10000 FROM bank")
                    if rows.count == 0 { break }
                    for row in 0..<rows.count {
                        let vector = try rows.withBytes(row, 1) { raw throws(StoreError) in try StoreCoding.floats(raw, column: "embedding") }
                        if dimensions == 0 { dimensions = vector.count }
                        guard vector.count == dimensions else {
                            throw .failed("item \(rows.text(row, 0) ?? ""): \(vector.count) dimensions, others \(dimensions)")
                        }
                        ids.append(rows.text(row, 0) ?? "")
                        vectors.append(contentsOf: vector)
                    }
                }
                return (ids, vectors, dimensions)
            }
        }
    }

    func revisions() throws(StoreError) -> [(modelID: String, revision: String, items: Int)] {
        let rows = try withConnection { connection throws(StoreError) in
            try connection.query("revisions", "SELECT model_id, revision, count(*) AS n FROM items GROUP BY model_id, revision ORDER BY n DESC")
        }
        return (0..<rows.count).map { (rows.text($0, 0) ?? "", rows.text($0, 1) ?? "", rows.int($0, 2) ?? 0) }
    }

    func delete(_ id: String) throws(StoreError) -> Bool {
        guard !id.utf8.contains(0) else { return false }
        let rows = try withConnection { connection throws(StoreError) in
            try connection.transaction { () throws(StoreError) in
                _ = try connection.query("delete_modalities", "DELETE FROM item_modalities WHERE id = $1", [.text(id)])
                return try connection.query("delete", "DELETE FROM items WHERE id = $1 RETURNING 1", [.text(id)])
            }
        }
        return rows.count > 0
    }

    func count() throws(StoreError) -> Int {
        try withConnection { connection throws(StoreError) in
            try connection.query("count", "SELECT count(*) FROM items").int(0, 0) ?? 0
        }
    }

    func upsert(_ records: [ItemStore.Record]) throws(StoreError) {
        for record in records where record.id.utf8.contains(0) {
            throw .failed("item id \(record.id.debugDescription): PostgreSQL text cannot hold a NUL")
        }
        try withConnection { connection throws(StoreError) in
            try connection.transaction { () throws(StoreError) in
                for record in records {
                    func vector(_ vector: [Float]?) -> PostgresConnection.Value { vector.map { .bytes(StoreCoding.bytes($0)) } ?? .null }
                    _ = try connection.query("upsert_item", Self.upsertItem, [
                        .text(record.id), .text(record.contentHash), .text(record.modelID), .text(record.revision),
                        vector(record.embedding), record.semanticID.map { .text(StoreCoding.codes($0)) } ?? .null,
                        record.codebookVersion.map { .text($0) } ?? .null, .text(record.truncated ? "true" : "false"),
                        .text(String(record.images)), .text("\(record.audioSeconds)"), .text("\(record.createdAt)"),
                        .text("\(record.updatedAt)"),
                    ])
                    let modalities = record.modalities
                    if modalities.present.isEmpty {
                        _ = try connection.query("delete_modalities", "DELETE FROM item_modalities WHERE id = $1", [.text(record.id)])
                    } else {
                        _ = try connection.query("upsert_modalities", Self.upsertModalities, [
                            .text(record.id), vector(modalities.text), vector(modalities.image), vector(modalities.audio),
                        ])
                    }
                }
            }
        }
    }

    private static let upsertItem = StoreCoding.upsertItem((1...12).map { "$\($0)" })
    private static let upsertModalities = StoreCoding.upsertModalities((1...4).map { "$\($0)" })

    /// `ids` a thousand at a time, without those PostgreSQL text cannot hold (a NUL): such an id is not stored.
    private static func chunks(_ ids: [String]) -> [ArraySlice<String>] {
        let storable = ids.filter { !$0.utf8.contains(0) }
        return stride(from: 0, to: storable.count, by: 1000).map { storable[$0..<min($0 + 1000, storable.count)] }
    }

    /// A `text[]` literal: each element quoted, with `\` and `"` escaped.
    static func arrayLiteral(_ items: ArraySlice<String>) -> String {
        var bytes: [UInt8] = [UInt8(ascii: "{")]
        bytes.reserveCapacity(items.reduce(2) { $0 + $1.utf8.count + 3 })
        for (index, item) in items.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes.append(UInt8(ascii: "\""))
            for byte in item.utf8 {
                if byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "\"") { bytes.append(UInt8(ascii: "\\")) }
                bytes.append(byte)
            }
            bytes.append(UInt8(ascii: "\""))
        }
        bytes.append(UInt8(ascii: "}"))
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension Duration {
    var milliseconds: Int { Int(components.seconds) * 1000 + Int(components.attoseconds / 1_000_000_000_000_000) }
}
