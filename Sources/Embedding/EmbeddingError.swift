/// Why an item or a request was not embedded. Carries the HTTP status it is answered with, so the service
/// maps it without knowing the cases; this module knows nothing of HTTP otherwise.
public struct EmbeddingError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    /// A stable, machine-readable reason (`corrupt_media`, `overloaded`, ...).
    public var code: String
    public var message: String
    /// Seconds after which a retry may succeed (for `overloaded`).
    public var retryAfter: Int?

    public init(status: Int, code: String, message: String, retryAfter: Int? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
    }

    public var description: String { "\(status) \(code): \(message)" }

    /// 422: well-formed but unusable input.
    public static func invalid(_ code: String, _ message: String) -> EmbeddingError {
        EmbeddingError(status: 422, code: code, message: message)
    }

    /// 413: over a configured limit.
    public static func tooLarge(_ code: String, _ message: String) -> EmbeddingError {
        EmbeddingError(status: 413, code: code, message: message)
    }

    /// 429: a tower's queue is full.
    public static func overloaded(_ tower: String, retryAfter: Int = 1) -> EmbeddingError {
        EmbeddingError(status: 429, code: "overloaded", message: "the \(tower) queue is full; retry later",
                       retryAfter: retryAfter)
    }

    /// 504: the request's deadline passed before its work was done.
    public static func timedOut(_ tower: String) -> EmbeddingError {
        EmbeddingError(status: 504, code: "timeout", message: "deadline exceeded waiting for the \(tower) tower")
    }

    /// 499 (nginx's "client closed request"): nobody is waiting for the answer any more.
    public static let cancelled = EmbeddingError(status: 499, code: "cancelled", message: "the request was cancelled")

    /// 503: the store failed or is closed.
    public static func storeFailed(_ message: String) -> EmbeddingError {
        EmbeddingError(status: 503, code: "store_unavailable", message: message)
    }
}
