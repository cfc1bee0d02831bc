/// An item that goes by an id.
public protocol IdentifiedItem: Sendable {
    var id: String { get }
}

extension ItemInput: IdentifiedItem {}

/// Where a vector that `/match` or `/user_embedding` compares comes from. `Item` is how an inline item is held:
/// as the request carries it until it is checked, then as an `ItemInput`.
public enum VectorSource<Item: IdentifiedItem>: Sendable {
    /// A stored item, read through the store's cache.
    case id(String)
    /// A full-size vector in the space `/embed` serves, with the id it goes by (history entries may have none).
    case vector(id: String?, [Float])
    /// An item embedded on the spot (not stored).
    case item(Item)

    public var id: String? {
        switch self {
        case .id(let id): id
        case .vector(let id, _): id
        case .item(let item): item.id
        }
    }

    /// The same source with its item transformed.
    public func mapItem<T: IdentifiedItem, Failure: Error>(
        _ transform: (Item) throws(Failure) -> T
    ) throws(Failure) -> VectorSource<T> {
        switch self {
        case .id(let id): .id(id)
        case .vector(let id, let vector): .vector(id: id, vector)
        case .item(let item): .item(try transform(item))
        }
    }
}

/// Full-size vectors in the model's space (unit rows), one row per source, with their ids, codes and whether
/// each was found; rows of sources not found are zeros.
public struct ResolvedVectors: Sendable {
    public var ids: [String?] = []
    public var vectors: [Float] = []
    public var found: [Bool] = []
    public var codes: [[Int]] = []

    /// The rows found, in order.
    public var foundRows: [Int] { found.indices.filter { found[$0] } }

    /// The ids of the sources not found, in order.
    public var missingIDs: [String] { found.indices.filter { !found[$0] }.compactMap { ids[$0] } }
}
