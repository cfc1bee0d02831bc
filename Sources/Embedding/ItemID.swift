/// The rule every item id meets wherever it enters (a request body, a URL path, an input file): 1 to `maxBytes`
/// bytes of UTF-8 and no control characters (U+0000–U+001F, U+007F). A NUL would end the id early in any C
/// string on its way to the store, so `victim\u0000x` would name `victim`; the others make ids that logs and
/// clients cannot show.
public enum ItemID {
    public static let defaultMaxBytes = 256

    /// 422 `invalid_id` naming `field` (`items[3].id`, `/items/{id}`) when `id` breaks the rule.
    /// `field` is made only for the error: a /match checks thousands of ids.
    public static func check(_ id: String, field: @autoclosure () -> String,
                             maxBytes: Int = defaultMaxBytes) throws(EmbeddingError) {
        let bytes = id.utf8.count
        guard bytes > 0, bytes <= maxBytes else {
            throw .invalid("invalid_id", "\(field()): an id must be 1 to \(maxBytes) bytes of UTF-8, got \(bytes)")
        }
        // In UTF-8 these bytes are only ever those characters: no byte of a longer character is below 0x80.
        if let control = id.utf8.first(where: { $0 < 0x20 || $0 == 0x7F }) {
            throw .invalid("invalid_id", "\(field()): an id may not contain control characters (found U+\(String(control, radix: 16, uppercase: true).leftPadded(to: 4)))")
        }
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
