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
