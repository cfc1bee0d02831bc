import HTTP

/// Calls a responder in process, as the server does once it has decoded a request: no socket, no port (the router
/// mode of Hummingbird's test framework). Route behaviour is tested through it; what is about the wire has the live
/// socket tests.
public struct InProcessClient: Sendable {
    public let responder: any HTTPResponder

    public init(_ responder: any HTTPResponder) {
        self.responder = responder
    }

    /// The response to `method target` with `body` (and `Content-Type: application/json` when there is one).
    public func execute(_ method: HTTPMethod, _ target: String, headers: [(String, String)] = [],
                        body: String? = nil) async -> HTTPResponse {
        let bytes = body.map { Array($0.utf8) } ?? []
        var fields = [("Host", "in-process")] + headers
        if body != nil {
            fields += [("Content-Type", "application/json"), ("Content-Length", String(bytes.count))]
        }
        let head = HTTPRequestHead(method: method, target: target, version: .http1_1, headers: HTTPHeaders(fields),
                                   framing: body == nil ? .none : .contentLength(bytes.count))
        let request = HTTPRequest(head: head, body: bytes)
        let connection = HTTPConnectionInfo(remoteAddress: "in-process")
        if let response = responder.respondImmediately(to: request, connection: connection) { return response }
        return await responder.respond(to: request, connection: connection)
    }
}
