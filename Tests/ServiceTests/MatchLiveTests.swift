import Embedding
import Models
import Foundation
import Testing
@testable import Service
import TestSupport

/// `/match`, `/user_embedding`, semantic IDs and codebook reloads end to end, over loopback, against the
/// features recomputed here by plain loops from the vectors the service returned.
extension ServiceLiveTests {
    /// Forty short, varied item texts.
    static let catalogue: [String] = {
        let subjects = ["a red bicycle", "grandma's apple pie", "jazz piano trio", "mountain hiking trail", "cat chasing a laser",
                        "vintage camera review", "spicy ramen recipe", "football match highlights"]
        let angles = ["for beginners", "at night", "in the rain", "explained in five minutes", "on a budget"]
        return subjects.flatMap { subject in angles.map { "\(subject) \($0)" } }
    }()

    /// Embeds the catalogue as items `i0`…`i39` and returns their served vectors.
    func storeCatalogue(port: Int) throws -> [[Float]] {
        let items = Self.catalogue.enumerated().map { #"{"id": "i\#($0)", "text": "\#($1)"}"# }
        let body = try #require(try embed(#"{"items": [\#(items.joined(separator: ", "))]}"#, port: port).body)
        return try body.data.map { try #require($0.embedding) }
    }

    func normalized(_ v: [Float]) -> [Float] {
        let norm = dot(v, v).squareRoot()
        return v.map { $0 / norm }
    }

    func floats(_ value: Any?) -> [Float]? { (value as? [Double])?.map(Float.init) }

    /// A codebook fitted on `vectors` for the service's model, written where the service reloads from.
    func writeCodebook(_ vectors: [[Float]], levels: Int, clusters: Int, seed: UInt64, model: ModelIdentity,
                       to path: String) throws -> SemanticCodebook {
        var options = CodebookFitting.Options()
        options.levels = levels
        options.clusters = clusters
        options.seed = seed
        let (codebook, _, _) = try CodebookFitting.fit(vectors.flatMap { $0 }, count: vectors.count,
                                                       dimensions: vectors[0].count, model: model, options: options)
        try SafetensorsWriter.write(codebook.bytes(), to: path)
        return try SemanticCodebook(path: path)
    }

    func model(_ port: Int) throws -> ModelIdentity {
        let (_, body) = try post("/embed", port: port, json: #"{"items": [{"id": "m", "text": "x"}], "store": false}"#)
        let model = try #require(body["model"] as? [String: Any])
        return ModelIdentity(id: try #require(model["id"] as? String), revision: try #require(model["revision"] as? String))
    }

    @Test func matchFeaturesEqualLoopsOverTheStoredVectors() async throws {
        let (service, port) = try await makeService()
        let vectors = try storeCatalogue(port: port)
        let history = Array(0..<12)
        let weights: [Float] = (0..<12).map { Float($0 % 3) + 0.5 }
        let inline = normalized(zip(vectors[20], vectors[30]).map { $0 + $1 })
        let json = """
        {"user": {"history": [\(history.map { "\"i\($0)\"" }.joined(separator: ", ")), "nobody"], "weights": [\(weights.map { "\($0)" }.joined(separator: ", ")), 1]},
         "candidates": ["i25", "unknown", {"id": "inline", "embedding": [\(inline.map { "\($0)" }.joined(separator: ", "))]},
                        {"id": "fresh", "text": "\(Self.catalogue[33])"}],
         "top_k": 3, "sim_top": 4, "recent": 5}
        """
        let (status, body) = try post("/match", port: port, json: json)
        #expect(status == 200)
        #expect(body["missing"] as? [String] == ["nobody", "unknown"])
        #expect(body["history_used"] as? Int == 12 && body["codebook_version"] is NSNull)
        let data = try #require(body["data"] as? [[String: Any]])
        #expect(data.map { $0["id"] as? String } == ["i25", "unknown", "inline", "fresh"])
        #expect(data[1]["missing"] as? Bool == true && data[1]["max_cos"] == nil)
        // Without a codebook there is no sid_match unless asked for, and asking is a conflict.
        #expect(data[0]["sid_match"] == nil)

        // The reference: the user vector is the weighted mean of the last 5 known history vectors.
        var user = [Float](repeating: 0, count: 384)
        for i in 7..<12 { for j in 0..<384 { user[j] += weights[i] * vectors[i][j] } }
        user = normalized(user)
        for (row, candidate) in [(0, vectors[25]), (2, inline), (3, vectors[33])] {
            let scores = history.map { dot(candidate, vectors[$0]) }
            let order = scores.indices.sorted { scores[$0] > scores[$1] }
            let result = data[row]
            #expect(abs(Float(result["user_cos"] as! Double) - dot(candidate, user)) < 1e-5)
            #expect(abs(Float(result["max_cos"] as! Double) - scores.max()!) < 1e-5)
            let top3 = order.prefix(3).map { scores[$0] }.reduce(0, +) / 3
            #expect(abs(Float(result["topk_mean_cos"] as! Double) - top3) < 1e-5)
            let sim = try #require(result["sim_top"] as? [[String: Any]])
            #expect(sim.map { $0["index"] as? Int } == order.prefix(4).map { $0 })
            #expect(sim.map { $0["id"] as? String } == order.prefix(4).map { "i\($0)" })
        }

        // Only the features asked for; /user_embedding returns the same user vector.
        let only = try post("/match", port: port, json: #"{"user": {"history": ["i1", "i2"]}, "candidates": ["i3"], "features": ["max_cos"]}"#)
        #expect(Set((only.body["data"] as? [[String: Any]])?.first?.keys.map { $0 } ?? []) == ["id", "max_cos"])
        let userJSON = """
        {"user": {"history": [\(history.map { "\"i\($0)\"" }.joined(separator: ", "))], "weights": [\(weights.map { "\($0)" }.joined(separator: ", "))]}, "recent": 5}
        """
        let served = try post("/user_embedding", port: port, json: userJSON)
        #expect(served.status == 200 && served.body["history_used"] as? Int == 5)
        let vector = try #require(floats(served.body["embedding"]))
        #expect(zip(vector, user).allSatisfy { abs($0 - $1) < 1e-5 })
        let prefix = try post("/user_embedding", port: port, json: userJSON.replacingOccurrences(of: #""recent": 5"#, with: #""recent": 5, "dimensions": 64"#))
        let small = try #require(floats(prefix.body["embedding"]))
        #expect(small.count == 64 && abs(dot(small, small) - 1) < 1e-5)
        await service.shutdown()
    }

    /// Long lists (history and candidates read from the bank on two threads at once): ids repeated and missing
    /// among them, an inline history vector without an id, the features and `sim_top`'s members still the loops'.
    @Test func longListsAreReadTogetherAndMatchTheLoops() async throws {
        let (service, port) = try await makeService()
        let vectors = try storeCatalogue(port: port)
        let inline = normalized(zip(vectors[3], vectors[4]).map { $0 - $1 })
        // History: 160 entries, every 16th an unknown id, one inline vector; candidates: 140, every 20th unknown.
        var history: [String] = (0..<160).map { $0 % 16 == 15 ? "\"gone\($0)\"" : "\"i\(($0 * 7) % 40)\"" }
        history[100] = #"{"embedding": [\#(inline.map { "\($0)" }.joined(separator: ", "))]}"#
        let candidates: [String] = (0..<140).map { $0 % 20 == 19 ? "absent\($0)" : "i\(($0 * 3) % 40)" }
        let json = #"{"user": {"history": [\#(history.joined(separator: ", "))]}, "candidates": [\#(candidates.map { "\"\($0)\"" }.joined(separator: ", "))], "top_k": 4, "sim_top": 3, "features": ["max_cos", "topk_mean_cos", "sim_top"]}"#
        let (status, body) = try post("/match", port: port, json: json)
        #expect(status == 200)
        let missing = (0..<160).filter { $0 % 16 == 15 }.map { "gone\($0)" } + candidates.filter { $0.hasPrefix("absent") }
        #expect(body["missing"] as? [String] == missing)
        let known = (0..<160).filter { $0 % 16 != 15 }
        #expect(body["history_used"] as? Int == known.count)
        let data = try #require(body["data"] as? [[String: Any]])
        #expect(data.map { $0["id"] as? String } == candidates)
        let historyVector = { (index: Int) in index == 100 ? inline : vectors[(index * 7) % 40] }
        for (row, id) in candidates.enumerated() {
            guard !id.hasPrefix("absent") else {
                #expect(data[row]["missing"] as? Bool == true)
                continue
            }
            let candidate = vectors[Int(id.dropFirst())!]
            let best = known.map { dot(candidate, historyVector($0)) }.sorted(by: >)
            #expect(abs(Float(data[row]["max_cos"] as! Double) - best[0]) < 1e-5)
            #expect(abs(Float(data[row]["topk_mean_cos"] as! Double) - best.prefix(4).reduce(0, +) / 4) < 1e-5)
            let sim = try #require(data[row]["sim_top"] as? [[String: Any]])
            #expect(sim.count == 3)
            for entry in sim {
                let index = try #require(entry["index"] as? Int)
                #expect(abs(Float(entry["score"] as! Double) - dot(candidate, historyVector(index))) < 1e-5)
                if index == 100 { #expect(entry["id"] is NSNull) } else { #expect(entry["id"] as? String == "i\((index * 7) % 40)") }
            }
            #expect(abs(Float(sim[0]["score"] as! Double) - best[0]) < 1e-5)
        }
        // A bad id deep in the long candidate list is named by its position.
        let bad = json.replacingOccurrences(of: "\"absent139\"", with: #""bad\u0001id""#)
        let refused = try post("/match", port: port, json: bad)
        #expect(refused.status == 422 && "\(refused.body)".contains("candidates[139]"))
        await service.shutdown()
    }

    @Test func matchRefusesBadRequestsClearly() async throws {
        var configuration = testConfiguration()
        configuration.match.maxCandidates = 3
        configuration.match.maxHistory = 4
        configuration.match.maxTop = 10
        let (service, port) = try await makeService(configuration)
        _ = try storeCatalogue(port: port)
        let zeros = "[" + Array(repeating: "0", count: 384).joined(separator: ", ") + "]"
        let cases: [(String, String, Int, String)] = [
            ("/match", #"{"user": {"history": ["i1"]}, "candidates": []}"#, 422, "no_candidates"),
            ("/match", #"{"user": {"history": ["i1"]}}"#, 422, "no_candidates"),
            ("/match", #"{"user": {"history": ["i1"]}, "candidates": ["i2"], "features": ["cosine"]}"#, 422, "invalid_features"),
            ("/match", #"{"user": {"history": ["i1"]}, "candidates": ["i2"], "features": []}"#, 422, "invalid_features"),
            ("/match", #"{"user": {"history": ["i1"]}, "candidates": ["i2"], "features": ["sid_match"]}"#, 409, "no_codebook"),
            ("/match", #"{"user": {"history": ["i1"]}, "candidates": ["i2"], "codebook_version": "0123456789abcdef"}"#, 409, "codebook_version_mismatch"),
            ("/match", #"{"user": {"history": ["i1"]}, "candidates": ["i2"], "top_k": 0}"#, 422, "invalid_top_k"),
            ("/match", #"{"user": {"history": ["i1"]}, "candidates": ["i2"], "sim_top": 11}"#, 422, "invalid_sim_top"),
            ("/match", #"{"user": {"history": ["i1"]}, "candidates": ["i2", "i3", "i4", "i5"]}"#, 413, "too_many_candidates"),
            ("/match", #"{"user": {"history": ["i1", "i2", "i3", "i4", "i5"]}, "candidates": ["i2"]}"#, 413, "too_many_history"),
            ("/match", #"{"user": {"history": ["i1", "i2"], "weights": [1]}, "candidates": ["i2"]}"#, 422, "invalid_weights"),
            ("/match", #"{"user": {"history": ["i1", "i2"], "weights": [1, -1]}, "candidates": ["i2"]}"#, 422, "invalid_weights"),
            ("/match", #"{"user": {"history": ["i1"], "history_embeddings": [[1]]}, "candidates": ["i2"]}"#, 422, "invalid_history"),
            ("/match", #"{"user": {"history_embeddings": [[1, 2]]}, "candidates": ["i2"]}"#, 422, "invalid_embedding"),
            ("/match", #"{"user": {"history_embeddings": [\#(zeros)]}, "candidates": ["i2"]}"#, 422, "invalid_embedding"),
            ("/match", #"{"user": {"history": ["i1"]}, "candidates": [{"id": "x", "embedding": [0.5]}]}"#, 422, "invalid_embedding"),
            ("/match", #"{"user": {"history": ["i1"]}, "candidates": [{"id": "", "text": "t"}]}"#, 422, "invalid_id"),
            ("/match", #"{"user": {"history": ["i1"]}, "candidates": [{"id": "n", "text": "a"}, {"id": "n", "text": "b"}]}"#, 422, "duplicate_id"),
            ("/match", #"{"user": {"history": ["i1"]}, "candidates": ["i2"], "dimensions": 100}"#, 422, "invalid_dimensions"),
            ("/match", #"{"user": {"history": ["i1"]}, "candidates": [7]}"#, 400, "invalid_json"),
            ("/match", #"{"user": {"history": ["i1"]}, "candidates": ["i2"]"#, 400, "invalid_json"),
            ("/user_embedding", #"{"user": {"history": ["nobody"]}}"#, 422, "no_history"),
            ("/user_embedding", #"{"user": {"history": ["i1", "i2"], "weights": [0, 0]}}"#, 422, "invalid_weights"),
            ("/user_embedding", #"{"user": {"history": ["i1"]}, "recent": 0}"#, 422, "invalid_recent"),
        ]
        for (path, json, status, code) in cases {
            let response = try post(path, port: port, json: json)
            #expect(response.status == status && errorCode(response.body) == code, "\(json) → \(response.status) \(response.body)")
            let message = (response.body["error"] as? [String: Any])?["message"] as? String ?? ""
            #expect(!message.isEmpty)
        }
        // An unknown-only history is not an error for /match: the features are null and the ids are listed.
        let (status, body) = try post("/match", port: port, json: #"{"user": {"history": ["gone"]}, "candidates": ["i2"]}"#)
        #expect(status == 200 && body["missing"] as? [String] == ["gone"])
        let row = try #require((body["data"] as? [[String: Any]])?.first)
        #expect(row["user_cos"] is NSNull && row["max_cos"] is NSNull && (row["sim_top"] as? [Any])?.isEmpty == true)
        #expect(try get("/healthz", port: port).status == 200)
        await service.shutdown()
    }

    @Test func aReloadedCodebookRotatesVectorsCodesItemsAndFeedsSidMatch() async throws {
        let configuration = testConfiguration()
        let (service, port) = try await makeService(configuration)
        let vectors = try storeCatalogue(port: port)
        let model = try model(port)
        #expect(try post("/admin/reload", port: port, json: "{}").status == 404)

        let codebook = try writeCodebook(vectors, levels: 2, clusters: 4, seed: 1, model: model, to: configuration.codebook.path)
        let reload = try post("/admin/reload", port: port, json: "{}")
        #expect(reload.status == 200 && reload.body["codebook_version"] as? String == codebook.version)
        #expect(reload.body["code_counts"] as? [Int] == [4, 4])

        // /embed serves rotated vectors (cosines unchanged), their codes and the version.
        let embedded = try post("/embed", port: port, json: #"{"items": [{"id": "i3", "text": "\#(Self.catalogue[3])"}, {"id": "i7", "text": "\#(Self.catalogue[7])"}]}"#)
        #expect(embedded.body["codebook_version"] as? String == codebook.version)
        let items = try #require(embedded.body["data"] as? [[String: Any]])
        let rotated = try items.map { try #require(floats($0["embedding"])) }
        #expect(zip(rotated[0], codebook.rotate(vectors[3], count: 1)).allSatisfy { abs($0 - $1) < 1e-5 })
        #expect(abs(dot(rotated[0], rotated[1]) - dot(vectors[3], vectors[7])) < 1e-5)
        let codes = codebook.codes(vectors[3] + vectors[7], count: 2)
        #expect(items.map { $0["semantic_id"] as? [Int] } == codes.map { Optional($0) })
        // The store keeps them; /items serves the rotated vector too.
        let stored = try JSONSerialization.jsonObject(with: Data(try get("/items/i3", port: port).body.utf8)) as! [String: Any]
        #expect(stored["semantic_id"] as? [Int] == codes[0] && stored["codebook_version"] as? String == codebook.version)
        #expect(zip(try #require(floats(stored["embedding"])), rotated[0]).allSatisfy { abs($0 - $1) < 1e-6 })

        // One space for every vector handed out: modalities are rotated as the fused vector is (a text-only
        // item's are equal), on /embed and /items; the user vector at full size too, and inline history is
        // taken in that space.
        let withModalities = try post("/embed", port: port, json: #"{"items": [{"id": "i3", "text": "\#(Self.catalogue[3])"}], "return": ["embedding", "modalities"]}"#)
        let item = try #require((withModalities.body["data"] as? [[String: Any]])?.first)
        #expect(floats((item["modalities"] as? [String: Any])?["text"]) == floats(item["embedding"]))
        #expect(floats((stored["modalities"] as? [String: Any])?["text"]).map { zip($0, rotated[0]).allSatisfy { abs($0 - $1) < 1e-6 } } == true)
        for history in [#"["i3"]"#, #"[{"embedding": [\#(rotated[0].map { "\($0)" }.joined(separator: ", "))]}]"#] {
            let user = try post("/user_embedding", port: port, json: #"{"user": {"history": \#(history)}}"#)
            let vector = try #require(floats(user.body["embedding"]), "\(user)")
            #expect(zip(vector, rotated[0]).allSatisfy { abs($0 - $1) < 1e-5 }, "\(history.prefix(20))")
        }

        // sid_match counts the history items that share each prefix of the candidate's code.
        let allCodes = codebook.codes(vectors.flatMap { $0 }, count: vectors.count)
        let history = Array(0..<20)
        let json = """
        {"user": {"history": [\(history.map { "\"i\($0)\"" }.joined(separator: ", "))]}, "candidates": ["i21", "i30", "i39"],
         "features": ["sid_match", "max_cos", "sid"], "codebook_version": "\(codebook.version)", "dimensions": 64}
        """
        let (status, body) = try post("/match", port: port, json: json)
        #expect(status == 200 && body["codebook_version"] as? String == codebook.version && body["dimensions"] as? Int == 64)
        let data = try #require(body["data"] as? [[String: Any]])
        for (row, candidate) in [21, 30, 39].enumerated() {
            let expected = (1...2).map { level in history.filter { Array(allCodes[$0].prefix(level)) == Array(allCodes[candidate].prefix(level)) }.count }
            #expect(data[row]["sid_match"] as? [Int] == expected)
            // The candidate's own code, for rankers' SID features, in the same call.
            #expect(data[row]["semantic_id"] as? [Int] == allCodes[candidate])
            // At 64 dims the cosines are over the leading 64 principal components, renormalised.
            let prefix = { (v: [Float]) in self.normalized(Array(codebook.rotate(v, count: 1).prefix(64))) }
            let best = history.map { dot(prefix(vectors[candidate]), prefix(vectors[$0])) }.max()!
            #expect(abs(Float(data[row]["max_cos"] as! Double) - best) < 1e-5)
        }
        // Inline vectors are taken in the served (rotated) space.
        let inline = try post("/match", port: port, json: """
            {"user": {"history": ["i1", "i2"]}, "candidates": [{"id": "x", "embedding": [\(rotated[0].map { "\($0)" }.joined(separator: ", "))]}, "i3"],
             "features": ["max_cos", "sid_match"]}
            """)
        let pair = try #require(inline.body["data"] as? [[String: Any]])
        #expect(abs((pair[0]["max_cos"] as! Double) - (pair[1]["max_cos"] as! Double)) < 1e-5)
        #expect(pair[0]["sid_match"] as? [Int] == pair[1]["sid_match"] as? [Int])
        // Codes computed in one call for inline vectors around a stored item whose code is not cached yet: each
        // row gets its own.
        let served = { (i: Int) in codebook.rotate(vectors[i], count: 1).map { "\($0)" }.joined(separator: ", ") }
        let mixed = try post("/match", port: port, json: #"{"user": {"history": ["i1"]}, "candidates": [{"id": "a", "embedding": [\#(served(30))]}, "i35", {"id": "b", "embedding": [\#(served(39))]}], "features": ["sid"]}"#)
        let mixedCodes = try #require(mixed.body["data"] as? [[String: Any]]).map { $0["semantic_id"] as? [Int] }
        #expect(mixedCodes == [allCodes[30], allCodes[35], allCodes[39]])

        // Bad files leave the loaded codebook in place.
        let good = try Data(contentsOf: URL(fileURLWithPath: configuration.codebook.path))
        try Data("not a codebook".utf8).write(to: URL(fileURLWithPath: configuration.codebook.path))
        let bad = try post("/admin/reload", port: port, json: "{}")
        #expect(bad.status == 422 && errorCode(bad.body) == "invalid_codebook")
        _ = try writeCodebook(vectors, levels: 1, clusters: 2, seed: 1, model: ModelIdentity(id: model.id, revision: "other"),
                              to: configuration.codebook.path)
        let other = try post("/admin/reload", port: port, json: "{}")
        #expect(other.status == 422 && errorCode(other.body) == "codebook_mismatch")
        let still = try post("/match", port: port, json: #"{"user": {"history": ["i1"]}, "candidates": ["i2"], "features": ["sid_match"]}"#)
        #expect(still.status == 200 && still.body["codebook_version"] as? String == codebook.version)
        try good.write(to: URL(fileURLWithPath: configuration.codebook.path))
        #expect(try get("/metrics", port: port).body.contains(#"omniembed_codebook_reloads_total{result="failed"} 3"#))
        await service.shutdown()
    }

    /// Requests running while two codebooks are swapped back and forth all succeed, each with one whole codebook.
    @Test func reloadingUnderLoadDropsNoRequest() async throws {
        let configuration = testConfiguration()
        let (service, port) = try await makeService(configuration)
        let vectors = try storeCatalogue(port: port)
        let model = try model(port)
        let books = try [1, 2].map { seed in
            try writeCodebook(vectors, levels: 2, clusters: 4, seed: UInt64(seed), model: model, to: configuration.codebook.path + "\(seed)")
        }
        let versions = Set(books.map(\.version))
        #expect(versions.count == 2)
        let files = try [1, 2].map { try Data(contentsOf: URL(fileURLWithPath: configuration.codebook.path + "\($0)")) }
        try files[0].write(to: URL(fileURLWithPath: configuration.codebook.path), options: .atomic)
        #expect(try post("/admin/reload", port: port, json: "{}").status == 200)

        let json = #"{"user": {"history": ["i1", "i2", "i3", "i4"]}, "candidates": ["i5", {"id": "n", "text": "new"}], "features": ["sid_match", "user_cos"]}"#
        let clients = (0..<3).map { _ in
            Task.detached { () throws -> [String] in
                try (0..<25).map { _ in
                    let (status, body) = try self.post("/match", port: port, json: json)
                    return status == 200 ? (body["codebook_version"] as? String ?? "none") : "status \(status)"
                }
            }
        }
        for swap in 0..<10 {
            try files[(swap + 1) % 2].write(to: URL(fileURLWithPath: configuration.codebook.path), options: .atomic)
            #expect(try post("/admin/reload", port: port, json: "{}").status == 200)
        }
        var seen: [String] = []
        for client in clients { seen += try await client.value }
        #expect(seen.count == 75 && Set(seen).isSubset(of: versions), "\(Set(seen))")
        await service.shutdown()
    }
}

/// `/match` bodies by id only are read without `JSONDecoder`, to the same values; every other shape is left to it.
@Suite struct MatchRequestReadingTests {
    func decoded(_ text: String) throws -> MatchRoute.Request {
        try JSONDecoder().decode(MatchRoute.Request.self, from: Data(text.utf8))
    }

    func ids(_ entries: [MatchRoute.Entry]?) -> [String]? {
        entries?.map { if case .id(let id) = $0 { id } else { "not an id" } }
    }

    @Test func idsOnlyBodiesReadAsJSONDecoderReadsThem() throws {
        let bodies = [
            #"{"user": {"history": ["a", "b\u00e9"], "weights": [1, 0.5]}, "candidates": ["c"], "features": ["max_cos"], "top_k": 3, "sim_top": 2, "recent": 7, "dimensions": 128, "codebook_version": "v1", "timeout_ms": 50, "encoding_format": "float"}"#,
            #"{"candidates": [], "user": {"history": []}}"#,
        ]
        for body in bodies {
            let fast = try #require(MatchRoute.Request.idsOnly(Array(body.utf8)), "\(body)")
            let reference = try decoded(body)
            #expect(ids(fast.user.history) == ids(reference.user.history))
            #expect(fast.user.weights == reference.user.weights)
            #expect(fast.candidates.map { $0.map(\.id) } == reference.candidates.map { $0.map(\.id) })
            #expect(fast.features == reference.features && fast.topK == reference.topK && fast.simTop == reference.simTop)
            #expect(fast.recent == reference.recent && fast.dimensions == reference.dimensions)
            #expect(fast.codebookVersion == reference.codebookVersion && fast.timeoutMs == reference.timeoutMs)
            #expect(fast.encodingFormat == reference.encodingFormat)
        }
    }

    @Test func otherShapesAreLeftToJSONDecoder() {
        for body in [
            #"{"user": {"history": ["a"]}, "candidates": [{"id": "x", "embedding": [1, 0]}]}"#,
            #"{"user": {"history": [{"embedding": [1, 0]}]}, "candidates": ["c"]}"#,
            #"{"user": {"history_embeddings": [[1, 0]]}, "candidates": ["c"]}"#,
            #"{"user": {"history": ["a"]}, "candidates": ["c"], "top_k": null}"#,
            #"{"user": {"history": ["a"]}, "candidates": ["c"], "top_k": 5.0}"#,
            #"{"user": {"history": ["a"]}, "candidates": ["c"], "extra": 1}"#,
            #"{"user": {"history": ["a"]}, "candidates": ["c"], "candidates": ["d"]}"#,
            #"{"user": {"weights": [1]}, "candidates": ["c"]}"#,
            #"{"user": {"history": ["a"]}, "candidates": ["c"]"#,
            #"[1, 2]"#,
        ] {
            #expect(MatchRoute.Request.idsOnly(Array(body.utf8)) == nil, "\(body)")
        }
    }
}

