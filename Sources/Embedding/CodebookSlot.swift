import Locking

/// The codebook in use (or none), replaced whole by a reload: a caller takes one snapshot and uses it throughout,
/// so codes and rotated vectors in one answer always come from the same codebook.
public final class CodebookSlot: Sendable {
    private let slot = Locked<SemanticCodebook?>(nil)

    public init(_ codebook: SemanticCodebook? = nil) {
        slot.withLock { $0 = codebook }
    }

    public var current: SemanticCodebook? { slot.withLock { $0 } }

    public func replace(_ codebook: SemanticCodebook?) {
        slot.withLock { $0 = codebook }
    }
}
