import Foundation
import Synchronization

/// A fixed number of threads that decode media (JPEG/PNG, WAV, resampling, spectrograms). Apart from Dispatch's
/// pool, where request tasks run, and from the compute threads the towers use: a burst of heavy items queues
/// here instead of taking every core from the towers and from text-only requests, which never pass through it.
final class DecodePool: @unchecked Sendable {
    private let condition = NSCondition()
    /// Guarded by `condition`.
    private var jobs: [@Sendable () -> Void] = []
    private var head = 0
    private var stopped = false
    /// Jobs queued beyond this are refused (the caller answers 429).
    let capacity: Int
    let threads: Int

    init(threads: Int, capacity: Int) {
        precondition(threads > 0 && capacity > 0)
        self.threads = threads
        self.capacity = capacity
        for index in 0..<threads {
            let thread = Thread { [self] in work() }
            thread.name = "omniembed-decode-\(index)"
            thread.start()
        }
    }

    /// Queues `jobs` whole, or none of them when the queue cannot take them all; whether they were queued.
    func submit(_ batch: [@Sendable () -> Void]) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !stopped, jobs.count - head + batch.count <= capacity else { return false }
        if head > 0 && head * 2 >= jobs.count {
            jobs.removeFirst(head)
            head = 0
        }
        jobs.append(contentsOf: batch)
        condition.broadcast()
        return true
    }

    /// Lets the threads finish what is queued and exit.
    func shutdown() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    private func work() {
        while true {
            condition.lock()
            while head == jobs.count && !stopped { condition.wait() }
            guard head < jobs.count else {
                condition.unlock()
                return
            }
            let job = jobs[head]
            head += 1
            condition.unlock()
            job()
        }
    }
}

/// Set when the request that queued decode jobs is cancelled; the jobs check it between steps.
final class CancellationFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}
