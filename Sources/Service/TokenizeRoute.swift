import HTTP
import Models

/// `POST /tokenize`: `{"texts": [...]}` → `{"data": [{"ids": [...], "tokens": [...], "truncated": bool}]}`,
/// one entry per text in order, exactly as the model will see them (`[CLS]`, pieces, `[SEP]`).
struct TokenizeRoute: Sendable {
    let tokenizer: WordPieceTokenizer
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
        guard !body.texts.isEmpty else {
            throw HTTPError(.unprocessableContent, code: "no_texts", message: "'texts' must hold at least one text")
        }
        guard body.texts.count <= limits.maxTexts else {
            throw HTTPError(.payloadTooLarge, code: "too_many_texts",
                            message: "\(body.texts.count) texts; at most \(limits.maxTexts) per request")
        }
        if let index = body.texts.firstIndex(where: { $0.utf8.count > limits.maxTextBytes }) {
            throw HTTPError(.payloadTooLarge, code: "text_too_long",
                            message: "texts[\(index)] has \(body.texts[index].utf8.count) bytes; at most \(limits.maxTextBytes)")
        }
        let items = body.texts.map { text in
            let ids = tokenizer.encode(text)
            return Response.Item(ids: ids, tokens: ids.map { tokenizer.tokens[Int($0)] },
                                 truncated: tokenizer.pieceCount(text) > tokenizer.maxLength - 2)
        }
        return .json(Response(data: items))
    }
}
