/// PCA: the eigenvalues (descending) and eigenvectors (rows, d × d) of vectors' covariance (or, not `centred`, of
/// their second moment), each vector's sign fixed so that its largest component is positive.
public struct PrincipalAxes: Sendable {
    public var values: [Double]
    public var axes: [Float]

    /// The axes of `count` rows of `x` (`d` floats each), over `threads` parts.
    public init(of x: [Float], count: Int, dimensions d: Int, threads: Int, centred: Bool = true) throws {
        let parts = Parallel.ranges(count, parts: threads)
        // Per part: the Gram matrix and column sums in Double, from Float blocks small enough to stay exact-ish.
        let gram = UnsafeMutableBufferPointer<Double>.allocate(capacity: parts.count * d * d)
        let sums = UnsafeMutableBufferPointer<Double>.allocate(capacity: parts.count * d)
        defer { gram.deallocate(); sums.deallocate() }
        gram.initialize(repeating: 0)
        sums.initialize(repeating: 0)
        let (gramPointer, sumsPointer) = (UnsafeSendable(gram.baseAddress!), UnsafeSendable(sums.baseAddress!))
        x.withUnsafeBufferPointer { x in
            let rows = UnsafeSendable(x.baseAddress!)
            Parallel.run(parts.count) { part in
                let block = 4096
                var partial = [Float](repeating: 0, count: d * d)
                let zeros = [Int32](repeating: 0, count: block)
                var ignored: Int64 = 0
                let g = gramPointer.pointer + part * d * d
                for start in stride(from: parts[part].lowerBound, to: parts[part].upperBound, by: block) {
                    let m = min(block, parts[part].upperBound - start)
                    GEMM.gram(rows.pointer + start * d, rows: m, columns: d, into: &partial)
                    for i in 0..<d { for j in i..<d { g[i * d + j] += Double(partial[i * d + j]) } }
                    Rows.accumulate(rows.pointer + start * d, rows: m, columns: d, assignment: zeros,
                                    sums: sumsPointer.pointer + part * d, counts: &ignored)
                }
            }
        }
        var covariance = [Double](repeating: 0, count: d * d)
        var mean = [Double](repeating: 0, count: d)
        for part in parts.indices {
            for k in 0..<(d * d) { covariance[k] += gram[part * d * d + k] }
            for k in 0..<d { mean[k] += sums[part * d + k] }
        }
        let n = Double(count)
        for k in 0..<d { mean[k] /= n }
        for i in 0..<d {
            for j in i..<d {
                let value = covariance[i * d + j] / n - (centred ? mean[i] * mean[j] : 0)
                covariance[i * d + j] = value
                covariance[j * d + i] = value
            }
        }
        let (values, vectors) = try SymmetricEigen.decompose(covariance, n: d)
        var axes = vectors.map { Float($0) }
        for row in 0..<d {
            let axis = axes[row * d..<(row + 1) * d]
            let largest = axis.max { abs($0) < abs($1) } ?? 0
            if largest < 0 { for k in 0..<d { axes[row * d + k] = -axes[row * d + k] } }
        }
        (self.values, self.axes) = (values, axes)
    }
}
