import Dispatch

/// Runs task jobs on a Dispatch queue instead of the cooperative pool.
///
/// The cooperative pool has one thread per core (two here); a responder that blocks one of them
/// (a BLAS call, a slow client library) would stall every other request. Dispatch's pool grows instead.
final class DispatchTaskExecutor: TaskExecutor {
    private let queue: DispatchQueue

    init(label: String) {
        queue = DispatchQueue(label: label, attributes: .concurrent, target: .global())
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }
}
