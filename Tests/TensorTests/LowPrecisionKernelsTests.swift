import CKernels
import Foundation
import Testing
@testable import Tensor

/// The bf16 and int8 packed kernels, called directly (a `Linear` asked for a precision the kernel set lacks is
/// fp32): the instruction's path on an AVX-512 run, the plain-C path on the narrower runs of scripts/test, each
/// against a Swift reference of the same arithmetic.
@Suite struct LowPrecisionKernelsTests {
    func random(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var seed = seed
        return randomMatrix(1, count, seed: &seed).values.map { $0 * scale }
    }

    static let shapes = [(1, 50, 37), (8, 1152, 384), (13, 384, 1536), (65, 70, 20), (3, 33, 9), (70, 112, 41), (9, 16, 3)]

    func bf16(_ x: [Float], rows: Int, weight: [Float], bias: [Float], outputs: Int, inputs: Int, relu6: Bool = false) -> [Float] {
        var packed = [UInt16](repeating: 0, count: oe_packed_bf16_size(outputs, inputs))
        oe_pack_weights_bf16(weight, outputs, inputs, &packed)
        var y = [Float](repeating: .nan, count: rows * outputs)
        oe_packed_linear_bf16(x, rows, inputs, packed, outputs, bias, &y, outputs, relu6 ? 1 : 0)
        return y
    }

    func int8(_ x: [Float], rows: Int, weight: [Float], bias: [Float], outputs: Int, inputs: Int, relu6: Bool = false,
              smoothing: [Float]? = nil) -> [Float] {
        let columns = oe_packed_int8_columns(outputs)
        var codes = [Int8](repeating: 0, count: oe_packed_int8_size(outputs, inputs))
        var scales = [Float](repeating: 0, count: columns), sums = [Int32](repeating: 0, count: columns)
        oe_pack_weights_int8(weight, outputs, inputs, &codes, &scales, &sums)
        var y = [Float](repeating: .nan, count: rows * outputs)
        if let smoothing {
            oe_packed_linear_int8(x, rows, inputs, smoothing, codes, scales, sums, outputs, bias, &y, outputs, relu6 ? 1 : 0)
        } else {
            oe_packed_linear_int8(x, rows, inputs, nil, codes, scales, sums, outputs, bias, &y, outputs, relu6 ? 1 : 0)
        }
        return y
    }

    func round(_ value: Float) -> Float { oe_bf16_float(oe_bf16(value)) }

    @Test func bf16RoundsToNearestEven() {
        #expect(round(1) == 1 && round(-2.5) == -2.5)
        #expect(round(1 + 1.0 / 256) == 1)                    // a tie: to the even neighbour
        #expect(round(1 + 3.0 / 256) == 1 + 4.0 / 256)          // a tie the other way
        #expect(round(1 + 1.0 / 256 + 1.0 / 4096) == 1 + 2.0 / 256)
        #expect(round(Float.leastNonzeroMagnitude) == 0 && round(.infinity) == .infinity && round(.nan).isNaN)
    }

    /// The packed layout, value by value (panel p, pair q, column j: q·64 + 2j, zeros past the edges), whole
    /// 32 × 32 blocks (vectors on AVX512_BF16) and edges alike; NaN, infinities and denormals rounded as one value.
    @Test(arguments: [(64, 64), (100, 70), (32, 33), (31, 32), (1152, 384), (5, 3)])
    func bf16PackingPlacesEveryRoundedWeight(outputs: Int, inputs: Int) {
        var weight = random(outputs * inputs, seed: 37)
        for (index, special) in [Float.nan, .infinity, -.infinity, .leastNonzeroMagnitude, -0.0, 3e38].enumerated()
        where index * 7 < weight.count {
            weight[index * 7] = special
        }
        var packed = [UInt16](repeating: 0xffff, count: oe_packed_bf16_size(outputs, inputs))
        oe_pack_weights_bf16(weight, outputs, inputs, &packed)
        let kp = (inputs + 1) / 2 * 2
        var expected = [UInt16](repeating: 0, count: packed.count)
        for column in 0..<outputs {
            for k in 0..<inputs {
                expected[column / 32 * 32 * kp + k / 2 * 64 + column % 32 * 2 + k % 2] = oe_bf16(weight[column * inputs + k])
            }
        }
        #expect(packed == expected)
    }

    /// The products of the bfloat16-rounded operands summed in fp32 pair by pair, as vdpbf16ps sums them: within
    /// fp32 summation error of that sum, and within bf16's rounding of the exact product.
    @Test(arguments: shapes)
    func bf16MatchesTheRoundedProducts(rows: Int, outputs: Int, inputs: Int) {
        let weight = random(outputs * inputs, seed: 31), bias = random(outputs, seed: 32), x = random(rows * inputs, seed: 33)
        let y = bf16(x, rows: rows, weight: weight, bias: bias, outputs: outputs, inputs: inputs)
        var (worst, worstExact) = (0.0, 0.0)
        for r in 0..<rows {
            for o in 0..<outputs {
                var rounded = Double(bias[o]), exact = Double(bias[o]), magnitude = 0.0
                for i in 0..<inputs {
                    rounded += Double(round(x[r * inputs + i])) * Double(round(weight[o * inputs + i]))
                    exact += Double(x[r * inputs + i]) * Double(weight[o * inputs + i])
                    magnitude += abs(Double(x[r * inputs + i]) * Double(weight[o * inputs + i]))
                }
                worst = max(worst, abs(Double(y[r * outputs + o]) - rounded))
                worstExact = max(worstExact, abs(Double(y[r * outputs + o]) - exact) / max(magnitude, 1e-9))
            }
        }
        #expect(worst <= 1e-5 * Double(inputs).squareRoot(), "\(worst)")
        #expect(worstExact <= 2 * 1.0 / 256, "\(worstExact)")
    }

    /// int8 is exact integer arithmetic and a fixed fp32 epilogue: the same bits as this reference on every path,
    /// with and without per-input multipliers applied before a row is quantised.
    @Test(arguments: shapes)
    func int8EqualsItsReferenceBitForBit(rows: Int, outputs: Int, inputs: Int) {
        let weight = random(outputs * inputs, seed: 41), bias = random(outputs, seed: 42), plain = random(rows * inputs, seed: 43)
        let multipliers = random(inputs, seed: 44).map { 0.25 + abs($0) * 3 }
        for (relu6, smoothing) in [(false, nil), (true, nil), (false, multipliers)] {
            let y = int8(plain, rows: rows, weight: weight, bias: bias, outputs: outputs, inputs: inputs, relu6: relu6,
                         smoothing: smoothing)
            let x = smoothing.map { m in plain.indices.map { plain[$0] * m[$0 % inputs] } } ?? plain
            func quantised(_ values: ArraySlice<Float>) -> (codes: [Int], scale: Float) {
                let largest = values.reduce(Float(0)) { max($0, abs($1)) }
                let inverse: Float = largest > 0 ? 127 / largest : 0
                return (values.map { Int(max(-127, min(127, ($0 * inverse).rounded(.toNearestOrEven)))) }, largest / 127)
            }
            var expected = [Float](repeating: 0, count: rows * outputs)
            let columns = (0..<outputs).map { o in
                let w = weight[o * inputs..<(o + 1) * inputs]
                let largest = w.reduce(Float(0)) { max($0, abs($1)) }
                let scale: Float = largest > 0 ? largest / 127 : 1
                return (w.map { Int(max(-127, min(127, ($0 / scale).rounded(.toNearestOrEven)))) }, scale)
            }
            for r in 0..<rows {
                let (codes, rowScale) = quantised(x[r * inputs..<(r + 1) * inputs])
                for o in 0..<outputs {
                    let dot = zip(codes, columns[o].0).reduce(0) { $0 + $1.0 * $1.1 }
                    let scale = rowScale * columns[o].1
                    var v = Float(dot) * scale
                    v = v + bias[o]
                    expected[r * outputs + o] = relu6 ? min(max(v, 0), 6) : v
                }
            }
            #expect(y == expected, "relu6 \(relu6), smoothing \(smoothing != nil)")
        }
    }

    /// Both stay close to fp32 on activations shaped like a transformer's (a few large channels).
    @Test func int8KeepsTheDirectionOfOutliersRows() {
        let (rows, outputs, inputs) = (16, 384, 1536)
        var x = random(rows * inputs, seed: 51)
        for r in 0..<rows { x[r * inputs + 7] *= 40 }
        let weight = random(outputs * inputs, seed: 52, scale: 0.05), bias = [Float](repeating: 0, count: outputs)
        var reference = [Float](repeating: 0, count: rows * outputs)
        Linear(weight: weight, bias: bias, outputs: outputs, inputs: inputs).apply(x, rows: rows, into: &reference, packedRowLimit: .max)
        for y in [int8(x, rows: rows, weight: weight, bias: bias, outputs: outputs, inputs: inputs),
                  bf16(x, rows: rows, weight: weight, bias: bias, outputs: outputs, inputs: inputs)] {
            for r in 0..<rows {
                let a = y[r * outputs..<(r + 1) * outputs], b = reference[r * outputs..<(r + 1) * outputs]
                let cosine = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                    / (a.reduce(0.0) { $0 + Double($1) * Double($1) } * b.reduce(0.0) { $0 + Double($1) * Double($1) }).squareRoot()
                #expect(cosine > 0.99, "row \(r): \(cosine)")
            }
        }
    }

    /// Smoothing moves an outlier channel's range into the weights: on rows with two channels forty times the rest,
    /// the int8 layer lands closer to fp32 with it than without, and the product is still the same product.
    @Test(.enabled(if: Precision.int8.isNative, "int8 runs fp32 on this kernel set"))
    func smoothingBringsOutlierRowsCloserToFP32() {
        let (rows, outputs, inputs) = (16, 384, 384)
        var x = random(rows * inputs, seed: 53)
        for r in 0..<rows { x[r * inputs + 7] *= 40; x[r * inputs + 300] *= -40 }
        let weight = random(outputs * inputs, seed: 54, scale: 0.05), bias = random(outputs, seed: 55)
        let xMax = (0..<inputs).map { j in (0..<rows).map { abs(x[$0 * inputs + j]) }.max()! }
        let wMax = (0..<inputs).map { j in (0..<outputs).map { abs(weight[$0 * inputs + j]) }.max()! }
        let smoothing = zip(xMax, wMax).map { ($0 / $1).squareRoot() }
        var reference = [Float](repeating: 0, count: rows * outputs), plain = reference, smoothed = reference
        Linear(weight: weight, bias: bias, outputs: outputs, inputs: inputs).apply(x, rows: rows, into: &reference, packedRowLimit: .max)
        Linear(weight: weight, bias: bias, outputs: outputs, inputs: inputs, precision: .int8).apply(x, rows: rows, into: &plain)
        Linear(weight: weight, bias: bias, outputs: outputs, inputs: inputs, precision: .int8, smoothing: smoothing)
            .apply(x, rows: rows, into: &smoothed)
        func error(_ y: [Float]) -> Double {
            zip(y, reference).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }.squareRoot()
                / reference.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        }
        #expect(error(smoothed) < error(plain) / 2, "smoothed \(error(smoothed)), plain \(error(plain))")
        #expect(error(smoothed) < 0.02, "\(error(smoothed))")
    }

    /// A row's result is the same bits alone as in any batch, in both precisions, and with the column split.
    @Test func rowsDoNotDependOnTheBatch() {
        let (rows, outputs, inputs) = (21, 200, 96)
        let weight = random(outputs * inputs, seed: 61), bias = random(outputs, seed: 62), x = random(rows * inputs, seed: 63)
        let kernels: [([Float], Int, [Float], [Float], Int, Int, Bool) -> [Float]] = [
            { bf16($0, rows: $1, weight: $2, bias: $3, outputs: $4, inputs: $5, relu6: $6) },
            { int8($0, rows: $1, weight: $2, bias: $3, outputs: $4, inputs: $5, relu6: $6) },
        ]
        for kernel in kernels {
            let batch = kernel(x, rows, weight, bias, outputs, inputs, false)
            for r in [0, 7, 20] {
                let alone = kernel(Array(x[r * inputs..<(r + 1) * inputs]), 1, weight, bias, outputs, inputs, false)
                #expect(alone == Array(batch[r * outputs..<(r + 1) * outputs]))
            }
        }
        for precision in [Precision.bf16, .int8] where precision.isNative {
            let layer = Linear(weight: weight, bias: bias, outputs: outputs, inputs: inputs, precision: precision)
            #expect(layer.precision == precision)
            var alone = [Float](repeating: .nan, count: rows * outputs), split = alone
            layer.apply(x, rows: rows, into: &alone)
            layer.apply(x, rows: rows, into: &split, columnThreads: 3)
            #expect(split == alone)
        }
    }

    /// Without the instruction (a narrower kernel set, or a CPU without it) a layer is fp32.
    @Test func aPrecisionTheKernelSetLacksIsFP32() {
        let layer = Linear(weight: random(64 * 32, seed: 71), bias: random(64, seed: 72), outputs: 64, inputs: 32, precision: .int8)
        #expect(layer.precision == (Precision.int8.isNative ? .int8 : .fp32))
        if KernelSet.current < .avx512 {
            #expect(!Precision.bf16.isNative && !Precision.int8.isNative && Precision.bf16.effective == .fp32)
        }
        #expect(Precision.fp32.isNative)
    }
}
