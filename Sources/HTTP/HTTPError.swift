/// An error that knows how it is answered: status, stable code and message.
/// Throw one from a handler and the client receives `{"error": {"code": ..., "message": ...}}`.
public protocol HTTPResponseError: Error {
    var status: HTTPStatus { get }
    var code: String { get }
    var message: String { get }
    /// Extra response headers, such as `Allow` or `Retry-After`.
    var headers: HTTPHeaders { get }
}

extension HTTPResponseError {
    public var headers: HTTPHeaders { HTTPHeaders() }
}

/// The general-purpose `HTTPResponseError`.
public struct HTTPError: HTTPResponseError, Equatable {
    public var status: HTTPStatus
    public var code: String
    public var message: String
    public var headers: HTTPHeaders

    public init(_ status: HTTPStatus, code: String, message: String, headers: HTTPHeaders = HTTPHeaders()) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }
}

extension HTTPParseError: HTTPResponseError {}

extension HTTPResponse {
    /// The uniform error body `{"error": {"code": ..., "message": ...}}`.
    public static func error(_ error: some HTTPResponseError) -> HTTPResponse {
        var headers = error.headers
        headers.replaceOrAdd(name: "Content-Type", value: "application/json")
        let body = "{\"error\":{\"code\":\(jsonQuoted(error.code)),\"message\":\(jsonQuoted(error.message))}}"
        return HTTPResponse(status: error.status, headers: headers, body: Array(body.utf8))
    }
}

/// `string` as a JSON string literal.
public func jsonQuoted(_ string: String) -> String {
    var out = "\""
    for scalar in string.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}
