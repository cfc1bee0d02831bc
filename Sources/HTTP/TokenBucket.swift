/// A token bucket: `rate` tokens a second up to `burst`; a value type with time passed in, so it is tested with an
/// injected clock.
public struct TokenBucket: Sendable, Equatable {
    public let rate: Double
    public let burst: Double
    private var tokens: Double
    private var updated: MonotonicInstant

    public init(rate: Double, burst: Double, now: MonotonicInstant) {
        self.rate = rate
        self.burst = burst
        tokens = burst
        updated = now
    }

    /// Takes `cost` tokens if there are as many; otherwise takes none and returns the seconds until there will be.
    public mutating func take(_ cost: Double = 1, now: MonotonicInstant) -> Double? {
        if now > updated {
            tokens = min(burst, tokens + rate * Double(now.nanoseconds - updated.nanoseconds) * 1e-9)
            updated = now
        }
        guard tokens >= cost else { return rate > 0 ? (cost - tokens) / rate : .infinity }
        tokens -= cost
        return nil
    }
}
