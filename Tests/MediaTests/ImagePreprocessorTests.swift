import Foundation
import Testing
@testable import Media

@Suite struct ImagePreprocessorTests {
    static let photos = ["cat", "coffee", "rocket"]

    /// Decoded at full size, resized and cropped: Pillow's pixels (`Image.resize(..., BILINEAR)`, then the crop).
    @Test(arguments: photos) func resizeAndCropMatchPillow(_ name: String) throws {
        let image = try ImageDecoder().decode(ImageFixtures.bytes("preprocess/\(name).jpg"))
        let expected = try ImageDecoder().decode(ImageFixtures.bytes("preprocess/\(name).jpg.crop.png"))
        let preprocessor = ImagePreprocessor()
        let square = preprocessor.cropped(preprocessor.resized(image))
        #expect(square.width == 224 && square.height == 224)
        #expect(preprocessor.resizedAndCropped(image) == square)   // the window computes the same pixels
        let difference = maxDifference(square, expected)
        let mean = Double(zip(square.pixels, expected.pixels).map { abs(Int($0) - Int($1)) }.reduce(0, +)) / Double(expected.pixels.count)
        #expect(difference <= 1, "\(name): max \(difference), mean \(mean)")
        print("\(name): resize+crop vs Pillow max difference \(difference), mean \(mean)")
    }

    /// The fast path (JPEG decoded at 1/2…1/8 scale in the DCT domain) stays close to the full-size reference.
    @Test(arguments: photos) func scaledDecodeStaysClose(_ name: String) throws {
        let bytes = try ImageFixtures.bytes("preprocess/\(name).jpg")
        let preprocessor = ImagePreprocessor()
        let fast = preprocessor.tensor(try ImageDecoder().decode(bytes, minimumShorterSide: preprocessor.shorterSide))
        let full = preprocessor.tensor(try ImageDecoder().decode(bytes))
        let dot = zip(fast, full).map(*).reduce(0, +)
        let cosine = dot / (fast.map { $0 * $0 }.reduce(0, +).squareRoot() * full.map { $0 * $0 }.reduce(0, +).squareRoot())
        #expect(cosine >= 0.99, "\(name): cosine \(cosine)")
    }

    @Test func tensorIsChannelMajorAndNormalised() {
        let image = RGBImage(width: 300, height: 260, pixels: (0..<300 * 260).flatMap { _ in [UInt8(255), 127, 0] })
        let tensor = ImagePreprocessor().tensor(image)
        let plane = 224 * 224
        #expect(tensor.count == 3 * plane)
        #expect(tensor[0] == 1 && tensor[plane] == 0 && tensor[2 * plane] == -127 / 128)
    }

    @Test func resizedKeepsTheAspectRatioTruncated() {
        let preprocessor = ImagePreprocessor()
        let wide = preprocessor.resized(RGBImage(width: 451, height: 300, pixels: [UInt8](repeating: 9, count: 451 * 300 * 3)))
        #expect(wide.width == 384 && wide.height == 256)   // int(256 · 451 / 300) = 384
        let tall = preprocessor.resized(RGBImage(width: 427, height: 640, pixels: [UInt8](repeating: 9, count: 427 * 640 * 3)))
        #expect(tall.width == 256 && tall.height == 383)   // int(256 · 640 / 427) = 383
        #expect(tall.pixels.allSatisfy { $0 == 9 })
    }
}
