import CoreMetrics
import Dispatch
import Foundation
@testable import Embedding
import Synchronization
import Testing

/// The batcher with a body that records its batches and can be held, so tests decide what is queued when.
final class Recorder: Sendable {
    let batches = Mutex<[[Int]]>([])
    let gate = DispatchSemaphore(value: 0)
    let held = Atomic<Bool>(false)
    let entered = Atomic<Int>(0)

    func body(_ inputs: [Int]) -> [Int] {
        batches.withLock { $0.append(inputs) }
        // Blocks the batcher's own thread, never the test's tasks.
        if held.load(ordering: .acquiring) {
            entered.add(1, ordering: .releasing)
            gate.wait()
        }
        return inputs.map { $0 * 10 }
    }
}

@Suite(.serialized) struct BatchSchedulerTests {
    func scheduler(_ recorder: Recorder, cost: Int = 100, items: Int = 100, wait: Duration = .milliseconds(1),
                   capacity: Int = 1000) -> BatchScheduler<Int, Int> {
        BatchScheduler(name: "test", limits: .init(maxBatchCost: cost, maxBatchItems: items, maxWait: wait, capacity: capacity),
                       turn: ComputeTurn(), metricsFactory: NOOPMetricsHandler.instance) { recorder.body($0) }
    }

    /// Holds the worker inside a batch of `[-1]`; returns the task waiting for it.
    func occupy(_ batcher: BatchScheduler<Int, Int>, _ recorder: Recorder) async throws -> Task<[Int], any Error> {
        recorder.held.store(true, ordering: .releasing)
        let task = Task { try await batcher.submit([(-1, 1)], deadline: .now + .seconds(30)).outputs }
        try await eventually { recorder.entered.load(ordering: .acquiring) == 1 }
        recorder.held.store(false, ordering: .releasing)
        return task
    }

    /// Waits (polling, bounded) until `condition` holds.
    func eventually(_ condition: () -> Bool) async throws {
        for _ in 0..<2000 where !condition() { try await Task.sleep(for: .milliseconds(1)) }
    }

    @Test func outputsComeBackInOrderPerRequest() async throws {
        let recorder = Recorder()
        let batcher = scheduler(recorder)
        defer { batcher.shutdown() }
        let result = try await batcher.submit([(1, 1), (2, 1), (3, 1)], deadline: .now + .seconds(5))
        #expect(result.outputs == [10, 20, 30])
    }

    @Test func requestsQueuedTogetherShareOneBatchUpToTheCaps() async throws {
        let recorder = Recorder()
        let batcher = scheduler(recorder, cost: 10, items: 4)
        defer { batcher.shutdown() }
        let blocker = try await occupy(batcher, recorder)
        let requests = (0..<3).map { r in
            Task { try await batcher.submit([(r * 2, 3), (r * 2 + 1, 3)], deadline: .now + .seconds(30)).outputs }
        }
        try await eventually { batcher.queuedJobs == 6 }
        recorder.gate.signal()
        _ = try await blocker.value
        for (r, request) in requests.enumerated() { #expect(try await request.value == [r * 20, r * 20 + 10]) }
        // 6 jobs of cost 3 under a cost cap of 10: batches of 3, 3 (cost 9 each), in arrival order.
        let batches = recorder.batches.withLock { Array($0.dropFirst()) }
        #expect(batches.map(\.count) == [3, 3])
        #expect(batches.flatMap { $0 }.sorted() == Array(0..<6))
    }

    @Test func aFullQueueRefusesWholeSubmissionsWithRetryAfter() async throws {
        let recorder = Recorder()
        let batcher = scheduler(recorder, capacity: 4)
        defer { batcher.shutdown() }
        let blocker = try await occupy(batcher, recorder)
        let queued = Task { try await batcher.submit([(1, 3)], deadline: .now + .seconds(30)) }
        try await eventually { batcher.queuedJobs == 1 }
        await #expect(throws: EmbeddingError.overloaded("test")) {
            try await batcher.submit([(2, 1), (3, 1)], deadline: .now + .seconds(30))
        }
        #expect(EmbeddingError.overloaded("test").status == 429 && EmbeddingError.overloaded("test").retryAfter != nil)
        recorder.gate.signal()
        _ = try await blocker.value
        #expect(try await queued.value.outputs == [10])
        #expect(!recorder.batches.withLock { $0.flatMap { $0 } }.contains(2))
    }

    @Test func aPassedDeadlineFailsWith504AndDropsTheQueuedWork() async throws {
        let recorder = Recorder()
        let batcher = scheduler(recorder)
        defer { batcher.shutdown() }
        let blocker = try await occupy(batcher, recorder)
        let error = await #expect(throws: EmbeddingError.self) {
            try await batcher.submit([(7, 1)], deadline: .now + .milliseconds(20))
        }
        #expect(error?.status == 504)
        recorder.gate.signal()
        _ = try await blocker.value
        _ = try await batcher.submit([(8, 1)], deadline: .now + .seconds(5))
        #expect(recorder.batches.withLock { $0.flatMap { $0 } } == [-1, 8])
    }

    @Test func cancellationDropsTheQueuedWork() async throws {
        let recorder = Recorder()
        let batcher = scheduler(recorder)
        defer { batcher.shutdown() }
        let blocker = try await occupy(batcher, recorder)
        let abandoned = Task { try await batcher.submit([(5, 1)], deadline: .now + .seconds(30)) }
        try await eventually { batcher.queuedJobs == 1 }
        abandoned.cancel()
        let error = await #expect(throws: EmbeddingError.self) { try await abandoned.value }
        #expect(error?.code == "cancelled")
        recorder.gate.signal()
        _ = try await blocker.value
        _ = try await batcher.submit([(6, 1)], deadline: .now + .seconds(5))
        #expect(recorder.batches.withLock { $0.flatMap { $0 } } == [-1, 6])
    }

    @Test func onlineWorkRunsBeforeBatchWork() async throws {
        let recorder = Recorder()
        let batcher = scheduler(recorder, items: 1)
        defer { batcher.shutdown() }
        let blocker = try await occupy(batcher, recorder)
        let backfill = Task { try await batcher.submit([(1, 1)], priority: .batch, deadline: .now + .seconds(30)) }
        try await eventually { batcher.queuedJobs == 1 }
        let online = Task { try await batcher.submit([(2, 1)], priority: .online, deadline: .now + .seconds(30)) }
        try await eventually { batcher.queuedJobs == 2 }
        recorder.gate.signal()
        _ = try await blocker.value
        _ = try await (backfill.value, online.value)
        #expect(recorder.batches.withLock { $0 } == [[-1], [2], [1]])
    }

    @Test func shutdownFailsQueuedWorkWith503() async throws {
        let recorder = Recorder()
        let batcher = scheduler(recorder)
        let blocker = try await occupy(batcher, recorder)
        let queued = Task { try await batcher.submit([(1, 1)], deadline: .now + .seconds(30)) }
        try await eventually { batcher.queuedJobs == 1 }
        batcher.shutdown()
        recorder.gate.signal()
        _ = try await blocker.value
        let error = await #expect(throws: EmbeddingError.self) { try await queued.value }
        #expect(error?.status == 503)
    }

    /// Towers share the cores through one `ComputeTurn`; when a backfill's batch on one tower ends, an online
    /// batch waiting on another tower runs before the backfill's next batch.
    @Test func onlineWorkOfOneTowerGoesBeforeBatchWorkOfAnother() async throws {
        let turn = ComputeTurn()
        let order = Mutex<[String]>([])
        let gate = DispatchSemaphore(value: 0)
        let entered = Atomic<Int>(0)
        let limits = BatchLimits(maxBatchCost: 1, maxBatchItems: 1, maxWait: .zero, capacity: 100)
        let image = BatchScheduler<Int, Int>(name: "image", limits: limits, turn: turn,
                                             metricsFactory: NOOPMetricsHandler.instance) { inputs in
            order.withLock { $0.append("image \(inputs[0])") }
            if inputs[0] == 0 {
                entered.add(1, ordering: .releasing)
                gate.wait()
            }
            return inputs
        }
        let text = BatchScheduler<Int, Int>(name: "text", limits: limits, turn: turn,
                                            metricsFactory: NOOPMetricsHandler.instance) { inputs in
            order.withLock { $0.append("text") }
            return inputs
        }
        defer { image.shutdown(); text.shutdown() }
        let backfill = Task { try await image.submit([(0, 1), (1, 1), (2, 1)], priority: .batch, deadline: .now + .seconds(30)) }
        try await eventually { entered.load(ordering: .acquiring) == 1 }
        let online = Task { try await text.submit([(7, 1)], priority: .online, deadline: .now + .seconds(30)) }
        try await eventually { turn.onlineWaitingCount == 1 }
        gate.signal()
        _ = try await (backfill.value, online.value)
        #expect(order.withLock { $0 } == ["image 0", "text", "image 1", "image 2"])
    }
}
