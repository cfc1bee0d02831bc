import CKernels

/// A dense layer `y = x · Wᵀ + b`, W stored outputs×inputs (PyTorch `Linear` layout).
///
/// The weights are kept twice: as given, for OpenBLAS on many rows, and packed for `oe_packed_linear` on few
/// rows, where OpenBLAS's per-call packing of W costs more than the product (at 8 rows it reached a third of
/// the packed kernel's speed). Memory for the weights doubles; for a small text model that is ~90 MB.
public struct Linear: Sendable {
    public let inputs: Int
    public let outputs: Int
    let weight: [Float]
    let bias: [Float]
    let packed: [Float]

    /// Up to this many rows per call use the packed kernel; more go to OpenBLAS.
    public static let packedRowLimit = 64

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
    public func apply(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, relu6: Bool = false,
                      packedRowLimit: Int = packedRowLimit) {
        guard rows > 0 else { return }
        if rows <= packedRowLimit {
            oe_packed_linear(x, rows, inputs, packed, outputs, bias, y, outputs)
            if relu6 { oe_relu6(y, rows * outputs) }
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
