import Locking

/// Whether the service should receive traffic: `/readyz` answers 200 only when `ready`.
public final class Readiness: Sendable {
    public enum State: String, Sendable {
        /// Models and stores are loading.
        case starting
        case ready
        /// Shutting down: finishing requests in flight, taking no new ones from load balancers.
        case draining
    }

    private let current = Locked(State.starting)

    public init() {}

    public var state: State { current.withLock { $0 } }

    public func markReady() {
        current.withLock { if $0 == .starting { $0 = .ready } }
    }

    public func markDraining() {
        current.withLock { $0 = .draining }
    }
}
