import Embedding
import Foundation
import HTTP
@testable import Service

/// Each route's body decoding on arbitrary bytes (the byte-level `JSONReader` fast path and `JSONDecoder`),
/// then an embed item's checks (ids, sizes, base64): errors are fine, a trap is not.

func fuzzJson(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let request = HTTPRequest(head: HTTPRequestHead(method: .post, target: "/", version: .http1_1,
                                                    headers: HTTPHeaders([("Content-Type", "application/json")])),
                              body: bytes)
    _ = try? request.decodeJSON(MatchRoute.Request.self, fastPath: MatchRoute.Request.idsOnly)
    _ = try? request.decodeJSON(TokenizeRoute.Request.self)
    _ = try? request.decodeJSON(OpenAIEmbeddingsRoute.Request.self)
    if let embed = try? request.decodeJSON(EmbedRoute.Request.self) {
        var limits = ServiceConfiguration.RequestLimits()
        limits.maxImageBytes = 1 << 16
        limits.maxAudioBytes = 1 << 16
        for (index, item) in embed.items.prefix(64).enumerated() { _ = try? item.input(at: index, limits: limits) }
    }
    return 0
}
