import Foundation

/// Threads that run nothing but `Parallel.run`'s parts.
///
/// Dispatch's shared pool (one thread per core) is also where the server runs request tasks; when they hold its
/// threads, `concurrentPerform` runs the parts one after another on the caller, and a model's batch, which
/// meets its threads once per layer, ran 30% slower under load than alone. Workers here wait on a condition
/// between jobs and never run anything else.
final class ComputePool: @unchecked Sendable {  // state guarded by `condition`
    static let shared = ComputePool(workers: max(1, ProcessInfo.processInfo.activeProcessorCount - 1))

    private final class Job {
        let parts: Int
        let body: (Int) -> Void
        var claimed = 0
        var finished = 0
        init(parts: Int, body: @escaping (Int) -> Void) {
            self.parts = parts
            self.body = body
        }
    }

    private let condition = NSCondition()
    private var jobs: [Job] = []
    private static let workerKey = "omniembed.compute-pool"

    init(workers: Int) {
        for index in 0..<workers {
            let thread = Thread { [unowned self] in self.work() }
            thread.name = "omniembed.compute-\(index)"
            thread.threadDictionary[Self.workerKey] = true
            thread.start()
        }
    }

    /// Runs `body(0)` … `body(parts - 1)` on the caller and the workers; returns when all have finished. Called
    /// from a worker (a part that splits again), the parts run on that worker, in order.
    func run(_ parts: Int, _ body: (Int) -> Void) {
        if parts <= 1 || Thread.current.threadDictionary[Self.workerKey] != nil {
            for part in 0..<parts { body(part) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let job = Job(parts: parts, body: body)
            condition.lock()
            jobs.append(job)
            condition.broadcast()
            // The caller takes parts too, then waits for the ones the workers took.
            while job.claimed < job.parts {
                let part = claim(job)
                condition.unlock()
                job.body(part)
                condition.lock()
                finish(job)
            }
            while job.finished < job.parts { condition.wait() }
            condition.unlock()
        }
    }

    /// The next part of `job` (lock held); the job leaves the queue once every part is claimed.
    private func claim(_ job: Job) -> Int {
        let part = job.claimed
        job.claimed += 1
        if job.claimed == job.parts { jobs.removeAll { $0 === job } }
        return part
    }

    private func finish(_ job: Job) {
        job.finished += 1
        if job.finished == job.parts { condition.broadcast() }
    }

    private func work() {
        condition.lock()
        while true {
            while jobs.isEmpty { condition.wait() }
            let job = jobs[0]
            let part = claim(job)
            condition.unlock()
            job.body(part)
            condition.lock()
            finish(job)
        }
    }
}
