import Foundation

/// The modalities an item may have, in the order they are reported.
public enum Modality: String, Sendable, CaseIterable, Codable {
    case text, image, audio
}

/// One vector per present modality, each in the shared (text) space and unit length.
public struct Modalities: Sendable, Equatable {
    public var text: [Float]?
    public var image: [Float]?
    public var audio: [Float]?

    public init(text: [Float]? = nil, image: [Float]? = nil, audio: [Float]? = nil) {
        self.text = text
        self.image = image
        self.audio = audio
    }

    public subscript(modality: Modality) -> [Float]? {
        get {
            switch modality {
            case .text: text
            case .image: image
            case .audio: audio
            }
        }
        set {
            switch modality {
            case .text: text = newValue
            case .image: image = newValue
            case .audio: audio = newValue
            }
        }
    }

    /// The modalities present, in `Modality` order.
    public var present: [Modality] { Modality.allCases.filter { self[$0] != nil } }
}

/// An item's structured text fields.
public struct ItemFields: Sendable, Equatable {
    public var title: String?
    public var ocr: String?
    public var asr: String?
    public var author: String?
    public var tags: [String]?

    public init(title: String? = nil, ocr: String? = nil, asr: String? = nil, author: String? = nil, tags: [String]? = nil) {
        self.title = title
        self.ocr = ocr
        self.asr = asr
        self.author = author
        self.tags = tags
    }
}

/// An item as a request gives it: text, encoded images (the cover first, then frames), an encoded recording (WAV,
/// or MP3, AAC, Ogg Vorbis/Opus, FLAC) and an encoded video (MP4, MOV, WebM).
public struct ItemInput: Sendable {
    public var id: String
    /// How messages name the item (`items[3] (v42)`).
    public var label: String
    /// The text the text tower reads: see `composeText`.
    public var text: String?
    public var images: [[UInt8]]
    public var audio: [UInt8]?
    public var video: Video?
    /// SHA-256 of the text, images, audio and video (with its frame count): an unchanged item is answered from the
    /// store.
    public var contentHash: String

    /// A video and how many frames to sample from it besides the cover.
    public struct Video: Sendable {
        public var data: [UInt8]
        public var frames: Int

        public init(data: [UInt8], frames: Int = 5) {
            self.data = data
            self.frames = frames
        }
    }

    public init(id: String, label: String? = nil, text: String? = nil, fields: ItemFields = ItemFields(),
                images: [[UInt8]] = [], audio: [UInt8]? = nil, video: Video? = nil) {
        self.id = id
        self.label = label ?? id
        self.text = Self.composeText(text, fields)
        self.images = images
        self.audio = audio
        self.video = video
        var parts: [(tag: UInt8, bytes: [UInt8])] = [(0, Array((self.text ?? "").utf8))]
        parts += images.map { (1, $0) }
        if let audio { parts.append((2, audio)) }
        if let video { parts += [(3, video.data), (4, Array("frames=\(video.frames)".utf8))] }
        contentHash = ContentHash.sha256(parts)
    }

    /// Between fields: a punctuation token the tokenizer keeps, so that the end of one field and the start of
    /// the next never read as one phrase.
    public static let fieldSeparator = " | "

    /// `text`, then the fields in the fixed order title, OCR, ASR, author, tags (joined by ", "), separated by
    /// `fieldSeparator`; absent and blank parts are left out, never filled in. `nil` when nothing is left.
    public static func composeText(_ text: String?, _ fields: ItemFields) -> String? {
        let tags = fields.tags.map { $0.map(trimmed).filter { !$0.isEmpty }.joined(separator: ", ") }
        let parts = [text, fields.title, fields.ocr, fields.asr, fields.author, tags]
            .compactMap { $0.map(trimmed) }
            .filter { !$0.isEmpty }
        return parts.isEmpty ? nil : parts.joined(separator: fieldSeparator)
    }

    private static func trimmed(_ string: String) -> String {
        string.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// An item's embedding: the fused vector, the per-modality vectors and what it cost.
public struct EmbeddedItem: Sendable, Equatable {
    public var id: String
    public var contentHash: String
    /// The fused vector at full size, unit length.
    public var embedding: [Float]
    public var modalities: Modalities
    /// Answered from the store, not encoded.
    public var cached: Bool
    /// Text tokens encoded (special tokens included); 0 when cached.
    public var tokens: Int
    /// The text was cut to the model's maximum length.
    public var truncated: Bool
    public var images: Int
    public var audioSeconds: Double
    /// Seconds of the video given and frames decoded from it (0 when cached).
    public var videoSeconds: Double = 0
    public var framesDecoded: Int = 0
    /// The codes of the codebook in use (`Outcome.codebook`), `nil` without one.
    public var semanticID: [Int]? = nil
    /// The towers' raw outputs (computed items only: the store does not keep them).
    public var features: TowerFeatures? = nil
}

/// The image and audio towers' raw outputs for an item, before ConSE: the image tower's 1280 features averaged over
/// the cover and frames, the audio tower's 200 averaged over the 3-second patches.
public struct TowerFeatures: Sendable, Equatable {
    public var image: [Float]?
    public var audio: [Float]?
}
