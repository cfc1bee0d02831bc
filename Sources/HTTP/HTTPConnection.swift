#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Logging

/// One accepted socket, driven by Dispatch sources on its own serial queue.
///
/// All mutable state is touched only on `queue`; that confinement is what the `@unchecked Sendable` claims.
/// Decisions are the state machine's; this class only moves bytes, runs the responder and keeps time.
final class HTTPConnection: @unchecked Sendable {
    let id: UInt64
    private let fd: Int32
    private let info: HTTPConnectionInfo
    let queue: DispatchQueue
    private let context: HTTPServer.Context
    private var stateMachine: HTTPConnectionStateMachine

    private var readSource: DispatchSourceRead?
    private var readEnabled = false
    private var writeSource: DispatchSourceWrite?
    private var writeEnabled = false
    private let timer: DispatchSourceTimer

    private var output: [UInt8] = []
    private var outputOffset = 0
    /// Whether the bytes in `output` end with a final response (the state machine hears of it when flushed).
    private var outputEndsResponse = false
    private var closeAfterFlush = false
    private var lingerDeadline: MonotonicInstant?
    private var handler: Task<Void, Never>?
    private var finished = false

    init(id: UInt64, fd: Int32, remoteAddress: String, context: HTTPServer.Context) {
        self.id = id
        self.fd = fd
        self.info = HTTPConnectionInfo(remoteAddress: remoteAddress)
        self.context = context
        self.queue = DispatchQueue(label: "omniembed.http.connection", target: context.connectionQueue)
        let config = context.configuration
        self.stateMachine = HTTPConnectionStateMachine(limits: config.limits, timeouts: config.timeouts,
                                                       maxRequests: config.maxRequestsPerConnection, now: .now())
        self.timer = DispatchSource.makeTimerSource(queue: queue)
        // Dispatch aborts when an inactive source is released, so it is active from the start.
        timer.schedule(deadline: .distantFuture)
        timer.activate()
    }

    func start() {
        queue.async { [self] in
            let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
            source.setEventHandler { [unowned self] in readable() }
            source.setCancelHandler { [fd] in close(fd) }
            readSource = source
            timer.setEventHandler { [unowned self] in drive() }
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

    private func readable() {
        let (count, readErrno) = withUnsafeTemporaryAllocation(byteCount: 64 * 1024, alignment: 16) { buffer in
            let count = read(fd, buffer.baseAddress, buffer.count)
            if count > 0 && lingerDeadline == nil {
                stateMachine.bytesReceived(UnsafeRawBufferPointer(rebasing: buffer[0..<count]), now: .now())
            }
            return (count, errno)
        }
        if count > 0 {
            context.metrics.receivedBytes.increment(by: count)
            if lingerDeadline == nil { drive() }  // else: discarding until the peer closes
        } else if count == 0 || (readErrno != EAGAIN && readErrno != EWOULDBLOCK && readErrno != EINTR) {
            if lingerDeadline != nil { return finish() }
            // The client is gone (or half-closed): work for it is no longer wanted.
            handler?.cancel()
            stateMachine.inputClosed(now: .now())
            drive()
        }
    }

    // MARK: The loop

    private func drive() {
        guard !finished else { return }
        let now = MonotonicInstant.now()
        if let lingerDeadline {
            if now >= lingerDeadline { finish() } else { updateInterest() }
            return
        }
        loop: while true {
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
        let info = self.info
        handler = Task(executorPreference: context.handlerExecutor) { [self] in
            let response = await responder.respond(to: request, connection: info)
            queue.async { self.deliver(response, for: request.head) }
        }
    }

    private func deliver(_ response: HTTPResponse, for head: HTTPRequestHead) {
        handler = nil
        guard !finished else { return }
        let now = MonotonicInstant.now()
        let responderAllowsKeepAlive = !(response.headers["Connection"]?.lowercased().contains("close") ?? false)
        let keepAlive = stateMachine.responseReady(for: head, responderAllowsKeepAlive: responderAllowsKeepAlive, now: now)
        let bytes = context.encoder.encode(response, method: head.method, version: head.version,
                                           keepAlive: keepAlive, date: context.dateCache.current())
        enqueue(bytes, endsResponse: true)
        drive()
    }

    // MARK: Writing

    private func enqueue(_ bytes: [UInt8], endsResponse: Bool) {
        output.append(contentsOf: bytes)
        if endsResponse { outputEndsResponse = true }
        flush()
    }

    private func flush() {
        while outputOffset < output.count {
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
        shutdown(fd, Int32(SHUT_WR))
        lingerDeadline = .now() + context.configuration.lingerTimeout
        updateInterest()
    }

    private func setWriteInterest(_ enabled: Bool) {
        guard enabled != writeEnabled else { return }
        if writeSource == nil {
            let source = DispatchSource.makeWriteSource(fileDescriptor: fd, queue: queue)
            source.setEventHandler { [unowned self] in flush(); if !finished { updateInterest() } }
            writeSource = source
        }
        writeEnabled = enabled
        enabled ? writeSource!.resume() : writeSource!.suspend()
    }

    private func updateInterest() {
        guard !finished else { return }
        let wantRead = lingerDeadline != nil || stateMachine.wantsInput
        if wantRead != readEnabled {
            readEnabled = wantRead
            wantRead ? readSource?.resume() : readSource?.suspend()
        }
        let deadline = lingerDeadline ?? stateMachine.nextDeadline
        timer.schedule(deadline: deadline?.dispatchTime ?? .distantFuture)
    }

    private func finish() {
        guard !finished else { return }
        finished = true
        handler?.cancel()
        timer.cancel()
        if let writeSource {
            if !writeEnabled { writeSource.resume() }
            writeSource.cancel()
        }
        // The read source owns the descriptor: its cancel handler closes it once no handler can run.
        if let readSource {
            if !readEnabled { readSource.resume() }
            readSource.cancel()
        } else {
            close(fd)
        }
        context.connectionClosed(self)
    }
}
