import Foundation
import Testing
@testable import Models

struct EmbeddingFixture: Decodable {
    var text: String
    var tokens: Int
    var embedding: [Float]
}

/// One encoder for the suite: loading copies the weights, so tests share it.
let sharedEncoder: BertEncoder? = try? BertEncoder(directory: modelDirectory)

@Suite struct BertEncoderTests {
    func fixtures() throws -> [EmbeddingFixture] {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/embeddings-minilm", withExtension: "jsonl"))
        return try String(contentsOf: url, encoding: .utf8).split(separator: "\n")
            .map { try JSONDecoder().decode(EmbeddingFixture.self, from: Data($0.utf8)) }
    }

    /// One thread, and a batch split over three (more than this machine has: the split must not change results).
    @Test(arguments: [1, 3]) func embeddingsMatchSentenceTransformers(threads: Int) throws {
        let encoder = try #require(sharedEncoder, "model cache missing: run scripts/fetch-models")
        let tokenizer = try loadMiniLMTokenizer()
        let fixtures = try fixtures()
        #expect(fixtures.count >= 300)
        #expect(fixtures.map(\.tokens).min()! <= 3 && fixtures.map(\.tokens).max()! > 256)
        var worstCosine: Float = 1, worstDifference: Float = 0
        for batch in stride(from: 0, to: fixtures.count, by: 32).map({ Array(fixtures[$0..<min($0 + 32, fixtures.count)]) }) {
            let embeddings = encoder.embed(batch.map { tokenizer.encode($0.text) }, threads: threads)
            for (fixture, embedding) in zip(batch, embeddings) {
                let cosine = zip(fixture.embedding, embedding).map(*).reduce(0, +)
                let difference = zip(fixture.embedding, embedding).map { abs($0 - $1) }.max()!
                worstCosine = min(worstCosine, cosine)
                worstDifference = max(worstDifference, difference)
            }
        }
        #expect(worstCosine >= 0.99999, "worst cosine \(worstCosine)")
        #expect(worstDifference <= 1e-4, "worst component difference \(worstDifference)")
        print("encoder (\(threads) threads) vs sentence-transformers on \(fixtures.count) texts: worst cosine \(worstCosine), worst |diff| \(worstDifference)")
    }

    @Test(arguments: [1, 3]) func embeddingDoesNotDependOnTheRestOfTheBatch(threads: Int) throws {
        let encoder = try #require(sharedEncoder, "model cache missing: run scripts/fetch-models")
        let tokenizer = try loadMiniLMTokenizer()
        let texts = try fixtures().prefix(64).map(\.text)
        let batch = encoder.embed(texts.map { tokenizer.encode($0) }, threads: threads)
        for (index, text) in texts.enumerated() where index % 8 == 0 {
            let alone = encoder.embed([tokenizer.encode(text)], threads: threads)[0]
            let difference = zip(alone, batch[index]).map { abs($0 - $1) }.max()!
            #expect(difference <= 1e-5, "text \(index): \(difference)")
        }
    }

    struct TinyCase: Decodable {
        var ids: [Int32]
        var embedding: [Float]
    }

    /// Another BERT shape (hidden 72, 6 heads of 12, 3 layers, eps 1e-5) saved by `transformers`, against its
    /// outputs there (scripts/fixtures/make-tiny-bert-fixtures.py): nothing of MiniLM's shape is built in.
    @Test(arguments: [1, 2]) func otherConfigurationsLoadAndMatchTransformers(threads: Int) throws {
        let directory = try #require(Bundle.module.url(forResource: "Fixtures/tiny-bert", withExtension: nil))
        let encoder = try BertEncoder(directory: directory)
        #expect(encoder.configuration.hiddenSize == 72 && encoder.configuration.heads == 6
                && encoder.configuration.layers == 3 && encoder.configuration.layerNormEpsilon == 1e-5)
        let cases = try JSONDecoder().decode([TinyCase].self, from: Data(contentsOf: directory.appendingPathComponent("expected.json")))
        let embeddings = encoder.embed(cases.map(\.ids), threads: threads)
        for (tiny, embedding) in zip(cases, embeddings) {
            let worst = zip(tiny.embedding, embedding).map { abs($0 - $1) }.max()!
            #expect(worst <= 1e-5, "\(tiny.ids.count) tokens: \(worst)")
        }
    }

    @Test func configurationComesFromConfigJSON() throws {
        let encoder = try #require(sharedEncoder, "model cache missing: run scripts/fetch-models")
        #expect(encoder.configuration == BertConfiguration(
            hiddenSize: 384, layers: 6, heads: 12, intermediateSize: 1536, maxPositions: 512, vocabularySize: 30522,
            typeVocabularySize: 2, layerNormEpsilon: 1e-12, activation: "gelu"))
    }
}
