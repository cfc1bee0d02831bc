import CKernels
import Tensor

extension Linear {
    /// Up to this many rows, the threads split the output columns rather than the rows: the product of a late
    /// image layer (49 or 196 rows, up to 885 KB of weights) is then the weights' size in reads from memory in all,
    /// not once per thread.
    static let columnSplitRows = 256

    /// This layer over `rows` rows, split by rows (or, for few rows, by output columns) over `threads`, ReLU6
    /// after when asked, and `residual` (rows × outputs) added after that when given.
    func apply(_ input: UnsafePointer<Float>, rows: Int, into output: UnsafeMutablePointer<Float>, relu6: Bool = false,
               adding residual: UnsafePointer<Float>? = nil, threads: Int) {
        if threads > 1, rows <= Self.columnSplitRows, rows <= Linear.packedRowLimit, outputs >= 64 * threads {
            apply(input, rows: rows, into: output, relu6: relu6, columnThreads: threads)
            if let residual { oe_add(output, residual, rows * outputs) }
            return
        }
        let parts = Parallel.ranges(rows, parts: min(threads, max(1, rows / 16)))
        let (x, y) = (UnsafeSendable(input), UnsafeSendable(output))
        let r = residual.map(UnsafeSendable.init)
        Parallel.run(parts.count) { part in
            let range = parts[part]
            let out = y.pointer + range.lowerBound * outputs
            apply(x.pointer + range.lowerBound * inputs, rows: range.count, into: out, relu6: relu6)
            if let r { oe_add(out, r.pointer + range.lowerBound * outputs, range.count * outputs) }
        }
    }
}
