/// Why a media payload was refused. Each case says what the client sent wrong; the service maps them to statuses
/// (`tooLarge` → 413, the others → 422).
public enum MediaError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Not a format this decoder reads.
    case unsupportedFormat(String)
    /// The file is corrupt or truncated.
    case corrupt(String)
    /// Over a configured limit (pixels, duration), detected before the payload is decoded.
    case tooLarge(String)

    public var description: String {
        switch self {
        case .unsupportedFormat(let message), .corrupt(let message), .tooLarge(let message): message
        }
    }
}
