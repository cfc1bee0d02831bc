#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Logging

/// One accepted socket, driven by its event loop (an epoll set under a Dispatch source) on the loop's queue.
///
/// All mutable state is touched only on `queue`; that confinement is what the `@unchecked Sendable` claims.
/// Decisions are the state machine's; this class only moves bytes, runs the responder and keeps time.
final class HTTPConnection: @unchecked Sendable {
    let id: UInt64
    private let fd: Int32
    private let info: HTTPConnectionInfo
    private let loop: EventLoop
    var queue: DispatchQueue { loop.queue }
    private let context: HTTPServer.Context
    private var stateMachine: HTTPConnectionStateMachine

    private var readEnabled = true
    private var writeEnabled = false
    private let timer: DispatchSourceTimer
    /// When the timer is armed to fire; `nil` when disarmed (it has fired).
    private var timerDeadline: MonotonicInstant?

    private var output: [UInt8] = []
    private var outputOffset = 0
    /// Whether the bytes in `output` end with a final response (the state machine hears of it when flushed).
    private var outputEndsResponse = false
    private var closeAfterFlush = false
    private var lingerDeadline: MonotonicInstant?
    private var handler: Task<Void, Never>?
    private var finished = false
    /// The TLS session when the listener speaks TLS (`nil` again once a plain request is answered on it).
    private var tls: TLSSession?
    /// Until the TLS handshake is done: when it must be.
    private var handshakeDeadline: MonotonicInstant?
    /// Whether OpenSSL has begun the handshake (the client's first byte was not a plain request's).
    private var handshakeStarted = false

    init(id: UInt64, fd: Int32, remoteAddress: String, loop: EventLoop, context: HTTPServer.Context) {
        self.id = id
        self.fd = fd
        self.info = HTTPConnectionInfo(remoteAddress: remoteAddress)
        self.loop = loop
        self.context = context
        let config = context.configuration
        self.stateMachine = HTTPConnectionStateMachine(limits: config.limits, timeouts: config.timeouts,
                                                       maxRequests: config.maxRequestsPerConnection, now: .now())
        if let certificates = context.tls {
            tls = TLSSession(context: certificates.context, fd: fd)
            handshakeDeadline = .now() + config.timeouts.requestHead
        }
        self.timer = DispatchSource.makeTimerSource(queue: loop.queue)
        // Dispatch aborts when an inactive source is released, so it is active from the start.
        timer.schedule(deadline: .distantFuture)
        timer.activate()
    }

    func start() {
        queue.async { [self] in
            timer.setEventHandler { [unowned self] in timerFired() }
            do {
                try loop.register(fd, self)
            } catch {
                context.logger.error("cannot watch connection", metadata: ["error": "\(error)"])
                return finish()
            }
            if context.tls != nil {
                guard tls != nil else { return finish() }
                return continueHandshake()
            }
            drive()
        }
    }

    /// Graceful shutdown: finish the request in flight, close when idle.
    func beginDrain() {
        queue.async { [self] in
            guard !finished else { return }
            stateMachine.beginDrain()
            drive()
        }
    }

    /// Hard stop at the end of the drain deadline.
    func forceClose() {
        queue.async { [self] in finish() }
    }

    // MARK: Reading

    func readable() {
        if handshakeDeadline != nil { return continueHandshake() }
        if let tls, lingerDeadline == nil { return readTLS(tls) }
        let buffer = loop.readBuffer
        let count = read(fd, buffer.baseAddress, buffer.count)
        let readErrno = errno
        if count > 0 && lingerDeadline == nil {
            stateMachine.bytesReceived(UnsafeRawBufferPointer(rebasing: buffer[0..<count]), now: .now())
        }
        if count > 0 {
            context.metrics.receivedBytes.increment(by: count)
            if lingerDeadline == nil { drive() }  // else: discarding until the peer closes
        } else if count == 0 || (readErrno != EAGAIN && readErrno != EWOULDBLOCK && readErrno != EINTR) {
            if lingerDeadline != nil { return finish() }
            // End of input may be a half-close: the client can still read its answers (RFC 9112 §9.6), so work
            // in flight goes on. Only a reset (a failed read) means nobody will read them.
            if count < 0 { handler?.cancel() }
            stateMachine.receivedEndOfInput()
            drive()
        }
    }

    // MARK: TLS

    /// The handshake, as far as the socket allows; a plain HTTP request on the TLS port is answered 400 in plain.
    private func continueHandshake() {
        guard let tls, let deadline = handshakeDeadline, !finished else { return }
        guard MonotonicInstant.now() < deadline else {
            context.metrics.tlsFailed("timeout")
            return finish()
        }
        var first: UInt8 = 0
        if !handshakeStarted {
            // The client speaks first. Until its first byte is here, OpenSSL is not asked to read: it would take
            // a plain request arriving meanwhile for a broken record instead of answering it below.
            let peeked = recv(fd, &first, 1, Int32(MSG_PEEK))
            if peeked == 0 { return finish() }
            if peeked < 0 { return updateInterest() }
        }
        if !handshakeStarted, (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(first) {
            context.metrics.tlsFailed("plain_http")
            self.tls = nil
            handshakeDeadline = nil
            let error = HTTPError(.badRequest, code: "plain_http_on_tls_port",
                                  message: "the plain HTTP request was sent to the port that speaks TLS (use https)")
            closeAfterFlush = true
            return enqueue(context.encoder.encode(.error(error), method: .get, version: .http1_1, keepAlive: false,
                                                  date: context.dateCache.current()), endsResponse: false)
        }
        handshakeStarted = true
        switch tls.handshake() {
        case .done:
            handshakeDeadline = nil
            context.metrics.tlsHandshake(version: tls.version)
            setWriteInterest(false)
            // The client's first request may have come with its last handshake message and been read ahead.
            readTLS(tls)
        case .wantRead:
            setWriteInterest(false)
            updateInterest()
        case .wantWrite:
            setWriteInterest(true)
            updateInterest()
        case .closed, .failed:
            context.metrics.tlsFailed("handshake")
            context.logger.debug("tls handshake failed", metadata: ["peer": "\(info.remoteAddress)",
                                                                    "error": "\(TLSSession.lastError())"])
            finish()
        }
    }

    /// Decrypted input, as much as the session has and the state machine takes.
    private func readTLS(_ tls: TLSSession) {
        let buffer = loop.readBuffer
        reading: while !finished && stateMachine.wantsInput {
            switch tls.read(into: UnsafeMutableRawBufferPointer(buffer)) {
            case .done(let count):
                context.metrics.receivedBytes.increment(by: count)
                stateMachine.bytesReceived(UnsafeRawBufferPointer(rebasing: buffer[0..<count]), now: .now())
                // A short read took what the socket had: the level-triggered loop reports the rest, which saves
                // the read that would only say "would block".
                if count < buffer.count && !tls.hasPending { break reading }
            case .wantRead:
                break reading
            case .wantWrite:
                setWriteInterest(true)
                break reading
            case .closed:
                stateMachine.receivedEndOfInput()
                break reading
            case .failed:
                handler?.cancel()
                return finish()
            }
        }
        drive()
    }

    // MARK: The loop

    private func drive() {
        guard !finished else { return }
        let now = MonotonicInstant.now()
        if let lingerDeadline {
            if now >= lingerDeadline { finish() } else { updateInterest() }
            return
        }
        loop: while !finished {
            switch stateMachine.nextAction(now: now) {
            case .wait:
                break loop
            case .dispatch(let request):
                dispatch(request)
            case .sendContinue:
                enqueue(HTTPResponseEncoder.continueResponse, endsResponse: false)
            case .reject(let error):
                context.metrics.rejected(error.code)
                context.logger.info("request rejected", metadata: [
                    "status": "\(error.status.code)", "reason": "\(error.code)", "peer": "\(info.remoteAddress)",
                ])
                let bytes = context.encoder.encode(.error(error), method: .get, version: .http1_1,
                                                   keepAlive: false, date: context.dateCache.current())
                closeAfterFlush = true
                enqueue(bytes, endsResponse: false)
                break loop
            case .close:
                // With output still pending the write has stalled: abandon it. Otherwise close politely.
                if output.count > outputOffset { return finish() }
                closeAfterFlush = true
                startLingeringClose()
                break loop
            }
        }
        updateInterest()
    }

    private func dispatch(_ request: HTTPRequest) {
        let responder = context.responder
        if let response = responder.respondImmediately(to: request, connection: info) {
            write(response, for: request.head)  // the drive loop goes on with the next request
            return
        }
        let info = self.info
        // On the Dispatch executor, never on the cooperative pool (see `DispatchTaskExecutor`).
        handler = Task(executorPreference: context.handlerExecutor) { [self] in
            let response = await responder.respond(to: request, connection: info)
            queue.async { self.deliver(response, for: request.head) }
        }
    }

    private func deliver(_ response: HTTPResponse, for head: HTTPRequestHead) {
        handler = nil
        guard !finished else { return }
        write(response, for: head)
        drive()
    }

    private func write(_ response: HTTPResponse, for head: HTTPRequestHead) {
        let now = MonotonicInstant.now()
        let responderAllowsKeepAlive = !(response.headers["Connection"]?.lowercased().contains("close") ?? false)
        let keepAlive = stateMachine.responseReady(for: head, responderAllowsKeepAlive: responderAllowsKeepAlive, now: now)
        let bytes = context.encoder.encode(response, method: head.method, version: head.version,
                                           keepAlive: keepAlive, date: context.dateCache.current())
        enqueue(bytes, endsResponse: true)
    }

    // MARK: Writing

    private func enqueue(_ bytes: [UInt8], endsResponse: Bool) {
        output.append(contentsOf: bytes)
        if endsResponse { outputEndsResponse = true }
        flush()
    }

    private func flush() {
        while outputOffset < output.count {
            if let tls {
                let progress = output.withUnsafeBytes { raw in
                    tls.write(UnsafeRawBufferPointer(rebasing: raw[outputOffset...]))
                }
                switch progress {
                case .done(let written):
                    outputOffset += written
                    context.metrics.sentBytes.increment(by: written)
                    stateMachine.writeProgressed(now: .now())
                    continue
                case .wantWrite:
                    setWriteInterest(true)
                    return
                case .wantRead:
                    return  // readable() resumes it
                case .closed, .failed:
                    return finish()
                }
            }
            let written = output.withUnsafeBytes { raw in
                send(fd, raw.baseAddress! + outputOffset, output.count - outputOffset, Int32(MSG_NOSIGNAL))
            }
            if written > 0 {
                outputOffset += written
                context.metrics.sentBytes.increment(by: written)
                stateMachine.writeProgressed(now: .now())
            } else if written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                setWriteInterest(true)
                return
            } else if written < 0 && errno == EINTR {
                continue
            } else {
                return finish()  // EPIPE, ECONNRESET: the peer is gone
            }
        }
        output.removeAll(keepingCapacity: output.count < 1 << 20)
        outputOffset = 0
        setWriteInterest(false)
        if outputEndsResponse {
            outputEndsResponse = false
            stateMachine.responseWritten(now: .now())
        }
        if closeAfterFlush {
            startLingeringClose()
        }
    }

    /// Half-close and discard input for a moment before closing, so that unread request bytes do not make
    /// the kernel reset the connection and destroy the response the client has not read yet.
    private func startLingeringClose() {
        guard lingerDeadline == nil else { return }
        tls?.shutdown()
        shutdown(fd, Int32(SHUT_WR))
        lingerDeadline = .now() + context.configuration.lingerTimeout
        updateInterest()
    }

    /// The peer reset the connection or closed it after ours: nothing more can be read or written.
    func peerGone() {
        finish()
    }

    /// The socket can take more output.
    func writable() {
        if handshakeDeadline != nil { return continueHandshake() }
        flush()
        drive()  // a response finished here may unblock the next pipelined request
    }

    private func setWriteInterest(_ enabled: Bool) {
        guard enabled != writeEnabled else { return }
        writeEnabled = enabled
        loop.update(fd, read: readEnabled, write: writeEnabled)
    }

    private func updateInterest() {
        guard !finished else { return }
        let wantRead = lingerDeadline != nil || handshakeDeadline != nil || stateMachine.wantsInput
        if wantRead != readEnabled {
            readEnabled = wantRead
            loop.update(fd, read: readEnabled, write: writeEnabled)
            // Input the session decrypted earlier is not the socket's: epoll will not report it.
            if wantRead, tls?.hasPending == true, handshakeDeadline == nil {
                queue.async { [self] in if !finished, let tls = self.tls { readTLS(tls) } }
            }
        }
        // Re-arming a Dispatch timer wakes Dispatch's manager thread, which is costly once per request.
        // So the timer only moves earlier; firing before a later deadline just re-arms it (see `timerFired`).
        guard let deadline = handshakeDeadline ?? lingerDeadline ?? stateMachine.nextDeadline else { return }
        if timerDeadline.map({ deadline < $0 }) ?? true {
            timerDeadline = deadline
            timer.schedule(deadline: deadline.dispatchTime, leeway: .milliseconds(10))
        }
    }

    private func timerFired() {
        timerDeadline = nil
        if handshakeDeadline != nil { return continueHandshake() }
        drive()
    }

    private func finish() {
        guard !finished else { return }
        finished = true
        handler?.cancel()
        timer.cancel()
        loop.unregister(fd)
        tls = nil
        close(fd)
        context.connectionClosed(self)
    }
}
