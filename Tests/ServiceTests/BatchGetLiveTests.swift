import Embedding
import Foundation
import Testing
@testable import Service
import TestSupport

/// `POST /items/batch_get` end to end: what a ranker fetches per request equals what `/embed` and `/items` serve.
extension ServiceLiveTests {
    @Test func batchGetServesStoredItemsInRequestOrder() async throws {
        var configuration = testConfiguration()
        configuration.limits.maxItems = 1000
        let (service, port) = try await makeService(configuration)
        let vectors = try storeCatalogue(port: port)

        // Without a codebook: embeddings only, in request order (repeats kept), the unknown ids listed.
        let plain = try post("/items/batch_get", port: port, json: #"{"ids": ["i5", "nobody", "i2", "i5"]}"#)
        #expect(plain.status == 200 && plain.body["codebook_version"] is NSNull)
        #expect(plain.body["missing"] as? [String] == ["nobody"])
        let rows = try #require(plain.body["data"] as? [[String: Any]])
        #expect(rows.map { $0["id"] as? String } == ["i5", "i2", "i5"] && rows[0]["semantic_id"] == nil)
        let second = try #require(floats(rows[1]["embedding"]))
        #expect(zip(second, vectors[2]).allSatisfy { abs($0 - $1) < 1e-6 })
        let asked = try post("/items/batch_get", port: port, json: #"{"ids": ["i1"], "return": ["semantic_id"]}"#)
        #expect(asked.status == 409 && errorCode(asked.body) == "no_codebook")

        // With a codebook: rotated embeddings and codes, as /embed serves them; a Matryoshka size as /embed cuts it.
        let model = try model(port)
        let codebook = try writeCodebook(vectors, levels: 2, clusters: 4, seed: 1, model: model, to: configuration.codebook.path)
        #expect(try post("/admin/reload", port: port, json: "{}").status == 200)
        let embedded = try post("/embed", port: port, json: #"{"items": [{"id": "i9", "text": "\#(Self.catalogue[9])"}], "dimensions": 128}"#)
        let reference = try #require((embedded.body["data"] as? [[String: Any]])?.first)
        let fetched = try post("/items/batch_get", port: port, json: """
            {"ids": ["i9", "i3"], "dimensions": 128, "codebook_version": "\(codebook.version)"}
            """)
        #expect(fetched.status == 200 && fetched.body["codebook_version"] as? String == codebook.version)
        let data = try #require(fetched.body["data"] as? [[String: Any]])
        #expect(data[0]["semantic_id"] as? [Int] == reference["semantic_id"] as? [Int])
        #expect(data[1]["semantic_id"] as? [Int] == codebook.codes(vectors[3], count: 1)[0])
        let embedding = try #require(floats(data[0]["embedding"]))
        let expected = try #require(floats(reference["embedding"]))
        #expect(embedding.count == 128 && zip(embedding, expected).allSatisfy { abs($0 - $1) < 1e-5 })
        let base64 = try post("/items/batch_get", port: port, json: #"{"ids": ["i9"], "dimensions": 128, "encoding_format": "base64"}"#)
        let encoded = try #require(((base64.body["data"] as? [[String: Any]])?.first?["embedding"] as? String).flatMap { Data(base64Encoded: $0) })
        #expect(encoded.count == 128 * 4)

        // More ids than one read (Matcher.fetchPart): the parts, read and rotated in overlap, come back in request
        // order, each row as it is fetched alone.
        let many = (0..<900).map { $0 % 7 == 3 ? "gone\($0)" : "i\(($0 * 13) % vectors.count)" }
        let big = try post("/items/batch_get", port: port, json: """
            {"ids": [\(many.map { "\"\($0)\"" }.joined(separator: ","))], "dimensions": 128, "encoding_format": "base64"}
            """)
        let bigRows = try #require(big.body["data"] as? [[String: Any]])
        #expect(bigRows.map { $0["id"] as? String } == many.filter { !$0.hasPrefix("gone") })
        #expect(big.body["missing"] as? [String] == many.filter { $0.hasPrefix("gone") })
        for index in [0, 255, 256, 511, 700, bigRows.count - 1] {
            let id = try #require(bigRows[index]["id"] as? String)
            let alone = try post("/items/batch_get", port: port, json: #"{"ids": ["\#(id)"], "dimensions": 128, "encoding_format": "base64"}"#)
            let row = try #require((alone.body["data"] as? [[String: Any]])?.first)
            #expect(bigRows[index]["embedding"] as? String == row["embedding"] as? String, "\(id)")
            #expect(bigRows[index]["semantic_id"] as? [Int] == row["semantic_id"] as? [Int], "\(id)")
        }

        // Refusals: another codebook version, no ids, too many, an unknown field to return, a bad id.
        for (json, status, code) in [
            (#"{"ids": ["i1"], "codebook_version": "other"}"#, 409, "codebook_version_mismatch"),
            (#"{"ids": []}"#, 422, "no_ids"),
            (#"{"ids": [\#((0...configuration.limits.maxItems).map { "\"x\($0)\"" }.joined(separator: ","))]}"#, 413, "too_many_ids"),
            (#"{"ids": ["i1"], "return": ["vectors"]}"#, 422, "invalid_return"),
            (#"{"ids": ["a\u0000b"]}"#, 422, "invalid_id"),
            (#"{"ids": ["i1"], "dimensions": 100}"#, 422, "invalid_dimensions"),
        ] {
            let refused = try post("/items/batch_get", port: port, json: json)
            #expect(refused.status == status && errorCode(refused.body) == code, "\(json.prefix(60)): \(refused)")
        }
        await service.shutdown()
    }
}
