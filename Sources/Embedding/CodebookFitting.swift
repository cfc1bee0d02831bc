import Foundation
internal import Tensor

/// `omniembed fit`: a PCA rotation and residual k-means codebooks (QARM's Res-KMeans) from item vectors.
///
/// Each level clusters what the previous levels left (k-means++ seeding on a sample, Lloyd iterations with the
/// assignments through GEMM, empty clusters re-seeded with the worst-served points); an optional FSQ level
/// quantises the final residual. Deterministic for a seed and a thread count. Run it with OpenBLAS set to one
/// thread: it splits the rows over `threads` itself.
public enum CodebookFitting {
    public struct Options: Sendable {
        public var levels = 3
        public var clusters = 256
        public var iterations = 20
        public var seed: UInt64 = 0
        /// Levels per direction of a final FSQ level (QARM V2); empty for none.
        public var fsqLevels: [Int] = []
        /// How each level's first centroids are chosen.
        public var initialisation = Initialisation.kMeansPlusPlus
        /// k-means++ seeds from this many points per cluster (drawn at random), not from all of them.
        public var seedingPointsPerCluster = 64
        /// Passes of joint codebook refinement after the levels are fitted one by one (`refine`); 0 for none.
        public var refinementPasses = 2
        public var threads = ProcessInfo.processInfo.activeProcessorCount
        public init() {}
    }

    public enum Initialisation: String, Sendable, CaseIterable {
        /// k-means++ on a random sample (`seedingPointsPerCluster` per cluster).
        case kMeansPlusPlus = "kmeans++"
        /// Distinct points drawn at random (as faiss does).
        case random
    }

    public struct LevelReport: Sendable, Equatable {
        /// Mean squared length of the residual this level leaves.
        public var error: Double
        /// `error` over the mean squared length of the vectors.
        public var relativeError: Double
        /// Share of the level's codes that some item has.
        public var utilisation: Double
        public var iterations: Int
    }

    public struct Report: Sendable {
        public var items: Int
        public var levels: [LevelReport]
        /// Utilisation of the FSQ level's codes, when there is one.
        public var fsqUtilisation: Double?
        /// Share of items whose full code another item also has.
        public var collisionRate: Double
        /// Mean squared length of the (rotated) vectors.
        public var meanSquaredNorm: Double
        /// Refinement passes kept (each lowered the error).
        public var refinementPasses: Int
    }

    public enum Progress: Sendable {
        case rotation
        /// `moved`: the items whose nearest centroid changed in that iteration.
        case level(Int, iteration: Int, of: Int, moved: Int)
        case refinement(pass: Int, of: Int)
        case fsq
    }

    public enum Failure: Error, CustomStringConvertible {
        case tooFewItems(Int, needed: Int)
        case invalid(String)

        public var description: String {
            switch self {
            case .tooFewItems(let count, let needed): "\(count) vectors: at least \(needed) are needed (one per cluster)"
            case .invalid(let message): message
            }
        }
    }

    /// Fits on `count` vectors of `dimensions` floats (row-major). Returns the codebook (its `version` empty until it
    /// is written and read back), every item's codes (count × codeLength, row-major) and the report.
    public static func fit(_ vectors: [Float], count: Int, dimensions d: Int, model: ModelIdentity?, options: Options,
                           progress: (Progress) -> Void = { _ in }) throws -> (SemanticCodebook, codes: [Int32], Report) {
        guard options.levels >= 1, options.clusters >= 1, options.iterations >= 0, options.threads >= 1,
              options.refinementPasses >= 0 else {
            throw Failure.invalid("levels, clusters and threads must be at least 1, iterations and refinement passes at least 0")
        }
        guard options.fsqLevels.allSatisfy({ $0 >= 2 }), options.fsqLevels.count <= d else {
            throw Failure.invalid("FSQ levels must be at least 2 each, for at most \(d) directions")
        }
        guard count >= options.clusters else { throw Failure.tooFewItems(count, needed: options.clusters) }
        precondition(vectors.count == count * d, "\(vectors.count) floats are not \(count) × \(d)")
        var random = SplitMix64(seed: options.seed)
        let threads = options.threads

        progress(.rotation)
        let rotation = try PrincipalAxes(of: vectors, count: count, dimensions: d, threads: threads).axes
        var residual = [Float](repeating: 0, count: count * d)
        vectors.withUnsafeBufferPointer { x in
            residual.withUnsafeMutableBufferPointer { out in
                let (x, out) = (UnsafeSendable(x.baseAddress!), UnsafeSendable(out.baseAddress!))
                parallelRows(count, threads: threads) { range in
                    GEMM.multiply(x.pointer + range.lowerBound * d, rotation, into: out.pointer + range.lowerBound * d,
                                  m: range.count, n: d, k: d, transposeB: true)
                }
            }
        }
        let meanSquaredNorm = meanSquaredLength(residual, count: count, dimensions: d)
        let rotated = options.refinementPasses > 0 ? residual : []

        var encoding = Encoding(centroids: [], assignments: [], errors: [])
        var iterations: [Int] = []
        for level in 0..<options.levels {
            let fitted = KMeans.fit(
                residual, count: count, dimensions: d, clusters: options.clusters, iterations: options.iterations,
                seedingSample: options.initialisation == .random ? 0 : options.seedingPointsPerCluster * options.clusters,
                threads: threads, random: &random
            ) { iteration, moved in progress(.level(level, iteration: iteration, of: options.iterations, moved: moved)) }
            residual.withUnsafeMutableBufferPointer { r in
                Rows.subtract(fitted.centroids, from: r.baseAddress!, rows: count, columns: d, assignment: fitted.assignment)
            }
            encoding.centroids.append(fitted.centroids)
            encoding.assignments.append(fitted.assignment)
            encoding.errors.append(fitted.distances.reduce(0.0) { $0 + Double($1) } / Double(count))
            iterations.append(fitted.iterations)
        }
        var refinementPasses = 0
        for pass in 0..<options.refinementPasses {
            progress(.refinement(pass: pass + 1, of: options.refinementPasses))
            let refined = refine(encoding, rotated: rotated, residual: &residual, count: count, dimensions: d,
                                 clusters: options.clusters, threads: threads)
            // Greedy encoding with refined codebooks has lowered the error in every trial, but is not bound to.
            guard refined.errors.last! < encoding.errors.last! else {
                residual = rotated
                residual.withUnsafeMutableBufferPointer { r in
                    for (centroids, assignment) in zip(encoding.centroids, encoding.assignments) {
                        Rows.subtract(centroids, from: r.baseAddress!, rows: count, columns: d, assignment: assignment)
                    }
                }
                break
            }
            encoding = refined
            refinementPasses += 1
        }

        let levels = encoding.centroids.map { NearestCentroids($0, count: options.clusters, dimensions: d) }
        let length = options.levels + (options.fsqLevels.isEmpty ? 0 : 1)
        var codes = [Int32](repeating: 0, count: count * length)
        var reports: [LevelReport] = []
        for level in 0..<options.levels {
            for i in 0..<count { codes[i * length + level] = encoding.assignments[level][i] }
            let error = encoding.errors[level]
            reports.append(LevelReport(error: error, relativeError: meanSquaredNorm > 0 ? error / meanSquaredNorm : 0,
                                       utilisation: utilisation(encoding.assignments[level], codeCount: options.clusters),
                                       iterations: iterations[level]))
        }

        var fsq: SemanticCodebook.FSQ?
        var fsqUtilisation: Double?
        if !options.fsqLevels.isEmpty {
            progress(.fsq)
            let m = options.fsqLevels.count
            let axes = try PrincipalAxes(of: residual, count: count, dimensions: d, threads: threads, centred: false)
            let quantiser = SemanticCodebook.FSQ(levels: options.fsqLevels, projection: Array(axes.axes.prefix(m * d)),
                                                 scale: axes.values.prefix(m).map { Float(max($0, 1e-12).squareRoot()) })
            var projected = [Float](repeating: 0, count: count * m)
            GEMM.multiply(residual, quantiser.projection, into: &projected, m: count, n: m, k: d, transposeB: true)
            var fsqCodes = [Int32](repeating: 0, count: count)
            projected.withUnsafeBufferPointer { p in
                for i in 0..<count { fsqCodes[i] = Int32(quantiser.code(p.baseAddress! + i * m)) }
            }
            for i in 0..<count { codes[i * length + length - 1] = fsqCodes[i] }
            fsqUtilisation = utilisation(fsqCodes, codeCount: quantiser.codeCount)
            fsq = quantiser
        }

        let codebook = SemanticCodebook(
            dimensions: d, rotation: rotation, levels: levels, fsq: fsq, model: model,
            metadata: ["seed": String(options.seed), "iterations": String(options.iterations), "items": String(count),
                       "refinement_passes": String(refinementPasses),
                       "created_at": ISO8601DateFormatter().string(from: Date())])
        let report = Report(items: count, levels: reports, fsqUtilisation: fsqUtilisation,
                            collisionRate: collisionRate(codes, length: length), meanSquaredNorm: meanSquaredNorm,
                            refinementPasses: refinementPasses)
        return (codebook, codes, report)
    }

    /// Share of items whose full code (`length` codes, row-major) is shared with at least one other item.
    public static func collisionRate(_ codes: [Int32], length: Int) -> Double {
        let count = length == 0 ? 0 : codes.count / length
        guard count > 0 else { return 0 }
        // Each full code as one integer (mixed radix) when it fits, else as its slice; sorted, equal runs collide.
        var radix = [UInt64](repeating: 1, count: length)
        for i in 0..<count { for l in 0..<length { radix[l] = max(radix[l], UInt64(max(0, codes[i * length + l])) + 1) } }
        var fits = true, product: UInt64 = 1
        for r in radix {
            let (next, overflow) = product.multipliedReportingOverflow(by: r)
            if overflow { fits = false; break }
            product = next
        }
        func colliding<Key: Equatable>(_ keys: [Key]) -> Int {
            var colliding = 0, run = 1
            for i in 1...keys.count {
                if i < keys.count, keys[i] == keys[i - 1] {
                    run += 1
                } else {
                    if run > 1 { colliding += run }
                    run = 1
                }
            }
            return colliding
        }
        if fits {
            let keys = (0..<count).map { i in
                (0..<length).reduce(UInt64(0)) { $0 * radix[$1] + UInt64(max(0, codes[i * length + $1])) }
            }.sorted()
            return Double(colliding(keys)) / Double(count)
        }
        let keys = (0..<count).map { codes[$0 * length..<($0 + 1) * length] }.sorted { $0.lexicographicallyPrecedes($1) }
        return Double(colliding(keys)) / Double(count)
    }

    /// Share of `codeCount` codes that occur in `codes`.
    public static func utilisation(_ codes: [Int32], codeCount: Int) -> Double {
        var seen = [Bool](repeating: false, count: codeCount)
        for code in codes where code >= 0 && Int(code) < codeCount { seen[Int(code)] = true }
        return Double(seen.count { $0 }) / Double(codeCount)
    }

    // MARK: - k-means

    /// Residual codebooks and the greedy encoding of the fitted rows with them: per level the centroids
    /// (clusters × dimensions), every row's code and the mean squared residual left after that level.
    struct Encoding {
        var centroids: [[Float]]
        var assignments: [[Int32]]
        var errors: [Double]
    }

    /// One pass of joint codebook refinement: each level's centroids in turn become the means of what the
    /// other levels leave of their members (the codes fixed), which lowers the error of those codes; then the rows
    /// are encoded again greedily, level by level, as serving encodes them. Fitting level by level makes each
    /// level's centroids the best for the residuals it saw, not for the codes the later levels add (the
    /// "improved residual VQ" observation); on 200k clustered vectors one pass lowered the 3-level error by 0.8%.
    /// Returns the refined encoding; `residual` (what `encoding` leaves of `rotated` on entry) becomes what the
    /// refined one leaves. Works in place: at a million vectors each copy is 1.5 GB.
    static func refine(_ encoding: Encoding, rotated: [Float], residual: inout [Float], count: Int, dimensions d: Int,
                       clusters k: Int, threads: Int) -> Encoding {
        var centroids = encoding.centroids
        for level in centroids.indices {
            let assignment = encoding.assignments[level]
            let negated = centroids[level].map { -$0 }
            residual.withUnsafeMutableBufferPointer { r in
                Rows.subtract(negated, from: r.baseAddress!, rows: count, columns: d, assignment: assignment)
            }
            centroids[level] = KMeans.clusterMeans(residual, count: count, dimensions: d, clusters: k, assignment: assignment,
                                            threads: threads, keeping: centroids[level])
            residual.withUnsafeMutableBufferPointer { r in
                Rows.subtract(centroids[level], from: r.baseAddress!, rows: count, columns: d, assignment: assignment)
            }
        }
        var encoded = Encoding(centroids: centroids, assignments: [], errors: [])
        rotated.withUnsafeBufferPointer { x in
            residual.withUnsafeMutableBufferPointer { r in r.baseAddress!.update(from: x.baseAddress!, count: count * d) }
        }
        let parts = Parallel.ranges(count, parts: threads)
        for level in centroids.indices {
            let search = NearestCentroids(centroids[level], count: k, dimensions: d)
            var assignment = [Int32](repeating: 0, count: count)
            var distance = [Float](repeating: 0, count: count)
            residual.withUnsafeMutableBufferPointer { r in
                assignment.withUnsafeMutableBufferPointer { a in
                    distance.withUnsafeMutableBufferPointer { e in
                        let (r, a, e) = (UnsafeSendable(r.baseAddress!), UnsafeSendable(a.baseAddress!),
                                         UnsafeSendable(e.baseAddress!))
                        Parallel.run(parts.count) { part in
                            let range = parts[part]
                            search.assign(r.pointer + range.lowerBound * d, rows: range.count,
                                          index: a.pointer + range.lowerBound, distance: e.pointer + range.lowerBound)
                            Rows.subtract(search.centroids, from: r.pointer + range.lowerBound * d, rows: range.count,
                                          columns: d, assignment: a.pointer + range.lowerBound)
                        }
                    }
                }
            }
            encoded.assignments.append(assignment)
            encoded.errors.append(distance.reduce(0.0) { $0 + Double($1) } / Double(count))
        }
        return encoded
    }

    private static func meanSquaredLength(_ x: [Float], count: Int, dimensions: Int) -> Double {
        var norms = [Float](repeating: 0, count: count)
        Rows.squaredNorms(x, rows: count, columns: dimensions, into: &norms)
        return norms.reduce(0.0) { $0 + Double($1) } / Double(max(count, 1))
    }

    /// `body` over `threads` contiguous ranges of `count` rows at once.
    private static func parallelRows(_ count: Int, threads: Int, _ body: @Sendable (Range<Int>) -> Void) {
        let ranges = Parallel.ranges(count, parts: threads)
        Parallel.run(ranges.count) { body(ranges[$0]) }
    }
}
