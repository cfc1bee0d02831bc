import Embedding
import Foundation

/// An item as JSON, in `/embed` requests and in `omniembed embed`'s input lines:
/// `{"id", "text", "fields": {"title", "ocr", "asr", "author", "tags"}, "images": [{"data"}], "audio": {"data"}}`,
/// media as base64.
public struct ItemPayload: Decodable, Sendable, IdentifiedItem {
    public struct Media: Decodable, Sendable {
        public var data: String
    }
    public struct Fields: Decodable, Sendable {
        public var title, ocr, asr, author: String?
        public var tags: [String]?
    }
    public var id: String
    public var text: String?
    public var fields: Fields?
    public var images: [Media]?
    public var audio: Media?

    /// The checked, base64-decoded pipeline input; `index` names the item in messages (`items[3] (v42)`).
    public func input(at index: Int, limits: ServiceConfiguration.RequestLimits) throws(EmbeddingError) -> ItemInput {
        let label = "items[\(index)] (\(id))"
        try ItemID.check(id, field: "items[\(index)].id", maxBytes: limits.maxIdBytes)
        let fields = ItemFields(title: fields?.title, ocr: fields?.ocr, asr: fields?.asr, author: fields?.author,
                                tags: fields?.tags)
        let composed = ItemInput.composeText(text, fields)
        if let text = composed, text.utf8.count > limits.maxTextBytes {
            throw .tooLarge("text_too_long", "\(label): text and fields are \(text.utf8.count) bytes; at most \(limits.maxTextBytes)")
        }
        let images = images ?? []
        guard composed != nil || !images.isEmpty || audio != nil else {
            throw .invalid("no_modality", "\(label): no text, fields, images or audio")
        }
        guard images.count <= limits.maxImagesPerItem else {
            throw .tooLarge("too_many_images", "\(label): \(images.count) images; at most \(limits.maxImagesPerItem) per item")
        }
        func bytes(_ media: Media, _ what: String, limit: Int) throws(EmbeddingError) -> [UInt8] {
            // Checked on the base64 length, before decoding: 4 characters carry 3 bytes.
            guard media.data.utf8.count / 4 * 3 <= limit + 3 else {
                throw .tooLarge("media_too_large", "\(label): \(what) is over \(limit) bytes")
            }
            guard let data = Data(base64Encoded: media.data), !data.isEmpty else {
                throw .invalid("invalid_base64", "\(label): \(what) is not valid base64")
            }
            guard data.count <= limit else { throw .tooLarge("media_too_large", "\(label): \(what) is over \(limit) bytes") }
            return [UInt8](data)
        }
        var decodedImages: [[UInt8]] = []
        for (position, image) in images.enumerated() {
            decodedImages.append(try bytes(image, "images[\(position)]", limit: limits.maxImageBytes))
        }
        let audio = try audio.map { media throws(EmbeddingError) in try bytes(media, "audio", limit: limits.maxAudioBytes) }
        return ItemInput(id: id, label: label, text: composed, images: decodedImages, audio: audio)
    }
}
