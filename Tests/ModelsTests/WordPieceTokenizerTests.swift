import Foundation
import Testing
@testable import Models

/// The model cache that `scripts/fetch-models` fills (the test command runs it first).
let modelDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../models/all-MiniLM-L6-v2").standardizedFileURL

/// The class names in `config/labels/<file>`, and ConSE over them with the text tower.
func sharedSpace(labels file: String) throws -> (text: TextEmbedder, labels: [String], space: ConvexSemanticEmbedding) {
    let text = try TextEmbedder(directory: modelDirectory, maxTokens: 256)
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../config/labels/\(file)").standardized
    let labels = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map(String.init)
    return (text, labels, ConvexSemanticEmbedding(labels: labels, text: text))
}

struct TokenizerFixture: Decodable {
    var text: String
    var ids: [Int32]
}

func loadTokenizerFixtures() throws -> [TokenizerFixture] {
    let url = try #require(Bundle.module.url(forResource: "Fixtures/tokenizer-minilm", withExtension: "jsonl"))
    let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n")
    return try lines.map { try JSONDecoder().decode(TokenizerFixture.self, from: Data($0.utf8)) }
}

func loadMiniLMTokenizer() throws -> WordPieceTokenizer {
    let file = modelDirectory.appendingPathComponent("tokenizer.json")
    try #require(FileManager.default.fileExists(atPath: file.path), "model cache missing: run scripts/fetch-models")
    return try WordPieceTokenizer(contentsOf: file, maxLength: 256)
}

/// Scalars that count how many were read.
final class CountingScalars: Sequence, @unchecked Sendable {
    let scalars: [Unicode.Scalar]
    var read = 0
    init(_ text: String) { scalars = Array(text.unicodeScalars) }
    func makeIterator() -> AnyIterator<Unicode.Scalar> {
        var index = 0
        return AnyIterator { [self] in
            guard index < scalars.count else { return nil }
            defer { index += 1 }
            read += 1
            return scalars[index]
        }
    }
}

@Suite struct WordPieceTokenizerTests {
    /// The text is read in chunks, and only as far as the pieces kept need: a megabyte of words costs what
    /// its first few hundred do.
    @Test func tokenizingStopsReadingAtTheTokenLimit() throws {
        let tokenizer = try loadMiniLMTokenizer()
        for unit in ["word ", "a.b,", "naïve 東京 ", "x"] {
            let text = CountingScalars(String(repeating: unit, count: 1_000_000 / unit.count))
            let encoding = tokenizer.encoding(scalars: text)
            #expect(encoding.ids.count == 256 && encoding.truncated || unit == "x", "\(unit)")
            // One unbroken run ("xxx…") is one word whatever its length: only it may be read whole.
            if unit != "x" { #expect(text.read <= 3 * WordPieceTokenizer.chunkScalars, "\(unit): read \(text.read)") }
        }
    }

    /// Cutting the text into chunks changes no piece: fixture texts joined by spaces (so chunks end at every
    /// kind of place) give the pieces of each text in turn.
    @Test func chunkedTokenizationEqualsWholeTexts() throws {
        let unlimited = try WordPieceTokenizer(contentsOf: modelDirectory.appendingPathComponent("tokenizer.json"), maxLength: 1 << 30)
        let fixtures = try loadTokenizerFixtures()
        for start in stride(from: 0, to: fixtures.count, by: 150) {
            let group = fixtures[start..<min(start + 150, fixtures.count)].map(\.text)
            let joined = unlimited.encoding(group.joined(separator: " ")).ids
            let separate: [Int32] = [101] + group.flatMap { Array(unlimited.encoding($0).ids.dropFirst().dropLast()) } + [102]
            #expect(joined == separate, "fixtures \(start)...")
        }
    }
    @Test func idsMatchHuggingFaceTokenizersOnTheFixtureCorpus() throws {
        let tokenizer = try loadMiniLMTokenizer()
        let fixtures = try loadTokenizerFixtures()
        #expect(fixtures.count >= 2000)
        var mismatches: [String] = []
        for fixture in fixtures {
            let ids = tokenizer.encode(fixture.text)
            if ids != fixture.ids {
                let shown = fixture.text.unicodeScalars.map { $0.value < 0x80 && $0.value >= 0x20 ? String($0) : "\\u{\(String($0.value, radix: 16))}" }.joined()
                mismatches.append("\(shown.prefix(120)): got \(ids.prefix(24)) expected \(fixture.ids.prefix(24))")
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(fixtures.count) differ:\n\(mismatches.prefix(15).joined(separator: "\n"))")
    }

    @Test func truncationKeepsSeparatorAndIsReported() throws {
        let tokenizer = try loadMiniLMTokenizer()
        let long = tokenizer.encoding(String(repeating: "the ", count: 400))
        #expect(long.ids.count == 256)
        #expect(long.ids.first == tokenizer.classifierID)
        #expect(long.ids.last == tokenizer.separatorID)
        #expect(long.truncated)
        // Exactly at the limit (254 pieces): nothing is cut; one more piece is.
        #expect(tokenizer.encoding(String(repeating: "the ", count: 254)) == .init(
            ids: [tokenizer.classifierID] + Array(repeating: 1996, count: 254) + [tokenizer.separatorID], truncated: false))
        #expect(tokenizer.encoding(String(repeating: "the ", count: 255)).truncated)
    }

    @Test func specialTokenLiteralsAreTheirIDs() throws {
        let tokenizer = try loadMiniLMTokenizer()
        let mask = try #require(tokenizer.tokens.firstIndex(of: "[MASK]"))
        #expect(tokenizer.encode("a [MASK] b") == [tokenizer.classifierID, 1037, Int32(mask), 1038, tokenizer.separatorID])
    }

    @Test func malformedTokenizerFileNamesTheFile() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("broken-tokenizer-\(UUID()).json")
        try Data("{\"model\": {\"type\": \"BPE\"}}".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        #expect {
            _ = try WordPieceTokenizer(contentsOf: file, maxLength: 256)
        } throws: { error in
            (error as? ModelLoadingError)?.file == file.path
        }
    }
}
