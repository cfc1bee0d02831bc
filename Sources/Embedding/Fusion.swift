import Models

/// How an item's modalities become its embedding.
public enum FusionMethod: Sendable {
    /// The weighted sum of the modality vectors in the shared space.
    case late(LateFusion)
    /// EM3's Fusion-Q-Former over the towers' token-level outputs (text token states, image features per frame,
    /// audio features per patch).
    case qformer(FusionQFormer)

    public var name: String {
        switch self {
        case .late: "late"
        case .qformer: "qformer"
        }
    }
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

/// Matryoshka sizes: a prefix of the full vector, re-normalised.
public enum Matryoshka {
    /// The leading `dimensions` components of `vector`, unit length when `normalize`.
    public static func prefix(_ vector: [Float], dimensions: Int, normalize: Bool = true) -> [Float] {
        let head = Array(vector.prefix(dimensions))
        return normalize ? normalized(head) : head
    }

    /// `vector` at unit length; all zeros (or non-finite) as it is. Components so large that their squares
    /// overflow, or so small that they underflow, are scaled by the largest magnitude first.
    public static func normalized(_ vector: [Float]) -> [Float] {
        var norm: Float = 0
        for x in vector { norm += x * x }
        // The squares neither overflowed nor lost precision to underflow: the plain sum.
        if norm.isFinite, norm >= 0x1p-100 {
            let inverse = 1 / norm.squareRoot()
            return vector.map { $0 * inverse }
        }
        let largest = vector.reduce(Float(0)) { max($0, abs($1)) }
        guard largest > 0, largest.isFinite else { return vector }
        var scaledNorm = 0.0
        for x in vector {
            let scaled = Double(x) / Double(largest)
            scaledNorm += scaled * scaled
        }
        let inverse = 1 / (Double(largest) * scaledNorm.squareRoot())
        return vector.map { Float(Double($0) * inverse) }
    }
}
