import Embedding
import Foundation
import HTTP
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

    @Test func aNonLoopbackHostNeedsTLSAndKeysOrAnExplicitAllowInsecure() async throws {
        await #expect(throws: ConfigurationError.self) {
            _ = try await ServiceConfiguration.load(file: Self.defaultFile, environment: ["OMNIEMBED_HOST": "0.0.0.0"])
        }
        await #expect(throws: ConfigurationError.self) {
            _ = try await ServiceConfiguration.load(file: Self.defaultFile, environment: [
                "OMNIEMBED_HOST": "10.0.0.5", "OMNIEMBED_AUTH_KEYS_FILE": "/etc/omniembed/keys",
            ])
        }
        let secured = try await ServiceConfiguration.load(file: Self.defaultFile, environment: [
            "OMNIEMBED_HOST": "10.0.0.5", "OMNIEMBED_AUTH_KEYS_FILE": "/etc/omniembed/keys",
            "OMNIEMBED_TLS_CERTIFICATE_FILE": "/etc/omniembed/cert.pem", "OMNIEMBED_TLS_PRIVATE_KEY_FILE": "/etc/omniembed/key.pem",
        ])
        #expect(secured.tls.enabled && secured.auth.keysFile == "/etc/omniembed/keys")
        // A client CA without a server certificate would silently serve without TLS: refused.
        await #expect(throws: ConfigurationError.self) {
            _ = try await ServiceConfiguration.load(file: Self.defaultFile, environment: ["OMNIEMBED_TLS_CLIENT_CA_FILE": "/ca.pem"])
        }
    }

    /// The keys file is read only if it is a regular file of bounded size: a FIFO at the path is refused at once
    /// (the reload would otherwise wait on it forever), and so is a file past the limit.
    @Test func theKeysFileIsARegularFileOfBoundedSize() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keys-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let fifo = directory + "/fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(throws: ConfigurationError.self) { try OmniEmbedService.readKeys(fifo) }
        let big = directory + "/big"
        #expect(FileManager.default.createFile(atPath: big, contents: Data(repeating: 0x23, count: (1 << 20) + 1)))
        #expect(throws: ConfigurationError.self) { try OmniEmbedService.readKeys(big) }
        let good = directory + "/keys"
        let line = try APIKeys.generate(name: "ranker", scopes: ["embed"], allowed: OmniEmbedService.apiKeyScopes).line
        try (line + "\n").write(toFile: good, atomically: true, encoding: .utf8)
        #expect(try OmniEmbedService.readKeys(good).keys.map(\.name) == ["ranker"])
    }

    /// The PostgreSQL bank's settings: a postgresql:// URL, the password from the environment or a file (never
    /// both), and the pool's bounds.
    @Test func postgresStoreSettings() async throws {
        await #expect(throws: ConfigurationError.self) {
            _ = try await ServiceConfiguration.load(file: Self.defaultFile, environment: ["OMNIEMBED_STORE_BACKEND": "postgres"])
        }
        let base = ["OMNIEMBED_STORE_BACKEND": "postgres", "OMNIEMBED_STORE_URL": "postgresql://ranker@db:5432/bank"]
        await #expect(throws: ConfigurationError.self) {
            _ = try await ServiceConfiguration.load(file: Self.defaultFile, environment: base.merging(["OMNIEMBED_STORE_POOL_SIZE": "0"]) { $1 })
        }
        await #expect(throws: ConfigurationError.self) {
            _ = try await ServiceConfiguration.load(file: Self.defaultFile, environment: base.merging(
                ["OMNIEMBED_STORE_PASSWORD": "a", "OMNIEMBED_STORE_PASSWORD_FILE": "/run/secrets/pw"]) { $1 })
        }
        await #expect(throws: ConfigurationError.self) {
            _ = try await ServiceConfiguration.load(file: Self.defaultFile, environment: base.merging(["OMNIEMBED_STORE_CHECK_INTERVAL_MS": "10"]) { $1 })
        }
        let fromEnvironment = try await ServiceConfiguration.load(file: Self.defaultFile, environment: base.merging(
            ["OMNIEMBED_STORE_PASSWORD": "s3cret", "OMNIEMBED_STORE_STATEMENT_TIMEOUT_MS": "750",
             "OMNIEMBED_STORE_CHECK_INTERVAL_MS": "250"]) { $1 })
        guard case .postgres(let settings) = try fromEnvironment.store.itemStoreBackend() else {
            Issue.record("not a postgres backend")
            return
        }
        #expect(settings.password == "s3cret" && settings.statementTimeout == .milliseconds(750) && settings.poolSize == 8)
        #expect(settings.checkInterval == .milliseconds(250))
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("pw-\(UUID().uuidString)").path
        try "from-file\n".write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let fromFile = try await ServiceConfiguration.load(file: Self.defaultFile, environment: base.merging(
            ["OMNIEMBED_STORE_PASSWORD_FILE": file]) { $1 })
        guard case .postgres(let filed) = try fromFile.store.itemStoreBackend() else { return }
        #expect(filed.password == "from-file")
        var missing = fromFile
        missing.store.passwordFile = file + ".missing"
        #expect(throws: ConfigurationError.self) { try missing.store.itemStoreBackend() }
    }

    /// The configuration deploy/k8s ships (in its ConfigMap) is one the service starts with: every replica on
    /// the PostgreSQL bank, TLS and API keys, on all addresses.
    @Test func theKubernetesConfigMapIsAValidConfiguration() async throws {
        let manifest = URL(fileURLWithPath: Self.defaultFile).deletingLastPathComponent()
            .appendingPathComponent("../deploy/k8s/configmap.yaml").standardized.path
        let lines = try String(contentsOfFile: manifest, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        let start = try #require(lines.firstIndex { $0.hasSuffix("omniembed.json: |") }) + 1
        let json = lines[start...].prefix { $0.hasPrefix("    ") || $0.isEmpty }.map { $0.dropFirst(4) }.joined(separator: "\n")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("k8s-\(UUID().uuidString).json").path
        try json.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let loaded = try await ServiceConfiguration.load(file: file, environment: [:])
        #expect(loaded.http.host == "0.0.0.0" && loaded.store.backend == .postgres && loaded.tls.enabled)
        #expect(!loaded.auth.keysFile.isEmpty && loaded.store.passwordFile == "/etc/omniembed/database/password")
        #expect(loaded.modelDirectory == ServiceConfiguration().modelDirectory)
    }

    @Test func environmentOverridesTheFile() async throws {
        let loaded = try await ServiceConfiguration.load(file: Self.defaultFile, environment: [
            "OMNIEMBED_PORT": "9191",
            "OMNIEMBED_HOST": "0.0.0.0",
            "OMNIEMBED_SECURITY_ALLOW_INSECURE": "true",
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
