import Embedding
import Foundation
import Testing
@testable import Service
import TestSupport

/// `model.precision` end to end: the text tower in bf16 or int8 serves vectors close to fp32's under another model
/// revision, so that one bank never mixes them; a precision the CPU lacks runs fp32 under fp32's revision.
extension ServiceLiveTests {
    @Test(arguments: [TowerPrecision.bf16, .int8])
    func aPrecisionIsItsOwnModelRevision(_ precision: TowerPrecision) async throws {
        var configuration = testConfiguration()
        let (fp32, fp32Port) = try await makeService(configuration)
        let text = Self.catalogue[3]
        let reference = try #require(try embed(#"{"items": [{"id": "p", "text": "\#(text)"}]}"#, port: fp32Port).body?.data.first?.embedding)
        let fp32Model = try model(fp32Port)
        await fp32.shutdown()

        // The same bank, now in `precision`.
        configuration.precision = precision
        let (lower, port) = try await makeService(configuration)
        let again = try #require(try embed(#"{"items": [{"id": "p", "text": "\#(text)"}]}"#, port: port).body?.data.first)
        let lowerModel = try model(port)
        let embedding = try #require(again.embedding)
        if precision.effective == precision {
            // Not the stored fp32 vector: embedded again, under another revision.
            #expect(lowerModel.id == fp32Model.id && lowerModel.revision != fp32Model.revision)
            #expect(again.cached != true && embedding != reference)
            #expect(dot(embedding, reference) > (precision == .bf16 ? 0.9995 : 0.99))
            // /match compares only vectors of the revision in force: the fp32 one is missing, the new one found.
            let (status, body) = try post("/match", port: port, json: #"{"user": {"history": ["p"]}, "candidates": ["p"], "features": ["max_cos"]}"#)
            #expect(status == 200 && (body["missing"] as? [String] ?? []).isEmpty, "\(body)")
        } else {
            #expect(lowerModel == fp32Model && again.cached == true)
        }
        await lower.shutdown()
    }

    /// int8 text vectors depend on the texts the encoder calibrates its smoothing on: another calibration is
    /// another revision in int8, and changes nothing in fp32 or bf16.
    @Test func theTextCalibrationIsPartOfTheInt8Revision() async throws {
        for precision in [TowerPrecision.fp32, .bf16, .int8] {
            var configuration = testConfiguration()
            configuration.precision = precision
            let pipeline = try configuration.pipeline
            let (usual, other) = (try ModelIdentity(of: pipeline), try ModelIdentity(of: pipeline, textCalibration: "other texts"))
            #expect((usual.revision != other.revision) == (precision.effective == .int8), "\(precision)")
        }
    }

    /// `model.precision` is every tower's; `image.precision` and `audio.precision` override it for one.
    @Test func precisionIsReadAndCheckedAsASetting() async throws {
        let loaded = try await ServiceConfiguration.load(file: ServiceConfigurationTests.defaultFile,
                                                         environment: ["OMNIEMBED_MODEL_PRECISION": "int8", "OMNIEMBED_AUDIO_PRECISION": "bf16"])
        let pipeline = try loaded.pipeline
        #expect(loaded.precision == .int8 && pipeline.text.precision == .int8 && pipeline.image.precision == .int8)
        #expect(pipeline.audio.precision == .bf16)
        let defaults = try await ServiceConfiguration.load(file: ServiceConfigurationTests.defaultFile, environment: [:])
        #expect(defaults.precision == .fp32 && defaults.image.precision == nil && defaults.audio.precision == nil)
        #expect(defaults.embedding.fusionPrecision == nil)
        // The Fusion-Q-Former follows model.precision unless embedding.fusion.precision says otherwise.
        let qformer = ["OMNIEMBED_EMBEDDING_FUSION_METHOD": "qformer", "OMNIEMBED_MODEL_PRECISION": "int8"]
        #expect(try await ServiceConfiguration.load(file: ServiceConfigurationTests.defaultFile, environment: qformer)
            .pipeline.fusion == .qformer(directory: "models/fusion-qformer", precision: .int8))
        let overridden = qformer.merging(["OMNIEMBED_EMBEDDING_FUSION_PRECISION": "bf16"]) { $1 }
        #expect(try await ServiceConfiguration.load(file: ServiceConfigurationTests.defaultFile, environment: overridden)
            .pipeline.fusion == .qformer(directory: "models/fusion-qformer", precision: .bf16))
        for (key, value) in [("OMNIEMBED_MODEL_PRECISION", "fp8"), ("OMNIEMBED_IMAGE_PRECISION", "int4"),
                             ("OMNIEMBED_EMBEDDING_FUSION_PRECISION", "fp16")] {
            await #expect(throws: (any Error).self) {
                _ = try await ServiceConfiguration.load(file: ServiceConfigurationTests.defaultFile, environment: [key: value])
            }
        }
    }
}
