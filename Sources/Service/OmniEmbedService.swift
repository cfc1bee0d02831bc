#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Embedding
import Foundation
import HTTP
import Locking
import Logging

/// The running service: HTTP server, routes, readiness and metrics.
///
/// The port is bound first, then the towers load: meanwhile `/healthz` answers 200, `/readyz` 503 and the API 503
/// `starting`, so an orchestrator can tell a slow start from a dead process.
public final class OmniEmbedService: Sendable {
    /// The scopes an API key may hold (`omniembed keys new` checks against them).
    public static let apiKeyScopes = Routes.Scope.all
    public let configuration: ServiceConfiguration
    public let readiness = Readiness()
    public let metrics: ServiceMetrics
    private let server: HTTPServer
    private let responder: SwappableResponder
    private let logger: Logger
    private let loaded = Locked<(pipeline: EmbeddingPipeline, reloader: CodebookReloader)?>(nil)
    /// The API keys in force; `nil` without `auth.keysFile`.
    private let authenticator: Authenticator?
    /// The listener's certificate; `nil` without TLS.
    private let certificates: TLSCertificates?

    public init(configuration: ServiceConfiguration, logger: Logger, metrics: ServiceMetrics = ServiceMetrics()) throws {
        self.configuration = configuration
        self.logger = logger
        self.metrics = metrics
        authenticator = configuration.auth.keysFile.isEmpty
            ? nil : Authenticator(try Self.readKeys(configuration.auth.keysFile),
                                  requestsPerSecond: configuration.auth.requestsPerSecond > 0
                                      ? configuration.auth.requestsPerSecond : nil,
                                  itemsPerSecond: configuration.auth.itemsPerSecond > 0
                                      ? configuration.auth.itemsPerSecond : nil,
                                  metricsFactory: metrics.factory)
        certificates = configuration.tls.enabled ? TLSCertificates(try Self.tlsContext(configuration.tls)) : nil
        responder = SwappableResponder(RouterResponder(
            router: Routes.starting(readiness: readiness, metrics: metrics,
                                    protectMetrics: configuration.auth.protectMetrics),
            logger: logger, metricsFactory: metrics.factory, compression: configuration.compression,
            authenticator: authenticator))
        server = try HTTPServer(configuration: configuration.http, responder: responder, logger: logger,
                                metricsFactory: metrics.factory, tls: certificates)
    }

    /// Binds the port, loads the towers and the store, and turns `/readyz` ready once a warm-up batch has run
    /// through every tower. Returns the bound port; a failure to load closes it again and throws.
    @discardableResult
    public func start() async throws -> Int {
        let port = try server.start()
        do {
            let (configuration, logger, metrics) = (configuration, logger, metrics)
            // Seconds of file reading and weight packing: on a thread of its own, not the cooperative pool.
            let pipeline = try await withCheckedThrowingContinuation { continuation in
                Thread.detachNewThread {
                    continuation.resume(with: Result { try configuration.makePipeline(logger: logger, metricsFactory: metrics.factory) })
                }
            }
            let reloader = CodebookReloader(path: configuration.codebook.path, pipeline: pipeline, logger: logger,
                                            metricsFactory: metrics.factory)
            loaded.withLock { $0 = (pipeline, reloader) }
            responder.replace(RouterResponder(
                router: Routes.router(readiness: readiness, metrics: metrics, pipeline: pipeline, reloader: reloader,
                                      configuration: configuration,
                                      reloadSecurity: { [weak self] in self?.reloadSecurity() },
                                      authenticator: authenticator),
                logger: logger, metricsFactory: metrics.factory, compression: configuration.compression,
                authenticator: authenticator))
            try await pipeline.warmUp()
            if let store = pipeline.store {
                readiness.watch { store.isAvailable ? nil : "the item store (\(store.location)) does not answer" }
            }
            readiness.markReady()
            logger.info("ready", metadata: ["model": "\(pipeline.model.id)", "revision": "\(pipeline.model.revision)",
                                            "store": "\(pipeline.store?.location ?? "disabled")",
                                            "codebook": "\(pipeline.codebooks.current?.version ?? "none")"])
        } catch {
            await shutdown()
            throw error
        }
        return port
    }

    /// Graceful shutdown: `/readyz` turns 503, no new connections, requests in flight finish within the grace period.
    public func shutdown() async {
        readiness.markDraining()
        await server.shutdown(gracePeriod: configuration.shutdownGracePeriod)
        loaded.withLock { $0 }?.pipeline.shutdown()
    }

    /// SIGHUP: the codebook (ignored while the towers load), the certificate and the keys, each read again.
    private func reloadOnHangUp() {
        _ = try? loaded.withLock { $0 }?.reloader.reload()
        reloadSecurity()
    }

    /// Reads the certificate and the keys file again; a file that cannot be used keeps the one in force.
    private func reloadSecurity() {
        if let certificates {
            do {
                certificates.replace(try Self.tlsContext(configuration.tls))
                logger.info("tls certificate loaded", metadata: ["file": "\(configuration.tls.certificateFile)"])
            } catch {
                logger.error("tls certificate reload failed; keeping the loaded one", metadata: ["error": "\(error)"])
            }
        }
        guard let authenticator else { return }
        do {
            authenticator.replace(try Self.readKeys(configuration.auth.keysFile))
            logger.info("api keys loaded", metadata: ["keys": "\(authenticator.keys.keys.count)"])
        } catch {
            logger.error("api keys reload failed; keeping the loaded ones", metadata: ["error": "\(error)"])
        }
    }

    static func tlsContext(_ settings: ServiceConfiguration.TLSSettings) throws -> TLSContext {
        try TLSContext(certificateFile: settings.certificateFile, privateKeyFile: settings.privateKeyFile,
                       clientCAFile: settings.clientCAFile.isEmpty ? nil : settings.clientCAFile)
    }

    /// The keys at `path`: a regular file of at most `APIKeys.maxFileBytes` (a FIFO or a device is refused, not
    /// waited on), read once through the descriptor it was checked on.
    static func readKeys(_ path: String) throws -> APIKeys {
        do {
            let bytes = try RegularFile.read(path, maxBytes: APIKeys.maxFileBytes)
            return try APIKeys(parsing: String(decoding: bytes, as: UTF8.self), scopes: Routes.Scope.all)
        } catch let error as APIKeys.FileError {
            throw ConfigurationError.invalid(key: "auth.keysFile", reason: "\(path): \(error)")
        } catch {
            throw ConfigurationError.invalid(key: "auth.keysFile", reason: "\(error)")
        }
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully; SIGHUP reloads the codebook.
    public func run() async throws {
        // Watch the signals before the port opens: a SIGTERM right after start must drain, not kill.
        let signals = TerminationSignals()
        signal(SIGHUP, SIG_IGN)
        let hangup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: DispatchQueue(label: "omniembed.sighup"))
        hangup.setEventHandler { [weak self] in self?.reloadOnHangUp() }
        hangup.resume()
        defer { hangup.cancel() }
        try await start()
        let signal = await signals.first()
        logger.info("shutting down", metadata: ["signal": "\(signal)"])
        await shutdown()
    }
}

/// Where the SIGTERM/SIGINT handler writes the signal number (a self-pipe: the only work a signal handler may do
/// safely). Set once, before the handler is installed.
nonisolated(unsafe) private var terminationPipeWriteEnd: Int32 = -1

/// SIGTERM and SIGINT as an event. The handler is installed with `signal()` at once, and writes into a pipe that a
/// Dispatch read source watches: a signal that arrives before Dispatch has registered the source (it registers
/// asynchronously, and under load that took long enough to lose signals sent right after the port opened) waits
/// in the pipe instead of being lost.
private final class TerminationSignals: @unchecked Sendable {
    // Mutable state is touched only on `queue`.
    private let queue = DispatchQueue(label: "omniembed.signals")
    private let source: any DispatchSourceRead
    private let readEnd: Int32
    private var received: Int32?
    private var waiter: CheckedContinuation<Int32, Never>?

    init() {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { fatalError("pipe: \(errno)") }
        for end in ends {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
        }
        readEnd = ends[0]
        terminationPipeWriteEnd = ends[1]
        source = DispatchSource.makeReadSource(fileDescriptor: readEnd, queue: queue)
        // Weak: the source can fire again after the service has stopped waiting and released this object.
        source.setEventHandler { [weak self, readEnd] in
            var byte: UInt8 = 0
            while read(readEnd, &byte, 1) == 1 { self?.fire(Int32(byte)) }
        }
        source.resume()
        for number in [SIGTERM, SIGINT] {
            signal(number) { number in
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(terminationPipeWriteEnd, &byte, 1)
            }
        }
    }

    deinit {
        source.cancel()
    }

    /// The first signal received, waiting for one if none has come yet.
    func first() async -> Int32 {
        await withCheckedContinuation { continuation in
            queue.async { [self] in
                if let received { continuation.resume(returning: received) } else { waiter = continuation }
            }
        }
    }

    private func fire(_ signal: Int32) {
        guard received == nil else { return }
        received = signal
        waiter?.resume(returning: signal)
        waiter = nil
    }
}
