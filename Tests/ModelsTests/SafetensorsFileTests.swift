import Foundation
import Testing
@testable import Models

/// Writes `header` (JSON text) and `data` in the safetensors layout to a temporary file.
func writeSafetensors(header: String, data: [UInt8], headerLength: UInt64? = nil) throws -> String {
    let headerBytes = Array(header.utf8)
    var length = (headerLength ?? UInt64(headerBytes.count)).littleEndian
    var file = withUnsafeBytes(of: &length) { Array($0) }
    file += headerBytes + data
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("test-\(UUID()).safetensors").path
    try Data(file).write(to: URL(fileURLWithPath: path))
    return path
}

func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    values.flatMap { value -> [UInt8] in
        var little = value.littleEndian
        return withUnsafeBytes(of: &little) { Array($0) }
    }
}

@Suite struct SafetensorsFileTests {
    @Test func readsF32F16AndBF16() throws {
        let values: [Float] = [1.5, -2.25, 0, 1024, -0.0078125, 3.0]
        let f32 = littleEndianBytes(values.map(\.bitPattern))
        let f16 = littleEndianBytes(values.map { Float16($0).bitPattern })
        let bf16 = littleEndianBytes(values.map { UInt16($0.bitPattern >> 16) })
        // Deliberately not 4-byte aligned: a 2-byte tensor first.
        let header = """
            {"pad":{"dtype":"I16","shape":[1],"data_offsets":[0,2]},
             "a":{"dtype":"F32","shape":[2,3],"data_offsets":[2,26]},
             "b":{"dtype":"F16","shape":[6],"data_offsets":[26,38]},
             "c":{"dtype":"BF16","shape":[3,2],"data_offsets":[38,50]},
             "empty":{"dtype":"F32","shape":[0,4],"data_offsets":[50,50]},
             "__metadata__":{"format":"pt"}}
            """
        let path = try writeSafetensors(header: header, data: [7, 0] + f32 + f16 + bf16)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try SafetensorsFile(path: path)
        #expect(try file.floats("a") == values)
        #expect(try file.floats("b") == values)
        #expect(try file.floats("c") == values)
        #expect(try file.floats("empty") == [])
        #expect(file.tensors["a"]?.shape == [2, 3])
        #expect(file.metadata == ["format": "pt"])
        #expect(try file.require(["a": [2, 3], "b": [6]]) == ["c", "empty", "pad"])
        #expect(throws: ModelLoadingError.self) { try file.floats("pad") }
        #expect(throws: ModelLoadingError.self) { try file.require(["a": [3, 2]]) }
        #expect(throws: ModelLoadingError.self) { try file.require(["missing": [1]]) }
    }

    @Test(arguments: [
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", "not a JSON object", 8),
        ("{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", "tensor a: unknown dtype Q4", 8),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", "tensor a: shape [3] of F32 needs 12 bytes", 8),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "tensor a: data_offsets end 8 beyond the data", 4),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", "tensor a: data_offsets [8, 0] are reversed", 8),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", "tensor a: negative dimension", 8),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", "tensor a: entry needs dtype, shape and data_offsets", 8),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]}}", "tensor a: shape", 8),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         "tensors a and b overlap", 8),
        ("{\"__metadata__\":{\"n\":1}}", "__metadata__ is not a map of strings", 0),
    ])
    func malformedHeaderIsRefusedNamingFileAndTensor(_ header: String, _ reason: String, _ dataLength: Int) throws {
        let path = try writeSafetensors(header: header, data: [UInt8](repeating: 0, count: dataLength))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = try #require(throws: ModelLoadingError.self) { try SafetensorsFile(path: path) }
        #expect(error.file == path)
        #expect(error.reason.contains(reason), "\(error.reason)")
    }

    @Test func truncatedAndOversizedHeadersAreRefused() throws {
        let short = FileManager.default.temporaryDirectory.appendingPathComponent("short-\(UUID())").path
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: short))
        defer { try? FileManager.default.removeItem(atPath: short) }
        #expect(throws: ModelLoadingError.self) { try SafetensorsFile(path: short) }
        let lying = try writeSafetensors(header: "{}", data: [], headerLength: 1 << 40)
        defer { try? FileManager.default.removeItem(atPath: lying) }
        let error = try #require(throws: ModelLoadingError.self) { try SafetensorsFile(path: lying) }
        #expect(error.reason.contains("header length"))
        #expect(throws: ModelLoadingError.self) { try SafetensorsFile(path: "/nonexistent/model.safetensors") }
    }

    @Test func miniLMWeightsHaveTheBERTLayout() throws {
        let path = modelDirectory.appendingPathComponent("model.safetensors").path
        try #require(FileManager.default.fileExists(atPath: path), "model cache missing: run scripts/fetch-models")
        let file = try SafetensorsFile(path: path)
        var expected: [String: [Int]] = [
            "embeddings.word_embeddings.weight": [30522, 384],
            "embeddings.position_embeddings.weight": [512, 384],
            "embeddings.token_type_embeddings.weight": [2, 384],
            "embeddings.LayerNorm.weight": [384], "embeddings.LayerNorm.bias": [384],
        ]
        for layer in 0..<6 {
            let prefix = "encoder.layer.\(layer)."
            for name in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"] {
                expected[prefix + name + ".weight"] = [384, 384]
                expected[prefix + name + ".bias"] = [384]
            }
            expected[prefix + "attention.output.LayerNorm.weight"] = [384]
            expected[prefix + "attention.output.LayerNorm.bias"] = [384]
            expected[prefix + "intermediate.dense.weight"] = [1536, 384]
            expected[prefix + "intermediate.dense.bias"] = [1536]
            expected[prefix + "output.dense.weight"] = [384, 1536]
            expected[prefix + "output.dense.bias"] = [384]
            expected[prefix + "output.LayerNorm.weight"] = [384]
            expected[prefix + "output.LayerNorm.bias"] = [384]
        }
        let unexpected = try file.require(expected)
        // The pooler (unused by mean pooling) and the position-id buffer.
        #expect(unexpected == ["embeddings.position_ids", "pooler.dense.bias", "pooler.dense.weight"])
        #expect(file.tensors["embeddings.position_ids"]?.dtype == .i64)
        #expect(expected.keys.allSatisfy { file.tensors[$0]?.dtype == .f32 })
        let gamma = try file.floats("embeddings.LayerNorm.weight")
        #expect(gamma.count == 384 && gamma.allSatisfy(\.isFinite))
    }
}
