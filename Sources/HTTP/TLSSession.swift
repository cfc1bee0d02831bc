import CTLS
import Locking

/// The certificate the listener serves, replaced whole on reload: a new connection takes the context in force,
/// and a connection keeps the one it started with (OpenSSL counts the references).
public final class TLSCertificates: Sendable {
    private let current: Locked<TLSContext>

    public init(_ context: TLSContext) {
        current = Locked(context)
    }

    public var context: TLSContext { current.withLock { $0 } }

    public func replace(_ context: TLSContext) {
        current.withLock { $0 = context }
    }
}

/// One connection's TLS session (OpenSSL), non-blocking. Used on its connection's queue only.
final class TLSSession {
    /// What a call needs before it can go on.
    enum Progress: Equatable {
        case done(Int)
        case wantRead
        case wantWrite
        case closed
        case failed
    }

    private let pointer: OpaquePointer

    init?(context: TLSContext, fd: Int32) {
        guard let pointer = oe_tls_session_new(context.pointer, fd) else { return nil }
        self.pointer = pointer
    }

    deinit {
        oe_tls_session_free(pointer)
    }

    func handshake() -> Progress {
        Self.progress(Int(oe_tls_handshake(pointer)))
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> Progress {
        Self.progress(oe_tls_read(pointer, buffer.baseAddress, buffer.count))
    }

    func write(_ bytes: UnsafeRawBufferPointer) -> Progress {
        Self.progress(oe_tls_write(pointer, bytes.baseAddress, bytes.count))
    }

    /// Input waiting in the session, decrypted or read ahead (epoll cannot see it).
    var hasPending: Bool { oe_tls_pending(pointer) > 0 }

    func shutdown() {
        oe_tls_shutdown(pointer)
    }

    var version: String { String(cString: oe_tls_version(pointer)) }

    static func lastError() -> String {
        var error = [CChar](repeating: 0, count: 256)
        oe_tls_last_error(&error, error.count)
        return String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func progress(_ result: Int) -> Progress {
        switch result {
        case 0...: .done(result)
        case Int(OE_TLS_WANT_READ): .wantRead
        case Int(OE_TLS_WANT_WRITE): .wantWrite
        case Int(OE_TLS_CLOSED): .closed
        default: .failed
        }
    }
}
