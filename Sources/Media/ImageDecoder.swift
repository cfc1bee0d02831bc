import CImageCodecs

/// JPEG and PNG decoding into upright RGB, with its limits checked on the header before any pixel is decoded.
public struct ImageDecoder: Sendable {
    /// Largest image accepted, in pixels (a decompression bomb declares huge dimensions in a tiny file).
    public var maxPixels: Int

    public init(maxPixels: Int = 40_000_000) {
        self.maxPixels = maxPixels
    }

    /// What the header says.
    public struct Header: Sendable, Equatable {
        public enum Format: String, Sendable { case jpeg, png }
        public var format: Format
        /// As stored, before the EXIF orientation.
        public var width: Int, height: Int
        public var orientation: Int
        public var hasAlpha: Bool
        public var progressive: Bool
    }

    public func header(of data: [UInt8]) throws(MediaError) -> Header {
        let (info, message) = data.withUnsafeBufferPointer { bytes in
            var info = oe_image_info()
            var error = [CChar](repeating: 0, count: 256)
            let status = oe_image_probe(bytes.baseAddress, bytes.count, &info, &error, error.count)
            return (info, status == 0 ? nil : String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        if let message {
            throw message.hasPrefix("not a ") ? .unsupportedFormat(message) : .corrupt(message)
        }
        guard info.width > 0, info.height > 0 else { throw .corrupt("image has no pixels (\(info.width)×\(info.height))") }
        return Header(format: info.format == OE_IMAGE_JPEG ? .jpeg : .png, width: Int(info.width), height: Int(info.height),
                      orientation: Int(info.orientation), hasAlpha: info.has_alpha != 0, progressive: info.progressive != 0)
    }

    /// The JPEG DCT scale (1, 2, 4 or 8) a decode uses: the largest that keeps the shorter side at least
    /// `minimumShorterSide`. PNG is always decoded whole.
    func denominator(_ header: Header, minimumShorterSide: Int?) -> Int32 {
        guard header.format == .jpeg, let minimumShorterSide else { return 1 }
        for candidate: Int32 in [8, 4, 2] {
            let shorter = (min(header.width, header.height) + Int(candidate) - 1) / Int(candidate)
            if shorter >= minimumShorterSide { return candidate }
        }
        return 1
    }

    /// Width and height the decode of an image with this header produces (before the EXIF orientation), with the
    /// pixel limit checked: what decoding it costs, known before any pixel is decoded.
    public func decodedSize(_ header: Header, minimumShorterSide: Int? = nil) throws(MediaError) -> (width: Int, height: Int) {
        let (pixels, overflow) = header.width.multipliedReportingOverflow(by: header.height)
        guard !overflow, pixels <= maxPixels else {
            throw .tooLarge("image is \(header.width)×\(header.height) pixels; at most \(maxPixels) pixels are accepted")
        }
        var info = oe_image_info()
        info.format = header.format == .jpeg ? OE_IMAGE_JPEG : OE_IMAGE_PNG
        info.width = Int32(header.width)
        info.height = Int32(header.height)
        var width: Int32 = 0, height: Int32 = 0
        oe_image_scaled_size(&info, denominator(header, minimumShorterSide: minimumShorterSide), &width, &height)
        return (Int(width), Int(height))
    }

    /// The upright image. With `minimumShorterSide`, a JPEG is decoded at 1/2, 1/4 or 1/8 scale in the DCT domain
    /// when its shorter side stays at least that long: much faster than decoding every pixel and then shrinking.
    public func decode(_ data: [UInt8], minimumShorterSide: Int? = nil) throws(MediaError) -> RGBImage {
        try decode(data, header: try header(of: data), minimumShorterSide: minimumShorterSide)
    }

    /// `decode(_:minimumShorterSide:)` for a header already read.
    public func decode(_ data: [UInt8], header: Header, minimumShorterSide: Int? = nil) throws(MediaError) -> RGBImage {
        let (width, height) = try decodedSize(header, minimumShorterSide: minimumShorterSide)
        let denominator = denominator(header, minimumShorterSide: minimumShorterSide)
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        var error = [CChar](repeating: 0, count: 256)
        let status = data.withUnsafeBufferPointer { bytes in
            rgb.withUnsafeMutableBufferPointer { out in
                oe_image_decode(bytes.baseAddress, bytes.count, denominator, out.baseAddress, out.count, &error, error.count)
            }
        }
        guard status == 0 else {
            throw .corrupt(String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return RGBImage(width: width, height: height, pixels: rgb).oriented(header.orientation)
    }
}
