import CKernels

/// Scaled dot-product self-attention without masks, over one sequence of a fused QKV projection.
public enum Attention {
    /// The layout of a fused projection: each token row holds the queries, keys and values of all heads,
    /// `[Q | K | V]`, each `heads × headSize` wide, head `h` at column `h · headSize` of its block.
    public struct Shape: Sendable {
        public var heads: Int
        public var headSize: Int
        public var hidden: Int { heads * headSize }

        public init(heads: Int, headSize: Int) {
            self.heads = heads
            self.headSize = headSize
        }
    }

    /// Floats of scratch `context` needs for a sequence of `length` tokens and `queries` query rows.
    public static func scratchSize(length: Int, queries: Int, shape: Shape) -> Int {
        max(oe_attention_scratch_size(length, shape.headSize), oe_attention_bf16_scratch_size(length, shape.headSize),
            queries * length)
    }

    /// Sequences up to this long use the vector-loop kernel; longer ones two GEMMs per head, whose fixed cost
    /// per call is then small against the work.
    public static let directKernelMaxLength = 512

    /// Shorter sequences keep fp32 attention in bf16: packing the keys and values costs what the faster products
    /// save (docs/performance.md, "Precision").
    public static let bf16MinLength = 32

    /// Context rows for queries `queries` (positions within the sequence) of the sequence whose first token row
    /// is `sequence`, `length` tokens long, written to `context` (one row of `hidden` per query, all heads).
    /// `scratch` holds `scratchSize(length:queries:shape:)` floats. In bf16 the two products take bfloat16 operands
    /// (`oe_attention_bf16`; fp32 where the CPU lacks the instruction, or below `bf16MinLength` tokens).
    public static func context(qkv sequence: UnsafePointer<Float>, length: Int, queries: Range<Int>, shape: Shape,
                               into context: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                               precision: Precision = .fp32) {
        let stride = 3 * shape.hidden
        let scale = 1 / Float(shape.headSize).squareRoot()
        let m = queries.count
        for head in 0..<shape.heads {
            let q = sequence + queries.lowerBound * stride + head * shape.headSize
            let k = sequence + shape.hidden + head * shape.headSize
            let v = sequence + 2 * shape.hidden + head * shape.headSize
            if length <= directKernelMaxLength, precision != .fp32, length >= bf16MinLength {
                oe_attention_bf16(q, k, v, context + head * shape.headSize, m, length, shape.headSize, stride, shape.hidden,
                                  scale, scratch)
            } else if length <= directKernelMaxLength {
                oe_attention(q, k, v, context + head * shape.headSize, m, length, shape.headSize, stride, shape.hidden,
                             scale, scratch)
            } else {
                GEMM.multiply(q, k, into: scratch, m: m, n: length, k: shape.headSize, transposeB: true, alpha: scale,
                              lda: stride, ldb: stride, ldc: length)
                Kernels.softmaxRows(scratch, rows: m, columns: length)
                GEMM.multiply(scratch, v, into: context + head * shape.headSize, m: m, n: shape.headSize, k: length,
                              transposeB: false, lda: length, ldb: stride, ldc: shape.hidden)
            }
        }
    }
}
