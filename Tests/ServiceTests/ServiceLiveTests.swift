import Foundation
import Logging
import Testing
@testable import HTTP
@testable import Service
import TestSupport

/// A path inside the repository.
func repository(_ path: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../" + path).standardizedFileURL.path
}

/// A fixture file as base64.
func base64(_ path: String) throws -> String {
    try Data(contentsOf: URL(fileURLWithPath: repository(path))).base64EncodedString()
}

func temporaryStorePath() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("omniembed-test-\(UUID().uuidString)/items.sqlite").path
}

/// The assembled service over loopback, through a raw-socket client.
@Suite(.serialized) struct ServiceLiveTests {
    /// A started service on a free port, with `configuration` (``testConfiguration()`` by default) and its own
    /// item store (`storePath`, a new temporary one by default).
    func makeService(_ configuration: ServiceConfiguration? = nil, storePath: String? = nil) async throws -> (OmniEmbedService, Int) {
        var configuration = configuration ?? testConfiguration()
        if let storePath { configuration.store.path = storePath }
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let service = try OmniEmbedService(configuration: configuration, logger: logger)
        return (service, try await service.start())
    }

    /// The repository's models, a free port, a fresh store, and small limits the refusal tests reach.
    func testConfiguration() -> ServiceConfiguration {
        var configuration = ServiceConfiguration()
        configuration.store.path = temporaryStorePath()
        // Beside the store, so a codebook fitted in the working copy never leaks into a test.
        configuration.codebook.path = URL(fileURLWithPath: configuration.store.path).deletingLastPathComponent()
            .appendingPathComponent("codebook.safetensors").path
        configuration.http.port = 0
        configuration.shutdownGracePeriod = .seconds(3)
        configuration.modelDirectory = repository("models/all-MiniLM-L6-v2")
        configuration.image.directory = repository("models/efficientnet-lite0")
        configuration.image.labels = repository("config/labels/imagenet-1k.txt")
        configuration.audio.directory = repository("models/musicnn-mtt")
        configuration.audio.labels = repository("config/labels/mtt-50.txt")
        configuration.audio.maxSeconds = 5
        configuration.limits.maxImagesPerItem = 2
        configuration.limits.maxTexts = 4
        configuration.limits.maxItems = 64
        configuration.limits.maxTextBytes = 1000
        return configuration
    }

    func get(_ path: String, port: Int, headers: String = "") throws -> (status: Int, head: String, body: String) {
        let client = try RawClient(port: port)
        client.send("GET \(path) HTTP/1.1\r\nHost: localhost\r\n\(headers)\r\n")
        let response = try client.readResponse()
        return (response.status, response.rawHead, String(decoding: response.body, as: UTF8.self))
    }

    func post(_ path: String, port: Int, json: String, contentType: String = "application/json") throws
        -> (status: Int, body: [String: Any]) {
        let client = try RawClient(port: port)
        client.send("POST \(path) HTTP/1.1\r\nHost: localhost\r\nContent-Type: \(contentType)\r\n"
                    + "Content-Length: \(json.utf8.count)\r\n\r\n\(json)")
        let response = try client.readResponse()
        let body = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] ?? [:]
        return (response.status, body)
    }

    func errorCode(_ body: [String: Any]) -> String? {
        (body["error"] as? [String: Any])?["code"] as? String
    }

    @Test func tokenizeReturnsIDsAndTokensInOrder() async throws {
        let (service, port) = try await makeService()
        let long = String(repeating: "a ", count: 300)  // 300 pieces in 600 bytes
        let (status, body) = try post("/tokenize", port: port, json: #"{"texts": ["Hello, world!", "", "\#(long)"]}"#)
        #expect(status == 200)
        let data = try #require(body["data"] as? [[String: Any]])
        #expect(data.count == 3)
        #expect(data[0]["ids"] as? [Int] == [101, 7592, 1010, 2088, 999, 102])
        #expect(data[0]["tokens"] as? [String] == ["[CLS]", "hello", ",", "world", "!", "[SEP]"])
        #expect(data[0]["truncated"] as? Bool == false)
        #expect(data[1]["ids"] as? [Int] == [101, 102])
        #expect((data[2]["ids"] as? [Int])?.count == 256)
        #expect(data[2]["truncated"] as? Bool == true)
        await service.shutdown()
    }

    @Test func tokenizeRefusesBadRequestsClearly() async throws {
        let (service, port) = try await makeService()
        let cases: [(String, String, Int, String)] = [
            ("{\"texts\": [", "application/json", 400, "invalid_json"),
            ("{\"text\": [\"a\"]}", "application/json", 400, "invalid_json"),
            ("{\"texts\": [1, 2]}", "application/json", 400, "invalid_json"),
            ("{\"texts\": []}", "application/json", 422, "no_texts"),
            ("{\"texts\": [\"a\",\"b\",\"c\",\"d\",\"e\"]}", "application/json", 413, "too_many_texts"),
            ("{\"texts\": [\"ok\", \"\(String(repeating: "x", count: 1001))\"]}", "application/json", 413, "text_too_long"),
            ("texts=a", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        ]
        for (json, contentType, status, code) in cases {
            let response = try post("/tokenize", port: port, json: json, contentType: contentType)
            #expect(response.status == status, "\(json.prefix(40))")
            #expect(errorCode(response.body) == code, "\(json.prefix(40))")
        }
        let message = try post("/tokenize", port: port, json: "{\"texts\": [\"ok\", \"\(String(repeating: "x", count: 1001))\"]}")
        #expect(((message.body["error"] as? [String: Any])?["message"] as? String)?.contains("texts[1]") == true)
        await service.shutdown()
    }

    @Test func embedServesSentenceTransformersEmbeddings() async throws {
        let (service, port) = try await makeService()
        // Reference embeddings from sentence-transformers (the encoder's own fixtures).
        let fixtureFile = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../ModelsTests/Fixtures/embeddings-minilm.jsonl")
        let fixtures = try String(contentsOf: fixtureFile, encoding: .utf8).split(separator: "\n").prefix(3)
            .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let items = fixtures.enumerated().map { ["id": "item-\($0.offset)", "text": $0.element["text"] as! String] }
        let json = String(decoding: try JSONSerialization.data(withJSONObject: ["items": items]), as: UTF8.self)
        let (status, body) = try post("/embed", port: port, json: json)
        #expect(status == 200)
        #expect((body["model"] as? [String: Any])?["id"] as? String == "all-MiniLM-L6-v2+efficientnet-lite0+musicnn-mtt")
        #expect(((body["model"] as? [String: Any])?["revision"] as? String)?.count == 16)
        #expect(body["dimensions"] as? Int == 384)
        let data = try #require(body["data"] as? [[String: Any]])
        #expect(data.map { $0["id"] as? String } == ["item-0", "item-1", "item-2"])
        for (served, fixture) in zip(data, fixtures) {
            let embedding = try #require(served["embedding"] as? [Double])
            let reference = try #require(fixture["embedding"] as? [Double])
            #expect(embedding.count == 384)
            #expect(zip(embedding, reference).map(*).reduce(0, +) >= 0.99999)
        }
        #expect(((body["usage"] as? [String: Any])?["tokens"] as? Int ?? 0) > 0)
        await service.shutdown()
    }

    @Test func embedRefusesBadItemsClearly() async throws {
        let (service, port) = try await makeService()
        let cases: [(String, Int, String)] = [
            ("{\"items\": []}", 422, "no_items"),
            ("{\"items\": [{\"text\": \"a\"}]}", 400, "invalid_json"),
            ("{\"items\": [{\"id\": \"\", \"text\": \"a\"}]}", 422, "invalid_id"),
            ("{\"items\": [{\"id\": \"d\", \"text\": \"a\"}, {\"id\": \"d\", \"text\": \"b\"}]}", 422, "duplicate_id"),
            ("{\"items\": [{\"id\": \"a\", \"text\": \"a\"}], \"dimensions\": 100}", 422, "invalid_dimensions"),
            ("{\"items\": [{\"id\": \"a\", \"text\": \"a\"}], \"encoding_format\": \"hex\"}", 422, "invalid_encoding_format"),
            ("{\"items\": [{\"id\": \"a\", \"text\": \"a\"}], \"priority\": \"urgent\"}", 422, "invalid_priority"),
            ("{\"items\": [{\"id\": \"a\", \"text\": \"a\"}], \"timeout_ms\": 0}", 422, "invalid_timeout"),
            // 64 long texts cannot be encoded within a millisecond on any machine; one short text sometimes can.
            ("{\"items\": [\((0..<64).map { "{\"id\": \"t\($0)\", \"text\": \"\(String(repeating: "word\($0) ", count: 120))\"}" }.joined(separator: ","))], \"store\": false, \"timeout_ms\": 1}", 504, "timeout"),
            ("{\"items\": [\((0..<65).map { "{\"id\": \"x\($0)\", \"text\": \"a\"}" }.joined(separator: ","))]}", 413, "too_many_items"),
            ("{\"items\": [{\"id\": \"big\", \"text\": \"\(String(repeating: "x", count: 1001))\"}]}", 413, "text_too_long"),
            ("{\"items\": [{\"id\": \"empty\"}]}", 422, "no_modality"),
            ("{\"items\": [{\"id\": \"b\", \"images\": [{\"data\": \"%%%\"}]}]}", 422, "invalid_base64"),
            ("{\"items\": [{\"id\": \"g\", \"images\": [{\"data\": \"R0lGODlhAQABAAAAACw=\"}]}]}", 422, "unsupported_media"),
            ("{\"items\": [{\"id\": \"c\", \"images\": [{\"data\": \"\(String(try base64("Tests/MediaTests/Fixtures/images/decode/baseline.jpg").prefix(400)))\"}]}]}", 422, "corrupt_media"),
            ("{\"items\": [{\"id\": \"n\", \"images\": [\(Array(repeating: "{\"data\": \"x\"}", count: 3).joined(separator: ","))]}]}", 413, "too_many_images"),
            ("{\"items\": [{\"id\": \"long\", \"audio\": {\"data\": \"\(try base64("Tests/ModelsTests/Fixtures/musicnn/melody.wav"))\"}}]}", 413, "media_too_large"),
            ("{\"items\": [{\"id\": \"a\", \"text\": \"a\"}], \"return\": [\"everything\"]}", 422, "invalid_return"),
        ]
        for (json, status, code) in cases {
            let response = try post("/embed", port: port, json: json)
            #expect(response.status == status, "\(json.prefix(50))")
            #expect(errorCode(response.body) == code, "\(json.prefix(50))")
        }
        await service.shutdown()
    }

    /// A photo, a recording and a text in one request: each modality in the shared space, the raw features, and a
    /// fused embedding; the photo's vector is nearest "a cat".
    @Test func embedTakesImagesAndAudio() async throws {
        let (service, port) = try await makeService()
        let json = """
            {"items": [{"id": "cat", "images": [{"data": "\(try base64("Tests/MediaTests/Fixtures/images/preprocess/cat.jpg"))"}]},
                       {"id": "voice", "text": "a spoken sentence", "audio": {"data": "\(try base64("Tests/MediaTests/Fixtures/audio/speech.wav"))"}},
                       {"id": "t1", "text": "a cat"}, {"id": "t2", "text": "a rocket"}],
             "return": ["embedding", "modalities"]}
            """
        let client = try RawClient(port: port)
        client.send("POST /embed HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    + "Content-Length: \(json.utf8.count)\r\n\r\n\(json)")
        let response = try client.readResponse()
        #expect(response.status == 200, "\(String(decoding: response.body.prefix(300), as: UTF8.self))")
        struct Body: Decodable {
            struct Item: Decodable {
                struct Vectors: Decodable { var text: [Float]?, image: [Float]?, audio: [Float]? }
                var id: String
                var embedding: [Float]
                var modalities: Vectors
                var modalities_used: [String]
            }
            struct Usage: Decodable { var images: Int, audio_seconds: Double }
            var data: [Item]
            var usage: Usage
        }
        let body = try JSONDecoder().decode(Body.self, from: Data(response.body))
        let (cat, voice, aCat, aRocket) = (body.data[0], body.data[1], body.data[2], body.data[3])
        #expect(cat.modalities_used == ["image"] && voice.modalities_used == ["text", "audio"])
        #expect(cat.modalities.image?.count == 384 && cat.modalities.text == nil)
        #expect(voice.modalities.audio?.count == 384 && voice.modalities.text?.count == 384)
        #expect(body.usage.images == 1 && abs(body.usage.audio_seconds - 3) < 1.5)
        func dot(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map(*).reduce(0, +) }
        // A single modality's embedding is that modality's vector; the fused one is unit length.
        #expect(zip(cat.embedding, cat.modalities.image!).map { abs($0 - $1) }.max()! < 1e-5)
        #expect(abs(dot(voice.embedding, voice.embedding) - 1) < 1e-4)
        #expect(dot(cat.embedding, aCat.embedding) > dot(cat.embedding, aRocket.embedding))
        await service.shutdown()
    }

    @Test func aMissingModelStopsTheStartWithItsPath() async throws {
        var configuration = ServiceConfiguration()
        configuration.modelDirectory = "/nonexistent/model"
        configuration.http.port = 0
        let service = try OmniEmbedService(configuration: configuration, logger: Logger(label: "test"))
        await #expect { try await service.start() } throws: { "\($0)".contains("/nonexistent/model") }
    }

    @Test func healthAndReadiness() async throws {
        let (service, port) = try await makeService()
        #expect(try get("/healthz", port: port).status == 200)
        let ready = try get("/readyz", port: port)
        #expect(ready.status == 200)
        #expect(ready.body == #"{"status":"ready"}"#)
        await service.shutdown()
    }

    @Test func readinessIsNotReadyBeforeStartAndWhileDraining() async throws {
        let (service, port) = try await makeService()
        service.readiness.markDraining()
        let draining = try get("/readyz", port: port)
        #expect(draining.status == 503)
        #expect(draining.body.contains(#""code":"draining""#))
        #expect(try get("/healthz", port: port).status == 200)  // alive all the same
        await service.shutdown()
        #expect(Readiness().state == .starting)
    }

    @Test func metricsExposeRequestsConnectionsBytesAndRejections() async throws {
        let (service, port) = try await makeService()
        _ = try get("/healthz", port: port)
        _ = try get("/nowhere", port: port)
        let bad = try RawClient(port: port)
        bad.send("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(try bad.readResponse().status == 400)
        let metrics = try get("/metrics", port: port)
        #expect(metrics.status == 200)
        #expect(metrics.head.contains("Content-Type: text/plain; version=0.0.4"))
        let text = metrics.body
        #expect(text.contains(#"http_request_duration_seconds_count{route="/healthz",method="GET",status="200"} 1"#))
        #expect(text.contains(#"http_request_duration_seconds_count{route="unmatched",method="GET",status="404"} 1"#))
        #expect(text.contains(#"http_rejected_requests_total{reason="bad_request"} 1"#))
        #expect(text.contains("# TYPE http_open_connections gauge"))
        #expect(text.contains("# TYPE http_requests_in_flight gauge"))
        #expect(text.contains("http_connections_total "))
        #expect(text.contains("http_received_bytes_total "))
        #expect(text.contains("http_sent_bytes_total "))
        await service.shutdown()
    }

    @Test func metricsAreGzippedWhenAccepted() async throws {
        let (service, port) = try await makeService()
        _ = try get("/healthz", port: port)
        let metrics = try get("/metrics", port: port, headers: "Accept-Encoding: gzip\r\n")
        #expect(metrics.head.contains("Content-Encoding: gzip"))
        await service.shutdown()
    }
}
