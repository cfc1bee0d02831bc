import Testing
@testable import HTTP

/// A clock the test moves by hand.
struct ManualClock {
    var now = MonotonicInstant(nanoseconds: 1_000_000_000)
    mutating func advance(_ duration: Duration) { now = now + duration }
}

/// Feeds `pieces` to a fresh state machine, answering every dispatched request at once, and logs what it decided.
func transcript(_ pieces: [[UInt8]], timeouts: HTTPConnectionTimeouts = HTTPConnectionTimeouts(),
                maxRequests: Int = 100) -> [String] {
    let clock = ManualClock()
    var machine = HTTPConnectionStateMachine(timeouts: timeouts, maxRequests: maxRequests, now: clock.now)
    var log: [String] = []
    func pump() {
        while true {
            switch machine.nextAction(now: clock.now) {
            case .wait: return
            case .dispatch(let request):
                let keepAlive = machine.responseReady(for: request.head, now: clock.now)
                log.append("\(request.method) \(request.path) body=\(request.body.count) \(keepAlive ? "keep-alive" : "close")")
                machine.responseWritten(now: clock.now)
            case .sendContinue: log.append("100-continue")
            case .reject(let error): log.append("reject \(error.status.code)"); return
            case .close: log.append("close"); return
            }
        }
    }
    for piece in pieces {
        machine.bytesReceived(piece, now: clock.now)
        pump()
    }
    return log
}

/// The transcript of `text` fed whole, byte by byte and split at every offset; they must agree
/// (except for `100 Continue`, which is owed only when the body has not already arrived).
func transcriptEveryWay(_ text: String, maxRequests: Int = 100, sourceLocation: SourceLocation = #_sourceLocation) -> [String] {
    let input = Array(text.utf8)
    let essential = { (log: [String]) in log.filter { $0 != "100-continue" } }
    let whole = transcript([input], maxRequests: maxRequests)
    #expect(essential(transcript(input.map { [$0] }, maxRequests: maxRequests)) == essential(whole),
            "byte by byte", sourceLocation: sourceLocation)
    for offset in 0...input.count {
        let split = transcript([Array(input[..<offset]), Array(input[offset...])], maxRequests: maxRequests)
        if essential(split) != essential(whole) {
            Issue.record("split at \(offset): \(split) vs \(whole)", sourceLocation: sourceLocation)
            break
        }
    }
    return whole
}

@Suite struct HTTPConnectionStateMachineTests {
    let get = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"

    @Test func servesKeepAliveRequestsInOrder() {
        let log = transcriptEveryWay(get + "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz" + "GET /c HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(log == ["GET /a body=0 keep-alive", "POST /b body=3 keep-alive", "GET /c body=0 keep-alive"])
    }

    @Test func connectionCloseEndsTheConnection() {
        let log = transcriptEveryWay("GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n" + get)
        #expect(log == ["GET /a body=0 close", "close"])
    }

    @Test func http10ClosesUnlessKeepAlive() {
        #expect(transcriptEveryWay("GET / HTTP/1.0\r\n\r\n") == ["GET / body=0 close", "close"])
        #expect(transcriptEveryWay("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") == ["GET / body=0 keep-alive"])
    }

    @Test func maxRequestsPerConnection() {
        #expect(transcriptEveryWay(get + get + get, maxRequests: 2) == ["GET /a body=0 keep-alive", "GET /a body=0 close", "close"])
    }

    @Test func malformedRequestAfterGoodOneIsRejectedAfterIt() {
        let log = transcriptEveryWay(get + "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(log == ["GET /a body=0 keep-alive", "reject 400"])
    }

    @Test(arguments: malformedRequests)
    func malformedRequestIsRejected(_ testCase: MalformedRequest) {
        let log = transcript([testCase.bytes])
        #expect(log.last == "reject \(testCase.status)")
    }

    @Test func expectContinueIsAnsweredBeforeTheBody() {
        let head = "POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"
        #expect(transcript([Array(head.utf8), Array("data".utf8)]) == ["100-continue", "POST /e body=4 keep-alive"])
        // The body already came with the head: no interim response.
        #expect(transcript([Array((head + "data").utf8)]) == ["POST /e body=4 keep-alive"])
        // Too large: refused at once, never invited.
        let large = "POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 99999999999\r\n\r\n"
        #expect(transcript([Array(large.utf8)]) == ["reject 413"])
    }

    @Test func readsAheadOnlyOneRequestWhileBusy() {
        var clock = ManualClock()
        var machine = HTTPConnectionStateMachine(now: clock.now)
        machine.bytesReceived(Array((get + get + get).utf8), now: clock.now)
        guard case .dispatch = machine.nextAction(now: clock.now) else { Issue.record("first request"); return }
        // Busy: the second request is read ahead, then input pauses.
        #expect(machine.nextAction(now: clock.now) == .wait)
        #expect(!machine.wantsInput)
        #expect(machine.nextDeadline == nil)
        clock.advance(.seconds(3600))  // a slow handler is not the client's fault
        #expect(machine.nextAction(now: clock.now) == .wait)
        let keepAlive = machine.responseReady(for: HTTPRequestHead(method: .get, target: "/a", version: .http1_1,
                                                                   headers: HTTPHeaders([("Host", "h")])), now: clock.now)
        #expect(keepAlive)
        machine.responseWritten(now: clock.now)
        guard case .dispatch = machine.nextAction(now: clock.now) else { Issue.record("second request"); return }
        #expect(machine.nextAction(now: clock.now) == .wait)
        #expect(!machine.wantsInput)
    }

    @Test func freshConnectionThatSendsNothingIsClosedAtTheHeadDeadline() {
        var clock = ManualClock()
        var machine = HTTPConnectionStateMachine(now: clock.now)
        #expect(machine.nextDeadline == clock.now + .seconds(10))
        clock.advance(.milliseconds(9999))
        #expect(machine.nextAction(now: clock.now) == .wait)
        clock.advance(.milliseconds(1))
        #expect(machine.nextAction(now: clock.now) == .close)
    }

    @Test func slowlorisHeadIsCutOffAtAnAbsoluteDeadline() {
        var clock = ManualClock()
        var machine = HTTPConnectionStateMachine(now: clock.now)
        // One byte every second keeps arriving, but the head deadline does not move.
        for byte in "GET / HTTP/1.1\r\nHost: h\r\nX-Slow: ".utf8.prefix(9) {
            machine.bytesReceived([byte], now: clock.now)
            #expect(machine.nextAction(now: clock.now) == .wait)
            clock.advance(.seconds(1))
        }
        clock.advance(.seconds(1))
        #expect(machine.nextAction(now: clock.now) == .reject(.timeout))
        #expect(machine.isClosed)
    }

    @Test func keepAliveConnectionIdlesOutWithoutAResponse() {
        var clock = ManualClock()
        var timeouts = HTTPConnectionTimeouts()
        timeouts.keepAliveIdle = .seconds(5)
        var machine = HTTPConnectionStateMachine(timeouts: timeouts, now: clock.now)
        machine.bytesReceived(Array(get.utf8), now: clock.now)
        guard case .dispatch(let request) = machine.nextAction(now: clock.now) else { Issue.record("dispatch"); return }
        _ = machine.responseReady(for: request.head, now: clock.now)
        clock.advance(.seconds(20))  // a slow handler
        machine.responseWritten(now: clock.now)
        #expect(machine.nextDeadline == clock.now + .seconds(5))
        clock.advance(.seconds(4))
        #expect(machine.nextAction(now: clock.now) == .wait)
        // The next head starts the head deadline from its first byte.
        machine.bytesReceived(Array("GET".utf8), now: clock.now)
        #expect(machine.nextDeadline == clock.now + .seconds(10))
        clock.advance(.seconds(10))
        #expect(machine.nextAction(now: clock.now) == .reject(.timeout))
    }

    @Test func bodyMustArriveAtTheMinimumRate() {
        var clock = ManualClock()
        var timeouts = HTTPConnectionTimeouts()
        timeouts.bodyGrace = .seconds(2)
        timeouts.minBodyBytesPerSecond = 100
        var machine = HTTPConnectionStateMachine(timeouts: timeouts, now: clock.now)
        machine.bytesReceived(Array("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10000\r\n\r\n".utf8), now: clock.now)
        #expect(machine.nextAction(now: clock.now) == .wait)
        // 200 bytes buy 2 s beyond the grace period.
        clock.advance(.seconds(1))
        machine.bytesReceived([UInt8](repeating: 0x61, count: 200), now: clock.now)
        #expect(machine.nextAction(now: clock.now) == .wait)
        #expect(machine.nextDeadline == MonotonicInstant(nanoseconds: 1_000_000_000) + .seconds(4))
        clock.advance(.milliseconds(2999))
        #expect(machine.nextAction(now: clock.now) == .wait)
        clock.advance(.milliseconds(1))
        #expect(machine.nextAction(now: clock.now) == .reject(.timeout))
    }

    @Test func stalledResponseWriteIsAbandoned() {
        var clock = ManualClock()
        var machine = HTTPConnectionStateMachine(now: clock.now)
        machine.bytesReceived(Array(get.utf8), now: clock.now)
        guard case .dispatch(let request) = machine.nextAction(now: clock.now) else { Issue.record("dispatch"); return }
        _ = machine.responseReady(for: request.head, now: clock.now)
        clock.advance(.seconds(20))
        machine.writeProgressed(now: clock.now)
        clock.advance(.seconds(29))
        #expect(machine.nextAction(now: clock.now) == .wait)
        clock.advance(.seconds(1))
        #expect(machine.nextAction(now: clock.now) == .close)
    }

    @Test func drainClosesIdleConnectionsAndEndsBusyOnesAfterTheirResponse() {
        let clock = ManualClock()
        var idle = HTTPConnectionStateMachine(now: clock.now)
        idle.beginDrain()
        #expect(idle.nextAction(now: clock.now) == .close)

        var busy = HTTPConnectionStateMachine(now: clock.now)
        busy.bytesReceived(Array(get.utf8), now: clock.now)
        guard case .dispatch(let request) = busy.nextAction(now: clock.now) else { Issue.record("dispatch"); return }
        busy.beginDrain()
        #expect(busy.nextAction(now: clock.now) == .wait)
        let keepAlive = busy.responseReady(for: request.head, now: clock.now)
        #expect(!keepAlive)
        busy.responseWritten(now: clock.now)
        #expect(busy.nextAction(now: clock.now) == .close)
    }

    @Test func endOfInputFinishesCompleteRequestsFirst() {
        let clock = ManualClock()
        var machine = HTTPConnectionStateMachine(now: clock.now)
        machine.bytesReceived(Array((get + "GET /partial HT").utf8), now: clock.now)
        machine.receivedEndOfInput()
        guard case .dispatch(let request) = machine.nextAction(now: clock.now) else { Issue.record("dispatch"); return }
        let keepAlive = machine.responseReady(for: request.head, now: clock.now)
        #expect(!keepAlive)
        machine.responseWritten(now: clock.now)
        #expect(machine.nextAction(now: clock.now) == .close)
    }
}
