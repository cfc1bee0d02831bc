import Foundation
import Tensor

/// A text model ready to serve: the tokenizer and the encoder of one model directory.
public final class TextEmbedder: Sendable {
    /// The model's name: its directory's.
    public let name: String
    public let tokenizer: WordPieceTokenizer
    public let encoder: BertEncoder

    /// Loads `tokenizer.json`, `config.json` and `model.safetensors` from `directory`; a batch is split over
    /// `threads` (see `BertEncoder.threads`), its dense layers in `precision`.
    public init(directory: URL, maxTokens: Int, threads: Int = 1, precision: Precision = .fp32) throws {
        name = directory.lastPathComponent
        tokenizer = try WordPieceTokenizer(contentsOf: directory.appendingPathComponent("tokenizer.json"), maxLength: maxTokens)
        encoder = try BertEncoder(directory: directory, threads: threads, precision: precision)
    }

    public struct Result: Sendable {
        public var embeddings: [[Float]]
        /// Tokens encoded, special tokens included.
        public var tokens: Int
        /// Indices of the texts cut to the model's maximum length.
        public var truncated: [Int]
    }

    /// Embeddings of `texts` in order, as one encoder batch.
    public func embed(_ texts: [String]) -> Result {
        let encodings = texts.map(tokenizer.encoding)
        return Result(embeddings: encoder.embed(encodings.map(\.ids)),
                      tokens: encodings.map(\.ids.count).reduce(0, +),
                      truncated: encodings.indices.filter { encodings[$0].truncated })
    }
}
