/// Where a request's time went in a tower: the longest any of its jobs waited in the queue, and the run time
/// of the batches its jobs were in.
public struct TowerTiming: Sendable, Equatable {
    public var queue: Duration = .zero
    public var inference: Duration = .zero

    public init(queue: Duration = .zero, inference: Duration = .zero) {
        self.queue = queue
        self.inference = inference
    }
}
