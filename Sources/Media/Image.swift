/// An 8-bit RGB image, rows packed, 3 bytes per pixel.
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "\(pixels.count) bytes for \(width)×\(height) RGB")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// The image as a viewer shows it, given its EXIF orientation (1 upright … 8): mirrored and/or rotated.
    public func oriented(_ orientation: Int) -> RGBImage {
        guard (2...8).contains(orientation) else { return self }
        // For each output pixel, the source pixel: orientations 5–8 swap the axes.
        let swaps = orientation >= 5
        let (w, h) = swaps ? (height, width) : (width, height)
        var out = [UInt8](repeating: 0, count: pixels.count)
        for y in 0..<h {
            for x in 0..<w {
                let (sx, sy): (Int, Int)
                switch orientation {
                case 2: (sx, sy) = (width - 1 - x, y)                 // mirrored horizontally
                case 3: (sx, sy) = (width - 1 - x, height - 1 - y)    // rotated 180°
                case 4: (sx, sy) = (x, height - 1 - y)                // mirrored vertically
                case 5: (sx, sy) = (y, x)                             // transposed
                case 6: (sx, sy) = (y, height - 1 - x)                // rotated 90° clockwise to view
                case 7: (sx, sy) = (width - 1 - y, height - 1 - x)    // transversed
                default: (sx, sy) = (width - 1 - y, x)                // 8: rotated 90° counter-clockwise to view
                }
                let source = (sy * width + sx) * 3, target = (y * w + x) * 3
                out[target] = pixels[source]
                out[target + 1] = pixels[source + 1]
                out[target + 2] = pixels[source + 2]
            }
        }
        return RGBImage(width: w, height: h, pixels: out)
    }
}
