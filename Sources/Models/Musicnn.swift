import CKernels
import Foundation
import Tensor

/// musicnn (`MTT_musicnn`, Pons & Serra), the audio tower: 3-second patches of 187 log-mel frames × 96 bands through
/// musically motivated convolutions (timbral: 7-frame × 38/67-band filters; temporal: 128/64/32-frame filters),
/// a residual mid-end over time and a pooled dense back end: the 200-d penultimate layer and 50 MagnaTagATune tag
/// probabilities per patch. Weights from the converted TensorFlow checkpoint of the PyPI package `musicnn`.
///
/// Convolutions run as im2col + `Linear` (TensorFlow's HWIO kernels reordered at load); BatchNorm follows ReLU in
/// this model, so it is applied as a per-channel affine step rather than folded.
public final class Musicnn: Sendable {
    /// Frames per patch (3 s at 16 kHz, hop 256) and mel bands.
    public static let frames = 187
    public static let bands = 96
    static let batchNormEpsilon: Float = 1e-3

    struct Affine: Sendable {
        var scale: [Float], shift: [Float]
    }

    struct Convolution: Sendable {
        var linear: Linear      // [out][kh][kw][in]
        var height: Int, width: Int, inputs: Int
        var norm: Affine
    }

    let inputNorm: Affine                     // one channel
    let timbral: [Convolution]                // 7 × 38 and 7 × 67, valid over ±3 padded frames
    let temporal: [Convolution]               // 128 / 64 / 32 × 1, "same"
    let midend: [Convolution]                 // 7 × (561 | 64 | 64)
    let poolNorm: Affine                      // 1506 = 753 features × (max, mean)
    let dense: Linear, denseNorm: Affine
    let output: Linear
    public let threads: Int
    public var featureSize: Int { dense.outputs }
    public var tags: Int { output.outputs }

    /// The format of the convolutions' (im2col) and dense layers' products (`Linear.precision`); normalisations,
    /// pooling and the sigmoid stay fp32.
    public let precision: Precision

    public init(directory: URL, threads: Int = 1, precision: Precision = .fp32) throws {
        self.threads = max(1, threads)
        self.precision = precision.effective
        let file = try SafetensorsFile(path: directory.appendingPathComponent("model.safetensors").path)
        func norm(_ index: Int) throws -> Affine {
            let p = index == 0 ? "batch_normalization/" : "batch_normalization_\(index)/"
            let gamma = try file.floats(p + "gamma"), beta = try file.floats(p + "beta")
            let mean = try file.floats(p + "moving_mean"), variance = try file.floats(p + "moving_variance")
            guard [beta.count, mean.count, variance.count].allSatisfy({ $0 == gamma.count }) else {
                throw ModelLoadingError(file: file.path, reason: "\(p): parameter sizes differ")
            }
            let scale = zip(gamma, variance).map { $0 / ($1 + Self.batchNormEpsilon).squareRoot() }
            return Affine(scale: scale, shift: (0..<gamma.count).map { beta[$0] - mean[$0] * scale[$0] })
        }
        func convolution(_ index: Int, norm normIndex: Int) throws -> Convolution {
            let p = index == 0 ? "conv2d/" : "conv2d_\(index)/"
            let s = try file.shape(p + "kernel")
            guard s.count == 4 else { throw ModelLoadingError(file: file.path, reason: "\(p)kernel: shape \(s), expected HWIO") }
            let (h, w, i, o) = (s[0], s[1], s[2], s[3])
            let hwio = try file.floats(p + "kernel")
            var weights = [Float](repeating: 0, count: hwio.count)
            for out in 0..<o {
                for k in 0..<(h * w * i) { weights[out * h * w * i + k] = hwio[k * o + out] }
            }
            let bias = try file.floats(p + "bias")
            return Convolution(linear: Linear(weight: weights, bias: bias, outputs: o, inputs: h * w * i, precision: precision),
                               height: h, width: w, inputs: i, norm: try norm(normIndex))
        }
        func dense(_ name: String) throws -> Linear {
            let s = try file.shape(name + "/kernel")   // [in, out]
            guard s.count == 2 else { throw ModelLoadingError(file: file.path, reason: "\(name)/kernel: shape \(s)") }
            let kernel = try file.floats(name + "/kernel")
            var weights = [Float](repeating: 0, count: kernel.count)
            for i in 0..<s[0] { for o in 0..<s[1] { weights[o * s[0] + i] = kernel[i * s[1] + o] } }
            return Linear(weight: weights, bias: try file.floats(name + "/bias"), outputs: s[1], inputs: s[0], precision: precision)
        }
        inputNorm = try norm(0)
        timbral = [try convolution(0, norm: 1), try convolution(1, norm: 2)]
        temporal = [try convolution(2, norm: 3), try convolution(3, norm: 4), try convolution(4, norm: 5)]
        midend = [try convolution(5, norm: 6), try convolution(6, norm: 7), try convolution(7, norm: 8)]
        poolNorm = try norm(9)
        self.dense = try dense("dense")
        denseNorm = try norm(10)
        output = try dense("dense_1")
        let front = (timbral + temporal).map(\.linear.outputs).reduce(0, +)
        guard inputNorm.scale.count == 1, timbral.allSatisfy({ $0.height == 7 && $0.inputs == 1 && $0.width <= Self.bands }),
              temporal.allSatisfy({ $0.width == 1 && $0.inputs == 1 }), midend[0].width == front,
              midend.dropFirst().allSatisfy({ $0.width == midend[0].linear.outputs }),
              poolNorm.scale.count == 2 * (front + 3 * midend[0].linear.outputs), self.dense.inputs == poolNorm.scale.count
        else { throw ModelLoadingError(file: file.path, reason: "layer shapes do not form MTT_musicnn") }
    }

    public struct Output: Sendable {
        /// The 200-d penultimate layer (after its BatchNorm), per patch.
        public var features: [[Float]]
        /// Tag probabilities (sigmoid of the logits), per patch.
        public var tags: [[Float]]
    }

    /// Features and tag probabilities of `patches`, each `frames` × `bands` log-mel values, frame-major. With at
    /// least as many patches as threads, each thread runs whole patches; otherwise each layer is split by rows.
    public func run(_ patches: [[Float]]) -> Output {
        precondition(patches.allSatisfy { $0.count == Self.frames * Self.bands }, "patches must be \(Self.frames)×\(Self.bands)")
        let wholePatches = patches.count >= threads
        let outputs = Parallel.map(patches.count, parts: wholePatches ? threads : 1) { index in
            forward(patches[index], threads: wholePatches ? 1 : threads)
        }
        return Output(features: outputs.map(\.features), tags: outputs.map(\.tags))
    }

    /// Each value `x·scale + shift` of its channel (one row of all channels).
    static func normalise(_ x: inout [Float], _ affine: Affine) {
        for i in x.indices { x[i] = x[i] * affine.scale[i] + affine.shift[i] }
    }

    /// Floats of im2col patches per chunk: half a core's L2 cache. Patches for all frames at once (11 MB for the
    /// first timbral filter) went out to memory and back; a chunk's stay in cache for its product.
    static let chunkFloats = 128 * 1024

    /// im2col over time (`height` frames centred with `before` frames of padding) and `width` adjacent columns of
    /// a frames × `columns` input, then the layer, ReLU, BatchNorm and (when `poolColumns`) the maximum over the
    /// positions along the columns: frames × outputs. Frames go in chunks (split over `threads`), each chunk's
    /// patches built and multiplied while they are in cache; every row is computed as for all frames at once.
    private func convolve(_ input: [Float], columns: Int, _ conv: Convolution, before: Int, poolColumns: Bool,
                          threads: Int) -> [Float] {
        let t = Self.frames
        let positions = columns - conv.width + 1
        let (k, outputs) = (conv.height * conv.width, conv.linear.outputs)
        let framesPerChunk = max(1, Self.chunkFloats / (positions * k))
        let parts = Parallel.ranges(t, parts: threads)
        let rowsOut = poolColumns ? 1 : positions
        // A window one column wide is a run of one column over time: with the input transposed (and padded in
        // time), each patch is one contiguous copy rather than `height` strided loads.
        let transposed: [Float] = conv.width != 1 ? [] : {
            let padded = t + conv.height - 1
            var transposed = [Float](repeating: 0, count: columns * padded)
            for frame in 0..<t {
                for column in 0..<columns { transposed[column * padded + before + frame] = input[frame * columns + column] }
            }
            return transposed
        }()
        return [Float](unsafeUninitializedCapacity: t * rowsOut * outputs) { buffer, count in
            let result = UnsafeSendable(buffer.baseAddress!)
            Parallel.run(parts.count) { part in
                let chunk = min(framesPerChunk, parts[part].count)
                let patches = UnsafeMutablePointer<Float>.allocate(capacity: chunk * positions * k)
                let products = UnsafeMutablePointer<Float>.allocate(capacity: chunk * positions * outputs)
                defer { patches.deallocate(); products.deallocate() }
                for first in stride(from: parts[part].lowerBound, to: parts[part].upperBound, by: chunk) {
                    let frames = min(chunk, parts[part].upperBound - first)
                    if conv.width == 1 {
                        oe_im2col_time_columns(transposed, t, columns, conv.height, first, first + frames, patches)
                    } else {
                        oe_im2col_time(input, t, columns, conv.height, conv.width, before, first, first + frames, patches)
                    }
                    let rows = frames * positions
                    let out = poolColumns ? products : result.pointer + first * positions * outputs
                    conv.linear.apply(patches, rows: rows, into: out)
                    oe_relu_affine(out, rows, outputs, conv.norm.scale, conv.norm.shift)
                    if poolColumns { oe_max_groups(products, frames, positions, outputs, result.pointer + first * outputs) }
                }
            }
            count = t * rowsOut * outputs
        }
    }

    private func forward(_ patch: [Float], threads: Int) -> (features: [Float], tags: [Float]) {
        let t = Self.frames, bands = Self.bands
        let input = patch.map { $0 * inputNorm.scale[0] + inputNorm.shift[0] }
        // Front end: each branch gives frames × filters, concatenated per frame.
        var branches = timbral.map { convolve(input, columns: bands, $0, before: 3, poolColumns: true, threads: threads) }
        branches += temporal.map { convolve(input, columns: bands, $0, before: ($0.height - 1) / 2, poolColumns: true, threads: threads) }
        let widths = (timbral + temporal).map(\.linear.outputs)
        let front = widths.reduce(0, +)
        var frontEnd = [Float](repeating: 0, count: t * front)
        for frame in 0..<t {
            var column = frame * front
            for (branch, width) in zip(branches, widths) {
                frontEnd.replaceSubrange(column..<(column + width), with: branch[(frame * width)..<((frame + 1) * width)])
                column += width
            }
        }
        // Mid end: three convolutions over time, the last two residual.
        let first = convolve(frontEnd, columns: front, midend[0], before: 3, poolColumns: false, threads: threads)
        let filters = midend[0].linear.outputs
        var second = convolve(first, columns: filters, midend[1], before: 3, poolColumns: false, threads: threads)
        oe_add(&second, first, second.count)
        var third = convolve(second, columns: filters, midend[2], before: 3, poolColumns: false, threads: threads)
        oe_add(&third, second, third.count)
        // Back end: maximum and mean over time of every feature, interleaved as TensorFlow flattens [753, 2].
        let maps: [([Float], Int)] = [(frontEnd, front), (first, filters), (second, filters), (third, filters)]
        var pooled: [Float] = []
        for (map, width) in maps {
            for feature in 0..<width {
                var maximum = -Float.infinity, sum: Float = 0
                for frame in 0..<t {
                    let v = map[frame * width + feature]
                    maximum = max(maximum, v)
                    sum += v
                }
                pooled += [maximum, sum / Float(t)]
            }
        }
        Self.normalise(&pooled, poolNorm)
        var hidden = [Float](repeating: 0, count: dense.outputs)
        dense.apply(pooled, rows: 1, into: &hidden)
        oe_relu_affine(&hidden, 1, hidden.count, denseNorm.scale, denseNorm.shift)
        var logits = [Float](repeating: 0, count: output.outputs)
        output.apply(hidden, rows: 1, into: &logits)
        return (hidden, logits.map { 1 / (1 + expf(-$0)) })
    }

    /// Patches of a log-mel spectrogram (frames × bands) as musicnn's extractor cuts them: consecutive, not
    /// overlapping, the incomplete tail dropped; a recording shorter than one patch is padded with zeros (the
    /// reference refuses it).
    public static func patches(_ logMel: [Float]) -> [[Float]] {
        let frames = logMel.count / bands
        guard frames >= Self.frames else {
            return [logMel + [Float](repeating: 0, count: (Self.frames - frames) * bands)]
        }
        return stride(from: 0, to: frames - Self.frames + 1, by: Self.frames).map {
            Array(logMel[($0 * bands)..<(($0 + Self.frames) * bands)])
        }
    }
}
