import Embedding
import Foundation

/// An item as JSON, in `/embed` requests and in `omniembed embed`'s input lines:
/// `{"id", "text", "fields": {"title", "ocr", "asr", "author", "tags"}, "images": [{"data"}], "audio": {"data"},
/// "video": {"data", "frames"}}`, media as base64.
public struct ItemPayload: Decodable, Sendable, IdentifiedItem {
    public struct Media: Decodable, Sendable {
        public var data: String
    }
    /// A video (MP4, MOV, WebM) and the frames to sample from it besides the cover (5 by default).
    public struct Video: Decodable, Sendable {
        public var data: String
        public var frames: Int?
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
    public var video: Video?

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
        guard composed != nil || !images.isEmpty || audio != nil || video != nil else {
            throw .invalid("no_modality", "\(label): no text, fields, images, audio or video")
        }
        guard images.count <= limits.maxImagesPerItem else {
            throw .tooLarge("too_many_images", "\(label): \(images.count) images; at most \(limits.maxImagesPerItem) per item")
        }
        let frames = video?.frames ?? 5
        guard frames >= 0 else { throw .invalid("invalid_frames", "\(label): video.frames is \(frames); 0 or more") }
        // The cover (a frame, unless the item gives images) and the sampled frames count as the item's images.
        if video != nil, frames > limits.maxImagesPerItem - images.count - (images.isEmpty ? 1 : 0) {
            throw .tooLarge("too_many_images", "\(label): \(images.count) images and \(frames) video frames\(images.isEmpty ? " and a cover" : ""); at most \(limits.maxImagesPerItem) per item")
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
        let video = try video.map { video throws(EmbeddingError) in
            ItemInput.Video(data: try bytes(Media(data: video.data), "video", limit: limits.maxVideoBytes), frames: frames)
        }
        return ItemInput(id: id, label: label, text: composed, images: decodedImages, audio: audio, video: video)
    }
}
