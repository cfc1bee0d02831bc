import Foundation
import Tensor

/// The Fusion-Q-Former's shape, as its `config.json` states it.
public struct FusionQFormerConfiguration: Decodable, Sendable, Equatable {
    public var hiddenSize: Int
    public var heads: Int
    public var layers: Int
    public var intermediateSize: Int
    public var queries: Int
    public var outputSize: Int
    public var layerNormEpsilon: Float
    /// Token width per modality (`text`, `image`, `audio`): the towers' outputs it reads.
    public var inputSizes: [String: Int]
    /// Learned frame positions for the image tokens (the cover, then a video's frames in time order; past the last,
    /// the last); none when absent.
    public var maxFrames: Int?

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", heads = "num_attention_heads", layers = "num_layers"
        case intermediateSize = "intermediate_size", queries, outputSize = "output_size"
        case layerNormEpsilon = "layer_norm_eps", inputSizes = "input_sizes", maxFrames = "max_frames"
    }
}

/// EM3's Fusion-Q-Former: learnable queries prepended to an item's modality tokens (text token states, image
/// features per frame, audio features per patch), each projected to the model width and tagged with a learned
/// modality embedding, image tokens also with a learned frame position (when the model has them); pre-LayerNorm
/// self-attention layers; the query outputs, after a final LayerNorm, flattened and projected to the output size,
/// then L2-normalised. The same computation as `scripts/reference/fusion_qformer.py`
/// (PyTorch's `TransformerEncoderLayer` with `norm_first`, erf GELU). Items are fused one at a time: each is a few
/// dozen tokens, and its result cannot depend on other items.
public final class FusionQFormer: Sendable {
    public static let modalities = ["text", "image", "audio"]
    public let configuration: FusionQFormerConfiguration

    struct Layer: Sendable {
        var norm1Weight, norm1Bias, norm2Weight, norm2Bias: [Float]
        var qkv: Linear          // d → 3d
        var output: Linear       // d → d
        var intermediate: Linear // d → ffn
        var ffnOutput: Linear    // ffn → d
    }

    let queries: [Float]
    let modalityEmbeddings: [Float]
    /// `maxFrames` rows of the model width, or empty.
    let framePositions: [Float]
    let projections: [Linear]
    let layers: [Layer]
    let finalNormWeight, finalNormBias: [Float]
    let output: Linear
    /// The format of the projections' and layers' products (`Linear.precision`); LayerNorm, attention, GELU and
    /// the final normalisation stay fp32: an item is a few dozen tokens, where attention's products are cheap.
    public let precision: Precision

    /// Loads `config.json` and `model.safetensors` from `directory`, checking every tensor's presence and shape.
    public init(directory: URL, precision: Precision = .fp32) throws {
        let precision = precision.effective
        self.precision = precision
        let configURL = directory.appendingPathComponent("config.json")
        do {
            configuration = try JSONDecoder().decode(FusionQFormerConfiguration.self, from: Data(contentsOf: configURL))
        } catch {
            throw ModelLoadingError(file: configURL.path, reason: "not a readable Fusion-Q-Former config: \(error)")
        }
        let c = configuration
        guard c.heads > 0, c.hiddenSize % c.heads == 0, c.queries > 0, c.layers >= 0, (c.maxFrames ?? 1) > 0,
              Self.modalities.allSatisfy({ (c.inputSizes[$0] ?? 0) > 0 }) else {
            throw ModelLoadingError(file: configURL.path,
                                    reason: "needs hidden_size divisible by the heads, queries > 0 and input_sizes for \(Self.modalities)")
        }
        let file = try SafetensorsFile(path: directory.appendingPathComponent("model.safetensors").path)
        let (d, ffn) = (c.hiddenSize, c.intermediateSize)
        var expected: [String: [Int]] = [
            "queries": [c.queries, d], "modality_embeddings": [Self.modalities.count, d],
            "final_norm.weight": [d], "final_norm.bias": [d],
            "output.weight": [c.outputSize, c.queries * d], "output.bias": [c.outputSize],
        ]
        if let maxFrames = c.maxFrames { expected["frame_positions"] = [maxFrames, d] }
        for modality in Self.modalities {
            expected["projections.\(modality).weight"] = [d, c.inputSizes[modality]!]
            expected["projections.\(modality).bias"] = [d]
        }
        for layer in 0..<c.layers {
            let p = "layers.\(layer)."
            expected[p + "attention.in_proj.weight"] = [3 * d, d]
            expected[p + "attention.in_proj.bias"] = [3 * d]
            expected[p + "attention.out_proj.weight"] = [d, d]
            expected[p + "attention.out_proj.bias"] = [d]
            for norm in ["norm1", "norm2"] {
                expected[p + norm + ".weight"] = [d]
                expected[p + norm + ".bias"] = [d]
            }
            expected[p + "linear1.weight"] = [ffn, d]
            expected[p + "linear1.bias"] = [ffn]
            expected[p + "linear2.weight"] = [d, ffn]
            expected[p + "linear2.bias"] = [d]
        }
        try file.require(expected)

        func linear(_ name: String, _ outputs: Int, _ inputs: Int) throws -> Linear {
            Linear(weight: try file.floats(name + ".weight"), bias: try file.floats(name + ".bias"), outputs: outputs, inputs: inputs,
                   precision: precision)
        }
        queries = try file.floats("queries")
        modalityEmbeddings = try file.floats("modality_embeddings")
        framePositions = c.maxFrames == nil ? [] : try file.floats("frame_positions")
        projections = try Self.modalities.map { try linear("projections.\($0)", d, c.inputSizes[$0]!) }
        layers = try (0..<c.layers).map { layer in
            let p = "layers.\(layer)."
            return Layer(norm1Weight: try file.floats(p + "norm1.weight"), norm1Bias: try file.floats(p + "norm1.bias"),
                         norm2Weight: try file.floats(p + "norm2.weight"), norm2Bias: try file.floats(p + "norm2.bias"),
                         qkv: try linear(p + "attention.in_proj", 3 * d, d), output: try linear(p + "attention.out_proj", d, d),
                         intermediate: try linear(p + "linear1", ffn, d), ffnOutput: try linear(p + "linear2", d, ffn))
        }
        finalNormWeight = try file.floats("final_norm.weight")
        finalNormBias = try file.floats("final_norm.bias")
        output = try linear("output", c.outputSize, c.queries * d)
    }

    /// The fused, unit-length vector of one item from its modality tokens (rows of each modality's input size; an
    /// absent modality has none).
    public func fuse(text: [[Float]], image: [[Float]], audio: [[Float]]) -> [Float] {
        let c = configuration
        let d = c.hiddenSize
        let tokens = [text, image, audio]
        for (modality, rows) in zip(Self.modalities, tokens) {
            precondition(rows.allSatisfy { $0.count == c.inputSizes[modality]! }, "\(modality) tokens must be \(c.inputSizes[modality]!) wide")
        }
        let n = c.queries + tokens.map(\.count).reduce(0, +)
        var x = [Float](repeating: 0, count: n * d)
        var normed = [Float](repeating: 0, count: n * d)
        var qkv = [Float](repeating: 0, count: n * 3 * d)
        var context = [Float](repeating: 0, count: n * d)
        var hidden = [Float](repeating: 0, count: n * max(c.intermediateSize, d))
        let shape = Attention.Shape(heads: c.heads, headSize: d / c.heads)
        var scratch = [Float](repeating: 0, count: Attention.scratchSize(length: n, queries: n, shape: shape))

        x.withUnsafeMutableBufferPointer { x in
            let x = x.baseAddress!
            for j in 0..<c.queries * d { x[j] = queries[j] }
            var row = c.queries
            for (index, rows) in tokens.enumerated() where !rows.isEmpty {
                let flat = rows.flatMap { $0 }
                flat.withUnsafeBufferPointer { projections[index].apply($0.baseAddress!, rows: rows.count, into: x + row * d) }
                for r in row..<(row + rows.count) {
                    for j in 0..<d { x[r * d + j] += modalityEmbeddings[index * d + j] }
                    if Self.modalities[index] == "image", let maxFrames = c.maxFrames {
                        let position = min(r - row, maxFrames - 1)
                        for j in 0..<d { x[r * d + j] += framePositions[position * d + j] }
                    }
                }
                row += rows.count
            }
            normed.withUnsafeMutableBufferPointer { normed in
                qkv.withUnsafeMutableBufferPointer { qkv in
                    context.withUnsafeMutableBufferPointer { context in
                        hidden.withUnsafeMutableBufferPointer { hidden in
                            scratch.withUnsafeMutableBufferPointer { scratch in
                                for layer in layers {
                                    // x += attention(LN1(x))
                                    layerNorm(x, into: normed.baseAddress!, rows: n, layer.norm1Weight, layer.norm1Bias)
                                    layer.qkv.apply(normed.baseAddress!, rows: n, into: qkv.baseAddress!)
                                    Attention.context(qkv: qkv.baseAddress!, length: n, queries: 0..<n, shape: shape,
                                                      into: context.baseAddress!, scratch: scratch.baseAddress!)
                                    layer.output.apply(context.baseAddress!, rows: n, into: normed.baseAddress!)
                                    for j in 0..<n * d { x[j] += normed[j] }
                                    // x += W2 · gelu(W1 · LN2(x))
                                    layerNorm(x, into: normed.baseAddress!, rows: n, layer.norm2Weight, layer.norm2Bias)
                                    layer.intermediate.apply(normed.baseAddress!, rows: n, into: hidden.baseAddress!)
                                    Kernels.gelu(hidden.baseAddress!, count: n * c.intermediateSize)
                                    layer.ffnOutput.apply(hidden.baseAddress!, rows: n, into: normed.baseAddress!)
                                    for j in 0..<n * d { x[j] += normed[j] }
                                }
                                layerNorm(x, into: normed.baseAddress!, rows: c.queries, finalNormWeight, finalNormBias)
                            }
                        }
                    }
                }
            }
        }
        // The queries' rows, flattened, are the first queries × d values of `normed`.
        var result = [Float](repeating: 0, count: c.outputSize)
        normed.withUnsafeBufferPointer { q in
            result.withUnsafeMutableBufferPointer { output.apply(q.baseAddress!, rows: 1, into: $0.baseAddress!) }
        }
        let norm = result.map { $0 * $0 }.reduce(0, +).squareRoot()
        return norm > 0 ? result.map { $0 / norm } : result
    }

    /// LayerNorm of `rows` rows of `x` into `y`, leaving `x` as it is (pre-LayerNorm blocks add to `x` afterwards).
    private func layerNorm(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, rows: Int,
                           _ weight: [Float], _ bias: [Float]) {
        let d = configuration.hiddenSize
        y.update(from: x, count: rows * d)
        weight.withUnsafeBufferPointer { w in
            bias.withUnsafeBufferPointer { b in
                Kernels.addLayerNorm(y, residual: nil, rows: rows, columns: d, weight: w.baseAddress!, bias: b.baseAddress!,
                                     epsilon: configuration.layerNormEpsilon)
            }
        }
    }
}
