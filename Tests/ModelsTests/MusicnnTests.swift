import Foundation
import Media
import Tensor
import Testing
@testable import Models

/// The audio tower against musicnn's own extractor (TensorFlow), end to end from the WAV file
/// (scripts/fixtures/make-audio-tower-fixtures.py).
@Suite struct MusicnnTests {
    struct Case: Decodable {
        var name: String
        var penultimate: [[Float]]
        var tags: [[Float]]
        var labels: [String]
    }

    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../models/musicnn-mtt").standardized
    static let model: Musicnn? = try? Musicnn(directory: directory, threads: 2)

    func cosine(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).map(*).reduce(0, +) / (a.map { $0 * $0 }.reduce(0, +).squareRoot() * b.map { $0 * $0 }.reduce(0, +).squareRoot())
    }

    func patches() throws -> [(Case, [[Float]])] {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/musicnn/expected", withExtension: "json"))
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: url))
        let files = [
            "speech": URL(fileURLWithPath: #filePath).deletingLastPathComponent()
                .appendingPathComponent("../MediaTests/Fixtures/audio/speech.wav").standardized,
            "melody": try #require(Bundle.module.url(forResource: "Fixtures/musicnn/melody", withExtension: "wav")),
            "voice": try #require(Bundle.module.url(forResource: "Fixtures/musicnn/voice", withExtension: "wav")),
        ]
        return try cases.map { c in
            let audio = try WAVDecoder().decode([UInt8](Data(contentsOf: try #require(files[c.name]))))
            let input = MelSpectrogram.musicnn().musicnnInput(Resampler.resample(audio, to: 16000).samples)
            return (c, Musicnn.patches(input))
        }
    }

    @Test func featuresAndTagsMatchTensorFlow() throws {
        let model = try #require(Self.model, "model cache missing: run scripts/fetch-models")
        for (c, patches) in try patches() {
            let output = model.run(patches)
            #expect(output.features.count == c.penultimate.count, "\(c.name): \(output.features.count) patches")
            for (index, expected) in c.penultimate.enumerated() where index < output.features.count {
                let similarity = cosine(output.features[index], expected)
                let tagDifference = zip(output.tags[index], c.tags[index]).map { abs($0 - $1) }.max()!
                #expect(similarity >= 0.9999, "\(c.name) patch \(index): cosine \(similarity)")
                #expect(tagDifference <= 1e-3, "\(c.name) patch \(index): tag difference \(tagDifference)")
                print("\(c.name) patch \(index): feature cosine \(similarity), worst tag difference \(tagDifference)")
            }
        }
    }
}

/// The audio tower's convolutions and dense layers in bf16 and int8 against TensorFlow's fp32: features close, and
/// each patch's five strongest tags in the same order.
@Suite struct MusicnnPrecisionTests {
    @Test(arguments: [(Precision.bf16, 0.999), (.int8, 0.99)])
    func lowerPrecisionsKeepTheFeaturesAndTheTagOrder(precision: Precision, bound: Double) throws {
        let model = try Musicnn(directory: MusicnnTests.directory, threads: 2, precision: precision)
        #expect(model.precision == precision.effective)
        var worst = 1.0
        for (c, patches) in try MusicnnTests().patches() {
            let output = model.run(patches)
            for (index, expected) in c.penultimate.enumerated() where index < output.features.count {
                let similarity = Double(MusicnnTests().cosine(output.features[index], expected))
                worst = min(worst, similarity)
                #expect(similarity >= bound, "\(c.name) patch \(index): cosine \(similarity)")
                let top = { (tags: [Float]) in Array(tags.indices.sorted { tags[$0] > tags[$1] }.prefix(5)) }
                #expect(top(output.tags[index]) == top(c.tags[index]), "\(c.name) patch \(index)")
            }
        }
        print("audio tower \(model.precision) vs TensorFlow fp32: worst feature cosine \(worst), top-5 tag order kept")
    }
}

/// Audio in the shared space: musicnn's tag probabilities (averaged over patches) through ConSE over the 50 tag
/// names; a melody of piano-like notes must be nearer "piano" than "drums", and a spoken sentence (flite's "awb", a
/// male voice built from recorded speech) nearer "male voice" and "speech" than "drums". espeak-ng's robotic voice
/// (the Media fixture) does not pass: musicnn tags it "techno, electronic, fast, female, vocals".
@Suite struct AudioSharedSpaceTests {
    @Test func recordingsLandNearTheirWords() throws {
        let model = try #require(MusicnnTests.model, "model cache missing: run scripts/fetch-models")
        let (text, labels, space) = try sharedSpace(labels: "mtt-50.txt")
        #expect(labels.count == 50)
        func point(_ url: URL) throws -> [Float] {
            let audio = try WAVDecoder().decode([UInt8](Data(contentsOf: url)))
            let tags = model.run(Musicnn.patches(MelSpectrogram.musicnn().musicnnInput(Resampler.resample(audio, to: 16000).samples))).tags
            let mean = (0..<labels.count).map { i in tags.map { $0[i] }.reduce(0, +) / Float(tags.count) }
            return space.embed(probabilities: mean)
        }
        let melody = try point(try #require(Bundle.module.url(forResource: "Fixtures/musicnn/melody", withExtension: "wav")))
        let speech = try point(try #require(Bundle.module.url(forResource: "Fixtures/musicnn/voice", withExtension: "wav")))
        let words = ["piano", "drums", "male voice", "speech"]
        let embedded = Dictionary(uniqueKeysWithValues: zip(words, text.embed(words).embeddings))
        func score(_ p: [Float], _ word: String) -> Float { zip(p, embedded[word]!).map(*).reduce(0, +) }
        #expect(score(melody, "piano") > score(melody, "drums"))
        #expect(score(speech, "male voice") > score(speech, "drums"))
        #expect(score(speech, "speech") > score(speech, "drums"))
        for (name, p) in [("melody", melody), ("speech", speech)] {
            print("\(name): " + words.map { "\($0) \(String(format: "%.3f", score(p, $0)))" }.joined(separator: ", "))
        }
    }
}
