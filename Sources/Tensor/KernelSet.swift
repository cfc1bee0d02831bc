import CKernels

/// The instruction set the C kernels run on: the widest the CPU has, unless `OMNIEMBED_KERNELS` (`portable`,
/// `avx2`, `avx512`, `auto`) asks for a narrower one, so that every path runs on one machine.
public enum KernelSet: String, CaseIterable, Sendable, Comparable {
    case portable, avx2, avx512

    /// The widest set this CPU runs.
    public static var best: KernelSet { KernelSet(oe_kernels_best()) }

    /// The set in use.
    public static var current: KernelSet { KernelSet(oe_kernels_current()) }

    /// Why `OMNIEMBED_KERNELS` cannot be used (an unknown word, or a set this CPU lacks); `nil` when it can.
    public static func problem(with environment: [String: String]) -> String? {
        guard let name = environment["OMNIEMBED_KERNELS"] else { return nil }
        let parsed = oe_kernels_parse(name)
        if parsed == -2 {
            return "OMNIEMBED_KERNELS is '\(name)'; it may be \(allCases.map(\.rawValue) + ["auto"])"
        }
        if parsed >= 0, let asked = KernelSet(rawValue: name), asked > best {
            return "OMNIEMBED_KERNELS asks for \(name); this CPU runs at most \(best.rawValue)"
        }
        return nil
    }

    init(_ set: oe_kernel_set) {
        switch set {
        case OE_KERNELS_AVX512: self = .avx512
        case OE_KERNELS_AVX2: self = .avx2
        default: self = .portable
        }
    }

    private var order: Int { KernelSet.allCases.firstIndex(of: self)! }

    public static func < (a: KernelSet, b: KernelSet) -> Bool { a.order < b.order }
}
