/// Lloyd's k-means: the centroids, and each row's cluster and squared distance against them.
public struct KMeans: Sendable {
    /// clusters × dimensions.
    public var centroids: [Float]
    public var assignment: [Int32]
    /// Squared distances to the final centroids.
    public var distances: [Float]
    /// Iterations run (fewer than asked when no row changed cluster).
    public var iterations: Int

    /// Lloyd's k-means on `count` rows of `x` (`d` floats each), seeded by k-means++ on `seedingSample` rows (at
    /// most k: k random rows). Each iteration searches only the rows whose
    /// nearest centroid may have changed (Hamerly's and Yinyang's bounds: the same assignments as a full search, for a fraction
    /// of the GEMM work once the centroids settle) and updates the clusters' sums by the rows that moved.
    public static func fit(_ x: [Float], count: Int, dimensions d: Int, clusters k: Int, iterations: Int,
                           seedingSample: Int, threads: Int, random: inout SplitMix64,
                           progress: (Int, Int) -> Void) -> KMeans {
        var search = NearestCentroids(seed(x, count: count, dimensions: d, clusters: k, sample: seedingSample,
                                           threads: threads, random: &random), count: k, dimensions: d)
        var movement = NearestCentroids.Movement(clusters: k)
        var assignment = [Int32](repeating: -1, count: count)
        var distance = [Float](repeating: 0, count: count)
        var upper = [Float](repeating: .infinity, count: count)
        var lower = [Float](repeating: 0, count: count * NearestCentroids.boundGroups(clusters: k))
        var norms = [Float](repeating: 0, count: count)
        let parts = Parallel.ranges(count, parts: threads)
        x.withUnsafeBufferPointer { x in
            norms.withUnsafeMutableBufferPointer { out in
                let (x, out) = (UnsafeSendable(x.baseAddress!), UnsafeSendable(out.baseAddress!))
                Parallel.run(parts.count) { part in
                    let range = parts[part]
                    Rows.squaredNorms(x.pointer + range.lowerBound * d, rows: range.count, columns: d,
                                      into: out.pointer + range.lowerBound)
                }
            }
        }
        // Per part of the rows: the clusters' sums and counts, updated as rows move.
        let sums = UnsafeMutableBufferPointer<Double>.allocate(capacity: parts.count * k * d)
        let counts = UnsafeMutableBufferPointer<Int64>.allocate(capacity: parts.count * k)
        defer { sums.deallocate(); counts.deallocate() }
        sums.initialize(repeating: 0)
        counts.initialize(repeating: 0)
        let accumulators = parts.indices.map {
            NearestCentroids.Accumulator(sums: sums.baseAddress! + $0 * k * d, counts: counts.baseAddress! + $0 * k)
        }

        func reassign(exact: Bool) -> Int {
            x.withUnsafeBufferPointer { x in
                norms.withUnsafeBufferPointer { norms in
                    assignment.withUnsafeMutableBufferPointer { index in
                        distance.withUnsafeMutableBufferPointer { distance in
                            upper.withUnsafeMutableBufferPointer { upper in
                                lower.withUnsafeMutableBufferPointer { lower in
                                    search.reassign(x.baseAddress!, rows: count, rowNorms: norms.baseAddress!,
                                                    index: index.baseAddress!, distance: distance.baseAddress!,
                                                    upper: upper.baseAddress!, lower: lower.baseAddress!,
                                                    movement: movement, exact: exact, threads: threads,
                                                    accumulators: accumulators)
                                }
                            }
                        }
                    }
                }
            }
        }

        var ran = 0
        for iteration in 0..<iterations {
            let changed = reassign(exact: false)
            if changed == 0 { break }
            ran = iteration + 1
            progress(iteration + 1, changed)
            let next = NearestCentroids(
                update(x, count: count, dimensions: d, clusters: k, parts: parts.count, sums: sums, counts: counts,
                       distance: distance, previous: search.centroids), count: k, dimensions: d)
            movement = NearestCentroids.Movement(from: search, to: next)
            search = next
        }
        // Against the final centroids, with every row's distance computed afresh.
        _ = reassign(exact: true)
        return KMeans(centroids: search.centroids, assignment: assignment, distances: distance, iterations: ran)
    }

    /// New centroids from the per-part cluster sums and counts: the mean of each cluster's points; an empty
    /// cluster takes the point farthest from its own centroid (as last computed) that no other empty cluster took.
    private static func update(_ x: [Float], count: Int, dimensions d: Int, clusters k: Int, parts: Int,
                               sums: UnsafeMutableBufferPointer<Double>, counts: UnsafeMutableBufferPointer<Int64>,
                               distance: [Float], previous: [Float]) -> [Float] {
        var (centroids, empty) = means(sums: sums, counts: counts, parts: parts, clusters: k, dimensions: d,
                                       previous: previous)
        if !empty.isEmpty {
            let farthest = (0..<count).sorted { distance[$0] != distance[$1] ? distance[$0] > distance[$1] : $0 < $1 }
            for (cluster, point) in zip(empty, farthest) {
                for j in 0..<d { centroids[cluster * d + j] = x[point * d + j] }
            }
        }
        return centroids
    }

    /// k-means++ seeding on `sample` points drawn at random: each next centroid is a point drawn with probability
    /// proportional to its squared distance from the centroids so far. With `sample` at most k: k random points.
    private static func seed(_ x: [Float], count: Int, dimensions d: Int, clusters k: Int, sample: Int, threads: Int,
                             random: inout SplitMix64) -> [Float] {
        let size = min(count, max(sample, k))
        var order = Array(0..<count)
        for i in 0..<size {
            let j = i + Int(random.next(below: UInt64(count - i)))
            order.swapAt(i, j)
        }
        var points = [Float](repeating: 0, count: size * d)
        for i in 0..<size { for j in 0..<d { points[i * d + j] = x[order[i] * d + j] } }
        // A sample of k points is the random initialisation.
        if size == k { return points }

        var centroids = [Float](repeating: 0, count: k * d)
        var nearest = [Float](repeating: .infinity, count: size)
        // Each new centre updates the sample's distances in parts (one per thread), each part's total in Double,
        // summed in part order: the draw is the same for a seed and a thread count.
        let parts = Parallel.ranges(size, parts: threads)
        var chosen = Int(random.next(below: UInt64(size)))
        for cluster in 0..<k {
            for j in 0..<d { centroids[cluster * d + j] = points[chosen * d + j] }
            guard cluster + 1 < k else { break }
            let centre = chosen
            let totals = points.withUnsafeBufferPointer { points in
                nearest.withUnsafeMutableBufferPointer { nearest in
                    let (points, nearest) = (UnsafeSendable(points.baseAddress!), UnsafeSendable(nearest.baseAddress!))
                    return Parallel.map(parts.count, parts: parts.count) { part in
                        let range = parts[part]
                        Rows.nearer(points.pointer + range.lowerBound * d, rows: range.count, columns: d,
                                    to: points.pointer + centre * d, nearest: nearest.pointer + range.lowerBound)
                        return range.reduce(0.0) { $0 + Double(nearest.pointer[$1]) }
                    }
                }
            }
            let total = totals.reduce(0, +)
            if total > 0 {
                var target = random.nextUnit() * total
                chosen = size - 1
                for i in 0..<size {
                    target -= Double(nearest[i])
                    if target < 0 { chosen = i; break }
                }
            } else {
                chosen = Int(random.next(below: UInt64(size)))
            }
        }
        return centroids
    }

    /// The mean of each cluster's rows (sums in `Double`, per part of the rows, added in part order); a cluster
    /// without rows keeps its centroid from `keeping`.
    public static func clusterMeans(_ x: [Float], count: Int, dimensions d: Int, clusters k: Int, assignment: [Int32],
                                    threads: Int, keeping previous: [Float]) -> [Float] {
        let parts = Parallel.ranges(count, parts: threads)
        let sums = UnsafeMutableBufferPointer<Double>.allocate(capacity: parts.count * k * d)
        let counts = UnsafeMutableBufferPointer<Int64>.allocate(capacity: parts.count * k)
        defer { sums.deallocate(); counts.deallocate() }
        sums.initialize(repeating: 0)
        counts.initialize(repeating: 0)
        x.withUnsafeBufferPointer { x in
            assignment.withUnsafeBufferPointer { a in
                let (x, a) = (UnsafeSendable(x.baseAddress!), UnsafeSendable(a.baseAddress!))
                let (s, c) = (UnsafeSendable(sums.baseAddress!), UnsafeSendable(counts.baseAddress!))
                Parallel.run(parts.count) { part in
                    let range = parts[part]
                    Rows.accumulate(x.pointer + range.lowerBound * d, rows: range.count, columns: d,
                                    assignment: a.pointer + range.lowerBound, sums: s.pointer + part * k * d,
                                    counts: c.pointer + part * k)
                }
            }
        }
        return means(sums: sums, counts: counts, parts: parts.count, clusters: k, dimensions: d, previous: previous).centroids
    }

    /// Each cluster's mean from per-part sums and counts (parts × clusters × dimensions and parts × clusters, the
    /// parts added in order, so the result does not depend on timing); a cluster without members keeps its centroid
    /// from `previous` and is listed in `empty`.
    private static func means(sums: UnsafeMutableBufferPointer<Double>, counts: UnsafeMutableBufferPointer<Int64>,
                              parts: Int, clusters k: Int, dimensions d: Int,
                              previous: [Float]) -> (centroids: [Float], empty: [Int]) {
        var centroids = previous
        var empty: [Int] = []
        for cluster in 0..<k {
            var members: Int64 = 0
            for part in 0..<parts { members += counts[part * k + cluster] }
            guard members > 0 else { empty.append(cluster); continue }
            for j in 0..<d {
                var sum = 0.0
                for part in 0..<parts { sum += sums[(part * k + cluster) * d + j] }
                centroids[cluster * d + j] = Float(sum / Double(members))
            }
        }
        return (centroids, empty)
    }
}
