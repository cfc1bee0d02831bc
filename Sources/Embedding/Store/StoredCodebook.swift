/// A codebook as the shared bank keeps it: the artifact's bytes (as `SemanticCodebook.bytes()` writes them), when
/// it was fitted and for which model, and, when fitted with `--previous`, the code mapping from that version.
public struct StoredCodebook: Sendable, Equatable {
    public var version: String
    public var bytes: [UInt8]
    /// Seconds since 1970.
    public var createdAt: Double
    public var modelID: String?
    public var modelRevision: String?
    public var previousVersion: String?
    /// JSON: per level, each old code's majority new code and each new code's majority old code.
    public var mapping: String?

    public init(version: String, bytes: [UInt8], createdAt: Double, modelID: String?, modelRevision: String?,
                previousVersion: String? = nil, mapping: String? = nil) {
        self.version = version
        self.bytes = bytes
        self.createdAt = createdAt
        self.modelID = modelID
        self.modelRevision = modelRevision
        self.previousVersion = previousVersion
        self.mapping = mapping
    }
}
