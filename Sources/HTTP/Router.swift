import Logging

/// What a handler gets besides the request.
public struct RequestContext: Sendable {
    public var requestID: String
    /// Path parameters by name, percent-decoded.
    public var parameters: [String: String]
    public var connection: HTTPConnectionInfo
    /// The name of the API key the request was authorised by (routes with a scope, when keys are configured).
    public var keyName: String?
    let baseLogger: Logger

    /// A logger carrying `request_id` (made on use: most requests log nothing but their one request line).
    public var logger: Logger {
        var logger = baseLogger
        logger[metadataKey: "request_id"] = "\(requestID)"
        return logger
    }
}

public typealias RouteHandler = @Sendable (HTTPRequest, RequestContext) async throws -> HTTPResponse

/// A handler that answers without waiting or blocking (a probe, a metrics scrape); it runs on the
/// connection's thread.
public typealias ImmediateRouteHandler = @Sendable (HTTPRequest, RequestContext) throws -> HTTPResponse

/// Routes by method and path pattern; `{name}` segments capture parameters.
/// `HEAD` falls back to the `GET` route; a known path with the wrong method is a 405 with `Allow`.
public struct Router: Sendable {
    /// A class: matching hands one around per request, and a reference is one retain where a struct of
    /// strings, an array and a closure was several.
    final class Route: Sendable {
        let method: HTTPMethod
        let pattern: String
        let segments: [Segment]
        let handler: Handler
        /// The API-key scope a caller needs; `nil`: open to all.
        let scope: String?
        let literalCount: Int

        init(method: HTTPMethod, pattern: String, segments: [Segment], handler: Handler, scope: String?) {
            self.method = method
            self.pattern = pattern
            self.segments = segments
            self.handler = handler
            self.scope = scope
            literalCount = segments.filter { if case .literal = $0 { true } else { false } }.count
        }
    }

    enum Handler: Sendable {
        case async(RouteHandler)
        case immediate(ImmediateRouteHandler)
    }

    enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    enum Match {
        case found(Route, parameters: [String: String])
        case methodNotAllowed(allowed: [HTTPMethod])
        case notFound
    }

    private var routes: [Route] = []

    public init() {}

    /// `scope`: the API-key scope a caller needs (checked when the responder has an `Authenticator`).
    public mutating func add(_ method: HTTPMethod, _ pattern: String, scope: String? = nil,
                             _ handler: @escaping RouteHandler) {
        add(method, pattern, .async(handler), scope: scope)
    }

    public mutating func add(_ method: HTTPMethod, _ pattern: String, scope: String? = nil,
                             immediate handler: @escaping ImmediateRouteHandler) {
        add(method, pattern, .immediate(handler), scope: scope)
    }

    private mutating func add(_ method: HTTPMethod, _ pattern: String, _ handler: Handler, scope: String?) {
        let segments = Self.split(pattern).map { part -> Segment in
            part.hasPrefix("{") && part.hasSuffix("}") ? .parameter(String(part.dropFirst().dropLast())) : .literal(String(part))
        }
        routes.append(Route(method: method, pattern: pattern, segments: segments, handler: handler, scope: scope))
    }

    public mutating func get(_ pattern: String, scope: String? = nil, _ handler: @escaping RouteHandler) {
        add(.get, pattern, scope: scope, handler)
    }
    public mutating func get(_ pattern: String, scope: String? = nil, immediate handler: @escaping ImmediateRouteHandler) {
        add(.get, pattern, scope: scope, immediate: handler)
    }
    public mutating func post(_ pattern: String, scope: String? = nil, _ handler: @escaping RouteHandler) {
        add(.post, pattern, scope: scope, handler)
    }
    public mutating func delete(_ pattern: String, scope: String? = nil, _ handler: @escaping RouteHandler) {
        add(.delete, pattern, scope: scope, handler)
    }

    /// The route for `method` on `path`. Where a pattern with literal segments and one with parameters both fit a
    /// path (`/items/batch_get` and `/items/{id}`), only the more literal ones count: their methods alone are allowed.
    func match(method: HTTPMethod, path: String) -> Match {
        let parts = Self.split(path)
        // The most literal patterns that fit so far; the allowed methods are gathered only when none is the method.
        var mostLiteral = -1
        var exact: (Route, [String: String])?
        var get: (Route, [String: String])?
        for route in routes {
            guard route.literalCount >= mostLiteral, let parameters = Self.bind(route.segments, to: parts) else { continue }
            if route.literalCount > mostLiteral { (mostLiteral, exact, get) = (route.literalCount, nil, nil) }
            if route.method == method, exact == nil { exact = (route, parameters) }
            if route.method == .get, get == nil { get = (route, parameters) }
        }
        if let (route, parameters) = exact ?? (method == .head ? get : nil) { return .found(route, parameters: parameters) }
        var allowed: [HTTPMethod] = []
        for route in routes where route.literalCount == mostLiteral && Self.bind(route.segments, to: parts) != nil {
            allowed.append(route.method)
            if route.method == .get { allowed.append(.head) }
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed: allowed)
    }

    private static func split(_ path: String) -> [Substring] {
        path.split(separator: "/", omittingEmptySubsequences: true)
    }

    private static func bind(_ segments: [Segment], to parts: [Substring]) -> [String: String]? {
        guard segments.count == parts.count else { return nil }
        var parameters: [String: String] = [:]
        for (segment, part) in zip(segments, parts) {
            switch segment {
            case .literal(let literal): guard part == literal else { return nil }
            case .parameter(let name):
                guard let decoded = percentDecode(part), !decoded.isEmpty else { return nil }
                parameters[name] = decoded
            }
        }
        return parameters
    }
}

/// `%XX`-decodes a path segment; `nil` if an escape is malformed or the result is not UTF-8.
func percentDecode(_ text: Substring) -> String? {
    var bytes: [UInt8] = []
    var iterator = text.utf8.makeIterator()
    while let byte = iterator.next() {
        guard byte == UInt8(ascii: "%") else { bytes.append(byte); continue }
        guard let high = iterator.next()?.hexValue, let low = iterator.next()?.hexValue else { return nil }
        bytes.append(high << 4 | low)
    }
    return String(validating: bytes, as: UTF8.self)
}
