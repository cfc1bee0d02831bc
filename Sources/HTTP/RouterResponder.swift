import CoreMetrics
import Locking
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
    private let authenticator: Authenticator?

    /// `authenticator`: checks the routes that name a scope; `nil` leaves every route open.
    public init(router: Router, logger: Logger, metricsFactory: any MetricsFactory,
                compression: CompressionOptions = CompressionOptions(), authenticator: Authenticator? = nil) {
        self.router = router
        self.logger = logger
        self.compression = compression
        self.metrics = RequestMetrics(factory: metricsFactory)
        self.authenticator = authenticator
    }

    /// What is known of a request before its handler runs.
    private struct Exchange {
        let start: ContinuousClock.Instant
        let requestID: String
        let match: Router.Match
    }

    public func respondImmediately(to request: HTTPRequest, connection: HTTPConnectionInfo) -> HTTPResponse? {
        let match = router.match(method: request.method, path: request.path)
        if case .found(let route, _) = match, case .async = route.handler { return nil }
        let exchange = begin(request, match: match)
        let response: HTTPResponse
        var keyName: String?
        if case .found(let route, let parameters) = match, case .immediate(let handler) = route.handler {
            do {
                let context = try authorized(context(exchange, parameters, connection), request, route)
                keyName = context.keyName
                response = try handler(request, context)
            } catch {
                response = errorResponse(error, exchange: exchange, route: route)
            }
        } else {
            response = routingError(request, exchange.match)
        }
        return end(exchange, request, response, keyName: keyName)
    }

    public func respond(to request: HTTPRequest, connection: HTTPConnectionInfo) async -> HTTPResponse {
        let exchange = begin(request, match: router.match(method: request.method, path: request.path))
        let response: HTTPResponse
        var keyName: String?
        if case .found(let route, let parameters) = exchange.match {
            do {
                let context = try authorized(context(exchange, parameters, connection), request, route)
                keyName = context.keyName
                switch route.handler {
                case .async(let handler): response = try await handler(request, context)
                case .immediate(let handler): response = try handler(request, context)
                }
            } catch {
                response = errorResponse(error, exchange: exchange, route: route)
            }
        } else {
            response = routingError(request, exchange.match)
        }
        return end(exchange, request, response, keyName: keyName)
    }

    private func begin(_ request: HTTPRequest, match: Router.Match) -> Exchange {
        metrics.inFlight.increment()
        let requestID = request.headers["X-Request-Id"].flatMap(RequestIDGenerator.validated) ?? requestIDs.next()
        return Exchange(start: .now, requestID: requestID, match: match)
    }

    private func context(_ exchange: Exchange, _ parameters: [String: String], _ connection: HTTPConnectionInfo) -> RequestContext {
        RequestContext(requestID: exchange.requestID, parameters: parameters, connection: connection, baseLogger: logger)
    }

    /// `context` with the key that authorises `request` for `route`'s scope, or the 401/403 to answer.
    private func authorized(_ context: RequestContext, _ request: HTTPRequest,
                            _ route: Router.Route) throws(HTTPError) -> RequestContext {
        guard let scope = route.scope, let authenticator else { return context }
        var context = context
        context.keyName = try authenticator.authorize(request, scope: scope).name
        return context
    }

    private func errorResponse(_ error: any Error, exchange: Exchange, route: Router.Route) -> HTTPResponse {
        if let error = error as? any HTTPResponseError { return .error(error) }
        logger.error("handler failed", metadata: [
            "error": "\(error)", "route": "\(route.pattern)", "request_id": "\(exchange.requestID)",
        ])
        return .error(HTTPError(.internalServerError, code: "internal", message: "internal server error"))
    }

    private func routingError(_ request: HTTPRequest, _ match: Router.Match) -> HTTPResponse {
        switch match {
        case .methodNotAllowed(let allowed):
            let allow = Array(Set(allowed.map(\.rawValue))).sorted().joined(separator: ", ")
            return .error(HTTPError(.methodNotAllowed, code: "method_not_allowed",
                                    message: "\(request.method) is not allowed on \(request.path)",
                                    headers: HTTPHeaders([("Allow", allow)])))
        case .notFound, .found:
            return .error(HTTPError(.notFound, code: "not_found", message: "no route for \(request.path)"))
        }
    }

    /// `keyName`: the API key the request was authorised by, named in its log line (the key itself never is).
    private func end(_ exchange: Exchange, _ request: HTTPRequest, _ response: HTTPResponse, keyName: String?) -> HTTPResponse {
        var response = response
        response.headers.replaceOrAdd(name: "X-Request-Id", value: exchange.requestID)
        // API answers (vectors, probes, metrics) are of the moment and often private: no cache, shared or not,
        // keeps them unless the route says otherwise.
        if response.headers["Cache-Control"] == nil { response.headers.add(name: "Cache-Control", value: "no-store") }
        compressIfAccepted(&response, request: request)

        let routeLabel: String
        if case .found(let route, _) = exchange.match { routeLabel = route.pattern } else { routeLabel = "unmatched" }
        let duration = ContinuousClock.now - exchange.start
        metrics.duration(route: routeLabel, method: request.method.metricLabel, status: response.status.code)
            .recordNanoseconds(Int64(duration.seconds * 1e9))
        metrics.inFlight.decrement()
        let level: Logger.Level = response.status.code >= 500 ? .error : .info
        var metadata: Logger.Metadata = [
            "request_id": "\(exchange.requestID)",
            "method": "\(request.method)", "path": "\(request.path)", "status": "\(response.status.code)",
            "duration_ms": "\((duration.seconds * 1e6).rounded() / 1e3)", "bytes": "\(response.body.count)",
        ]
        if let keyName { metadata["key"] = "\(keyName)" }
        logger.log(level: level, "request", metadata: metadata)
        return response
    }

    private func compressIfAccepted(_ response: inout HTTPResponse, request: HTTPRequest) {
        guard compression.enabled, response.status.allowsBody else { return }
        // The body depends on Accept-Encoding whether or not this one was compressed: said on every response a
        // cache could otherwise serve to a client that cannot read it.
        if response.headers["Vary"] == nil { response.headers.add(name: "Vary", value: "Accept-Encoding") }
        guard response.body.count >= compression.minimumBytes,
              response.headers["Content-Encoding"] == nil,
              let accept = request.headers["Accept-Encoding"], Gzip.isAccepted(by: accept),
              let compressed = Gzip.compress(response.body, level: compression.level)
        else { return }
        response.body = compressed
        response.headers.replaceOrAdd(name: "Content-Encoding", value: "gzip")
    }
}

/// Request metrics, with the per-label timers cached so that a request costs one dictionary look-up.
final class RequestMetrics: Sendable {
    let factory: any MetricsFactory
    let inFlight: Meter
    private struct Labels: Hashable {
        var route: String
        var method: String
        var status: Int
    }
    private let timers = Locked<[Labels: Timer]>([:])

    init(factory: any MetricsFactory) {
        self.factory = factory
        inFlight = Meter(label: "http_requests_in_flight", factory: factory)
    }

    func duration(route: String, method: String, status: Int) -> Timer {
        let key = Labels(route: route, method: method, status: status)
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
