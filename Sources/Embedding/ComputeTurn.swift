import Foundation

/// Lets one tower batch run at a time: each splits its work over every core, so two at once would only contend.
/// Across towers online work goes first: a batch of `batch` work waits while a batch with online work waits,
/// so a backfill on one tower cannot hold the cores from online requests on another (a running batch is not
/// interrupted).
public final class ComputeTurn: @unchecked Sendable {
    // Guarded by `condition`.
    private let condition = NSCondition()
    private var busy = false
    private var onlineWaiting = 0

    public init() {}

    /// Batches with online work waiting for their turn.
    var onlineWaitingCount: Int { condition.withLock { onlineWaiting } }

    func run<T: Sendable>(priority: Priority = .online, _ body: () -> T) -> T {
        condition.lock()
        if priority == .online {
            onlineWaiting += 1
            while busy { condition.wait() }
            onlineWaiting -= 1
        } else {
            while busy || onlineWaiting > 0 { condition.wait() }
        }
        busy = true
        condition.unlock()
        defer {
            condition.lock()
            busy = false
            condition.broadcast()
            condition.unlock()
        }
        return body()
    }
}
