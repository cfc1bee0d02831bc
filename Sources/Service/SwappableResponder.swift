import HTTP
import Locking

/// A responder that can be replaced while the server runs: the service answers probes from the moment its port
/// is bound, and the whole API once the towers have loaded.
final class SwappableResponder: HTTPResponder {
    private let current: Locked<RouterResponder>

    init(_ responder: RouterResponder) {
        current = Locked(responder)
    }

    func replace(_ responder: RouterResponder) {
        current.withLock { $0 = responder }
    }

    func respond(to request: HTTPRequest, connection: HTTPConnectionInfo) async -> HTTPResponse {
        await current.withLock { $0 }.respond(to: request, connection: connection)
    }

    func respondImmediately(to request: HTTPRequest, connection: HTTPConnectionInfo) -> HTTPResponse? {
        current.withLock { $0 }.respondImmediately(to: request, connection: connection)
    }
}
