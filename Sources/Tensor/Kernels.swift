import Foundation

/// The element-wise and row-wise parts of a transformer layer, around the GEMMs.
public enum Kernels {
    /// `output = input · weightᵀ + bias`: input rows×inputs, weight outputs×inputs (PyTorch `Linear` layout).
    public static func linear(_ input: [Float], _ weight: [Float], _ bias: [Float], into output: inout [Float],
                              rows: Int, inputs: Int, outputs: Int) {
        output.withUnsafeMutableBufferPointer { out in
            for row in 0..<rows {
                (out.baseAddress! + row * outputs).update(from: bias, count: outputs)
            }
            input.withUnsafeBufferPointer { a in
                weight.withUnsafeBufferPointer { w in
                    GEMM.multiply(a.baseAddress!, w.baseAddress!, into: out.baseAddress!, m: rows, n: outputs, k: inputs,
                                  transposeB: true, beta: 1)
                }
            }
        }
    }

    /// Normalises each row to zero mean and unit variance (biased), then scales and shifts.
    public static func layerNorm(_ x: inout [Float], rows: Int, columns: Int, weight: [Float], bias: [Float], epsilon: Float) {
        for row in 0..<rows {
            let base = row * columns
            var mean: Float = 0
            for j in 0..<columns { mean += x[base + j] }
            mean /= Float(columns)
            var variance: Float = 0
            for j in 0..<columns {
                let d = x[base + j] - mean
                variance += d * d
            }
            variance /= Float(columns)
            let inverse = 1 / (variance + epsilon).squareRoot()
            for j in 0..<columns {
                x[base + j] = (x[base + j] - mean) * inverse * weight[j] + bias[j]
            }
        }
    }

    /// Each row replaced by its softmax (max-subtracted, so large scores do not overflow).
    public static func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        for row in 0..<rows {
            let p = x + row * columns
            var maximum = -Float.infinity
            for j in 0..<columns { maximum = max(maximum, p[j]) }
            var sum: Float = 0
            for j in 0..<columns {
                p[j] = exp(p[j] - maximum)
                sum += p[j]
            }
            let inverse = 1 / sum
            for j in 0..<columns { p[j] *= inverse }
        }
    }

    /// GELU with the exact error function, as BERT's `gelu` (not the tanh approximation).
    public static func geluInPlace(_ x: inout [Float]) {
        let inverseSqrt2: Float = 0.70710678118654752
        for i in x.indices {
            x[i] = 0.5 * x[i] * (1 + erf(x[i] * inverseSqrt2))
        }
    }

    public static func addInPlace(_ x: inout [Float], _ y: [Float]) {
        for i in x.indices { x[i] += y[i] }
    }
}
