import CKernels

/// The element-wise and row-wise parts of a transformer layer, around the GEMMs, on row-major `Float` rows.
///
/// The loops are in C (`CKernels`), vectorised for the widest instruction set the CPU has.
public enum Kernels {
    /// `output = input · weightᵀ + bias`, then ReLU6 when asked: input rows×inputs, weight outputs×inputs
    /// (PyTorch `Linear` layout). The bias (and activation) is one pass over the output after the GEMM.
    public static func linear(_ input: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>,
                              into output: UnsafeMutablePointer<Float>, rows: Int, inputs: Int, outputs: Int,
                              relu6: Bool = false) {
        GEMM.multiply(input, weight, into: output, m: rows, n: outputs, k: inputs, transposeB: true)
        oe_add_bias(output, rows, outputs, bias, relu6 ? 1 : 0)
    }

    /// `x = LayerNorm(x + residual)` per row (biased variance), the post-LN step of a BERT layer.
    /// Pass `residual: nil` for a plain LayerNorm.
    public static func addLayerNorm(_ x: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>?, rows: Int, columns: Int,
                                    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, epsilon: Float) {
        oe_add_layer_norm(x, residual, rows, columns, weight, bias, epsilon)
    }

    /// Each row replaced by its softmax (max-subtracted, so large scores do not overflow).
    public static func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        oe_softmax_rows(x, rows, columns, columns)
    }

    /// GELU with the error function, as BERT's `gelu` (not the tanh approximation).
    public static func gelu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        oe_gelu(x, count)
    }

    /// Per row of `scores` (rows × columns): the `k` highest (1 ≤ k ≤ columns), best first, a tie going to the
    /// lower column; their columns and scores, rows × k each.
    public static func topK(_ scores: UnsafePointer<Float>, rows: Int, columns: Int, k: Int) -> (index: [Int32], score: [Float]) {
        precondition(k >= 1 && k <= columns, "top-k needs 1 ≤ k ≤ columns")
        var index = [Int32](repeating: 0, count: rows * k), score = [Float](repeating: 0, count: rows * k)
        oe_top_k_rows(scores, rows, columns, k, &index, &score)
        return (index, score)
    }

    /// The vectorised `exp` the softmax uses (relative error below 2e-7 on [-87, 88]), for its tests.
    static func exp(_ x: [Float]) -> [Float] {
        var y = [Float](repeating: 0, count: x.count)
        oe_exp(x, &y, x.count)
        return y
    }

    /// The vectorised `erf` GELU uses (absolute error below 5e-7), for its tests.
    static func erf(_ x: [Float]) -> [Float] {
        var y = [Float](repeating: 0, count: x.count)
        oe_erf(x, &y, x.count)
        return y
    }
}
