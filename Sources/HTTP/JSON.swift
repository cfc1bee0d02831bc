#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension HTTPRequest {
    /// The body decoded as JSON; a 415 for another content type, a 400 naming what is wrong otherwise.
    /// `fastPath` may read the body first (see `JSONReader`); when it returns `nil`, `JSONDecoder` does.
    public func decodeJSON<T: Decodable>(_ type: T.Type, fastPath: (([UInt8]) -> T?)? = nil) throws(HTTPError) -> T {
        if let contentType = headers["Content-Type"]?.lowercased(), !contentType.contains("json") {
            throw HTTPError(.unsupportedMediaType, code: "unsupported_media_type",
                            message: "expected Content-Type application/json, got '\(contentType)'")
        }
        guard !body.isEmpty else { throw HTTPError(.badRequest, code: "empty_body", message: "request body is empty") }
        if let value = fastPath?(body) { return value }
        do {
            return try JSONDecoder().decode(T.self, from: Data(body))
        } catch let error as DecodingError {
            throw HTTPError(.badRequest, code: "invalid_json", message: Self.describe(error))
        } catch {
            throw HTTPError(.badRequest, code: "invalid_json", message: "body is not valid JSON")
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            let text = codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return text.isEmpty ? "the body" : String(text.drop { $0 == "." })
        }
        switch error {
        case .dataCorrupted(let context): return "body is not valid JSON at \(path(context.codingPath))"
        case .keyNotFound(let key, let context): return "missing field '\(path(context.codingPath + [key]))'"
        case .typeMismatch(let type, let context): return "field '\(path(context.codingPath))' must be \(type)"
        case .valueNotFound(let type, let context): return "field '\(path(context.codingPath))' must be a \(type), not null"
        @unknown default: return "body does not match the expected schema"
        }
    }
}

extension HTTPResponse {
    /// `value` encoded as a JSON body.
    public static func json<T: Encodable>(_ value: T, status: HTTPStatus = .ok) -> HTTPResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = (try? encoder.encode(value)).map(Array.init) ?? Array("null".utf8)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        return HTTPResponse(status: status, headers: headers, body: body)
    }
}
