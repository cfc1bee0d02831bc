import Foundation
@testable import Embedding
import Testing

@Suite struct ItemStoreTests {
    func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("omniembed-store-\(UUID().uuidString)/items.sqlite").path
    }

    func record(_ id: String, _ seed: Float, at time: Double = 1000) -> ItemStore.Record {
        let vector = (0..<384).map { Float($0) * seed }
        return ItemStore.Record(id: id, contentHash: "hash-\(id)-\(seed)", modelID: "model", revision: "r1", embedding: vector,
                                modalities: Modalities(text: vector, audio: vector.map { -$0 }), semanticID: [3, 1, 4],
                                truncated: seed > 1, images: 0, audioSeconds: 2.5, createdAt: time, updatedAt: time)
    }

    @Test func recordsRoundTripAndSurviveReopening() async throws {
        let path = temporaryPath()
        do {
            let store = try ItemStore(path: path)
            try await store.put([record("a", 0.5), record("b", 2)])
        }
        let reopened = try ItemStore(path: path)
        let found = try reopened.records(["a", "b", "missing"])
        #expect(found["a"] == record("a", 0.5))
        #expect(found["b"] == record("b", 2))
        #expect(found["missing"] == nil)
        #expect(try reopened.count() == 2)
    }

    /// Ids are bound with their length: one that differs from another only after a NUL is another item (the
    /// service refuses such ids at every entry; the store stays right whatever it is given).
    @Test func idsAreBoundWithTheirLength() async throws {
        let store = try ItemStore(path: temporaryPath())
        try await store.put([record("victim", 0.5)])
        try await store.put([record("victim\u{0}x", 0.7)])
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

    @Test func replacingAnItemKeepsItsCreationTime() async throws {
        let store = try ItemStore(path: temporaryPath())
        try await store.put([record("a", 0.5, at: 1000)])
        try await store.put([record("a", 0.7, at: 2000)])
        let stored = try #require(try store.record("a"))
        #expect(stored.contentHash == "hash-a-0.7" && stored.createdAt == 1000 && stored.updatedAt == 2000)
    }

    /// The vector cache in front of the store never serves what a later write or delete replaced.
    @Test func cachedVectorsFollowWritesAndDeletes() async throws {
        let path = temporaryPath()
        let store = try ItemStore(path: path, cacheItems: 10)
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
        let other = try ItemStore(path: path)
        try await other.put([record("c", 3)])
        #expect(try store.vectors(["c"])[0]?.embedding == record("c", 3).embedding)
        let revisions = try store.revisions()
        #expect(revisions.count == 1 && revisions[0].items == 2)
        let all = try store.embeddings(modelID: "model", revision: "r1")
        #expect(all.ids == ["b", "c"] && all.dimensions == 384 && all.vectors.count == 2 * 384)
    }

    @Test func deleteSaysWhetherTheItemExisted() async throws {
        let store = try ItemStore(path: temporaryPath())
        try await store.put([record("a", 1)])
        #expect(try store.delete("a"))
        #expect(try !store.delete("a"))
        #expect(try store.record("a") == nil)
    }

    /// Concurrent writers are group-committed; every acknowledged item is there.
    @Test func concurrentPutsAreAllCommitted() async throws {
        let store = try ItemStore(path: temporaryPath())
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
}
