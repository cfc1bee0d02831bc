import HTTP
import Models
import Synchronization

/// `POST /embed` for text items until the multimodal pipeline exists:
/// `{"items": [{"id": "...", "text": "..."}]}` → `{"model", "dimensions", "data": [{"id", "embedding"}], "usage"}`.
final class EmbedRoute: Sendable {
    let model: TextEmbedder
    let limits: ServiceConfiguration.RequestLimits
    /// One encoder call at a time: concurrent OpenBLAS calls would each take every core and contend.
    /// (Dynamic batching replaces this.)
    private let encoderTurn = Mutex(())

    init(model: TextEmbedder, limits: ServiceConfiguration.RequestLimits) {
        self.model = model
        self.limits = limits
    }

    struct Request: Decodable {
        struct Item: Decodable {
            var id: String
            var text: String
        }
        var items: [Item]
    }

    struct Response: Encodable {
        struct Item: Encodable {
            var id: String
            var embedding: [Float]
        }
        struct Usage: Encodable {
            var tokens: Int
            /// Ids of items whose text was cut to the model's maximum length.
            var truncated: [String]
        }
        var model: String
        var dimensions: Int
        var data: [Item]
        var usage: Usage
    }

    func handle(_ request: HTTPRequest) throws -> HTTPResponse {
        let body = try request.decodeJSON(Request.self)
        try limits.checkCount(body.items.count, of: "items")
        for (index, item) in body.items.enumerated() {
            if item.id.isEmpty {
                throw HTTPError(.unprocessableContent, code: "invalid_item", message: "items[\(index)]: 'id' is empty")
            }
            try limits.checkText(item.text, at: "items[\(index)] (\(item.id))")
        }
        let result = encoderTurn.withLock { _ in model.embed(body.items.map(\.text)) }
        return .json(Response(
            model: model.name, dimensions: model.encoder.configuration.hiddenSize,
            data: zip(body.items, result.embeddings).map { Response.Item(id: $0.id, embedding: $1) },
            usage: Response.Usage(tokens: result.tokens, truncated: result.truncated.map { body.items[$0].id })))
    }
}
