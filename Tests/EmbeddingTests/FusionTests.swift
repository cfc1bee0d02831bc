import Embedding
import Testing

@Suite struct FusionTests {
    @Test func aSingleModalityFusesToItself() {
        let v: [Float] = [0.6, 0.8, 0]
        #expect(LateFusion(weights: [.text: 2, .image: 1, .audio: 1]).fuse(Modalities(image: v)) == v)
    }

    @Test func fusionIsTheNormalisedWeightedSum() {
        let fused = LateFusion(weights: [.text: 3, .image: 1, .audio: 1]).fuse(Modalities(text: [1, 0], image: [0, 1]))
        #expect(abs(fused[0] - 3 / Float(10).squareRoot()) < 1e-6 && abs(fused[1] - 1 / Float(10).squareRoot()) < 1e-6)
    }

    /// Components whose squares overflow (3e38) or underflow (1e-30) still normalise to unit length: identical
    /// vectors of any magnitude have cosine 1, and nothing becomes NaN or infinite.
    @Test func normalisingSurvivesAnyMagnitude() {
        let shape: [Float] = (0..<384).map { Float($0 % 7 + 1) / 7 * ($0 % 2 == 0 ? 1 : -1) }
        let unit = Matryoshka.normalized(shape)
        for scale: Float in [3e38 / 1.01, 1e-30, 1] {
            let normalized = Matryoshka.normalized(shape.map { $0 * scale })
            let norm = normalized.reduce(0) { $0 + $1 * $1 }
            #expect(normalized.allSatisfy(\.isFinite) && abs(norm - 1) < 1e-5, "scale \(scale)")
            #expect(zip(normalized, unit).allSatisfy { abs($0 - $1) < 1e-5 }, "scale \(scale)")
        }
        #expect(Matryoshka.normalized([0, 0]) == [0, 0])
    }

    /// Weights of any finite size give the user vector the same direction: scaling them all changes nothing.
    @Test func userVectorWeightsOfAnyMagnitude() {
        let history: [Float] = [1, 0, 0, 1]   // two unit rows
        for weights: [Float] in [[3e38, 3e38], [1, 1], [1e-40, 1e-40]] {
            let user = MatchFeatures.userVector(history, count: 2, dimensions: 2, weights: weights, recent: 2)
            #expect(user.allSatisfy { abs($0 - Float(0.5).squareRoot()) < 1e-6 }, "\(weights): \(user)")
        }
        #expect(MatchFeatures.userVector(history, count: 2, dimensions: 2, weights: [0, 0], recent: 2) == [0, 0])
    }

    @Test func matryoshkaTakesThePrefixAndRenormalises() {
        let vector: [Float] = [3, 4, 12]
        #expect(Matryoshka.prefix(vector, dimensions: 2) == [0.6, 0.8])
        #expect(Matryoshka.prefix(vector, dimensions: 2, normalize: false) == [3, 4])
    }

    @Test func textAndFieldsAreJoinedInTheDocumentedOrder() {
        let fields = ItemFields(title: " Title ", ocr: "", asr: "spoken", author: "me", tags: ["a", " ", "b"])
        #expect(ItemInput.composeText("free", fields) == "free | Title | spoken | me | a, b")
        #expect(ItemInput.composeText(nil, ItemFields()) == nil)
        #expect(ItemInput.composeText("  ", ItemFields(tags: [])) == nil)
    }

    @Test func contentHashesTellItemsApart() {
        let a = ItemInput(id: "x", text: "ab", images: [[1, 2]])
        #expect(a.contentHash == ItemInput(id: "other id", text: "ab", images: [[1, 2]]).contentHash)
        #expect(a.contentHash != ItemInput(id: "x", text: "ab", images: [[1], [2]]).contentHash)
        #expect(a.contentHash != ItemInput(id: "x", text: "ab", images: [], audio: [1, 2]).contentHash)
        #expect(a.contentHash.count == 64)
    }
}
