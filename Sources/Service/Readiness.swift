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
    /// Whether what the service depends on answers (a shared item store): `nil` when it does, else why not.
    private let dependencies = Locked<(@Sendable () -> String?)?>(nil)

    public init() {}

    /// Sets the check `/readyz` runs while ready; it must not block (it reads a flag a monitor keeps).
    public func watch(_ check: @escaping @Sendable () -> String?) {
        dependencies.withLock { $0 = check }
    }

    /// Why a dependency is down, or `nil`.
    public var unavailableDependency: String? { dependencies.withLock { $0 }?() }

    public var state: State { current.withLock { $0 } }

    public func markReady() {
        current.withLock { if $0 == .starting { $0 = .ready } }
    }

    public func markDraining() {
        current.withLock { $0 = .draining }
    }
}
