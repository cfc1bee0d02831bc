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
