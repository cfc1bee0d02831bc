/// What the server knows of the connection a request came on.
public struct HTTPConnectionInfo: Sendable {
    /// `host:port` of the peer.
    public var remoteAddress: String

    public init(remoteAddress: String) {
        self.remoteAddress = remoteAddress
    }
}

/// Turns requests into responses. The server calls it once per request, in a task that is cancelled
/// if the client disconnects before the response is written.
public protocol HTTPResponder: Sendable {
    func respond(to request: HTTPRequest, connection: HTTPConnectionInfo) async -> HTTPResponse

    /// The response, if it can be made at once without waiting (a probe, a routing error); `nil` sends the
    /// request to `respond`. Runs on the connection's thread, saving two thread hops: it must not block.
    func respondImmediately(to request: HTTPRequest, connection: HTTPConnectionInfo) -> HTTPResponse?
}

extension HTTPResponder {
    public func respondImmediately(to request: HTTPRequest, connection: HTTPConnectionInfo) -> HTTPResponse? { nil }
}
