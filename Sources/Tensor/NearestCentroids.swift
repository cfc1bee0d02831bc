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

    /// `assign` over `threads` contiguous ranges of rows at once (each GEMM single-threaded: call with OpenBLAS
    /// set to one thread).
    public func assign(_ x: UnsafePointer<Float>, rows: Int, index: UnsafeMutablePointer<Int32>,
                       distance: UnsafeMutablePointer<Float>, threads: Int) {
        let ranges = Parallel.ranges(rows, parts: threads)
        let (x, index, distance) = (UnsafeSendable(x), UnsafeSendable(index), UnsafeSendable(distance))
        Parallel.run(ranges.count) { part in
            let range = ranges[part]
            assign(x.pointer + range.lowerBound * dimensions, rows: range.count, index: index.pointer + range.lowerBound,
                   distance: distance.pointer + range.lowerBound)
        }
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

    /// The squared L2 norm of each row.
    public static func squaredNorms(_ x: UnsafePointer<Float>, rows: Int, columns: Int, into out: UnsafeMutablePointer<Float>) {
        oe_squared_norms(x, rows, columns, out)
    }
}

/// A pointer handed to parallel parts that touch disjoint ranges of it.
public struct UnsafeSendable<Pointee>: @unchecked Sendable {
    public let pointer: Pointee
    public init(_ pointer: Pointee) { self.pointer = pointer }
}
