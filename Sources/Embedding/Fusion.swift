internal import Models

/// How an item's modalities become its embedding.
enum FusionMethod: Sendable {
    /// The weighted sum of the modality vectors in the shared space.
    case late(LateFusion)
    /// EM3's Fusion-Q-Former over the towers' token-level outputs (text token states, image features per frame,
    /// audio features per patch).
    case qformer(FusionQFormer)
}

/// Late fusion: the L2-normalised weighted sum of the present modality vectors. With one modality present the
/// result is that modality's (unit) vector.
public struct LateFusion: Sendable, Equatable {
    public var weights: [Modality: Float]

    public init(weights: [Modality: Float] = [.text: 1, .image: 1, .audio: 1]) {
        self.weights = weights
    }

    public func fuse(_ modalities: Modalities) -> [Float] {
        let present = modalities.present
        if present.count == 1 { return modalities[present[0]]! }
        var sum: [Float] = []
        for modality in present {
            let vector = modalities[modality]!
            let weight = weights[modality] ?? 1
            if sum.isEmpty { sum = [Float](repeating: 0, count: vector.count) }
            for j in sum.indices { sum[j] += weight * vector[j] }
        }
        return Matryoshka.normalized(sum)
    }
}
