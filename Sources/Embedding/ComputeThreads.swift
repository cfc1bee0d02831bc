import Foundation

/// How the towers use the cores: a batch is split by rows over `threads`, and each of those runs its GEMMs on
/// `blasThreads` OpenBLAS threads. Their product must not exceed the processors: oversubscribed OpenBLAS threads
/// spin against each other.
public struct ComputeThreads: Sendable, Equatable {
    /// 0: one per processor (divided by `blasThreads`).
    public var threads = 0
    public var blasThreads = 1

    public init(threads: Int = 0, blasThreads: Int = 1) {
        self.threads = threads
        self.blasThreads = blasThreads
    }

    /// `threads` with 0 resolved against `processors`.
    public func resolvedThreads(processors: Int = ProcessInfo.processInfo.activeProcessorCount) -> Int {
        threads == 0 ? max(1, processors / blasThreads) : threads
    }
}
