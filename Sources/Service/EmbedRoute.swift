import Foundation
import HTTP
import Media
import Models
import Synchronization

/// `POST /embed` until the batched pipeline exists: items with any of text, images (base64 JPEG/PNG; the first
/// is the cover, the rest frames, features averaged) and audio (base64 WAV); each present modality lands in the
/// text space (images and audio through ConSE) and the item's embedding is their normalised mean. `"return"` adds
/// `"modalities"` (the per-modality vectors) and `"features"` (the raw tower outputs: image 1280, audio 200).
final class EmbedRoute: Sendable {
    let towers: Towers
    let limits: ServiceConfiguration.RequestLimits
    /// One tower call at a time: each splits its work over every core. (Dynamic batching replaces this.)
    private let turn = Mutex(())

    init(towers: Towers, limits: ServiceConfiguration.RequestLimits) {
        self.towers = towers
        self.limits = limits
    }

    struct Request: Decodable {
        struct Media: Decodable {
            var data: String
        }
        struct Item: Decodable {
            var id: String
            var text: String?
            var images: [Media]?
            var audio: Media?
        }
        var items: [Item]
        var `return`: [String]?
    }

    struct Response: Encodable {
        struct Modalities: Encodable {
            var text: [Float]?
            var image: [Float]?
            var audio: [Float]?
        }
        struct Features: Encodable {
            var image: [Float]?
            var audio: [Float]?
        }
        struct Item: Encodable {
            var id: String
            var embedding: [Float]?
            var modalities: Modalities?
            var features: Features?
            var modalitiesUsed: [String]

            enum CodingKeys: String, CodingKey {
                case id, embedding, modalities, features, modalitiesUsed = "modalities_used"
            }
        }
        struct Usage: Encodable {
            var tokens: Int
            /// Ids of items whose text was cut to the model's maximum length.
            var truncated: [String]
            var images: Int
            var audioSeconds: Double

            enum CodingKeys: String, CodingKey {
                case tokens, truncated, images, audioSeconds = "audio_seconds"
            }
        }
        var model: String
        var dimensions: Int
        var data: [Item]
        var usage: Usage
    }

    static let returnable: Set<String> = ["embedding", "modalities", "features"]

    /// An item's decoded inputs.
    struct Inputs {
        var text: String?
        var images: [[Float]] = []
        var audio: [[Float]] = []
        var audioSeconds = 0.0
    }

    func handle(_ request: HTTPRequest) throws -> HTTPResponse {
        let body = try request.decodeJSON(Request.self)
        try limits.checkCount(body.items.count, of: "items")
        let returned = Set(body.return ?? ["embedding"])
        guard returned.isSubset(of: Self.returnable), !returned.isEmpty else {
            throw HTTPError(.unprocessableContent, code: "invalid_return",
                            message: "'return' may list \(Self.returnable.sorted()), got \(body.return ?? [])")
        }
        let inputs = try body.items.enumerated().map { index, item in try decode(item, at: index) }

        let output = turn.withLock { _ in run(inputs) }
        let data = body.items.indices.map { index in
            let vectors = output.modalities[index]
            let present = [("text", vectors.text), ("image", vectors.image), ("audio", vectors.audio)]
                .compactMap { name, vector in vector.map { (name, $0) } }
            var fused = [Float](repeating: 0, count: towers.text.encoder.configuration.hiddenSize)
            for (_, vector) in present { for j in fused.indices { fused[j] += vector[j] } }
            let norm = fused.map { $0 * $0 }.reduce(0, +).squareRoot()
            return Response.Item(
                id: body.items[index].id,
                embedding: returned.contains("embedding") ? fused.map { $0 / max(norm, 1e-12) } : nil,
                modalities: returned.contains("modalities") ? vectors : nil,
                features: returned.contains("features") ? output.features[index] : nil,
                modalitiesUsed: present.map(\.0))
        }
        return .json(Response(
            model: towers.text.name, dimensions: towers.text.encoder.configuration.hiddenSize, data: data,
            usage: Response.Usage(tokens: output.tokens, truncated: output.truncated.map { body.items[$0].id },
                                  images: inputs.map(\.images.count).reduce(0, +),
                                  audioSeconds: inputs.map(\.audioSeconds).reduce(0, +))))
    }

    /// Checks and decodes one item: 422 naming it for no modality, bad base64 or a corrupt file; 413 over a limit.
    private func decode(_ item: Request.Item, at index: Int) throws -> Inputs {
        let label = "items[\(index)] (\(item.id))"
        guard !item.id.isEmpty else {
            throw HTTPError(.unprocessableContent, code: "invalid_item", message: "items[\(index)]: 'id' is empty")
        }
        if let text = item.text { try limits.checkText(text, at: label) }
        let images = item.images ?? []
        guard item.text != nil || !images.isEmpty || item.audio != nil else {
            throw HTTPError(.unprocessableContent, code: "no_modality", message: "\(label): no text, images or audio")
        }
        guard images.count <= limits.maxImagesPerItem else {
            throw HTTPError(.payloadTooLarge, code: "too_many_images",
                            message: "\(label): \(images.count) images; at most \(limits.maxImagesPerItem) per item")
        }
        func bytes(_ media: Request.Media, _ what: String) throws -> [UInt8] {
            guard let data = Data(base64Encoded: media.data) else {
                throw HTTPError(.unprocessableContent, code: "invalid_base64", message: "\(label): \(what) is not valid base64")
            }
            return [UInt8](data)
        }
        func refuse(_ error: MediaError, _ what: String) -> HTTPError {
            switch error {
            case .tooLarge(let message): HTTPError(.payloadTooLarge, code: "media_too_large", message: "\(label): \(what): \(message)")
            case .unsupportedFormat(let message): HTTPError(.unprocessableContent, code: "unsupported_media", message: "\(label): \(what): \(message)")
            case .corrupt(let message): HTTPError(.unprocessableContent, code: "corrupt_media", message: "\(label): \(what): \(message)")
            }
        }
        var inputs = Inputs(text: item.text)
        for (position, image) in images.enumerated() {
            let what = "images[\(position)]"
            do { inputs.images.append(try towers.imageInput(try bytes(image, what))) } catch let error as MediaError {
                throw refuse(error, what)
            }
        }
        if let audio = item.audio {
            do {
                (inputs.audio, inputs.audioSeconds) = try towers.audioInput(try bytes(audio, "audio"))
            } catch let error as MediaError {
                throw refuse(error, "audio")
            }
        }
        return inputs
    }

    struct Output {
        var modalities: [Response.Modalities]
        var features: [Response.Features]
        var tokens: Int
        var truncated: [Int]
    }

    /// Every tower once over all items of the request.
    private func run(_ inputs: [Inputs]) -> Output {
        let texts = inputs.indices.filter { inputs[$0].text != nil }
        let text = towers.text.embed(texts.map { inputs[$0].text! })
        let images = towers.image.run(inputs.flatMap(\.images))
        let audio = towers.audio.run(inputs.flatMap(\.audio))
        func mean(_ vectors: ArraySlice<[Float]>) -> [Float]? {
            guard let first = vectors.first else { return nil }
            var sum = [Float](repeating: 0, count: first.count)
            for vector in vectors { for j in sum.indices { sum[j] += vector[j] } }
            return sum.map { $0 / Float(vectors.count) }
        }
        var output = Output(modalities: [], features: [], tokens: text.tokens, truncated: text.truncated.map { texts[$0] })
        var (imageAt, audioAt) = (0, 0)
        for (index, item) in inputs.enumerated() {
            let imageRange = imageAt..<(imageAt + item.images.count)
            let audioRange = audioAt..<(audioAt + item.audio.count)
            (imageAt, audioAt) = (imageRange.upperBound, audioRange.upperBound)
            // Frames and patches: probabilities averaged before ConSE, features averaged as they are.
            let imageProbabilities = mean(images.logits[imageRange].map(ConvexSemanticEmbedding.softmax)[...])
            let tagProbabilities = mean(audio.tags[audioRange])
            output.modalities.append(Response.Modalities(
                text: texts.firstIndex(of: index).map { text.embeddings[$0] },
                image: imageProbabilities.map { towers.imageSpace.embed(probabilities: $0) },
                audio: tagProbabilities.map { towers.audioSpace.embed(probabilities: $0) }))
            output.features.append(Response.Features(image: mean(images.features[imageRange]),
                                                     audio: mean(audio.features[audioRange])))
        }
        return output
    }
}
