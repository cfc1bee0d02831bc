import CCrypto

/// SHA-256 (OpenSSL), hex-encoded.
public enum ContentHash {
    /// The hash of a sequence of byte strings, each framed by a tag and its length, so that no two different
    /// sequences hash alike ("ab" + "c" differs from "a" + "bc").
    public static func sha256(_ parts: [(tag: UInt8, bytes: [UInt8])]) -> String {
        digest { context in
            for part in parts {
                let header = [part.tag] + withUnsafeBytes(of: UInt64(part.bytes.count).littleEndian, Array.init)
                EVP_DigestUpdate(context, header, header.count)
                part.bytes.withUnsafeBytes { _ = EVP_DigestUpdate(context, $0.baseAddress, $0.count) }
            }
        }
    }

    /// The plain SHA-256 of `bytes` (what `sha256sum` prints).
    public static func sha256(_ bytes: [UInt8]) -> String {
        digest { context in bytes.withUnsafeBytes { _ = EVP_DigestUpdate(context, $0.baseAddress, $0.count) } }
    }

    private static func digest(_ feed: (OpaquePointer?) -> Void) -> String {
        let context = EVP_MD_CTX_new()
        defer { EVP_MD_CTX_free(context) }
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
        feed(context)
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &digest, &length)
        let hex = Array("0123456789abcdef".utf8)
        return String(decoding: digest.prefix(Int(length)).flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 15)]] }, as: UTF8.self)
    }
}
