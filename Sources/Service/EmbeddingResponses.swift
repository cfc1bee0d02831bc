import Embedding
import Foundation
import HTTP

extension HTTPError {
    /// The HTTP answer to a pipeline failure (`Retry-After` on 429).
    init(_ error: EmbeddingError) {
        var headers = HTTPHeaders()
        if let seconds = error.retryAfter { headers.add(name: "Retry-After", value: String(seconds)) }
        self.init(HTTPStatus(code: error.status), code: error.code, message: error.message, headers: headers)
    }

    /// `body`'s result; its `EmbeddingError` as the `HTTPError` it is answered with.
    static func catching<T>(_ body: () throws(EmbeddingError) -> T) throws(HTTPError) -> T {
        do { return try body() } catch { throw HTTPError(error) }
    }

    static func catching<T>(_ body: () async throws(EmbeddingError) -> T) async throws(HTTPError) -> T {
        do { return try await body() } catch { throw HTTPError(error) }
    }
}

/// A vector as JSON: an array of numbers, or (`encoding_format: "base64"`) the base64 of its little-endian
/// float32 bytes, as OpenAI's API sends it.
enum EncodedVector: Encodable {
    case float([Float])
    case base64(String)

    enum Format: String, CaseIterable {
        case float, base64
    }

    init(_ vector: [Float], format: Format) {
        switch format {
        case .float:
            self = .float(vector)
        case .base64:
            var bytes = [UInt8](repeating: 0, count: vector.count * 4)
            for (index, value) in vector.enumerated() {
                withUnsafeBytes(of: value.bitPattern.littleEndian) { raw in
                    for k in 0..<4 { bytes[index * 4 + k] = raw[k] }
                }
            }
            self = .base64(Data(bytes).base64EncodedString())
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .float(let values): try container.encode(values)
        case .base64(let string): try container.encode(string)
        }
    }

    /// `format` named in a request, 422 listing the formats otherwise.
    static func format(_ name: String?) throws(HTTPError) -> Format {
        guard let name else { return .float }
        guard let format = Format(rawValue: name) else {
            throw HTTPError(.unprocessableContent, code: "invalid_encoding_format",
                            message: "'encoding_format' must be one of \(Format.allCases.map(\.rawValue)), got '\(name)'")
        }
        return format
    }
}

/// The Matryoshka sizes a service offers.
struct Dimensions: Sendable {
    let allowed: [Int]

    /// `requested`, or the full size; 422 listing the allowed sizes otherwise.
    func resolve(_ requested: Int?) throws(HTTPError) -> Int {
        guard let requested else { return allowed[0] }
        guard allowed.contains(requested) else {
            throw HTTPError(.unprocessableContent, code: "invalid_dimensions",
                            message: "'dimensions' must be one of \(allowed), got \(requested)")
        }
        return requested
    }
}

extension HTTPResponse {
    /// Adds the time a request's work waited in tower queues and ran in batches.
    mutating func addTiming(_ timing: TowerTiming) {
        func ms(_ duration: Duration) -> String { String(format: "%.3f", duration.seconds * 1e3) }
        headers.add(name: "X-Queue-Time-Ms", value: ms(timing.queue))
        headers.add(name: "X-Inference-Time-Ms", value: ms(timing.inference))
        headers.add(name: "Server-Timing", value: "queue;dur=\(ms(timing.queue)), inference;dur=\(ms(timing.inference))")
    }
}
