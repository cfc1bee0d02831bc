import Foundation
import Synchronization

/// Threads that run nothing but `Parallel.run`'s parts.
///
/// Dispatch's shared pool (one thread per core) is also where the server runs request tasks; when they hold its
/// threads, `concurrentPerform` runs the parts one after another on the caller, and a model's batch, which
/// meets its threads once per layer, ran slower under load than alone. Workers here never run anything else.
///
/// Between jobs a worker first spins (yielding its core to any other runnable thread), then sleeps on a
/// condition. On virtual machines whose idle CPUs halt, waking a sleeping thread takes longer than many jobs
/// (docs/performance.md, "Waking threads"). A worker that ran a part spins for `spinAfterJob`; `warmUp()` makes sleeping workers get up and
/// spin for a while before work that will need them arrives.
final class ComputePool: @unchecked Sendable {  // `jobs` and the jobs' counters guarded by `condition`
    static let shared = ComputePool(workers: max(1, ProcessInfo.processInfo.activeProcessorCount - 1))

    /// How long a worker that finished a part looks for the next one before sleeping (a model's layers, a
    /// request's successive products).
    static let spinAfterJob: UInt64 = 2_000_000
    /// How long `warmUp()` keeps the workers spinning.
    static let warmUpSpin: UInt64 = 20_000_000

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
    /// `jobs.count`, readable without the lock by spinning workers.
    private let queued = Atomic<Int>(0)
    /// Until when (`now()`) workers spin rather than sleep, set by `warmUp()`.
    private let warmUntil = Atomic<UInt64>(0)
    private var sleeping = 0
    private static let workerKey = "omniembed.compute-pool"

    init(workers: Int) {
        for index in 0..<workers {
            let thread = Thread { [unowned self] in self.work() }
            thread.name = "omniembed.compute-\(index)"
            thread.threadDictionary[Self.workerKey] = true
            thread.start()
        }
    }

    /// Runs `body(0)` … `body(parts - 1)` on the caller and the workers; returns when all have finished. Parts
    /// are claimed one at a time, so a worker that wakes late still takes the parts left. Called from a worker
    /// (a part that splits again), the parts run on that worker, in order.
    func run(_ parts: Int, _ body: (Int) -> Void) {
        if parts <= 1 || Thread.current.threadDictionary[Self.workerKey] != nil {
            for part in 0..<parts { body(part) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let job = Job(parts: parts, body: body)
            condition.lock()
            jobs.append(job)
            queued.store(jobs.count, ordering: .releasing)
            if sleeping > 0 { condition.broadcast() }
            // The caller takes parts too, then waits for the ones the workers took: spinning first, since they
            // are usually about to finish.
            while job.claimed < job.parts {
                let part = claim(job)
                condition.unlock()
                job.body(part)
                condition.lock()
                job.finished += 1
            }
            let deadline = Self.now() + Self.spinAfterJob
            while job.finished < job.parts, Self.now() < deadline {
                condition.unlock()
                sched_yield()
                condition.lock()
            }
            while job.finished < job.parts { condition.wait() }
            condition.unlock()
        }
    }

    /// Gets sleeping workers up to spin for `warmUpSpin`: for a caller about to `run` a job after some work of
    /// its own (reading a request), so that the workers' wake-up overlaps that work.
    func warmUp() {
        warmUntil.store(Self.now() + Self.warmUpSpin, ordering: .relaxed)
        condition.lock()
        if sleeping > 0 { condition.broadcast() }
        condition.unlock()
    }

    /// The next part of `job` (lock held); the job leaves the queue once every part is claimed.
    private func claim(_ job: Job) -> Int {
        let part = job.claimed
        job.claimed += 1
        if job.claimed == job.parts {
            jobs.removeAll { $0 === job }
            queued.store(jobs.count, ordering: .releasing)
        }
        return part
    }

    private func work() {
        var spinUntil: UInt64 = 0
        while true {
            // Spin until a job is queued or both the after-job and the warm-up windows are over.
            while queued.load(ordering: .acquiring) == 0,
                  Self.now() < max(spinUntil, warmUntil.load(ordering: .relaxed)) {
                sched_yield()
            }
            condition.lock()
            if jobs.isEmpty, Self.now() >= warmUntil.load(ordering: .relaxed) {
                sleeping += 1
                condition.wait()
                sleeping -= 1
            }
            // An optional, set to nil before the lock is released for the last time: the caller may return
            // (and its body stop existing) as soon as it sees the part finished, and no reference to the job may
            // outlive that.
            var job = jobs.first
            guard job != nil else {
                condition.unlock()
                continue
            }
            let part = claim(job!)
            condition.unlock()
            job!.body(part)
            condition.lock()
            job!.finished += 1
            if job!.finished == job!.parts { condition.broadcast() }
            job = nil
            condition.unlock()
            spinUntil = Self.now() + Self.spinAfterJob
        }
    }

    private static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
}
