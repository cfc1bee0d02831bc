import Embedding
import HTTP

/// `POST /tokenize`: `{"texts": [...]}` → `{"data": [{"ids": [...], "tokens": [...], "truncated": bool}]}`,
/// one entry per text in order, exactly as the model will see them (`[CLS]`, pieces, `[SEP]`).
struct TokenizeRoute: Sendable {
    let pipeline: EmbeddingPipeline
    let limits: ServiceConfiguration.RequestLimits

    struct Request: Decodable {
        var texts: [String]
    }

    struct Response: Encodable {
        struct Item: Encodable {
            var ids: [Int32]
            var tokens: [String]
            var truncated: Bool
        }
        var data: [Item]
    }

    func handle(_ request: HTTPRequest) throws -> HTTPResponse {
        let body = try request.decodeJSON(Request.self)
        try limits.checkCount(body.texts.count, of: "texts", maximum: limits.maxTexts)
        for (index, text) in body.texts.enumerated() {
            try limits.checkText(text, at: "texts[\(index)]")
        }
        let items = body.texts.map { text in
            let tokenization = pipeline.tokenize(text)
            return Response.Item(ids: tokenization.ids, tokens: tokenization.tokens, truncated: tokenization.truncated)
        }
        return .json(Response(data: items))
    }
}
