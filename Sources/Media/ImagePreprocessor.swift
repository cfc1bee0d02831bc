/// The image tower's input, prepared as its reference pipeline prepares it (torchvision-style `Resize(256)`,
/// `CenterCrop(224)` on a Pillow image, then `(x - 127) / 128`): the shorter side resized to `shorterSide` with
/// Pillow's antialiased bilinear filter (the longer side scaled alike, truncated), a centred `crop`×`crop` square,
/// and each channel normalised.
public struct ImagePreprocessor: Sendable {
    public var shorterSide = 256
    public var crop = 224
    public var mean: Float = 127
    public var scale: Float = 128

    public init() {}

    /// The resized image before cropping: shorter side `shorterSide`, aspect ratio kept.
    public func resized(_ image: RGBImage) -> RGBImage {
        let (width, height): (Int, Int)
        if image.width <= image.height {
            (width, height) = (shorterSide, max(1, Int(Double(shorterSide) * Double(image.height) / Double(image.width))))
        } else {
            (width, height) = (max(1, Int(Double(shorterSide) * Double(image.width) / Double(image.height))), shorterSide)
        }
        return ImageResize.bilinear(image, width: width, height: height)
    }

    /// The centred square, offsets rounded half to even as torchvision's `CenterCrop` rounds them.
    public func cropped(_ image: RGBImage) -> RGBImage {
        let top = (Double(image.height - crop) / 2).rounded(.toNearestOrEven)
        let left = (Double(image.width - crop) / 2).rounded(.toNearestOrEven)
        var pixels = [UInt8](repeating: 0, count: crop * crop * 3)
        for y in 0..<crop {
            let source = ((Int(top) + y) * image.width + Int(left)) * 3
            pixels.replaceSubrange((y * crop * 3)..<((y + 1) * crop * 3), with: image.pixels[source..<(source + crop * 3)])
        }
        return RGBImage(width: crop, height: crop, pixels: pixels)
    }

    /// Channel-major (3 × crop × crop) floats of `image` resized and cropped: the tower's input.
    public func tensor(_ image: RGBImage) -> [Float] {
        normalized(cropped(resized(image)))
    }

    /// Channel-major floats of an already cropped `square`, each channel normalised.
    public func normalized(_ square: RGBImage) -> [Float] {
        precondition(square.width == crop && square.height == crop, "expected a \(crop)×\(crop) image")
        let plane = crop * crop
        var out = [Float](repeating: 0, count: 3 * plane)
        for i in 0..<plane {
            for c in 0..<3 {
                out[c * plane + i] = (Float(square.pixels[i * 3 + c]) - mean) / scale
            }
        }
        return out
    }
}
