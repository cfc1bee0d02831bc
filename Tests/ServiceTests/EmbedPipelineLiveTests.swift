import Foundation
import Testing
@testable import Service
import TestSupport

/// `/embed` end to end: the store, Matryoshka sizes, encodings, batch invariance, partial failures and the
/// OpenAI-compatible route, over loopback.
extension ServiceLiveTests {
    struct EmbedBody: Decodable {
        struct Vectors: Decodable { var text: [Float]?, image: [Float]?, audio: [Float]? }
        struct Failure: Decodable { var code: String, message: String }
        struct Item: Decodable {
            var id: String
            var embedding: [Float]?
            var modalities: Vectors?
            var cached: Bool?
            var error: Failure?
        }
        var data: [Item]
        var dimensions: Int
    }

    func embed(_ json: String, port: Int) throws -> (status: Int, head: String, body: EmbedBody?) {
        let client = try RawClient(port: port)
        client.send("POST /embed HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    + "Content-Length: \(json.utf8.count)\r\n\r\n\(json)")
        let response = try client.readResponse()
        return (response.status, response.rawHead, try? JSONDecoder().decode(EmbedBody.self, from: Data(response.body)))
    }

    func dot(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map(*).reduce(0, +) }

    @Test func unchangedItemsAreAnsweredFromTheStoreAcrossRestarts() async throws {
        let storePath = temporaryStorePath()
        let items = #"{"items": [{"id": "v1", "fields": {"title": "Grandma's apple pie", "tags": ["baking"]}}, {"id": "v2", "text": "a red bicycle"}]}"#
        var (service, port) = try await makeService(storePath: storePath)
        let first = try #require(try embed(items, port: port).body)
        #expect(first.data.map(\.cached) == [false, false])
        await service.shutdown()

        (service, port) = try await makeService(storePath: storePath)
        let second = try #require(try embed(items, port: port).body)
        #expect(second.data.map(\.cached) == [true, true])
        #expect(second.data.map(\.embedding) == first.data.map(\.embedding))
        // A changed item is encoded again; an item sent with `store: false` is not kept.
        let changed = try #require(try embed(#"{"items": [{"id": "v2", "text": "a blue bicycle"}]}"#, port: port).body)
        #expect(changed.data[0].cached == false && dot(changed.data[0].embedding!, first.data[1].embedding!) < 0.999)
        _ = try embed(#"{"items": [{"id": "v3", "text": "not kept"}], "store": false}"#, port: port)
        #expect(try get("/items/v3", port: port).status == 404)

        let stored = try get("/items/v1", port: port)
        #expect(stored.status == 200)
        let record = try JSONSerialization.jsonObject(with: Data(stored.body.utf8)) as! [String: Any]
        #expect((record["embedding"] as? [Double])?.count == 384)
        #expect(record["modalities_used"] as? [String] == ["text"])
        let delete = try RawClient(port: port)
        delete.send("DELETE /items/v1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        #expect(try delete.readResponse().status == 204)
        #expect(try get("/items/v1", port: port).status == 404)
        await service.shutdown()
    }

    @Test func matryoshkaSizesArePrefixesAndBase64CarriesTheSameFloats() async throws {
        let (service, port) = try await makeService()
        let full = try #require(try embed(#"{"items": [{"id": "a", "text": "jazz for a rainy evening"}], "store": false}"#, port: port).body)
        let small = try #require(try embed(#"{"items": [{"id": "a", "text": "jazz for a rainy evening"}], "store": false, "dimensions": 128}"#, port: port).body)
        let vector = try #require(full.data[0].embedding)
        let prefix = try #require(small.data[0].embedding)
        #expect(small.dimensions == 128 && prefix.count == 128)
        #expect(abs(dot(prefix, prefix) - 1) < 1e-5)
        let norm = dot(Array(vector.prefix(128)), Array(vector.prefix(128))).squareRoot()
        #expect(zip(prefix, vector.prefix(128)).allSatisfy { abs($0 - $1 / norm) < 1e-6 })

        let json = #"{"items": [{"id": "a", "text": "jazz for a rainy evening"}], "store": false, "encoding_format": "base64"}"#
        let client = try RawClient(port: port)
        client.send("POST /embed HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n\r\n\(json)")
        let body = try JSONSerialization.jsonObject(with: Data(try client.readResponse().body)) as! [String: Any]
        let encoded = try #require(((body["data"] as? [[String: Any]])?.first?["embedding"]) as? String)
        let bytes = try #require(Data(base64Encoded: encoded))
        let decoded = bytes.withUnsafeBytes { raw in
            (0..<bytes.count / 4).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
        #expect(decoded == vector)
        await service.shutdown()
    }

    /// The same item alone and among 63 others of mixed lengths, in concurrent requests: within 1e-5.
    @Test func outputsDoNotDependOnWhatElseIsBatched() async throws {
        let (service, port) = try await makeService()
        let probe = #"{"id": "probe", "text": "a quiet lake at dawn", "fields": {"title": "Morning", "tags": ["nature", "calm"]}}"#
        let alone = try #require(try embed(#"{"items": [\#(probe)], "store": false}"#, port: port).body?.data[0].embedding)
        let others = (0..<63).map { i in
            #"{"id": "o\#(i)", "text": "\#(String(repeating: "word\(i) ", count: 1 + i * 2))"}"#
        }
        let batched = #"{"items": [\#((others.prefix(31) + [probe] + others.dropFirst(31)).joined(separator: ", "))], "store": false}"#
        async let a = Task { try embed(batched, port: port) }.value
        async let b = Task { try embed(#"{"items": [\#(others.prefix(20).joined(separator: ", "))], "store": false}"#, port: port) }.value
        let (response, _) = try await (a, b)
        let inBatch = try #require(response.body?.data.first { $0.id == "probe" }?.embedding)
        #expect(zip(alone, inBatch).map { abs($0 - $1) }.max()! <= 1e-5)
        await service.shutdown()
    }

    @Test func withPartialABadItemFailsAloneAndTimingHeadersAreSent() async throws {
        let (service, port) = try await makeService()
        let json = #"{"items": [{"id": "bad", "images": [{"data": "AAAA"}]}, {"id": "good", "text": "fine"}], "partial": true, "store": false}"#
        let response = try embed(json, port: port)
        #expect(response.status == 200)
        let body = try #require(response.body)
        #expect(body.data[0].error?.code == "unsupported_media" && body.data[0].embedding == nil)
        #expect(body.data[0].error?.message.contains("items[0] (bad)") == true)
        #expect(body.data[1].embedding?.count == 384)
        #expect(response.head.contains("X-Queue-Time-Ms: ") && response.head.contains("X-Inference-Time-Ms: "))
        // Without `partial` the same request fails whole, naming the item.
        let strict = try post("/embed", port: port, json: json.replacingOccurrences(of: #""partial": true"#, with: #""partial": false"#))
        #expect(strict.status == 422 && errorCode(strict.body) == "unsupported_media")
        let metrics = try get("/metrics", port: port).body
        for name in ["omniembed_queue_wait_seconds_count{tower=\"text\"}", "omniembed_inference_seconds_count{tower=\"text\"}",
                     "omniembed_batch_items_bucket{tower=\"text\"", "omniembed_queue_depth{tower=\"image\"}",
                     "omniembed_tokenize_seconds_count", "omniembed_fusion_seconds_count"] {
            #expect(metrics.contains(name), "\(name)")
        }
        await service.shutdown()
    }

    @Test func openAIEmbeddingsMatchTheTextTower() async throws {
        let (service, port) = try await makeService()
        let text = "the quick brown fox"
        let native = try #require(try embed(#"{"items": [{"id": "t", "text": "\#(text)"}], "store": false, "dimensions": 256}"#, port: port).body?.data[0].embedding)
        let (status, body) = try post("/v1/embeddings", port: port,
                                      json: #"{"input": ["\#(text)", "another"], "model": "all-MiniLM-L6-v2", "dimensions": 256}"#)
        #expect(status == 200 && body["object"] as? String == "list")
        let data = try #require(body["data"] as? [[String: Any]])
        #expect(data.map { $0["index"] as? Int } == [0, 1] && data.allSatisfy { $0["object"] as? String == "embedding" })
        let vector = try #require(data[0]["embedding"] as? [Double]).map(Float.init)
        #expect(zip(vector, native).allSatisfy { abs($0 - $1) < 1e-6 })
        #expect(((body["usage"] as? [String: Any])?["prompt_tokens"] as? Int ?? 0) > 0)
        let single = try post("/v1/embeddings", port: port, json: #"{"input": "\#(text)", "model": "sentence-transformers/all-MiniLM-L6-v2"}"#)
        #expect(single.status == 200)
        let wrongModel = try post("/v1/embeddings", port: port, json: #"{"input": "x", "model": "text-embedding-3-small"}"#)
        #expect(wrongModel.status == 404 && errorCode(wrongModel.body) == "model_not_found")
        let tokens = try post("/v1/embeddings", port: port, json: #"{"input": [[1, 2, 3]], "model": "all-MiniLM-L6-v2"}"#)
        #expect(tokens.status == 400)
        await service.shutdown()
    }
}

extension ServiceLiveTests {
    /// The value of a metric line (`name{labels}`) in the service's exposition, 0 when absent.
    func metric(_ line: String, port: Int) throws -> Double {
        let body = try get("/metrics", port: port).body
        guard let found = body.split(separator: "\n").first(where: { $0.hasPrefix(line + " ") }) else { return 0 }
        return Double(found.dropFirst(line.count + 1)) ?? 0
    }

    /// Polls (bounded) until `condition` holds.
    func waitFor(_ what: String, _ condition: () throws -> Bool) async throws {
        for _ in 0..<3000 {
            if try condition() { return }
            try await Task.sleep(for: .milliseconds(5))
        }
        Issue.record("timed out waiting for \(what)")
    }

    /// A client that resets its connection while its image waits behind another request's has it dropped from
    /// the queue: the image tower never runs it (`omniembed_tower_failures_total{reason="cancelled"}`). (A client
    /// that only half-closes still gets its answer: see `aHalfClosedClientStillGetsItsEmbeddings`.)
    @Test func aDisconnectedClientsQueuedWorkIsDropped() async throws {
        let (service, port) = try await makeService()
        let photo = try base64("Tests/MediaTests/Fixtures/images/preprocess/coffee.jpg")
        let item = { (id: Int) in #"{"id": "busy\#(id)", "images": [{"data": "\#(photo)"}, {"data": "\#(photo)"}]}"# }
        let busy = #"{"items": [\#((0..<32).map(item).joined(separator: ", "))], "store": false}"#
        let worker = try RawClient(port: port)
        worker.send("POST /embed HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: \(busy.utf8.count)\r\n\r\n\(busy)")
        // The 64 images are queued in batches of 16: the queue holds a multiple of 16 until another job joins.
        let depth = #"omniembed_queue_depth{tower="image"}"#
        try await waitFor("the busy request's images to queue") { try metric(depth, port: port) >= 16 }

        let leaving = try RawClient(port: port)
        let json = #"{"items": [{"id": "gone", "images": [{"data": "\#(photo)"}]}], "store": false}"#
        leaving.send("POST /embed HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n\r\n\(json)")
        try await waitFor("the departing request's image to queue") {
            try metric(depth, port: port).truncatingRemainder(dividingBy: 16) == 1
        }
        leaving.reset()
        let cancelled = #"omniembed_tower_failures_total{tower="image",reason="cancelled"}"#
        try await waitFor("the departed client's image to be dropped") { try metric(cancelled, port: port) == 1 }
        #expect(try worker.readResponse().status == 200)
        #expect(try metric(#"omniembed_batch_items_sum{tower="image"}"#, port: port) == 1 + 64)  // warm-up + busy
        await service.shutdown()
    }
}
