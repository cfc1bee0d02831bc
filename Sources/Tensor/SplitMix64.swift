/// SplitMix64: a small, fast generator whose sequence is fixed by its seed (fits must be reproducible).
public struct SplitMix64: Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    public mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Uniform in 0..<bound (Lemire's method without the rejection step's bias worth fixing at these sizes).
    public mutating func next(below bound: UInt64) -> UInt64 { bound.multipliedFullWidth(by: next()).high }
}
