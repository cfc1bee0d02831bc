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
        var qkv: Linear                 // H → 3H: query, key, value stacked
        var output: Linear              // H → H
        var attentionNormWeight: [Float], attentionNormBias: [Float]
        var intermediate: Linear        // H → I
        var ffnOutput: Linear           // I → H
        var outputNormWeight: [Float], outputNormBias: [Float]
    }

    let wordEmbeddings: [Float], positionEmbeddings: [Float], typeEmbeddings: [Float]
    let embeddingNormWeight: [Float], embeddingNormBias: [Float]
    let layers: [Layer]

    /// Threads one batch is split over (by rows); each runs its GEMMs with OpenBLAS's own threads, so this
    /// times `BLAS.setThreads` should not exceed the cores.
    public let threads: Int

    /// The format of the dense layers' products (`Linear.precision`: fp32 where the CPU lacks the one asked); in
    /// bf16 and int8 the attention products are bf16.
    public let precision: Precision

    /// Loads `config.json` and `model.safetensors` from `directory`, checking every tensor's presence and shape;
    /// the dense layers in `precision` (attention's products in bf16 below fp32; normalisations, softmax, GELU and
    /// pooling stay fp32). int8 first runs the model in fp32 on `TextCalibration`'s texts, tokenized by the
    /// directory's `tokenizer.json`, to smooth the query/key/value projection.
    public init(directory: URL, threads: Int = 1, precision: Precision = .fp32) throws {
        self.threads = max(1, threads)
        self.precision = precision.effective
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
        // int8 smooths the query/key/value projection's input, LayerNorm's output, where a few channels are far
        // larger than the rest: quantised per row as it is, it cost the most of any layer (README, "Precision").
        let smoothing = self.precision == .int8 ? try Self.smoothing(directory: directory, file: file, configuration: c) : nil
        layers = try (0..<c.layers).map { layer in
            let p = "encoder.layer.\(layer)."
            func f(_ name: String) throws -> [Float] { try file.floats(p + name) }
            return Layer(
                qkv: Linear(weight: try f("attention.self.query.weight") + f("attention.self.key.weight") + f("attention.self.value.weight"),
                            bias: try f("attention.self.query.bias") + f("attention.self.key.bias") + f("attention.self.value.bias"),
                            outputs: 3 * h, inputs: h, precision: precision, smoothing: smoothing?[layer]),
                output: Linear(weight: try f("attention.output.dense.weight"), bias: try f("attention.output.dense.bias"),
                               outputs: h, inputs: h, precision: precision),
                attentionNormWeight: try f("attention.output.LayerNorm.weight"),
                attentionNormBias: try f("attention.output.LayerNorm.bias"),
                intermediate: Linear(weight: try f("intermediate.dense.weight"), bias: try f("intermediate.dense.bias"),
                                     outputs: i, inputs: h, precision: precision),
                ffnOutput: Linear(weight: try f("output.dense.weight"), bias: try f("output.dense.bias"), outputs: h, inputs: i,
                                  precision: precision),
                outputNormWeight: try f("output.LayerNorm.weight"), outputNormBias: try f("output.LayerNorm.bias"))
        }
    }

    /// Mean-pooled, L2-normalised embeddings, one per sequence of token ids (each at most `maxPositions` long),
    /// split over `threads` (the encoder's own setting by default).
    public func embed(_ sequences: [[Int32]], threads: Int? = nil) -> [[Float]] {
        encode(sequences, threads: threads).map(\.embedding)
    }

    /// What the encoder gives for one sequence: its pooled embedding and its last layer's token states.
    public struct Encoding: Sendable {
        /// Mean-pooled, L2-normalised.
        public var embedding: [Float]
        /// One row of `hiddenSize` per token (special tokens included), when asked for.
        public var tokenStates: [[Float]]
    }

    /// `embed`, optionally with each sequence's token states (what a fusion model attends over).
    public func encode(_ sequences: [[Int32]], tokenStates: Bool = false, threads: Int? = nil) -> [Encoding] {
        forward(sequences, tokenStates: tokenStates, threads: threads, qkvInputMaxima: nil)
    }

    /// `encode`; with `qkvInputMaxima` (layers × hidden, on one thread) also the largest magnitude each query/key/value
    /// projection's input column reaches.
    private func forward(_ sequences: [[Int32]], tokenStates: Bool, threads: Int?,
                         qkvInputMaxima: UnsafeMutablePointer<Float>?) -> [Encoding] {
        let c = configuration
        let (h, inter) = (c.hiddenSize, c.intermediateSize)
        let shape = Attention.Shape(heads: c.heads, headSize: h / c.heads)
        let lengths = sequences.map { min($0.count, c.maxPositions) }
        var offsets = [0]
        for length in lengths { offsets.append(offsets.last! + length) }
        let (starts, rows) = (offsets, offsets.last!)
        guard rows > 0 else { return sequences.map { _ in Encoding(embedding: [Float](repeating: 0, count: h), tokenStates: []) } }

        // Row r of the packed batch is token `tokens[r]` at `positions[r]` of sequence `owners[r]`.
        let tokens = sequences.indices.flatMap { s in sequences[s].prefix(lengths[s]).map(Int.init) }
        let positions = lengths.flatMap { 0..<$0 }
        let owners = lengths.indices.flatMap { s in repeatElement(s, count: lengths[s]) }

        let available = qkvInputMaxima == nil ? max(1, threads ?? self.threads) : 1
        let parts = Parallel.ranges(rows, parts: min(available, max(1, rows / Self.minimumRowsPerThread)))
        // Too few rows to split: the threads split the dense layers' output columns instead.
        let columnThreads = parts.count == 1 ? available : 1
        // Attention scores of a thread's queries against one sequence's keys.
        let scoresPerPart = Attention.scratchSize(length: lengths.max() ?? 0, queries: parts.map(\.count).max() ?? 0,
                                                  shape: shape)
        let workspace = Workspace(rows: rows, hidden: h, intermediate: inter, scores: parts.count * scoresPerPart,
                                  qkvInputMaxima: qkvInputMaxima)
        defer { workspace.deallocate() }

        // One parallel pass per layer: each thread owns a range of rows. Attention needs the keys and values of
        // whole sequences, so the passes meet after each QKV projection; everything else is row-local, so a
        // pass runs a layer's attention and feed-forward and then the next layer's QKV for its rows. The QKV
        // buffers alternate by layer: a thread writing the next layer's must not overwrite keys another still reads.
        for layer in -1..<layers.count {
            Parallel.run(parts.count) { part in
                let range = parts[part]
                if layer < 0 {
                    embedTokens(range, tokens: tokens, positions: positions, into: workspace.x)
                } else {
                    attend(layers[layer], range, qkv: workspace.qkv(layer), owners: owners, starts: starts,
                           lengths: lengths, shape: shape, workspace: workspace,
                           scores: workspace.scores + part * scoresPerPart, columnThreads: columnThreads)
                    feedForward(layers[layer], range, workspace: workspace, columnThreads: columnThreads)
                }
                if layer + 1 < layers.count {
                    if let maxima = workspace.qkvInputMaxima {
                        for row in range {
                            for j in 0..<h { maxima[(layer + 1) * h + j] = max(maxima[(layer + 1) * h + j], abs(workspace.x[row * h + j])) }
                        }
                    }
                    layers[layer + 1].qkv.apply(workspace.x + range.lowerBound * h, rows: range.count,
                                                into: workspace.qkv(layer + 1) + range.lowerBound * 3 * h,
                                                columnThreads: columnThreads)
                }
            }
        }

        return sequences.indices.map { s in
            var pooled = [Float](repeating: 0, count: h)
            let states = tokenStates ? (starts[s]..<starts[s + 1]).map { row in Array(UnsafeBufferPointer(start: workspace.x + row * h, count: h)) } : []
            guard lengths[s] > 0 else { return Encoding(embedding: pooled, tokenStates: states) }
            for row in starts[s]..<starts[s + 1] {
                for j in 0..<h { pooled[j] += workspace.x[row * h + j] }
            }
            var norm: Float = 0
            for j in 0..<h {
                pooled[j] /= Float(lengths[s])
                norm += pooled[j] * pooled[j]
            }
            let inverse = 1 / max(norm.squareRoot(), 1e-12)
            return Encoding(embedding: pooled.map { $0 * inverse }, tokenStates: states)
        }
    }

    /// SmoothQuant's factors for each layer's query/key/value projection: `max|x_j|^α / max|w_j|^(1-α)` per input
    /// column j, x's maxima measured by the fp32 model on `TextCalibration.texts`, w the three projections' weights.
    private static func smoothing(directory: URL, file: SafetensorsFile, configuration c: BertConfiguration) throws -> [[Float]] {
        let tokenizerURL = directory.appendingPathComponent("tokenizer.json")
        let tokenizer: WordPieceTokenizer
        do {
            tokenizer = try WordPieceTokenizer(contentsOf: tokenizerURL, maxLength: c.maxPositions)
        } catch {
            throw ModelLoadingError(file: tokenizerURL.path, reason: "int8 calibrates on texts this tokenizer reads: \(error)")
        }
        let reference = try BertEncoder(directory: directory, threads: 1, precision: .fp32)
        let h = c.hiddenSize
        var maxima = [Float](repeating: 0, count: c.layers * h)
        maxima.withUnsafeMutableBufferPointer { maxima in
            _ = reference.forward(TextCalibration.texts.map { tokenizer.encoding($0).ids }, tokenStates: false, threads: 1,
                                  qkvInputMaxima: maxima.baseAddress!)
        }
        let alpha = TextCalibration.alpha
        return try (0..<c.layers).map { layer in
            let p = "encoder.layer.\(layer).attention.self."
            let weight = try file.floats(p + "query.weight") + file.floats(p + "key.weight") + file.floats(p + "value.weight")
            var wMax = [Float](repeating: 0, count: h)
            for (index, value) in weight.enumerated() { wMax[index % h] = max(wMax[index % h], abs(value)) }
            return (0..<h).map { j in
                pow(max(maxima[layer * h + j], 1e-5), alpha) / pow(max(wMax[j], 1e-5), 1 - alpha)
            }
        }
    }

    /// Below this many rows per thread, splitting a batch costs more than it saves.
    static let minimumRowsPerThread = 8

    /// Activations of one batch, rows × width each; threads write disjoint row ranges.
    struct Workspace: @unchecked Sendable {
        let x, evenQKV, oddQKV, context, projected, intermediate, scores: UnsafeMutablePointer<Float>
        /// Not owned; written by the only thread when calibrating.
        let qkvInputMaxima: UnsafeMutablePointer<Float>?

        func qkv(_ layer: Int) -> UnsafeMutablePointer<Float> { layer % 2 == 0 ? evenQKV : oddQKV }

        init(rows: Int, hidden: Int, intermediate width: Int, scores scoreCount: Int, qkvInputMaxima: UnsafeMutablePointer<Float>?) {
            self.qkvInputMaxima = qkvInputMaxima
            x = .allocate(capacity: rows * hidden)
            evenQKV = .allocate(capacity: rows * 3 * hidden)
            oddQKV = .allocate(capacity: rows * 3 * hidden)
            context = .allocate(capacity: rows * hidden)
            projected = .allocate(capacity: rows * hidden)
            intermediate = .allocate(capacity: rows * width)
            scores = .allocate(capacity: max(scoreCount, 1))
        }

        func deallocate() {
            for buffer in [x, evenQKV, oddQKV, context, projected, intermediate, scores] { buffer.deallocate() }
        }
    }

    /// Word + position + token-type-0 embeddings of rows `range`, then LayerNorm.
    private func embedTokens(_ range: Range<Int>, tokens: [Int], positions: [Int], into x: UnsafeMutablePointer<Float>) {
        let h = configuration.hiddenSize
        wordEmbeddings.withUnsafeBufferPointer { word in
            positionEmbeddings.withUnsafeBufferPointer { position in
                typeEmbeddings.withUnsafeBufferPointer { type in
                    for row in range {
                        let out = x + row * h
                        let w = word.baseAddress! + tokens[row] * h
                        let p = position.baseAddress! + positions[row] * h
                        for j in 0..<h { out[j] = w[j] + p[j] + type[j] }
                    }
                }
            }
        }
        embeddingNormWeight.withUnsafeBufferPointer { weight in
            embeddingNormBias.withUnsafeBufferPointer { bias in
                Kernels.addLayerNorm(x + range.lowerBound * h, residual: nil, rows: range.count, columns: h,
                                     weight: weight.baseAddress!, bias: bias.baseAddress!,
                                     epsilon: configuration.layerNormEpsilon)
            }
        }
    }

    /// Attention context of the query rows `range` (against all keys of their sequences), output projection,
    /// residual and LayerNorm.
    private func attend(_ layer: Layer, _ range: Range<Int>, qkv: UnsafeMutablePointer<Float>, owners: [Int], starts: [Int], lengths: [Int],
                        shape: Attention.Shape, workspace: Workspace, scores: UnsafeMutablePointer<Float>, columnThreads: Int) {
        let h = shape.hidden
        var row = range.lowerBound
        while row < range.upperBound {
            let s = owners[row]
            let end = min(range.upperBound, starts[s + 1])
            Attention.context(qkv: qkv + starts[s] * 3 * h, length: lengths[s],
                              queries: (row - starts[s])..<(end - starts[s]), shape: shape,
                              into: workspace.context + row * h, scratch: scores,
                              precision: precision == .fp32 ? .fp32 : .bf16)
            row = end
        }
        let (first, count) = (range.lowerBound * h, range.count)
        layer.output.apply(workspace.context + first, rows: count, into: workspace.projected + first, columnThreads: columnThreads)
        layer.attentionNormWeight.withUnsafeBufferPointer { w in
            layer.attentionNormBias.withUnsafeBufferPointer { b in
                Kernels.addLayerNorm(workspace.x + first, residual: workspace.projected + first, rows: count, columns: h,
                                     weight: w.baseAddress!, bias: b.baseAddress!, epsilon: configuration.layerNormEpsilon)
            }
        }
    }

    /// The feed-forward block of rows `range`: dense, GELU, dense, residual, LayerNorm.
    private func feedForward(_ layer: Layer, _ range: Range<Int>, workspace: Workspace, columnThreads: Int) {
        let (h, inter) = (configuration.hiddenSize, configuration.intermediateSize)
        let (first, count) = (range.lowerBound, range.count)
        let intermediate = workspace.intermediate + first * inter
        layer.intermediate.apply(workspace.x + first * h, rows: count, into: intermediate, columnThreads: columnThreads)
        Kernels.gelu(intermediate, count: count * inter)
        layer.ffnOutput.apply(intermediate, rows: count, into: workspace.projected + first * h, columnThreads: columnThreads)
        layer.outputNormWeight.withUnsafeBufferPointer { w in
            layer.outputNormBias.withUnsafeBufferPointer { b in
                Kernels.addLayerNorm(workspace.x + first * h, residual: workspace.projected + first * h, rows: count,
                                     columns: h, weight: w.baseAddress!, bias: b.baseAddress!,
                                     epsilon: configuration.layerNormEpsilon)
            }
        }
    }
}
