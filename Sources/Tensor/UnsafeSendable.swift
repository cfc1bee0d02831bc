/// A pointer handed to parallel parts (`Parallel.run`, `Parallel.map`) that touch disjoint ranges of it: the one
/// way a pointer crosses threads here.
public struct UnsafeSendable<Pointee>: @unchecked Sendable {
    public let pointer: Pointee
    public init(_ pointer: Pointee) { self.pointer = pointer }
}
