/// Why a request could not be read. Every case maps to the status sent before the connection is closed.
public enum HTTPParseError: Error, Equatable, Sendable {
    /// Malformed syntax or ambiguous framing (request smuggling attempts land here).
    case badRequest(String)
    case requestLineTooLong
    case headersTooLarge
    case bodyTooLarge
    case unsupportedVersion
    case unsupportedTransferCoding(String)
    case expectationFailed
    case timeout

    public var status: HTTPStatus {
        switch self {
        case .badRequest: .badRequest
        case .requestLineTooLong: .uriTooLong
        case .headersTooLarge: .headerFieldsTooLarge
        case .bodyTooLarge: .payloadTooLarge
        case .unsupportedVersion: .httpVersionNotSupported
        case .unsupportedTransferCoding: .notImplemented
        case .expectationFailed: .expectationFailed
        case .timeout: .requestTimeout
        }
    }

    /// A stable machine-readable code, also the `reason` label of the rejection metric.
    public var code: String {
        switch self {
        case .badRequest: "bad_request"
        case .requestLineTooLong: "request_line_too_long"
        case .headersTooLarge: "headers_too_large"
        case .bodyTooLarge: "body_too_large"
        case .unsupportedVersion: "unsupported_version"
        case .unsupportedTransferCoding: "unsupported_transfer_coding"
        case .expectationFailed: "expectation_failed"
        case .timeout: "request_timeout"
        }
    }

    public var message: String {
        switch self {
        case .badRequest(let detail): "malformed request: \(detail)"
        case .requestLineTooLong: "request line exceeds the configured limit"
        case .headersTooLarge: "header section exceeds the configured limit"
        case .bodyTooLarge: "request body exceeds the configured limit"
        case .unsupportedVersion: "only HTTP/1.0 and HTTP/1.1 are supported"
        case .unsupportedTransferCoding(let coding): "transfer coding '\(coding)' is not supported"
        case .expectationFailed: "only 'Expect: 100-continue' is supported"
        case .timeout: "request was not received in time"
        }
    }
}
