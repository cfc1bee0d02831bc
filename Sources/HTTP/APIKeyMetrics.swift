import CoreMetrics
import Locking

/// What each API key does, by the key's name (never the key): requests and items admitted, and refusals by
/// reason. Requests without a valid key are counted under an empty name. Counters are cached per label set so
/// that a request costs one dictionary look-up; the names come from the keys file, so their number is bounded.
final class APIKeyMetrics: Sendable {
    private let factory: any MetricsFactory
    private struct Labels: Hashable {
        var metric: String
        var key: String
        var reason: String
    }
    private let counters = Locked<[Labels: Counter]>([:])

    init(factory: any MetricsFactory) {
        self.factory = factory
    }

    func admitted(key: String) { counter("api_key_requests_total", key: key).increment() }

    func embedded(_ items: Int, key: String) { counter("api_key_items_total", key: key).increment(by: items) }

    /// `reason`: unauthorized (no valid key), forbidden (scope), rate_limited (requests), items_rate_limited.
    func refused(key: String, reason: String) {
        counter("api_key_refusals_total", key: key, reason: reason).increment()
    }

    private func counter(_ metric: String, key: String, reason: String? = nil) -> Counter {
        let labels = Labels(metric: metric, key: key, reason: reason ?? "")
        return counters.withLock { counters in
            if let counter = counters[labels] { return counter }
            var dimensions = [("key", key)]
            if let reason { dimensions.append(("reason", reason)) }
            let counter = Counter(label: metric, dimensions: dimensions, factory: factory)
            counters[labels] = counter
            return counter
        }
    }
}
