import Embedding
import Foundation
import HTTP

/// `POST /embed`: items with any of text, fields, images (base64 JPEG/PNG, the cover first, then frames) and
/// audio (base64 WAV) → fused embeddings at a Matryoshka size, per-modality vectors, usage.
struct EmbedRoute: Sendable {
    let pipeline: EmbeddingPipeline
    let limits: ServiceConfiguration.RequestLimits
    let settings: ServiceConfiguration.EmbeddingSettings
    let dimensions: Dimensions
    /// Serve vectors in the loaded codebook's rotated space.
    let rotate: Bool

    init(pipeline: EmbeddingPipeline, limits: ServiceConfiguration.RequestLimits,
         settings: ServiceConfiguration.EmbeddingSettings, rotate: Bool) {
        self.pipeline = pipeline
        self.limits = limits
        self.settings = settings
        self.rotate = rotate
        dimensions = Dimensions(allowed: settings.dimensions)
    }

    struct Request: Decodable {
        var items: [ItemPayload]
        var dimensions: Int?
        var normalize: Bool?
        var encodingFormat: String?
        var `return`: [String]?
        var store: Bool?
        var timeoutMs: Int?
        var priority: String?
        var partial: Bool?

        enum CodingKeys: String, CodingKey {
            case items, dimensions, normalize, encodingFormat = "encoding_format", `return`, store
            case timeoutMs = "timeout_ms", priority, partial
        }
    }

    struct Response: Encodable {
        struct Model: Encodable {
            var id: String
            var revision: String
        }
        struct Modalities: Encodable {
            var text: EncodedVector?
            var image: EncodedVector?
            var audio: EncodedVector?
        }
        /// The towers' raw outputs (not in the shared space, never rotated): image 1280 (cover and frames
        /// averaged), audio 200 (3-second patches averaged); absent for a modality the item does not have.
        struct Features: Encodable {
            var image: [Float]?
            var audio: [Float]?
        }
        struct Failure: Encodable {
            var code: String
            var message: String
        }
        struct Item: Encodable {
            var id: String
            var embedding: EncodedVector?
            var modalities: Modalities?
            var features: Features?
            var modalitiesUsed: [String]?
            var semanticID: [Int]??
            var cached: Bool?
            var error: Failure?

            enum CodingKeys: String, CodingKey {
                case id, embedding, modalities, features, modalitiesUsed = "modalities_used", semanticID = "semantic_id", cached, error
            }

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(id, forKey: .id)
                try container.encodeIfPresent(embedding, forKey: .embedding)
                try container.encodeIfPresent(modalities, forKey: .modalities)
                try container.encodeIfPresent(features, forKey: .features)
                try container.encodeIfPresent(modalitiesUsed, forKey: .modalitiesUsed)
                // Asked for but no codebook loaded: an explicit null.
                if let semanticID { try container.encode(semanticID, forKey: .semanticID) }
                try container.encodeIfPresent(cached, forKey: .cached)
                try container.encodeIfPresent(error, forKey: .error)
            }
        }
        struct Usage: Encodable {
            var tokens: Int
            var images: Int
            var audioSeconds: Double
            /// Seconds of the videos given and frames decoded from them (computed items only).
            var videoSeconds: Double
            var framesDecoded: Int
            /// Ids of items whose text was cut to the model's maximum length.
            var truncated: [String]

            enum CodingKeys: String, CodingKey {
                case tokens, images, audioSeconds = "audio_seconds", videoSeconds = "video_seconds"
                case framesDecoded = "frames_decoded", truncated
            }
        }
        var model: Model
        var dimensions: Int
        var data: [Item]
        var usage: Usage
        /// The codebook of the semantic IDs and of the rotated space, when one is loaded.
        var codebookVersion: String?

        enum CodingKeys: String, CodingKey {
            case model, dimensions, data, usage, codebookVersion = "codebook_version"
        }
    }

    enum Returned: String, CaseIterable {
        case embedding, modalities, features, semanticID = "semantic_id"
    }

    func handle(_ request: HTTPRequest, quota: ItemQuota = ItemQuota()) async throws -> HTTPResponse {
        let body = try request.decodeJSON(Request.self)
        try limits.checkCount(body.items.count, of: "items", maximum: limits.maxItems)
        try quota.admit(body.items.count)
        let size = try dimensions.resolve(body.dimensions)
        let format = try EncodedVector.format(body.encodingFormat)
        var returned: Set<Returned> = [.embedding]
        if let names = body.return {
            returned = []
            for name in names {
                guard let value = Returned(rawValue: name) else {
                    throw HTTPError(.unprocessableContent, code: "invalid_return",
                                    message: "'return' may list \(Returned.allCases.map(\.rawValue)), got '\(name)'")
                }
                returned.insert(value)
            }
        }
        var options = try self.options(body, storeByDefault: true)
        options.features = returned.contains(.features)
        var seen = Set<String>()
        for (index, item) in body.items.enumerated() where !seen.insert(item.id).inserted {
            throw HTTPError(.unprocessableContent, code: "duplicate_id", message: "items[\(index)]: id '\(item.id)' appears twice")
        }

        // Items that fail their checks fail alone with `partial`, else the request.
        var failures: [Int: EmbeddingError] = [:]
        var inputs: [ItemInput] = []
        var positions: [Int] = []
        for (index, item) in body.items.enumerated() {
            do throws(EmbeddingError) {
                inputs.append(try item.input(at: index, limits: limits))
                positions.append(index)
            } catch {
                guard options.partial else { throw HTTPError(error) }
                failures[index] = error
            }
        }

        let outcome: EmbeddingPipeline.Outcome
        do {
            outcome = try await pipeline.embed(inputs, options: options)
        } catch {
            throw HTTPError(error)
        }
        var results = [Result<EmbeddedItem, EmbeddingError>?](repeating: nil, count: body.items.count)
        for (index, failure) in failures { results[index] = .failure(failure) }
        for (position, result) in zip(positions, outcome.items) { results[position] = result }

        // Codes come by default whenever there are codes to give.
        if body.return == nil, outcome.codebook != nil { returned.insert(.semanticID) }
        let normalize = body.normalize ?? true
        let served = servedVectors(results, codebook: outcome.codebook)
        let data = zip(body.items, results).map { item, result -> Response.Item in
            switch result! {
            case .failure(let error):
                return Response.Item(id: item.id, error: Response.Failure(code: error.code, message: error.message))
            case .success(var embedded):
                if let vectors = served[embedded.id] { (embedded.embedding, embedded.modalities) = vectors }
                func encoded(_ vector: [Float]?) -> EncodedVector? {
                    vector.map { EncodedVector(Matryoshka.prefix($0, dimensions: size, normalize: normalize), format: format) }
                }
                let modalities = embedded.modalities
                return Response.Item(
                    id: item.id,
                    embedding: returned.contains(.embedding) ? encoded(embedded.embedding) : nil,
                    modalities: returned.contains(.modalities)
                        ? Response.Modalities(text: encoded(modalities.text), image: encoded(modalities.image),
                                              audio: encoded(modalities.audio)) : nil,
                    features: returned.contains(.features)
                        ? Response.Features(image: embedded.features?.image, audio: embedded.features?.audio) : nil,
                    modalitiesUsed: modalities.present.map(\.rawValue),
                    semanticID: returned.contains(.semanticID) ? .some(embedded.semanticID) : nil,
                    cached: embedded.cached)
            }
        }
        let embedded = results.compactMap { try? $0?.get() }
        var response = HTTPResponse.json(Response(
            model: Response.Model(id: pipeline.model.id, revision: pipeline.model.revision), dimensions: size, data: data,
            usage: Response.Usage(tokens: embedded.map(\.tokens).reduce(0, +), images: embedded.map(\.images).reduce(0, +),
                                  audioSeconds: embedded.map(\.audioSeconds).reduce(0, +),
                                  videoSeconds: embedded.map(\.videoSeconds).reduce(0, +),
                                  framesDecoded: embedded.map(\.framesDecoded).reduce(0, +),
                                  truncated: embedded.filter(\.truncated).map(\.id)),
            codebookVersion: outcome.codebook?.version))
        response.addTiming(outcome.timing)
        return response
    }

    /// The fused and per-modality vectors in the space served: the codebook's rotated space when one is loaded
    /// and `rotate` (Matryoshka prefixes are then the leading principal components), else as the model gives them.
    /// Every vector handed out is in the one space, so any two of them compare.
    func servedVectors(_ results: [Result<EmbeddedItem, EmbeddingError>?],
                       codebook: SemanticCodebook?) -> [String: ([Float], Modalities)] {
        guard rotate, let codebook else { return [:] }
        let items = results.compactMap { try? $0?.get() }
        guard !items.isEmpty else { return [:] }
        // Every item's fused vector, then every present modality vector, rotated in one product.
        var vectors = items.flatMap(\.embedding)
        var owners: [(item: Int, modality: Modality)] = []
        for (position, item) in items.enumerated() {
            for modality in item.modalities.present {
                vectors += item.modalities[modality]!
                owners.append((position, modality))
            }
        }
        let d = codebook.dimensions
        let rotated = codebook.rotate(vectors, count: items.count + owners.count)
        func row(_ index: Int) -> [Float] { Array(rotated[index * d..<(index + 1) * d]) }
        var served = items.indices.map { (row($0), Modalities()) }
        for (offset, owner) in owners.enumerated() { served[owner.item].1[owner.modality] = row(items.count + offset) }
        return Dictionary(uniqueKeysWithValues: zip(items.map(\.id), served))
    }

    /// Priority, deadline, store and partial from a request.
    func options(_ body: Request, storeByDefault: Bool) throws(HTTPError) -> EmbeddingPipeline.Options {
        let priority: Priority
        switch body.priority {
        case nil: priority = .online
        case let name?:
            guard let value = Priority(rawValue: name) else {
                throw HTTPError(.unprocessableContent, code: "invalid_priority",
                                message: "'priority' must be one of \(Priority.allCases.map(\.rawValue)), got '\(name)'")
            }
            priority = value
        }
        var timeout = settings.defaultTimeout
        if let ms = body.timeoutMs {
            guard ms > 0, Duration.milliseconds(ms) <= settings.maxTimeout else {
                throw HTTPError(.unprocessableContent, code: "invalid_timeout",
                                message: "'timeout_ms' must be 1...\(settings.maxTimeout.components.seconds * 1000), got \(ms)")
            }
            timeout = .milliseconds(ms)
        }
        return EmbeddingPipeline.Options(priority: priority, deadline: .now + timeout,
                                         store: pipeline.store != nil && (body.store ?? storeByDefault),
                                         partial: body.partial ?? false)
    }
}
