internal import Tensor

/// Match features for ranking models: how a candidate relates to a user's history (SAIL-Embedding's "SID &
/// embedding" features, SIM's most similar history items, QARM's code-prefix cross features).
public enum MatchFeatures {
    public enum Feature: String, Sendable, CaseIterable {
        case userCos = "user_cos"
        case maxCos = "max_cos"
        case topkMeanCos = "topk_mean_cos"
        case simTop = "sim_top"
        case sidMatch = "sid_match"
        /// The candidate's own semantic ID (QARM's code features), beside the features that compare it.
        case sid
    }

    /// The features of a run of consecutive candidate rows, row-major; arrays of features not asked for are empty.
    public struct Block: Sendable {
        public let rows: Range<Int>
        public var userCos: [Float] = []
        public var maxCos: [Float] = []
        public var topkMeanCos: [Float] = []
        /// Per row, `simTopCount` history positions and cosines, the most similar first (a tie goes to the
        /// lower position).
        public var simTopCount = 0
        public var simTopIndex: [Int32] = []
        public var simTopScore: [Float] = []
        /// Per row, `levels` counts: history items whose codes up to that level equal the candidate's.
        public var levels = 0
        public var sidMatch: [Int] = []
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
        /// The format of the candidates × history product: fp32, or bf16 (operands rounded to bfloat16, sums in
        /// fp32) where the CPU has it.
        public var precision = TowerPrecision.fp32

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
        let window = max(0, count - recent)..<count
        // Weights relative to the largest: the mean's direction is the same, and no product or sum overflows.
        let largest = weights.map { w in window.reduce(Float(0)) { max($0, w[$1]) } } ?? 1
        guard largest > 0, largest.isFinite else { return sum }
        for i in window {
            let w = (weights?[i] ?? 1) / largest
            guard w != 0 else { continue }
            for j in 0..<d { sum[j] += w * history[i * d + j] }
        }
        return Matryoshka.normalized(sum)
    }

    /// Every candidate's features, in blocks of consecutive rows computed in parallel over `threads` (a few
    /// blocks per thread, so a thread that starts late still takes some): per block one GEMM (its candidates ×
    /// the history) and a top-k per row, then `body`, whose results come back in row order.
    public static func compute<T: Sendable>(_ query: Query, threads: Int = 1, _ body: @Sendable (Block) -> T) -> [T] {
        let (h, c, d) = (query.historyCount, query.candidateCount, query.dimensions)
        guard c > 0 else { return [] }
        let features = query.features
        let (wantUser, wantMax, wantMean, wantSim, wantSid) = (
            features.contains(.userCos), features.contains(.maxCos), features.contains(.topkMeanCos),
            features.contains(.simTop), features.contains(.sidMatch))
        let user = wantUser && h > 0
            ? userVector(query.history, count: h, dimensions: d, weights: query.weights, recent: query.recent) : []
        // How many of each row's best scores are kept: enough for every feature asked for.
        let simTop = wantSim ? min(query.simTop, h) : 0
        let topK = min(query.topK, h)
        let kept = h == 0 || !(wantMax || wantMean || wantSim) ? 0 : max(simTop, wantMean ? topK : 0, 1)
        let sid = wantSid ? PrefixCounts(query.historyCodes, codeCounts: query.codeCounts) : nil

        // In bf16 the history is packed once for every block, as a layer's weights are.
        let packedHistory = kept > 0 && query.precision.effective == .bf16
            ? Linear(weight: query.history, bias: [Float](repeating: 0, count: h), outputs: h, inputs: d, precision: .bf16) : nil
        let big = (kept > 0 ? h : 1) * c * d >= 1 << 21
        let blocks = Parallel.ranges(c, parts: big && threads > 1 ? max(min(2 * threads, c / 64), c / 128) : 1)
        return Parallel.map(blocks.count, parts: blocks.count) { part in
            let rows = blocks[part]
            var block = Block(rows: rows)
            query.candidates.withUnsafeBufferPointer { candidates in
                let x = candidates.baseAddress! + rows.lowerBound * d
                if wantUser {
                    block.userCos = [Float](repeating: 0, count: rows.count)
                    if !user.isEmpty {
                        GEMM.multiply(x, user, into: &block.userCos, m: rows.count, n: 1, k: d, transposeB: true)
                    }
                }
                guard kept > 0 else { return }
                // Every element is written by the GEMM: no zeroing pass.
                let scores = [Float](unsafeUninitializedCapacity: rows.count * h) { scores, count in
                    if let packedHistory {
                        packedHistory.apply(x, rows: rows.count, into: scores.baseAddress!)
                    } else {
                        GEMM.multiply(x, query.history, into: scores.baseAddress!, m: rows.count, n: h, k: d, transposeB: true)
                    }
                    count = rows.count * h
                }
                let (topIndex, topScore) = Kernels.topK(scores, rows: rows.count, columns: h, k: kept)
                if wantMax { block.maxCos = (0..<rows.count).map { topScore[$0 * kept] } }
                if wantMean {
                    block.topkMeanCos = (0..<rows.count).map { row in
                        var sum: Float = 0
                        for j in 0..<topK { sum += topScore[row * kept + j] }
                        return sum / Float(topK)
                    }
                }
                if wantSim {
                    block.simTopCount = simTop
                    if simTop == kept {
                        block.simTopIndex = topIndex
                        block.simTopScore = topScore
                    } else {
                        block.simTopIndex = (0..<rows.count * simTop).map { topIndex[$0 / simTop * kept + $0 % simTop] }
                        block.simTopScore = (0..<rows.count * simTop).map { topScore[$0 / simTop * kept + $0 % simTop] }
                    }
                }
            }
            if let sid {
                block.levels = query.codeCounts.count
                block.sidMatch.reserveCapacity(rows.count * block.levels)
                for row in rows { sid.append(query.candidateCodes[row], to: &block.sidMatch, levels: block.levels) }
            }
            return body(block)
        }
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

        /// Appends the counts of `codes`' prefixes, one per level (0 past the codes' end).
        func append(_ codes: [Int], to counts: inout [Int], levels: Int) {
            var key = 0
            for level in 0..<levels {
                guard level < codes.count else { counts.append(0); continue }
                key = key * codeCounts[level] + codes[level]
                counts.append(self.counts[level][key] ?? 0)
            }
        }
    }
}
