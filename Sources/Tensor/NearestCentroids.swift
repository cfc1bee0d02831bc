import CKernels

/// Nearest-centroid search through GEMM: ‖x − c‖² = ‖x‖² − 2·x·c + ‖c‖², the dot products of a block of rows with
/// every centroid in one `sgemm`, then one pass that picks each row's minimum.
public struct NearestCentroids: Sendable {
    /// Rows per GEMM: big enough for BLAS to run at full speed, small enough that the dot products (rows × k) stay
    /// in cache-friendly scratch.
    public static let blockRows = 2048

    public let count: Int
    public let dimensions: Int
    /// count × dimensions, row-major.
    public let centroids: [Float]
    private let norms: [Float]

    public init(_ centroids: [Float], count: Int, dimensions: Int) {
        precondition(centroids.count == count * dimensions, "centroids are not \(count) × \(dimensions)")
        self.centroids = centroids
        self.count = count
        self.dimensions = dimensions
        var norms = [Float](repeating: 0, count: count)
        oe_squared_norms(centroids, count, dimensions, &norms)
        self.norms = norms
    }

    /// Per-cluster sums (`Double`, clusters × dimensions) and member counts, which `reassign` keeps up to date as
    /// rows change centroid: k-means then never re-reads its (large) data to recompute the means.
    public struct Accumulator {
        public var sums: UnsafeMutablePointer<Double>
        public var counts: UnsafeMutablePointer<Int64>
        public init(sums: UnsafeMutablePointer<Double>, counts: UnsafeMutablePointer<Int64>) {
            self.sums = sums
            self.counts = counts
        }
    }

    /// For each of `rows` rows of `x` (`dimensions` floats each): the index of its nearest centroid (ties to the
    /// lower index) and the squared distance to it. Runs on the calling thread.
    public func assign(_ x: UnsafePointer<Float>, rows: Int, index: UnsafeMutablePointer<Int32>,
                       distance: UnsafeMutablePointer<Float>) {
        guard rows > 0 else { return }
        let block = min(rows, Self.blockRows)
        let dots = UnsafeMutablePointer<Float>.allocate(capacity: block * count)
        let rowNorms = UnsafeMutablePointer<Float>.allocate(capacity: block)
        defer { dots.deallocate(); rowNorms.deallocate() }
        centroids.withUnsafeBufferPointer { centroids in
            for start in stride(from: 0, to: rows, by: block) {
                let m = min(block, rows - start)
                let rowsStart = x + start * dimensions
                GEMM.multiply(rowsStart, centroids.baseAddress!, into: dots, m: m, n: count, k: dimensions, transposeB: true)
                oe_squared_norms(rowsStart, m, dimensions, rowNorms)
                oe_nearest_centroids(dots, m, count, norms, rowNorms, index + start, distance + start)
            }
        }
    }
}

extension NearestCentroids {
    /// How far the centroids moved since the rows' bounds were last valid, and how far apart they are now: what
    /// `reassign` needs to skip the rows whose nearest centroid cannot have changed.
    public struct Movement: Sendable {
        let drift: [Float]
        /// The largest drift in each group of centroids (`NearestCentroids.boundGroups`).
        let groupDrift: [Float]
        /// Half the distance from each centroid to the nearest other: a row closer than that to its own
        /// centroid is closer to it than to any other (triangle inequality).
        let halfGaps: [Float]

        /// Before the first assignment (every row is unassigned and gets searched).
        public init(clusters: Int) {
            drift = [Float](repeating: 0, count: clusters)
            groupDrift = [Float](repeating: 0, count: NearestCentroids.boundGroups(clusters: clusters))
            halfGaps = [Float](repeating: 0, count: clusters)
        }

        public init(from old: NearestCentroids, to new: NearestCentroids) {
            precondition(old.count == new.count && old.dimensions == new.dimensions, "centroids of other shapes")
            let (k, d) = (new.count, new.dimensions)
            let groups = NearestCentroids.boundGroups(clusters: k)
            let groupSize = (k + groups - 1) / groups
            var drift = [Float](repeating: 0, count: k)
            var groupDrift = [Float](repeating: 0, count: groups)
            old.centroids.withUnsafeBufferPointer { before in
                new.centroids.withUnsafeBufferPointer { after in
                    for j in 0..<k {
                        let squared = oe_squared_distance(before.baseAddress! + j * d, after.baseAddress! + j * d, d)
                        drift[j] = (squared * (1 + NearestCentroids.directSlack)).squareRoot()
                        groupDrift[j / groupSize] = max(groupDrift[j / groupSize], drift[j])
                    }
                }
            }
            var gram = [Float](repeating: 0, count: k * k)
            GEMM.multiply(new.centroids, new.centroids, into: &gram, m: k, n: k, k: d, transposeB: true)
            var halfGaps = [Float](repeating: 0, count: k)
            for i in 0..<k {
                var nearest = Float.infinity
                for j in 0..<k where j != i {
                    let error = NearestCentroids.roundingSlack * (new.norms[i] + new.norms[j])
                    nearest = min(nearest, new.norms[i] + new.norms[j] - 2 * gram[i * k + j] - error)
                }
                halfGaps[i] = nearest > 0 ? nearest.squareRoot() / 2 : 0
            }
            (self.drift, self.groupDrift, self.halfGaps) = (drift, groupDrift, halfGaps)
        }
    }

    /// Groups of centroids that rows keep a lower bound for (Yinyang k-means): one bound per 16 centroids. A
    /// group's bound shrinks only by its own largest drift, so one centroid that moves far loosens one bound.
    public static func boundGroups(clusters: Int) -> Int { max(1, (clusters + 15) / 16) }

    /// Relative rounding error allowed for ‖x‖² + ‖c‖² − 2·x·c (single-precision dot products of a few hundred
    /// terms): bounds are widened by it, so that a row is skipped only when its centroid cannot have changed.
    static let roundingSlack: Float = 4e-6
    /// Relative rounding error allowed for a directly summed squared distance.
    static let directSlack: Float = 1e-5

    /// One Lloyd assignment step with Hamerly's and Yinyang's bounds: `upper[r]` bounds row r's distance to its
    /// centroid `index[r]` (−1: unassigned), `lower[r · groups + g]` its distance to any other centroid of group g
    /// (`boundGroups(clusters:)` groups of consecutive centroids); all are updated. Only rows whose
    /// centroid may have changed since the bounds were valid (`movement`) are searched, through GEMM; the others
    /// keep their centroid, which no other can beat. `distance[r]` is the squared distance to the centroid where it
    /// was computed afresh: for every row with `exact`. A row that changes centroid moves between the clusters'
    /// sums in its part's accumulator. Returns the number of rows whose centroid changed.
    public func reassign(_ x: UnsafePointer<Float>, rows: Int, rowNorms: UnsafePointer<Float>,
                         index: UnsafeMutablePointer<Int32>, distance: UnsafeMutablePointer<Float>,
                         upper: UnsafeMutablePointer<Float>, lower: UnsafeMutablePointer<Float>, movement: Movement,
                         exact: Bool, accumulator: Accumulator?) -> Int {
        guard rows > 0 else { return 0 }
        let d = dimensions
        let block = min(rows, Self.blockRows)
        let pending = UnsafeMutablePointer<Int32>.allocate(capacity: block)
        let gathered = UnsafeMutablePointer<Float>.allocate(capacity: block * d)
        let gatheredNorms = UnsafeMutablePointer<Float>.allocate(capacity: block)
        let dots = UnsafeMutablePointer<Float>.allocate(capacity: block * count)
        defer { pending.deallocate(); gathered.deallocate(); gatheredNorms.deallocate(); dots.deallocate() }
        let largestNorm = norms.max() ?? 0
        let groups = Self.boundGroups(clusters: count)
        precondition(movement.groupDrift.count == groups, "movement of other centroids")
        var changed = 0
        centroids.withUnsafeBufferPointer { centroids in
            var start = 0
            while start < rows {
                var consumed = 0
                let waiting = oe_bounds_filter(
                    x + start * d, rows - start, d, centroids.baseAddress!, movement.drift, movement.groupDrift,
                    groups, movement.halfGaps, exact ? 1 : 0, index + start, upper + start, lower + start * groups,
                    distance + start, pending, block, &consumed)
                if waiting > 0 {
                    // Every row pending (the first iterations): the rows are already contiguous.
                    let contiguous = waiting == consumed
                    if !contiguous {
                        oe_gather_rows(x + start * d, rowNorms + start, d, pending, waiting, gathered, gatheredNorms)
                    }
                    let rowsPending = contiguous ? x + start * d : UnsafePointer(gathered)
                    let normsPending = contiguous ? rowNorms + start : UnsafePointer(gatheredNorms)
                    GEMM.multiply(rowsPending, centroids.baseAddress!, into: dots, m: waiting, n: count, k: d,
                                  transposeB: true)
                    changed += oe_bounds_search(
                        dots, rowsPending, normsPending, waiting, count, d, groups, norms, largestNorm,
                        Self.roundingSlack, pending, index + start, upper + start, lower + start * groups,
                        distance + start, accumulator?.sums, accumulator?.counts)
                }
                start += consumed
            }
        }
        return changed
    }

    /// `reassign` over `threads` contiguous ranges of rows at once, part `i` with `accumulators[i]` (one per part
    /// of `Parallel.ranges(rows, parts: threads)`, kept across iterations: the sums are updated, not recounted).
    public func reassign(_ x: UnsafePointer<Float>, rows: Int, rowNorms: UnsafePointer<Float>,
                         index: UnsafeMutablePointer<Int32>, distance: UnsafeMutablePointer<Float>,
                         upper: UnsafeMutablePointer<Float>, lower: UnsafeMutablePointer<Float>, movement: Movement,
                         exact: Bool, threads: Int, accumulators: [Accumulator]?) -> Int {
        let ranges = Parallel.ranges(rows, parts: threads)
        precondition(accumulators == nil || accumulators!.count == ranges.count, "one accumulator per part")
        let (x, norms, index, distance) = (UnsafeSendable(x), UnsafeSendable(rowNorms), UnsafeSendable(index),
                                           UnsafeSendable(distance))
        let (upper, lower, parts) = (UnsafeSendable(upper), UnsafeSendable(lower), UnsafeSendable(accumulators))
        return Parallel.map(ranges.count, parts: ranges.count) { part in
            let at = ranges[part].lowerBound
            return reassign(x.pointer + at * dimensions, rows: ranges[part].count, rowNorms: norms.pointer + at,
                            index: index.pointer + at, distance: distance.pointer + at, upper: upper.pointer + at,
                            lower: lower.pointer + at * Self.boundGroups(clusters: count), movement: movement, exact: exact,
                            accumulator: parts.pointer?[part])
        }.reduce(0, +)
    }
}

/// Row-wise helpers for clustering, on row-major `Float` rows.
public enum Rows {
    /// `sums[assignment[r]] += row r` (in `Double`) and `counts[assignment[r]] += 1` for every row.
    public static func accumulate(_ x: UnsafePointer<Float>, rows: Int, columns: Int, assignment: UnsafePointer<Int32>,
                                  sums: UnsafeMutablePointer<Double>, counts: UnsafeMutablePointer<Int64>) {
        oe_accumulate_rows(x, rows, columns, assignment, sums, counts)
    }

    /// `row r -= centroids[assignment[r]]` for every row.
    public static func subtract(_ centroids: UnsafePointer<Float>, from x: UnsafeMutablePointer<Float>, rows: Int,
                                columns: Int, assignment: UnsafePointer<Int32>) {
        oe_subtract_rows(x, rows, columns, centroids, assignment)
    }

    /// `nearest[r] = min(nearest[r], ‖row r − point‖²)` for every row.
    public static func nearer(_ x: UnsafePointer<Float>, rows: Int, columns: Int, to point: UnsafePointer<Float>,
                              nearest: UnsafeMutablePointer<Float>) {
        oe_nearer(x, rows, columns, point, nearest)
    }

    /// The squared L2 norm of each row.
    public static func squaredNorms(_ x: UnsafePointer<Float>, rows: Int, columns: Int, into out: UnsafeMutablePointer<Float>) {
        oe_squared_norms(x, rows, columns, out)
    }
}
