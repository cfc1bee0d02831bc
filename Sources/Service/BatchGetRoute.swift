import Embedding
import HTTP

/// `POST /items/batch_get`: stored items as a ranker fetches them on every request, by id, in the request's
/// order: each one's embedding (in the space `/embed` serves, at a Matryoshka size) and semantic ID, and the ids
/// the bank does not hold.
struct BatchGetRoute: Sendable {
    let matcher: Matcher
    let dimensions: Dimensions
    let maxIDs: Int
    let stages: RouteStages

    struct Request: Decodable {
        var ids: [String]
        var `return`: [String]?
        var dimensions: Int?
        var codebookVersion: String?
        var encodingFormat: String?

        enum CodingKeys: String, CodingKey {
            case ids, `return`, dimensions, codebookVersion = "codebook_version", encodingFormat = "encoding_format"
        }
    }

    func handle(_ request: HTTPRequest) throws -> HTTPResponse {
        var marks = [ContinuousClock.now]
        let body = try request.decodeJSON(Request.self)
        marks.append(.now)
        guard !body.ids.isEmpty else {
            throw HTTPError(.unprocessableContent, code: "no_ids", message: "'ids' must not be empty")
        }
        guard body.ids.count <= maxIDs else {
            throw HTTPError(.payloadTooLarge, code: "too_many_ids", message: "\(body.ids.count) ids; at most \(maxIDs) per request")
        }
        let pipeline = matcher.pipeline
        let codebook = try HTTPError.catching { () throws(EmbeddingError) in try pipeline.codebooks.resolve(body.codebookVersion) }
        let size = try dimensions.resolve(body.dimensions)
        let format = try EncodedVector.format(body.encodingFormat)
        // By default what /embed returns of an item: its embedding, and its semantic ID when a codebook is loaded.
        let fields = body.return ?? (codebook == nil ? ["embedding"] : ["embedding", "semantic_id"])
        for field in fields where field != "embedding" && field != "semantic_id" {
            throw HTTPError(.unprocessableContent, code: "invalid_return",
                            message: "'return' may list \"embedding\" and \"semantic_id\", got '\(field)'")
        }
        let (embeddings, codes) = (fields.contains("embedding"), fields.contains("semantic_id"))
        let fetched = try HTTPError.catching { () throws(EmbeddingError) in
            try matcher.fetch(body.ids, size: size, embeddings: embeddings, codes: codes, codebook: codebook)
        }
        marks.append(.now)

        // Sized for the whole answer up front: a thousand vectors are megabytes, which doubling would copy again.
        let perVector = embeddings ? (format == .base64 ? (size * 4 + 2) / 3 * 4 : size * 16) : 0
        var json = JSONWriter(capacity: fetched.ids.count * (perVector + 160) + fetched.missing.count * 80 + 256)
        json.beginObject()
        json.key("data")
        json.beginArray()
        for (row, id) in fetched.ids.enumerated() {
            json.beginObject()
            json.key("id")
            json.string(id)
            if embeddings {
                json.key("embedding")
                let vector = fetched.embeddings[row * size..<(row + 1) * size]
                switch format {
                case .float: json.floats(vector)
                // Little-endian float32 bytes: the machine's own (x86-64 and arm64 are little-endian).
                case .base64: vector.withUnsafeBytes { json.base64($0) }
                }
            }
            if codes {
                json.key("semantic_id")
                json.beginArray()
                for code in fetched.semanticIDs[row] { json.int(code) }
                json.endArray()
            }
            json.endObject()
        }
        json.endArray()
        json.key("missing")
        json.beginArray()
        for id in fetched.missing { json.string(id) }
        json.endArray()
        json.key("dimensions")
        json.int(size)
        json.key("model")
        json.beginObject()
        json.key("id")
        json.string(pipeline.model.id)
        json.key("revision")
        json.string(pipeline.model.revision)
        json.endObject()
        json.key("codebook_version")
        if let codebook { json.string(codebook.version) } else { json.null() }
        json.endObject()
        var response = HTTPResponse.json(json)
        marks.append(.now)
        stages.record(marks, in: &response)
        return response
    }
}
