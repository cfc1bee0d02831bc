import Dispatch

/// Splitting one computation over threads.
public enum Parallel {
    /// Runs `body(0)` … `body(parts - 1)` at once (on the calling thread and Dispatch's workers) and returns
    /// when all have finished.
    public static func run(_ parts: Int, _ body: @Sendable (Int) -> Void) {
        if parts <= 1 {
            body(0)
        } else {
            DispatchQueue.concurrentPerform(iterations: parts, execute: body)
        }
    }

    /// `0..<count` cut into `parts` contiguous ranges whose sizes differ by at most one.
    public static func ranges(_ count: Int, parts: Int) -> [Range<Int>] {
        let parts = max(1, min(parts, count))
        return (0..<parts).map { part in (count * part / parts)..<(count * (part + 1) / parts) }
    }
}
