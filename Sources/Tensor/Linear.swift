import CKernels

/// A dense layer `y = x · Wᵀ + b`, W stored outputs×inputs (PyTorch `Linear` layout).
///
/// The weights are kept twice: packed for `oe_packed_linear`, which OpenBLAS cannot match on few rows (it packs W
/// on every call: at 8 rows it reached a third of the packed kernel's speed), and as given, for OpenBLAS on many
/// rows on CPUs where it is the faster of the two (`packedRowLimit`). Memory for the weights doubles; for a small
/// text model that is ~90 MB.
public struct Linear: Sendable {
    public let inputs: Int
    public let outputs: Int
    let weight: [Float]
    let bias: [Float]
    let packed: [Float]

    /// Up to this many rows per call use the packed kernel; more go to OpenBLAS. Measured once per process
    /// (`calibratedPackedRowLimit`): which of the two is faster on many rows depends on the CPU (figures in
    /// docs/performance.md, "Packed GEMM").
    public static let packedRowLimit = calibratedPackedRowLimit()

    /// Every row count, unless OpenBLAS is clearly faster (by more than a tenth) on a BERT feed-forward product
    /// of 256 rows; then 64. Medians of 7 timed calls each, the two kernels alternating, after one untimed call
    /// each; one thread each, as the encoders call them. On a noisy virtual machine a single "fastest of" per kernel
    /// flipped the choice from one process to the next where the two are close, and the packed kernel also keeps a
    /// row's result independent of the batch.
    static func calibratedPackedRowLimit() -> Int {
        let blasThreads = BLAS.threads
        BLAS.setThreads(1)
        defer { BLAS.setThreads(blasThreads) }
        let (rows, inputs, outputs) = (256, 384, 1536)
        let layer = Linear(weight: (0..<(outputs * inputs)).map { Float($0 % 17) * 0.01 - 0.08 },
                           bias: [Float](repeating: 0.5, count: outputs), outputs: outputs, inputs: inputs)
        let x = (0..<(rows * inputs)).map { Float($0 % 13) * 0.01 - 0.06 }
        var y = [Float](repeating: 0, count: rows * outputs)
        let clock = ContinuousClock()
        var (packed, blas): ([Duration], [Duration]) = ([], [])
        for round in 0...7 {
            let p = clock.measure { layer.apply(x, rows: rows, into: &y, packedRowLimit: .max) }
            let b = clock.measure { layer.apply(x, rows: rows, into: &y, packedRowLimit: 0) }
            if round > 0 { packed.append(p); blas.append(b) }
        }
        let median = { (times: [Duration]) in times.sorted()[times.count / 2] }
        return median(blas) * 10 < median(packed) * 9 ? 64 : .max
    }

    public init(weight: [Float], bias: [Float], outputs: Int, inputs: Int) {
        precondition(weight.count == outputs * inputs && bias.count == outputs, "Linear: shapes do not match")
        self.inputs = inputs
        self.outputs = outputs
        self.weight = weight
        self.bias = bias
        packed = [Float](unsafeUninitializedCapacity: oe_packed_size(outputs, inputs)) { buffer, count in
            oe_pack_weights(weight, outputs, inputs, buffer.baseAddress)
            count = buffer.count
        }
    }

    /// `rows` rows of `inputs` floats from `x` to `rows` rows of `outputs` floats at `y`, ReLU6 after when asked.
    /// On the packed path, `columnThreads` threads each compute a share of the output columns.
    public func apply(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, relu6: Bool = false,
                      packedRowLimit: Int = packedRowLimit, columnThreads: Int = 1) {
        guard rows > 0 else { return }
        if rows <= packedRowLimit {
            let panels = Parallel.ranges((outputs + 31) / 32, parts: columnThreads)
            if panels.count == 1 {
                oe_packed_linear(x, rows, inputs, packed, outputs, bias, y, outputs, relu6 ? 1 : 0)
            } else {
                // Few rows: the product is bound by reading the weights, so each thread takes a share of the
                // output columns (whole 32-column panels) and reads only its share. Each output is computed
                // exactly as without the split.
                let (inputs, outputs) = (inputs, outputs)
                let (x, y) = (UnsafeSendable(x), UnsafeSendable(y))
                packed.withUnsafeBufferPointer { packed in
                    bias.withUnsafeBufferPointer { bias in
                        let (packed, bias) = (UnsafeSendable(packed.baseAddress!), UnsafeSendable(bias.baseAddress!))
                        Parallel.run(panels.count) { part in
                            let first = panels[part].lowerBound * 32
                            let columns = min(outputs, panels[part].upperBound * 32) - first
                            oe_packed_linear(x.pointer, rows, inputs, packed.pointer + first * inputs, columns,
                                             bias.pointer + first, y.pointer + first, outputs, relu6 ? 1 : 0)
                        }
                    }
                }
            }
        } else {
            weight.withUnsafeBufferPointer { w in
                bias.withUnsafeBufferPointer { b in
                    Kernels.linear(x, w.baseAddress!, b.baseAddress!, into: y, rows: rows, inputs: inputs, outputs: outputs,
                                   relu6: relu6)
                }
            }
        }
    }
}
