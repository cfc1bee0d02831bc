import HTTP

/// The keys file's parser and the `Authorization` header's, on arbitrary bytes: the first byte picks which. A
/// file that parses admits exactly the keys generated for it; a header never authenticates without a real key.
private let scopes: Set<String> = ["embed", "read", "write", "admin"]
private let known = try! APIKeys.generate(name: "fuzz", scopes: ["embed"], allowed: scopes)
private let keys = try! APIKeys(parsing: known.line, scopes: scopes)

func fuzzAPIKeys(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data + 1, count: size - 1), as: UTF8.self)
    if data[0] & 1 == 0 {
        if let parsed = try? APIKeys(parsing: text, scopes: scopes) {
            for key in parsed.keys { precondition(!key.name.isEmpty && key.scopes.isSubset(of: scopes)) }
        }
    } else {
        let presented = keys.authenticate(text)
        precondition(presented == nil || text.hasSuffix(known.key), "a header without the key authenticated: \(text.debugDescription)")
    }
    return 0
}
