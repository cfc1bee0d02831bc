import Embedding
import Foundation
import Testing
@testable import Service
import TestSupport

/// Hostile and edge-case requests over loopback: ids that would corrupt the store, numbers that overflow,
/// media that cost more than they weigh, clients that half-close, and the contract's promises.
extension ServiceLiveTests {
    func errorMessage(_ body: [String: Any]) -> String {
        (body["error"] as? [String: Any])?["message"] as? String ?? ""
    }

    func request(_ method: String, _ path: String, port: Int) throws -> Int {
        let client = try RawClient(port: port)
        client.send("\(method) \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n")
        return try client.readResponse().status
    }

    /// `victim\u0000x` would name `victim` in any C string on the way to the store: ids with control characters
    /// (or over `limits.maxIdBytes`) are refused wherever an id enters, and nothing stored changes.
    @Test func idsWithControlCharactersAreRefusedEverywhere() async throws {
        let (service, port) = try await makeService()
        _ = try post("/embed", port: port, json: #"{"items": [{"id": "victim", "text": "the original"}]}"#)
        let original = try get("/items/victim", port: port).body
        let long = String(repeating: "x", count: 257)
        let refused: [(String, String)] = [
            ("/embed", #"{"items": [{"id": "victim\u0000x", "text": "overwrite"}]}"#),
            ("/embed", #"{"items": [{"id": "tab\there", "text": "x"}]}"#),
            ("/embed", #"{"items": [{"id": "\#(long)", "text": "x"}]}"#),
            ("/match", #"{"user": {"history": ["victim\u0000"]}, "candidates": ["victim"]}"#),
            ("/match", #"{"user": {"history": ["victim"]}, "candidates": ["victim\u001f"]}"#),
            ("/match", #"{"user": {"history": ["victim"]}, "candidates": [{"id": "v\u007f", "text": "x"}]}"#),
            ("/user_embedding", #"{"user": {"history": ["victim\u0000junk"]}}"#),
        ]
        for (path, json) in refused {
            let (status, body) = try post(path, port: port, json: json)
            #expect(status == 422 && errorCode(body) == "invalid_id", "\(path) \(json.prefix(60)): \(status) \(body)")
        }
        #expect(try request("DELETE", "/items/victim%00junk", port: port) == 422)
        #expect(try request("GET", "/items/victim%0A", port: port) == 422)
        #expect(try request("GET", "/items/\(String(repeating: "y", count: 300))", port: port) == 422)
        #expect(try get("/items/victim", port: port).body == original)
        // The id rule reaches the partial mode too: the bad item fails alone, named.
        let (status, body) = try post("/embed", port: port, json: #"{"items": [{"id": "ok", "text": "x"}, {"id": "bad\u0000", "text": "y"}], "partial": true}"#)
        let data = try #require(body["data"] as? [[String: Any]])
        #expect(status == 200 && data[0]["embedding"] != nil && (data[1]["error"] as? [String: Any])?["code"] as? String == "invalid_id")
        await service.shutdown()
    }

    /// `"return": ["features"]`: the towers' raw outputs (image 1280 averaged over cover and frames, audio 200
    /// averaged over patches), computed even when the item is stored (the store does not keep them).
    @Test func featuresAreTheTowersRawOutputs() async throws {
        let (service, port) = try await makeService()
        let photo = try base64("Tests/MediaTests/Fixtures/images/preprocess/cat.jpg")
        let audio = try base64("Tests/MediaTests/Fixtures/audio/speech.wav")
        let json = #"{"items": [{"id": "f", "text": "a cat", "images": [{"data": "\#(photo)"}], "audio": {"data": "\#(audio)"}}, {"id": "t", "text": "only text"}], "return": ["embedding", "features"]}"#
        for round in 0..<2 {
            let (status, body) = try post("/embed", port: port, json: json)
            let data = try #require(body["data"] as? [[String: Any]], "\(status) \(body)")
            let features = try #require(data[0]["features"] as? [String: Any])
            #expect((features["image"] as? [Double])?.count == 1280 && (features["audio"] as? [Double])?.count == 200)
            #expect((features["image"] as? [Double])?.allSatisfy { $0.isFinite && $0 >= 0 } == true)  // ReLU6 outputs, pooled
            #expect(data[0]["cached"] as? Bool == false, "round \(round)")
            #expect((data[1]["features"] as? [String: Any])?.isEmpty == true)
        }
        let (status, body) = try post("/embed", port: port, json: #"{"items": [{"id": "t", "text": "x"}], "return": ["vectors"]}"#)
        #expect(status == 422 && errorMessage(body).contains("features"))
        await service.shutdown()
    }

    /// Vectors of any finite magnitude: identical inline vectors have cosine 1 (3e38's squares overflow, 1e-30's
    /// underflow), huge weights give finite features, and weights that are all zero over the recent items are a
    /// 422 on `/match` as on `/user_embedding`.
    @Test func numbersOfAnyMagnitudeGiveFiniteFeatures() async throws {
        let (service, port) = try await makeService()
        let shape: [Double] = (0..<384).map { (i: Int) -> Double in
            let sign: Double = i % 2 == 0 ? 1 : -1
            return Double(i % 7 + 1) / 7 * sign
        }
        for scale in [3e38 / 1.01, 1e-30] {
            let vector = "[" + shape.map { "\($0 * scale)" }.joined(separator: ", ") + "]"
            let (status, body) = try post("/match", port: port, json: #"""
                {"user": {"history_embeddings": [\#(vector), \#(vector)], "weights": [3e38, 3e38]},
                 "candidates": [{"id": "c", "embedding": \#(vector)}], "features": ["user_cos", "max_cos", "sim_top"]}
                """#)
            let row = try #require((body["data"] as? [[String: Any]])?.first, "\(scale): \(status) \(body)")
            #expect(abs((row["user_cos"] as? Double ?? 0) - 1) < 1e-5 && abs((row["max_cos"] as? Double ?? 0) - 1) < 1e-5, "\(scale): \(row)")
            let user = try post("/user_embedding", port: port, json: #"{"user": {"history_embeddings": [\#(vector)], "weights": [3e38]}}"#)
            let embedding = try #require(user.body["embedding"] as? [Double], "\(user)")
            let norm = embedding.reduce(0.0) { $0 + $1 * $1 }
            #expect(embedding.allSatisfy { $0.isFinite } && abs(norm - 1) < 1e-4)
        }
        let (e1, e2) = ("[1" + String(repeating: ", 0", count: 383) + "]", "[0, 1" + String(repeating: ", 0", count: 382) + "]")
        for path in ["/match", "/user_embedding"] {
            let json = #"{"user": {"history_embeddings": [\#(e1), \#(e2)], "weights": [0, 0]}, "candidates": [{"id": "c", "embedding": \#(e1)}]}"#
            let (status, body) = try post(path, port: port, json: json)
            #expect(status == 422 && errorCode(body) == "invalid_weights", "\(path): \(status) \(body)")
        }
        await service.shutdown()
    }

    /// RFC 9112 §9.6: a client that sends its request and half-closes still reads its embeddings.
    @Test func aHalfClosedClientStillGetsItsEmbeddings() async throws {
        let (service, port) = try await makeService()
        for (path, json) in [("/embed", #"{"items": [{"id": "h", "text": "half closed"}], "store": false}"#),
                             ("/v1/embeddings", #"{"input": "half closed", "model": "all-MiniLM-L6-v2"}"#)] {
            let client = try RawClient(port: port)
            client.send("POST \(path) HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                        + "Content-Length: \(json.utf8.count)\r\n\r\n\(json)")
            client.shutdownWrite()
            let response = try client.readResponse()
            #expect(response.status == 200, "\(path): \(String(decoding: response.body.prefix(200), as: UTF8.self))")
        }
        await service.shutdown()
    }

    /// A request's media are priced from their headers before anything is decoded: over the budget is a 413
    /// naming it; a WAV declaring 1 Hz is a 422; a passed deadline stops decoding before it starts.
    @Test func decodingIsBoundedByTheRequestsBudgetAndDeadline() async throws {
        var configuration = testConfiguration()
        configuration.embedding.pipeline.budget = DecodeBudget(maxPixels: 300_000, maxAudioSeconds: 4)
        let (service, port) = try await makeService(configuration)
        let photo = try base64("Tests/MediaTests/Fixtures/images/preprocess/coffee.jpg")
        let image = #"{"data": "\#(photo)"}"#
        let items = (0..<8).map { #"{"id": "p\#($0)", "images": [\#(image), \#(image)]}"# }.joined(separator: ", ")
        let (status, body) = try post("/embed", port: port, json: #"{"items": [\#(items)], "store": false}"#)
        #expect(status == 413 && errorCode(body) == "request_budget_exceeded" && errorMessage(body).contains("limits.maxRequestPixels"),
                "\(status) \(body)")
        func wav(rate: Int, frames: Int) -> String {
            var bytes: [UInt8] = []
            func u32(_ v: Int) { bytes += (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
            func u16(_ v: Int) { bytes += (0..<2).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
            bytes += Array("RIFF".utf8); u32(36 + frames * 2); bytes += Array("WAVEfmt ".utf8)
            u32(16); u16(1); u16(1); u32(rate); u32(rate * 2); u16(2); u16(16)
            bytes += Array("data".utf8); u32(frames * 2)
            bytes += (0..<frames).flatMap { i in [UInt8(truncatingIfNeeded: i * 37), UInt8(truncatingIfNeeded: i)] }
            return Data(bytes).base64EncodedString()
        }
        let slow = try post("/embed", port: port, json: #"{"items": [{"id": "w", "audio": {"data": "\#(wav(rate: 1, frames: 3))"}}]}"#)
        #expect(slow.status == 422 && errorMessage(slow.body).contains("4000 Hz"), "\(slow)")
        let long = (0..<2).map { #"{"id": "a\#($0)", "audio": {"data": "\#(wav(rate: 16000, frames: 40_000))"}}"# }.joined(separator: ", ")
        let overBudget = try post("/embed", port: port, json: #"{"items": [\#(long)], "store": false}"#)
        #expect(overBudget.status == 413 && errorMessage(overBudget.body).contains("limits.maxRequestAudioSeconds"), "\(overBudget)")

        let decoded = #"omniembed_decode_seconds_count{modality="audio"}"#
        let before = try metric(decoded, port: port)
        let late = try post("/embed", port: port, json: #"{"items": [{"id": "d", "audio": {"data": "\#(wav(rate: 16000, frames: 48_000))"}}], "timeout_ms": 1, "store": false}"#)
        #expect(late.status == 504, "\(late)")
        #expect(try metric(decoded, port: port) == before)  // nothing was decoded for it
        _ = try post("/embed", port: port, json: #"{"items": [{"id": "d", "audio": {"data": "\#(wav(rate: 16000, frames: 48_000))"}}], "store": false}"#)
        #expect(try metric(decoded, port: port) == before + 1)
        await service.shutdown()
    }

    /// Caches and proxies: every answer says `Cache-Control: no-store` unless its route says otherwise, and
    /// `Vary: Accept-Encoding` is on compressed and uncompressed answers alike.
    @Test func responsesSayHowToCacheThem() async throws {
        let (service, port) = try await makeService()
        _ = try post("/embed", port: port, json: #"{"items": [{"id": "c1", "text": "x"}]}"#)
        for path in ["/healthz", "/readyz", "/metrics", "/items/c1", "/items/absent"] {
            for accept in ["", "Accept-Encoding: gzip\r\n"] {
                let head = try get(path, port: port, headers: accept).head
                #expect(head.contains("\r\nCache-Control: no-store\r\n"), "\(path) \(accept)")
                #expect(head.contains("\r\nVary: Accept-Encoding\r\n"), "\(path) \(accept)")
            }
        }
        await service.shutdown()
    }
}
