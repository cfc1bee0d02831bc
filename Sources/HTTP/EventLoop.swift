import CEpoll
import Dispatch
import Glibc

/// An epoll instance whose readiness one Dispatch read source watches, on one serial queue.
///
/// A Dispatch source per socket costs a wake-up of Dispatch's manager thread for every event (it re-arms
/// the source through an eventfd); under load that was a fifth of the CPU spent per request. Here one
/// source event harvests every ready socket of the loop, so that cost is shared by a batch.
/// Everything but `init` runs on `queue`, which is what the `@unchecked Sendable` claims.
final class EventLoop: @unchecked Sendable {
    let queue: DispatchQueue
    private let epoll: Int32
    private let source: DispatchSourceRead
    private var connections: [Int32: HTTPConnection] = [:]
    private var events = [epoll_event](repeating: epoll_event(), count: 256)
    /// Where the loop's connections read into, one at a time: allocating 64 KiB per read showed in profiles.
    let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)

    init(label: String) throws {
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0 else { throw SocketError(operation: "epoll_create1", errno: errno) }
        queue = DispatchQueue(label: label)
        source = DispatchSource.makeReadSource(fileDescriptor: epoll, queue: queue)
        source.setEventHandler { [unowned self] in poll() }
        source.setCancelHandler { [epoll] in close(epoll) }
        source.activate()
    }

    deinit {
        source.cancel()
        readBuffer.deallocate()
    }

    /// Watches `fd` for input on behalf of `connection`.
    func register(_ fd: Int32, _ connection: HTTPConnection) throws {
        connections[fd] = connection
        try control(EPOLL_CTL_ADD, fd, read: true, write: false)
    }

    /// Changes what `fd` is watched for.
    func update(_ fd: Int32, read: Bool, write: Bool) {
        try? control(EPOLL_CTL_MOD, fd, read: read, write: write)
    }

    /// Stops watching `fd`; call before closing it.
    func unregister(_ fd: Int32) {
        connections[fd] = nil
        _ = epoll_ctl(epoll, EPOLL_CTL_DEL, fd, nil)
    }

    private func control(_ operation: Int32, _ fd: Int32, read: Bool, write: Bool) throws {
        var event = epoll_event()
        // Level-triggered: a socket with input left over is reported again by the next harvest.
        event.events = (read ? Readiness.input | Readiness.peerClosed : 0) | (write ? Readiness.output : 0)
        event.data.fd = fd
        guard epoll_ctl(epoll, operation, fd, &event) == 0 else {
            throw SocketError(operation: "epoll_ctl", errno: errno)
        }
    }

    private func poll() {
        // A few rounds at most: this queue also runs responses of async handlers and timers, which must not wait
        // behind a stream of socket events. Level-triggered epoll reports whatever is left on the next event.
        for _ in 0..<4 {
            let count = events.withUnsafeMutableBufferPointer { epoll_wait(epoll, $0.baseAddress, Int32($0.count), 0) }
            guard count > 0 else { return }
            for index in 0..<Int(count) {
                let event = events[index]
                let fd = event.data.fd
                // A connection closed earlier in this batch is gone from the table; its stale events are dropped.
                guard let connection = connections[fd] else { continue }
                let flags = event.events
                // Reported whatever the interest mask: the peer is gone both ways (reset, or closed after our FIN).
                if flags & (Readiness.hangUp | Readiness.error) != 0 {
                    connection.peerGone()
                    continue
                }
                if flags & Readiness.output != 0 { connection.writable() }
                if flags & (Readiness.input | Readiness.peerClosed) != 0, connections[fd] === connection {
                    connection.readable()
                }
            }
            if count < Int32(events.count) { return }
        }
    }
}

/// epoll event bits (the Glibc module does not import them all).
private enum Readiness {
    static let input: UInt32 = 0x001
    static let output: UInt32 = 0x004
    static let error: UInt32 = 0x008
    static let hangUp: UInt32 = 0x010
    static let peerClosed: UInt32 = 0x2000
}
