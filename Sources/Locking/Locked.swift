import Synchronization

/// A value behind a `Mutex`, for the service's shared state.
///
/// The standard library's `Mutex` locks with futexes inside the (uninstrumented) standard library on Linux, so
/// ThreadSanitizer cannot see it and reports every access it guards as a race. Built with `-DOMNIEMBED_TSAN`
/// (`scripts/check/sanitize thread` does), `Locked` tells the sanitizer about each acquire and release; otherwise it is
/// the `Mutex` and nothing more.
public final class Locked<Value: ~Copyable>: Sendable {
    private let mutex: Mutex<Value>

    public init(_ value: consuming sending Value) {
        mutex = Mutex(value)
    }

    public func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        try mutex.withLock { (value: inout sending Value) throws(E) -> sending Result in
            #if OMNIEMBED_TSAN
            let address = UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque())
            tsanAcquire(address)
            defer { tsanRelease(address) }
            #endif
            return try body(&value)
        }
    }
}

#if OMNIEMBED_TSAN
@_silgen_name("__tsan_acquire") private func tsanAcquire(_ address: UnsafeRawPointer)
@_silgen_name("__tsan_release") private func tsanRelease(_ address: UnsafeRawPointer)
#endif
