#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CoreMetrics
import Dispatch
import Locking
import Logging
import Synchronization

/// An HTTP/1.1 server on POSIX sockets and Dispatch.
///
/// `start()` binds and begins accepting; `shutdown(gracePeriod:)` stops accepting, lets requests in flight
/// finish and closes idle connections, then closes whatever is left when the grace period ends.
public final class HTTPServer: Sendable {
    /// What connections share.
    final class Context: Sendable {
        let configuration: HTTPServerConfiguration
        let responder: any HTTPResponder
        let logger: Logger
        let metrics: HTTPServerMetrics
        let encoder: HTTPResponseEncoder
        let dateCache = HTTPDateCache()
        let eventLoops: [EventLoop]
        let handlerExecutor = DispatchTaskExecutor(label: "omniembed.http.handlers")
        let connections = Locked<[UInt64: HTTPConnection]>([:])
        /// The listener speaks TLS with these; `nil`: plain HTTP.
        let tls: TLSCertificates?

        init(configuration: HTTPServerConfiguration, responder: any HTTPResponder, logger: Logger,
             metrics: HTTPServerMetrics, tls: TLSCertificates?) throws {
            let loopCount = configuration.eventLoops > 0 ? configuration.eventLoops : System.activeProcessorCount
            self.eventLoops = try (0..<loopCount).map { try EventLoop(label: "omniembed.http.loop.\($0)") }
            self.configuration = configuration
            self.responder = responder
            self.logger = logger
            self.metrics = metrics
            self.encoder = HTTPResponseEncoder(serverName: configuration.serverName)
            self.tls = tls
        }

        func connectionClosed(_ connection: HTTPConnection) {
            connections.withLock { _ = $0.removeValue(forKey: connection.id) }
            metrics.openConnections.decrement()
        }
    }

    private enum State {
        case idle
        case listening(port: Int, source: ListenerSource)
        case stopped
    }

    /// Dispatch sources are thread-safe; the wrapper only lets the state lock hold one.
    private struct ListenerSource: @unchecked Sendable {
        let source: DispatchSourceRead
    }

    private let context: Context
    private let state = Locked<State>(.idle)
    private let nextConnectionID = Atomic<UInt64>(0)
    private let acceptQueue = DispatchQueue(label: "omniembed.http.accept")
    private let refusals: LingeringRefusals

    /// `tls`: the certificates when the listener speaks TLS (every limit and timeout applies the same).
    public init(configuration: HTTPServerConfiguration, responder: any HTTPResponder, logger: Logger,
                metricsFactory: any MetricsFactory, tls: TLSCertificates? = nil) throws {
        context = try Context(configuration: configuration, responder: responder, logger: logger,
                              metrics: HTTPServerMetrics(factory: metricsFactory), tls: tls)
        refusals = LingeringRefusals(queue: acceptQueue, linger: configuration.lingerTimeout)
    }

    public var configuration: HTTPServerConfiguration { context.configuration }

    /// The bound port, once started.
    public var port: Int? {
        state.withLock { if case .listening(let port, _) = $0 { port } else { nil } }
    }

    /// Open connections right now.
    public var connectionCount: Int { context.connections.withLock { $0.count } }

    /// Binds and starts accepting; returns the bound port.
    @discardableResult
    public func start() throws -> Int {
        signal(SIGPIPE, SIG_IGN)
        let config = context.configuration
        let (fd, port) = try Socket.listen(host: config.host, port: config.port, backlog: config.backlog)
        let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: acceptQueue)
        source.setEventHandler { [self] in acceptPending(fd) }
        source.setCancelHandler { close(fd) }
        let listener = ListenerSource(source: source)
        state.withLock { $0 = .listening(port: port, source: listener) }
        source.resume()
        context.logger.info("listening", metadata: ["host": "\(config.host)", "port": "\(port)"])
        return port
    }

    private func acceptPending(_ listener: Int32) {
        while true {
            let accepted: (fd: Int32, peer: String)?
            do {
                accepted = try Socket.accept(listener)
            } catch {
                // Out of descriptors or memory: the pending connection stays queued and the listener stays
                // readable, so pause accepting for a moment instead of spinning on the error.
                context.logger.error("accept failed, pausing accepts for 100 ms", metadata: ["error": "\(error)"])
                pauseAccepting(for: .milliseconds(100))
                return
            }
            guard let (fd, peer) = accepted else { return }
            context.metrics.acceptedConnections.increment()
            // Only this queue adds connections, so the count cannot grow between the check and the insert.
            guard connectionCount < context.configuration.maxConnections else {
                refuseOverCapacity(fd)
                continue
            }
            let id = nextConnectionID.wrappingAdd(1, ordering: .relaxed).newValue
            let loop = context.eventLoops[Int(id % UInt64(context.eventLoops.count))]
            let connection = HTTPConnection(id: id, fd: fd, remoteAddress: peer, loop: loop, context: context)
            context.connections.withLock { $0[id] = connection }
            context.metrics.openConnections.increment()
            connection.start()
        }
    }

    private func pauseAccepting(for duration: DispatchTimeInterval) {
        guard case .listening(_, let listener) = state.withLock({ $0 }) else { return }
        listener.source.suspend()
        acceptQueue.asyncAfter(deadline: .now() + duration) { listener.source.resume() }
    }

    /// A 503 with `Retry-After`, then a lingering close (see `LingeringRefusals`).
    private func refuseOverCapacity(_ fd: Int32) {
        context.metrics.rejected("connection_limit")
        let error = HTTPError(.serviceUnavailable, code: "connection_limit", message: "too many open connections",
                              headers: HTTPHeaders([("Retry-After", "1")]))
        let bytes = context.encoder.encode(.error(error), method: .get, version: .http1_1, keepAlive: false,
                                           date: context.dateCache.current())
        refusals.refuse(fd, response: bytes)
    }

    /// Stops accepting, drains connections for up to `gracePeriod`, then closes the rest.
    public func shutdown(gracePeriod: Duration) async {
        let wasListening = state.withLock { state -> Bool in
            guard case .listening(_, let listener) = state else { return false }
            listener.source.cancel()
            state = .stopped
            return true
        }
        guard wasListening else { return }
        let open = context.connections.withLock { Array($0.values) }
        context.logger.info("draining", metadata: ["connections": "\(open.count)", "grace_seconds": "\(gracePeriod.seconds)"])
        for connection in open { connection.beginDrain() }

        let deadline = ContinuousClock.now + gracePeriod
        while connectionCount > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        let remaining = context.connections.withLock { Array($0.values) }
        if !remaining.isEmpty {
            context.logger.warning("grace period over, closing connections", metadata: ["connections": "\(remaining.count)"])
            for connection in remaining { connection.forceClose() }
            while connectionCount > 0 { try? await Task.sleep(for: .milliseconds(5)) }
        }
        context.logger.info("stopped")
    }
}
