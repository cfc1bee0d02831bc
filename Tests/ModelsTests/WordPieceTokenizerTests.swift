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

@Suite struct WordPieceTokenizerTests {
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
