import Embedding
import Foundation
import Testing
@testable import Service

@Suite struct ServiceConfigurationTests {
    static let defaultFile = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../config/default.json").standardized.path

    @Test func defaultFileMatchesBuiltInDefaults() async throws {
        let loaded = try await ServiceConfiguration.load(file: Self.defaultFile, environment: [:])
        let builtIn = ServiceConfiguration()
        #expect(loaded.http.host == "127.0.0.1")
        #expect(loaded.http.port == 8080)
        #expect(loaded.http.limits == builtIn.http.limits)
        #expect(loaded.http.timeouts == builtIn.http.timeouts)
        #expect(loaded.http.maxConnections == builtIn.http.maxConnections)
        #expect(loaded.shutdownGracePeriod == builtIn.shutdownGracePeriod)
        #expect(loaded.logLevel == .info)
        #expect(loaded.encoder == builtIn.encoder)
        #expect(loaded.image == builtIn.image)
        #expect(loaded.audio == builtIn.audio)
    }

    @Test func encoderThreadsResolveAndRefuseOversubscription() throws {
        #expect(ComputeThreads().resolvedThreads(processors: 8) == 8)
        #expect(ComputeThreads(threads: 0, blasThreads: 2).resolvedThreads(processors: 8) == 4)
        try ServiceConfiguration.validate(ComputeThreads(threads: 2, blasThreads: 4), processors: 8)
        #expect(throws: ConfigurationError.self) {
            try ServiceConfiguration.validate(ComputeThreads(threads: 4, blasThreads: 4), processors: 8)
        }
        #expect(throws: ConfigurationError.self) {
            try ServiceConfiguration.validate(ComputeThreads(threads: 1, blasThreads: 0), processors: 8)
        }
    }

    @Test func environmentOverridesTheFile() async throws {
        let loaded = try await ServiceConfiguration.load(file: Self.defaultFile, environment: [
            "OMNIEMBED_PORT": "9191",
            "OMNIEMBED_HOST": "0.0.0.0",
            "OMNIEMBED_HTTP_MAX_BODY_BYTES": "1048576",
            "OMNIEMBED_HTTP_KEEP_ALIVE_TIMEOUT_MS": "1500",
            "OMNIEMBED_COMPRESSION_ENABLED": "false",
            "OMNIEMBED_LOG_FORMAT": "json",
        ])
        #expect(loaded.http.port == 9191)
        #expect(loaded.http.host == "0.0.0.0")
        #expect(loaded.http.limits.maxBodyBytes == 1_048_576)
        #expect(loaded.http.timeouts.keepAliveIdle == .milliseconds(1500))
        #expect(!loaded.compression.enabled)
        #expect(loaded.logFormat == .json)
    }

    @Test func environmentAloneWorksWithoutAFile() async throws {
        let loaded = try await ServiceConfiguration.load(file: nil, environment: ["OMNIEMBED_PORT": "7000"])
        #expect(loaded.http.port == 7000)
        #expect(loaded.http.limits.maxBodyBytes == 16 * 1024 * 1024)
    }

    @Test(arguments: [
        ["OMNIEMBED_PORT": "eighty"],
        ["OMNIEMBED_PORT": "70000"],
        ["OMNIEMBED_HTTP_MAX_BODY_BYTES": "0"],
        ["OMNIEMBED_LOG_LEVEL": "loud"],
        ["OMNIEMBED_COMPRESSION_LEVEL": "12"],
        ["OMNIEMBED_MODEL_THREADS": "-1"],
        ["OMNIEMBED_MODEL_BLAS_THREADS": "many"],
    ])
    func malformedValuesAreErrorsNotDefaults(_ environment: [String: String]) async {
        await #expect(throws: (any Error).self) {
            _ = try await ServiceConfiguration.load(file: Self.defaultFile, environment: environment)
        }
    }

    @Test func missingFileIsAnError() async {
        await #expect(throws: (any Error).self) {
            _ = try await ServiceConfiguration.load(file: "/nonexistent/omniembed.json", environment: [:])
        }
    }
}
