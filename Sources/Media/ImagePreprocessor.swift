import CMediaKernels

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

    /// The size after resizing: shorter side `shorterSide`, aspect ratio kept (the longer side truncated).
    func resizedSize(_ image: RGBImage) -> (width: Int, height: Int) {
        image.width <= image.height
            ? (shorterSide, max(1, Int(Double(shorterSide) * Double(image.height) / Double(image.width))))
            : (max(1, Int(Double(shorterSide) * Double(image.width) / Double(image.height))), shorterSide)
    }

    /// The resized image before cropping.
    public func resized(_ image: RGBImage) -> RGBImage {
        let (width, height) = resizedSize(image)
        return ImageResize.bilinear(image, width: width, height: height)
    }

    /// Where the centred square starts, rounded half to even as torchvision's `CenterCrop` rounds it.
    func cropOrigin(width: Int, height: Int) -> (left: Int, top: Int) {
        (Int((Double(width - crop) / 2).rounded(.toNearestOrEven)), Int((Double(height - crop) / 2).rounded(.toNearestOrEven)))
    }

    /// Resized and cropped in one step: only the pixels of the square are computed (the same values).
    public func resizedAndCropped(_ image: RGBImage) -> RGBImage {
        let (width, height) = resizedSize(image)
        let (left, top) = cropOrigin(width: width, height: height)
        guard left >= 0, top >= 0 else { return cropped(resized(image)) }
        return ImageResize.bilinear(image, width: width, height: height, columns: left..<(left + crop), rows: top..<(top + crop))
    }

    /// The centred square.
    public func cropped(_ image: RGBImage) -> RGBImage {
        let (left, top) = cropOrigin(width: image.width, height: image.height)
        var pixels = [UInt8](repeating: 0, count: crop * crop * 3)
        for y in 0..<crop {
            let source = ((top + y) * image.width + left) * 3
            pixels.replaceSubrange((y * crop * 3)..<((y + 1) * crop * 3), with: image.pixels[source..<(source + crop * 3)])
        }
        return RGBImage(width: crop, height: crop, pixels: pixels)
    }

    /// Channel-major (3 × crop × crop) floats of `image` resized and cropped: the tower's input.
    public func tensor(_ image: RGBImage) -> [Float] {
        normalized(resizedAndCropped(image))
    }

    /// Channel-major floats of an already cropped `square`, each channel normalised.
    public func normalized(_ square: RGBImage) -> [Float] {
        precondition(square.width == crop && square.height == crop, "expected a \(crop)×\(crop) image")
        return [Float](unsafeUninitializedCapacity: 3 * crop * crop) { out, count in
            oe_planes_from_rgb(square.pixels, crop * crop, mean, scale, out.baseAddress)
            count = 3 * crop * crop
        }
    }
}
