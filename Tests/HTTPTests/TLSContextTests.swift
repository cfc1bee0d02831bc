import Foundation
import Testing
@testable import HTTP

/// Certificates made at test time by the `openssl` CLI (no private key is committed).
func makeCertificate(in directory: URL, name: String) throws -> (certificate: String, key: String) {
    let certificate = directory.appendingPathComponent("\(name).pem").path
    let key = directory.appendingPathComponent("\(name)-key.pem").path
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
    process.arguments = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                         "-keyout", key, "-out", certificate, "-days", "1", "-subj", "/CN=localhost"]
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0)
    return (certificate, key)
}

@Suite struct TLSContextTests {
    @Test func aMatchingPairLoadsAndMismatchesOrMissingFilesAreRefused() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let one = try makeCertificate(in: directory, name: "one")
        let two = try makeCertificate(in: directory, name: "two")
        _ = try TLSContext(certificateFile: one.certificate, privateKeyFile: one.key)
        _ = try TLSContext(certificateFile: one.certificate, privateKeyFile: one.key, clientCAFile: two.certificate)
        #expect(throws: TLSContext.Failure.self) { try TLSContext(certificateFile: one.certificate, privateKeyFile: two.key) }
        #expect(throws: TLSContext.Failure.self) { try TLSContext(certificateFile: "/nonexistent.pem", privateKeyFile: one.key) }
        do {
            _ = try TLSContext(certificateFile: one.certificate, privateKeyFile: two.key)
        } catch {
            #expect(error.description.contains("key"))
        }
    }
}
