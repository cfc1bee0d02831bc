import CoreMetrics
import Prometheus

/// The service's Prometheus registry and the swift-metrics factory that reports into it.
/// Each service instance owns one, so instances (in tests) never share counters.
public struct ServiceMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    public let factory: any MetricsFactory

    public init() {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Request latencies of an embedding service span sub-millisecond health checks to multi-second batches.
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        ]
        // Batch sizes: items per batch, and cost per batch (tokens for text, images, audio patches).
        factory.valueHistogramBuckets["omniembed_batch_items"] = [1, 2, 4, 8, 16, 32, 64, 128, 256]
        factory.valueHistogramBuckets["omniembed_batch_cost"] = [1, 4, 16, 64, 256, 1024, 2048, 4096, 8192, 16384]
        self.registry = registry
        self.factory = factory
    }

    /// The Prometheus text exposition of every metric.
    public func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }
}
