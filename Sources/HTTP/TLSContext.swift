import CTLS

/// An OpenSSL server context for the listener: certificate chain and key (checked to match), optionally the CA that
/// client certificates must be signed by (mutual TLS). TLS 1.2 and 1.3 only; see `CTLS/include/tls.h`.
public final class TLSContext: @unchecked Sendable {  // OpenSSL's SSL_CTX is safe to share once configured
    let pointer: OpaquePointer

    /// Why a context could not be made: the files and OpenSSL's reason.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public init(certificateFile: String, privateKeyFile: String, clientCAFile: String? = nil) throws(Failure) {
        var error = [CChar](repeating: 0, count: 256)
        guard let pointer = oe_tls_context_new(certificateFile, privateKeyFile, clientCAFile, &error, error.count) else {
            let reason = String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw Failure(description: "TLS certificate \(certificateFile) with key \(privateKeyFile): \(reason)")
        }
        self.pointer = pointer
    }

    deinit {
        oe_tls_context_free(pointer)
    }
}
