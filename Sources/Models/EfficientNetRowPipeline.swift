import CKernels
import Tensor

/// The stem and the first blocks of EfficientNet-Lite, computed row by row.
///
/// Their maps are the largest of the network (block 1 expands 112 × 112 pixels to 96 channels: 4.8 MB), larger
/// than a core's L2 cache; computed layer by layer, each is written out to memory and read back, and those
/// layers ran at a fifth of the GEMM kernel's speed. Here every layer keeps only the rows that the next layer's
/// window still needs (a ring of rows, all of them together a few hundred KB), and produces a row when the next
/// layer asks for it; only the last layer writes a whole map. Each row is computed exactly as layer by layer
/// would compute it (the same kernels on the same rows), so the results do not change.
struct RowPipelinePlan: Sendable {
    enum Operation: Sendable {
        /// 3×3 stride-2 convolution of the input image through patches and a GEMM.
        case stem(Linear, pad: Int)
        case pointwise(Linear, relu6: Bool)
        case depthwise(EfficientNetLite.Depthwise, pad: Int)
    }

    struct Stage: Sendable {
        var operation: Operation
        /// The output map.
        var height: Int, width: Int, channels: Int
        /// The stage whose row r is added to this stage's row r (a block's input, for its residual).
        var residual: Int?
        /// How many rows of this stage's output are kept (the last stage keeps them all: the output map).
        var ring = 1
        var rowFloats: Int { width * channels }
    }

    let stages: [Stage]
    /// Blocks computed here whole; the rest run layer by layer.
    let blocks: Int
    /// Whether the expansion and depthwise convolution of the next block are computed here too (the output is
    /// then that block's depthwise output, and its projection runs layer by layer).
    let endsInsideBlock: Bool
    var output: Stage { stages[stages.count - 1] }

    init(stem: Linear, blocks: [EfficientNetLite.Block], count: Int, endsInsideBlock: Bool) {
        let side = EfficientNetLite.inputSize
        let (stemSide, stemPad) = EfficientNetLite.samePadding(size: side, kernel: 3, stride: 2)
        var stages = [Stage(operation: .stem(stem, pad: stemPad), height: stemSide, width: stemSide, channels: stem.outputs)]
        var size = stemSide
        for (index, block) in blocks.prefix(endsInsideBlock ? count + 1 : count).enumerated() {
            let input = stages.count - 1
            if let expand = block.expand {
                stages.append(Stage(operation: .pointwise(expand, relu6: true), height: size, width: size, channels: expand.outputs))
            }
            let d = block.depthwise
            let (outSide, pad) = EfficientNetLite.samePadding(size: size, kernel: d.kernel, stride: d.stride)
            stages.append(Stage(operation: .depthwise(d, pad: pad), height: outSide, width: outSide,
                                channels: stages[stages.count - 1].channels))
            size = outSide
            if index == count { break }
            stages.append(Stage(operation: .pointwise(block.project, relu6: false), height: size, width: size,
                                channels: block.outputs, residual: block.residual ? input : nil))
        }
        // Rows kept: a depthwise consumer's window needs `kernel` rows at once, a pointwise one needs one; a
        // block's input must also last until its projection adds it, by then up to `kernel` rows further on.
        for index in stages.indices.dropLast() {
            if case .depthwise(let d, _) = stages[index + 1].operation { stages[index].ring = d.kernel }
        }
        for stage in stages {
            guard let source = stage.residual else { continue }
            let kernel = stages[source...].lazy.compactMap { s -> Int? in
                if case .depthwise(let d, _) = s.operation { d.kernel } else { nil }
            }.first ?? 1
            stages[source].ring = max(stages[source].ring, kernel)
        }
        stages[stages.count - 1].ring = stages[stages.count - 1].height
        self.stages = stages
        self.blocks = count
        self.endsInsideBlock = endsInsideBlock
    }

    /// Floats of ring storage for one pipeline, the output map excluded.
    var ringFloats: Int { stages.dropLast().reduce(0) { $0 + $1.ring * $1.rowFloats } }
    var patchFloats: Int { stages[0].width * 27 }
}

/// One thread's rows and scratch for running a `RowPipelinePlan`; reused between calls.
final class RowPipeline: @unchecked Sendable {  // used by one thread at a time
    let plan: RowPipelinePlan
    private let storage: UnsafeMutablePointer<Float>
    private let patches: UnsafeMutablePointer<Float>
    private var rings: [UnsafeMutablePointer<Float>]
    /// Which row each ring slot holds (-1: none), to check that a row read is still there.
    private var held: [[Int]]
    /// The next row each stage will produce.
    private var produced: [Int]

    init(plan: RowPipelinePlan) {
        self.plan = plan
        storage = .allocate(capacity: plan.ringFloats)
        patches = .allocate(capacity: plan.patchFloats)
        var offset = 0
        var rings: [UnsafeMutablePointer<Float>] = []
        for stage in plan.stages.dropLast() {
            rings.append(storage + offset)
            offset += stage.ring * stage.rowFloats
        }
        self.rings = rings
        held = plan.stages.map { [Int](repeating: -1, count: $0.ring) }
        produced = [Int](repeating: 0, count: plan.stages.count)
    }

    deinit {
        storage.deallocate()
        patches.deallocate()
    }

    /// Rows `rows` of the last stage for one image (3 × 224 × 224, channel-major) into `output`, the whole
    /// output map of that image (height × width × channels), computing only the rows of earlier stages they need.
    func run(image: UnsafePointer<Float>, rows: Range<Int>, into output: UnsafeMutablePointer<Float>) {
        guard !rows.isEmpty else { return }
        let stages = plan.stages
        rings.append(output)
        defer { rings.removeLast() }
        // The first row each stage must produce, from the last stage back.
        produced[stages.count - 1] = rows.lowerBound
        for index in stride(from: stages.count - 2, through: 0, by: -1) {
            var first = produced[index + 1]
            if case .depthwise(let d, let pad) = stages[index + 1].operation {
                first = max(0, first * d.stride - pad)
            }
            for (consumer, stage) in stages.enumerated() where stage.residual == index {
                first = min(first, produced[consumer])
            }
            produced[index] = first
        }
        for index in held.indices { for slot in held[index].indices { held[index][slot] = -1 } }
        for row in rows { ensure(stages.count - 1, row, image: image) }
    }

    private func ensure(_ stage: Int, _ row: Int, image: UnsafePointer<Float>) {
        precondition(row < plan.stages[stage].height, "row \(row) of stage \(stage) is outside its map")
        while produced[stage] <= row {
            produce(stage, produced[stage], image: image)
            produced[stage] += 1
        }
    }

    /// Row `row` of `stage`, which must still be kept.
    private func kept(_ stage: Int, _ row: Int) -> UnsafeMutablePointer<Float> {
        let s = plan.stages[stage]
        precondition(held[stage][row % s.ring] == row, "row \(row) of stage \(stage) is no longer kept")
        return rings[stage] + (row % s.ring) * s.rowFloats
    }

    private func produce(_ index: Int, _ row: Int, image: UnsafePointer<Float>) {
        let stage = plan.stages[index]
        let out = rings[index] + (row % stage.ring) * stage.rowFloats
        switch stage.operation {
        case .stem(let stem, let pad):
            stemPatches(row: row, pad: pad, width: stage.width, image: image)
            stem.apply(patches, rows: stage.width, into: out, relu6: true)
        case .pointwise(let linear, let relu6):
            ensure(index - 1, row, image: image)
            linear.apply(kept(index - 1, row), rows: stage.width, into: out, relu6: relu6)
            if let residual = stage.residual { oe_add(out, kept(residual, row), stage.rowFloats) }
        case .depthwise(let d, let pad):
            let input = plan.stages[index - 1]
            let y0 = row * d.stride - pad
            let (ky0, ky1) = (max(0, -y0), min(d.kernel, input.height - y0))
            ensure(index - 1, y0 + ky1 - 1, image: image)
            withUnsafeTemporaryAllocation(of: UnsafePointer<Float>?.self, capacity: d.kernel) { rows in
                rows.initialize(repeating: nil)
                for ky in ky0..<ky1 { rows[ky] = UnsafePointer(kept(index - 1, y0 + ky)) }
                oe_depthwise_row(rows.baseAddress, ky0, ky1, input.width, input.channels, d.weights, d.bias, d.kernel,
                                 d.stride, pad, out, stage.width, 1)
            }
        }
        held[index][row % stage.ring] = row
    }

    /// The 3×3 stride-2 patches (zero outside, "SAME") of stem output row `row`, in the weights' order
    /// [ky][kx][channel].
    private func stemPatches(row: Int, pad: Int, width: Int, image: UnsafePointer<Float>) {
        let side = EfficientNetLite.inputSize
        patches.initialize(repeating: 0, count: width * 27)
        for ox in 0..<width {
            let patch = patches + ox * 27
            for ky in 0..<3 { for kx in 0..<3 {
                let (iy, ix) = (row * 2 + ky - pad, ox * 2 + kx - pad)
                guard iy >= 0, iy < side, ix >= 0, ix < side else { continue }
                for c in 0..<3 { patch[(ky * 3 + kx) * 3 + c] = image[(c * side + iy) * side + ix] }
            } }
        }
    }
}
