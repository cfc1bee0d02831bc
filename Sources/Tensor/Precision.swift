import CKernels

/// The number format of a layer's products. fp32 is the reference; bf16 rounds weights and inputs to bfloat16 and
/// sums in fp32 (AVX512_BF16); int8 quantises weights per output column and inputs per row, sums exactly in int32
/// and scales back in fp32 (AVX512_VNNI). What stays fp32 in every precision: normalisations, activations,
/// softmax, pooling and every reduction outside the products.
public enum Precision: String, CaseIterable, Sendable, Codable {
    case fp32, bf16, int8

    /// Whether this CPU, with the kernel set in use, has the instruction (fp32 always).
    public var isNative: Bool {
        switch self {
        case .fp32: true
        case .bf16: oe_lowp_native(1) != 0
        case .int8: oe_lowp_native(2) != 0
        }
    }

    /// What a model asked for `self` runs in: `self` where native, else fp32 (a plain-C emulation would be
    /// slower than fp32, which is the point of neither).
    public var effective: Precision { isNative ? self : .fp32 }
}
