/// The parsed head of a request, with its framing already resolved.
public struct HTTPRequestHead: Sendable, Equatable {
    public var method: HTTPMethod
    /// The request-target exactly as sent (`path` and `query` are derived from it once).
    public let target: String
    public var version: HTTPVersion
    public var headers: HTTPHeaders

    /// How the body is framed.
    public enum BodyFraming: Sendable, Equatable {
        case none
        case contentLength(Int)
        case chunked
    }
    public var framing: BodyFraming
    /// `Expect: 100-continue` was sent.
    public var expectsContinue: Bool

    /// The path of the target without its query, for origin-form and absolute-form targets.
    public let path: String
    /// The raw query string after `?`, if any.
    public let query: String?

    public init(method: HTTPMethod, target: String, version: HTTPVersion, headers: HTTPHeaders,
                framing: BodyFraming = .none, expectsContinue: Bool = false) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.framing = framing
        self.expectsContinue = expectsContinue
        (self.path, self.query) = Self.split(target)
    }

    /// Whether the client asked to keep the connection open: HTTP/1.1 unless `Connection: close`,
    /// HTTP/1.0 only with `Connection: keep-alive`.
    public var clientWantsKeepAlive: Bool {
        guard headers["Connection"] != nil else { return version.minor >= 1 }
        let tokens = headers.tokens("Connection")
        if tokens.contains("close") { return false }
        return version.minor >= 1 || tokens.contains("keep-alive")
    }

    private static func split(_ target: String) -> (path: String, query: String?) {
        var rest = Substring(target)
        if !rest.hasPrefix("/") {
            // absolute-form: skip "scheme://authority".
            guard let colon = rest.firstIndex(of: ":") else { return ("/", nil) }
            rest = rest[colon...].dropFirst(3)
            rest = rest.firstIndex { $0 == "/" || $0 == "?" }.map { rest[$0...] } ?? "/"
        }
        guard let mark = rest.firstIndex(of: "?") else { return (String(rest), nil) }
        let path = rest[..<mark]
        return (path.isEmpty ? "/" : String(path), String(rest[rest.index(after: mark)...]))
    }
}

/// A complete request: head and body.
public struct HTTPRequest: Sendable, Equatable {
    public var head: HTTPRequestHead
    public var body: [UInt8]

    public init(head: HTTPRequestHead, body: [UInt8] = []) {
        self.head = head
        self.body = body
    }

    public var method: HTTPMethod { head.method }
    public var headers: HTTPHeaders { head.headers }
    public var path: String { head.path }
}
