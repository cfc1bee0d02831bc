import Foundation
import Logging
import Testing
@testable import HTTP
@testable import Service

/// The assembled service over loopback, through Foundation-free raw HTTP (no client library needed).
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
        let socket = try LineClient(port: port)
        return try socket.request("GET \(path) HTTP/1.1\r\nHost: localhost\r\n\(headers)Connection: close\r\n\r\n")
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
        let bad = try LineClient(port: port)
        _ = try? bad.request("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
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

/// A minimal blocking client: one request, read to EOF (the request says `Connection: close`).
struct LineClient {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { throw POSIXError(.ECONNREFUSED) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    func request(_ text: String) throws -> (status: Int, head: String, body: String) {
        defer { close(fd) }
        _ = Array(text.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { break }
            received.append(contentsOf: chunk[0..<n])
        }
        let text = String(decoding: received, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { throw POSIXError(.EPROTO) }
        let head = String(text[..<split.lowerBound])
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
        return (status, head, String(text[split.upperBound...]))
    }
}
