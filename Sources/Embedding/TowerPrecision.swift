internal import Tensor

/// The number format of a tower's dense layers: fp32 (the reference), bf16 (AVX512_BF16) or int8 (AVX512_VNNI).
/// What each costs in fidelity is measured against the reference implementations (README, "Precision").
public enum TowerPrecision: String, CaseIterable, Sendable {
    case fp32, bf16, int8

    /// What this CPU runs when asked for `self`: `self` if it has the instruction (and the kernel set in use is
    /// AVX-512), else fp32.
    public var effective: TowerPrecision { TowerPrecision(rawValue: tensor.effective.rawValue)! }

    /// The start-up log line when `self`, asked for `tower`, cannot run here; `nil` when it can.
    public func fallbackNotice(tower: String) -> String? {
        effective == self ? nil
            : "precision \(rawValue) needs an instruction this CPU (or OMNIEMBED_KERNELS) lacks: the \(tower) tower runs fp32"
    }

    var tensor: Precision { Precision(rawValue: rawValue)! }
}
