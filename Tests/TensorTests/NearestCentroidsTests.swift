import Testing
import Tensor

/// The bounded assignment step (Hamerly's and Yinyang's bounds) against a full search: the bounds may only skip
/// rows whose nearest centroid cannot have changed, and the sums it keeps must be the clusters' sums.
@Suite struct NearestCentroidsTests {
    /// Clustered rows (so that rows sit near their centroid, where bounds prune) from a fixed generator.
    static func data(rows: Int, dimensions d: Int, seed: UInt64) -> [Float] {
        var state = seed
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2_000_001) / 1_000_000 - 1
        }
        let centres = (0..<20 * d).map { _ in next() }
        return (0..<rows).flatMap { r in (0..<d).map { centres[(r % 20) * d + $0] + 0.3 * next() } }
    }

    @Test(arguments: [(3000, 48, 40, 1), (2500, 32, 7, 3), (1800, 64, 256, 2)])
    func boundedAssignmentsEqualAFullSearch(rows: Int, d: Int, k: Int, threads: Int) {
        let x = Self.data(rows: rows, dimensions: d, seed: UInt64(k))
        var norms = [Float](repeating: 0, count: rows)
        Rows.squaredNorms(x, rows: rows, columns: d, into: &norms)
        var centroids = NearestCentroids(Array(x[0..<k * d]), count: k, dimensions: d)
        var movement = NearestCentroids.Movement(clusters: k)
        var index = [Int32](repeating: -1, count: rows)
        var distance = [Float](repeating: 0, count: rows)
        var upper = [Float](repeating: .infinity, count: rows)
        var lower = [Float](repeating: 0, count: rows * NearestCentroids.boundGroups(clusters: k))
        let parts = Parallel.ranges(rows, parts: threads).count
        var sums = [Double](repeating: 0, count: parts * k * d)
        var counts = [Int64](repeating: 0, count: parts * k)

        for iteration in 0..<12 {
            let exact = iteration == 11
            let changed = sums.withUnsafeMutableBufferPointer { sums in
                counts.withUnsafeMutableBufferPointer { counts in
                    let accumulators = (0..<parts).map {
                        NearestCentroids.Accumulator(sums: sums.baseAddress! + $0 * k * d,
                                                     counts: counts.baseAddress! + $0 * k)
                    }
                    return centroids.reassign(x, rows: rows, rowNorms: norms, index: &index, distance: &distance,
                                              upper: &upper, lower: &lower, movement: movement, exact: exact,
                                              threads: threads, accumulators: accumulators)
                }
            }
            var fullIndex = [Int32](repeating: 0, count: rows)
            var fullDistance = [Float](repeating: 0, count: rows)
            centroids.assign(x, rows: rows, index: &fullIndex, distance: &fullDistance)
            #expect(index == fullIndex, "iteration \(iteration)")
            if iteration == 0 { #expect(changed == rows) }
            if exact {
                for r in 0..<rows { #expect(abs(distance[r] - fullDistance[r]) <= 1e-4 * max(1, fullDistance[r])) }
            }
            // The kept sums and counts are the clusters' own.
            var expectedSums = [Double](repeating: 0, count: k * d)
            var expectedCounts = [Int64](repeating: 0, count: k)
            for r in 0..<rows {
                expectedCounts[Int(index[r])] += 1
                for j in 0..<d { expectedSums[Int(index[r]) * d + j] += Double(x[r * d + j]) }
            }
            for cluster in 0..<k {
                let count = (0..<parts).reduce(Int64(0)) { $0 + counts[$1 * k + cluster] }
                #expect(count == expectedCounts[cluster])
                for j in 0..<d {
                    let sum = (0..<parts).reduce(0.0) { $0 + sums[($1 * k + cluster) * d + j] }
                    #expect(abs(sum - expectedSums[cluster * d + j]) < 1e-6 * Double(rows))
                }
            }
            // The means, with one centroid thrown far off every third iteration (a large drift in one group).
            var next = centroids.centroids
            for cluster in 0..<k where expectedCounts[cluster] > 0 {
                for j in 0..<d { next[cluster * d + j] = Float(expectedSums[cluster * d + j] / Double(expectedCounts[cluster])) }
            }
            if iteration % 3 == 2 { for j in 0..<d { next[(iteration % k) * d + j] += 3 } }
            let moved = NearestCentroids(next, count: k, dimensions: d)
            movement = NearestCentroids.Movement(from: centroids, to: moved)
            centroids = moved
        }
    }
}
