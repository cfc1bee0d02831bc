import CoreMetrics
import Logging
import Synchronization
@testable import HTTP
import TestSupport

/// An in-process server on a free loopback port with routes for exercising the connection layer.
struct TestServer {
    let server: HTTPServer
    let port: Int
    /// How many `/slow` requests have reached their handler, and how many of them were cancelled.
    let slowStarted: Counter
    let slowCancelled: Counter

    final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    /// Polls until `count` slow requests are being handled.
    func waitForSlowRequests(_ count: Int) async throws {
        while slowStarted.value.load(ordering: .relaxed) < count {
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    static func start(tls: TLSCertificates? = nil,
                      _ customize: (inout HTTPServerConfiguration) -> Void = { _ in }) throws -> TestServer {
        var configuration = HTTPServerConfiguration()
        configuration.port = 0
        configuration.lingerTimeout = .milliseconds(500)
        customize(&configuration)

        let slowStarted = Counter(), slowCancelled = Counter()
        var router = Router()
        router.get("/hello") { _, _ in .text("hello") }
        router.post("/echo") { request, _ in HTTPResponse(status: .ok, body: request.body) }
        router.get("/items/{id}") { _, context in .text("item \(context.parameters["id"]!)") }
        router.get("/big") { _, _ in .text(String(repeating: "embedding ", count: 1000)) }
        router.get("/empty") { _, _ in HTTPResponse(status: .noContent) }
        router.get("/slow") { request, _ in
            slowStarted.value.add(1, ordering: .relaxed)
            let ms = Int(request.head.query?.split(separator: "=").last ?? "300") ?? 300
            // Honours cancellation, as the service's handlers do: a cancelled request answers "cancelled".
            do {
                try await Task.sleep(for: .milliseconds(ms))
            } catch {
                slowCancelled.value.add(1, ordering: .relaxed)
                return .text("cancelled")
            }
            return .text("slow done")
        }
        router.get("/fail") { _, _ in throw HTTPError(.unprocessableContent, code: "bad_item", message: "item 3 has no modality") }
        router.get("/crash") { _, _ in
            struct Unexpected: Error {}
            throw Unexpected()
        }
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let responder = RouterResponder(router: router, logger: logger, metricsFactory: NOOPMetricsHandler.instance)
        let server = try HTTPServer(configuration: configuration, responder: responder, logger: logger,
                                    metricsFactory: NOOPMetricsHandler.instance, tls: tls)
        let port = try server.start()
        return TestServer(server: server, port: port, slowStarted: slowStarted, slowCancelled: slowCancelled)
    }

    func client() throws -> RawClient { try RawClient(port: port) }

    func stop() async { await server.shutdown(gracePeriod: .seconds(1)) }
}
