import Foundation
import Tensor
import Testing
@testable import Media

/// Fixtures from scripts/fixtures/make-image-fixtures.py: files and what Pillow (the reference) decodes from them.
enum ImageFixtures {
    static let root = Bundle.module.url(forResource: "Fixtures/images", withExtension: nil)!

    static func bytes(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: root.appendingPathComponent(path)))
    }

    /// A `.rgb` file: width and height (little-endian UInt32), then the pixels.
    static func expected(_ path: String) throws -> RGBImage {
        let data = try bytes(path + ".rgb")
        let width = Int(data[0]) | Int(data[1]) << 8 | Int(data[2]) << 16 | Int(data[3]) << 24
        let height = Int(data[4]) | Int(data[5]) << 8 | Int(data[6]) << 16 | Int(data[7]) << 24
        return RGBImage(width: width, height: height, pixels: Array(data[8...]))
    }

    static var decodeCases: [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("decode").path))?
            .filter { !$0.hasSuffix(".rgb") }.sorted() ?? []
    }
}

/// Largest per-channel difference between two images of the same size.
func maxDifference(_ a: RGBImage, _ b: RGBImage) -> Int {
    zip(a.pixels, b.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
}

@Suite struct ImageDecoderTests {
    let decoder = ImageDecoder()

    @Test func everyDecodeFixtureIsPresent() {
        #expect(ImageFixtures.decodeCases.count >= 18)
    }

    /// Same pixels as Pillow: exactly for JPEG (both use libjpeg-turbo's default IDCT and upsampling) and opaque
    /// PNG; within 1 where alpha is composited over white (Pillow's fixed-point rounding differs by one at most).
    @Test(arguments: ImageFixtures.decodeCases)
    func decodesLikePillow(_ name: String) throws {
        let image = try decoder.decode(ImageFixtures.bytes("decode/" + name))
        let expected = try ImageFixtures.expected("decode/" + name)
        #expect(image.width == expected.width && image.height == expected.height, "\(image.width)×\(image.height)")
        guard image.width == expected.width, image.height == expected.height else { return }
        let tolerance = name.contains("alpha") || name.contains("trns") || name.contains("rgba") ? 1 : 0
        #expect(maxDifference(image, expected) <= tolerance, "\(name): \(maxDifference(image, expected))")
    }

    @Test func headerReportsFormatAndOrientation() throws {
        let header = try decoder.header(of: ImageFixtures.bytes("decode/orientation-6.jpg"))
        #expect(header == .init(format: .jpeg, width: 96, height: 64, orientation: 6, hasAlpha: false, progressive: false))
        #expect(try decoder.header(of: ImageFixtures.bytes("decode/progressive.jpg")).progressive)
        #expect(try decoder.header(of: ImageFixtures.bytes("decode/rgba.png")).hasAlpha)
    }

    @Test func decompressionBombIsRefusedBeforeDecoding() throws {
        #expect(throws: MediaError.tooLarge("image is 50000×50000 pixels; at most 40000000 pixels are accepted")) {
            try decoder.decode(ImageFixtures.bytes("bomb.png"))
        }
        // A JPEG whose frame header claims 60000×60000.
        var jpeg = try ImageFixtures.bytes("decode/baseline.jpg")
        let frame = try #require((0..<jpeg.count - 8).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 })
        jpeg.replaceSubrange((frame + 5)..<(frame + 9), with: [0xEA, 0x60, 0xEA, 0x60])
        #expect(throws: MediaError.self) { try decoder.decode(jpeg) }
        #expect(throws: MediaError.tooLarge("image is 96×64 pixels; at most 1000 pixels are accepted")) {
            try ImageDecoder(maxPixels: 1000).decode(ImageFixtures.bytes("decode/baseline.jpg"))
        }
    }

    /// Every prefix and many corruptions of real files: an error or an image, never a crash.
    @Test(arguments: ["decode/baseline.jpg", "decode/progressive.jpg", "decode/cmyk.jpg", "decode/rgba.png",
                      "decode/palette-trns.png", "decode/rgb16.png"])
    func truncatedAndCorruptFilesAreErrors(_ name: String) throws {
        let bytes = try ImageFixtures.bytes(name)
        for length in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 97)) {
            #expect(throws: MediaError.self, "\(name) cut at \(length)") { try decoder.decode(Array(bytes[..<length])) }
        }
        var generator = SplitMix64(seed: UInt64(bytes.count))
        for _ in 0..<200 {
            var corrupt = bytes
            for _ in 0..<4 {
                corrupt[Int(generator.next() % UInt64(corrupt.count - 2)) + 2] ^= UInt8(truncatingIfNeeded: generator.next() | 1)
            }
            _ = try? decoder.decode(corrupt)
        }
    }

    @Test func otherFormatsAreUnsupported() {
        #expect(throws: MediaError.unsupportedFormat("not a JPEG or PNG file")) { try decoder.decode(Array("GIF89a....".utf8)) }
        #expect(throws: MediaError.unsupportedFormat("not a JPEG or PNG file")) { try decoder.decode([]) }
    }
}
