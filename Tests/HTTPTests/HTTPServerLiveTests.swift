import Foundation
import Testing
@testable import HTTP
import TestSupport

/// The server over real loopback sockets, with a raw client. Serialized: the client's reads block a thread,
/// and on two cores parallel blocking tests would starve the timing-sensitive ones.
@Suite(.serialized) struct HTTPServerLiveTests {
    @Test(arguments: malformedRequests)
    func malformedRequestGetsItsStatusAndTheConnectionIsClosed(_ testCase: MalformedRequest) async throws {
        let server = try TestServer.start()
        let client = try server.client()
        client.send(testCase.bytes)
        let response = try client.readResponse()
        #expect(response.status == testCase.status, "\(testCase.name)")
        #expect(response.header("Connection") == "close")
        #expect(response.header("Content-Type") == "application/json")
        let body = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: [String: String]]
        #expect(body?["error"]?["code"]?.isEmpty == false)
        #expect(client.isClosedByServer(), "\(testCase.name): connection left open")
        client.close()
        await server.stop()
    }

    @Test func keepAliveServesSeveralRequestsOnOneConnection() async throws {
        let server = try TestServer.start()
        let client = try server.client()
        for _ in 0..<3 {
            client.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(String(decoding: response.body, as: UTF8.self) == "hello")
            #expect(response.header("Connection") == nil)
        }
        #expect(client.staysOpen(for: 0.2))
        await server.stop()
    }

    @Test func http10ClosesByDefaultAndKeepsAliveWhenAsked() async throws {
        let server = try TestServer.start()
        let client = try server.client()
        client.send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        #expect(try client.readResponse().header("Connection") == "keep-alive")
        client.send("GET /hello HTTP/1.0\r\n\r\n")
        #expect(try client.readResponse().header("Connection") == "close")
        #expect(client.isClosedByServer())
        await server.stop()
    }

    @Test func pipelinedResponsesComeInRequestOrder() async throws {
        let server = try TestServer.start()
        let client = try server.client()
        // The slow request first: its response must still come first.
        client.send("GET /slow?ms=200 HTTP/1.1\r\nHost: x\r\nX-Request-Id: r1\r\n\r\n"
                    + "POST /echo HTTP/1.1\r\nHost: x\r\nX-Request-Id: r2\r\nContent-Length: 4\r\n\r\nping"
                    + "GET /items/42 HTTP/1.1\r\nHost: x\r\nX-Request-Id: r3\r\n\r\n"
                    + "GET /hello HTTP/1.1\r\nHost: x\r\nX-Request-Id: r4\r\nConnection: close\r\n\r\n")
        let responses = try (0..<4).map { _ in try client.readResponse() }
        #expect(responses.map { $0.header("X-Request-Id") } == ["r1", "r2", "r3", "r4"])
        #expect(responses.map { String(decoding: $0.body, as: UTF8.self) } == ["slow done", "ping", "item 42", "hello"])
        #expect(client.isClosedByServer())
        await server.stop()
    }

    @Test func chunkedRequestBody() async throws {
        let server = try TestServer.start()
        let client = try server.client()
        client.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nomni\r\n5\r\nembed\r\n0\r\nTrailer: t\r\n\r\n")
        let response = try client.readResponse()
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self) == "omniembed")
        await server.stop()
    }

    @Test func expectContinue() async throws {
        let server = try TestServer.start()
        let client = try server.client()
        client.send("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        let interim = try client.readResponse(bodyless: true)
        #expect(interim.status == 100)
        client.send("hello")
        let response = try client.readResponse()
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self) == "hello")

        client.send("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 999999999\r\n\r\n")
        #expect(try client.readResponse().status == 413)
        #expect(client.isClosedByServer())
        await server.stop()
    }

    @Test func headHasHeadersButNoBody() async throws {
        let server = try TestServer.start()
        let client = try server.client()
        client.send("HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        let head = try client.readResponse(bodyless: true)
        #expect(head.status == 200)
        #expect(head.header("Content-Length") == "5")
        // The next response follows immediately: no body bytes were sent for HEAD.
        client.send("GET /items/7 HTTP/1.1\r\nHost: x\r\n\r\n")
        let next = try client.readResponse()
        #expect(String(decoding: next.body, as: UTF8.self) == "item 7")
        await server.stop()
    }

    @Test func framingHeaders() async throws {
        let server = try TestServer.start()
        let client = try server.client()
        client.send("GET /empty HTTP/1.1\r\nHost: x\r\n\r\n")
        let empty = try client.readResponse()
        #expect(empty.status == 204)
        #expect(empty.header("Content-Length") == nil)
        #expect(empty.header("Transfer-Encoding") == nil)
        client.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        let hello = try client.readResponse()
        #expect(hello.header("Server") == "omniembed")
        #expect(hello.header("Date")?.hasSuffix(" GMT") == true)
        #expect(hello.header("Transfer-Encoding") == nil)
        #expect(hello.headers.filter { $0.0.lowercased() == "content-length" }.count == 1)
        await server.stop()
    }

    @Test func routingErrorsAndRequestIDs() async throws {
        let server = try TestServer.start()
        let client = try server.client()
        client.send("GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
        let missing = try client.readResponse()
        #expect(missing.status == 404)
        #expect(missing.header("X-Request-Id")?.isEmpty == false)
        client.send("DELETE /hello HTTP/1.1\r\nHost: x\r\nX-Request-Id: trace-123\r\n\r\n")
        let wrongMethod = try client.readResponse()
        #expect(wrongMethod.status == 405)
        #expect(wrongMethod.header("Allow") == "GET, HEAD")
        #expect(wrongMethod.header("X-Request-Id") == "trace-123")
        client.send("GET /fail HTTP/1.1\r\nHost: x\r\n\r\n")
        let failed = try client.readResponse()
        #expect(failed.status == 422)
        #expect(String(decoding: failed.body, as: UTF8.self)
                == #"{"error":{"code":"bad_item","message":"item 3 has no modality"}}"#)
        client.send("GET /crash HTTP/1.1\r\nHost: x\r\nX-Request-Id: bad id with spaces\r\n\r\n")
        let crashed = try client.readResponse()
        #expect(crashed.status == 500)
        #expect(crashed.header("X-Request-Id") != "bad id with spaces")
        // The connection survives handler errors.
        client.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try client.readResponse().status == 200)
        await server.stop()
    }

    @Test func gzipWhenAccepted() async throws {
        let server = try TestServer.start()
        let client = try server.client()
        client.send("GET /big HTTP/1.1\r\nHost: x\r\nAccept-Encoding: br, gzip;q=0.8\r\n\r\n")
        let compressed = try client.readResponse()
        #expect(compressed.header("Content-Encoding") == "gzip")
        #expect(compressed.header("Vary") == "Accept-Encoding")
        #expect(compressed.body.count < 200)
        #expect(Gzip.decompress(compressed.body) == Array(String(repeating: "embedding ", count: 1000).utf8))
        client.send("GET /big HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip;q=0\r\n\r\n")
        let refused = try client.readResponse()
        #expect(refused.header("Content-Encoding") == nil)
        #expect(refused.body.count == 10_000)
        client.send("GET /hello HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
        #expect(try client.readResponse().header("Content-Encoding") == nil)  // too small to pay
        await server.stop()
    }

    @Test func maxRequestsPerConnection() async throws {
        let server = try TestServer.start { $0.maxRequestsPerConnection = 2 }
        let client = try server.client()
        client.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try client.readResponse().header("Connection") == nil)
        client.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try client.readResponse().header("Connection") == "close")
        #expect(client.isClosedByServer())
        await server.stop()
    }

    @Test func connectionCap() async throws {
        let server = try TestServer.start { $0.maxConnections = 2 }
        let first = try server.client(), second = try server.client()
        for client in [first, second] {
            client.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try client.readResponse().status == 200)
        }
        let third = try server.client()
        let refused = try third.readResponse()
        #expect(refused.status == 503)
        #expect(refused.header("Retry-After") == "1")
        #expect(third.isClosedByServer())
        // Capacity returns when a connection closes.
        first.send("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        _ = try first.readResponse()
        #expect(first.isClosedByServer())
        var admitted = false
        for _ in 0..<100 where !admitted {
            let fourth = try server.client()
            fourth.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            admitted = (try? fourth.readResponse().status) == 200
            if !admitted { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(admitted)
        await server.stop()
    }

    @Test func slowlorisIsCutOffAtTheHeadDeadline() async throws {
        let server = try TestServer.start { $0.timeouts.requestHead = .milliseconds(800) }
        let client = try server.client()
        let start = Date()
        var gotResponse: RawClient.Response?
        // Drip one byte every 50 ms: the head would take far longer than the deadline.
        for byte in Array("GET /hello HTTP/1.1\r\nHost: x\r\nX-Padding: ".utf8) + [UInt8](repeating: 0x61, count: 600) {
            client.send([byte])
            if let response = try? client.readResponse(timeout: 0.05) {
                gotResponse = response
                break
            }
        }
        let elapsed = Date().timeIntervalSince(start)
        #expect(gotResponse?.status == 408)
        #expect(elapsed < 10, "cut off after \(elapsed) s")  // the drip alone takes 30 s
        #expect(client.isClosedByServer())
        await server.stop()
    }

    @Test func slowBodyIsCutOffAtTheMinimumRate() async throws {
        let server = try TestServer.start {
            $0.timeouts.bodyGrace = .milliseconds(300)
            $0.timeouts.minBodyBytesPerSecond = 1000
        }
        let client = try server.client()
        client.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        var response: RawClient.Response?
        for _ in 0..<100 where response == nil {
            client.send("x")
            response = try? client.readResponse(timeout: 0.05)
        }
        #expect(response?.status == 408)
        #expect(client.isClosedByServer())
        await server.stop()
    }

    @Test func idleKeepAliveConnectionIsClosed() async throws {
        let server = try TestServer.start { $0.timeouts.keepAliveIdle = .milliseconds(300) }
        let client = try server.client()
        client.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try client.readResponse().status == 200)
        #expect(client.isClosedByServer(within: 3))
        #expect(client.unread.isEmpty)  // closed without a response
        await server.stop()
    }

    @Test func largeBodyRoundTrip() async throws {
        let server = try TestServer.start()
        let client = try server.client()
        let body = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        client.send(Array("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body)
        let response = try client.readResponse(timeout: 20)
        #expect(response.body == body)
        await server.stop()
    }

    @Test func pipelinedRequestAfterAResponseTooLargeForTheSocketBuffer() async throws {
        let server = try TestServer.start()
        let client = try server.client()
        // 12 MB echoed back cannot fit the socket buffers while the client is not reading: the server's write
        // blocks, finishes when the client reads, and must then go on to the pipelined request.
        let body = [UInt8](repeating: 0x62, count: 12_000_000)
        client.send(Array("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body
                    + Array("GET /items/9 HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        try await Task.sleep(for: .milliseconds(200))
        #expect(try client.readResponse(timeout: 20).body.count == body.count)
        #expect(String(decoding: try client.readResponse().body, as: UTF8.self) == "item 9")
        await server.stop()
    }

    /// RFC 9112 §9.6: a client that half-closes after its requests can still read the answers, so end of input
    /// does not cancel the handler in flight (`/slow` answers "cancelled" when it is).
    @Test func halfClosedClientStillGetsItsResponses() async throws {
        let server = try TestServer.start()
        let client = try server.client()
        client.send("GET /slow?ms=300 HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        try await server.waitForSlowRequests(1)
        client.shutdownWrite()
        #expect(String(decoding: try client.readResponse().body, as: UTF8.self) == "slow done")
        let last = try client.readResponse()
        #expect(String(decoding: last.body, as: UTF8.self) == "hello")
        #expect(client.isClosedByServer())  // input has ended: nothing more will come
        await server.stop()
    }

    /// A reset is a client that will read nothing: its handler is cancelled.
    @Test func aResetCancelsTheRequestInFlight() async throws {
        let server = try TestServer.start()
        let gone = try server.client()
        gone.send("GET /slow?ms=5000 HTTP/1.1\r\nHost: x\r\n\r\n")
        try await server.waitForSlowRequests(1)
        gone.reset()
        for _ in 0..<1000 where server.slowCancelled.value.load(ordering: .relaxed) == 0 {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(server.slowCancelled.value.load(ordering: .relaxed) == 1)
        await server.stop()
    }

    /// A TLS ClientHello on the plain port is refused at once with a 400 that says so, not after the head timeout.
    @Test func aTLSHandshakeOnThePlainPortIsA400AtOnce() async throws {
        let server = try TestServer.start { $0.timeouts.requestHead = .seconds(30) }
        let client = try server.client()
        // The first bytes of a TLS 1.2 ClientHello record: handshake (0x16), version 3.1, a length.
        client.send([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03])
        let response = try client.readResponse(timeout: 5)
        #expect(response.status == 400)
        #expect(String(decoding: response.body, as: UTF8.self).contains("plain HTTP"))
        #expect(client.isClosedByServer())
        await server.stop()
    }

    /// At the connection cap the 503 reaches a client that had already sent its request: the refused socket is
    /// closed after a lingering close, not with a reset that would destroy the answer.
    @Test func theConnectionCapAnswer503ReachesAClientThatSentARequest() async throws {
        let server = try TestServer.start { $0.maxConnections = 1 }
        let holder = try server.client()
        holder.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try holder.readResponse().status == 200)
        for _ in 0..<5 {
            let refused = try server.client()
            let body = String(repeating: "x", count: 60_000)
            refused.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            let response = try refused.readResponse()
            #expect(response.status == 503)
            #expect(response.header("Retry-After") == "1")
        }
        await server.stop()
    }

    @Test func clientResetDuringASlowRequestDoesNotStallOtherConnections() async throws {
        let server = try TestServer.start { $0.eventLoops = 1 }  // both clients on the same loop
        let gone = try server.client()
        gone.send("GET /slow?ms=30000 HTTP/1.1\r\nHost: x\r\n\r\n")
        try await server.waitForSlowRequests(1)
        gone.reset()
        let other = try server.client()
        other.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        // Long before the slow handler ends, with room for a loaded machine.
        #expect(try other.readResponse(timeout: 10).status == 200)
        await server.stop()
    }

    @Test func gracefulDrainFinishesInFlightRequestsAndRefusesNewConnections() async throws {
        let server = try TestServer.start()
        let busy = try server.client()
        let idle = try server.client()
        idle.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        _ = try idle.readResponse()
        busy.send("GET /slow?ms=5000 HTTP/1.1\r\nHost: x\r\n\r\n")
        try await server.waitForSlowRequests(1)

        // Not on the cooperative pool: this test's blocking reads may be holding its threads.
        let shutdown = Task(executorPreference: DispatchTaskExecutor(label: "test.shutdown")) {
            await server.server.shutdown(gracePeriod: .seconds(30))
        }
        #expect(idle.isClosedByServer(within: 4))  // before the busy request ends
        let response = try busy.readResponse()
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self) == "slow done")
        #expect(response.header("Connection") == "close")
        #expect(busy.isClosedByServer())
        await shutdown.value
        #expect(throws: RawClient.Failure.self) { try RawClient(port: server.port) }
    }

    @Test func drainGivesUpAtTheGracePeriod() async throws {
        let server = try TestServer.start()
        let busy = try server.client()
        busy.send("GET /slow?ms=60000 HTTP/1.1\r\nHost: x\r\n\r\n")
        try await server.waitForSlowRequests(1)
        let start = Date()
        await server.server.shutdown(gracePeriod: .milliseconds(300))
        // Far below the request's 60 s, with room for a loaded machine (sanitizers, parallel suites).
        #expect(Date().timeIntervalSince(start) < 30)
        #expect(busy.isClosedByServer(within: 10))
        #expect(server.server.connectionCount == 0)
    }
}
