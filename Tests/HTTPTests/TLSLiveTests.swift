import Foundation
import Testing
@testable import HTTP
import TestSupport

/// The listener over TLS with real clients: curl (OpenSSL) against certificates made at test time.
@Suite(.serialized) struct TLSLiveTests {
    func curl(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-sS", "--max-time", "20"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func curlTalksHTTPSAndAPlainRequestGetsA400() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let pair = try makeCertificate(in: directory, name: "server")
        let certificates = TLSCertificates(try TLSContext(certificateFile: pair.certificate, privateKeyFile: pair.key))
        let server = try TestServer.start(tls: certificates)
        let https = try curl(["--cacert", pair.certificate, "https://localhost:\(server.port)/hello",
                              "https://localhost:\(server.port)/big"])
        #expect(https.status == 0 && https.output.hasPrefix("hello") && https.output.count > 10_000, "\(https.output.prefix(300))")
        let old = try curl(["--cacert", pair.certificate, "--tls-max", "1.1", "https://localhost:\(server.port)/hello"])
        #expect(old.status != 0)
        let plain = try server.client()
        plain.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        let response = try plain.readResponse()
        #expect(response.status == 400 && String(decoding: response.body, as: UTF8.self).contains("plain_http_on_tls_port"))
        await server.stop()
    }
}
