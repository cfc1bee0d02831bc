import Foundation
import Media
import Tensor
import Testing
@testable import Models

/// The image tower against the PyTorch reference (scripts/fixtures/make-image-tower-fixtures.py) on scikit-image photos.
@Suite struct EfficientNetLiteTests {
    struct Case: Decodable {
        var name: String
        var features: [Float]
        var logits: [Float]
        var top5: [Int]
    }

    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../models/efficientnet-lite0").standardized
    /// The photos and Pillow's crops live with the Media tests' fixtures.
    static let photos = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../MediaTests/Fixtures/images/preprocess").standardized
    static let model: EfficientNetLite? = try? EfficientNetLite(directory: directory, threads: 2)

    func cases() throws -> [Case] {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/efficientnet-lite0/expected", withExtension: "json"))
        return try JSONDecoder().decode([Case].self, from: Data(contentsOf: url))
    }

    func cosine(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).map(*).reduce(0, +) / (a.map { $0 * $0 }.reduce(0, +).squareRoot() * b.map { $0 * $0 }.reduce(0, +).squareRoot())
    }

    func argmax(_ v: [Float]) -> Int { v.indices.max { v[$0] < v[$1] }! }

    /// Same input tensor as the reference (Pillow's crop): features within cosine 0.99999, same top-5 classes.
    @Test func featuresMatchPyTorch() throws {
        let model = try #require(Self.model, "model cache missing: run scripts/fetch-models")
        let cases = try cases()
        let inputs = try cases.map { c in
            let square = try ImageDecoder().decode([UInt8](Data(contentsOf: Self.photos.appendingPathComponent("\(c.name).jpg.crop.png"))))
            return ImagePreprocessor().normalized(square)
        }
        let output = model.run(inputs)
        for (index, c) in cases.enumerated() {
            let worst = zip(output.features[index], c.features).map { abs($0 - $1) }.max()!
            #expect(cosine(output.features[index], c.features) >= 0.99999, "\(c.name): cosine \(cosine(output.features[index], c.features))")
            #expect(worst <= 1e-3, "\(c.name): worst feature difference \(worst)")
            let top5 = output.logits[index].indices.sorted { output.logits[index][$0] > output.logits[index][$1] }.prefix(5)
            #expect(Array(top5) == c.top5, "\(c.name)")
            print("\(c.name): feature cosine \(cosine(output.features[index], c.features)), worst |diff| \(worst), top-1 \(top5.first!)")
        }
        // One image alone gives what it gave inside the batch.
        let alone = model.run([inputs[1]])
        #expect(zip(alone.features[0], output.features[1]).map { abs($0 - $1) }.max()! <= 1e-5)
    }

    /// The 1×1 convolutions and the classifier in bf16 and int8: the same top-1 class and features close to
    /// PyTorch's fp32 on every photo (a precision the kernel set lacks loads as fp32).
    @Test(arguments: [(Precision.bf16, 0.999), (.int8, 0.99)])
    func lowerPrecisionsKeepTheClassAndTheFeatures(precision: Precision, bound: Double) throws {
        let model = try EfficientNetLite(directory: Self.directory, threads: 2, precision: precision)
        #expect(model.precision == precision.effective)
        let cases = try cases()
        let inputs = try cases.map { c in
            let square = try ImageDecoder().decode([UInt8](Data(contentsOf: Self.photos.appendingPathComponent("\(c.name).jpg.crop.png"))))
            return ImagePreprocessor().normalized(square)
        }
        let output = model.run(inputs)
        var worst = 1.0
        for (index, c) in cases.enumerated() {
            let similarity = Double(cosine(output.features[index], c.features))
            worst = min(worst, similarity)
            #expect(similarity >= bound, "\(c.name): cosine \(similarity)")
            #expect(argmax(output.logits[index]) == c.top5[0], "\(c.name)")
        }
        let alone = model.run([inputs[1]])
        #expect(zip(alone.features[0], output.features[1]).map { abs($0 - $1) }.max()! <= 1e-5)
        print("image tower \(model.precision) vs PyTorch fp32 on \(cases.count) photos: worst feature cosine \(worst), top-1 kept")
    }

    /// From the JPEG file through our decoder and preprocessing, full-size and DCT-scaled decoding.
    @Test func endToEndFromTheFile() throws {
        let model = try #require(Self.model, "model cache missing: run scripts/fetch-models")
        let preprocessor = ImagePreprocessor()
        for c in try cases() {
            let bytes = [UInt8](try Data(contentsOf: Self.photos.appendingPathComponent("\(c.name).jpg")))
            for scaled in [false, true] {
                let image = try ImageDecoder().decode(bytes, minimumShorterSide: scaled ? preprocessor.shorterSide : nil)
                let output = model.run([preprocessor.tensor(image)])
                let similarity = cosine(output.features[0], c.features)
                #expect(similarity >= 0.999, "\(c.name) scaled=\(scaled): cosine \(similarity)")
                #expect(argmax(output.logits[0]) == c.top5[0], "\(c.name) scaled=\(scaled)")
            }
        }
    }
}

/// The shared space: photos through the image tower and ConSE over ImageNet's class names, texts through the text
/// tower; each text must find its photo first.
@Suite struct SharedSpaceTests {
    @Test func textsFindTheirPhotos() throws {
        let image = try #require(EfficientNetLiteTests.model, "model cache missing: run scripts/fetch-models")
        let (text, labels, space) = try sharedSpace(labels: "imagenet-1k.txt")
        #expect(labels.count == 1000)
        let photos = ["cat", "coffee", "rocket"]
        let inputs = try photos.map { name in
            ImagePreprocessor().tensor(try ImageDecoder().decode(
                [UInt8](Data(contentsOf: EfficientNetLiteTests.photos.appendingPathComponent("\(name).jpg")))))
        }
        let points = image.run(inputs).logits.map { space.embed(probabilities: ConvexSemanticEmbedding.softmax($0)) }
        let queries = ["a cat": "cat", "a cup of coffee": "coffee", "a rocket": "rocket"]
        let queryEmbeddings = text.embed(Array(queries.keys)).embeddings
        for (query, embedding) in zip(queries.keys, queryEmbeddings) {
            let scores = points.map { zip($0, embedding).map(*).reduce(0, +) }
            let best = photos[scores.indices.max { scores[$0] < scores[$1] }!]
            #expect(best == queries[query], "\(query) → \(best) (scores \(scores))")
            print("\"\(query)\": " + zip(photos, scores).map { "\($0) \(String(format: "%.3f", $1))" }.joined(separator: ", "))
        }
    }
}
