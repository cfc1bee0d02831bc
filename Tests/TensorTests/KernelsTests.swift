import CKernels
import Foundation
import Testing
@testable import Tensor

/// The vectorised kernels against straightforward Double-precision loops.
@Suite struct KernelsTests {
    func random(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var seed = seed
        return randomMatrix(1, count, seed: &seed).values.map { $0 * scale }
    }

    @Test func expIsWithinTwoMillionthsRelative() {
        let x = stride(from: Float(-87), through: 88, by: 0.001).map { $0 }
        let y = Kernels.exp(x)
        let worst = zip(x, y).map { abs(Double($1) / Foundation.exp(Double($0)) - 1) }.max()!
        #expect(worst < 2e-7, "worst relative error \(worst)")
        // Far below the range: tiny, not NaN or negative; never infinite above it.
        let extremes = Kernels.exp([-1000, -88, 89, 1000])
        #expect(extremes[0] >= 0 && extremes[0] < 1e-37 && extremes[1] < 1e-37)
        #expect(extremes[2].isFinite && extremes[3].isFinite)
    }

    @Test func erfIsWithinHalfAMillionthAbsolute() {
        let x = stride(from: Float(-10), through: 10, by: 0.0005).map { $0 }
        let y = Kernels.erf(x)
        let worst = zip(x, y).map { abs(Double($1) - Foundation.erf(Double($0))) }.max()!
        #expect(worst < 5e-7, "worst absolute error \(worst)")
    }

    @Test(arguments: [1, 15, 16, 17, 1536 * 3 + 5])
    func geluMatchesTheErfDefinition(count: Int) {
        var x = random(count, seed: UInt64(count), scale: 6)
        let expected = x.map { 0.5 * Double($0) * (1 + Foundation.erf(Double($0) / 2.0.squareRoot())) }
        Kernels.gelu(&x, count: count)
        let worst = zip(x, expected).map { abs(Double($0) - $1) }.max()!
        #expect(worst < 3e-6, "worst \(worst)")
    }

    @Test(arguments: [(1, 1), (3, 7), (5, 16), (2, 300)])
    func softmaxRowsSumToOneAndMatch(rows: Int, columns: Int) {
        var x = random(rows * columns, seed: UInt64(rows * 31 + columns), scale: 30)
        let input = x
        Kernels.softmaxRows(&x, rows: rows, columns: columns)
        for row in 0..<rows {
            let slice = input[(row * columns)..<((row + 1) * columns)].map(Double.init)
            let maximum = slice.max()!
            let total = slice.map { Foundation.exp($0 - maximum) }.reduce(0, +)
            for column in 0..<columns {
                let expected = Foundation.exp(slice[column] - maximum) / total
                #expect(abs(Double(x[row * columns + column]) - expected) < 1e-6)
            }
        }
    }

    @Test(arguments: [1, 17, 384])
    func addLayerNormMatches(columns: Int) {
        let rows = 3
        var x = random(rows * columns, seed: 5, scale: 4)
        let residual = random(rows * columns, seed: 6)
        let weight = random(columns, seed: 7), bias = random(columns, seed: 8)
        let input = x
        Kernels.addLayerNorm(&x, residual: residual, rows: rows, columns: columns, weight: weight, bias: bias, epsilon: 1e-12)
        for row in 0..<rows {
            let values = (0..<columns).map { Double(input[row * columns + $0]) + Double(residual[row * columns + $0]) }
            let mean = values.reduce(0, +) / Double(columns)
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(columns)
            for j in 0..<columns {
                let expected = (values[j] - mean) / (variance + 1e-12).squareRoot() * Double(weight[j]) + Double(bias[j])
                #expect(abs(Double(x[row * columns + j]) - expected) < 1e-4, "row \(row) column \(j)")
            }
        }
    }

    /// Both paths of `Linear` (packed kernel for few rows, OpenBLAS for many) against Double loops, with widths
    /// that are not multiples of the packed panel.
    @Test(arguments: [(1, 50, 37), (8, 1152, 384), (13, 384, 1536), (65, 70, 20), (200, 33, 9), (19, 16, 24), (70, 112, 40)])
    func linearMatchesLoops(rows: Int, outputs: Int, inputs: Int) {
        let weight = random(outputs * inputs, seed: 11), bias = random(outputs, seed: 12)
        let x = random(rows * inputs, seed: 13)
        let layer = Linear(weight: weight, bias: bias, outputs: outputs, inputs: inputs)
        for limit in [0, Int.max] {
            var y = [Float](repeating: .nan, count: rows * outputs)
            layer.apply(x, rows: rows, into: &y, packedRowLimit: limit)
            var worst = 0.0
            for r in 0..<rows {
                for o in 0..<outputs {
                    var sum = Double(bias[o])
                    for i in 0..<inputs { sum += Double(x[r * inputs + i]) * Double(weight[o * inputs + i]) }
                    worst = max(worst, abs(Double(y[r * outputs + o]) - sum))
                }
            }
            #expect(worst <= 1e-4 * Double(inputs).squareRoot(), "limit \(limit): \(worst)")
        }
    }

    /// Splitting the packed path's output columns over threads changes no bit of the output.
    @Test(arguments: [(1, 50, 37), (12, 1152, 384), (7, 384, 1536), (3, 33, 9), (12, 80, 64)])
    func columnThreadsGiveTheSameBits(rows: Int, outputs: Int, inputs: Int) {
        let layer = Linear(weight: random(outputs * inputs, seed: 21), bias: random(outputs, seed: 22), outputs: outputs, inputs: inputs)
        let x = random(rows * inputs, seed: 23)
        var alone = [Float](repeating: .nan, count: rows * outputs)
        layer.apply(x, rows: rows, into: &alone)
        for threads in [2, 3, 64] {
            var split = [Float](repeating: .nan, count: rows * outputs)
            layer.apply(x, rows: rows, into: &split, columnThreads: threads)
            #expect(split == alone, "\(threads) threads")
        }
    }

    /// The depthwise convolution with TensorFlow "SAME" padding and ReLU6 against Double loops: the 3×3 and 5×5
    /// tiles at strides 1 and 2, the tile for other kernels, edge pixels, channel counts that are not a multiple of
    /// 16 (pixel by pixel), and output rows computed in two calls, as threads split them.
    @Test(arguments: [(3, 1, 23, 32), (3, 2, 24, 48), (5, 1, 14, 16), (5, 2, 15, 32), (7, 1, 20, 16), (3, 1, 17, 20),
                      (5, 1, 7, 64)])
    func depthwiseMatchesLoops(kernel: Int, stride: Int, side: Int, channels: Int) {
        let out = (side + stride - 1) / stride
        let pad = max((out - 1) * stride + kernel - side, 0) / 2
        let x = random(side * side * channels, seed: 31, scale: 2), w = random(kernel * kernel * channels, seed: 32)
        let bias = random(channels, seed: 33)
        var y = [Float](repeating: .nan, count: out * out * channels)
        oe_depthwise_conv(x, side, side, channels, w, bias, kernel, stride, pad, pad, &y, out, 0, out / 2, 1)
        oe_depthwise_conv(x, side, side, channels, w, bias, kernel, stride, pad, pad, &y, out, out / 2, out, 1)
        var worst = 0.0
        for oy in 0..<out {
            for ox in 0..<out {
                for c in 0..<channels {
                    var sum = Double(bias[c])
                    for ky in 0..<kernel {
                        for kx in 0..<kernel {
                            let (iy, ix) = (oy * stride + ky - pad, ox * stride + kx - pad)
                            guard iy >= 0, iy < side, ix >= 0, ix < side else { continue }
                            sum += Double(x[(iy * side + ix) * channels + c]) * Double(w[(ky * kernel + kx) * channels + c])
                        }
                    }
                    worst = max(worst, abs(Double(y[(oy * out + ox) * channels + c]) - min(max(sum, 0), 6)))
                }
            }
        }
        #expect(worst <= 1e-5, "kernel \(kernel), stride \(stride), side \(side), channels \(channels): \(worst)")
    }

    /// Attention over a fused QKV block, for lengths around the vector width and past the direct-kernel limit.
    /// The largest difference between `Attention.context` in `precision` and Double loops.
    func attentionError(length: Int, headSize: Int, precision: Precision) -> Double {
        let shape = Attention.Shape(heads: 3, headSize: headSize)
        let (h, stride) = (shape.hidden, 3 * shape.hidden)
        let qkv = random(length * stride, seed: UInt64(length), scale: 2)
        let queries = (length / 3)..<length
        var context = [Float](repeating: .nan, count: queries.count * h)
        var scratch = [Float](repeating: 0, count: Attention.scratchSize(length: length, queries: queries.count, shape: shape))
        Attention.context(qkv: qkv, length: length, queries: queries, shape: shape, into: &context, scratch: &scratch,
                          precision: precision)
        let scale = 1 / Double(headSize).squareRoot()
        var worst = 0.0
        func value(_ row: Int, _ block: Int, _ head: Int, _ d: Int) -> Double {
            Double(qkv[row * stride + block * h + head * headSize + d])
        }
        for head in 0..<shape.heads {
            for (index, query) in queries.enumerated() {
                var scores = [Double](repeating: 0, count: length)
                for key in 0..<length {
                    for d in 0..<headSize { scores[key] += value(query, 0, head, d) * value(key, 1, head, d) }
                    scores[key] *= scale
                }
                let maximum = scores.max()!
                let weights = scores.map { Foundation.exp($0 - maximum) }
                let total = weights.reduce(0, +)
                for d in 0..<headSize {
                    var expected = 0.0
                    for key in 0..<length { expected += weights[key] / total * value(key, 2, head, d) }
                    worst = max(worst, abs(Double(context[index * h + head * headSize + d]) - expected))
                }
            }
        }
        return worst
    }

    @Test(arguments: [(1, 32), (5, 32), (16, 32), (33, 64), (100, 24), (20, 40), (7, 12), (600, 32)])
    func attentionMatchesLoops(length: Int, headSize: Int) {
        let worst = attentionError(length: length, headSize: headSize, precision: .fp32)
        #expect(worst < 1e-5, "worst \(worst)")
    }

    /// bf16 operands in both products (head sizes of 16s; others run fp32): within bfloat16's rounding of the
    /// loops (values up to 2 in magnitude), odd lengths and keys past a 16 boundary included.
    @Test(arguments: [(1, 32), (17, 32), (32, 32), (33, 64), (100, 16), (300, 32), (57, 12)])
    func bf16AttentionStaysNearLoops(length: Int, headSize: Int) {
        let worst = attentionError(length: length, headSize: headSize, precision: .bf16)
        let bf16 = headSize % 16 == 0 && length >= Attention.bf16MinLength && Precision.bf16.isNative
        #expect(worst < (bf16 ? 3e-2 : 1e-5), "worst \(worst)")
        if bf16 { #expect(worst > 1e-6, "bf16 products are not fp32's") }
    }

    /// NaN scores (a corrupt vector) are never among the best of a long row, wherever they sit: on the lane
    /// maxima's path, vector or plain, the best of the other scores come back.
    @Test func topKPassesOverNaN() {
        let columns = 1000
        var row = random(columns, seed: 5)
        for j in [0, 1, 17, 63, 64, 500, 998, 999] { row[j] = .nan }
        let (index, score) = Kernels.topK(row, rows: 1, columns: columns, k: 10)
        let expected = (0..<columns).filter { !row[$0].isNaN }.sorted { row[$0] > row[$1] }.prefix(10)
        #expect(index.map(Int.init) == Array(expected) && score == expected.map { row[$0] })
    }

    /// Top-k against a full sort (score descending, then column ascending), on both paths (a threshold from
    /// lane maxima when the row is long enough for k, a heap over the whole row otherwise), with ties and with
    /// rows whose best scores sit together at the start or the end.
    @Test func topKEqualsAFullSort() {
        for (columns, k) in [(1000, 10), (1000, 1), (1000, 100), (37, 37), (300, 5), (17, 16), (2000, 64), (1001, 10), (263, 16), (999, 3)] {
            var rows = random(5 * columns, seed: UInt64(columns * 131 + k))
            for j in 0..<columns { rows[columns + j] = Float(j % 7) }  // many ties
            for j in 0..<columns { rows[2 * columns + j] = Float(j) }  // ascending: every score enters
            for j in 0..<columns { rows[3 * columns + j] = Float(-j) }  // descending
            for j in 0..<columns { rows[4 * columns + j] = 0.5 }  // all equal
            let (index, score) = Kernels.topK(rows, rows: 5, columns: columns, k: k)
            for r in 0..<5 {
                let expected = (0..<columns).sorted { a, b in
                    let (x, y) = (rows[r * columns + a], rows[r * columns + b])
                    return x > y || (x == y && a < b)
                }.prefix(k)
                #expect(index[r * k..<(r + 1) * k].map(Int.init) == Array(expected), "columns \(columns), k \(k), row \(r)")
                #expect(score[r * k..<(r + 1) * k].elementsEqual(expected.map { rows[r * columns + $0] }))
            }
        }
    }
}
