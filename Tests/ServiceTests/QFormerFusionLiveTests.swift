import Embedding
import Foundation
import Logging
import Testing
@testable import Service
import TestSupport

/// A Fusion-Q-Former with the towers' shapes and seeded random weights, written as the service loads one.
func writeFusionQFormer(textSize: Int = 384, imageSize: Int = 1280, audioSize: Int = 200, outputSize: Int = 384) throws -> String {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qformer-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let (d, ffn, queries, layers) = (32, 64, 4, 2)
    let config: [String: Any] = [
        "hidden_size": d, "num_attention_heads": 4, "num_layers": layers, "intermediate_size": ffn, "queries": queries,
        "output_size": outputSize, "layer_norm_eps": 1e-5,
        "input_sizes": ["text": textSize, "image": imageSize, "audio": audioSize],
    ]
    try JSONSerialization.data(withJSONObject: config).write(to: directory.appendingPathComponent("config.json"))
    var shapes: [(String, [Int])] = [("queries", [queries, d]), ("modality_embeddings", [3, d]),
                                     ("final_norm.weight", [d]), ("final_norm.bias", [d]),
                                     ("output.weight", [outputSize, queries * d]), ("output.bias", [outputSize])]
    for (name, size) in [("text", textSize), ("image", imageSize), ("audio", audioSize)] {
        shapes += [("projections.\(name).weight", [d, size]), ("projections.\(name).bias", [d])]
    }
    for layer in 0..<layers {
        let p = "layers.\(layer)."
        shapes += [(p + "attention.in_proj.weight", [3 * d, d]), (p + "attention.in_proj.bias", [3 * d]),
                   (p + "attention.out_proj.weight", [d, d]), (p + "attention.out_proj.bias", [d]),
                   (p + "norm1.weight", [d]), (p + "norm1.bias", [d]), (p + "norm2.weight", [d]), (p + "norm2.bias", [d]),
                   (p + "linear1.weight", [ffn, d]), (p + "linear1.bias", [ffn]),
                   (p + "linear2.weight", [d, ffn]), (p + "linear2.bias", [d])]
    }
    var state: UInt64 = 42
    var header: [String: Any] = [:]
    var data: [UInt8] = []
    for (name, shape) in shapes {
        let count = shape.reduce(1, *)
        let start = data.count
        for _ in 0..<count {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let value = name.hasSuffix("norm.weight") || name.contains("norm1.weight") || name.contains("norm2.weight")
                ? 1 : (Float(state >> 40) / Float(1 << 24) - 0.5) * 0.4
            withUnsafeBytes(of: value.bitPattern.littleEndian) { data += $0 }
        }
        header[name] = ["dtype": "F32", "shape": shape, "data_offsets": [start, data.count]]
    }
    let json = try JSONSerialization.data(withJSONObject: header)
    var file = Data()
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
    file.append(json)
    file.append(contentsOf: data)
    try file.write(to: directory.appendingPathComponent("model.safetensors"))
    return directory.path
}

extension ServiceLiveTests {
    @Test func qformerFusionServesUnitVectorsThatDependOnEveryModality() async throws {
        var configuration = testConfiguration()
        configuration.embedding.fusionMethod = .qformer
        configuration.embedding.qformerDirectory = try writeFusionQFormer()
        let (service, port) = try await makeService(configuration)
        let photo = try base64("Tests/MediaTests/Fixtures/images/preprocess/cat.jpg")
        let json = #"{"items": [{"id": "t", "text": "a cat"}, {"id": "ti", "text": "a cat", "images": [{"data": "\#(photo)"}]}], "return": ["embedding", "modalities"], "store": false}"#
        let response = try embed(json, port: port)
        #expect(response.status == 200)
        let body = try #require(response.body)
        let (textOnly, withPhoto) = (try #require(body.data[0].embedding), try #require(body.data[1].embedding))
        #expect(abs(dot(textOnly, textOnly) - 1) < 1e-4 && abs(dot(withPhoto, withPhoto) - 1) < 1e-4)
        #expect(dot(textOnly, withPhoto) < 0.9999)
        // Not late fusion: the fused vector is the Q-Former's, not the text vector.
        #expect(dot(textOnly, try #require(body.data[0].modalities?.text)) < 0.9999)
        let alone = try #require(try embed(#"{"items": [{"id": "t", "text": "a cat"}], "store": false}"#, port: port).body?.data[0].embedding)
        #expect(zip(alone, textOnly).map { abs($0 - $1) }.max()! <= 1e-5)
        await service.shutdown()
    }

    /// `embedding.fusion.precision` runs the Fusion-Q-Former alone in bf16: a vector close to fp32's, under
    /// another model revision (on a CPU without AVX512_BF16: fp32's vector and revision).
    @Test func theQFormersPrecisionIsItsOwnRevision() async throws {
        var configuration = testConfiguration()
        configuration.embedding.fusionMethod = .qformer
        configuration.embedding.qformerDirectory = try writeFusionQFormer()
        let json = #"{"items": [{"id": "q", "text": "a cat on a mat"}], "store": false}"#
        let (fp32, fp32Port) = try await makeService(configuration)
        let reference = try #require(try embed(json, port: fp32Port).body?.data.first?.embedding)
        let fp32Model = try model(fp32Port)
        await fp32.shutdown()
        configuration.embedding.fusionPrecision = .bf16
        let (bf16, port) = try await makeService(configuration)
        let vector = try #require(try embed(json, port: port).body?.data.first?.embedding)
        if TowerPrecision.bf16.effective == .bf16 {
            #expect(try model(port).revision != fp32Model.revision)
            #expect(vector != reference && dot(vector, reference) > 0.999)
        } else {
            #expect(try model(port) == fp32Model && vector == reference)
        }
        await bf16.shutdown()
    }

    @Test func aQFormerOfTheWrongShapeStopsTheStart() async throws {
        var configuration = testConfiguration()
        configuration.embedding.fusionMethod = .qformer
        configuration.embedding.qformerDirectory = try writeFusionQFormer(imageSize: 1000)
        let service = try OmniEmbedService(configuration: configuration, logger: Logger(label: "test"))
        await #expect { try await service.start() } throws: {
            "\($0)".contains("embedding.fusion.directory")
        }
    }
}
