/// What the server knows of the connection a request came on.
public struct HTTPConnectionInfo: Sendable {
    /// `host:port` of the peer.
    public var remoteAddress: String
}

/// Turns requests into responses. The server calls it once per request, in a task that is cancelled
/// if the client disconnects before the response is written.
public protocol HTTPResponder: Sendable {
    func respond(to request: HTTPRequest, connection: HTTPConnectionInfo) async -> HTTPResponse
}
