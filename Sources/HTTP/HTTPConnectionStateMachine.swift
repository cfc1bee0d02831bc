/// Deadlines of one connection.
public struct HTTPConnectionTimeouts: Sendable, Equatable {
    /// A request head must be complete this long after it started (for a new connection: after accept).
    /// Absolute, so a client dripping one byte at a time cannot hold the connection (slowloris).
    public var requestHead: Duration = .seconds(10)
    /// How long an idle keep-alive connection waits for its next request.
    public var keepAliveIdle: Duration = .seconds(60)
    /// The body must arrive at `minBodyBytesPerSecond` on average once this grace period has passed.
    public var bodyGrace: Duration = .seconds(5)
    public var minBodyBytesPerSecond: Int = 1024
    /// A response that makes no write progress for this long is abandoned.
    public var write: Duration = .seconds(30)

    public init() {}
}

/// The life of one HTTP/1.1 connection as a value type: events go in (bytes, EOF, a response written,
/// drain), and `nextAction(now:)` says what to do next. It knows no sockets and reads no clock.
///
/// Requests are served one at a time in arrival order; while one is in flight at most one more is read
/// ahead (then reading pauses), so a pipelining client cannot make the server buffer without bound.
public struct HTTPConnectionStateMachine: Sendable {
    public enum Action: Equatable, Sendable {
        /// Hand the request to the responder; the connection stays busy until `responseWritten`.
        case dispatch(HTTPRequest)
        /// Send `100 Continue`: the client waits for it before sending the body.
        case sendContinue
        /// Send the error's status with `Connection: close`, then close.
        case reject(HTTPParseError)
        /// Close without a response (idle timeout, end of input, drain, a stalled write).
        case close
        /// Nothing to do until more input, a written response or the next deadline.
        case wait
    }

    private enum ReadAhead: Sendable {
        case request(HTTPRequest)
        case error(HTTPParseError)
    }

    public let timeouts: HTTPConnectionTimeouts
    public let maxRequests: Int
    private var decoder: HTTPRequestDecoder

    public private(set) var requestsDispatched = 0
    private var inFlight = false
    private var readAhead: ReadAhead?
    /// Head of the request whose body is being read.
    private var currentHead: HTTPRequestHead?
    private var continueSent = false
    private var closeAfterResponse = false
    private var inputClosed = false
    private var draining = false
    private var closed = false

    /// When the connection became idle (accepted, or its last response written).
    private var idleSince: MonotonicInstant
    private var idleIsKeepAlive = false
    private var headStarted: MonotonicInstant?
    private var bodyStarted: MonotonicInstant?
    private var bodyBytesAtStart = 0
    private var lastWriteProgress: MonotonicInstant?

    public init(limits: HTTPDecoderLimits = HTTPDecoderLimits(), timeouts: HTTPConnectionTimeouts = HTTPConnectionTimeouts(),
                maxRequests: Int = 10_000, now: MonotonicInstant) {
        self.decoder = HTTPRequestDecoder(limits: limits)
        self.timeouts = timeouts
        self.maxRequests = maxRequests
        self.idleSince = now
    }

    // MARK: Events

    public mutating func bytesReceived<Bytes: Collection>(_ bytes: Bytes, now: MonotonicInstant) where Bytes.Element == UInt8 {
        guard !bytes.isEmpty, !closed else { return }
        if !decoder.hasPartialRequest && currentHead == nil && headStarted == nil {
            // A new connection's head deadline runs from accept; a keep-alive one's from its first byte.
            headStarted = idleIsKeepAlive ? now : idleSince
        }
        decoder.feed(bytes)
    }

    /// The peer has sent FIN (or the read failed): finish what is complete, then close.
    public mutating func receivedEndOfInput() {
        inputClosed = true
    }

    /// Stop taking new requests: close when idle, and ask in-flight responses to close the connection.
    public mutating func beginDrain() {
        draining = true
    }

    /// The responder produced a response for `head`; returns whether the connection stays open after it.
    public mutating func responseReady(for head: HTTPRequestHead, responderAllowsKeepAlive: Bool = true,
                                       now: MonotonicInstant) -> Bool {
        let keepAlive = responderAllowsKeepAlive && head.clientWantsKeepAlive && !draining && !inputClosed
            && requestsDispatched < maxRequests
        closeAfterResponse = !keepAlive
        lastWriteProgress = now
        return keepAlive
    }

    /// Some bytes of the response were written.
    public mutating func writeProgressed(now: MonotonicInstant) {
        if lastWriteProgress != nil { lastWriteProgress = now }
    }

    /// The whole response was written.
    public mutating func responseWritten(now: MonotonicInstant) {
        inFlight = false
        lastWriteProgress = nil
        idleSince = now
        idleIsKeepAlive = true
        // Time spent serving the previous request does not count against the next one.
        headStarted = decoder.hasPartialRequest && currentHead == nil ? now : nil
        if currentHead != nil {
            bodyStarted = now
            bodyBytesAtStart = decoder.bodyBytesReceived
        }
    }

    // MARK: Decisions

    /// Whether the connection should read from the socket now.
    public var wantsInput: Bool {
        !closed && !inputClosed && !(inFlight && readAhead != nil)
    }

    public var isClosed: Bool { closed }

    /// Whether no request is being served or read: a draining server may close it at once.
    public var isIdle: Bool {
        !inFlight && readAhead == nil && currentHead == nil && !decoder.hasPartialRequest
    }

    /// When `nextAction` must be called again even if nothing else happens.
    public var nextDeadline: MonotonicInstant? {
        guard !closed else { return nil }
        if let lastWriteProgress { return lastWriteProgress + timeouts.write }
        return readDeadline
    }

    private var readDeadline: MonotonicInstant? {
        if inFlight || readAhead != nil { return nil }
        if currentHead != nil, let bodyStarted {
            let received = decoder.bodyBytesReceived - bodyBytesAtStart
            let allowance = Duration.seconds(Double(received) / Double(max(1, timeouts.minBodyBytesPerSecond)))
            return bodyStarted + timeouts.bodyGrace + allowance
        }
        if decoder.hasPartialRequest, let headStarted { return headStarted + timeouts.requestHead }
        return idleSince + (idleIsKeepAlive ? timeouts.keepAliveIdle : timeouts.requestHead)
    }

    public mutating func nextAction(now: MonotonicInstant) -> Action {
        guard !closed else { return .wait }
        if let lastWriteProgress, now >= lastWriteProgress + timeouts.write { return close() }

        if inFlight {
            if closeAfterResponse || readAhead != nil { return .wait }
            // Read ahead one request; its outcome (request or error) waits for the response in flight.
            do {
                while let event = try decoder.next() {
                    switch event {
                    case .head(let head): currentHead = head
                    case .request(let request):
                        currentHead = nil
                        readAhead = .request(request)
                        return .wait
                    }
                }
            } catch {
                readAhead = .error(error)
            }
            return .wait
        }

        if closeAfterResponse { return close() }

        switch readAhead {
        case .request(let request)?:
            readAhead = nil
            return dispatch(request)
        case .error(let error)?:
            readAhead = nil
            return reject(error)
        case nil:
            break
        }

        if let deadline = readDeadline, now >= deadline {
            return currentHead != nil || decoder.hasPartialRequest ? reject(.timeout) : close()
        }

        if let continueAction = continueIfOwed() { return continueAction }
        do {
            while let event = try decoder.next() {
                switch event {
                case .head(let head):
                    currentHead = head
                    bodyStarted = now
                    bodyBytesAtStart = 0
                    if let continueAction = continueIfOwed() { return continueAction }
                case .request(let request):
                    currentHead = nil
                    return dispatch(request)
                }
            }
        } catch {
            return reject(error)
        }

        // No complete request is buffered.
        if inputClosed { return close() }
        if draining && isIdle { return close() }
        return .wait
    }

    private mutating func continueIfOwed() -> Action? {
        guard let head = currentHead, head.expectsContinue, !continueSent, head.framing != .none,
              decoder.awaitingBodyStart else { return nil }
        continueSent = true
        return .sendContinue
    }

    private mutating func dispatch(_ request: HTTPRequest) -> Action {
        inFlight = true
        requestsDispatched += 1
        continueSent = false
        headStarted = nil
        bodyStarted = nil
        return .dispatch(request)
    }

    private mutating func reject(_ error: HTTPParseError) -> Action {
        closed = true
        return .reject(error)
    }

    private mutating func close() -> Action {
        closed = true
        return .close
    }
}
