import Foundation
import GRDB
import Locking
@testable import Embedding
import Testing

@Suite struct ItemStoreTests {
    func record(_ id: String, _ seed: Float, at time: Double = 1000) -> ItemStore.Record {
        let vector = (0..<384).map { Float($0) * seed }
        return ItemStore.Record(id: id, contentHash: "hash-\(id)-\(seed)", modelID: "model", revision: "r1", embedding: vector,
                                modalities: Modalities(text: vector, audio: vector.map { -$0 }), semanticID: [3, 1, 4],
                                truncated: seed > 1, images: 0, audioSeconds: 2.5, createdAt: time, updatedAt: time)
    }

    @Test(arguments: TestBank.allCases)
    func recordsRoundTripAndSurviveReopening(_ bank: TestBank) async throws {
        let backend = try bank.fresh()
        do {
            let store = try ItemStore(backend)
            try await store.put([record("a", 0.5), record("b", 2)])
        }
        let reopened = try ItemStore(backend)
        let found = try reopened.records(["a", "b", "missing"])
        #expect(found["a"] == record("a", 0.5))
        #expect(found["b"] == record("b", 2))
        #expect(found["missing"] == nil)
        #expect(try reopened.count() == 2)
    }

    /// Ids are bound with their length: one that differs from another only after a NUL is another item (the
    /// service refuses such ids at every entry; the store stays right whatever it is given).
    @Test(arguments: TestBank.allCases)
    func idsAreBoundWithTheirLength(_ bank: TestBank) async throws {
        let store = try ItemStore(try bank.fresh())
        try await store.put([record("victim", 0.5)])
        // SQLite stores the longer id as another item; PostgreSQL's text cannot hold it and refuses the write.
        if bank == .sqlite {
            try await store.put([record("victim\u{0}x", 0.7)])
        } else {
            await #expect(throws: EmbeddingError.self) { try await store.put([record("victim\u{0}x", 0.7)]) }
        }
        #expect(try store.record("victim")?.contentHash == "hash-victim-0.5")
        #expect(try store.delete("victim\u{0}junk") == false)
        #expect(try store.record("victim")?.contentHash == "hash-victim-0.5")
        #expect(try store.vectors(["victim"])[0]?.embedding == record("victim", 0.5).embedding)
    }

    /// Every id entry point shares one rule: 1 to `maxBytes` bytes, no control characters.
    @Test func itemIDRule() {
        for good in ["v42", "ünïcødé", "a b", String(repeating: "x", count: 256)] {
            #expect(throws: Never.self) { try ItemID.check(good, field: "id") }
        }
        for bad in ["", "victim\u{0}x", "a\u{1F}", "tab\there", "del\u{7F}", String(repeating: "x", count: 257)] {
            #expect(throws: EmbeddingError.self, "\(bad.debugDescription)") { try ItemID.check(bad, field: "id") }
        }
        #expect(throws: Never.self) { try ItemID.check(String(repeating: "x", count: 300), field: "id", maxBytes: 300) }
    }

    @Test(arguments: TestBank.allCases)
    func replacingAnItemKeepsItsCreationTime(_ bank: TestBank) async throws {
        let store = try ItemStore(try bank.fresh())
        try await store.put([record("a", 0.5, at: 1000)])
        try await store.put([record("a", 0.7, at: 2000)])
        let stored = try #require(try store.record("a"))
        #expect(stored.contentHash == "hash-a-0.7" && stored.createdAt == 1000 && stored.updatedAt == 2000)
    }

    /// The vector cache in front of the store never serves what a later write or delete replaced.
    @Test(arguments: TestBank.allCases)
    func cachedVectorsFollowWritesAndDeletes(_ bank: TestBank) async throws {
        let backend = try bank.fresh()
        let store = try ItemStore(backend, cacheItems: 10)
        try await store.put([record("a", 0.5), record("b", 2)])
        #expect(try store.vectors(["a", "b", "zz", "a"]).map { $0?.embedding }
                == [record("a", 0.5).embedding, record("b", 2).embedding, nil, record("a", 0.5).embedding])
        var replaced = record("a", 0.7)
        replaced.codebookVersion = "v2"
        try await store.put([replaced])
        let a = try #require(try store.vectors(["a"])[0])
        #expect(a.embedding == replaced.embedding && a.semanticID == [3, 1, 4] && a.codebookVersion == "v2")
        #expect(try store.delete("a"))
        #expect(try store.vectors(["a"]) == [nil])
        // What another process wrote is read from the database on a miss.
        let other = try ItemStore(backend)
        try await other.put([record("c", 3)])
        #expect(try store.vectors(["c"])[0]?.embedding == record("c", 3).embedding)
        let revisions = try store.revisions()
        #expect(revisions.count == 1 && revisions[0].items == 2)
        let all = try store.embeddings(modelID: "model", revision: "r1")
        #expect(all.ids == ["b", "c"] && all.dimensions == 384 && all.vectors.count == 2 * 384)
    }

    @Test(arguments: TestBank.allCases)
    func deleteSaysWhetherTheItemExisted(_ bank: TestBank) async throws {
        let store = try ItemStore(try bank.fresh())
        try await store.put([record("a", 1)])
        #expect(try store.delete("a"))
        #expect(try !store.delete("a"))
        #expect(try store.record("a") == nil)
    }

    /// Concurrent writers are group-committed; every acknowledged item is there.
    @Test(arguments: TestBank.allCases)
    func concurrentPutsAreAllCommitted(_ bank: TestBank) async throws {
        let store = try ItemStore(try bank.fresh())
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<32 {
                group.addTask { try await store.put((0..<10).map { self.record("w\(writer)-\($0)", 1) }) }
            }
            try await group.waitForAll()
        }
        #expect(try store.count() == 320)
    }

    @Test func anUnwritableLocationIsAClearError() {
        #expect(throws: (any Error).self) { try ItemStore(path: "/proc/omniembed/items.sqlite") }
    }

    /// A bank written by a newer release (a schema version or migration this one does not know) is refused.
    @Test(arguments: TestBank.allCases)
    func aNewerSchemaIsRefused(_ bank: TestBank) async throws {
        let backend = try bank.fresh()
        do {
            let store = try ItemStore(backend)
            try await store.put([record("a", 1)])
        }
        switch backend {
        case .sqlite(let path, _):
            let connection = try DatabaseQueue(path: path)
            try await connection.write { try $0.execute(sql: "INSERT INTO grdb_migrations VALUES ('v9: from the future')") }
        case .postgres(let settings):
            let connection = try PostgresConnection(parameters: [("dbname", settings.url), ("password", settings.password ?? "")])
            try connection.execute("UPDATE omniembed_schema SET version = 99")
        }
        #expect(throws: (any Error).self) { try ItemStore(backend) }
    }

    /// Replicas starting together migrate one at a time: every one opens the new database.
    @Test func replicasMigrateAFreshDatabaseTogether() async throws {
        let backend = try TestBank.postgres.fresh()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<6 {
                group.addTask { try await ItemStore(backend).put([self.record("r\(index)", 1)]) }
            }
            try await group.waitForAll()
        }
        #expect(try ItemStore(backend).count() == 6)
    }

    /// With PostgreSQL out of reach the store opens anyway, says it is unavailable, and every call that needs the
    /// database is a 503 `store_unavailable` (never a crash, never a hang past the timeouts).
    @Test func anUnreachableDatabaseIsUnavailableNotFatal() async throws {
        let settings = ItemStore.PostgresSettings(url: "postgresql://omniembed@127.0.0.1:1/omniembed", password: "secret",
                                                  poolSize: 2, statementTimeout: .seconds(2), connectTimeout: .seconds(1))
        let store = try ItemStore(.postgres(settings))
        #expect(!store.isAvailable && store.location == "postgresql://omniembed@127.0.0.1:1/omniembed")
        let error = await #expect(throws: EmbeddingError.self) { try await store.put([self.record("a", 1)]) }
        #expect(error?.status == 503 && error?.code == "store_unavailable")
        #expect(throws: EmbeddingError.self) { try store.vectors(["a"]) }
        #expect(throws: EmbeddingError.self) { try store.delete("a") }
    }

    @Test func passwordsNeverShowInTheLocation() {
        let settings = ItemStore.PostgresSettings(url: "postgresql://ranker:hunter2@db.internal:5432/bank", password: nil,
                                                  poolSize: 1, statementTimeout: .seconds(1), connectTimeout: .seconds(1))
        #expect(settings.redactedURL == "postgresql://ranker:***@db.internal:5432/bank")
    }

    /// A codebook saved to the shared bank is announced to every other store on it (NOTIFY), kept with its
    /// mapping, and listed newest first; SQLite's bank leaves codebooks to codebook.path.
    @Test func codebooksAreSharedThroughThePostgresBank() async throws {
        let backend = try TestBank.postgres.fresh()
        let (writer, reader) = (try ItemStore(backend), try ItemStore(backend))
        defer { writer.close(); reader.close() }
        let heard = Locked<[String]>([])
        reader.watchCodebooks { version in heard.withLock { $0.append(version) } }
        #expect(writer.sharesCodebooks && reader.sharesCodebooks)
        let first = StoredCodebook(version: "v1", bytes: [1, 2, 3], createdAt: 100, modelID: "m", modelRevision: "r")
        let second = StoredCodebook(version: "v2", bytes: [4, 5], createdAt: 200, modelID: "m", modelRevision: "r",
                                    previousVersion: "v1", mapping: #"{"levels": []}"#)
        try writer.saveCodebook(first)
        try writer.saveCodebook(second)
        try writer.saveCodebook(first)  // kept already: left as it is
        #expect(try reader.codebooks(newest: 5) == [second, first])
        #expect(try reader.codebook(version: "v2") == second && reader.codebook(version: "v9") == nil)
        let deadline = ContinuousClock.now + .seconds(10)
        while heard.withLock({ $0.last }) != "v2" && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(heard.withLock { $0.last } == "v2")

        let sqlite = try ItemStore(try TestBank.sqlite.fresh())
        #expect(!sqlite.sharesCodebooks)
        #expect(throws: EmbeddingError.self) { try sqlite.saveCodebook(first) }
    }

    /// The whole bank a page at a time, every record once, in the bank's id order.
    @Test(arguments: TestBank.allCases)
    func pagesCoverTheBankOnce(_ bank: TestBank) async throws {
        let store = try ItemStore(try bank.fresh())
        defer { store.close() }
        let ids = (0..<25).map { "p\($0)" } + ["ünï", "a b"]
        try await store.put(ids.map { record($0, 0.25) })
        var seen: [String] = []
        try store.forEachPage(pageSize: 4) { page in
            #expect(page.count <= 4)
            seen += page.map(\.id)
        }
        #expect(seen.sorted() == ids.sorted() && Set(seen).count == seen.count)
        #expect(try store.records(["p3"])["p3"] == record("p3", 0.25))
    }

    /// Stored semantic IDs read from a column's bytes as from its text, whatever the column holds.
    @Test func codesReadFromBytesAsFromText() {
        for text in ["3,1,4", "", "0", "12,,7,", ",5", "007,10", "3,-1,4", "1 2", "x", "99999999999999999999,2",
                     "123456789012345678,1", String(repeating: "1,", count: 300)] {
            let bytes = Array(text.utf8)
            #expect(bytes.withUnsafeBytes { StoreCoding.codes($0) } == StoreCoding.codes(text), "\(text)")
        }
    }

    /// Batch reads name ids in one array parameter: quotes, backslashes, commas, braces and the word NULL in an id
    /// are that id's characters, on both backends.
    @Test(arguments: TestBank.allCases)
    func batchReadsFindIdsWithTheArraySyntaxInThem(_ bank: TestBank) async throws {
        let store = try ItemStore(try bank.fresh())
        defer { store.close() }
        let ids = ["q\"uote", "back\\slash", "c,o{m}a", "NULL", " spaced ", "\\\"", "plain"]
        try await store.put(ids.enumerated().map { record($1, Float($0) + 0.5) })
        let vectors = try store.vectors(ids + ["q", "back\\\\slash"])
        #expect(vectors.prefix(ids.count).enumerated().allSatisfy { $1?.embedding == record(ids[$0], Float($0) + 0.5).embedding })
        #expect(vectors.suffix(2).allSatisfy { $0 == nil })
        #expect(Set(try store.records(ids).keys) == Set(ids))
    }

    /// A bank written before the per-modality vectors moved to a table of their own opens with every record as it
    /// was (the migration moves them), on both backends.
    @Test(arguments: TestBank.allCases)
    func aBankOfTheOlderSchemaIsMigratedIntact(_ bank: TestBank) async throws {
        let backend = try bank.fresh()
        let old = record("old", 0.5)
        func literal(_ vector: [Float]) -> String {
            StoreCoding.bytes(vector).map { String(format: "%02x", $0) }.joined()
        }
        let values = "'old', '\(old.contentHash)', 'model', 'r1', X'\(literal(old.embedding))', X'\(literal(old.modalities.text!))', NULL, X'\(literal(old.modalities.audio!))', '3,1,4', NULL, 0, 0, 2.5, 1000, 1000"
        let columns = "id, content_hash, model_id, revision, embedding, text_vector, image_vector, audio_vector, semantic_id, codebook_version, truncated, images, audio_seconds, created_at, updated_at"
        switch backend {
        case .sqlite(let path, _):
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            let queue = try DatabaseQueue(path: path)
            try await queue.write { db in
                try db.execute(sql: """
                    CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
                    INSERT INTO grdb_migrations VALUES ('v1'), ('v2: codebook version of the semantic ID');
                    CREATE TABLE items (id TEXT PRIMARY KEY NOT NULL, content_hash TEXT NOT NULL, model_id TEXT NOT NULL,
                        revision TEXT NOT NULL, embedding BLOB NOT NULL, text_vector BLOB, image_vector BLOB, audio_vector BLOB,
                        semantic_id TEXT, truncated INTEGER NOT NULL, images INTEGER NOT NULL, audio_seconds REAL NOT NULL,
                        created_at REAL NOT NULL, updated_at REAL NOT NULL, codebook_version TEXT);
                    INSERT INTO items (\(columns)) VALUES (\(values));
                    """)
            }
        case .postgres(let settings):
            let connection = try PostgresConnection(parameters: [("dbname", settings.url), ("password", settings.password ?? "")])
            try connection.execute("""
                CREATE TABLE omniembed_schema (version integer NOT NULL); INSERT INTO omniembed_schema VALUES (2);
                \(PostgresBackend.migrations[0]) \(PostgresBackend.migrations[1])
                INSERT INTO items (\(columns)) VALUES (\(values.replacingOccurrences(of: "X'", with: "'\\x").replacingOccurrences(of: ", 0, 0,", with: ", false, 0,")));
                """)
        }
        let store = try ItemStore(backend)
        defer { store.close() }
        #expect(try store.record("old") == old)
        if case .postgres(let settings) = backend {
            // Ids compare byte by byte, as in SQLite, whatever the database's locale.
            let connection = try PostgresConnection(parameters: [("dbname", settings.url), ("password", settings.password ?? "")])
            let collations = try connection.query(nil, "SELECT table_name, collation_name FROM information_schema.columns WHERE column_name = 'id' AND table_name IN ('items', 'item_modalities') ORDER BY table_name")
            #expect(collations.count == 2 && (0..<collations.count).allSatisfy { collations.text($0, 1) == "C" })
        }
        try await store.put([record("new", 2)])
        #expect(try store.record("new") == record("new", 2) && store.count() == 2)
    }
}
