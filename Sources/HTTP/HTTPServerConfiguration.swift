/// Everything the server enforces, with production defaults.
public struct HTTPServerConfiguration: Sendable {
    public var host: String = "127.0.0.1"
    /// 0 picks a free port (tests).
    public var port: Int = 8080
    public var backlog: Int32 = 1024
    /// Connections beyond this are answered 503 and closed at once.
    public var maxConnections: Int = 4096
    public var maxRequestsPerConnection: Int = 10_000
    public var limits = HTTPDecoderLimits()
    public var timeouts = HTTPConnectionTimeouts()
    /// How long a closing connection keeps reading (and discarding) after its last response.
    public var lingerTimeout: Duration = .seconds(2)
    public var serverName: String = "omniembed"
    /// Event loops (epoll sets, each on a serial queue) that connections are spread over; 0: one per processor.
    public var eventLoops: Int = 0

    public init() {}
}
