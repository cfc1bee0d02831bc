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
        let scale = Double(inputSize) / Double(outputSize)
        let filterScale = max(scale, 1)
        let support = 1.0 * filterScale   // the triangle filter reaches ±1 input pixel at scale 1
        var rows: [(Int, [Int32])] = []
        for index in 0..<outputSize {
            let center = (Double(index) + 0.5) * scale
            let first = max(Int(center - support + 0.5), 0)
            let end = min(Int(center + support + 0.5), inputSize)
            var raw = (first..<max(end, first)).map { x -> Double in
                let t = abs((Double(x) - center + 0.5) / filterScale)
                return t < 1 ? 1 - t : 0
            }
            let total = raw.reduce(0, +)
            if total != 0 { raw = raw.map { $0 / total } }
            rows.append((first, raw.map { w in
                let scaled = w * Double(1 << precisionBits)
                return Int32((w < 0 ? scaled - 0.5 : scaled + 0.5).rounded(.towardZero))
            }))
        }
        var result = Weights()
        result.taps = rows.map(\.1.count).max() ?? 0
        for (first, weights) in rows {
            result.starts.append(Int32(first))
            result.counts.append(Int32(weights.count))
            result.weights += weights + [Int32](repeating: 0, count: result.taps - weights.count)
        }
        return result
    }

    /// `image` resized to `width`×`height`.
    public static func bilinear(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
        var current = image
        if width != image.width {
            let w = weights(inputSize: image.width, outputSize: width)
            var out = [UInt8](repeating: 0, count: width * image.height * 3)
            oe_resample_rows_u8(image.pixels, image.width, image.height, 3, &out, width, w.starts, w.counts, w.weights, w.taps)
            current = RGBImage(width: width, height: image.height, pixels: out)
        }
        if height != current.height {
            let w = weights(inputSize: current.height, outputSize: height)
            var out = [UInt8](repeating: 0, count: width * height * 3)
            oe_resample_columns_u8(current.pixels, width * 3, &out, height, w.starts, w.counts, w.weights, w.taps)
            current = RGBImage(width: width, height: height, pixels: out)
        }
        return current
    }
}
