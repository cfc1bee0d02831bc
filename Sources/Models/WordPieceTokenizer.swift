import Foundation

/// A failure to load a model file, naming the file.
public struct ModelLoadingError: Error, CustomStringConvertible {
    public let file: String
    public let reason: String
    public var description: String { "\(file): \(reason)" }

    public init(file: String, reason: String) {
        self.file = file
        self.reason = reason
    }
}

/// BERT's tokenizer, as Hugging Face `tokenizers` runs it from a `tokenizer.json`: added (special) tokens split out
/// of the raw text, the BERT normalizer, the BERT pre-tokenizer, greedy longest-match WordPiece, then
/// `[CLS] … [SEP]` with truncation that keeps `[SEP]`.
public struct WordPieceTokenizer: Sendable {
    /// The normalizer's settings, from `tokenizer.json`.
    public struct Normalization: Sendable, Equatable {
        public var cleanText = true
        public var handleChineseCharacters = true
        public var stripAccents = true
        public var lowercase = true
    }

    public let normalization: Normalization
    /// Longest output, special tokens included.
    public let maxLength: Int
    public let maxInputCharactersPerWord: Int
    public let continuingPrefix: String
    public let classifierID: Int32
    public let separatorID: Int32
    public let unknownID: Int32
    /// Token text by id.
    public let tokens: [String]

    /// Keyed by UTF-8 bytes: `String` equality is canonical equivalence, and the reference compares bytes.
    private let vocabulary: [[UInt8]: Int32]
    /// Tokens matched verbatim in the raw text before normalization, longest first.
    private let addedTokens: [(scalars: [Unicode.Scalar], id: Int32)]
    /// Every scalar of an added token: the text is never cut after one (see `isChunkBoundary`).
    private let addedTokenScalars: Set<Unicode.Scalar>

    /// Loads `tokenizer.json` (a BERT WordPiece tokenizer).
    public init(contentsOf url: URL, maxLength: Int) throws {
        let file = url.path
        func fail(_ reason: String) -> ModelLoadingError { ModelLoadingError(file: file, reason: reason) }
        let document: TokenizerDocument
        do {
            document = try JSONDecoder().decode(TokenizerDocument.self, from: Data(contentsOf: url))
        } catch {
            throw fail("not a readable tokenizer.json: \(error)")
        }
        guard document.model.type == "WordPiece" else { throw fail("model type \(document.model.type) is not WordPiece") }
        if let normalizer = document.normalizer {
            guard normalizer.type == "BertNormalizer" else { throw fail("normalizer \(normalizer.type) is not supported") }
            normalization = Normalization(
                cleanText: normalizer.clean_text ?? true,
                handleChineseCharacters: normalizer.handle_chinese_chars ?? true,
                stripAccents: normalizer.strip_accents ?? normalizer.lowercase ?? true,
                lowercase: normalizer.lowercase ?? true)
        } else {
            normalization = Normalization(cleanText: false, handleChineseCharacters: false, stripAccents: false, lowercase: false)
        }
        if let pre = document.pre_tokenizer, pre.type != "BertPreTokenizer" {
            throw fail("pre-tokenizer \(pre.type) is not supported")
        }

        var tokens = [String](repeating: "", count: document.model.vocab.count)
        var vocabulary: [[UInt8]: Int32] = [:]
        vocabulary.reserveCapacity(document.model.vocab.count)
        for (token, id) in document.model.vocab {
            guard tokens.indices.contains(id) else { throw fail("token id \(id) outside the vocabulary") }
            tokens[id] = token
            vocabulary[Array(token.utf8)] = Int32(id)
        }
        func id(_ token: String) throws -> Int32 {
            guard let id = vocabulary[Array(token.utf8)] else { throw fail("vocabulary lacks \(token)") }
            return id
        }
        self.tokens = tokens
        self.vocabulary = vocabulary
        self.unknownID = try id(document.model.unk_token)
        self.classifierID = try id("[CLS]")
        self.separatorID = try id("[SEP]")
        self.continuingPrefix = document.model.continuing_subword_prefix ?? "##"
        self.maxInputCharactersPerWord = document.model.max_input_chars_per_word ?? 100
        self.addedTokens = document.added_tokens
            .map { (scalars: Array($0.content.unicodeScalars), id: Int32($0.id)) }
            .sorted { $0.scalars.count > $1.scalars.count }
        self.addedTokenScalars = Set(addedTokens.flatMap(\.scalars))
        guard maxLength >= 2 else { throw fail("maximum length \(maxLength) leaves no room for [CLS] and [SEP]") }
        self.maxLength = maxLength
    }

    /// The ids of a text and whether pieces were cut off to fit `maxLength`.
    public struct Encoding: Sendable, Equatable {
        public var ids: [Int32]
        public var truncated: Bool
    }

    /// `[CLS]`, at most `maxLength - 2` pieces, `[SEP]`; one pass, stopping at the first piece that does not fit.
    public func encoding(_ text: String) -> Encoding {
        encoding(scalars: text.unicodeScalars)
    }

    /// `encoding(_:)` of a text given as scalars, read only as far as the pieces kept need.
    func encoding<Scalars: Sequence<Unicode.Scalar>>(scalars: Scalars) -> Encoding {
        var ids: [Int32] = [classifierID]
        var truncated = false
        let limit = maxLength - 1
        forEachPiece(of: scalars) { id in
            guard ids.count < limit else {
                truncated = true
                return false
            }
            ids.append(id)
            return true
        }
        ids.append(separatorID)
        return Encoding(ids: ids, truncated: truncated)
    }

    /// Token ids for `text` (see `encoding`).
    public func encode(_ text: String) -> [Int32] {
        encoding(text).ids
    }

    /// Calls `body` with each piece id in order until it returns false. The text is read in chunks of a few
    /// thousand scalars cut where cutting changes nothing (see `isChunkBoundary`), so the work stops soon after
    /// the last piece wanted, however long the text.
    private func forEachPiece<Scalars: Sequence<Unicode.Scalar>>(of text: Scalars, _ body: (Int32) -> Bool) {
        var chunk: [Unicode.Scalar] = []
        chunk.reserveCapacity(Self.chunkScalars + 64)
        var previous: Unicode.Scalar?
        for scalar in text {
            if chunk.count >= Self.chunkScalars, let previous, isChunkBoundary(previous, scalar) {
                guard forEachPiece(inChunk: chunk, body) else { return }
                chunk.removeAll(keepingCapacity: true)
            }
            chunk.append(scalar)
            previous = scalar
        }
        _ = forEachPiece(inChunk: chunk, body)
    }

    static let chunkScalars = 2048

    /// Whether the text may be cut between `before` and `after` without changing its pieces: after an ASCII space,
    /// tab or line break, or after ASCII punctuation, followed by an ASCII character, where no added token contains
    /// the first.
    /// The normalizer maps each of these alone (no canonical reordering crosses an ASCII character, and
    /// lowercasing is per scalar), they end words, and no added-token match can span them.
    private func isChunkBoundary(_ before: Unicode.Scalar, _ after: Unicode.Scalar) -> Bool {
        guard before.isASCII, after.isASCII, !addedTokenScalars.contains(before) else { return false }
        switch before {
        case " ", "\t", "\n", "\r": return true
        default: return BertNormalizer.isPunctuation(before)
        }
    }

    /// `forEachPiece` over one chunk; false when `body` stopped.
    private func forEachPiece(inChunk scalars: [Unicode.Scalar], _ body: (Int32) -> Bool) -> Bool {
        var segmentStart = 0
        var index = 0
        while index < scalars.count {
            if let added = addedTokens.first(where: { matches($0.scalars, in: scalars, at: index) }) {
                guard pieces(of: scalars[segmentStart..<index], body), body(added.id) else { return false }
                index += added.scalars.count
                segmentStart = index
            } else {
                index += 1
            }
        }
        return pieces(of: scalars[segmentStart..<scalars.count], body)
    }

    private func matches(_ token: [Unicode.Scalar], in text: [Unicode.Scalar], at index: Int) -> Bool {
        guard index + token.count <= text.count else { return false }
        for offset in 0..<token.count where text[index + offset] != token[offset] { return false }
        return true
    }

    /// Normalizes, pre-tokenizes and WordPiece-splits a segment free of added tokens.
    private func pieces(of segment: ArraySlice<Unicode.Scalar>, _ body: (Int32) -> Bool) -> Bool {
        guard !segment.isEmpty else { return true }
        var word: [Unicode.Scalar] = []
        for scalar in BertNormalizer.normalize(segment, normalization) {
            if scalar.properties.isWhitespace {
                if !word.isEmpty, !wordPieces(word, body) { return false }
                word.removeAll(keepingCapacity: true)
            } else if BertNormalizer.isPunctuation(scalar) {
                if !word.isEmpty, !wordPieces(word, body) { return false }
                word.removeAll(keepingCapacity: true)
                if !wordPieces([scalar], body) { return false }
            } else {
                word.append(scalar)
            }
        }
        return word.isEmpty || wordPieces(word, body)
    }

    /// Greedy longest-match-first; a word with an unmatched remainder, or longer than the limit, is one `[UNK]`.
    private func wordPieces(_ word: [Unicode.Scalar], _ body: (Int32) -> Bool) -> Bool {
        guard word.count <= maxInputCharactersPerWord else { return body(unknownID) }
        var found: [Int32] = []
        var start = 0
        let prefix = Array(continuingPrefix.utf8)
        var candidate: [UInt8] = []
        while start < word.count {
            var end = word.count
            var match: Int32?
            while start < end {
                candidate.removeAll(keepingCapacity: true)
                if start > 0 { candidate += prefix }
                for scalar in word[start..<end] { candidate += String(scalar).utf8 }
                if let id = vocabulary[candidate] {
                    match = id
                    break
                }
                end -= 1
            }
            guard let match else { return body(unknownID) }
            found.append(match)
            start = end
        }
        for id in found where !body(id) { return false }
        return true
    }
}

/// The BERT normalizer of `tokenizers` (normalizers/bert.rs).
enum BertNormalizer {
    /// `tokenizers` classifies characters with the `unicode_categories` crate, whose tables are Unicode 8.0's:
    /// anything assigned later is unassigned (Cn) to it, so it is neither removed as a control character, nor
    /// split as punctuation, nor stripped as an accent. (Measured: of today's format characters it keeps exactly
    /// those added in Unicode 9 and later.)
    static let referenceUnicodeVersion = (major: 8, minor: 0)

    static func normalize(_ input: ArraySlice<Unicode.Scalar>, _ options: WordPieceTokenizer.Normalization) -> [Unicode.Scalar] {
        var cleaned = String.UnicodeScalarView()
        for scalar in input {
            if options.cleanText {
                if scalar.value == 0 || scalar.value == 0xFFFD || isControl(scalar) { continue }
                if isWhitespace(scalar) {
                    cleaned.append(" ")
                    continue
                }
            }
            if options.handleChineseCharacters && isChinese(scalar) {
                cleaned.append(" ")
                cleaned.append(scalar)
                cleaned.append(" ")
            } else {
                cleaned.append(scalar)
            }
        }
        var text = String(cleaned)
        if options.stripAccents { text = text.decomposedStringWithCanonicalMapping }
        var output: [Unicode.Scalar] = []
        output.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            if options.stripAccents && category(scalar) == .nonspacingMark { continue }
            if options.lowercase {
                output += scalar.properties.lowercaseMapping.unicodeScalars
            } else {
                output.append(scalar)
            }
        }
        return output
    }

    /// The general category as the reference's tables see it.
    static func category(_ scalar: Unicode.Scalar) -> Unicode.GeneralCategory {
        guard let age = scalar.properties.age,
              (age.major, age.minor) <= referenceUnicodeVersion
        else { return .unassigned }
        return scalar.properties.generalCategory
    }

    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        scalar == "\t" || scalar == "\n" || scalar == "\r" || scalar.properties.isWhitespace
    }

    /// Cc, Cf and Co, except tab, newline and carriage return (which count as whitespace). Unassigned characters
    /// are kept (the reference's `is_other` says so, but its table has no Cn entries) and become `[UNK]`.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == "\t" || scalar == "\n" || scalar == "\r" { return false }
        switch category(scalar) {
        case .control, .format, .privateUse: return true
        default: return false
        }
    }

    static func isChinese(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }

    /// ASCII punctuation (symbols such as `$` and `+` included) or a Unicode punctuation category.
    static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x21...0x2F, 0x3A...0x40, 0x5B...0x60, 0x7B...0x7E: return true
        default: break
        }
        switch category(scalar) {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
             .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }
}

/// The parts of `tokenizer.json` a WordPiece tokenizer needs.
private struct TokenizerDocument: Decodable {
    struct Model: Decodable {
        var type: String
        var vocab: [String: Int]
        var unk_token: String
        var continuing_subword_prefix: String?
        var max_input_chars_per_word: Int?
    }
    struct Normalizer: Decodable {
        var type: String
        var clean_text: Bool?
        var handle_chinese_chars: Bool?
        var strip_accents: Bool?
        var lowercase: Bool?
    }
    struct PreTokenizer: Decodable {
        var type: String
    }
    struct AddedToken: Decodable {
        var id: Int
        var content: String
    }
    var model: Model
    var normalizer: Normalizer?
    var pre_tokenizer: PreTokenizer?
    var added_tokens: [AddedToken]
}
