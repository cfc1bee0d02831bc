/// Antialiased bilinear resizing, computed as Pillow's `Image.resize(size, Image.BILINEAR)` computes it: separable
/// passes (horizontal, then vertical) with a triangle filter widened by the scale factor when shrinking,
/// fixed-point weights with 22 fractional bits, and each pass rounded to 8 bits. So our preprocessing reproduces
/// the reference pipeline's pixels instead of approximating them.
public enum ImageResize {
    static let precisionBits = 22

    /// Per output index: the first input index and fixed-point weights of the inputs it blends.
    struct Weights {
        var starts: [Int] = []
        var weights: [[Int32]] = []
    }

    static func weights(inputSize: Int, outputSize: Int) -> Weights {
        let scale = Double(inputSize) / Double(outputSize)
        let filterScale = max(scale, 1)
        let support = 1.0 * filterScale   // the triangle filter reaches ±1 input pixel at scale 1
        var result = Weights()
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
            result.starts.append(first)
            result.weights.append(raw.map { w in
                let scaled = w * Double(1 << precisionBits)
                return Int32((w < 0 ? scaled - 0.5 : scaled + 0.5).rounded(.towardZero))
            })
        }
        return result
    }

    @inline(__always)
    static func clip8(_ value: Int64) -> UInt8 {
        let shifted = value >> Int64(precisionBits)
        return UInt8(clamping: shifted)
    }

    /// `image` resized to `width`×`height`.
    public static func bilinear(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
        var current = image
        if width != image.width {
            let w = weights(inputSize: image.width, outputSize: width)
            var out = [UInt8](repeating: 0, count: width * image.height * 3)
            for y in 0..<image.height {
                let row = y * image.width * 3
                for x in 0..<width {
                    for c in 0..<3 {
                        var sum = Int64(1 << (precisionBits - 1))
                        for (offset, weight) in w.weights[x].enumerated() {
                            sum += Int64(image.pixels[row + (w.starts[x] + offset) * 3 + c]) * Int64(weight)
                        }
                        out[(y * width + x) * 3 + c] = clip8(sum)
                    }
                }
            }
            current = RGBImage(width: width, height: image.height, pixels: out)
        }
        if height != current.height {
            let w = weights(inputSize: current.height, outputSize: height)
            var out = [UInt8](repeating: 0, count: width * height * 3)
            for y in 0..<height {
                for x in 0..<width * 3 {
                    var sum = Int64(1 << (precisionBits - 1))
                    for (offset, weight) in w.weights[y].enumerated() {
                        sum += Int64(current.pixels[(w.starts[y] + offset) * width * 3 + x]) * Int64(weight)
                    }
                    out[y * width * 3 + x] = clip8(sum)
                }
            }
            current = RGBImage(width: width, height: height, pixels: out)
        }
        return current
    }
}
