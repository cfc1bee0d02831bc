import CoreMetrics
import Dispatch
import Foundation
import Synchronization

/// A tower's dynamic batcher: requests submit jobs, a worker thread runs them in batches across requests.
///
/// A batch closes when it reaches `maxBatchCost` (tokens, images or audio patches) or `maxBatchItems`, or when
/// its oldest job has waited `maxWait` (Triton's "max queue delay": a short wait buys a fuller batch under load).
/// The wait is skipped when the last two submissions came further apart than `maxWait`, so an idle service or a
/// sequential client does not pay it. Queues are bounded by `capacity` (cost units): beyond it a submission
/// is refused (429) whole, never half-queued. A request's queued jobs are dropped when its deadline passes (504)
/// or its task is cancelled (the client went away).
public final class BatchScheduler<Input: Sendable, Output: Sendable>: @unchecked Sendable {
    public let name: String
    public let limits: BatchLimits
    private let turn: ComputeTurn
    private let body: @Sendable ([Input]) -> [Output]
    private let metrics: Metrics

    // Everything below is guarded by `condition`.
    private let condition = NSCondition()
    private var queues: [Priority: [Job]] = [.online: [], .batch: []]
    private var queuedCost = 0
    private var tickets: [UInt64: Ticket] = [:]
    private var nextTicket: UInt64 = 0
    private var stopped = false
    private var worker: Thread?
    private var batchNumber = 0
    /// When the last submission arrived, and how long after the one before it.
    private var lastArrival = ContinuousClock.now
    private var arrivalGap = Duration.seconds(1)

    private struct Job {
        let ticket: UInt64
        let index: Int
        let input: Input
        let cost: Int
        let enqueued: ContinuousClock.Instant
        let online: Bool
    }

    /// One request's jobs: its continuation is resumed once, by whoever finishes or fails it first.
    private final class Ticket {
        let continuation: CheckedContinuation<Result<([Output], TowerTiming), EmbeddingError>, Never>
        var outputs: [Output?]
        var remaining: Int
        var timing = TowerTiming()
        var lastBatch = -1
        init(_ continuation: CheckedContinuation<Result<([Output], TowerTiming), EmbeddingError>, Never>, count: Int) {
            self.continuation = continuation
            outputs = Array(repeating: nil, count: count)
            remaining = count
        }
    }

    /// `body` runs one batch: outputs in the order of its inputs.
    public init(name: String, limits: BatchLimits, turn: ComputeTurn, metricsFactory: any MetricsFactory,
                body: @escaping @Sendable ([Input]) -> [Output]) {
        self.name = name
        self.limits = limits
        self.turn = turn
        self.body = body
        metrics = Metrics(tower: name, factory: metricsFactory)
        // The worker holds the scheduler until `shutdown()`.
        let thread = Thread { self.work() }
        thread.name = "omniembed.\(name)-batcher"
        worker = thread
        thread.start()
    }

    /// Runs `inputs` (each with its cost) and returns their outputs in order, once every one has run.
    public func submit(_ inputs: [(input: Input, cost: Int)], priority: Priority = .online,
                       deadline: ContinuousClock.Instant) async throws(EmbeddingError) -> (outputs: [Output], timing: TowerTiming) {
        guard !inputs.isEmpty else { return ([], TowerTiming()) }
        let id = condition.withLock { () -> UInt64 in
            nextTicket += 1
            return nextTicket
        }
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                enqueue(id, inputs, priority: priority, deadline: deadline, continuation: continuation)
            }
        } onCancel: {
            fail(id, .cancelled)
        }
        return try result.get()
    }

    /// Jobs waiting in the queues (not the batch being run).
    var queuedJobs: Int {
        condition.withLock { queues.values.reduce(0) { $0 + $1.count } }
    }

    /// Stops the worker after failing whatever is queued (503).
    public func shutdown() {
        condition.withLock {
            stopped = true
            condition.broadcast()
        }
    }

    private func enqueue(_ id: UInt64, _ inputs: [(input: Input, cost: Int)], priority: Priority,
                         deadline: ContinuousClock.Instant,
                         continuation: CheckedContinuation<Result<([Output], TowerTiming), EmbeddingError>, Never>) {
        let cost = inputs.reduce(0) { $0 + $1.cost }
        let refusal: EmbeddingError? = condition.withLock {
            // Checked under the lock: a cancellation handler that already ran found no ticket to fail.
            if Task.isCancelled { return .cancelled }
            if stopped { return EmbeddingError(status: 503, code: "shutting_down", message: "the service is shutting down") }
            if deadline <= .now { return .timedOut(name) }
            if queuedCost > 0 && queuedCost + cost > limits.capacity { return .overloaded(name) }
            let now = ContinuousClock.now
            (arrivalGap, lastArrival) = (now - lastArrival, now)
            tickets[id] = Ticket(continuation, count: inputs.count)
            queues[priority]!.append(contentsOf: inputs.enumerated().map { index, job in
                Job(ticket: id, index: index, input: job.input, cost: job.cost, enqueued: now, online: priority == .online)
            })
            queuedCost += cost
            metrics.depth.record(queuedCost)
            condition.signal()
            return nil
        }
        if let refusal {
            metrics.refused(refusal.code)
            continuation.resume(returning: .failure(refusal))
            return
        }
        let delay = deadline - .now
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(max(0, delay.seconds) * 1e9))) { [weak self] in
            self?.fail(id, .timedOut(self?.name ?? "tower"))
        }
    }

    /// Fails a ticket that is not finished yet, dropping its queued jobs.
    private func fail(_ id: UInt64, _ error: EmbeddingError) {
        let ticket: Ticket? = condition.withLock {
            guard let ticket = tickets.removeValue(forKey: id) else { return nil }
            for priority in Priority.allCases {
                queues[priority]!.removeAll { job in
                    guard job.ticket == id else { return false }
                    queuedCost -= job.cost
                    return true
                }
            }
            metrics.depth.record(queuedCost)
            return ticket
        }
        guard let ticket else { return }
        metrics.refused(error.code)
        ticket.continuation.resume(returning: .failure(error))
    }

    private var isEmpty: Bool { queues[.online]!.isEmpty && queues[.batch]!.isEmpty }

    private func work() {
        condition.lock()
        defer { condition.unlock() }
        while true {
            while isEmpty && !stopped { condition.wait() }
            if stopped { break }
            // Wait for a fuller batch, at most `maxWait` after the oldest queued job arrived, but only while
            // submissions come closer together than that: a lone request (sequential clients, idle service)
            // would wait for nothing.
            while !stopped, arrivalGap < limits.maxWait, queuedCost < limits.maxBatchCost,
                  queues[.online]!.count + queues[.batch]!.count < limits.maxBatchItems,
                  let oldest = [queues[.online]!.first?.enqueued, queues[.batch]!.first?.enqueued].compactMap({ $0 }).min() {
                let remaining = oldest + limits.maxWait - .now
                if remaining <= .zero { break }
                _ = condition.wait(until: Date(timeIntervalSinceNow: remaining.seconds))
            }
            if stopped { break }
            let jobs = takeBatch()
            if jobs.isEmpty { continue }
            condition.unlock()
            let started = ContinuousClock.now
            for job in jobs { metrics.queueWait.record(started - job.enqueued) }
            let outputs = turn.run(priority: jobs.contains(where: \.online) ? .online : .batch) { body(jobs.map(\.input)) }
            let inference = ContinuousClock.now - started
            metrics.inference.record(inference)
            metrics.batchItems.record(jobs.count)
            metrics.batchCost.record(jobs.reduce(0) { $0 + $1.cost })
            condition.lock()
            batchNumber += 1
            var finished: [(Ticket, [Output])] = []
            for (job, output) in zip(jobs, outputs) {
                guard let ticket = tickets[job.ticket] else { continue }  // failed meanwhile
                ticket.outputs[job.index] = output
                ticket.remaining -= 1
                ticket.timing.queue = max(ticket.timing.queue, started - job.enqueued)
                if ticket.lastBatch != batchNumber {
                    ticket.lastBatch = batchNumber
                    ticket.timing.inference += inference
                }
                if ticket.remaining == 0 {
                    tickets[job.ticket] = nil
                    finished.append((ticket, ticket.outputs.map { $0! }))
                }
            }
            condition.unlock()
            for (ticket, outputs) in finished { ticket.continuation.resume(returning: .success((outputs, ticket.timing))) }
            condition.lock()
        }
        let abandoned = Array(tickets.values)
        tickets.removeAll()
        queues = [.online: [], .batch: []]
        queuedCost = 0
        condition.unlock()
        let error = EmbeddingError(status: 503, code: "shutting_down", message: "the service is shutting down")
        for ticket in abandoned { ticket.continuation.resume(returning: .failure(error)) }
        condition.lock()
    }

    /// Online jobs first, then batch jobs, up to the batch limits (at least one job, however costly).
    private func takeBatch() -> [Job] {
        var taken: [Job] = []
        var cost = 0
        for priority in Priority.allCases {
            var count = 0
            for job in queues[priority]! {
                guard taken.count < limits.maxBatchItems, taken.isEmpty || cost + job.cost <= limits.maxBatchCost else { break }
                taken.append(job)
                cost += job.cost
                count += 1
            }
            queues[priority]!.removeFirst(count)
        }
        queuedCost -= cost
        metrics.depth.record(queuedCost)
        return taken
    }

    private struct Metrics {
        let queueWait: CoreMetrics.Timer
        let inference: CoreMetrics.Timer
        let batchItems: Recorder
        let batchCost: Recorder
        let depth: Gauge
        let tower: String
        let factory: any MetricsFactory

        init(tower: String, factory: any MetricsFactory) {
            self.tower = tower
            self.factory = factory
            let dimensions = [("tower", tower)]
            queueWait = CoreMetrics.Timer(label: "omniembed_queue_wait_seconds", dimensions: dimensions, factory: factory)
            inference = CoreMetrics.Timer(label: "omniembed_inference_seconds", dimensions: dimensions, factory: factory)
            batchItems = Recorder(label: "omniembed_batch_items", dimensions: dimensions, factory: factory)
            batchCost = Recorder(label: "omniembed_batch_cost", dimensions: dimensions, factory: factory)
            depth = Gauge(label: "omniembed_queue_depth", dimensions: dimensions, factory: factory)
        }

        func refused(_ reason: String) {
            Counter(label: "omniembed_tower_failures_total", dimensions: [("tower", tower), ("reason", reason)],
                    factory: factory).increment()
        }
    }
}

extension CoreMetrics.Timer {
    func record(_ duration: Duration) {
        recordNanoseconds(Int64(duration.seconds * 1e9))
    }
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) * 1e-18
    }
}
