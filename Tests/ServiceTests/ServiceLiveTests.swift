import Foundation
import Logging
import Testing
@testable import HTTP
@testable import Service
import TestSupport

/// The assembled service over loopback, through a raw-socket client.
@Suite(.serialized) struct ServiceLiveTests {
    func makeService() throws -> (OmniEmbedService, Int) {
        var configuration = ServiceConfiguration()
        configuration.http.port = 0
        configuration.shutdownGracePeriod = .seconds(3)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let service = try OmniEmbedService(configuration: configuration, logger: logger)
        return (service, try service.start())
    }

    func get(_ path: String, port: Int, headers: String = "") throws -> (status: Int, head: String, body: String) {
        let client = try RawClient(port: port)
        client.send("GET \(path) HTTP/1.1\r\nHost: localhost\r\n\(headers)\r\n")
        let response = try client.readResponse()
        return (response.status, response.rawHead, String(decoding: response.body, as: UTF8.self))
    }

    @Test func healthAndReadiness() async throws {
        let (service, port) = try makeService()
        #expect(try get("/healthz", port: port).status == 200)
        let ready = try get("/readyz", port: port)
        #expect(ready.status == 200)
        #expect(ready.body == #"{"status":"ready"}"#)
        await service.shutdown()
    }

    @Test func readinessIsNotReadyBeforeStartAndWhileDraining() async throws {
        let (service, port) = try makeService()
        service.readiness.markDraining()
        let draining = try get("/readyz", port: port)
        #expect(draining.status == 503)
        #expect(draining.body.contains(#""code":"draining""#))
        #expect(try get("/healthz", port: port).status == 200)  // alive all the same
        await service.shutdown()
        #expect(Readiness().state == .starting)
    }

    @Test func metricsExposeRequestsConnectionsBytesAndRejections() async throws {
        let (service, port) = try makeService()
        _ = try get("/healthz", port: port)
        _ = try get("/nowhere", port: port)
        let bad = try RawClient(port: port)
        bad.send("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(try bad.readResponse().status == 400)
        let metrics = try get("/metrics", port: port)
        #expect(metrics.status == 200)
        #expect(metrics.head.contains("Content-Type: text/plain; version=0.0.4"))
        let text = metrics.body
        #expect(text.contains(#"http_request_duration_seconds_count{route="/healthz",method="GET",status="200"} 1"#))
        #expect(text.contains(#"http_request_duration_seconds_count{route="unmatched",method="GET",status="404"} 1"#))
        #expect(text.contains(#"http_rejected_requests_total{reason="bad_request"} 1"#))
        #expect(text.contains("# TYPE http_open_connections gauge"))
        #expect(text.contains("# TYPE http_requests_in_flight gauge"))
        #expect(text.contains("http_connections_total "))
        #expect(text.contains("http_received_bytes_total "))
        #expect(text.contains("http_sent_bytes_total "))
        await service.shutdown()
    }

    @Test func metricsAreGzippedWhenAccepted() async throws {
        let (service, port) = try makeService()
        _ = try get("/healthz", port: port)
        let metrics = try get("/metrics", port: port, headers: "Accept-Encoding: gzip\r\n")
        #expect(metrics.head.contains("Content-Encoding: gzip"))
        await service.shutdown()
    }
}
