import Foundation

/// ConSE (Norouzi et al. 2014, "Zero-shot learning by convex combination of semantic embeddings"): a classifier's
/// output placed in the text space as the probability-weighted sum of the text embeddings of its top-k class
/// names, L2-normalised. It is what joins the image and audio towers to the text tower without a jointly trained
/// model: a photo the classifier calls "Egyptian cat" lands near the text "a cat".
public struct ConvexSemanticEmbedding: Sendable {
    public let labels: [String]
    /// Unit text embeddings of the labels, in class order.
    let labelEmbeddings: [[Float]]
    public let topK: Int

    /// Embeds every label with `text` once (a few hundred milliseconds for 1000 names).
    public init(labels: [String], text: TextEmbedder, topK: Int = 10, batchSize: Int = 128) {
        precondition(topK > 0, "topK must be positive")
        self.labels = labels
        self.topK = topK
        labelEmbeddings = stride(from: 0, to: labels.count, by: batchSize).flatMap { start in
            text.embed(Array(labels[start..<min(start + batchSize, labels.count)])).embeddings
        }
    }

    /// The point in the text space for class `probabilities` (softmax of logits, or per-tag sigmoids).
    public func embed(probabilities: [Float]) -> [Float] {
        precondition(probabilities.count == labels.count, "\(probabilities.count) probabilities for \(labels.count) labels")
        let top = probabilities.indices.sorted { probabilities[$0] > probabilities[$1] }.prefix(topK)
        var sum = [Float](repeating: 0, count: labelEmbeddings.first?.count ?? 0)
        for index in top {
            for j in sum.indices { sum[j] += probabilities[index] * labelEmbeddings[index][j] }
        }
        let norm = sum.map { $0 * $0 }.reduce(0, +).squareRoot()
        return norm > 0 ? sum.map { $0 / norm } : sum
    }

    /// Softmax of classifier logits.
    public static func softmax(_ logits: [Float]) -> [Float] {
        let maximum = logits.max() ?? 0
        let exps = logits.map { expf($0 - maximum) }
        let total = exps.reduce(0, +)
        return exps.map { $0 / total }
    }
}
