import Dispatch

/// Splitting one computation over threads.
public enum Parallel {
    /// Runs `body(0)` … `body(parts - 1)` at once (on the calling thread and the compute pool's workers) and
    /// returns when all have finished.
    public static func run(_ parts: Int, _ body: @Sendable (Int) -> Void) {
        ComputePool.shared.run(parts, body)
    }

    /// Tells the compute threads that a `run` is coming soon, so that they are awake when it does (waking a
    /// sleeping thread can take milliseconds on a virtual machine).
    public static func warmUp() {
        ComputePool.shared.warmUp()
    }

    /// `body(0)` … `body(count - 1)` over `parts` threads (each takes every `parts`-th index), in index order.
    public static func map<T: Sendable>(_ count: Int, parts: Int, _ body: @Sendable (Int) -> T) -> [T] {
        let parts = max(1, min(parts, count))
        guard parts > 1 else { return (0..<count).map(body) }
        let slots = Slots<T>(count: count)
        run(parts) { part in
            for index in stride(from: part, to: count, by: parts) { slots.buffer[index] = body(index) }
        }
        return slots.buffer.map { $0! }
    }

    /// One result per index, each written by one thread and read after all have finished. Raw storage, not an
    /// array: threads writing different elements of one array would race on its buffer.
    private final class Slots<T>: @unchecked Sendable {
        let buffer: UnsafeMutableBufferPointer<T?>
        init(count: Int) { buffer = .allocate(capacity: count); buffer.initialize(repeating: nil) }
        deinit { buffer.deinitialize(); buffer.deallocate() }
    }

    /// `0..<count` cut into `parts` contiguous ranges whose sizes differ by at most one.
    public static func ranges(_ count: Int, parts: Int) -> [Range<Int>] {
        let parts = max(1, min(parts, count))
        return (0..<parts).map { part in (count * part / parts)..<(count * (part + 1) / parts) }
    }
}
