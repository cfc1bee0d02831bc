import CMediaKernels

/// Antialiased bilinear resizing, computed as Pillow's `Image.resize(size, Image.BILINEAR)` computes it: separable
/// passes (horizontal, then vertical) with a triangle filter widened by the scale factor when shrinking,
/// fixed-point weights with 22 fractional bits, and each pass rounded to 8 bits. So our preprocessing reproduces
/// the reference pipeline's pixels instead of approximating them.
public enum ImageResize {
    static let precisionBits = 22

    /// Per output index: the first input index, how many inputs it blends and their fixed-point weights, in a
    /// table `taps` wide.
    struct Weights {
        var starts: [Int32] = []
        var counts: [Int32] = []
        var weights: [Int32] = []
        var taps = 0
    }

    static func weights(inputSize: Int, outputSize: Int) -> Weights {
        Weights.compute(inputSize: inputSize, outputSize: outputSize, outputs: 0..<outputSize)
    }

    /// `image` resized to `width`×`height`.
    public static func bilinear(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
        bilinear(image, width: width, height: height, columns: 0..<width, rows: 0..<height)
    }

    /// The window `columns` × `rows` of `image` resized to `width`×`height`: the same pixels as resizing
    /// everything and cropping (every output pixel is computed alone). Work and memory are bounded by the window
    /// and the input rows it reads, whatever `width` and `height` are: weights are computed for the window's
    /// outputs only, and the horizontal pass runs only over the input rows the vertical pass blends.
    public static func bilinear(_ image: RGBImage, width: Int, height: Int, columns: Range<Int>, rows: Range<Int>) -> RGBImage {
        precondition(columns.lowerBound >= 0 && columns.upperBound <= width && rows.lowerBound >= 0 && rows.upperBound <= height)
        let resizesColumns = width != image.width || columns != 0..<width
        let resizesRows = height != image.height || rows != 0..<height
        let vertical = resizesRows ? Weights.compute(inputSize: image.height, outputSize: height, outputs: rows) : nil
        // The input rows the output rows read (all of them when there is no vertical pass).
        let inputRows = vertical?.inputRange ?? rows
        let rowBytes = image.width * 3
        var current = image
        if resizesColumns {
            let w = Weights.compute(inputSize: image.width, outputSize: width, outputs: columns)
            var out = [UInt8](repeating: 0, count: columns.count * inputRows.count * 3)
            var scratch = [Int32](repeating: 0, count: oe_resample_rows_scratch(image.width, columns.count, 3, w.taps))
            image.pixels.withUnsafeBufferPointer { pixels in
                oe_resample_rows_u8(pixels.baseAddress! + inputRows.lowerBound * rowBytes, image.width, inputRows.count, 3,
                                    &out, columns.count, w.starts, w.counts, w.weights, w.taps, &scratch)
            }
            current = RGBImage(width: columns.count, height: inputRows.count, pixels: out)
        } else if inputRows != 0..<image.height {
            current = RGBImage(width: image.width, height: inputRows.count,
                               pixels: Array(image.pixels[(inputRows.lowerBound * rowBytes)..<(inputRows.upperBound * rowBytes)]))
        }
        if var w = vertical {
            // Starts relative to the first row kept.
            for index in w.starts.indices { w.starts[index] -= Int32(inputRows.lowerBound) }
            var out = [UInt8](repeating: 0, count: current.width * rows.count * 3)
            var scratch = [Int32](repeating: 0, count: current.width * 3)
            oe_resample_columns_u8(current.pixels, current.width * 3, &out, rows.count, w.starts, w.counts, w.weights,
                                   w.taps, &scratch)
            current = RGBImage(width: current.width, height: rows.count, pixels: out)
        }
        return current
    }
}

extension ImageResize.Weights {
    /// The input indices the outputs read.
    var inputRange: Range<Int> {
        guard !starts.isEmpty else { return 0..<0 }
        let first = starts.min()!
        let last = zip(starts, counts).map { Int($0) + Int($1) }.max()!
        return Int(first)..<max(Int(first), last)
    }

    /// The weights of the outputs in `outputs` of a resize from `inputSize` to `outputSize`: an output's weights
    /// depend only on its own index, so a window costs its size, not the whole output's.
    static func compute(inputSize: Int, outputSize: Int, outputs: Range<Int>) -> Self {
        let scale = Double(inputSize) / Double(outputSize)
        let filterScale = max(scale, 1)
        let support = 1.0 * filterScale   // the triangle filter reaches ±1 input pixel at scale 1
        func window(_ index: Int) -> (center: Double, first: Int, count: Int) {
            let center = (Double(index) + 0.5) * scale
            let first = max(Int(center - support + 0.5), 0)
            return (center, first, max(min(Int(center + support + 0.5), inputSize) - first, 0))
        }
        var result = Self()
        result.taps = outputs.reduce(0) { max($0, window($1).count) }
        result.weights = [Int32](repeating: 0, count: outputs.count * result.taps)
        var raw = [Double](repeating: 0, count: result.taps)
        for (row, index) in outputs.enumerated() {
            let (center, first, count) = window(index)
            var total = 0.0
            for t in 0..<count {
                let distance = abs((Double(first + t) - center + 0.5) / filterScale)
                raw[t] = distance < 1 ? 1 - distance : 0
                total += raw[t]
            }
            for t in 0..<count {
                let w = total != 0 ? raw[t] / total : raw[t]
                let scaled = w * Double(1 << ImageResize.precisionBits)
                result.weights[row * result.taps + t] = Int32((w < 0 ? scaled - 0.5 : scaled + 0.5).rounded(.towardZero))
            }
            result.starts.append(Int32(first))
            result.counts.append(Int32(count))
        }
        return result
    }
}
