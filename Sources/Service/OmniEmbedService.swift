#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import HTTP
import Logging

/// The running service: HTTP server, routes, readiness and metrics.
public final class OmniEmbedService: Sendable {
    public let configuration: ServiceConfiguration
    public let readiness = Readiness()
    public let metrics: ServiceMetrics
    private let server: HTTPServer
    private let logger: Logger

    public init(configuration: ServiceConfiguration, logger: Logger, metrics: ServiceMetrics = ServiceMetrics()) throws {
        self.configuration = configuration
        self.logger = logger
        self.metrics = metrics
        let router = Routes.router(readiness: readiness, metrics: metrics)
        let responder = RouterResponder(router: router, logger: logger, metricsFactory: metrics.factory,
                                        compression: configuration.compression)
        server = try HTTPServer(configuration: configuration.http, responder: responder, logger: logger,
                            metricsFactory: metrics.factory)
    }

    /// Binds the port and starts serving; returns the bound port.
    @discardableResult
    public func start() throws -> Int {
        let port = try server.start()
        readiness.markReady()
        return port
    }

    /// Graceful shutdown: `/readyz` turns 503, no new connections, requests in flight finish within the grace period.
    public func shutdown() async {
        readiness.markDraining()
        await server.shutdown(gracePeriod: configuration.shutdownGracePeriod)
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully.
    public func run() async throws {
        try start()
        let signal = await Self.waitForTerminationSignal()
        logger.info("shutting down", metadata: ["signal": "\(signal)"])
        await shutdown()
    }

    private static func waitForTerminationSignal() async -> Int32 {
        await withCheckedContinuation { continuation in
            let queue = DispatchQueue(label: "omniembed.signals")
            let once = SignalLatch(continuation)
            for number in [SIGTERM, SIGINT] {
                signal(number, SIG_IGN)  // Dispatch sees the signal; the default action must not kill us first.
                let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
                source.setEventHandler { once.fire(number) }
                source.resume()
                once.keep(source)
            }
        }
    }
}

/// Resumes a continuation once, on the first of several signals; keeps the sources alive until then.
private final class SignalLatch: @unchecked Sendable {
    // Touched only on the signal queue.
    private var continuation: CheckedContinuation<Int32, Never>?
    private var sources: [any DispatchSourceSignal] = []

    init(_ continuation: CheckedContinuation<Int32, Never>) { self.continuation = continuation }

    func keep(_ source: any DispatchSourceSignal) { sources.append(source) }

    func fire(_ signal: Int32) {
        continuation?.resume(returning: signal)
        continuation = nil
    }
}
