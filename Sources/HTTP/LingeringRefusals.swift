#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch

/// Connections refused at the connection cap. Each gets its 503, then its output is shut down and its input read
/// and discarded until the peer closes or a short deadline passes: closing a socket with unread request bytes makes
/// the kernel send a reset, which destroys the 503 before the client reads it. At most `capacity` linger at once
/// (beyond that a refused socket is closed at once), polled every 50 ms, so a flood costs bounded descriptors.
///
/// Confined to `queue` (the accept queue); that is what the `@unchecked Sendable` claims.
final class LingeringRefusals: @unchecked Sendable {
    private let queue: DispatchQueue
    private let linger: Duration
    let capacity: Int
    private var sockets: [(fd: Int32, deadline: MonotonicInstant)] = []
    private let timer: DispatchSourceTimer
    private var polling = false

    init(queue: DispatchQueue, linger: Duration, capacity: Int = 256) {
        self.queue = queue
        self.linger = linger
        self.capacity = capacity
        timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .distantFuture)
        timer.activate()
        timer.setEventHandler { [unowned self] in poll() }
    }

    deinit {
        timer.cancel()
        for socket in sockets { close(socket.fd) }
    }

    /// Sends `response` (one non-blocking write: it fits a fresh socket's buffer) and lingers. On `queue`.
    func refuse(_ fd: Int32, response: [UInt8]) {
        _ = response.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sockets.count < capacity else {
            close(fd)
            return
        }
        shutdown(fd, Int32(SHUT_WR))
        sockets.append((fd, .now() + linger))
        discardInput()
        if !polling && !sockets.isEmpty {
            polling = true
            timer.schedule(deadline: .now() + .milliseconds(50), repeating: .milliseconds(50), leeway: .milliseconds(10))
        }
    }

    /// Sockets lingering now.
    var count: Int { sockets.count }

    private func poll() {
        discardInput()
        if sockets.isEmpty {
            polling = false
            timer.schedule(deadline: .distantFuture)
        }
    }

    /// Reads what each socket has; closes those whose peer closed (or failed) or whose deadline passed.
    private func discardInput() {
        let now = MonotonicInstant.now()
        var buffer = [UInt8](repeating: 0, count: 4096)
        sockets.removeAll { socket in
            while true {
                let count = buffer.withUnsafeMutableBytes { recv(socket.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if count > 0 { continue }
                let wouldBlock = count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                if wouldBlock && now < socket.deadline { return false }
                close(socket.fd)
                return true
            }
        }
    }
}
