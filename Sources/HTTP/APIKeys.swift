import CCrypto

/// Bearer keys with scopes, from a keys file: one key per line, `NAME SCOPES sha256:HEX` (scopes comma-separated,
/// `#` starts a comment). Only the keys' SHA-256 hashes are kept; a presented key is hashed and compared with every
/// stored hash in constant time, so neither a match nor its position shows in the timing.
public struct APIKeys: Sendable {
    public struct Key: Sendable, Equatable {
        /// What logs, metrics and audit lines call the key (the key itself never reaches them).
        public var name: String
        public var scopes: Set<String>
        /// SHA-256 of the key's UTF-8 bytes.
        public var hash: [UInt8]
    }

    /// A keys file that cannot be used, with the line that says why.
    public struct FileError: Error, Sendable, CustomStringConvertible {
        public var line: Int
        public var reason: String
        public var description: String { line > 0 ? "line \(line): \(reason)" : reason }
    }

    public let keys: [Key]

    /// Largest keys file read.
    public static let maxFileBytes = 1 << 20
    /// Longest key accepted in a request (a longer one is hashed no further than this: it cannot match).
    public static let maxKeyBytes = 256

    /// The keys of `text`, each scope one of `scopes`; names and hashes are unique.
    public init(parsing text: String, scopes allowed: Set<String>) throws(FileError) {
        var keys: [Key] = []
        var names = Set<String>(), hashes = Set<[UInt8]>()
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            if fields.isEmpty { continue }
            guard fields.count == 3 else {
                throw FileError(line: number, reason: "expected NAME SCOPES sha256:HEX, got \(fields.count) fields")
            }
            let name = String(fields[0])
            if let problem = Self.nameProblem(name) { throw FileError(line: number, reason: problem) }
            let scopes = fields[1].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            if let problem = Self.scopesProblem(scopes, allowed: allowed) { throw FileError(line: number, reason: problem) }
            guard fields[2].hasPrefix("sha256:"), let hash = Self.bytes(hex: fields[2].dropFirst(7)), hash.count == 32 else {
                throw FileError(line: number, reason: "the hash is sha256: and 64 hex digits")
            }
            guard names.insert(name).inserted else { throw FileError(line: number, reason: "name '\(name)' appears twice") }
            guard hashes.insert(hash).inserted else { throw FileError(line: number, reason: "the same key appears twice") }
            keys.append(Key(name: name, scopes: Set(scopes), hash: hash))
        }
        self.keys = keys
    }

    /// The key an `Authorization` header value (`Bearer KEY`) presents; `nil` for none, another scheme or an unknown key.
    public func authenticate(_ authorization: String?) -> Key? {
        guard let authorization else { return nil }
        let parts = authorization.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let presented = Array(parts[1].utf8.prefix(Self.maxKeyBytes + 1))
        guard presented.count <= Self.maxKeyBytes else { return nil }
        let hash = Self.sha256(presented)
        var found: Int?
        for (index, key) in keys.enumerated() {
            var difference: UInt8 = 0
            for (a, b) in zip(hash, key.hash) { difference |= a ^ b }
            // No early exit: every key is compared whichever matches.
            if difference == 0 { found = index }
        }
        return found.map { keys[$0] }
    }

    /// A new random key (256 bits from the system's generator) and the keys-file line that admits it; a name or
    /// scopes the file would refuse are refused here with the same reason.
    public static func generate(name: String, scopes: [String], allowed: Set<String>) throws(FileError) -> (key: String, line: String) {
        if let problem = nameProblem(name) ?? scopesProblem(scopes, allowed: allowed) {
            throw FileError(line: 0, reason: problem)
        }
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let key = "oe_" + hex(bytes)
        return (key, "\(name) \(scopes.joined(separator: ",")) sha256:\(hex(sha256(Array(key.utf8))))")
    }

    /// Why `name` cannot name a key (it shows in logs and metrics labels), or `nil`.
    static func nameProblem(_ name: String) -> String? {
        let valid = (1...64).contains(name.utf8.count) && name.utf8.allSatisfy {
            $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || isAlphanumeric($0)
        }
        return valid ? nil : "a name is 1 to 64 of A-Z a-z 0-9 . _ - (got '\(name.prefix(80))')"
    }

    static func scopesProblem(_ scopes: [String], allowed: Set<String>) -> String? {
        scopes.isEmpty || !Set(scopes).isSubset(of: allowed)
            ? "scopes are some of \(allowed.sorted().joined(separator: ", ")), comma-separated (got '\(scopes.joined(separator: ",").prefix(80))')"
            : nil
    }

    static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        bytes.withUnsafeBytes { _ = EVP_Digest($0.baseAddress, $0.count, &digest, &length, EVP_sha256(), nil) }
        return Array(digest.prefix(Int(length)))
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] }, as: UTF8.self)
    }

    private static func bytes(hex: Substring) -> [UInt8]? {
        func value(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        for i in stride(from: 0, to: digits.count, by: 2) {
            guard let high = value(digits[i]), let low = value(digits[i + 1]) else { return nil }
            out.append(high << 4 | low)
        }
        return out
    }

    private static func isAlphanumeric(_ c: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c)
            || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(c)
    }
}
