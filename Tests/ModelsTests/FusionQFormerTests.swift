import Foundation
import Testing
@testable import Models
import Tensor

/// The Fusion-Q-Former against the PyTorch reference module with the same (random, seeded) weights
/// (scripts/reference/fusion_qformer.py).
@Suite struct FusionQFormerTests {
    struct Expected: Decodable {
        struct Case: Decodable {
            var inputs: [String: [[Float]]]
            var output: [Float]
        }
        var cases: [Case]
    }

    static var directory: URL {
        Bundle.module.url(forResource: "Fixtures/qformer", withExtension: nil)!
    }

    @Test func outputsMatchPyTorch() throws {
        let model = try FusionQFormer(directory: Self.directory)
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: Self.directory.appendingPathComponent("expected.json")))
        #expect(expected.cases.count >= 5)
        var (worstCosine, worstDifference): (Float, Float) = (1, 0)
        defer { print("fusion-qformer vs PyTorch on \(expected.cases.count) items: worst cosine \(worstCosine), worst |diff| \(worstDifference)") }
        for c in expected.cases {
            let output = model.fuse(text: c.inputs["text"] ?? [], image: c.inputs["image"] ?? [], audio: c.inputs["audio"] ?? [])
            let cosine = zip(output, c.output).map(*).reduce(0, +)
            let worst = zip(output, c.output).map { abs($0 - $1) }.max()!
            (worstCosine, worstDifference) = (min(worstCosine, cosine), max(worstDifference, worst))
            #expect(output.count == model.configuration.outputSize)
            #expect(cosine >= 0.99999, "\(c.inputs.mapValues(\.count)): cosine \(cosine)")
            #expect(worst < 1e-5, "\(c.inputs.mapValues(\.count)): worst difference \(worst)")
        }
    }

    /// bf16 and int8 against the same PyTorch outputs: the bounds the towers keep (cosine ≥ 0.999 in bf16, ≥ 0.99
    /// in int8). Where the CPU lacks the instruction the model runs fp32 and must say so.
    @Test(arguments: [Precision.bf16, .int8])
    func lowerPrecisionsStayCloseToPyTorch(_ precision: Precision) throws {
        let model = try FusionQFormer(directory: Self.directory, precision: precision)
        #expect(model.precision == precision.effective)
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: Self.directory.appendingPathComponent("expected.json")))
        var worstCosine: Float = 1
        defer { print("fusion-qformer \(model.precision) vs PyTorch fp32 on \(expected.cases.count) items: worst cosine \(worstCosine)") }
        for c in expected.cases {
            let output = model.fuse(text: c.inputs["text"] ?? [], image: c.inputs["image"] ?? [], audio: c.inputs["audio"] ?? [])
            worstCosine = min(worstCosine, zip(output, c.output).map(*).reduce(0, +))
        }
        #expect(worstCosine >= (precision == .bf16 ? 0.999 : 0.99))
        if model.precision != .fp32 {
            // Really another format: not the fp32 result.
            let fp32 = try FusionQFormer(directory: Self.directory)
            let c = expected.cases[0]
            let inputs = (c.inputs["text"] ?? [], c.inputs["image"] ?? [], c.inputs["audio"] ?? [])
            #expect(model.fuse(text: inputs.0, image: inputs.1, audio: inputs.2) != fp32.fuse(text: inputs.0, image: inputs.1, audio: inputs.2))
        }
    }

    @Test func aModalityChangesTheOutputAndOrderOfItemsDoesNot() throws {
        let model = try FusionQFormer(directory: Self.directory)
        let sizes = model.configuration.inputSizes
        let width = sizes["text"]!
        let text: [[Float]] = (0..<5).map { (r: Int) -> [Float] in
            (0..<width).map { (j: Int) -> Float in Float((j * 7 + r * 3) % 11) / 11 - 0.5 }
        }
        let image: [[Float]] = [(0..<sizes["image"]!).map { (j: Int) -> Float in Float(j % 5) / 5 }]
        let textOnly = model.fuse(text: text, image: [], audio: [])
        let both = model.fuse(text: text, image: image, audio: [])
        #expect(zip(textOnly, both).map(*).reduce(0, +) < 0.9999)
        #expect(model.fuse(text: text, image: [], audio: []) == textOnly)
    }

    @Test func aWrongShapeIsRefusedWithTheTensorNamed() throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("qformer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.directory.appendingPathComponent("config.json"))) as! [String: Any]
        config["queries"] = 5
        try JSONSerialization.data(withJSONObject: config).write(to: work.appendingPathComponent("config.json"))
        try FileManager.default.copyItem(at: Self.directory.appendingPathComponent("model.safetensors"),
                                         to: work.appendingPathComponent("model.safetensors"))
        #expect { try FusionQFormer(directory: work) } throws: { "\($0)".contains("queries") }
    }
}
