/// A text as the text tower sees it: `[CLS]`, word pieces, `[SEP]`.
public struct Tokenization: Sendable, Equatable {
    public var ids: [Int32]
    public var tokens: [String]
    /// Pieces past the longest sequence were dropped.
    public var truncated: Bool
}
