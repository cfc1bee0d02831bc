import CoreMetrics

/// The server's own metrics (connections, bytes, rejected requests), made through an injected factory
/// so that each server instance can report into its own registry.
public struct HTTPServerMetrics: Sendable {
    let factory: any MetricsFactory
    let openConnections: Meter
    let acceptedConnections: Counter
    let receivedBytes: Counter
    let sentBytes: Counter

    public init(factory: any MetricsFactory) {
        self.factory = factory
        openConnections = Meter(label: "http_open_connections", factory: factory)
        acceptedConnections = Counter(label: "http_connections_total", factory: factory)
        receivedBytes = Counter(label: "http_received_bytes_total", factory: factory)
        sentBytes = Counter(label: "http_sent_bytes_total", factory: factory)
    }

    /// Counts a request refused before it reached a responder, by reason (see `HTTPParseError.code`).
    func rejected(_ reason: String) {
        Counter(label: "http_rejected_requests_total", dimensions: [("reason", reason)], factory: factory).increment()
    }

    /// Counts a completed TLS handshake by protocol version.
    func tlsHandshake(version: String) {
        Counter(label: "tls_handshakes_total", dimensions: [("version", version)], factory: factory).increment()
    }

    /// Counts a TLS connection that failed before a request, by reason (`timeout`, `handshake`, `plain_http`).
    func tlsFailed(_ reason: String) {
        Counter(label: "tls_failures_total", dimensions: [("reason", reason)], factory: factory).increment()
    }
}
