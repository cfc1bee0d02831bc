import Testing
@testable import HTTP

@Suite struct APIKeysTests {
    static let scopes: Set<String> = ["embed", "read", "write", "admin"]

    @Test func aGeneratedKeyIsAdmittedByItsLineWithItsScopes() throws {
        let (key, line) = try APIKeys.generate(name: "ranker-a", scopes: ["embed", "read"], allowed: APIKeysTests.scopes)
        #expect(key.hasPrefix("oe_") && key.utf8.count == 67)
        #expect(!line.contains(key))
        let keys = try APIKeys(parsing: "# the rankers\n\n\(line)  # added today\n", scopes: Self.scopes)
        let found = try #require(keys.authenticate("Bearer \(key)"))
        #expect(found.name == "ranker-a" && found.scopes == ["embed", "read"])
        #expect(keys.authenticate("bearer \(key)")?.name == "ranker-a")
        #expect(keys.authenticate("Bearer \(key)x") == nil)
        #expect(keys.authenticate("Basic \(key)") == nil)
        #expect(keys.authenticate(nil) == nil)
        #expect(keys.authenticate("Bearer " + String(repeating: "k", count: 100_000)) == nil)
    }

    @Test func theRightKeyOfSeveralIsFound() throws {
        let generated = try (0..<5).map { try APIKeys.generate(name: "k\($0)", scopes: ["admin"], allowed: Self.scopes) }
        let keys = try APIKeys(parsing: generated.map(\.line).joined(separator: "\n"), scopes: Self.scopes)
        for (index, (key, _)) in generated.enumerated() {
            #expect(keys.authenticate("Bearer \(key)")?.name == "k\(index)")
        }
    }

    @Test(arguments: [
        "name embed", "name embed sha256:00", "na me embed sha256:" + String(repeating: "0", count: 64),
        "name fly sha256:" + String(repeating: "0", count: 64), "name embed md5:" + String(repeating: "0", count: 64),
        "name embed sha256:" + String(repeating: "g", count: 64), "name embed, sha256:" + String(repeating: "0", count: 64),
        "a embed sha256:" + String(repeating: "0", count: 64) + "\na read sha256:" + String(repeating: "1", count: 64),
        "a embed sha256:" + String(repeating: "0", count: 64) + "\nb read sha256:" + String(repeating: "0", count: 64),
        String(repeating: "n", count: 65) + " embed sha256:" + String(repeating: "0", count: 64),
    ])
    func malformedLinesAreRefusedWithTheirLineNumber(_ text: String) {
        #expect(throws: APIKeys.FileError.self) { try APIKeys(parsing: text, scopes: Self.scopes) }
    }

    /// What `omniembed keys new` would print a line for is what the file admits; the rest is refused with the
    /// file's reason, not an odd line the service later rejects.
    @Test(arguments: [("my key", ["embed"]), ("", ["embed"]), ("ranker", ["embed", "fly"]), ("ranker", []),
                      ("ranker", ["embed", ""]), ("é", ["read"])])
    func generatingRefusesWhatTheFileWouldRefuse(_ name: String, _ scopes: [String]) {
        #expect(throws: APIKeys.FileError.self) { try APIKeys.generate(name: name, scopes: scopes, allowed: Self.scopes) }
    }
}

@Suite struct TokenBucketTests {
    @Test func aBurstThenTheRate() {
        let start = MonotonicInstant(nanoseconds: 1_000_000_000)
        var bucket = TokenBucket(rate: 2, burst: 2, now: start)
        #expect(bucket.take(now: start) == nil && bucket.take(now: start) == nil)
        #expect(abs((bucket.take(now: start) ?? 0) - 0.5) < 1e-9)
        #expect(bucket.take(now: start + .milliseconds(500)) == nil)
        #expect(bucket.take(now: start + .milliseconds(500)) != nil)
        #expect(bucket.take(now: start + .seconds(60)) == nil)  // refilled, never past the burst
        #expect(bucket.take(now: start + .seconds(60)) == nil && bucket.take(now: start + .seconds(60)) != nil)
    }

}
