import Tensor

/// Match features for ranking models: how a candidate relates to a user's history (SAIL-Embedding's "SID &
/// embedding" features, SIM's most similar history items, QARM's code-prefix cross features).
public enum MatchFeatures {
    public enum Feature: String, Sendable, CaseIterable {
        case userCos = "user_cos"
        case maxCos = "max_cos"
        case topkMeanCos = "topk_mean_cos"
        case simTop = "sim_top"
        case sidMatch = "sid_match"
    }

    /// A history item close to a candidate: its position in the history and the cosine.
    public struct Neighbour: Sendable, Equatable {
        public var index: Int
        public var score: Float
    }

    /// One candidate's features (those asked for; the others `nil`).
    public struct Result: Sendable, Equatable {
        public var userCos: Float?
        public var maxCos: Float?
        public var topkMeanCos: Float?
        public var simTop: [Neighbour]?
        /// Per level: history items whose codes up to that level equal the candidate's.
        public var sidMatch: [Int]?
    }

    public struct Query: Sendable {
        /// historyCount × dimensions, unit rows, oldest first.
        public var history: [Float]
        public var historyCount: Int
        /// candidateCount × dimensions, unit rows.
        public var candidates: [Float]
        public var candidateCount: Int
        public var dimensions: Int
        public var features: Set<Feature>
        /// Per history item; `nil` for equal weights.
        public var weights: [Float]?
        /// The user vector averages the last `recent` history items.
        public var recent: Int
        public var topK: Int
        public var simTop: Int
        /// For `sid_match`: every history item's and candidate's codes, and the code count of each level.
        public var historyCodes: [[Int]] = []
        public var candidateCodes: [[Int]] = []
        public var codeCounts: [Int] = []

        public init(history: [Float], historyCount: Int, candidates: [Float], candidateCount: Int, dimensions: Int,
                    features: Set<Feature>, weights: [Float]? = nil, recent: Int, topK: Int, simTop: Int) {
            self.history = history
            self.historyCount = historyCount
            self.candidates = candidates
            self.candidateCount = candidateCount
            self.dimensions = dimensions
            self.features = features
            self.weights = weights
            self.recent = recent
            self.topK = topK
            self.simTop = simTop
        }
    }

    /// The user interest vector (SAIL's sequence-to-item query): the weighted mean of the last `recent` of
    /// `count` unit history rows, normalised. Zero when the weights there sum to zero.
    public static func userVector(_ history: [Float], count: Int, dimensions d: Int, weights: [Float]?, recent: Int) -> [Float] {
        var sum = [Float](repeating: 0, count: d)
        for i in max(0, count - recent)..<count {
            let w = weights?[i] ?? 1
            guard w != 0 else { continue }
            for j in 0..<d { sum[j] += w * history[i * d + j] }
        }
        return Matryoshka.normalized(sum)
    }

    /// Every candidate's features: one GEMM (candidates × history) split by candidate rows over `threads`, then
    /// a partial selection per row.
    public static func compute(_ query: Query, threads: Int = 1) -> [Result] {
        let (h, c, d) = (query.historyCount, query.candidateCount, query.dimensions)
        guard c > 0 else { return [] }
        let features = query.features
        let user = features.contains(.userCos)
            ? userVector(query.history, count: h, dimensions: d, weights: query.weights, recent: query.recent) : []
        let selected = features.contains(.simTop) || features.contains(.topkMeanCos)
            ? max(features.contains(.simTop) ? query.simTop : 0, features.contains(.topkMeanCos) ? query.topK : 0) : 1
        let needScores = h > 0 && !features.isDisjoint(with: [.maxCos, .topkMeanCos, .simTop])
        let sid = features.contains(.sidMatch) ? PrefixCounts(query.historyCodes, codeCounts: query.codeCounts) : nil

        var results = [Result](repeating: Result(), count: c)
        let parts = Parallel.ranges(c, parts: h * c * d >= 1 << 22 ? threads : 1)
        results.withUnsafeMutableBufferPointer { results in
            let out = UnsafeSendable(results.baseAddress!)
            Parallel.run(parts.count) { part in
                let rows = parts[part]
                // Every element is written by the GEMM: no zeroing pass over a few megabytes.
                let size = needScores ? rows.count * h : 0
                var scores = [Float](unsafeUninitializedCapacity: size) { _, count in count = size }
                if needScores {
                    query.candidates.withUnsafeBufferPointer { candidates in
                        GEMM.multiply(candidates.baseAddress! + rows.lowerBound * d, query.history, into: &scores,
                                      m: rows.count, n: h, k: d, transposeB: true)
                    }
                }
                var top = TopScores(capacity: min(selected, h))
                // Per row, these would be set look-ups (hashing) thousands of times.
                let (wantUser, wantMax, wantMean, wantSim) = (features.contains(.userCos), features.contains(.maxCos),
                                                              features.contains(.topkMeanCos), features.contains(.simTop))
                for (offset, row) in rows.enumerated() {
                    var result = Result()
                    if wantUser {
                        result.userCos = query.candidates.withUnsafeBufferPointer { candidates in
                            user.withUnsafeBufferPointer { user in
                                let x = candidates.baseAddress! + row * d
                                var dot: Float = 0
                                for j in 0..<d { dot += x[j] * user[j] }
                                return dot
                            }
                        }
                    }
                    if needScores {
                        top.reset()
                        scores.withUnsafeBufferPointer { s in top.add(s.baseAddress! + offset * h, count: h) }
                        let best = top.sorted()
                        if wantMax { result.maxCos = best.first?.score }
                        if wantMean {
                            let k = best.prefix(query.topK)
                            result.topkMeanCos = k.isEmpty ? nil : k.reduce(0) { $0 + $1.score } / Float(k.count)
                        }
                        if wantSim { result.simTop = Array(best.prefix(query.simTop)) }
                    } else if h == 0 {
                        result.simTop = wantSim ? [] : nil
                    }
                    if let sid { result.sidMatch = sid.matches(query.candidateCodes[row]) }
                    out.pointer[row] = result
                }
            }
        }
        return results
    }

    /// How many history items share each code prefix, per level (prefixes packed into one integer).
    struct PrefixCounts {
        let codeCounts: [Int]
        var counts: [[Int: Int]]

        init(_ codes: [[Int]], codeCounts: [Int]) {
            self.codeCounts = codeCounts
            counts = Array(repeating: [:], count: codeCounts.count)
            for item in codes {
                var key = 0
                for level in 0..<min(item.count, codeCounts.count) {
                    key = key * codeCounts[level] + item[level]
                    counts[level][key, default: 0] += 1
                }
            }
        }

        func matches(_ codes: [Int]) -> [Int] {
            var key = 0
            return (0..<min(codes.count, codeCounts.count)).map { level in
                key = key * codeCounts[level] + codes[level]
                return counts[level][key] ?? 0
            }
        }
    }

    /// The `capacity` best scores of a row (ties to the lower index): a min-heap whose root is the worst kept.
    struct TopScores {
        let capacity: Int
        private var heap: [Neighbour] = []

        init(capacity: Int) {
            self.capacity = capacity
            heap.reserveCapacity(capacity)
        }

        mutating func reset() { heap.removeAll(keepingCapacity: true) }

        /// Worse: a lower score, or an equal score at a higher index.
        private static func worse(_ a: Neighbour, _ b: Neighbour) -> Bool {
            a.score < b.score || (a.score == b.score && a.index > b.index)
        }

        mutating func add(_ scores: UnsafePointer<Float>, count: Int) {
            guard capacity > 0 else { return }
            var index = 0
            while heap.count < capacity, index < count {
                heap.append(Neighbour(index: index, score: scores[index]))
                siftUp(heap.count - 1)
                index += 1
            }
            guard index < count else { return }
            // Later indices lose ties, so only a score above the worst kept can enter.
            var threshold = heap[0].score
            while index < count {
                let score = scores[index]
                if score > threshold {
                    heap[0] = Neighbour(index: index, score: score)
                    siftDown(0)
                    threshold = heap[0].score
                }
                index += 1
            }
        }

        /// Best first.
        func sorted() -> [Neighbour] {
            heap.sorted { Self.worse($1, $0) }
        }

        private mutating func siftUp(_ start: Int) {
            var i = start
            while i > 0 {
                let parent = (i - 1) / 2
                guard Self.worse(heap[i], heap[parent]) else { return }
                heap.swapAt(i, parent)
                i = parent
            }
        }

        private mutating func siftDown(_ start: Int) {
            var i = start
            while true {
                let (left, right) = (2 * i + 1, 2 * i + 2)
                var worst = i
                if left < heap.count, Self.worse(heap[left], heap[worst]) { worst = left }
                if right < heap.count, Self.worse(heap[right], heap[worst]) { worst = right }
                guard worst != i else { return }
                heap.swapAt(i, worst)
                i = worst
            }
        }
    }
}
