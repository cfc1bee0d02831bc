/// Serialises responses, owning their framing: exactly one of `Content-Length` or nothing
/// (never `Transfer-Encoding`, since bodies are complete), none on 1xx/204/304, no body for HEAD.
public struct HTTPResponseEncoder: Sendable {
    public var serverName: String

    public init(serverName: String) {
        self.serverName = serverName
    }

    /// The bytes of `response` answering a request with `method` and `version`.
    /// - Parameter keepAlive: whether the connection stays open after this response.
    public func encode(_ response: HTTPResponse, method: HTTPMethod, version: HTTPVersion,
                       keepAlive: Bool, date: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(160 + response.headers.count * 40 + response.body.count)
        appendStatusLine(response.status, to: &out)
        for field in response.headers where !Self.isFramingField(field.name) {
            appendField(field.name, field.value, to: &out)
        }
        appendField("Date", date, to: &out)
        appendField("Server", serverName, to: &out)
        if response.status.allowsBody {
            appendField("Content-Length", String(response.body.count), to: &out)
        }
        if !keepAlive {
            appendField("Connection", "close", to: &out)
        } else if version.minor == 0 {
            appendField("Connection", "keep-alive", to: &out)
        }
        out.append(contentsOf: [.cr, .lf])
        if response.status.allowsBody && method != .head {
            out.append(contentsOf: response.body)
        }
        return out
    }

    /// The interim response sent before reading the body of an `Expect: 100-continue` request.
    public static let continueResponse: [UInt8] = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    static func isFramingField(_ name: String) -> Bool {
        name.caseInsensitiveEquals("Content-Length") || name.caseInsensitiveEquals("Transfer-Encoding")
            || name.caseInsensitiveEquals("Connection") || name.caseInsensitiveEquals("Date")
            || name.caseInsensitiveEquals("Server") || name.caseInsensitiveEquals("Keep-Alive")
    }

    private func appendStatusLine(_ status: HTTPStatus, to out: inout [UInt8]) {
        out.append(contentsOf: "HTTP/1.1 ".utf8)
        out.append(contentsOf: String(status.code).utf8)
        out.append(.space)
        out.append(contentsOf: status.reasonPhrase.utf8)
        out.append(contentsOf: [.cr, .lf])
    }

    private func appendField(_ name: String, _ value: String, to out: inout [UInt8]) {
        out.append(contentsOf: name.utf8)
        out.append(contentsOf: [.colon, .space])
        // A handler must not be able to inject a header line: CR, LF and NUL are replaced.
        let start = out.count
        out.append(contentsOf: value.utf8)
        for index in start..<out.count where out[index] == .cr || out[index] == .lf || out[index] == 0 {
            out[index] = .space
        }
        out.append(contentsOf: [.cr, .lf])
    }
}
