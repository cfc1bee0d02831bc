import CKernels
import Tensor

extension Linear {
    /// This layer over `rows` rows, split by rows over `threads`, ReLU6 after when asked, and `residual` (rows ×
    /// outputs) added after that when given, each thread adding its own rows.
    func apply(_ input: UnsafePointer<Float>, rows: Int, into output: UnsafeMutablePointer<Float>, relu6: Bool = false,
               adding residual: UnsafePointer<Float>? = nil, threads: Int) {
        let parts = Parallel.ranges(rows, parts: min(threads, max(1, rows / 16)))
        let (x, y) = (SendablePointer(input), SendableMutablePointer(output))
        let r = residual.map(SendablePointer.init)
        Parallel.run(parts.count) { part in
            let range = parts[part]
            let out = y.pointer + range.lowerBound * outputs
            apply(x.pointer + range.lowerBound * inputs, rows: range.count, into: out, relu6: relu6)
            if let r { oe_add(out, r.pointer + range.lowerBound * outputs, range.count * outputs) }
        }
    }
}

/// Pointers handed to `Parallel.run`'s parts, which write disjoint ranges.
struct SendablePointer: @unchecked Sendable {
    let pointer: UnsafePointer<Float>
    init(_ pointer: UnsafePointer<Float>) { self.pointer = pointer }
    init(_ pointer: UnsafeMutablePointer<Float>) { self.pointer = UnsafePointer(pointer) }
}

struct SendableMutablePointer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    init(_ pointer: UnsafeMutablePointer<Float>) { self.pointer = pointer }
}
