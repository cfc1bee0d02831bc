import Foundation
@testable import Embedding
import Tensor
import Testing

/// Semantic IDs and match features against the NumPy reference (`scripts/reference/semantic_ids.py`).
@Suite struct SemanticIDTests {
    static let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
        .appendingPathComponent("semantic-ids")

    func json(_ name: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: Self.fixtures.appendingPathComponent(name))) as! [String: Any]
    }

    func floats(_ value: Any?) -> [Float] {
        ((value as? [[Double]]) ?? []).flatMap { $0.map(Float.init) }
    }

    /// Codes equal the float64 brute-force assignment, except where the reference itself has a near tie (the
    /// first differing level's runner-up within 1e-4, or an FSQ direction within 1e-3 of a rounding boundary).
    @Test func codesMatchTheNumPyAssignment() throws {
        let fixture = try json("codes.json")
        let codebook = try SemanticCodebook(path: Self.fixtures.appendingPathComponent("codebook.safetensors").path)
        #expect(codebook.codeCounts == fixture["code_counts"] as? [Int])
        let expected = try #require(fixture["codes"] as? [[Int]])
        let gaps = try #require(fixture["gaps"] as? [[Double]])
        let codes = codebook.codes(floats(fixture["vectors"]), count: expected.count)
        var exact = 0
        for (item, (ours, reference)) in zip(codes, expected).enumerated() {
            guard let level = ours.indices.first(where: { ours[$0] != reference[$0] }) else { exact += 1; continue }
            let tolerance = level == reference.count - 1 ? 1e-3 : 1e-4
            #expect(gaps[item][level] < tolerance, "item \(item) level \(level): \(ours) vs \(reference)")
        }
        #expect(exact >= expected.count - 2)
    }

    /// The NumPy fixture's history and candidates as a query for `features`.
    func matchQuery(_ fixture: [String: Any], features: Set<MatchFeatures.Feature>) -> MatchFeatures.Query {
        let d = fixture["dimensions"] as! Int
        let history = floats(fixture["history"]), candidates = floats(fixture["candidates"])
        return MatchFeatures.Query(
            history: history, historyCount: history.count / d, candidates: candidates, candidateCount: candidates.count / d,
            dimensions: d, features: features,
            weights: (fixture["weights"] as! [Double]).map(Float.init), recent: fixture["recent"] as! Int,
            topK: fixture["top_k"] as! Int, simTop: fixture["sim_top"] as! Int)
    }

    @Test func matchFeaturesMatchNumPy() throws {
        let fixture = try json("match.json")
        var query = matchQuery(fixture, features: Set(MatchFeatures.Feature.allCases))
        query.historyCodes = fixture["history_codes"] as! [[Int]]
        query.candidateCodes = fixture["candidate_codes"] as! [[Int]]
        query.codeCounts = fixture["code_counts"] as! [Int]
        for threads in [1, 2] {
            let blocks = MatchFeatures.compute(query, threads: threads) { $0 }
            #expect(blocks.map(\.rows.lowerBound) == blocks.indices.map { $0 == 0 ? 0 : blocks[$0 - 1].rows.upperBound })
            let expected = fixture["expected"] as! [[String: Any]]
            #expect(blocks.last?.rows.upperBound == expected.count)
            for block in blocks {
                for row in block.rows {
                    let (r, reference) = (row - block.rows.lowerBound, expected[row])
                    #expect(abs(Double(block.userCos[r]) - (reference["user_cos"] as! Double)) <= 1e-5)
                    #expect(abs(Double(block.maxCos[r]) - (reference["max_cos"] as! Double)) <= 1e-5)
                    #expect(abs(Double(block.topkMeanCos[r]) - (reference["topk_mean_cos"] as! Double)) <= 1e-5)
                    let top = reference["sim_top"] as! [[Double]]
                    let n = block.simTopCount
                    #expect(block.simTopIndex[r * n..<(r + 1) * n].map(Int.init) == top.map { Int($0[0]) })
                    for (score, pair) in zip(block.simTopScore[r * n..<(r + 1) * n], top) {
                        #expect(abs(Double(score) - pair[1]) <= 1e-5)
                    }
                    #expect(Array(block.sidMatch[r * block.levels..<(r + 1) * block.levels]) == reference["sid_match"] as? [Int])
                }
            }
        }
    }

    /// `match.precision: bf16`: the candidates × history product on bfloat16 operands stays within 2e-3 of NumPy's
    /// float64 features; the most similar history items are the reference's wherever their scores are further
    /// apart than that.
    @Test func matchFeaturesInBF16StayWithinTwoThousandthsOfNumPy() throws {
        let fixture = try json("match.json")
        var query = matchQuery(fixture, features: [.userCos, .maxCos, .topkMeanCos, .simTop])
        query.precision = .bf16
        let expected = fixture["expected"] as! [[String: Any]]
        var worst = 0.0
        for block in MatchFeatures.compute(query, threads: 2, { $0 }) {
            for row in block.rows {
                let (r, reference) = (row - block.rows.lowerBound, expected[row])
                worst = max(worst, abs(Double(block.maxCos[r]) - (reference["max_cos"] as! Double)),
                            abs(Double(block.topkMeanCos[r]) - (reference["topk_mean_cos"] as! Double)))
                #expect(abs(Double(block.userCos[r]) - (reference["user_cos"] as! Double)) <= 1e-5)
                let top = reference["sim_top"] as! [[Double]]
                let n = block.simTopCount
                for (j, (score, index)) in zip(block.simTopScore[r * n..<(r + 1) * n], block.simTopIndex[r * n..<(r + 1) * n]).enumerated() {
                    worst = max(worst, abs(Double(score) - top[j][1]))
                    let apart = (j == 0 || top[j - 1][1] - top[j][1] > 4e-3) && (j + 1 == n || top[j][1] - top[j + 1][1] > 4e-3)
                    if apart { #expect(Int(index) == Int(top[j][0]), "row \(row) rank \(j)") }
                }
            }
        }
        #expect(worst <= 2e-3, "worst feature difference \(worst)")
        print("match features in \(query.precision.effective) vs NumPy float64: worst difference \(worst)")
    }

    /// A query large enough to be cut into blocks computed in parallel gives, row for row, what one block does
    /// (to rounding: BLAS may sum a block of another height in another order; an index may then differ only
    /// where two scores tie to that rounding).
    @Test func blocksComputedInParallelEqualOneBlock() {
        var generator = SystemRandomNumberGenerator()
        let (h, c, d, n) = (300, 700, 64, 12)
        func unitRows(_ count: Int) -> [Float] {
            (0..<count).flatMap { _ in Matryoshka.normalized((0..<d).map { _ in Float.random(in: -1...1, using: &generator) }) }
        }
        let query = MatchFeatures.Query(history: unitRows(h), historyCount: h, candidates: unitRows(c), candidateCount: c,
                                        dimensions: d, features: [.userCos, .maxCos, .topkMeanCos, .simTop],
                                        recent: 20, topK: 5, simTop: n)
        let one = MatchFeatures.compute(query, threads: 1) { $0 }
        let parallel = MatchFeatures.compute(query, threads: 2) { $0 }
        #expect(one.count == 1 && parallel.count > 1)
        var mismatches = 0
        for block in parallel {
            for r in 0..<block.rows.count {
                let row = block.rows.lowerBound + r
                let close = { (a: Float, b: Float) in abs(a - b) <= 1e-5 }
                if !close(block.userCos[r], one[0].userCos[row]) || !close(block.maxCos[r], one[0].maxCos[row])
                    || !close(block.topkMeanCos[r], one[0].topkMeanCos[row]) { mismatches += 1 }
                for j in 0..<n {
                    let (score, reference) = (block.simTopScore[r * n + j], one[0].simTopScore[row * n + j])
                    let tied = (j > 0 && close(reference, one[0].simTopScore[row * n + j - 1]))
                        || (j + 1 < n && close(reference, one[0].simTopScore[row * n + j + 1]))
                    if !close(score, reference) || (block.simTopIndex[r * n + j] != one[0].simTopIndex[row * n + j] && !tied) {
                        mismatches += 1
                    }
                }
            }
        }
        #expect(mismatches == 0)
    }

    @Test func collisionRateAndUtilisationMatchANumPyRecount() throws {
        for table in try json("stats.json")["tables"] as! [[String: Any]] {
            let rows = table["codes"] as! [[Int]]
            let length = rows[0].count
            let codes = rows.flatMap { $0.map(Int32.init) }
            #expect(abs(CodebookFitting.collisionRate(codes, length: length) - (table["collision_rate"] as! Double)) < 1e-12)
            let expected = table["utilisation"] as! [Double]
            for level in 0..<length {
                let column = rows.map { Int32($0[level]) }
                #expect(abs(CodebookFitting.utilisation(column, codeCount: table["code_count"] as! Int) - expected[level]) < 1e-12)
            }
        }
        // Codes too many to pack into one integer are compared as sequences.
        let wide: [Int32] = [1 << 30, 1 << 30, 7, 1 << 30, 1 << 30, 7, 1 << 30, 1 << 30, 8]
        #expect(abs(CodebookFitting.collisionRate(wide, length: 3) - 2.0 / 3) < 1e-12)
    }

    @Test func theUserVectorIsTheWeightedMeanOfTheRecentHistory() {
        let history: [Float] = [1, 0, 0, 1, 1, 0]
        #expect(MatchFeatures.userVector(history, count: 3, dimensions: 2, weights: nil, recent: 2) == Matryoshka.normalized([1, 1]))
        #expect(MatchFeatures.userVector(history, count: 3, dimensions: 2, weights: [5, 0, 3], recent: 2) == [1, 0])
        #expect(MatchFeatures.userVector(history, count: 3, dimensions: 2, weights: [5, 0, 0], recent: 2) == [0, 0])
    }
}

/// `omniembed fit`'s algorithm on clustered synthetic vectors.
@Suite struct CodebookFittingTests {
    /// `count` unit vectors around `clusters` random centres.
    static func clustered(count: Int, dimensions d: Int, clusters: Int, seed: UInt64) -> [Float] {
        var random = SplitMix64(seed: seed)
        func gaussian() -> Float {
            let u = max(random.nextUnit(), 1e-12), v = random.nextUnit()
            return Float((-2 * log(u)).squareRoot() * cos(2 * .pi * v))
        }
        let centres = (0..<clusters * d).map { _ in gaussian() }
        var x: [Float] = []
        for _ in 0..<count {
            let c = Int(random.next(below: UInt64(clusters)))
            x += Matryoshka.normalized((0..<d).map { centres[c * d + $0] + 0.4 * gaussian() })
        }
        return x
    }

    func options(seed: UInt64 = 1) -> CodebookFitting.Options {
        var options = CodebookFitting.Options()
        options.levels = 3
        options.clusters = 16
        options.iterations = 8
        options.seed = seed
        options.fsqLevels = [3, 3]
        options.threads = 2
        return options
    }

    @Test func fitIsDeterministicAndItsCodesAreWhatTheCodebookAssigns() throws {
        let (n, d) = (3000, 24)
        let x = Self.clustered(count: n, dimensions: d, clusters: 40, seed: 5)
        let (first, codes, report) = try CodebookFitting.fit(x, count: n, dimensions: d, model: nil, options: options())
        let (again, _, _) = try CodebookFitting.fit(x, count: n, dimensions: d, model: nil, options: options())
        let (other, _, _) = try CodebookFitting.fit(x, count: n, dimensions: d, model: nil, options: options(seed: 2))
        #expect(first.levels.map(\.centroids) == again.levels.map(\.centroids) && first.fsq == again.fsq)
        #expect(first.levels.map(\.centroids) != other.levels.map(\.centroids))

        // Each level leaves less; the report's utilisation and collisions are those of the returned codes.
        #expect(zip(report.levels, report.levels.dropFirst()).allSatisfy { $0.error > $1.error })
        #expect(report.levels[0].relativeError < 1)
        let length = first.codeLength
        #expect(length == 4 && codes.count == n * length)
        #expect(report.collisionRate == CodebookFitting.collisionRate(codes, length: length))
        #expect(report.levels[0].utilisation == CodebookFitting.utilisation((0..<n).map { codes[$0 * length] }, codeCount: 16))

        // Serving assigns the codes the fit computed (GEMM blocking may break a near tie differently).
        let served = first.codes(x, count: n)
        let same = (0..<n).count { i in served[i].map(Int32.init) == Array(codes[i * length..<(i + 1) * length]) }
        #expect(same >= n * 995 / 1000)
    }

    @Test func theRotationKeepsCosinesAndOrdersComponentsByVariance() throws {
        let (n, d) = (2000, 16)
        let x = Self.clustered(count: n, dimensions: d, clusters: 10, seed: 9)
        let (codebook, _, _) = try CodebookFitting.fit(x, count: n, dimensions: d, model: nil, options: options())
        let r = codebook.rotation
        for i in 0..<d {
            for j in 0..<d {
                let dot = (0..<d).reduce(Float(0)) { $0 + r[i * d + $1] * r[j * d + $1] }
                #expect(abs(dot - (i == j ? 1 : 0)) < 1e-4)
            }
        }
        let y = codebook.rotate(x, count: n)
        for (a, b) in [(0, 1), (5, 1999), (42, 7)] {
            let before = (0..<d).reduce(Float(0)) { $0 + x[a * d + $1] * x[b * d + $1] }
            let after = (0..<d).reduce(Float(0)) { $0 + y[a * d + $1] * y[b * d + $1] }
            #expect(abs(before - after) < 1e-5)
        }
        let back = codebook.unrotate(y, count: n)
        #expect(zip(back, x).allSatisfy { abs($0 - $1) < 1e-5 })
        // Each vector is rotated alone: the same bits alone as in any batch (a fetch rotates in parts).
        for row in [0, 17, 1999] {
            #expect(codebook.rotate(Array(x[row * d..<(row + 1) * d]), count: 1) == Array(y[row * d..<(row + 1) * d]))
        }
        #expect(codebook.rotate(Array(x[256 * d..<512 * d]), count: 256) == Array(y[256 * d..<512 * d]))
        var variance = [Double](repeating: 0, count: d), mean = [Double](repeating: 0, count: d)
        for i in 0..<n { for j in 0..<d { mean[j] += Double(y[i * d + j]) / Double(n) } }
        for i in 0..<n { for j in 0..<d { variance[j] += pow(Double(y[i * d + j]) - mean[j], 2) } }
        #expect(zip(variance, variance.dropFirst()).allSatisfy { $0 >= $1 * 0.999 })
    }

    /// Joint refinement keeps a pass only when the greedy encoding with its codebooks leaves less; the reported
    /// errors are those of the returned codes, recounted here from the codebook.
    @Test func refinementLowersTheErrorOfTheCodesServingAssigns() throws {
        let (n, d) = (4000, 16)
        let x = Self.clustered(count: n, dimensions: d, clusters: 60, seed: 8)
        var plain = options(), refined = options()
        (plain.fsqLevels, refined.fsqLevels) = ([], [])
        (plain.refinementPasses, refined.refinementPasses) = (0, 3)
        let (_, _, before) = try CodebookFitting.fit(x, count: n, dimensions: d, model: nil, options: plain)
        let (codebook, codes, after) = try CodebookFitting.fit(x, count: n, dimensions: d, model: nil, options: refined)
        #expect(before.refinementPasses == 0 && (1...3).contains(after.refinementPasses))
        #expect(after.levels.last!.error < before.levels.last!.error)

        let y = codebook.rotate(x, count: n)
        var squared = 0.0
        for i in 0..<n {
            for j in 0..<d {
                var r = Double(y[i * d + j])
                for level in 0..<3 { r -= Double(codebook.levels[level].centroids[Int(codes[i * 3 + level]) * d + j]) }
                squared += r * r
            }
        }
        #expect(abs(squared / Double(n) - after.levels.last!.error) < 1e-4 * max(1, after.levels.last!.error))
        let served = codebook.codes(x, count: n)
        #expect((0..<n).count { served[$0].map(Int32.init) == Array(codes[$0 * 3..<$0 * 3 + 3]) } >= n * 995 / 1000)
    }

    @Test func theArtifactRoundTripsAndIsCheckedAgainstTheModel() throws {
        let (n, d) = (500, 8)
        let x = Self.clustered(count: n, dimensions: d, clusters: 5, seed: 3)
        let model = ModelIdentity(id: "m", revision: "r1")
        let (codebook, _, _) = try CodebookFitting.fit(x, count: n, dimensions: d, model: model, options: options())
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("codebook-\(UUID().uuidString).safetensors").path
        let bytes = codebook.bytes()
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let read = try SemanticCodebook(path: path)
        #expect(read.version == String(ContentHash.sha256(bytes).prefix(16)))
        #expect(read.rotation == codebook.rotation && read.levels.map(\.centroids) == codebook.levels.map(\.centroids))
        #expect(read.fsq == codebook.fsq && read.model == model)
        #expect(read.mismatch(dimensions: d, model: model) == nil)
        #expect(read.mismatch(dimensions: d + 1, model: model) != nil)
        #expect(read.mismatch(dimensions: d, model: ModelIdentity(id: "m", revision: "r2"))?.contains("r1") == true)

        try Data("not a codebook".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: (any Error).self) { try SemanticCodebook(path: path) }
    }

    /// Every count in a codebook file is checked with overflow-safe arithmetic, every value must be finite, the
    /// tensors must tile the file, and only a regular file is read: each bad file is an error naming it, never
    /// a trap or a hang (a reload then keeps the loaded codebook).
    @Test func hostileCodebookFilesAreRefused() throws {
        let d = 4
        let identity: [Float] = (0..<(d * d)).map { $0 % (d + 1) == 0 ? 1 : 0 }
        let centroids = NearestCentroids((0..<(3 * d)).map { Float($0) }, count: 3, dimensions: d)
        let model = ModelIdentity(id: "m", revision: "r1")
        func write(_ bytes: [UInt8]) throws -> String {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("codebook-\(UUID().uuidString).safetensors").path
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            return path
        }
        func codebook(rotation: [Float] = identity, centroids: NearestCentroids = centroids,
                      fsq: SemanticCodebook.FSQ? = nil, model: ModelIdentity? = model) -> [UInt8] {
            SemanticCodebook(dimensions: d, rotation: rotation, levels: [centroids], fsq: fsq, model: model).bytes()
        }
        #expect(throws: Never.self) { try SemanticCodebook(path: try write(codebook())) }
        let huge = SemanticCodebook.FSQ(levels: [4_294_967_296, 4_294_967_296], projection: [Float](repeating: 0.5, count: 2 * d),
                                        scale: [1, 1])
        let cases: [(String, [UInt8])] = [
            ("FSQ levels whose product overflows", codebook(fsq: huge)),
            ("NaN in the rotation", codebook(rotation: identity.enumerated().map { $0.offset == 5 ? .nan : $0.element })),
            ("infinity in a centroid", codebook(centroids: NearestCentroids(centroids.centroids.map { $0 == 7 ? .infinity : $0 }, count: 3, dimensions: d))),
            ("NaN in the FSQ projection", codebook(fsq: .init(levels: [4, 4], projection: [Float](repeating: .nan, count: 2 * d), scale: [1, 1]))),
            ("trailing bytes", codebook() + [0, 0, 0, 0]),
        ]
        for (what, bytes) in cases {
            #expect(throws: (any Error).self, "\(what)") { try SemanticCodebook(path: try write(bytes)) }
        }
        // A FIFO (or anything else but a regular file) at the path is refused, not waited on.
        let fifo = FileManager.default.temporaryDirectory.appendingPathComponent("codebook-fifo-\(UUID().uuidString)").path
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect { try SemanticCodebook(path: fifo) } throws: { "\($0)".contains("not a regular file") }
        #expect(throws: (any Error).self) { try SemanticCodebook(path: "/dev/zero") }
        // A codebook that names no model is served for a model only when that is allowed explicitly.
        let unstamped = try SemanticCodebook(path: try write(codebook(model: nil)))
        #expect(unstamped.mismatch(dimensions: d, model: model)?.contains("names no model") == true)
        #expect(unstamped.mismatch(dimensions: d, model: model, allowUnstamped: true) == nil)
    }

    @Test func tooFewVectorsAndDuplicatesAreHandled() throws {
        #expect(throws: CodebookFitting.Failure.self) {
            try CodebookFitting.fit([Float](repeating: 0.5, count: 40), count: 10, dimensions: 4, model: nil, options: options())
        }
        // 100 copies of 4 distinct points, 16 clusters: empty clusters are re-seeded, nothing crashes, at most 4
        // codes are used.
        let points: [[Float]] = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
        let x = (0..<400).flatMap { points[$0 % 4] }
        let (_, _, report) = try CodebookFitting.fit(x, count: 400, dimensions: 4, model: nil, options: options())
        #expect(report.levels[0].utilisation <= 4.0 / 16 && report.levels[0].error < 1e-6)
        #expect(report.collisionRate == 1)
    }
}

@Suite struct LRUCacheTests {
    @Test func evictsTheLeastRecentlyUsed() {
        let cache = LRUCache<String, Int>(capacity: 2)
        cache.set([("a", 1), ("b", 2)])
        #expect(cache.values(["a"]) == [1])  // a is now the most recent
        cache.set([("c", 3)])
        #expect(cache.values(["a", "b", "c"]) == [1, nil, 3])
        cache.set([("a", 10)])
        cache.remove(["c"])
        cache.set([("d", 4), ("e", 5)])
        #expect(cache.values(["a", "c", "d", "e"]) == [nil, nil, 4, 5])
        #expect(cache.count == 2)
        #expect(LRUCache<String, Int>(capacity: 0).values(["a"]) == [nil])
    }

    @Test func visitLendsThePresentValuesAndNamesTheAbsentOnes() {
        let cache = LRUCache<String, [Int]>(capacity: 2)
        cache.set([("a", [1]), ("b", [2])])
        var seen: [Int: [Int]] = [:]
        #expect(cache.visit(["b", "x", "a", "b"]) { position, value in seen[position] = value.pointee } == [1])
        #expect(seen == [0: [2], 2: [1], 3: [2]])
        cache.set([("c", [3])])  // b was used last: a goes
        #expect(cache.values(["a", "b", "c"]) == [nil, [2], [3]])
    }

    /// Entries read while old go to the front and outlive the entries never read again; entries read while
    /// among the most recent quarter stay where they are (and are still ahead of the rest).
    @Test func readEntriesOutliveTheUnread() {
        let capacity = LRUCache<String, Int>.shardedFrom
        let cache = LRUCache<String, Int>(capacity: capacity)
        let old = (0..<capacity / 2).map { "old\($0)" }
        cache.set(old.enumerated().map { ($1, $0) })
        let hot = Array(old.prefix(capacity / 16))
        for _ in 0..<3 { #expect(cache.values(hot) == hot.indices.map { $0 }) }
        cache.set((0..<capacity * 5 / 8).map { ("new\($0)", $0) })
        #expect(cache.values(hot).allSatisfy { $0 != nil })
        let cold = cache.values(Array(old.dropFirst(hot.count))).filter { $0 != nil }.count
        #expect(cold < old.count - hot.count, "the cold entries make room")
        #expect(cache.count <= capacity + LRUCache<String, Int>.shardCount)
    }

    /// A large cache is sharded: it still holds at most its capacity (give or take a shard's rounding), keeps
    /// what was used recently over what was not, and visits return the absent positions in order.
    @Test func aShardedCacheStaysBoundedAndKeepsTheRecent() async {
        let capacity = LRUCache<String, Int>.shardedFrom
        let cache = LRUCache<String, Int>(capacity: capacity)
        let first = (0..<capacity / 2).map { "old\($0)" }
        cache.set(first.enumerated().map { ($1, $0) })
        // Read the first half from many tasks at once (the shards' locks), then write as much again.
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 { group.addTask { _ = cache.values(first) } }
        }
        cache.set((0..<capacity).map { ("new\($0)", $0) })
        #expect(cache.count <= capacity + LRUCache<String, Int>.shardCount)
        let newest = (capacity / 2..<capacity).map { "new\($0)" }
        #expect(cache.values(newest) == (capacity / 2..<capacity).map { $0 })
        let keys = ["new\(capacity - 1)", "absent1", "new\(capacity - 2)", "absent2", "absent3"]
        var seen: [Int: Int] = [:]
        #expect(cache.visit(keys) { position, value in seen[position] = value.pointee } == [1, 3, 4])
        #expect(seen == [0: capacity - 1, 2: capacity - 2])
    }
}
