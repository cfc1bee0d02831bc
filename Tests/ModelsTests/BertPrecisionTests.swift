import Foundation
import Tensor
import Testing
@testable import Models

/// The text encoder in bf16 and int8 against sentence-transformers' fp32 embeddings of the fixture corpus: cosine
/// per text, and whether each text's ten nearest neighbours stay its neighbours.
@Suite struct BertPrecisionTests {
    /// The encoders for the suite, one per precision (loading packs the weights).
    static let encoders: [Precision: BertEncoder] = Dictionary(uniqueKeysWithValues: [Precision.bf16, .int8].compactMap { precision in
        (try? BertEncoder(directory: modelDirectory, precision: precision)).map { (precision, $0) }
    })

    struct Bounds {
        var meanCosine: Double, minCosine: Double, neighbours: Double
    }

    static let bounds: [Precision: Bounds] = [
        .bf16: Bounds(meanCosine: 0.9999, minCosine: 0.9995, neighbours: 0.97),
        .int8: Bounds(meanCosine: 0.998, minCosine: 0.99, neighbours: 0.9),
    ]

    func fixtures() throws -> [EmbeddingFixture] {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/embeddings-minilm", withExtension: "jsonl"))
        return try String(contentsOf: url, encoding: .utf8).split(separator: "\n")
            .map { try JSONDecoder().decode(EmbeddingFixture.self, from: Data($0.utf8)) }
    }

    /// The ten most similar other texts of each text.
    static func neighbours(_ vectors: [[Float]], count: Int = 10) -> [Set<Int>] {
        vectors.indices.map { i in
            let scores = vectors.indices.filter { $0 != i }.map { j in (j, zip(vectors[i], vectors[j]).reduce(Float(0)) { $0 + $1.0 * $1.1 }) }
            return Set(scores.sorted { $0.1 > $1.1 }.prefix(count).map(\.0))
        }
    }

    @Test(arguments: [Precision.bf16, .int8])
    func embeddingsStayCloseToSentenceTransformers(precision: Precision) throws {
        let encoder = try #require(Self.encoders[precision], "model cache missing: run scripts/fetch-models")
        guard precision.isNative else {
            #expect(encoder.precision == .fp32)
            return
        }
        #expect(encoder.precision == precision)
        let tokenizer = try loadMiniLMTokenizer()
        let fixtures = try fixtures()
        var embeddings: [[Float]] = []
        for batch in stride(from: 0, to: fixtures.count, by: 32).map({ Array(fixtures[$0..<min($0 + 32, fixtures.count)]) }) {
            embeddings += encoder.embed(batch.map { tokenizer.encode($0.text) })
        }
        let cosines = zip(fixtures, embeddings).map { fixture, embedding in
            zip(fixture.embedding, embedding).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        let mean = cosines.reduce(0, +) / Double(cosines.count), worst = cosines.min()!
        let reference = Self.neighbours(fixtures.map(\.embedding)), found = Self.neighbours(embeddings)
        let agreement = zip(reference, found).map { Double($0.intersection($1).count) / 10 }.reduce(0, +) / Double(fixtures.count)
        let bounds = try #require(Self.bounds[precision])
        #expect(mean >= bounds.meanCosine, "mean cosine \(mean)")
        #expect(worst >= bounds.minCosine, "worst cosine \(worst)")
        #expect(agreement >= bounds.neighbours, "top-10 agreement \(agreement)")
        print("encoder \(precision) vs sentence-transformers on \(fixtures.count) texts: mean cosine \(mean), worst \(worst), top-10 neighbour agreement \(agreement)")
    }

    @Test(arguments: [Precision.bf16, .int8])
    func embeddingDoesNotDependOnTheRestOfTheBatch(precision: Precision) throws {
        let encoder = try #require(Self.encoders[precision], "model cache missing: run scripts/fetch-models")
        let tokenizer = try loadMiniLMTokenizer()
        let texts = try fixtures().prefix(48).map(\.text)
        let batch = encoder.embed(texts.map { tokenizer.encode($0) }, threads: 2)
        for (index, text) in texts.enumerated() where index % 6 == 0 {
            let alone = encoder.embed([tokenizer.encode(text)], threads: 1)[0]
            let difference = zip(alone, batch[index]).map { abs($0 - $1) }.max()!
            #expect(difference <= 1e-5, "text \(index): \(difference)")
        }
    }
}
