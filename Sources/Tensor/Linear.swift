import CKernels

/// A dense layer `y = x · Wᵀ + b`, W stored outputs×inputs (PyTorch `Linear` layout).
///
/// In fp32 the weights are kept twice: packed for `oe_packed_linear`, which OpenBLAS cannot match on few rows (it
/// packs W on every call: at 8 rows it reached a third of the packed kernel's speed), and as given, for OpenBLAS on
/// many rows on CPUs where it is the faster of the two (`packedRowLimit`). Memory for the weights doubles; for a
/// small text model that is ~90 MB. In bf16 and int8 (`Precision`) they are kept once, packed for
/// `oe_packed_linear_bf16` or `oe_packed_linear_int8`, which take every row count.
public struct Linear: Sendable {
    public let inputs: Int
    public let outputs: Int
    /// The products' format (`Precision`); asked for one the CPU lacks, a layer is fp32.
    public let precision: Precision
    let bias: [Float]
    let weights: Weights

    /// The weights as the layer's precision multiplies them, packed once: fp32 also as given, for OpenBLAS.
    enum Weights: Sendable {
        case fp32(weight: [Float], packed: [Float])
        case bf16([UInt16])
        /// `inputScales`: what x's columns are multiplied by before a row is quantised (empty: nothing).
        case int8(codes: [Int8], scales: [Float], sums: [Int32], inputScales: [Float])
    }

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

    /// `smoothing` (int8 only; one positive factor per input) moves range from the inputs to the weights, as
    /// SmoothQuant does: input column j is divided by `smoothing[j]` and weight column j multiplied by it before each
    /// is quantised, so an input with a few channels far larger than the rest loses less to its row's scale.
    public init(weight: [Float], bias: [Float], outputs: Int, inputs: Int, precision: Precision = .fp32,
                smoothing: [Float]? = nil) {
        precondition(weight.count == outputs * inputs && bias.count == outputs, "Linear: shapes do not match")
        precondition(smoothing.map { $0.count == inputs && $0.allSatisfy { $0 > 0 && $0.isFinite } } ?? true,
                     "Linear: one positive smoothing factor per input")
        self.inputs = inputs
        self.outputs = outputs
        self.bias = bias
        self.precision = precision.effective
        switch self.precision {
        case .fp32:
            weights = .fp32(weight: weight, packed: [Float](unsafeUninitializedCapacity: oe_packed_size(outputs, inputs)) { buffer, count in
                oe_pack_weights(weight, outputs, inputs, buffer.baseAddress)
                count = buffer.count
            })
        case .bf16:
            weights = .bf16([UInt16](unsafeUninitializedCapacity: oe_packed_bf16_size(outputs, inputs)) { buffer, count in
                oe_pack_weights_bf16(weight, outputs, inputs, buffer.baseAddress)
                count = buffer.count
            })
        case .int8:
            let columns = oe_packed_int8_columns(outputs)
            var scales = [Float](repeating: 0, count: columns), sums = [Int32](repeating: 0, count: columns)
            let smoothed = smoothing.map { s in (0..<(outputs * inputs)).map { weight[$0] * s[$0 % inputs] } } ?? weight
            let codes = [Int8](unsafeUninitializedCapacity: oe_packed_int8_size(outputs, inputs)) { buffer, count in
                oe_pack_weights_int8(smoothed, outputs, inputs, buffer.baseAddress, &scales, &sums)
                count = buffer.count
            }
            weights = .int8(codes: codes, scales: scales, sums: sums, inputScales: smoothing?.map { 1 / $0 } ?? [])
        }
    }

    /// `rows` rows of `inputs` floats from `x` to `rows` rows of `outputs` floats at `y`, ReLU6 after when asked.
    /// On the packed path, `columnThreads` threads each compute a share of the output columns.
    public func apply(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, relu6: Bool = false,
                      packedRowLimit: Int = packedRowLimit, columnThreads: Int = 1) {
        guard rows > 0 else { return }
        if case .fp32(let weight, _) = weights, rows > packedRowLimit {
            weight.withUnsafeBufferPointer { w in
                bias.withUnsafeBufferPointer { b in
                    Kernels.linear(x, w.baseAddress!, b.baseAddress!, into: y, rows: rows, inputs: inputs, outputs: outputs,
                                   relu6: relu6)
                }
            }
            return
        }
        let panels = Parallel.ranges((outputs + 31) / 32, parts: columnThreads)
        guard panels.count > 1 else { return packed(x, rows: rows, into: y, columns: 0..<outputs, relu6: relu6) }
        // Few rows: the product is bound by reading the weights, so each thread takes a share of the output
        // columns (whole 32-column panels) and reads only its share. Each output is computed exactly as without
        // the split.
        let (x, y) = (UnsafeSendable(x), UnsafeSendable(y))
        Parallel.run(panels.count) { part in
            let columns = panels[part].lowerBound * 32..<min(outputs, panels[part].upperBound * 32)
            packed(x.pointer, rows: rows, into: y.pointer, columns: columns, relu6: relu6)
        }
    }

    /// The output `columns` (from a multiple of 32) of `rows` rows, by the packed kernel of the precision.
    private func packed(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, columns: Range<Int>,
                        relu6: Bool) {
        let (first, n, relu) = (columns.lowerBound, columns.count, Int32(relu6 ? 1 : 0))
        bias.withUnsafeBufferPointer { bias in
            let b = bias.baseAddress! + first
            switch weights {
            case .fp32(_, let packed):
                packed.withUnsafeBufferPointer { oe_packed_linear(x, rows, inputs, $0.baseAddress! + first * inputs, n, b, y + first, outputs, relu) }
            case .bf16(let packed):
                let stride = (inputs + 1) / 2 * 2
                packed.withUnsafeBufferPointer { oe_packed_linear_bf16(x, rows, inputs, $0.baseAddress! + first * stride, n, b, y + first, outputs, relu) }
            case .int8(let codes, let scales, let sums, let inputScales):
                let stride = (inputs + 3) / 4 * 4
                codes.withUnsafeBufferPointer { codes in
                    scales.withUnsafeBufferPointer { scales in
                        sums.withUnsafeBufferPointer { sums in
                            inputScales.withUnsafeBufferPointer { smoothing in
                                oe_packed_linear_int8(x, rows, inputs, smoothing.isEmpty ? nil : smoothing.baseAddress, codes.baseAddress! + first * stride,
                                                      scales.baseAddress! + first, sums.baseAddress! + first, n, b, y + first,
                                                      outputs, relu)
                            }
                        }
                    }
                }
            }
        }
    }
}
