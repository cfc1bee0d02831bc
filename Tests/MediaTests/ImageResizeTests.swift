import Testing
@testable import Media

/// The resampling kernels against Pillow's arithmetic written out directly (per output value: 2^21 plus each
/// input byte times its fixed-point weight, shifted by 22 and clipped), on random images of many shapes:
/// shrinking and enlarging, windows, widths too small for a vector, and the last rows, which the gathers may
/// not read past.
@Suite struct ImageResizeTests {
    static func reference(_ image: RGBImage, width: Int, height: Int, columns: Range<Int>, rows: Range<Int>) -> RGBImage {
        func clip(_ sum: Int) -> UInt8 { UInt8(max(0, min(255, sum >> 22))) }
        let h = ImageResize.weights(inputSize: image.width, outputSize: width)
        var across = [UInt8](repeating: 0, count: columns.count * image.height * 3)
        for y in 0..<image.height {
            for (i, x) in columns.enumerated() {
                for c in 0..<3 {
                    var sum = 1 << 21
                    for t in 0..<Int(h.counts[x]) {
                        sum += Int(image.pixels[(y * image.width + Int(h.starts[x]) + t) * 3 + c]) * Int(h.weights[x * h.taps + t])
                    }
                    across[(y * columns.count + i) * 3 + c] = clip(sum)
                }
            }
        }
        let v = ImageResize.weights(inputSize: image.height, outputSize: height)
        var out = [UInt8](repeating: 0, count: columns.count * rows.count * 3)
        for (j, y) in rows.enumerated() {
            for b in 0..<(columns.count * 3) {
                var sum = 1 << 21
                for t in 0..<Int(v.counts[y]) {
                    sum += Int(across[(Int(v.starts[y]) + t) * columns.count * 3 + b]) * Int(v.weights[y * v.taps + t])
                }
                out[j * columns.count * 3 + b] = clip(sum)
            }
        }
        return RGBImage(width: columns.count, height: rows.count, pixels: out)
    }

    @Test(arguments: [(480, 270, 455, 256), (1920, 1080, 455, 256), (1, 1, 256, 256), (3, 700, 1, 256),
                      (5, 2, 17, 9), (300, 451, 256, 384), (64, 64, 64, 64), (1000, 7, 33, 3)])
    func kernelsComputePillowsSums(_ shape: (Int, Int, Int, Int)) {
        let (inWidth, inHeight, width, height) = shape
        var state = UInt64(inWidth * 7919 + inHeight)   // a fixed image per shape (a 64-bit LCG's top bits)
        let image = RGBImage(width: inWidth, height: inHeight, pixels: (0..<(inWidth * inHeight * 3)).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 56)
        })
        for (columns, rows) in [(0..<width, 0..<height), ((width / 3)..<(width - width / 4), (height / 5)..<height)] {
            let resized = ImageResize.bilinear(image, width: width, height: height, columns: columns, rows: rows)
            let expected = Self.reference(image, width: width, height: height, columns: columns, rows: rows)
            let wrong = zip(resized.pixels, expected.pixels).filter { $0 != $1 }.count
            #expect(resized.width == expected.width && resized.height == expected.height && wrong == 0,
                    "\(shape) window \(columns) × \(rows): \(wrong) of \(expected.pixels.count) bytes differ")
        }
    }

    /// Extreme shapes: the window of the resized image costs the window and the input rows it reads, not the
    /// whole resized image (a 1 × 4,000,000 image resizes to 256 × 1,024,000,000 before its 224 × 224 crop).
    @Test func extremeAspectRatiosCostOnlyTheWindow() {
        let preprocessor = ImagePreprocessor()
        let tall = RGBImage(width: 1, height: 4_000_000, pixels: [UInt8](repeating: 200, count: 12_000_000))
        let crop = preprocessor.resizedAndCropped(tall)
        #expect(crop.width == 224 && crop.height == 224 && crop.pixels.allSatisfy { $0 == 200 })
        let wide = RGBImage(width: 4_000_000, height: 1, pixels: [UInt8](repeating: 17, count: 12_000_000))
        #expect(preprocessor.resizedAndCropped(wide).pixels.allSatisfy { $0 == 17 })
        // Shapes small enough to resize whole: the window equals the crop of the whole.
        for (width, height) in [(1, 300), (300, 1), (3, 400), (7, 900)] {
            var state = UInt64(width * 31 + height)
            let image = RGBImage(width: width, height: height, pixels: (0..<(width * height * 3)).map { _ in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return UInt8(truncatingIfNeeded: state >> 56)
            })
            #expect(preprocessor.resizedAndCropped(image) == preprocessor.cropped(preprocessor.resized(image)), "\(width)×\(height)")
        }
    }
}
