import Embedding
import HTTP

/// `POST /v1/embeddings`, OpenAI's embeddings API for text: `input` (a string or an array of strings), `model`,
/// `dimensions`, `encoding_format`. Runs the text tower through the same batcher as `/embed`; nothing is stored.
struct OpenAIEmbeddingsRoute: Sendable {
    let embed: EmbedRoute
    /// Names a request's `model` may give: the text model's directory name (with or without its
    /// `sentence-transformers/` organisation) and the service's model id.
    let modelNames: Set<String>

    init(embed: EmbedRoute) {
        self.embed = embed
        let text = embed.pipeline.textModelName
        modelNames = [text, "sentence-transformers/\(text)", embed.pipeline.model.id]
    }

    struct Request: Decodable {
        enum Input: Decodable {
            case one(String)
            case many([String])

            init(from decoder: any Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let text = try? container.decode(String.self) {
                    self = .one(text)
                } else if let texts = try? container.decode([String].self) {
                    self = .many(texts)
                } else {
                    throw DecodingError.typeMismatch(String.self, DecodingError.Context(
                        codingPath: decoder.codingPath,
                        debugDescription: "a string or an array of strings (token arrays are not supported)"))
                }
            }
        }
        var input: Input
        var model: String?
        var dimensions: Int?
        var encodingFormat: String?
        var user: String?

        enum CodingKeys: String, CodingKey {
            case input, model, dimensions, encodingFormat = "encoding_format", user
        }
    }

    struct Response: Encodable {
        struct Embedding: Encodable {
            var object = "embedding"
            var index: Int
            var embedding: EncodedVector
        }
        struct Usage: Encodable {
            var promptTokens: Int
            var totalTokens: Int
            enum CodingKeys: String, CodingKey {
                case promptTokens = "prompt_tokens", totalTokens = "total_tokens"
            }
        }
        var object = "list"
        var data: [Embedding]
        var model: String
        var usage: Usage
    }

    func handle(_ request: HTTPRequest, quota: ItemQuota = ItemQuota()) async throws -> HTTPResponse {
        let body = try request.decodeJSON(Request.self)
        if let model = body.model, !modelNames.contains(model) {
            throw HTTPError(.notFound, code: "model_not_found",
                            message: "model '\(model)' is not served here; use one of \(modelNames.sorted())")
        }
        let texts: [String]
        switch body.input {
        case .one(let text): texts = [text]
        case .many(let many): texts = many
        }
        try embed.limits.checkCount(texts.count, of: "input", maximum: embed.limits.maxTexts)
        try quota.admit(texts.count)
        for (index, text) in texts.enumerated() {
            try embed.limits.checkText(text, at: "input[\(index)]")
            guard !text.isEmpty else {
                throw HTTPError(.unprocessableContent, code: "empty_input", message: "input[\(index)] is empty")
            }
        }
        let size = try embed.dimensions.resolve(body.dimensions)
        let format = try EncodedVector.format(body.encodingFormat)
        let options = EmbeddingPipeline.Options(deadline: .now + embed.settings.defaultTimeout, store: false)
        let outcome: EmbeddingPipeline.Outcome
        do {
            outcome = try await embed.pipeline.embed(
                texts.enumerated().map { ItemInput(id: "input[\($0)]", text: $1) }, options: options)
        } catch {
            throw HTTPError(error)
        }
        var data: [Response.Embedding] = []
        var tokens = 0
        let served = embed.servedVectors(outcome.items, codebook: outcome.codebook)
        for (index, result) in outcome.items.enumerated() {
            let item: EmbeddedItem
            do { item = try result.get() } catch { throw HTTPError(error) }
            tokens += item.tokens
            data.append(Response.Embedding(index: index, embedding: EncodedVector(
                Matryoshka.prefix(served[item.id]?.0 ?? item.embedding, dimensions: size), format: format)))
        }
        var response = HTTPResponse.json(Response(data: data, model: body.model ?? embed.pipeline.textModelName,
                                                  usage: Response.Usage(promptTokens: tokens, totalTokens: tokens)))
        response.addTiming(outcome.timing)
        return response
    }
}
