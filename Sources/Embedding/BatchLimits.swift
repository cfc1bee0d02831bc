/// When a tower's dynamic batcher closes a batch, and how much work its queue holds (see `BatchScheduler`).
public struct BatchLimits: Sendable, Equatable {
    public var maxBatchCost: Int
    public var maxBatchItems: Int
    public var maxWait: Duration
    public var capacity: Int

    public init(maxBatchCost: Int, maxBatchItems: Int, maxWait: Duration, capacity: Int) {
        self.maxBatchCost = maxBatchCost
        self.maxBatchItems = maxBatchItems
        self.maxWait = maxWait
        self.capacity = capacity
    }
}
