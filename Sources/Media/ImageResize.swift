import CKernels

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
        Weights.compute(inputSize: inputSize, outputSize: outputSize)
    }

    /// `image` resized to `width`×`height`.
    public static func bilinear(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
        bilinear(image, width: width, height: height, columns: 0..<width, rows: 0..<height)
    }

    /// The window `columns` × `rows` of `image` resized to `width`×`height`: the same pixels as resizing
    /// everything and cropping (every output pixel is computed alone), without computing the rest.
    public static func bilinear(_ image: RGBImage, width: Int, height: Int, columns: Range<Int>, rows: Range<Int>) -> RGBImage {
        var current = image
        if width != image.width || columns != 0..<width {
            let w = weights(inputSize: image.width, outputSize: width).window(columns)
            var out = [UInt8](repeating: 0, count: columns.count * image.height * 3)
            var scratch = [Int32](repeating: 0, count: oe_resample_rows_scratch(image.width, columns.count, 3, w.taps))
            oe_resample_rows_u8(image.pixels, image.width, image.height, 3, &out, columns.count, w.starts, w.counts,
                                w.weights, w.taps, &scratch)
            current = RGBImage(width: columns.count, height: image.height, pixels: out)
        }
        if height != current.height || rows != 0..<height {
            let w = weights(inputSize: current.height, outputSize: height).window(rows)
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
    /// The weights of the outputs in `range` only.
    func window(_ range: Range<Int>) -> Self {
        var result = Self()
        result.taps = taps
        result.starts = Array(starts[range])
        result.counts = Array(counts[range])
        result.weights = Array(weights[(range.lowerBound * taps)..<(range.upperBound * taps)])
        return result
    }

    static func compute(inputSize: Int, outputSize: Int) -> Self {
        let scale = Double(inputSize) / Double(outputSize)
        let filterScale = max(scale, 1)
        let support = 1.0 * filterScale   // the triangle filter reaches ±1 input pixel at scale 1
        func window(_ index: Int) -> (center: Double, first: Int, count: Int) {
            let center = (Double(index) + 0.5) * scale
            let first = max(Int(center - support + 0.5), 0)
            return (center, first, max(min(Int(center + support + 0.5), inputSize) - first, 0))
        }
        var result = Self()
        result.taps = (0..<outputSize).reduce(0) { max($0, window($1).count) }
        result.weights = [Int32](repeating: 0, count: outputSize * result.taps)
        var raw = [Double](repeating: 0, count: result.taps)
        for index in 0..<outputSize {
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
                result.weights[index * result.taps + t] = Int32((w < 0 ? scaled - 0.5 : scaled + 0.5).rounded(.towardZero))
            }
            result.starts.append(Int32(first))
            result.counts.append(Int32(count))
        }
        return result
    }
}
