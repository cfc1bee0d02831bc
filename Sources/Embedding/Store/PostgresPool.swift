import Dispatch
import Foundation
import Locking

/// A bounded pool of PostgreSQL connections, opened on demand. A caller waits up to `acquireTimeout` for a free
/// connection; a connection found broken is dropped, and an operation that failed because the connection was
/// unavailable runs once more on a fresh one (every operation here is idempotent or a whole transaction).
final class PostgresPool: Sendable {
    private let parameters: [(String, String)]
    private let size: Int
    private let acquireTimeout: Duration
    private let idle = Locked<[UnsafeSendableConnection]>([])
    private let freed: DispatchSemaphore

    private struct UnsafeSendableConnection: @unchecked Sendable {
        let connection: PostgresConnection
    }

    init(parameters: [(String, String)], size: Int, acquireTimeout: Duration) {
        self.parameters = parameters
        self.size = size
        self.acquireTimeout = acquireTimeout
        freed = DispatchSemaphore(value: size)
    }

    func withConnection<R>(_ body: (PostgresConnection) throws(StoreError) -> R) throws(StoreError) -> R {
        do {
            return try once(body)
        } catch .unavailable {
            return try once(body)
        }
    }

    private func once<R>(_ body: (PostgresConnection) throws(StoreError) -> R) throws(StoreError) -> R {
        let milliseconds = Int(acquireTimeout.components.seconds * 1000 + acquireTimeout.components.attoseconds / 1_000_000_000_000_000)
        guard freed.wait(timeout: .now() + .milliseconds(milliseconds)) == .success else {
            throw .unavailable("all \(size) PostgreSQL connections stayed busy for \(milliseconds) ms")
        }
        defer { freed.signal() }
        let connection: PostgresConnection
        if let reused = idle.withLock({ $0.popLast() }) {
            connection = reused.connection
        } else {
            connection = try PostgresConnection(parameters: parameters)
        }
        do {
            let result = try body(connection)
            release(connection)
            return result
        } catch {
            release(connection)
            throw error
        }
    }

    private func release(_ connection: PostgresConnection) {
        guard connection.isHealthy else { return }
        idle.withLock { $0.append(UnsafeSendableConnection(connection: connection)) }
    }

    /// Closes the idle connections (those in use close when they come back broken or the pool is gone).
    func closeIdle() {
        idle.withLock { $0.removeAll() }
    }
}
