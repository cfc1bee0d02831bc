import Locking

/// The codebooks in use, newest first (none, one, or up to `keep` during a rollout): a reload puts a new one in
/// front and the oldest beyond `keep` goes. A caller takes one snapshot and uses it throughout, so codes and rotated
/// vectors in one answer always come from the same codebook; a request may pin any loaded version, so rankers
/// trained on the previous codes keep getting them while the new ones roll out.
public final class CodebookSlot: Sendable {
    private let loaded = Locked<[SemanticCodebook]>([])
    public let keep: Int

    public init(keep: Int = 2) {
        self.keep = max(1, keep)
    }

    /// The newest codebook: what a request that names no version gets.
    public var current: SemanticCodebook? { loaded.withLock { $0.first } }

    /// Every loaded version, newest first.
    public var versions: [String] { loaded.withLock { $0.map(\.version) } }

    /// `codebook` as the newest (moved to the front if it is loaded already); `nil` unloads every one.
    public func replace(_ codebook: SemanticCodebook?) {
        loaded.withLock { loaded in
            guard let codebook else { return loaded.removeAll() }
            loaded.removeAll { $0.version == codebook.version }
            loaded.insert(codebook, at: 0)
            if loaded.count > keep { loaded.removeLast(loaded.count - keep) }
        }
    }

    /// The codebook a request names (`nil`: the newest); 409 `codebook_version_mismatch` for a version not loaded.
    public func resolve(_ version: String?) throws(EmbeddingError) -> SemanticCodebook? {
        let loaded = loaded.withLock { $0 }
        guard let version else { return loaded.first }
        if let codebook = loaded.first(where: { $0.version == version }) { return codebook }
        throw EmbeddingError(status: 409, code: "codebook_version_mismatch",
                             message: "codebook \(version) is not loaded; the service has \(loaded.isEmpty ? "none" : loaded.map(\.version).joined(separator: ", "))")
    }
}
