import Tensor

extension Linear {
    /// This layer over `rows` rows, split by rows over `threads`, ReLU6 after when asked.
    func apply(_ input: UnsafePointer<Float>, rows: Int, into output: UnsafeMutablePointer<Float>, relu6: Bool = false,
               threads: Int) {
        let parts = Parallel.ranges(rows, parts: min(threads, max(1, rows / 16)))
        let (x, y) = (SendablePointer(input), SendableMutablePointer(output))
        Parallel.run(parts.count) { part in
            let range = parts[part]
            apply(x.pointer + range.lowerBound * inputs, rows: range.count, into: y.pointer + range.lowerBound * outputs,
                  relu6: relu6)
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
