import Foundation
import Tensor

/// The BERT architecture as `config.json` states it.
public struct BertConfiguration: Decodable, Sendable, Equatable {
    public var hiddenSize: Int
    public var layers: Int
    public var heads: Int
    public var intermediateSize: Int
    public var maxPositions: Int
    public var vocabularySize: Int
    public var typeVocabularySize: Int
    public var layerNormEpsilon: Float
    public var activation: String

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", layers = "num_hidden_layers", heads = "num_attention_heads"
        case intermediateSize = "intermediate_size", maxPositions = "max_position_embeddings"
        case vocabularySize = "vocab_size", typeVocabularySize = "type_vocab_size"
        case layerNormEpsilon = "layer_norm_eps", activation = "hidden_act"
    }
}

/// A BERT encoder with mean pooling and L2 normalisation, as sentence-transformers runs `all-MiniLM-L6-v2`.
///
/// A batch is packed: the tokens of all its sequences are rows of one matrix, so the dense layers are single
/// GEMMs with no padding rows, attention runs per sequence, and a sequence's result does not depend on what
/// else is in the batch.
public final class BertEncoder: Sendable {
    public let configuration: BertConfiguration

    struct Layer: Sendable {
        var qkvWeight: [Float], qkvBias: [Float]            // [3H, H]: query, key, value stacked
        var outputWeight: [Float], outputBias: [Float]      // [H, H]
        var attentionNormWeight: [Float], attentionNormBias: [Float]
        var intermediateWeight: [Float], intermediateBias: [Float]  // [I, H]
        var ffnOutputWeight: [Float], ffnOutputBias: [Float]        // [H, I]
        var outputNormWeight: [Float], outputNormBias: [Float]
    }

    let wordEmbeddings: [Float], positionEmbeddings: [Float], typeEmbeddings: [Float]
    let embeddingNormWeight: [Float], embeddingNormBias: [Float]
    let layers: [Layer]

    /// Loads `config.json` and `model.safetensors` from `directory`, checking every tensor's presence and shape.
    public init(directory: URL) throws {
        let configURL = directory.appendingPathComponent("config.json")
        do {
            configuration = try JSONDecoder().decode(BertConfiguration.self, from: Data(contentsOf: configURL))
        } catch {
            throw ModelLoadingError(file: configURL.path, reason: "not a readable BERT config: \(error)")
        }
        let c = configuration
        guard c.heads > 0, c.hiddenSize % c.heads == 0 else {
            throw ModelLoadingError(file: configURL.path, reason: "hidden size \(c.hiddenSize) is not divisible by \(c.heads) heads")
        }
        guard c.activation == "gelu" else {
            throw ModelLoadingError(file: configURL.path, reason: "activation \(c.activation) is not supported (gelu is)")
        }
        let file = try SafetensorsFile(path: directory.appendingPathComponent("model.safetensors").path)
        let (h, i) = (c.hiddenSize, c.intermediateSize)
        var expected: [String: [Int]] = [
            "embeddings.word_embeddings.weight": [c.vocabularySize, h],
            "embeddings.position_embeddings.weight": [c.maxPositions, h],
            "embeddings.token_type_embeddings.weight": [c.typeVocabularySize, h],
            "embeddings.LayerNorm.weight": [h], "embeddings.LayerNorm.bias": [h],
        ]
        for layer in 0..<c.layers {
            let p = "encoder.layer.\(layer)."
            for name in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"] {
                expected[p + name + ".weight"] = [h, h]
                expected[p + name + ".bias"] = [h]
            }
            for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
                expected[p + norm + ".weight"] = [h]
                expected[p + norm + ".bias"] = [h]
            }
            expected[p + "intermediate.dense.weight"] = [i, h]
            expected[p + "intermediate.dense.bias"] = [i]
            expected[p + "output.dense.weight"] = [h, i]
            expected[p + "output.dense.bias"] = [h]
        }
        try file.require(expected)

        wordEmbeddings = try file.floats("embeddings.word_embeddings.weight")
        positionEmbeddings = try file.floats("embeddings.position_embeddings.weight")
        typeEmbeddings = try file.floats("embeddings.token_type_embeddings.weight")
        embeddingNormWeight = try file.floats("embeddings.LayerNorm.weight")
        embeddingNormBias = try file.floats("embeddings.LayerNorm.bias")
        layers = try (0..<c.layers).map { layer in
            let p = "encoder.layer.\(layer)."
            func f(_ name: String) throws -> [Float] { try file.floats(p + name) }
            return Layer(
                qkvWeight: try f("attention.self.query.weight") + f("attention.self.key.weight") + f("attention.self.value.weight"),
                qkvBias: try f("attention.self.query.bias") + f("attention.self.key.bias") + f("attention.self.value.bias"),
                outputWeight: try f("attention.output.dense.weight"), outputBias: try f("attention.output.dense.bias"),
                attentionNormWeight: try f("attention.output.LayerNorm.weight"),
                attentionNormBias: try f("attention.output.LayerNorm.bias"),
                intermediateWeight: try f("intermediate.dense.weight"), intermediateBias: try f("intermediate.dense.bias"),
                ffnOutputWeight: try f("output.dense.weight"), ffnOutputBias: try f("output.dense.bias"),
                outputNormWeight: try f("output.LayerNorm.weight"), outputNormBias: try f("output.LayerNorm.bias"))
        }
    }

    /// Mean-pooled, L2-normalised embeddings, one per sequence of token ids (each at most `maxPositions` long).
    public func embed(_ sequences: [[Int32]]) -> [[Float]] {
        let c = configuration
        let (h, inter, heads) = (c.hiddenSize, c.intermediateSize, c.heads)
        let headSize = h / heads
        let lengths = sequences.map { min($0.count, c.maxPositions) }
        var offsets = [0]
        for length in lengths { offsets.append(offsets.last! + length) }
        let rows = offsets.last!
        guard rows > 0 else { return sequences.map { _ in [Float](repeating: 0, count: h) } }

        // Embeddings: word + position + token type 0, then LayerNorm.
        var x = [Float](repeating: 0, count: rows * h)
        for (s, ids) in sequences.enumerated() {
            for position in 0..<lengths[s] {
                let id = Int(ids[position])
                let row = (offsets[s] + position) * h
                for j in 0..<h {
                    x[row + j] = wordEmbeddings[id * h + j] + positionEmbeddings[position * h + j] + typeEmbeddings[j]
                }
            }
        }
        Kernels.layerNorm(&x, rows: rows, columns: h, weight: embeddingNormWeight, bias: embeddingNormBias,
                          epsilon: c.layerNormEpsilon)

        var qkv = [Float](repeating: 0, count: rows * 3 * h)
        var context = [Float](repeating: 0, count: rows * h)
        var projected = [Float](repeating: 0, count: rows * h)
        var intermediate = [Float](repeating: 0, count: rows * inter)
        let maxLength = lengths.max() ?? 0
        var scores = [Float](repeating: 0, count: maxLength * maxLength)
        let scale = 1 / Float(headSize).squareRoot()

        for layer in layers {
            Kernels.linear(x, layer.qkvWeight, layer.qkvBias, into: &qkv, rows: rows, inputs: h, outputs: 3 * h)
            qkv.withUnsafeBufferPointer { qkv in
                scores.withUnsafeMutableBufferPointer { scores in
                    context.withUnsafeMutableBufferPointer { context in
                        for s in sequences.indices where lengths[s] > 0 {
                            let (start, length) = (offsets[s], lengths[s])
                            for head in 0..<heads {
                                let q = qkv.baseAddress! + start * 3 * h + head * headSize
                                let k = q + h
                                let v = q + 2 * h
                                GEMM.multiply(q, k, into: scores.baseAddress!, m: length, n: length, k: headSize,
                                              transposeB: true, alpha: scale, lda: 3 * h, ldb: 3 * h, ldc: length)
                                Kernels.softmaxRows(scores.baseAddress!, rows: length, columns: length)
                                GEMM.multiply(scores.baseAddress!, v, into: context.baseAddress! + start * h + head * headSize,
                                              m: length, n: headSize, k: length, transposeB: false,
                                              lda: length, ldb: 3 * h, ldc: h)
                            }
                        }
                    }
                }
            }
            Kernels.linear(context, layer.outputWeight, layer.outputBias, into: &projected, rows: rows, inputs: h, outputs: h)
            Kernels.addInPlace(&x, projected)
            Kernels.layerNorm(&x, rows: rows, columns: h, weight: layer.attentionNormWeight, bias: layer.attentionNormBias,
                              epsilon: c.layerNormEpsilon)
            Kernels.linear(x, layer.intermediateWeight, layer.intermediateBias, into: &intermediate, rows: rows,
                           inputs: h, outputs: inter)
            Kernels.geluInPlace(&intermediate)
            Kernels.linear(intermediate, layer.ffnOutputWeight, layer.ffnOutputBias, into: &projected, rows: rows,
                           inputs: inter, outputs: h)
            Kernels.addInPlace(&x, projected)
            Kernels.layerNorm(&x, rows: rows, columns: h, weight: layer.outputNormWeight, bias: layer.outputNormBias,
                              epsilon: c.layerNormEpsilon)
        }

        return sequences.indices.map { s in
            var pooled = [Float](repeating: 0, count: h)
            guard lengths[s] > 0 else { return pooled }
            for row in offsets[s]..<offsets[s + 1] {
                for j in 0..<h { pooled[j] += x[row * h + j] }
            }
            var norm: Float = 0
            for j in 0..<h {
                pooled[j] /= Float(lengths[s])
                norm += pooled[j] * pooled[j]
            }
            let inverse = 1 / max(norm.squareRoot(), 1e-12)
            return pooled.map { $0 * inverse }
        }
    }
}
