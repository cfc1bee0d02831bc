import CoreMetrics
import Logging
import Synchronization

/// Response compression settings.
public struct CompressionOptions: Sendable {
    public var enabled = true
    /// Smaller bodies are sent as they are: gzip would not pay for its header.
    public var minimumBytes = 1024
    public var level: Int32 = 5
    public init() {}
}

/// Serves a `Router`: assigns request ids, maps thrown errors to the uniform error body, compresses,
/// and records one log line and the duration histogram per request.
public struct RouterResponder: HTTPResponder {
    private let router: Router
    private let logger: Logger
    private let compression: CompressionOptions
    private let metrics: RequestMetrics
    private let requestIDs = RequestIDGenerator()

    public init(router: Router, logger: Logger, metricsFactory: any MetricsFactory,
                compression: CompressionOptions = CompressionOptions()) {
        self.router = router
        self.logger = logger
        self.compression = compression
        self.metrics = RequestMetrics(factory: metricsFactory)
    }

    public func respond(to request: HTTPRequest, connection: HTTPConnectionInfo) async -> HTTPResponse {
        let start = ContinuousClock.now
        metrics.inFlight.increment()
        defer { metrics.inFlight.decrement() }

        let requestID = request.headers["X-Request-Id"].flatMap(RequestIDGenerator.validated) ?? requestIDs.next()
        var logger = self.logger
        logger[metadataKey: "request_id"] = "\(requestID)"

        let routeLabel: String
        var response: HTTPResponse
        switch router.match(method: request.method, path: request.path) {
        case .found(let route, let parameters):
            routeLabel = route.pattern
            let context = RequestContext(requestID: requestID, parameters: parameters, logger: logger, connection: connection)
            do {
                response = try await route.handler(request, context)
            } catch let error as any HTTPResponseError {
                response = .error(error)
            } catch {
                logger.error("handler failed", metadata: ["error": "\(error)", "route": "\(route.pattern)"])
                response = .error(HTTPError(.internalServerError, code: "internal", message: "internal server error"))
            }
        case .methodNotAllowed(let allowed):
            routeLabel = "unmatched"
            let allow = Array(Set(allowed.map(\.rawValue))).sorted().joined(separator: ", ")
            response = .error(HTTPError(.methodNotAllowed, code: "method_not_allowed",
                                        message: "\(request.method) is not allowed on \(request.path)",
                                        headers: HTTPHeaders([("Allow", allow)])))
        case .notFound:
            routeLabel = "unmatched"
            response = .error(HTTPError(.notFound, code: "not_found", message: "no route for \(request.path)"))
        }

        response.headers.replaceOrAdd(name: "X-Request-Id", value: requestID)
        compressIfAccepted(&response, request: request)

        let duration = ContinuousClock.now - start
        metrics.duration(route: routeLabel, method: request.method.metricLabel, status: response.status.code)
            .recordNanoseconds(Int64(duration.seconds * 1e9))
        let level: Logger.Level = response.status.code >= 500 ? .error : .info
        logger.log(level: level, "request", metadata: [
            "method": "\(request.method)", "path": "\(request.path)", "status": "\(response.status.code)",
            "duration_ms": "\((duration.seconds * 1e6).rounded() / 1e3)", "bytes": "\(response.body.count)",
        ])
        return response
    }

    private func compressIfAccepted(_ response: inout HTTPResponse, request: HTTPRequest) {
        guard compression.enabled, response.status.allowsBody, response.body.count >= compression.minimumBytes,
              response.headers["Content-Encoding"] == nil,
              let accept = request.headers["Accept-Encoding"], Gzip.isAccepted(by: accept),
              let compressed = Gzip.compress(response.body, level: compression.level)
        else { return }
        response.body = compressed
        response.headers.replaceOrAdd(name: "Content-Encoding", value: "gzip")
        response.headers.add(name: "Vary", value: "Accept-Encoding")
    }
}

/// Request metrics, with the per-label timers cached so that a request costs one dictionary look-up.
final class RequestMetrics: Sendable {
    let factory: any MetricsFactory
    let inFlight: Meter
    private let timers = Mutex<[String: Timer]>([:])

    init(factory: any MetricsFactory) {
        self.factory = factory
        inFlight = Meter(label: "http_requests_in_flight", factory: factory)
    }

    func duration(route: String, method: String, status: Int) -> Timer {
        let key = "\(route) \(method) \(status)"
        return timers.withLock { timers in
            if let timer = timers[key] { return timer }
            let timer = Timer(label: "http_request_duration_seconds",
                              dimensions: [("route", route), ("method", method), ("status", String(status))],
                              factory: factory)
            timers[key] = timer
            return timer
        }
    }
}

/// Request ids: a random per-process prefix and a counter, unique without a syscall per request.
final class RequestIDGenerator: Sendable {
    private let prefix: String
    private let counter = Atomic<UInt64>(0)

    init() {
        var generator = SystemRandomNumberGenerator()
        prefix = String(UInt64.random(in: 0...UInt64.max, using: &generator) >> 16, radix: 16)
    }

    func next() -> String {
        "\(prefix)-\(String(counter.wrappingAdd(1, ordering: .relaxed).newValue, radix: 16))"
    }

    /// A client-supplied id is echoed if it is 1 to 128 characters of `[A-Za-z0-9._:-]`.
    static func validated(_ id: String) -> String? {
        guard (1...128).contains(id.utf8.count), id.utf8.allSatisfy({ b in
            b.isTokenCharacter && b != UInt8(ascii: "|") && b != UInt8(ascii: "`") || b == UInt8(ascii: ":")
        }) else { return nil }
        return id
    }
}
